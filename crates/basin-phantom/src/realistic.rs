//! The realistic acquisition simulator behind `basin phantom --from`: multi-coil k-space of real
//! anatomy that does not flatter a reconstruction method.
//!
//! Per slice of a magnitude image (1 mm anatomy, one slice or a volume of axial slices):
//! 1. the slice (padded to the matrix, p99 = 1) is upsampled 2× by Keys' cubic convolution
//!    (a = −½) with a random sub-pixel offset, so the object is off the reconstruction grid;
//! 2. optional lesions (disks of ±20 % contrast) are multiplied in on flat tissue;
//! 3. a smooth random phase (low-order 2D cosine series, up to ~π over the field of view);
//! 4. birdcage coil sensitivities as SigPy's `birdcage_maps`: C loops on a circle of radius 1.5
//!    field-of-view half-widths around the object, s_c(r) = e^{iφ_c(r)}/|r − r_c|, normalised to
//!    unit root sum of squares (so the image a reconstruction should give is the object itself);
//! 5. k-space of each coil's high-resolution image, cropped to the matrix (no inverse crime);
//! 6. complex Gaussian noise with a coil covariance Ψ (given, or generated like a real receive
//!    array's: variances 0.5–1.4, neighbour-dominated complex correlations, mean |ρ| ≈ 0.2), at a
//!    target SNR = mean tissue magnitude / √(mean Ψᵢᵢ) (the SNR of the fully sampled,
//!    coil-combined image for white noise), and a noise scan with the same statistics;
//! 7. a fastMRI mask (the same lines in every slice).
//!
//! The ground truth is the magnitude of the high-resolution object low-passed to the matrix
//! (what a fully sampled, noise-free reconstruction with unit-norm maps gives). Seeded: the same
//! input, spec and seed give the same bytes.

use crate::lesions::{place, Lesion};
use crate::mask::{sampling_mask, MaskKind};
use crate::PhantomError;
use basin_core::fft::{fftc, ifftc};
use basin_core::rng::Rng;
use basin_core::{C32, C64};
use ndarray::{s, Array2, Array3, Array4, ArrayView2, Axis};
use rayon::prelude::*;
use std::f64::consts::PI;

/// What to simulate from an image.
#[derive(Clone, Debug)]
pub struct RealisticSpec {
    /// Output matrix (rows = phase encoding, columns = readout); each at least the input's.
    pub matrix: (usize, usize),
    /// Receive coils (1–64).
    pub coils: usize,
    /// Acceleration along phase encoding (1 = fully sampled).
    pub accel: f64,
    /// Fraction of central lines always acquired.
    pub center_fraction: f64,
    /// Mask family.
    pub mask: MaskKind,
    /// SNR in tissue (see the module documentation); infinite for noise-free data.
    pub snr: f64,
    /// Relative coil noise covariance (scaled to a mean diagonal of 1); `None` generates one.
    pub noise_cov: Option<Array2<C64>>,
    /// Lesions per slice (placed on flat tissue; fewer where there is not enough).
    pub lesions: usize,
    /// Complex samples per coil in the noise scan.
    pub noise_samples: usize,
    /// Seed of everything random.
    pub seed: u64,
}

/// A simulated acquisition with what produced it.
#[derive(Clone, Debug)]
pub struct Simulation {
    /// Ground-truth magnitude `[z, y, x]` on the output grid (p99 of the input = 1).
    pub truth: Array3<f32>,
    /// True coil sensitivities on the output grid `[c, z, y, x]` (unit root sum of squares).
    pub maps: Array4<C32>,
    /// Noisy k-space `[c, z, y, x]`, zero on lines not acquired.
    pub kspace: Array4<C32>,
    /// Acquired phase-encoding lines.
    pub lines: Vec<bool>,
    /// Lines of the fully sampled centre.
    pub acs: Vec<bool>,
    /// Noise scan `[c, samples]`.
    pub noise_scan: Array2<C32>,
    /// Coil noise covariance per complex k-space sample (absolute).
    pub noise_cov: Array2<C64>,
    /// Mean coil noise standard deviation σ = √(mean Ψᵢᵢ).
    pub sigma: f64,
    /// Mean truth magnitude in tissue (the SNR's numerator).
    pub tissue_mean: f64,
    /// Lesions per slice, in output pixel coordinates.
    pub lesions: Vec<Vec<Lesion>>,
    /// Sub-pixel sampling offset (rows, columns; pixels) of each slice's upsampling: the object
    /// lies that far off the input's grid, in the opposite direction.
    pub offsets: Vec<(f64, f64)>,
}

