//! Reconstruction with the learned energy prior: half-quadratic splitting (Geman & Yang 1995;
//! the plug-and-play schedule of Zhang et al. 2021) with the prior's Tweedie denoiser.
//!
//! With images scaled to the p99 = 1 convention, for σ annealed geometrically from σ_max to
//! σ_min (never below the image-domain noise level):
//!
//! ```text
//! z = x − σ² ∇ₓE(x; σ)                          prior step (one Tweedie step at level σ)
//! x = argmin ½‖Ax − y‖² + (ρ/2)‖x − z‖²,  ρ = σₙ² / (2σ²)   data consistency (warm-started CG)
//! ```
//!
//! σₙ² is the complex noise variance per k-space sample — 1 after prewhitening with the noise
//! scan, else estimated from the outer corners of the sampled k-space (where anatomy has little
//! energy; an overestimate when it has some) — so the balance between data and prior follows
//! each scanner's noise and the k-space scale without tuning. With no noise, ρ = 0 and the DC
//! step is the exact projection onto the measured samples. Initialised from CG-SENSE. Pixels
//! outside the support of the coil maps are held at zero.

use crate::cs::data_scale;
use crate::solvers::Cg;
use basin_core::linop::{LinearOp, Sense};
use basin_core::C32;
use basin_prior::fast::{FastPyramid, PyramidWorkspace};
use ndarray::{Array3, Array4, ArrayD, Axis, Ix3, Zip};

/// Parameters of [`ebm`] (the `[solver]` table of an `ebm` protocol).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbmParams {
    /// First (largest) prior noise level, p99 = 1 convention.
    #[serde(default = "d_smax")]
    pub sigma_max: f64,
    /// Last (smallest) prior noise level (never below the image noise).
    #[serde(default = "d_smin")]
    pub sigma_min: f64,
    /// Number of σ levels (geometric).
    #[serde(default = "d_levels")]
    pub levels: usize,
    /// Prior/DC alternations per level.
    #[serde(default = "d_inner")]
    pub inner: usize,
    /// CG iterations per DC step.
    #[serde(default = "d_cg")]
    pub cg_iterations: usize,
    /// CG-SENSE iterations of the initial image.
    #[serde(default = "d_init")]
    pub init_iterations: usize,
    /// Weight λ of the prior (the posterior ∝ likelihood × prior^λ): the prior step is
    /// z = x − λσ²∇ₓE. 1 (the default, the plain posterior) gives the best PSNR/SSIM on the
    /// validation anatomy and keeps more small-lesion contrast there than L1-wavelet; below 1
    /// the prior smooths less than its denoising fit says, which keeps small features on noisy
    /// or non-anatomical images (protocol `brain-2d-ebm-weak-prior`, 0.2; benches/RESULTS.md).
    #[serde(default = "d_pw")]
    pub prior_weight: f64,
}

impl Default for EbmParams {
    fn default() -> Self {
        EbmParams {
            sigma_max: d_smax(),
            sigma_min: d_smin(),
            levels: d_levels(),
            inner: d_inner(),
            cg_iterations: d_cg(),
            init_iterations: d_init(),
            prior_weight: d_pw(),
        }
    }
}

fn d_smax() -> f64 {
    0.05
}
fn d_smin() -> f64 {
    0.01
}
fn d_levels() -> usize {
    6
}
fn d_inner() -> usize {
    5
}
fn d_cg() -> usize {
    5
}
fn d_init() -> usize {
    10
}
fn d_pw() -> f64 {
    1.0
}

/// What [`ebm`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EbmReport {
    /// Prior steps taken.
    pub iterations: usize,
    /// Complex noise standard deviation per k-space sample (before scaling).
    pub noise_std: f64,
    /// The smallest σ used.
    pub sigma_final: f64,
    /// Energy of the final image at σ_final (p99 = 1 convention).
    pub energy: f64,
}

