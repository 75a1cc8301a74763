#![warn(missing_docs)]
//! basin-recon: from assembled k-space to images. Noise prewhitening, coil sensitivity
//! estimation, the solvers, the TOML `Protocol`, and the one pure function
//! `reconstruct(&Protocol, &KSpace) -> ReconResult` that every driver (CLI, server, benches) calls.

pub mod batch;
pub mod coils;
pub mod consistency;
pub mod cs;
pub mod ebm;
pub mod memory;
pub mod pipeline;
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
    /// Options or outputs that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// An input that is missing or invalid.
    #[error("{0}")]
    Input(String),
    /// The k-space could not be read.
    #[error(transparent)]
    Read(#[from] basin_mrd::MrdError),
    /// An output could not be written (or must not be).
    #[error(transparent)]
    Write(#[from] basin_export::ExportError),
    /// The device could not be opened (or this build has none).
    #[error("{0}")]
    Device(String),
}

#[cfg(feature = "gpu")]
impl From<basin_gpu::GpuError> for ReconError {
    fn from(e: basin_gpu::GpuError) -> Self {
        ReconError::Device(e.to_string())
    }
}

pub use basin_core::Backend;

/// A device the EBM solver runs on: a GPU ([`basin_gpu::Gpu`]) with the `gpu` feature.
#[cfg(feature = "gpu")]
pub use basin_gpu::Gpu as Device;

/// A device the EBM solver runs on: none in a build without the `gpu` feature (an uninhabited
/// type, so an `Option<&Device>` is always `None`).
#[cfg(not(feature = "gpu"))]
#[derive(Debug)]
pub enum Device {}

#[cfg(not(feature = "gpu"))]
impl Device {
    /// What the device is.
    pub fn description(&self) -> &str {
        match *self {}
    }
}

/// Per-bucket diagnostics.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Diagnostics {
    /// Data-consistency residual ‖Ax − y‖/‖y‖ on the sampled data.
    pub residual: f64,
    /// Solver iterations.
    pub iterations: usize,
    /// Wall time in seconds (calibration + solve; of a batched GPU solve, this slice's share).
    pub seconds: f64,
    /// Slices solved together in one device launch sequence (1 for a solve of its own).
    pub batch: usize,
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
    /// The data term of the posterior energy, ‖Ax − y‖² / σₙ² (the negative log-likelihood of
    /// complex Gaussian noise up to a constant; about M, the measured samples over all coils,
    /// for an image that explains the data down to the noise).
    pub data_energy: f64,
    /// The posterior energy the EBM solver minimises, data_energy + λ·energy (λ the protocol's
    /// prior weight; EBM solver only): lower is more probable given both the data and the
    /// prior. Only differences between images of the same data mean something.
    pub posterior_energy: Option<f64>,
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
    /// Seed of the first bucket's first sample (a bucket starts at `seed + 1000 o`, o its
    /// [`bucket_ordinal`]).
    pub seed: u64,
    /// Refuse, before any work, a reconstruction whose estimated peak resident memory
    /// ([`memory::estimate`]) is larger than this many bytes.
    pub max_memory: Option<u64>,
    /// Device memory, in bytes, one batched GPU solve may use (the EBM solver on a GPU solves
    /// as many slices at once as fit; [`DEFAULT_GPU_MEMORY`] when `None`).
    pub gpu_memory: Option<u64>,
}