fn param(name: &'static str, message: String) -> PhantomError {
    PhantomError::Param { name, message }
}

/// Keys' cubic convolution kernel (a = −½).
fn keys(t: f64) -> f64 {
    let t = t.abs();
    if t < 1.0 {
        1.5 * t * t * t - 2.5 * t * t + 1.0
    } else if t < 2.0 {
        -0.5 * t * t * t + 2.5 * t * t - 4.0 * t + 2.0
    } else {
        0.0
    }
}

/// Resamples `src` along its last axis to `n` samples at positions (i + ½)/2 − ½ + `shift`
/// (2× upsampling), replicating the edge samples.
fn upsample_rows(src: ArrayView2<'_, f64>, n: usize, shift: f64) -> Array2<f64> {
    let (h, w) = src.dim();
    let mut out = Array2::<f64>::zeros((h, n));
    for i in 0..n {
        let t = (i as f64 + 0.5) / 2.0 - 0.5 + shift;
        let base = t.floor() as isize;
        let mut taps = [(0usize, 0.0f64); 4];
        for (k, tap) in taps.iter_mut().enumerate() {
            let j = base - 1 + k as isize;
            *tap = (j.clamp(0, w as isize - 1) as usize, keys(t - j as f64));
        }
        for y in 0..h {
            out[[y, i]] = taps.iter().map(|&(j, wt)| wt * src[[y, j]]).sum();
        }
    }
    out
}

/// `slice` upsampled 2× by cubic convolution with offset (dy, dx) in input pixels, clamped ≥ 0.
pub fn upsample2(slice: ArrayView2<'_, f64>, dy: f64, dx: f64) -> Array2<f64> {
    let (h, w) = slice.dim();
    let rows = upsample_rows(slice, 2 * w, dx);
    let cols = upsample_rows(rows.t(), 2 * h, dy);
    cols.t().mapv(|v| v.max(0.0))
}

/// A coil noise covariance like a real receive array's, relative (mean diagonal 1): variances
/// uniform in 0.5–1.4, correlation from a banded mixing matrix G (Ψ = D^½ R D^½, R = G Gᴴ
/// normalised to unit diagonal; first and second neighbours around the ring couple with random
/// complex weights), so |ρ| is largest between neighbouring coils (mean ≈ 0.2 for 8 coils).
pub fn realistic_covariance(coils: usize, seed: u64) -> Array2<C64> {
    let mut rng = Rng::new(seed ^ 0xC0F1_u64);
    let n = coils;
    let mut g = Array2::<C64>::eye(n);
    if n > 1 {
        for i in 0..n {
            for (d, amp) in [(1usize, 0.6), (2, 0.3)] {
                if d >= n {
                    continue;
                }
                let j = (i + d) % n;
                let a = amp * (0.6 + 0.8 * rng.uniform());
                let ph = (rng.uniform() - 0.5) * 1.2;
                g[[i, j]] += C64::from_polar(a, ph);
            }
        }
    }
    let r = g.dot(&g.t().mapv(|v| v.conj()));
    let var: Vec<f64> = (0..n).map(|_| 0.5 + 0.9 * rng.uniform()).collect();
    let mean = var.iter().sum::<f64>() / n as f64;
    Array2::from_shape_fn((n, n), |(i, j)| {
        let rho = r[[i, j]] / (r[[i, i]].re * r[[j, j]].re).sqrt();
        rho * (var[i] * var[j]).sqrt() / mean
    })
}

