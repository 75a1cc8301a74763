#![warn(missing_docs)]
//! basin-phantom: numerical phantoms whose k-space is computed analytically (the continuous
//! Fourier transform of ellipses), smooth coil sensitivities, fastMRI-style sampling masks,
//! complex Gaussian noise with a coil covariance, and their ISMRMRD representation.
//!
//! Coil sensitivities are trigonometric polynomials s_c(r) = Σ c_pq e^{2πi(p x + q y)/4} (period
//! 4 on a field of view of [−1, 1]²), so the k-space of s_c·f is exactly Σ c_pq F(k − (p,q)/4):
//! the data are never produced by the discretisation that reconstructs them.

pub mod contrast;
pub mod ellipse;
pub mod files;
pub mod lesions;
pub mod mask;
pub mod realistic;
pub mod suite;

use basin_core::{C32, C64};
use basin_mrd::acquisition::{flags, Acquisition, AcquisitionHeader};
use basin_mrd::header::*;
use ellipse::{ellipse_ft, ellipse_value, Ellipse, BRAIN, SHEPP_LOGAN};
use ndarray::{Array2, Array3};
use rand::{Rng as _, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;
use std::f64::consts::PI;

pub use mask::{sampling_mask, MaskKind};

/// Which ellipse set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Modified Shepp–Logan.
    SheppLogan,
    /// Brain-like ellipses with lesions.
    Brain,
}

impl Kind {
    fn ellipses(self) -> &'static [Ellipse] {
        match self {
            Kind::SheppLogan => &SHEPP_LOGAN,
            Kind::Brain => &BRAIN,
        }
    }
}

/// What to simulate.
#[derive(Clone, Debug)]
pub struct PhantomSpec {
    /// Ellipse set.
    pub kind: Kind,
    /// Matrix size N (N×N).
    pub matrix: usize,
    /// Number of receive coils.
    pub coils: usize,
    /// Acceleration along phase encoding.
    pub accel: f64,
    /// Fraction of central lines always sampled.
    pub center_fraction: f64,
    /// Mask kind.
    pub mask: MaskKind,
    /// Noise standard deviation per complex sample, relative to the k-space centre magnitude of
    /// the object (0 = noise-free).
    pub noise: f64,
    /// Random seed (mask and noise).
    pub seed: u64,
}

/// Errors of basin-phantom.
#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    /// A parameter is out of range.
    #[error("invalid phantom parameter {name}: {message}")]
    Param {
        /// Parameter.
        name: &'static str,
        /// Why.
        message: String,
    },
}

/// A simulated acquisition with its ground truth.
#[derive(Clone, Debug)]
pub struct Phantom {
    /// Object values at pixel centres `[y, x]` (row 0 at the top, y up).
    pub truth: Array2<f32>,
    /// True coil sensitivities at pixel centres `[c, y, x]`.
    pub maps: Array3<C32>,
    /// Noise-free, fully sampled k-space `[c, y, x]`.
    pub kspace: Array3<C32>,
    /// Noisy k-space, zero where not sampled `[c, y, x]`.
    pub sampled: Array3<C32>,
    /// Sampled phase-encoding lines.
    pub lines: Vec<bool>,
    /// Lines of the fully sampled centre (calibration).
    pub acs: Vec<bool>,
    /// Noise scan `[c, 256]`.
    pub noise_scan: Array2<C32>,
    /// Noise covariance used (absolute).
    pub noise_cov: Array2<C64>,
}

/// Fourier-series order of the coil sensitivities.
const ORDER: i64 = 4;