/// Device memory a batched GPU solve uses by default: 4 GiB (about 50 slices of 256² with 8
/// coils), within any data-centre or workstation GPU.
pub const DEFAULT_GPU_MEMORY: u64 = 4 << 30;

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

    /// The estimated peak memory of reading the k-space file `path` ([`memory::read_estimate`]),
    /// checked before it is read; an error when it is past `max_memory`.
    pub fn check_read_memory(
        &self,
        path: &std::path::Path,
        group: Option<&str>,
    ) -> Result<u64, ReconError> {
        let need = memory::read_estimate(path, group)?;
        self.within_limit(need, || {
            format!(
                "{}: reading it needs about {} (estimated peak resident memory: 3 × the file's data, its decoded copy and the assembled k-space)",
                path.display(),
                memory::human(need)
            )
        })
    }

    /// The estimated peak memory of reconstructing `kspace` ([`memory::estimate`]); an error
    /// when it is past `max_memory`.
    pub fn check_memory(&self, protocol: &Protocol, kspace: &KSpace) -> Result<u64, ReconError> {
        let need = memory::estimate(protocol, kspace, self);
        tracing::info!(
            "estimated peak memory: {} (protocol {})",
            memory::human(need),
            protocol.name
        );
        self.within_limit(need, || {
            format!(
                "{}: reconstructing it with protocol {} needs about {} (estimated peak resident memory)",
                kspace.source.display(),
                protocol.name,
                memory::human(need)
            )
        })
    }

    /// `need` when `max_memory` allows it, else an input error: `what` (the run and its
    /// estimate), then the limit.
    fn within_limit(&self, need: u64, what: impl FnOnce() -> String) -> Result<u64, ReconError> {
        match self.max_memory {
            Some(max) if need > max => Err(ReconError::Input(format!(
                "{}, more than the limit of {} (--max-memory)",
                what(),
                memory::human(max)
            ))),
            _ => Ok(need),
        }
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
/// [`pipeline::Pipeline::device_for`]); the other solvers, 3D encoding and posterior sampling run on the
/// CPU. `options.samples` > 0 with a protocol other than EBM is an error. The prior is decoded
/// (and uploaded) once per call; a [`pipeline::Pipeline`] keeps it across calls.
pub fn reconstruct_on(
    protocol: &Protocol,
    kspace: &KSpace,
    device: Option<&Device>,
    options: &ReconOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ReconResult, ReconError> {
    reconstruct_with(
        protocol,
        kspace,
        device,
        &Priors::default(),
        options,
        progress,
    )
}

/// The prior in the forms the solvers use, each built once when first needed: the decoded
/// embedded model, its fast CPU form and its device form (behind a lock: one solve at a time
/// uses the device's buffers).
#[derive(Default)]
pub(crate) struct Priors {
    pyramid: std::sync::OnceLock<basin_prior::Pyramid>,
    cpu: std::sync::OnceLock<basin_prior::fast::FastPyramid>,
    #[cfg(feature = "gpu")]
    gpu: std::sync::Mutex<Option<basin_gpu::prior::GpuPrior>>,
}

impl Priors {
    fn pyramid(&self) -> Result<&basin_prior::Pyramid, ReconError> {
        if let Some(p) = self.pyramid.get() {
            return Ok(p);
        }
        let model = basin_prior::default_model()
            .map_err(|e| ReconError::Numerical {
                what: "the embedded prior".into(),
                message: e.to_string(),
            })?
            .0;
        Ok(self.pyramid.get_or_init(|| model))
    }

    /// The device form of the prior for `gpu`, uploaded on first use; the guard serialises
    /// the solves that use the device.
    #[cfg(feature = "gpu")]
    fn gpu_prior(
        &self,
        gpu: &basin_gpu::Gpu,
    ) -> Result<std::sync::MutexGuard<'_, Option<basin_gpu::prior::GpuPrior>>, ReconError> {
        let pyr = self.pyramid()?;
        let mut guard = self.gpu.lock().unwrap_or_else(|e| e.into_inner());
        guard.get_or_insert_with(|| basin_gpu::prior::GpuPrior::new(gpu, pyr));
        Ok(guard)
    }

    fn cpu(&self) -> Result<&basin_prior::fast::FastPyramid, ReconError> {
        let pyr = self.pyramid()?;
        Ok(self
            .cpu
            .get_or_init(|| basin_prior::fast::FastPyramid::new(pyr)))
    }
}

/// The noise prewhitening matrix for `kspace` under `protocol`: from the noise scan (scaled by
/// the ratio of the dwell times) when the protocol asks for prewhitening and there is one.
pub fn whitening_for(
    protocol: &Protocol,
    kspace: &KSpace,
) -> Result<Option<ndarray::Array2<basin_core::C64>>, ReconError> {
    match (&kspace.noise, protocol.prewhiten) {
        (Some(noise), true) if noise.shape()[1] > noise.shape()[0] => {
            let cov = prewhiten::noise_covariance(noise);
            let scale = if kspace.noise_dwell_us > 0.0 && kspace.data_dwell_us > 0.0 {
                (kspace.noise_dwell_us / kspace.data_dwell_us) as f64
            } else {
                1.0
            };
            Ok(Some(prewhiten::whitening_matrix(&cov, scale)?))
        }
        _ => Ok(None),
    }
}

/// The ordinal that seeds a bucket's random choices (L1's random shifts, posterior samples):
/// taken from its key, not its position in a file, so a bucket reconstructs the same whether
/// it comes from a file or alone from a stream (slice s of a one-contrast scan gets s).
pub fn bucket_ordinal(key: &BucketKey) -> u64 {
    key.slice as u64
        + 1024 * (key.contrast as u64 + 1024 * (key.repetition as u64 + 1024 * key.set as u64))
}

pub(crate) fn reconstruct_with(
    protocol: &Protocol,
    kspace: &KSpace,
    device: Option<&Device>,
    priors: &Priors,
    options: &ReconOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ReconResult, ReconError> {
    options.check(protocol)?;
    options.check_memory(protocol, kspace)?;
    if options.samples > 0 && device.is_some() {
        tracing::info!("posterior sampling runs on the CPU");
    }
    if let Some(g) = device {
        match (&protocol.solver, kspace.three_d) {
            (Solver::Ebm(_), false) => tracing::info!("EBM iterations run on {}", g.description()),
            (Solver::Ebm(_), true) => tracing::info!(
                "EBM iterations run on {} (3D encoding: one problem per slab)",
                g.description()
            ),
            _ => tracing::info!(
                "this protocol's solver runs on the CPU; the GPU is used by the EBM solver only"
            ),
        }
    }
    let whitening = whitening_for(protocol, kspace)?;
    #[cfg(feature = "gpu")]
    if let (Some(g), Solver::Ebm(p), false, 0) =
        (device, &protocol.solver, kspace.three_d, options.samples)
    {
        let slices = reconstruct_batched(
            protocol,
            p,
            kspace,
            g,
            priors,
            options,
            whitening.as_ref(),
            progress,
        )?;
        return Ok(ReconResult { slices });
    }
    let total = kspace.buckets.len();
    let mut slices = Vec::with_capacity(total);
    for (i, b) in kspace.buckets.iter().enumerate() {
        slices.push(reconstruct_bucket(
            protocol,
            b,
            kspace.three_d,
            whitening.as_ref(),
            device,
            priors,
            options,
        )?);
        progress(i + 1, total);
    }
    Ok(ReconResult { slices })
}

/// A failed device EBM solve (inputs the device solver refused) as the pipeline reports it.
#[cfg(feature = "gpu")]
fn gpu_ebm_error(e: basin_gpu::GpuError) -> ReconError {
    ReconError::Numerical {
        what: "GPU EBM".into(),
        message: e.to_string(),
    }
}

/// The EBM solver on a GPU for a whole 2D acquisition: buckets are prepared (prewhitening,
/// coil maps) on the CPU and solved in batches — as many slices per launch sequence as
/// [`ReconOptions::gpu_memory`] holds, each slice its own problem
/// ([`ebm::ebm_gpu_batch`]) — then finished one by one; the next batch is prepared while the
/// device solves the current one. The same images as slice-by-slice solves.
#[cfg(feature = "gpu")]
#[allow(clippy::too_many_arguments)]
fn reconstruct_batched(
    protocol: &Protocol,
    p: &ebm::EbmParams,
    kspace: &KSpace,
    gpu: &Device,
    priors: &Priors,
    options: &ReconOptions,
    whitening: Option<&ndarray::Array2<basin_core::C64>>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<SliceResult>, ReconError> {
    let guard = priors.gpu_prior(gpu)?;
    let prior = guard.as_ref().expect("gpu_prior fills it");
    let budget = options.gpu_memory.unwrap_or(DEFAULT_GPU_MEMORY);
    // A batch also holds host copies beyond the one-slice estimate of memory::estimate (each
    // slice's whitened data, the operator's maps, the stacked maps and k-space, the image):
    // under --max-memory, no more slices per batch than the headroom holds.
    let headroom = options
        .max_memory
        .map(|m| m.saturating_sub(memory::estimate(protocol, kspace, options)));
    // Batches of consecutive buckets of one coil count and matrix (a bucket's maps have its
    // data's shape), as many slices as the device budget — and under --max-memory the host
    // headroom, for two batches at once — holds.
    let buckets = &kspace.buckets;
    let mut batches: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut capacity, mut slices) = (0, 0);
    for (i, b) in buckets.iter().enumerate() {
        let (nc, nz, h, w) = b.data.dim();
        let stacks = batches.last().is_some_and(|r| {
            let (fc, _, fh, fw) = buckets[r.start].data.dim();
            (fc, fh, fw) == (nc, h, w) && slices + nz <= capacity
        });
        if stacks {
            let r = batches.last_mut().expect("stacks on a batch");
            r.end = i + 1;
            slices += nz;
        } else {
            capacity = basin_gpu::ebm::batch_capacity(gpu, prior, nc, h, w, budget);
            if let Some(room) = headroom {
                let per_slice = 5 * (32 * nc as u64 + 16) * (h * w) as u64 / 4;
                capacity = capacity.min((room / (2 * per_slice).max(1)).max(1) as usize);
            }
            batches.push(i..i + 1);
            slices = nz;
        }
    }
    // A batch's slices are prepared in parallel: on a many-core host the coil maps of a batch
    // then keep pace with the device's solve of the previous one.
    let prepare_all = |r: &std::ops::Range<usize>| -> Result<Vec<Prepared>, ReconError> {
        use rayon::prelude::*;
        buckets[r.clone()]
            .par_iter()
            .map(|b| prepare(protocol, b, false, whitening))
            .collect()
    };
    let solve_batch = |preps: &[Prepared]| {
        let t0 = Instant::now();
        let noise_std = whitening.map(|_| 1.0);
        let slices: Vec<ebm::GpuSlice> = preps
            .iter()
            .map(|prep| ebm::GpuSlice {
                op: &prep.op,
                kspace: &prep.data,
                noise_std,
            })
            .collect();
        // A device that cannot allocate a batch's buffers panics inside the runtime: say what
        // to change instead of aborting with a backtrace.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ebm::ebm_gpu_batch(gpu, prior, &slices, p)
        }))
        .map_err(|_| {
            ReconError::Device(format!(
                "{} failed while solving a batch of {} slices (out of device memory?); lower --gpu-memory (now {})",
                gpu.description(),
                slices.len(),
                memory::human(budget)
            ))
        })?;
        run.map(|(solved, _)| (solved, t0.elapsed().as_secs_f64()))
            .map_err(gpu_ebm_error)
    };
    let total = buckets.len();
    let mut out = Vec::with_capacity(total);
    let mut ready = match batches.first() {
        Some(r) => Some(prepare_all(r)?),
        None => None,
    };
    for (i, r) in batches.iter().enumerate() {
        let preps = ready
            .take()
            .expect("each batch is prepared before its solve");
        // The device solves this batch while the CPU prepares the next (coil maps dominate
        // the CPU's share).
        let (solved, next) = rayon::join(
            || solve_batch(&preps),
            || batches.get(i + 1).map(&prepare_all),
        );
        let (solved, seconds) = solved?;
        ready = next.transpose()?;
        let batch = preps.len();
        let share = seconds / batch as f64;
        tracing::debug!("GPU batch of {batch} slices: {seconds:.3} s");
        for ((b, prep), (img, rep)) in buckets[r.clone()].iter().zip(preps).zip(solved) {
            let solved = Solved {
                img,
                iterations: rep.iterations,
                energy: Some(rep.energy),
                uncertainty: None,
            };
            out.push(finish(protocol, b, whitening, prep, solved, share, batch));
            progress(out.len(), total);
        }
    }
    Ok(out)
}