/// Mean |correlation| between distinct coils of a covariance.
pub fn mean_abs_correlation(cov: &Array2<C64>) -> f64 {
    let n = cov.shape()[0];
    if n < 2 {
        return 0.0;
    }
    let mut acc = 0.0;
    for i in 0..n {
        for j in 0..n {
            if i != j {
                acc += cov[[i, j]].norm() / (cov[[i, i]].re * cov[[j, j]].re).sqrt();
            }
        }
    }
    acc / (n * (n - 1)) as f64
}

/// Lower Cholesky factor of a Hermitian positive definite matrix, or why not.
fn cholesky_pd(a: &Array2<C64>) -> Result<Array2<C64>, String> {
    let n = a.shape()[0];
    let mut l = Array2::<C64>::zeros((n, n));
    for j in 0..n {
        let mut d = a[[j, j]].re;
        for k in 0..j {
            d -= l[[j, k]].norm_sqr();
        }
        if d.is_nan() || d <= 1e-12 * a[[j, j]].re.abs().max(1e-300) || !d.is_finite() {
            return Err(format!("not positive definite (pivot {j} is {d:.3e})"));
        }
        let d = d.sqrt();
        l[[j, j]] = C64::new(d, 0.0);
        for i in j + 1..n {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]].conj();
            }
            l[[i, j]] = s / d;
        }
    }
    Ok(l)
}

/// Birdcage sensitivities `[c, h, w]` on an `h`×`w` grid spanning the field of view, the ring
/// rotated by `rot` radians (SigPy `birdcage_maps`, radius 1.5, unit root sum of squares).
pub fn birdcage(coils: usize, h: usize, w: usize, rot: f64) -> Array3<C32> {
    let mut out = Array3::<C32>::zeros((coils, h, w));
    for y in 0..h {
        for x in 0..w {
            let yc = (y as f64 + 0.5 - h as f64 / 2.0) / (h as f64 / 2.0);
            let xc = (x as f64 + 0.5 - w as f64 / 2.0) / (w as f64 / 2.0);
            let mut v = vec![C64::new(0.0, 0.0); coils];
            for (c, vc) in v.iter_mut().enumerate() {
                let a = rot + 2.0 * PI * c as f64 / coils as f64;
                let (dx, dy) = (xc - 1.5 * a.cos(), yc - 1.5 * a.sin());
                let rr = (dx * dx + dy * dy).sqrt().max(1e-6);
                let phi = dx.atan2(-dy) - 2.0 * PI * c as f64 / coils as f64;
                *vc = C64::from_polar(1.0 / rr, phi);
            }
            let rss = v.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
            for (c, vc) in v.iter().enumerate() {
                let z = vc / rss;
                out[[c, y, x]] = C32::new(z.re as f32, z.im as f32);
            }
        }
    }
    out
}

/// A smooth random phase on an `h`×`w` grid: Σ a_pq cos(π(p u + q v) + θ_pq) over p, q ≤ 2.
fn smooth_phase(h: usize, w: usize, rng: &mut Rng) -> Array2<f64> {
    let mut terms = Vec::new();
    for p in 0..=2i32 {
        for q in 0..=2i32 {
            let amp = if p + q == 0 {
                1.0
            } else {
                0.8 / (p + q) as f64
            };
            terms.push((
                p as f64,
                q as f64,
                amp * (rng.uniform() - 0.5),
                2.0 * PI * rng.uniform(),
            ));
        }
    }
    Array2::from_shape_fn((h, w), |(y, x)| {
        let u = (x as f64 + 0.5) / w as f64 - 0.5;
        let v = (y as f64 + 0.5) / h as f64 - 0.5;
        terms
            .iter()
            .map(|&(p, q, a, t)| a * (PI * (p * u + q * v) + t).cos())
            .sum::<f64>()
    })
}

