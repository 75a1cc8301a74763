//! Compressed-sensing baselines on the SENSE operator A (coil maps, FFT, mask):
//!
//! - **L1-wavelet**: min_x ½‖Ax − y‖² + λL‖Ψx‖₁ + μ/2‖x‖² (L the largest eigenvalue of AᴴA, so
//!   that λ does not depend on the operator's scale) with Daubechies-2 wavelets Ψ and an
//!   optional Tikhonov weight μ (the elastic net), by FISTA (Beck & Teboulle 2009) with a random
//!   circular shift of the image before each thresholding (cycle spinning, as BART's `pics -l1`
//!   does), step 1/(L + μ) with L the largest eigenvalue of AᴴA found by power iteration. A
//!   slice whose sides are not multiples of 2^levels is zero-padded to them for the transform.
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

/// Soft threshold `t` of the wavelet details of `w` on the `padded` grid: zero-padded at the
/// high end, transformed, thresholded, transformed back and cropped (PᵀΨᵀ soft(ΨPw); with P
/// the identity when the slice already has the padded size, this is the exact proximal
/// operator of t‖Ψw‖₁).
fn threshold_padded(w: Array3<C32>, padded: (usize, usize), levels: usize, t: f32) -> Array3<C32> {
    let (nz, ny, nx) = w.dim();
    let mut p = if (ny, nx) == padded {
        w
    } else {
        let mut p = Array3::zeros((nz, padded.0, padded.1));
        p.slice_mut(ndarray::s![.., ..ny, ..nx]).assign(&w);
        p
    };
    wavelet::forward(&mut p, levels);
    wavelet::soft_threshold_details(&mut p, levels, t);
    wavelet::inverse(&mut p, levels);
    if p.dim() == (nz, ny, nx) {
        p
    } else {
        p.slice(ndarray::s![.., ..ny, ..nx]).to_owned()
    }
}

/// Parameters of [`l1_wavelet`] (the `[solver]` table of an `l1-wavelet` protocol).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L1Params {
    /// ℓ1 weight, relative to the p99 = 1 convention and to the largest eigenvalue L of AᴴA
    /// (the threshold of each step is λ, not λ/L; for a unitary operator the two agree).
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
    /// Stop once an iteration lowers ‖Ax − y‖² by less than this fraction of it (0: run all
    /// `iterations`).
    #[serde(default)]
    pub stall: f64,
    /// Weight μ of a Tikhonov term μ/2 ‖x‖² beside the ℓ1 term (elastic net; 0: none), in the
    /// units of the convention. It bounds the growth of the directions the data barely
    /// determine, so the result stops depending on when FISTA is stopped.
    #[serde(default)]
    pub tikhonov: f32,
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

/// FISTA on the L1-wavelet problem as a small state machine (as [`crate::solvers::Cg`] is): the
/// driver calls [`Fista::update`] and decides when to stop. Works in the scaled units of the
/// convention (data divided by [`data_scale`]); [`Fista::image`] scales back.
pub struct Fista<'a> {
    op: &'a Sense,
    /// Aᴴy of the scaled data, and ‖y‖² of it.
    ahy: Array3<C32>,
    yy: f64,
    scale: f32,
    lipschitz: f32,
    lambda: f32,
    tikhonov: f32,
    levels: usize,
    /// The wavelet grid (see [`wavelet::padded_size`]).
    padded: (usize, usize),
    shift_max: usize,
    rng: Rng,
    /// The current iterate (scaled units).
    pub x: Array3<C32>,
    z: Array3<C32>,
    g: Array3<C32>,
    t: f32,
    /// ‖Az − y‖² at the point the last update took its gradient at (scaled units; NaN before the
    /// first update).
    pub residual_sq: f64,
    /// Iterations done.
    pub iterations: usize,
}

