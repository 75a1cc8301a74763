//! Compressed-sensing baselines on the SENSE operator A (coil maps, FFT, mask):
//!
//! - **L1-wavelet**: min_x ½‖Ax − y‖² + λ‖Ψx‖₁ with Daubechies-2 wavelets Ψ, by FISTA (Beck &
//!   Teboulle 2009) with a random circular shift of the image before each thresholding (cycle
//!   spinning, as BART's `pics -l1` does), step 1/L with L the largest eigenvalue of AᴴA found
//!   by power iteration.
//! - **Total variation**: min_x ½‖Ax − y‖² + λ Σₚ ‖∇x(p)‖₂ (isotropic, in-plane, real and
//!   imaginary parts coupled), by the primal–dual algorithm of Condat (2013) and Vũ (2013), which
//!   needs only A and Aᴴ: x ← x − τ(Aᴴ(Ax − y) − div p), p ← proj_λ(p + σ∇(2x_new − x)).
//!
//! Scaling convention (shared with the energy prior): the data are divided by the 99th
//! percentile of the magnitude of the adjoint-SENSE image before solving, so λ is relative to an
//! image whose p99 is 1, and the result is scaled back.

use crate::solvers::adjoint_sense;
use crate::wavelet;
use basin_core::linop::{dot, LinearOp, Sense};
use basin_core::rng::Rng;
use basin_core::C32;
use ndarray::{Array3, Array4, ArrayD, Ix3, Zip};

/// The data scale of the convention: p99 of |adjoint SENSE| (1 when the image is empty).
pub fn data_scale(op: &Sense, kspace: &Array4<C32>) -> f32 {
    let x = adjoint_sense(op, kspace);
    let mut m: Vec<f32> = x
        .iter()
        .map(|c| c.norm())
        .filter(|v| v.is_finite())
        .collect();
    if m.is_empty() {
        return 1.0;
    }
    let k = ((m.len() - 1) as f64 * 0.99).round() as usize;
    let (_, p, _) = m.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    if *p > 0.0 {
        *p
    } else {
        1.0
    }
}

/// Largest eigenvalue of AᴴA by `iters` power iterations from a fixed random start.
pub fn max_eigenvalue(op: &Sense, iters: usize) -> f64 {
    let mut rng = Rng::new(1);
    let mut v = ArrayD::from_shape_simple_fn(op.ishape(), || rng.complex_normal());
    let mut lam = 0.0;
    for _ in 0..iters {
        let n = dot(v.view(), v.view()).re.sqrt().max(1e-30);
        v.mapv_inplace(|c| c / n as f32);
        let w = op.normal(v.view());
        lam = dot(v.view(), w.view()).re;
        v = w;
    }
    lam
}

fn to3(a: ArrayD<C32>) -> Array3<C32> {
    a.into_dimensionality::<Ix3>().expect("Sense domain is 3D")
}

/// Gradient of the data term Aᴴ(Ax − y) = AᴴA x − Aᴴy into `g`, with `ahy` = Aᴴy computed once
/// (the normal operator needs no k-space buffer and skips the readout FFTs of line masks).
fn data_grad(op: &Sense, x: &Array3<C32>, ahy: &Array3<C32>, g: &mut Array3<C32>) {
    op.normal_into(x.view().into_dyn(), g.view_mut().into_dyn());
    *g -= ahy;
}

/// ½‖Ax − y‖².
pub fn data_term(op: &Sense, x: &Array3<C32>, kspace: &Array4<C32>) -> f64 {
    let mut r = op.forward(x.view().into_dyn());
    r -= &kspace.view().into_dyn();
    0.5 * dot(r.view(), r.view()).re
}

/// Circular shift of every slice by (dy, dx).
fn roll(x: &Array3<C32>, dy: usize, dx: usize) -> Array3<C32> {
    let (nz, ny, nx) = x.dim();
    Array3::from_shape_fn((nz, ny, nx), |(z, y, xx)| {
        x[[
            z,
            (y + ny - dy % ny.max(1)) % ny,
            (xx + nx - dx % nx.max(1)) % nx,
        ]]
    })
}

/// Parameters of [`l1_wavelet`] (the `[solver]` table of an `l1-wavelet` protocol).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L1Params {
    /// ℓ1 weight, relative to the p99 = 1 convention.
    pub lambda: f32,
    /// FISTA iterations.
    #[serde(default = "d_iterations")]
    pub iterations: usize,
    /// Largest number of wavelet levels.
    #[serde(default = "d_levels")]
    pub levels: usize,
    /// Random circular shifts before each thresholding (cycle spinning).
    #[serde(default = "d_true")]
    pub random_shift: bool,
    /// Seed of the shifts (set per slice by `reconstruct`, not by protocols).
    #[serde(skip)]
    pub seed: u64,
}

/// Parameters of [`tv`] (the `[solver]` table of a `tv` protocol).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TvParams {
    /// TV weight, relative to the p99 = 1 convention.
    pub lambda: f32,
    /// Primal–dual iterations.
    #[serde(default = "d_iterations")]
    pub iterations: usize,
}

fn d_iterations() -> usize {
    100
}
fn d_levels() -> usize {
    4
}
fn d_true() -> bool {
    true
}