/// The centred `ny`×`nx` block of the spectrum of `hi` (orthonormal FFTs; scaled so a constant
/// keeps its value on the coarse grid).
fn crop_spectrum(hi: &Array2<C32>, ny: usize, nx: usize) -> Array2<C32> {
    let (hy, hx) = hi.dim();
    let mut k = hi.clone();
    fftc(k.view_mut(), &[0, 1]);
    let (oy, ox) = (hy / 2 - ny / 2, hx / 2 - nx / 2);
    let scale = ((ny * nx) as f64 / (hy * hx) as f64).sqrt() as f32;
    k.slice(s![oy..oy + ny, ox..ox + nx]).mapv(|v| v * scale)
}

/// The 99th percentile of `v` (0 for an empty or all-zero input).
fn p99(v: impl Iterator<Item = f64>) -> f64 {
    let mut a: Vec<f64> = v.filter(|x| x.is_finite()).collect();
    if a.is_empty() {
        return 0.0;
    }
    let k = ((a.len() - 1) as f64 * 0.99).round() as usize;
    *a.select_nth_unstable_by(k, |x, y| x.total_cmp(y)).1
}

/// Checks `spec` against an input of `nz` slices of `h`×`w`.
fn check(spec: &RealisticSpec, nz: usize, h: usize, w: usize) -> Result<(), PhantomError> {
    let (ny, nx) = spec.matrix;
    if nz == 0 || h == 0 || w == 0 {
        return Err(param("input", format!("empty image ({nz}×{h}×{w})")));
    }
    if !(8..=1024).contains(&ny) || !(8..=1024).contains(&nx) || ny < h || nx < w {
        return Err(param(
            "matrix",
            format!("{ny}×{nx}: each side must be 8–1024 and at least the input's ({h}×{w})"),
        ));
    }
    if nz > 1024 {
        return Err(param("slices", format!("{nz} slices (at most 1024)")));
    }
    if !(1..=64).contains(&spec.coils) {
        return Err(param("coils", format!("{} is outside 1..=64", spec.coils)));
    }
    if spec.snr.is_nan() || spec.snr <= 0.0 {
        return Err(param(
            "snr",
            format!("{} must be > 0 (inf for none)", spec.snr),
        ));
    }
    if !(2..=65535).contains(&spec.noise_samples) {
        return Err(param(
            "noise-samples",
            format!("{} is outside 2..=65535", spec.noise_samples),
        ));
    }
    if spec.lesions > 64 {
        return Err(param(
            "lesions",
            format!("{} per slice (at most 64)", spec.lesions),
        ));
    }
    if let Some(c) = &spec.noise_cov {
        if c.dim() != (spec.coils, spec.coils) {
            return Err(param(
                "noise-cov",
                format!("{:?} for {} coils", c.dim(), spec.coils),
            ));
        }
        cholesky_pd(c).map_err(|m| param("noise-cov", m))?;
        for i in 0..spec.coils {
            for j in 0..spec.coils {
                if (c[[i, j]] - c[[j, i]].conj()).norm() > 1e-6 * c[[i, i]].re.abs().max(1e-30) {
                    return Err(param("noise-cov", format!("not Hermitian at ({i}, {j})")));
                }
            }
        }
    }
    Ok(())
}