/// Reconstructs one bucket: the work of [`reconstruct_on`] for one slice (or slab), with the
/// whitening matrix of [`whitening_for`] computed once for the whole acquisition.
pub(crate) fn reconstruct_bucket(
    protocol: &Protocol,
    b: &basin_mrd::Bucket,
    three_d: bool,
    whitening: Option<&ndarray::Array2<basin_core::C64>>,
    device: Option<&Device>,
    priors: &Priors,
    options: &ReconOptions,
) -> Result<SliceResult, ReconError> {
    if matches!(protocol.solver, Solver::ZeroFilled) {
        let t0 = Instant::now();
        // The root sum of squares of the unwhitened coil images is ρ‖s‖; of the whitened ones
        // it would be ρ‖W s‖, shaded by the noise covariance.
        let img = solvers::zero_filled_rss(&b.data, three_d);
        return Ok(SliceResult {
            key: b.key,
            image: img,
            maps: Array4::zeros((0, 0, 0, 0)),
            geometry: b.geometry,
            uncertainty: None,
            diagnostics: Diagnostics {
                residual: f64::NAN,
                iterations: 0,
                seconds: t0.elapsed().as_secs_f64(),
                batch: 1,
                acceleration: acceleration(&b.mask),
                prewhitened: whitening.is_some(),
                noise_std: f64::NAN,
                residual_over_noise: f64::NAN,
                energy: None,
                data_energy: f64::NAN,
                posterior_energy: None,
            },
        });
    }
    let prep = prepare(protocol, b, three_d, whitening)?;
    let t0 = Instant::now();
    let solved = solve(protocol, b, &prep, whitening, device, priors, options)?;
    Ok(finish(
        protocol,
        b,
        whitening,
        prep,
        solved,
        t0.elapsed().as_secs_f64(),
        1,
    ))
}