impl<'a> Fista<'a> {
    /// Scales the data, finds the step 1/L and starts from x = Aᴴy.
    pub fn new(op: &'a Sense, kspace: &Array4<C32>, p: &L1Params) -> Self {
        let scale = data_scale(op, kspace);
        let y = kspace.mapv(|c| c / scale).into_dyn();
        let yy = dot(y.view(), y.view()).re;
        // λ is relative to the data term's Lipschitz constant L as well as to the p99 = 1
        // convention: min ½‖Ax − y‖²/L + λ‖Ψx‖₁, so a constant factor on the operator (the
        // whitened maps' scale, the coil count) does not change how strongly it regularises.
        let data_lipschitz = max_eigenvalue(op, 20).max(1e-6) as f32;
        let (ny, nx) = (op.ishape()[1], op.ishape()[2]);
        let padded = wavelet::padded_size(ny, nx, p.levels);
        let levels = wavelet::levels_for(padded.0, padded.1, p.levels);
        let shift_max = if p.random_shift { 1usize << levels } else { 1 };
        let ahy = to3(op.adjoint(y.view()));
        Fista {
            op,
            x: ahy.clone(),
            z: ahy.clone(),
            g: Array3::zeros(ahy.dim()),
            ahy,
            yy,
            scale,
            lipschitz: data_lipschitz + p.tikhonov,
            lambda: p.lambda * data_lipschitz,
            tikhonov: p.tikhonov,
            levels,
            padded,
            shift_max,
            rng: Rng::new(p.seed),
            t: 1.0,
            residual_sq: f64::NAN,
            iterations: 0,
        }
    }

    /// One FISTA step: a gradient step on the data term at z, the wavelet soft threshold of a
    /// randomly shifted image, and the momentum extrapolation. Records ‖Az − y‖² from the
    /// gradient it computes anyway: ‖Az − y‖² = Re⟨z, AᴴAz − Aᴴy⟩ − Re⟨z, Aᴴy⟩ + ‖y‖².
    pub fn update(&mut self) {
        let (_, ny, nx) = self.x.dim();
        let l = self.lipschitz;
        data_grad(self.op, &self.z, &self.ahy, &mut self.g);
        let zv = self.z.view().into_dyn();
        self.residual_sq = (dot(zv.view(), self.g.view().into_dyn()).re
            - dot(zv.view(), self.ahy.view().into_dyn()).re
            + self.yy)
            .max(0.0);
        if self.tikhonov != 0.0 {
            let mu = self.tikhonov;
            Zip::from(&mut self.g)
                .and(&self.z)
                .for_each(|g, &z| *g += z * mu);
        }
        let mut u = self.z.clone();
        Zip::from(&mut u).and(&self.g).for_each(|u, &g| *u -= g / l);
        let (dy, dx) = (
            (self.rng.uniform() * self.shift_max as f64) as usize,
            (self.rng.uniform() * self.shift_max as f64) as usize,
        );
        let w = roll(&u, dy, dx);
        let w = threshold_padded(w, self.padded, self.levels, self.lambda / l);
        let x_new = roll(&w, ny - dy % ny, nx - dx % nx);
        let t_new = (1.0 + (1.0 + 4.0 * self.t * self.t).sqrt()) / 2.0;
        let beta = (self.t - 1.0) / t_new;
        Zip::from(&mut self.z)
            .and(&x_new)
            .and(&self.x)
            .for_each(|z, &a, &b| *z = a + (a - b) * beta);
        self.x = x_new;
        self.t = t_new;
        self.iterations += 1;
    }

    /// The data scale of the convention ([`data_scale`]) the solve divided the data by.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The current iterate in the data's units.
    pub fn image(&self) -> Array3<C32> {
        self.x.mapv(|c| c * self.scale)
    }
}

/// L1-wavelet reconstruction by FISTA: returns (image, iterations). Runs `p.iterations` steps,
/// or stops earlier once a step lowers ‖Az − y‖² by less than `p.stall` of it (the rule of
/// CG-SENSE's [`crate::solvers::EarlyStop::stall`]).
pub fn l1_wavelet(op: &Sense, kspace: &Array4<C32>, p: &L1Params) -> (Array3<C32>, usize) {
    let mut f = Fista::new(op, kspace, p);
    let mut previous: Option<f64> = None;
    while f.iterations < p.iterations {
        f.update();
        let r2 = f.residual_sq;
        if p.stall > 0.0 && previous.is_some_and(|q| q - r2 < p.stall * r2) {
            break;
        }
        previous = Some(r2);
    }
    (f.image(), f.iterations)
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