/// Complex noise standard deviation per sample, from the sampled values in the outer corners
/// (|kx|, |ky| > 0.4 N) of every coil: median |k| / √(ln 2) (Rayleigh). 0 when none.
pub fn estimate_noise(kspace: &Array4<C32>, mask: &ndarray::Array3<bool>) -> f64 {
    let (_, _, ny, nx) = kspace.dim();
    let (cy, cx) = (ny as f64 / 2.0, nx as f64 / 2.0);
    let mut v: Vec<f32> = Vec::new();
    for coil in kspace.axis_iter(Axis(0)) {
        for ((z, y, x), &k) in coil.indexed_iter() {
            let far =
                (y as f64 - cy).abs() > 0.4 * ny as f64 && (x as f64 - cx).abs() > 0.4 * nx as f64;
            if far && mask[[z, y, x]] {
                v.push(k.norm());
            }
        }
    }
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    *m as f64 / std::f64::consts::LN_2.sqrt()
}

/// Pixels the coil maps cover (Σ_c |s_c|² > 0): ESPIRiT crops its maps to the object, so this
/// is the object's support as the data see it (PRIOR-NOTES: use it in every solver).
fn support(op: &Sense) -> Array3<bool> {
    op.maps().map_axis(Axis(0), |v| {
        v.iter().map(|c| c.norm_sqr()).sum::<f32>() > 1e-12
    })
}

/// The data in the p99 = 1 convention shared by the solvers of this module: the scale s
/// ([`data_scale`]), the scaled k-space y = k/s, and the complex noise level per sample σₙ
/// (given, else [`estimate_noise`]) before and after scaling.
struct Scaled {
    s: f32,
    y: Array4<C32>,
    noise: f64,
    noise_scaled: f64,
}

fn scaled(op: &Sense, kspace: &Array4<C32>, noise_std: Option<f64>) -> Scaled {
    let s = data_scale(op, kspace);
    let noise = noise_std.unwrap_or_else(|| estimate_noise(kspace, op.mask()));
    Scaled {
        s,
        y: kspace.mapv(|c| c / s),
        noise,
        noise_scaled: noise / s as f64,
    }
}

/// Relative-residual tolerance of every CG solve of the EBM solver (the float32 floor).
pub const DC_TOLERANCE: f64 = 1e-6;

/// The (σ, ρ) of every level: σ geometric from σ_max to σ_min, never below the image-domain
/// noise per real channel σₙ/√2 (orthonormal FFT, unit-norm maps), and ρ = σₙ²/(2σ²).
/// `noise_scaled` is σₙ in the p99 = 1 scale. Shared by the CPU and GPU solvers.
pub fn schedule(p: &EbmParams, noise_scaled: f64) -> Vec<(f64, f32)> {
    let floor = noise_scaled / std::f64::consts::SQRT_2;
    let levels = p.levels.max(1);
    (0..levels)
        .map(|l| {
            let f = if levels == 1 {
                1.0
            } else {
                l as f64 / (levels - 1) as f64
            };
            let sigma = (p.sigma_max.ln() + f * (p.sigma_min.ln() - p.sigma_max.ln()))
                .exp()
                .max(floor);
            let rho = (noise_scaled * noise_scaled / (2.0 * sigma * sigma)) as f32;
            (sigma, rho)
        })
        .collect()
}

#[cfg(feature = "gpu")]
/// The device solver's [`basin_gpu::ebm::Schedule`] for these parameters: [`schedule`] in
/// float32, with the same iteration counts and [`DC_TOLERANCE`].
pub fn device_schedule(p: &EbmParams, noise_scaled: f64) -> basin_gpu::ebm::Schedule {
    basin_gpu::ebm::Schedule {
        levels: schedule(p, noise_scaled)
            .iter()
            .map(|&(sigma, rho)| (sigma as f32, rho))
            .collect(),
        inner: p.inner,
        cg_iterations: p.cg_iterations,
        init_iterations: p.init_iterations,
        tolerance: DC_TOLERANCE,
        prior_weight: p.prior_weight as f32,
    }
}