/// Acceleration of a sampling mask: all positions over sampled ones.
fn acceleration(mask: &ndarray::Array3<bool>) -> f64 {
    let sampled = mask.iter().filter(|&&m| m).count().max(1);
    mask.len() as f64 / sampled as f64
}

/// A bucket ready for its solve: the (prewhitened) data, the coil maps, the operator the
/// solvers run with and the factor k that brings their image back to ρ‖s‖.
pub(crate) struct Prepared {
    data: Array4<C32>,
    maps: Array4<C32>,
    op: Sense,
    k: f32,
    seconds: f64,
}

/// Prewhitening and coil maps of one bucket (every solver but zero-filling).
pub(crate) fn prepare(
    protocol: &Protocol,
    b: &basin_mrd::Bucket,
    three_d: bool,
    whitening: Option<&ndarray::Array2<basin_core::C64>>,
) -> Result<Prepared, ReconError> {
    let t0 = Instant::now();
    let mut data = b.data.clone();
    if let Some(w) = whitening {
        prewhiten::apply(w, &mut data);
    }
    // Maps from the unwhitened calibration data: unit norm in the original coil space, s/‖s‖,
    // whatever the noise covariance (calibrating whitened data gives W s/‖W s‖, an image
    // shaded by ‖W s‖/‖s‖, and measurably worse maps).
    let maps = coils::estimate(&protocol.calibration, &b.calib, &b.calib_mask, three_d)?;
    // On whitened data the solvers run with maps k·W s/‖s‖ (image ρ‖s‖/k) and the result is
    // scaled by k: the image is ρ‖s‖ in every iteration, whatever Ψ is.
    let (op_maps, k) = match whitening {
        Some(w) => prewhiten::whiten_maps(&maps, w),
        None => (maps.clone(), 1.0),
    };
    let op = Sense::new(op_maps, b.mask.clone(), three_d)?;
    Ok(Prepared {
        data,
        maps,
        op,
        k,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// What a solver returned for one bucket (in the operator's scale).
pub(crate) struct Solved {
    img: Array3<C32>,
    iterations: usize,
    energy: Option<f64>,
    uncertainty: Option<Array3<f32>>,
}

/// The protocol's solver on one prepared bucket.
fn solve(
    protocol: &Protocol,
    b: &basin_mrd::Bucket,
    prep: &Prepared,
    whitening: Option<&ndarray::Array2<basin_core::C64>>,
    device: Option<&Device>,
    priors: &Priors,
    options: &ReconOptions,
) -> Result<Solved, ReconError> {
    let ordinal = bucket_ordinal(&b.key);
    let (op, data) = (&prep.op, &prep.data);
    let mut energy = None;
    let mut uncertainty = None;
    let (img, iterations) = match &protocol.solver {
        Solver::AdjointSense => (solvers::adjoint_sense(op, data), 0),
        Solver::CgSense {
            iterations,
            tolerance,
            lambda,
            discrepancy,
            stall,
        } => {
            let stop_at = (*discrepancy > 0.0).then(|| {
                let sigma = if whitening.is_some() {
                    1.0
                } else {
                    ebm::estimate_noise(data, op.mask())
                };
                let m = op.mask().iter().filter(|&&m| m).count() * data.shape()[0];
                (discrepancy * sigma).powi(2) * m as f64
            });
            let stop = solvers::EarlyStop {
                residual_sq: stop_at,
                stall: *stall,
            };
            solvers::cg_sense_with(op, data, *lambda as f32, *tolerance, *iterations, &stop)
        }
        Solver::L1Wavelet(p) => cs::l1_wavelet(
            op,
            data,
            &cs::L1Params {
                seed: ordinal + 1,
                ..*p
            },
        ),
        Solver::Tv(p) => cs::tv(op, data, p),
        Solver::Ebm(p) => {
            let noise = whitening.map(|_| 1.0);
            let (img, rep) = match device {
                #[cfg(feature = "gpu")]
                Some(g) if options.samples == 0 => {
                    let gp = priors.gpu_prior(g)?;
                    let gp = gp.as_ref().expect("gpu_prior fills it");
                    let (img, rep, _) =
                        ebm::ebm_gpu(g, gp, op, data, p, noise).map_err(gpu_ebm_error)?;
                    (img, rep)
                }
                _ => {
                    let model = priors.cpu()?;
                    if options.samples > 0 {
                        let post = ebm::posterior(
                            op,
                            data,
                            model,
                            p,
                            noise,
                            options.samples,
                            options.seed.wrapping_add(1000 * ordinal),
                        );
                        uncertainty = Some(post.sd);
                        (post.mean, post.report)
                    } else {
                        ebm::ebm(op, data, model, p, noise)
                    }
                }
            };
            energy = Some(rep.energy);
            (img, rep.iterations)
        }
        Solver::ZeroFilled => unreachable!("zero-filling needs no maps and no solve"),
    };
    Ok(Solved {
        img,
        iterations,
        energy,
        uncertainty,
    })
}

/// The result of one bucket from its solve: the data residual and noise diagnostics, the image
/// brought back to ρ‖s‖. `solve_seconds` is the bucket's share of its solve, `batch` the slices
/// solved with it.
pub(crate) fn finish(
    protocol: &Protocol,
    b: &basin_mrd::Bucket,
    whitening: Option<&ndarray::Array2<basin_core::C64>>,
    prep: Prepared,
    solved: Solved,
    solve_seconds: f64,
    batch: usize,
) -> SliceResult {
    let t0 = Instant::now();
    let Prepared {
        data,
        maps,
        op,
        k,
        seconds: prep_seconds,
    } = prep;
    let Solved {
        img,
        iterations,
        energy,
        mut uncertainty,
    } = solved;
    let residual = solvers::dc_residual(&op, &img, &data);
    let noise_std = if whitening.is_some() {
        1.0
    } else {
        ebm::estimate_noise(&data, op.mask())
    };
    let measured = op.mask().iter().filter(|&&m| m).count() * data.shape()[0];
    let mut r = basin_core::linop::LinearOp::forward(&op, img.view().into_dyn());
    r -= &data.view().into_dyn();
    let rn = basin_core::linop::dot(r.view(), r.view()).re.sqrt();
    let residual_over_noise = rn / (noise_std * (measured as f64).sqrt()).max(1e-30);
    let data_energy = (rn / noise_std.max(1e-30)).powi(2);
    if let Some(sd) = uncertainty.as_mut() {
        sd.mapv_inplace(|v: f32| v * k);
    }
    SliceResult {
        key: b.key,
        image: img.mapv(|v| v * k),
        maps,
        geometry: b.geometry,
        uncertainty,
        diagnostics: Diagnostics {
            residual,
            iterations,
            seconds: prep_seconds + solve_seconds + t0.elapsed().as_secs_f64(),
            batch,
            acceleration: acceleration(&b.mask),
            prewhitened: whitening.is_some(),
            noise_std,
            residual_over_noise,
            energy,
            data_energy,
            posterior_energy: match (&protocol.solver, energy) {
                (Solver::Ebm(p), Some(e)) => Some(data_energy + p.prior_weight * e),
                _ => None,
            },
        },
    }
}
