#![warn(missing_docs)]
//! basin-recon: from assembled k-space to images. Noise prewhitening, coil sensitivity
//! estimation, the solvers, the TOML `Protocol`, and the one pure function
//! `reconstruct(&Protocol, &KSpace) -> ReconResult` that every driver (CLI, server, benches) calls.

pub mod coils;
pub mod cs;
pub mod ebm;
pub mod prewhiten;
pub mod protocol;
pub mod solvers;
pub mod tv;
pub mod wavelet;

pub use protocol::{Calibration, Protocol, Solver};

use basin_core::linop::Sense;
use basin_core::C32;
use basin_mrd::{BucketKey, KSpace, SliceGeometry};
use ndarray::{Array3, Array4};
use std::time::Instant;

/// Errors of basin-recon.
#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    /// The protocol is invalid.
    #[error("protocol {origin}: {message}")]
    Protocol {
        /// File or name.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// Coil calibration is impossible with these data.
    #[error("calibration: {0}")]
    Calibration(String),
    /// A numerical step failed.
    #[error("{what}: {message}")]
    Numerical {
        /// Step.
        what: String,
        /// Why.
        message: String,
    },
    /// An operator could not be built.
    #[error(transparent)]
    Core(#[from] basin_core::CoreError),
}

/// Per-bucket diagnostics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Diagnostics {
    /// Data-consistency residual ‖Ax − y‖/‖y‖ on the sampled data.
    pub residual: f64,
    /// Solver iterations.
    pub iterations: usize,
    /// Wall time in seconds (calibration + solve).
    pub seconds: f64,
    /// Effective acceleration (all positions / sampled positions).
    pub acceleration: f64,
    /// Whether noise prewhitening was applied.
    pub prewhitened: bool,
    /// Complex noise standard deviation per k-space sample: 1 after prewhitening with a noise
    /// scan, else estimated from the outer corners of the sampled k-space; NaN without coil maps.
    pub noise_std: f64,
    /// ‖Ax − y‖ / (σₙ √M) over the M measured samples: ≈ 1 when the image explains the data
    /// down to the noise, ≪ 1 when it fits the noise, ≫ 1 when it ignores the data.
    pub residual_over_noise: f64,
    /// The prior's energy of the final image (EBM solver only; p99 = 1 convention).
    pub energy: Option<f64>,
}

/// The reconstruction of one bucket.
#[derive(Clone, Debug)]
pub struct SliceResult {
    /// Which bucket.
    pub key: BucketKey,
    /// Complex image `[z, y, x]`: ρ‖s‖ in the data's units, with or without prewhitening.
    pub image: Array3<C32>,
    /// Coil maps `[c, z, y, x]` in the original coil space, unit norm where the object is
    /// (empty for zero-filled).
    pub maps: Array4<C32>,
    /// Geometry of the bucket.
    pub geometry: SliceGeometry,
    /// Per-pixel standard deviation of the magnitude over the posterior samples `[z, y, x]`
    /// (data scale), when [`ReconOptions::samples`] asked for them.
    pub uncertainty: Option<Array3<f32>>,
    /// Diagnostics.
    pub diagnostics: Diagnostics,
}

/// What a reconstruction does beyond its protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconOptions {
    /// Posterior samples per bucket (EBM protocols only; 0: none). With N ≥ 2 the image is the
    /// samples' mean and [`SliceResult::uncertainty`] their per-pixel standard deviation
    /// ([`ebm::posterior`]). Sampling runs on the CPU.
    pub samples: usize,
    /// Seed of the first bucket's first sample (bucket i starts at `seed + 1000 i`).
    pub seed: u64,
}

impl ReconOptions {
    /// Whether these options fit `protocol`: posterior samples need an EBM protocol. Checked by
    /// [`reconstruct_on`]; callers may check earlier, before reading their data.
    pub fn check(&self, protocol: &Protocol) -> Result<(), ReconError> {
        if self.samples > 0 && !matches!(protocol.solver, Solver::Ebm(_)) {
            return Err(ReconError::Protocol {
                origin: protocol.name.clone(),
                message: "posterior samples need an EBM protocol (solver kind = \"ebm\")".into(),
            });
        }
        Ok(())
    }
}