/// The prior's gradient for images of one size, its buffers kept across calls (allocated per
/// call they cost a page fault per touched page on every step).
struct PriorEval<'m> {
    model: &'m FastPyramid,
    ws: PyramidWorkspace,
    buf: Vec<f32>,
    g: Vec<f32>,
}

impl<'m> PriorEval<'m> {
    fn new(model: &'m FastPyramid, ny: usize, nx: usize) -> Self {
        PriorEval {
            model,
            ws: model.workspace(ny, nx),
            buf: vec![0.0; 2 * ny * nx],
            g: vec![0.0; 2 * ny * nx],
        }
    }

    /// ∇ₓE of every slice of `x` `[z, y, x]` at σ, and the summed energy.
    fn grad(&mut self, x: &Array3<C32>, sigma: f32) -> (Array3<C32>, f64) {
        let (nz, ny, nx) = x.dim();
        let mut out = Array3::zeros((nz, ny, nx));
        let mut energy = 0.0;
        for z in 0..nz {
            for (i, c) in x.index_axis(Axis(0), z).iter().enumerate() {
                self.buf[i] = c.re;
                self.buf[ny * nx + i] = c.im;
            }
            energy += self
                .model
                .energy_grad(&mut self.ws, &self.buf, sigma, &mut self.g, None);
            for (i, o) in out.index_axis_mut(Axis(0), z).iter_mut().enumerate() {
                *o = C32::new(self.g[i], self.g[ny * nx + i]);
            }
        }
        (out, energy)
    }
}

/// (AᴴA + ρI) x = Aᴴy + ρz by CG warm-started at `x0`, `iters` iterations (`aty` = Aᴴy).
fn dc_step(
    op: &Sense,
    aty: &ArrayD<C32>,
    z: &Array3<C32>,
    x0: &Array3<C32>,
    rho: f32,
    iters: usize,
) -> Array3<C32> {
    let mut rhs = aty.clone();
    let ax0 = op.normal(x0.view().into_dyn());
    Zip::from(&mut rhs)
        .and(&ax0)
        .and(z.view().into_dyn())
        .and(x0.view().into_dyn())
        .for_each(|r, &a, &zz, &x| *r = *r + (zz - x) * rho - a);
    let mut cg = Cg::new(op, rhs, rho);
    while !cg.done(DC_TOLERANCE, iters) {
        cg.update();
    }
    let d =
        cg.x.into_dimensionality::<Ix3>()
            .expect("Sense domain is 3D");
    x0 + &d
}

/// EBM reconstruction: returns the image (in the data's scale) and a report. `noise_std` is the
/// complex noise standard deviation per sample when known (1 after prewhitening with a noise
/// scan); otherwise it is estimated with [`estimate_noise`].
pub fn ebm(
    op: &Sense,
    kspace: &Array4<C32>,
    model: &FastPyramid,
    p: &EbmParams,
    noise_std: Option<f64>,
) -> (Array3<C32>, EbmReport) {
    let sc = scaled(op, kspace, noise_std);
    let (mut x, _) =
        crate::solvers::cg_sense(op, &sc.y, 0.0, DC_TOLERANCE, p.init_iterations, None);
    // Aᴴy is the same for every data-consistency step.
    let aty = op.adjoint(sc.y.view().into_dyn());
    let supp = support(op);
    let levels = schedule(p, sc.noise_scaled);
    let mut iterations = 0;
    let mut sigma = p.sigma_max;
    let (_, ny, nx) = x.dim();
    let mut prior = PriorEval::new(model, ny, nx);
    for &(sig, rho) in &levels {
        sigma = sig;
        for _ in 0..p.inner {
            let (g, _) = prior.grad(&x, sigma as f32);
            let s2 = (p.prior_weight * sigma * sigma) as f32;
            let mut z = x.clone();
            // Outside the support the data say nothing and the image is zero.
            Zip::from(&mut z)
                .and(&g)
                .and(&supp)
                .for_each(|z, &g, &inside| {
                    *z = if inside {
                        *z - g * s2
                    } else {
                        C32::new(0.0, 0.0)
                    }
                });
            x = dc_step(op, &aty, &z, &z, rho, p.cg_iterations);
            iterations += 1;
        }
    }
    let (_, energy) = prior.grad(&x, sigma as f32);
    (
        x.mapv(|c| c * sc.s),
        EbmReport {
            iterations,
            noise_std: sc.noise,
            sigma_final: sigma,
            energy,
        },
    )
}