/// Trigonometric-polynomial coefficients `[c][(2L+1)²]` of smooth, birdcage-like coil
/// sensitivities: coil c sits at angle 2πc/C outside the field of view.
pub fn coil_coefficients(coils: usize) -> Vec<Vec<C64>> {
    let g = 32usize; // samples per period (period 4 → spacing 1/8)
    (0..coils)
        .map(|c| {
            let th = 2.0 * PI * c as f64 / coils as f64;
            let (cx, cy) = (1.3 * th.cos(), 1.3 * th.sin());
            let target = |x: f64, y: f64| {
                let d2 = (x - cx).powi(2) + (y - cy).powi(2);
                let mag = (-d2 / (2.0 * 0.9 * 0.9)).exp()
                    * (PI * x / 4.0).cos().powi(2)
                    * (PI * y / 4.0).cos().powi(2);
                let ph =
                    th + 0.6 * (x * th.cos() + y * th.sin()) + 0.3 * (x * th.sin() - y * th.cos());
                C64::from_polar(mag, ph)
            };
            let mut coef = Vec::with_capacity(((2 * ORDER + 1) * (2 * ORDER + 1)) as usize);
            for q in -ORDER..=ORDER {
                for p in -ORDER..=ORDER {
                    let mut acc = C64::new(0.0, 0.0);
                    for b in 0..g {
                        for a in 0..g {
                            let x = -2.0 + 4.0 * a as f64 / g as f64;
                            let y = -2.0 + 4.0 * b as f64 / g as f64;
                            let ph = -2.0 * PI * (p as f64 * x + q as f64 * y) / 4.0;
                            acc += target(x, y) * C64::from_polar(1.0, ph);
                        }
                    }
                    coef.push(acc / (g * g) as f64);
                }
            }
            coef
        })
        .collect()
}

/// Evaluates a coil's trigonometric polynomial at (x, y). The exponential is separable,
/// e^{iπ(px + qy)/2} = e^{iπpx/2}·e^{iπqy/2}, so 2(2L + 1) sines and cosines serve all
/// (2L + 1)² terms (the benches and tests simulate hundreds of 512² maps; the per-term
/// `sincos` took 80 % of the lesion test's time).
pub fn coil_value(coef: &[C64], x: f64, y: f64) -> C64 {
    const W: usize = (2 * ORDER + 1) as usize;
    let mut ex = [C64::new(0.0, 0.0); W];
    let mut ey = [C64::new(0.0, 0.0); W];
    for (k, p) in (-ORDER..=ORDER).enumerate() {
        ex[k] = C64::from_polar(1.0, 2.0 * PI * p as f64 * x / 4.0);
        ey[k] = C64::from_polar(1.0, 2.0 * PI * p as f64 * y / 4.0);
    }
    let mut acc = C64::new(0.0, 0.0);
    for (row, eq) in coef.chunks_exact(W).zip(ey) {
        let mut inner = C64::new(0.0, 0.0);
        for (c, ep) in row.iter().zip(ex) {
            inner += c * ep;
        }
        acc += inner * eq;
    }
    acc
}

fn pixel_coords(n: usize, row: usize, col: usize) -> (f64, f64) {
    let d = 2.0 / n as f64;
    (
        (col as f64 - (n / 2) as f64) * d,
        ((n / 2) as f64 - row as f64) * d,
    )
}