/// L1-wavelet reconstruction by FISTA: returns (image, iterations).
pub fn l1_wavelet(op: &Sense, kspace: &Array4<C32>, p: &L1Params) -> (Array3<C32>, usize) {
    let (lambda, iterations, levels, seed) = (p.lambda, p.iterations, p.levels, p.seed);
    let s = data_scale(op, kspace);
    let y = kspace.mapv(|c| c / s).into_dyn();
    let l = max_eigenvalue(op, 20).max(1e-6) as f32;
    let (_, ny, nx) = (op.ishape()[0], op.ishape()[1], op.ishape()[2]);
    let lev = wavelet::levels_for(ny, nx, levels);
    let shift_max = if p.random_shift { 1usize << lev } else { 1 };
    let mut rng = Rng::new(seed);
    let ahy = to3(op.adjoint(y.view()));
    let mut x = ahy.clone();
    let mut z = x.clone();
    let mut g = Array3::zeros(x.dim());
    let mut t = 1.0f32;
    for _ in 0..iterations {
        data_grad(op, &z, &ahy, &mut g);
        let mut u = z.clone();
        Zip::from(&mut u).and(&g).for_each(|u, &g| *u -= g / l);
        let (dy, dx) = (
            (rng.uniform() * shift_max as f64) as usize,
            (rng.uniform() * shift_max as f64) as usize,
        );
        let mut w = roll(&u, dy, dx);
        wavelet::forward(&mut w, lev);
        wavelet::soft_threshold_details(&mut w, lev, lambda / l);
        wavelet::inverse(&mut w, lev);
        let x_new = roll(&w, ny - dy % ny, nx - dx % nx);
        let t_new = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        let beta = (t - 1.0) / t_new;
        Zip::from(&mut z)
            .and(&x_new)
            .and(&x)
            .for_each(|z, &a, &b| *z = a + (a - b) * beta);
        x = x_new;
        t = t_new;
    }
    (x.mapv(|c| c * s), iterations)
}

/// Forward differences along y and x of every slice (Neumann boundary): `[2, z, y, x]`.
fn grad2(x: &Array3<C32>) -> ndarray::Array4<C32> {
    let (nz, ny, nx) = x.dim();
    let mut g = ndarray::Array4::zeros((2, nz, ny, nx));
    for z in 0..nz {
        for y in 0..ny {
            for xx in 0..nx {
                let v = x[[z, y, xx]];
                if y + 1 < ny {
                    g[[0, z, y, xx]] = x[[z, y + 1, xx]] - v;
                }
                if xx + 1 < nx {
                    g[[1, z, y, xx]] = x[[z, y, xx + 1]] - v;
                }
            }
        }
    }
    g
}

/// div = −∇ᴴ of [`grad2`].
fn div2(p: &ndarray::Array4<C32>) -> Array3<C32> {
    let (_, nz, ny, nx) = p.dim();
    let mut d = Array3::zeros((nz, ny, nx));
    for z in 0..nz {
        for y in 0..ny {
            for xx in 0..nx {
                let mut v = C32::new(0.0, 0.0);
                if y + 1 < ny {
                    v += p[[0, z, y, xx]];
                }
                if y > 0 {
                    v -= p[[0, z, y - 1, xx]];
                }
                if xx + 1 < nx {
                    v += p[[1, z, y, xx]];
                }
                if xx > 0 {
                    v -= p[[1, z, y, xx - 1]];
                }
                d[[z, y, xx]] = v;
            }
        }
    }
    d
}

/// TV reconstruction by the Condat–Vũ primal–dual iteration: returns (image, iterations).
pub fn tv(op: &Sense, kspace: &Array4<C32>, p: &TvParams) -> (Array3<C32>, usize) {
    let (lambda, iterations) = (p.lambda, p.iterations);
    let s = data_scale(op, kspace);
    let y = kspace.mapv(|c| c / s).into_dyn();
    let l = max_eigenvalue(op, 20).max(1e-6) as f32;
    // Condat–Vũ step rule 1/τ − σ‖∇‖² ≥ L/2 with ‖∇‖² ≤ 8.
    let tau = 1.0 / l;
    let sigma = (1.0 / tau - l / 2.0) / 8.0 * 0.95;
    let ahy = to3(op.adjoint(y.view()));
    let mut x = ahy.clone();
    let mut g = Array3::zeros(x.dim());
    let mut p = ndarray::Array4::<C32>::zeros((2, x.dim().0, x.dim().1, x.dim().2));
    for _ in 0..iterations {
        data_grad(op, &x, &ahy, &mut g);
        let d = div2(&p);
        let mut xn = x.clone();
        Zip::from(&mut xn)
            .and(&g)
            .and(&d)
            .for_each(|xn, &g, &d| *xn -= (g - d) * tau);
        let xbar = &xn * C32::new(2.0, 0.0) - &x;
        let gb = grad2(&xbar);
        p.zip_mut_with(&gb, |p, &g| *p += g * sigma);
        let (_, nz, ny, nx) = p.dim();
        for z in 0..nz {
            for yy in 0..ny {
                for xx in 0..nx {
                    let n = (p[[0, z, yy, xx]].norm_sqr() + p[[1, z, yy, xx]].norm_sqr()).sqrt();
                    if n > lambda {
                        let f = lambda / n;
                        p[[0, z, yy, xx]] *= f;
                        p[[1, z, yy, xx]] *= f;
                    }
                }
            }
        }
        x = xn;
    }
    (x.mapv(|c| c * s), iterations)
}