#[cfg(feature = "gpu")]
/// [`ebm`] on a GPU ([`basin_gpu::ebm::run`]): the same scaling, noise level, support and
/// schedule, computed here on the host and shared with the CPU solver; every iteration runs on
/// the device. Returns the image (data scale), the report, and the device's own report (copy
/// counts). 2D encoding slice by slice, or 3D encoding (the FFT along z too) as one problem.
pub fn ebm_gpu(
    gpu: &basin_gpu::Gpu,
    prior: &basin_gpu::prior::GpuPrior,
    op: &Sense,
    kspace: &Array4<C32>,
    p: &EbmParams,
    noise_std: Option<f64>,
) -> Result<(Array3<C32>, EbmReport, basin_gpu::ebm::Report), basin_gpu::GpuError> {
    if op.is_3d() {
        let sc = scaled(op, kspace, noise_std);
        let sched = device_schedule(p, sc.noise_scaled);
        let (x, rep) = basin_gpu::ebm::run(
            gpu,
            prior,
            op.maps(),
            op.mask(),
            &support(op),
            &sc.y,
            &[sched],
            true,
        )?;
        let report = device_report(p, &sc, rep.iterations, rep.energies.iter().sum());
        return Ok((x.mapv(|c| c * sc.s), report, rep));
    }
    let (mut out, rep) = ebm_gpu_batch(
        gpu,
        prior,
        &[GpuSlice {
            op,
            kspace,
            noise_std,
        }],
        p,
    )?;
    let (x, r) = out.pop().expect("one slice in, one out");
    Ok((x, r, rep))
}

#[cfg(feature = "gpu")]
/// The report of a device solve of data scaled as `sc`: the CPU solver's fields, σ_final from
/// the shared schedule.
fn device_report(p: &EbmParams, sc: &Scaled, iterations: usize, energy: f64) -> EbmReport {
    EbmReport {
        iterations,
        noise_std: sc.noise,
        sigma_final: schedule(p, sc.noise_scaled)
            .last()
            .map_or(p.sigma_max, |l| l.0),
        energy,
    }
}

#[cfg(feature = "gpu")]
/// One slice (or a stack of 2D-encoded slices sharing a scale) of [`ebm_gpu_batch`].
pub struct GpuSlice<'a> {
    /// Its SENSE operator (2D encoding).
    pub op: &'a Sense,
    /// Its k-space `[c, z, y, x]`.
    pub kspace: &'a Array4<C32>,
    /// Its complex noise level per sample when known (1 after prewhitening).
    pub noise_std: Option<f64>,
}

/// One slice's image (data scale) and report.
pub type SliceOutput = (Array3<C32>, EbmReport);