/// Simulates the phantom.
pub fn generate(spec: &PhantomSpec) -> Result<Phantom, PhantomError> {
    let n = spec.matrix;
    if !(16..=1024).contains(&n) {
        return Err(PhantomError::Param {
            name: "matrix",
            message: format!("{n} is outside 16..=1024"),
        });
    }
    if !(1..=64).contains(&spec.coils) {
        return Err(PhantomError::Param {
            name: "coils",
            message: format!("{} is outside 1..=64", spec.coils),
        });
    }
    if !(spec.noise >= 0.0 && spec.noise.is_finite()) {
        return Err(PhantomError::Param {
            name: "noise",
            message: format!("{} must be ≥ 0", spec.noise),
        });
    }
    let set = spec.kind.ellipses();
    let coef = coil_coefficients(spec.coils);
    let l = ORDER;
    // Object FT on the half-spaced grid k = (u/4, v/4), u, v ∈ [−N−L, N+L].
    let half = n as i64 + l;
    let w = (2 * half + 1) as usize;
    let grid: Vec<C64> = (0..w * w)
        .into_par_iter()
        .map(|idx| {
            let v = (idx / w) as i64 - half;
            let u = (idx % w) as i64 - half;
            ellipse_ft(set, u as f64 / 4.0, v as f64 / 4.0)
        })
        .collect();
    let scale = n as f64 / 4.0;
    let mut kspace = Array3::<C32>::zeros((spec.coils, n, n));
    kspace
        .outer_iter_mut()
        .into_par_iter()
        .enumerate()
        .for_each(|(c, mut kc)| {
            for row in 0..n {
                let vn = -2 * (row as i64 - (n / 2) as i64);
                for col in 0..n {
                    let um = 2 * (col as i64 - (n / 2) as i64);
                    let mut acc = C64::new(0.0, 0.0);
                    let mut i = 0;
                    for q in -l..=l {
                        let vv = (vn - q + half) as usize;
                        for p in -l..=l {
                            let uu = (um - p + half) as usize;
                            acc += coef[c][i] * grid[vv * w + uu];
                            i += 1;
                        }
                    }
                    acc *= scale;
                    kc[[row, col]] = C32::new(acc.re as f32, acc.im as f32);
                }
            }
        });
    let truth = Array2::from_shape_fn((n, n), |(r, c)| {
        let (x, y) = pixel_coords(n, r, c);
        ellipse_value(set, x, y) as f32
    });
    let mut maps = Array3::<C32>::zeros((spec.coils, n, n));
    for c in 0..spec.coils {
        for r in 0..n {
            for col in 0..n {
                let (x, y) = pixel_coords(n, r, col);
                let v = coil_value(&coef[c], x, y);
                maps[[c, r, col]] = C32::new(v.re as f32, v.im as f32);
            }
        }
    }
    let (lines, acs) = sampling_mask(spec.mask, n, spec.accel, spec.center_fraction, spec.seed)
        .map_err(|m| PhantomError::Param {
            name: "accel/center-fraction",
            message: m,
        })?;

    // Noise: σ relative to the largest k-space magnitude, with a coil covariance that has
    // neighbour correlation 0.2 and a spread of coil noise levels.
    let peak = kspace.iter().fold(0.0f32, |m, v| m.max(v.norm())) as f64;
    let sigma = spec.noise * peak;
    let cn = spec.coils;
    let mut cov = Array2::<C64>::zeros((cn, cn));
    for i in 0..cn {
        for j in 0..cn {
            let d = (i as i64 - j as i64).unsigned_abs() as usize;
            let d = d.min(cn - d);
            let rho = match d {
                0 => 1.0,
                1 => 0.2,
                _ => 0.0,
            };
            let si = 1.0 + 0.1 * (i % 3) as f64;
            let sj = 1.0 + 0.1 * (j % 3) as f64;
            cov[[i, j]] = C64::new(rho * si * sj * sigma * sigma, 0.0);
        }
    }
    let chol = cholesky(&cov);
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed ^ 0x005E_ED0F_C0DE);
    let mut draw = |count: usize| -> Array2<C32> {
        let z = Array2::from_shape_fn((cn, count), |_| {
            let re: f64 = rng.sample(StandardNormal);
            let im: f64 = rng.sample(StandardNormal);
            C64::new(re, im) * std::f64::consts::FRAC_1_SQRT_2
        });
        Array2::from_shape_fn((cn, count), |(i, k)| {
            let mut acc = C64::new(0.0, 0.0);
            for j in 0..=i {
                acc += chol[[i, j]] * z[[j, k]];
            }
            C32::new(acc.re as f32, acc.im as f32)
        })
    };
    let noise_scan = draw(256);
    let mut sampled = Array3::<C32>::zeros((cn, n, n));
    for row in 0..n {
        if !lines[row] {
            continue;
        }
        let nz = draw(n);
        for c in 0..cn {
            for col in 0..n {
                sampled[[c, row, col]] = kspace[[c, row, col]] + nz[[c, col]];
            }
        }
    }
    Ok(Phantom {
        truth,
        maps,
        kspace,
        sampled,
        lines,
        acs,
        noise_scan,
        noise_cov: cov,
    })
}