/// The result of a reconstruction.
#[derive(Clone, Debug)]
pub struct ReconResult {
    /// One entry per bucket, in bucket order.
    pub slices: Vec<SliceResult>,
}

/// Reconstructs every bucket of `kspace` with `protocol`.
pub fn reconstruct(protocol: &Protocol, kspace: &KSpace) -> Result<ReconResult, ReconError> {
    reconstruct_with_progress(protocol, kspace, &|_, _| {})
}

/// As [`reconstruct`], calling `progress(done, total)` after each bucket.
pub fn reconstruct_with_progress(
    protocol: &Protocol,
    kspace: &KSpace,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ReconResult, ReconError> {
    reconstruct_on(protocol, kspace, None, &ReconOptions::default(), progress)
}

/// As [`reconstruct_with_progress`], running the EBM solver on `device` when given (see
/// [`basin_gpu::Gpu::open`]); the other solvers, 3D encoding and posterior sampling run on the
/// CPU. `options.samples` > 0 with a protocol other than EBM is an error.
pub fn reconstruct_on(
    protocol: &Protocol,
    kspace: &KSpace,
    device: Option<&basin_gpu::Gpu>,
    options: &ReconOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ReconResult, ReconError> {
    options.check(protocol)?;
    if options.samples > 0 && device.is_some() {
        tracing::info!("posterior sampling runs on the CPU");
    }
    if let Some(g) = device {
        match (&protocol.solver, kspace.three_d) {
            (Solver::Ebm(_), false) => tracing::info!("EBM iterations run on {}", g.description()),
            (Solver::Ebm(_), true) => {
                tracing::warn!("3D encoding: the GPU solver is 2D only; running on the CPU")
            }
            _ => tracing::info!(
                "this protocol's solver runs on the CPU; the GPU is used by the EBM solver only"
            ),
        }
    }
    let device = device.filter(|_| !kspace.three_d);
    let mut gpu_prior: Option<basin_gpu::prior::GpuPrior> = None;
    let whitening = match (&kspace.noise, protocol.prewhiten) {
        (Some(noise), true) if noise.shape()[1] > noise.shape()[0] => {
            let cov = prewhiten::noise_covariance(noise);
            let scale = if kspace.noise_dwell_us > 0.0 && kspace.data_dwell_us > 0.0 {
                (kspace.noise_dwell_us / kspace.data_dwell_us) as f64
            } else {
                1.0
            };
            Some(prewhiten::whitening_matrix(&cov, scale)?)
        }
        _ => None,
    };
    let total = kspace.buckets.len();
    let mut slices = Vec::with_capacity(total);
    // The embedded prior, decoded once, and its CPU or device form, built once when first used.
    let mut pyramid: Option<basin_prior::Pyramid> = None;
    let mut cpu_prior: Option<basin_prior::fast::FastPyramid> = None;
    for (i, b) in kspace.buckets.iter().enumerate() {
        let t0 = Instant::now();
        let mut data = b.data.clone();
        if let Some(w) = &whitening {
            prewhiten::apply(w, &mut data);
        }
        let sampled = b.mask.iter().filter(|&&m| m).count().max(1);
        let acceleration = b.mask.len() as f64 / sampled as f64;
        let mut energy = None;
        let mut uncertainty = None;
        let mut noise_std = f64::NAN;
        let mut residual_over_noise = f64::NAN;
        let (image, maps, iterations, residual) = match &protocol.solver {
            Solver::ZeroFilled => {
                // The root sum of squares of the unwhitened coil images is ρ‖s‖; of the
                // whitened ones it would be ρ‖W s‖, shaded by the noise covariance.
                let img = solvers::zero_filled_rss(&b.data, kspace.three_d);
                (img, Array4::zeros((0, 0, 0, 0)), 0, f64::NAN)
            }
            solver => {
                // Maps from the unwhitened calibration data: unit norm in the original coil
                // space, s/‖s‖, whatever the noise covariance (calibrating whitened data gives
                // W s/‖W s‖, an image shaded by ‖W s‖/‖s‖, and measurably worse maps).
                let maps = coils::estimate(
                    &protocol.calibration,
                    &b.calib,
                    &b.calib_mask,
                    kspace.three_d,
                )?;
                // On whitened data the solvers run with maps k·W s/‖s‖ (image ρ‖s‖/k) and the
                // result is scaled by k: the image is ρ‖s‖ in every iteration, whatever Ψ is.
                let (op_maps, k) = match &whitening {
                    Some(w) => prewhiten::whiten_maps(&maps, w),
                    None => (maps.clone(), 1.0),
                };
                let op = Sense::new(op_maps, b.mask.clone(), kspace.three_d)?;
                let (img, it) = match solver {
                    Solver::AdjointSense => (solvers::adjoint_sense(&op, &data), 0),
                    Solver::CgSense {
                        iterations,
                        tolerance,
                        lambda,
                        discrepancy,
                    } => {
                        let stop_at = (*discrepancy > 0.0).then(|| {
                            let sigma = if whitening.is_some() {
                                1.0
                            } else {
                                ebm::estimate_noise(&data, op.mask())
                            };
                            let m = op.mask().iter().filter(|&&m| m).count() * data.shape()[0];
                            (discrepancy * sigma).powi(2) * m as f64
                        });
                        solvers::cg_sense(
                            &op,
                            &data,
                            *lambda as f32,
                            *tolerance,
                            *iterations,
                            stop_at,
                        )
                    }
                    Solver::L1Wavelet(p) => cs::l1_wavelet(
                        &op,
                        &data,
                        &cs::L1Params {
                            seed: i as u64 + 1,
                            ..*p
                        },
                    ),
                    Solver::Tv(p) => cs::tv(&op, &data, p),
                    Solver::Ebm(p) => {
                        let pyr = match pyramid {
                            Some(ref m) => m,
                            None => pyramid.insert(
                                basin_prior::default_model()
                                    .map_err(|e| ReconError::Numerical {
                                        what: "the embedded prior".into(),
                                        message: e.to_string(),
                                    })?
                                    .0,
                            ),
                        };
                        let noise = whitening.as_ref().map(|_| 1.0);
                        let (img, rep) = match device {
                            Some(g) if options.samples == 0 => {
                                let gp = gpu_prior
                                    .get_or_insert_with(|| basin_gpu::prior::GpuPrior::new(g, pyr));
                                let (img, rep, _) = ebm::ebm_gpu(g, gp, &op, &data, p, noise)
                                    .map_err(|e| ReconError::Numerical {
                                        what: "GPU EBM".into(),
                                        message: e.to_string(),
                                    })?;
                                (img, rep)
                            }
                            _ => {
                                let model = cpu_prior.get_or_insert_with(|| {
                                    basin_prior::fast::FastPyramid::new(pyr)
                                });
                                if options.samples > 0 {
                                    let post = ebm::posterior(
                                        &op,
                                        &data,
                                        model,
                                        p,
                                        noise,
                                        options.samples,
                                        options.seed.wrapping_add(1000 * i as u64),
                                    );
                                    uncertainty = Some(post.sd);
                                    (post.mean, post.report)
                                } else {
                                    ebm::ebm(&op, &data, model, p, noise)
                                }
                            }
                        };
                        energy = Some(rep.energy);
                        (img, rep.iterations)
                    }
                    Solver::ZeroFilled => unreachable!("handled above"),
                };
                let res = solvers::dc_residual(&op, &img, &data);
                noise_std = if whitening.is_some() {
                    1.0
                } else {
                    ebm::estimate_noise(&data, op.mask())
                };
                let measured = op.mask().iter().filter(|&&m| m).count() * data.shape()[0];
                let mut r = basin_core::linop::LinearOp::forward(&op, img.view().into_dyn());
                r -= &data.view().into_dyn();
                let rn = basin_core::linop::dot(r.view(), r.view()).re.sqrt();
                residual_over_noise = rn / (noise_std * (measured as f64).sqrt()).max(1e-30);
                if let Some(sd) = uncertainty.as_mut() {
                    sd.mapv_inplace(|v: f32| v * k);
                }
                (img.mapv(|v| v * k), maps, it, res)
            }
        };
        slices.push(SliceResult {
            key: b.key,
            image,
            maps,
            geometry: b.geometry,
            uncertainty,
            diagnostics: Diagnostics {
                residual,
                iterations,
                seconds: t0.elapsed().as_secs_f64(),
                acceleration,
                prewhitened: whitening.is_some(),
                noise_std,
                residual_over_noise,
                energy,
            },
        });
        progress(i + 1, total);
    }
    Ok(ReconResult { slices })
}