#[cfg(feature = "gpu")]
/// [`ebm_gpu`] for many slices in one launch sequence ([`basin_gpu::ebm::run`] on the slices
/// stacked along z): each slice keeps its own scale, noise level, σ schedule, ρ and CG, so it
/// comes out as it would alone. The slices need the same coil count and matrix; the device's
/// report covers the batch.
pub fn ebm_gpu_batch(
    gpu: &basin_gpu::Gpu,
    prior: &basin_gpu::prior::GpuPrior,
    slices: &[GpuSlice<'_>],
    p: &EbmParams,
) -> Result<(Vec<SliceOutput>, basin_gpu::ebm::Report), basin_gpu::GpuError> {
    use basin_gpu::GpuError;
    let Some(first) = slices.first() else {
        return Err(GpuError::Shape("EBM: an empty batch".into()));
    };
    let (nc, _, h, w) = first.op.maps().dim();
    let mut nz = 0;
    for s in slices {
        let (c, z, hh, ww) = s.op.maps().dim();
        if s.op.is_3d() || (c, hh, ww) != (nc, h, w) || s.kspace.dim() != s.op.maps().dim() {
            return Err(GpuError::Shape(format!(
                "EBM batch: a slice with maps {:?} and k-space {:?} does not stack with maps {:?} (2D encoding, one coil count and matrix)",
                s.op.maps().shape(),
                s.kspace.shape(),
                first.op.maps().shape()
            )));
        }
        nz += z;
    }
    let scaled: Vec<Scaled> = slices
        .iter()
        .map(|s| scaled(s.op, s.kspace, s.noise_std))
        .collect();
    let mut maps = Array4::zeros((nc, nz, h, w));
    let mut y = Array4::zeros((nc, nz, h, w));
    let mut mask = Array3::from_elem((nz, h, w), false);
    let mut supp = Array3::from_elem((nz, h, w), false);
    let mut scheds = Vec::with_capacity(nz);
    let mut z0 = 0;
    for (s, sc) in slices.iter().zip(&scaled) {
        let z = s.op.maps().dim().1;
        let r = ndarray::s![.., z0..z0 + z, .., ..];
        maps.slice_mut(r).assign(s.op.maps());
        y.slice_mut(r).assign(&sc.y);
        let r3 = ndarray::s![z0..z0 + z, .., ..];
        mask.slice_mut(r3).assign(s.op.mask());
        supp.slice_mut(r3).assign(&support(s.op));
        scheds.extend(std::iter::repeat_n(device_schedule(p, sc.noise_scaled), z));
        z0 += z;
    }
    let (x, rep) = basin_gpu::ebm::run(gpu, prior, &maps, &mask, &supp, &y, &scheds, false)?;
    let mut out = Vec::with_capacity(slices.len());
    let mut z0 = 0;
    for (s, sc) in slices.iter().zip(&scaled) {
        let z = s.op.maps().dim().1;
        let img = x.slice(ndarray::s![z0..z0 + z, .., ..]).mapv(|c| c * sc.s);
        let energy = rep.energies[z0..z0 + z].iter().sum();
        out.push((img, device_report(p, sc, rep.iterations, energy)));
        z0 += z;
    }
    Ok((out, rep))
}

/// One posterior sample by annealed Langevin dynamics with the same operators (Jalal et al.
/// 2021): for σ from σ_max to σ_min, `inner` steps of
///
/// ```text
/// x ← x − α (λ∇ₓE(x; σ) + Aᴴ(Ax − y) / (σₙ² + 2σ²)) + √(2α) ξ,   α = step · σ²
/// ```
///
/// (the data term's variance grows with σ so noise-free data stay tractable), starting from
/// `start` (data scale; the EBM image in [`posterior`]) plus noise of level σ_max. Pixels outside
/// the support of the coil maps are held at zero, as in [`ebm`]. Returns the sample in the
/// data's scale.
#[allow(clippy::too_many_arguments)]
pub fn langevin_sample(
    op: &Sense,
    kspace: &Array4<C32>,
    model: &FastPyramid,
    p: &EbmParams,
    noise_std: Option<f64>,
    step: f64,
    seed: u64,
    start: &Array3<C32>,
) -> Array3<C32> {
    let mut rng = basin_core::rng::Rng::new(seed);
    let sc = scaled(op, kspace, noise_std);
    let (s, noise) = (sc.s, sc.noise_scaled);
    let supp = support(op);
    let mut x = start.mapv(|c| c / s);
    let (_, ny, nx) = x.dim();
    let mut prior = PriorEval::new(model, ny, nx);
    let y = sc.y.into_dyn();
    let sm = p.sigma_max as f32;
    x.mapv_inplace(|c| c + C32::new(rng.normal() as f32, rng.normal() as f32) * sm);
    for &(sigma, _) in &schedule(p, noise) {
        let alpha = step * sigma * sigma;
        let w = (1.0 / (noise * noise + 2.0 * sigma * sigma)) as f32;
        let amp = (2.0 * alpha).sqrt() as f32;
        for _ in 0..p.inner {
            let (g, _) = prior.grad(&x, sigma as f32);
            let mut r = op.forward(x.view().into_dyn());
            r -= &y;
            let d = op.adjoint(r.view());
            Zip::from(&mut x)
                .and(&g)
                .and(
                    d.view()
                        .into_dimensionality::<Ix3>()
                        .expect("Sense domain is 3D"),
                )
                .for_each(|x, &g, &d| {
                    let xi = C32::new(rng.normal() as f32, rng.normal() as f32);
                    *x -= (g * p.prior_weight as f32 + d * w) * alpha as f32;
                    *x += xi * amp;
                });
            Zip::from(&mut x).and(&supp).for_each(|x, &inside| {
                if !inside {
                    *x = C32::new(0.0, 0.0)
                }
            });
        }
    }
    x.mapv(|c| c * s)
}

/// Posterior samples of [`posterior`], summarised.
#[derive(Clone, Debug)]
pub struct Posterior {
    /// The samples' mean (data scale): the image basin writes.
    pub mean: Array3<C32>,
    /// Per-pixel standard deviation of the samples' magnitude (data scale): the uncertainty map.
    pub sd: Array3<f32>,
    /// The EBM run that started the chains; `energy` is that of the mean, `iterations` counts
    /// the prior steps of the EBM run and of every chain.
    pub report: EbmReport,
}

/// Step size of the Langevin chains, in units of σ² (the step that is stable for a prior whose
/// curvature is at most 1/σ², the noise-smoothed energy's).
pub const LANGEVIN_STEP: f64 = 0.5;

/// `n` posterior samples (n ≥ 1; seeds `seed`, `seed + 1`, …, in parallel): the EBM image
/// ([`ebm`], with the protocol's prior weight) is computed once, and each chain
/// ([`langevin_sample`]) anneals from it through the protocol's σ schedule, sampling the plain
/// posterior ∝ likelihood × prior (prior weight 1: a weight λ < 1 flattens the prior, and chains
/// of likelihood × prior^λ spread by the injected noise alone — their spread was measured
/// uncorrelated with the error, benches/RESULTS.md).
pub fn posterior(
    op: &Sense,
    kspace: &Array4<C32>,
    model: &FastPyramid,
    p: &EbmParams,
    noise_std: Option<f64>,
    n: usize,
    seed: u64,
) -> Posterior {
    use rayon::prelude::*;
    let (start, mut report) = ebm(op, kspace, model, p, noise_std);
    let plain = EbmParams {
        prior_weight: 1.0,
        ..*p
    };
    let samples: Vec<Array3<C32>> = (0..n.max(1))
        .into_par_iter()
        .map(|i| {
            langevin_sample(
                op,
                kspace,
                model,
                &plain,
                noise_std,
                LANGEVIN_STEP,
                seed.wrapping_add(i as u64),
                &start,
            )
        })
        .collect();
    let k = samples.len() as f32;
    let mut mean = Array3::<C32>::zeros(samples[0].raw_dim());
    for s in &samples {
        mean += s;
    }
    mean.mapv_inplace(|c| c / k);
    let mut var = Array3::<f32>::zeros(mean.raw_dim());
    let mut mag_mean = Array3::<f32>::zeros(mean.raw_dim());
    for s in &samples {
        Zip::from(&mut mag_mean)
            .and(s)
            .for_each(|m, c| *m += c.norm() / k);
    }
    for s in &samples {
        Zip::from(&mut var)
            .and(s)
            .and(&mag_mean)
            .for_each(|v, c, &m| *v += (c.norm() - m).powi(2));
    }
    let denom = (k - 1.0).max(1.0);
    let s = data_scale(op, kspace);
    let (_, ny, nx) = mean.dim();
    let (_, energy) =
        PriorEval::new(model, ny, nx).grad(&mean.mapv(|c| c / s), report.sigma_final as f32);
    report.energy = energy;
    report.iterations += samples.len() * p.levels.max(1) * p.inner;
    Posterior {
        mean,
        sd: var.mapv(|v| (v / denom).sqrt()),
        report,
    }
}