/// Lower Cholesky factor of a small Hermitian positive semi-definite matrix (zero columns for a
/// zero matrix).
fn cholesky(a: &Array2<C64>) -> Array2<C64> {
    let n = a.shape()[0];
    let mut l = Array2::<C64>::zeros((n, n));
    for j in 0..n {
        let mut d = a[[j, j]].re;
        for k in 0..j {
            d -= l[[j, k]].norm_sqr();
        }
        let d = d.max(0.0).sqrt();
        l[[j, j]] = C64::new(d, 0.0);
        for i in j + 1..n {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]].conj();
            }
            l[[i, j]] = if d > 0.0 { s / d } else { C64::new(0.0, 0.0) };
        }
    }
    l
}

/// Field of view of phantom files (mm).
pub const FOV_MM: f64 = 240.0;
/// Dwell time of phantom acquisitions (µs).
pub const DWELL_US: f32 = 5.0;

/// What the ISMRMRD header of a simulated acquisition says about it.
#[derive(Clone, Debug)]
pub struct Description {
    /// Patient name (DICOM PN, e.g. `Phantom^brain`).
    pub patient_name: String,
    /// Patient ID.
    pub patient_id: String,
    /// Study description.
    pub study: String,
    /// Protocol name.
    pub protocol: String,
    /// System model.
    pub model: String,
}