/// Simulates an acquisition of `image` `[z, y, x]` (magnitude, any scale).
pub fn simulate(image: &Array3<f32>, spec: &RealisticSpec) -> Result<Simulation, PhantomError> {
    let (nz, h, w) = image.dim();
    check(spec, nz, h, w)?;
    if image.iter().any(|v| !v.is_finite()) {
        return Err(param("input", "contains NaN or infinite values".into()));
    }
    let (ny, nx) = spec.matrix;
    let (hy, hx) = (2 * ny, 2 * nx);
    let nc = spec.coils;
    let scale = p99(image.iter().map(|v| v.abs() as f64));
    if scale <= 0.0 {
        return Err(param("input", "the image is zero everywhere".into()));
    }
    let mut rng = Rng::new(spec.seed);
    let rot = 2.0 * PI * rng.uniform();
    let coils_hi = birdcage(nc, hy, hx, rot);
    let maps2 = birdcage_on_coarse(&coils_hi, ny, nx);
    let (oy, ox) = ((ny - h) / 2, (nx - w) / 2);

    // Per slice: its random draws first (sequential, so the result does not depend on threads).
    struct Draw {
        offset: (f64, f64),
        phase: Array2<f64>,
    }
    let draws: Vec<Draw> = (0..nz)
        .map(|_| Draw {
            offset: (rng.uniform() - 0.5, rng.uniform() - 0.5),
            phase: smooth_phase(hy, hx, &mut rng),
        })
        .collect();
    let per_slice: Vec<(Array3<C32>, Array2<f32>, Vec<Lesion>)> = (0..nz)
        .into_par_iter()
        .map(|z| {
            let mut padded = Array2::<f64>::zeros((ny, nx));
            padded.slice_mut(s![oy..oy + h, ox..ox + w]).assign(
                &image
                    .index_axis(Axis(0), z)
                    .mapv(|v| v.abs() as f64 / scale),
            );
            let d = &draws[z];
            // Sampling offset in pixels (input and output pixels are the same size): up to
            // half a pixel either way.
            let mut up = upsample2(padded.view(), d.offset.0, d.offset.1);
            let object = |up: &Array2<f64>| {
                Array2::from_shape_fn((hy, hx), |(y, x)| {
                    C32::from_polar(up[[y, x]] as f32, d.phase[[y, x]] as f32)
                })
            };
            let lowpass_mag = |obj: &Array2<C32>| {
                let mut k = crop_spectrum(obj, ny, nx);
                ifftc(k.view_mut(), &[0, 1]);
                k.mapv(|v| v.norm())
            };
            let mut obj = object(&up);
            let mut truth = lowpass_mag(&obj);
            let lesions = if spec.lesions > 0 {
                let ls = place(truth.view(), spec.lesions);
                for ((y, x), v) in up.indexed_iter_mut() {
                    // Fine pixel (y, x) lies at ((y − ½)/2, (x − ½)/2) on the output grid.
                    let (py, px) = ((y as f64 - 0.5) / 2.0, (x as f64 - 0.5) / 2.0);
                    for l in &ls {
                        if (py - l.y).powi(2) + (px - l.x).powi(2) <= l.r * l.r {
                            *v *= l.factor as f64;
                        }
                    }
                }
                obj = object(&up);
                truth = lowpass_mag(&obj);
                ls
            } else {
                Vec::new()
            };
            let mut k = Array3::<C32>::zeros((nc, ny, nx));
            for c in 0..nc {
                let img = &obj * &coils_hi.index_axis(Axis(0), c);
                k.index_axis_mut(Axis(0), c)
                    .assign(&crop_spectrum(&img, ny, nx));
            }
            (k, truth, lesions)
        })
        .collect();

    let mut truth = Array3::<f32>::zeros((nz, ny, nx));
    let mut kspace = Array4::<C32>::zeros((nc, nz, ny, nx));
    let mut lesions = Vec::with_capacity(nz);
    for (z, (k, t, l)) in per_slice.into_iter().enumerate() {
        truth.index_axis_mut(Axis(0), z).assign(&t);
        kspace.slice_mut(s![.., z, .., ..]).assign(&k);
        lesions.push(l);
    }
    let tp99 = p99(truth.iter().map(|&v| v as f64));
    let tissue: Vec<f64> = truth
        .iter()
        .map(|&v| v as f64)
        .filter(|&v| v > 0.2 * tp99)
        .collect();
    let tissue_mean = tissue.iter().sum::<f64>() / tissue.len().max(1) as f64;
    let rel = match &spec.noise_cov {
        Some(c) => c.clone(),
        None => realistic_covariance(nc, spec.seed),
    };
    let mean_diag = (0..nc).map(|i| rel[[i, i]].re).sum::<f64>() / nc as f64;
    let sigma = if spec.snr.is_finite() {
        tissue_mean / spec.snr
    } else {
        0.0
    };
    let noise_cov = rel.mapv(|v| v * (sigma * sigma / mean_diag));
    let chol = if sigma > 0.0 {
        cholesky_pd(&rel.mapv(|v| v / mean_diag)).map_err(|m| param("noise-cov", m))?
    } else {
        Array2::zeros((nc, nc))
    };
    let (lines, acs) = sampling_mask(
        spec.mask,
        ny,
        spec.accel,
        spec.center_fraction,
        spec.seed ^ 0x3A5C,
    )
    .map_err(|m| param("accel/center-fraction", m))?;
    let mut noise_rng = Rng::new(spec.seed ^ 0x0015_E000);
    let mut correlated = |out: &mut [C32]| {
        let z: Vec<C64> = (0..nc)
            .map(|_| {
                // Unit complex variance: real and imaginary parts each of variance ½.
                let v = noise_rng.complex_normal();
                C64::new(v.re as f64, v.im as f64) * std::f64::consts::FRAC_1_SQRT_2
            })
            .collect();
        for (i, o) in out.iter_mut().enumerate() {
            let mut acc = C64::new(0.0, 0.0);
            for j in 0..=i {
                acc += chol[[i, j]] * z[j];
            }
            *o = C32::new((acc.re * sigma) as f32, (acc.im * sigma) as f32);
        }
    };
    let mut buf = vec![C32::new(0.0, 0.0); nc];
    let mut noise_scan = Array2::<C32>::zeros((nc, spec.noise_samples));
    for k in 0..spec.noise_samples {
        correlated(&mut buf);
        for c in 0..nc {
            noise_scan[[c, k]] = buf[c];
        }
    }
    for z in 0..nz {
        for (y, &acquired) in lines.iter().enumerate() {
            for x in 0..nx {
                if acquired {
                    correlated(&mut buf);
                    for c in 0..nc {
                        kspace[[c, z, y, x]] += buf[c];
                    }
                } else {
                    for c in 0..nc {
                        kspace[[c, z, y, x]] = C32::new(0.0, 0.0);
                    }
                }
            }
        }
    }
    let maps = Array4::from_shape_fn((nc, nz, ny, nx), |(c, _, y, x)| maps2[[c, y, x]]);
    let offsets = draws.iter().map(|d| d.offset).collect();
    Ok(Simulation {
        truth,
        maps,
        kspace,
        lines,
        acs,
        noise_scan,
        noise_cov,
        sigma,
        tissue_mean,
        lesions,
        offsets,
    })
}

/// The fine-grid birdcage maps low-passed to the coarse grid (as the k-space crop sees them),
/// renormalised to unit root sum of squares.
fn birdcage_on_coarse(hi: &Array3<C32>, ny: usize, nx: usize) -> Array3<C32> {
    let nc = hi.shape()[0];
    let mut out = Array3::<C32>::zeros((nc, ny, nx));
    for c in 0..nc {
        let mut k = crop_spectrum(&hi.index_axis(Axis(0), c).to_owned(), ny, nx);
        ifftc(k.view_mut(), &[0, 1]);
        out.index_axis_mut(Axis(0), c).assign(&k);
    }
    for y in 0..ny {
        for x in 0..nx {
            let rss = (0..nc)
                .map(|c| out[[c, y, x]].norm_sqr())
                .sum::<f32>()
                .sqrt();
            if rss > 0.0 {
                for c in 0..nc {
                    out[[c, y, x]] /= rss;
                }
            }
        }
    }
    out
}