/// The ISMRMRD header and acquisitions of a simulated Cartesian 2D multi-slice acquisition:
/// `kspace` `[c, z, y, x]` (zero on lines not acquired), the noise scan first (none when it is
/// all zero: noise-free data), then each slice's
/// acquired lines (the fully sampled centre flagged as calibration-and-imaging when
/// undersampled). Slices are axial, `fov_mm[2]` apart, centred on the isocentre.
pub fn acquisition_to_ismrmrd(
    d: &Description,
    kspace: ndarray::ArrayView4<'_, C32>,
    lines: &[bool],
    acs: &[bool],
    accel: f64,
    fov_mm: [f64; 3],
    noise_scan: &Array2<C32>,
) -> (IsmrmrdHeader, Vec<Acquisition>) {
    let (coils, nz, ny, nx) = kspace.dim();
    let space = EncodingSpace {
        matrixSize: MatrixSize {
            x: nx as u32,
            y: ny as u32,
            z: 1,
        },
        fieldOfView_mm: FieldOfView {
            x: fov_mm[0],
            y: fov_mm[1],
            z: fov_mm[2],
        },
    };
    let lim = |nmax: usize, c: usize| {
        Some(Limit {
            minimum: 0,
            maximum: nmax as u32,
            center: c as u32,
        })
    };
    let header = IsmrmrdHeader {
        version: Some(2),
        subjectInformation: Some(SubjectInformation {
            patientName: Some(d.patient_name.clone()),
            patientID: Some(d.patient_id.clone()),
            patientGender: Some("O".into()),
            ..Default::default()
        }),
        studyInformation: Some(StudyInformation {
            studyDescription: Some(d.study.clone()),
            ..Default::default()
        }),
        measurementInformation: Some(MeasurementInformation {
            patientPosition: Some("HFS".into()),
            protocolName: Some(d.protocol.clone()),
            ..Default::default()
        }),
        acquisitionSystemInformation: Some(AcquisitionSystemInformation {
            systemVendor: Some("basin".into()),
            systemModel: Some(d.model.clone()),
            systemFieldStrength_T: Some(3.0),
            receiverChannels: Some(coils as u32),
            ..Default::default()
        }),
        experimentalConditions: Some(ExperimentalConditions {
            H1resonanceFrequency_Hz: 127_728_000,
        }),
        encoding: vec![Encoding {
            encodedSpace: space,
            reconSpace: space,
            encodingLimits: EncodingLimits {
                kspace_encoding_step_1: lim(ny - 1, ny / 2),
                kspace_encoding_step_2: lim(0, 0),
                slice: lim(nz.max(1) - 1, nz / 2),
                ..Default::default()
            },
            trajectory: "cartesian".into(),
            parallelImaging: Some(ParallelImaging {
                accelerationFactor: AccelerationFactor {
                    kspace_encoding_step_1: accel.round().max(1.0) as u32,
                    kspace_encoding_step_2: 1,
                },
                calibrationMode: Some("embedded".into()),
                interleavingDimension: None,
            }),
            echoTrainLength: None,
        }],
        sequenceParameters: Some(SequenceParameters {
            TR: vec![500.0],
            TE: vec![10.0],
            flipAngle_deg: vec![90.0],
            ..Default::default()
        }),
        ..Default::default()
    };
    let base = AcquisitionHeader {
        version: 1,
        available_channels: coils as u16,
        sample_time_us: DWELL_US,
        read_dir: [1.0, 0.0, 0.0],
        phase_dir: [0.0, 1.0, 0.0],
        slice_dir: [0.0, 0.0, 1.0],
        ..Default::default()
    };
    let mut acqs = Vec::new();
    // Noise-free data has no noise to measure: an all-zero noise scan would only make
    // prewhitening fail, so none is written.
    if noise_scan.iter().any(|v| v.norm_sqr() > 0.0) {
        let mut noise = base;
        noise.set_flag(flags::IS_NOISE_MEASUREMENT);
        noise.scan_counter = 0;
        acqs.push(Acquisition {
            head: noise,
            traj: vec![],
            data: noise_scan.clone(),
        });
    }
    let sampled: Vec<usize> = (0..ny).filter(|&r| lines[r]).collect();
    let mut counter = 1u32;
    for z in 0..nz {
        let offset = (z as f64 - (nz as f64 - 1.0) / 2.0) * fov_mm[2];
        for (i, &row) in sampled.iter().enumerate() {
            let mut h = base;
            h.scan_counter = counter;
            counter += 1;
            h.center_sample = (nx / 2) as u16;
            h.idx.kspace_encode_step_1 = row as u16;
            h.idx.slice = z as u16;
            h.position = [0.0, 0.0, offset as f32];
            if i == 0 {
                h.set_flag(flags::FIRST_IN_SLICE);
            }
            if i + 1 == sampled.len() {
                h.set_flag(flags::LAST_IN_SLICE);
                if z + 1 == nz {
                    h.set_flag(flags::LAST_IN_MEASUREMENT);
                }
            }
            if acs[row] && accel > 1.0 {
                h.set_flag(flags::IS_PARALLEL_CALIBRATION_AND_IMAGING);
            }
            let data = kspace.slice(ndarray::s![.., z, row, ..]).to_owned();
            acqs.push(Acquisition {
                head: h,
                traj: vec![],
                data,
            });
        }
    }
    (header, acqs)
}

/// The ISMRMRD header and acquisitions (noise scan first, then the sampled lines; the fully
/// sampled centre flagged as calibration-and-imaging) of a simulated phantom.
pub fn to_ismrmrd(p: &Phantom, spec: &PhantomSpec) -> (IsmrmrdHeader, Vec<Acquisition>) {
    let name = match spec.kind {
        Kind::SheppLogan => "shepp-logan",
        Kind::Brain => "brain",
    };
    let d = Description {
        patient_name: format!("Phantom^{name}"),
        patient_id: format!("basin-{name}-{}", spec.seed),
        study: "basin numerical phantom".into(),
        protocol: format!("phantom {name} R{} {:?}", spec.accel, spec.mask),
        model: "analytic phantom".into(),
    };
    acquisition_to_ismrmrd(
        &d,
        p.sampled.view().insert_axis(ndarray::Axis(1)),
        &p.lines,
        &p.acs,
        spec.accel,
        [FOV_MM, FOV_MM, 5.0],
        &p.noise_scan,
    )
}
