//! Reconstruction protocols: a TOML file names the calibration method, the solver and its
//! parameters. Unknown keys are errors. The shipped protocols are embedded in the library so an
//! installed binary resolves them by name anywhere.

use crate::coils::EspiritParams;
use crate::ReconError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A complete reconstruction protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// Short name (e.g. "sense").
    pub name: String,
    /// One line for humans and for series descriptions.
    #[serde(default)]
    pub description: String,
    /// Noise prewhitening from the noise scan when the file has one.
    #[serde(default = "yes")]
    pub prewhiten: bool,
    /// Coil sensitivity estimation.
    #[serde(default)]
    pub calibration: Calibration,
    /// The solver.
    pub solver: Solver,
    /// What a streamed reconstruction (`basin serve`) sends back.
    #[serde(default, skip_serializing_if = "Output::is_default")]
    pub output: Output,
}

/// `[output]`: what `basin serve` sends back for each slice (files choose with `basin recon`'s
/// options instead).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Pixel type of the images: "float" (float32 magnitude, the default) or "ushort"
    /// (unsigned 16-bit using 12 bits: each slice scaled so its largest value is 4095, as basin's
    /// DICOM series; the factor back to float is in the MetaAttributes as `BasinScale`). The
    /// maps are signed quantities and stay float32.
    #[serde(default)]
    pub pixels: Pixels,
    /// Also send the prior's per-pixel energy density (as `basin recon --energy-map`) as image
    /// series 2. EBM protocols only.
    #[serde(default)]
    pub energy_map: bool,
    /// Posterior samples per slice (≥ 2; 0 = none): the image is their mean and their per-pixel
    /// standard deviation (as `basin recon --samples N --uncertainty`) goes back as image
    /// series 3. EBM protocols only; sampling runs on the CPU.
    #[serde(default)]
    pub uncertainty_samples: usize,
}

impl Output {
    fn is_default(&self) -> bool {
        *self == Output::default()
    }
}

/// Pixel type of streamed images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pixels {
    /// float32 magnitude.
    #[default]
    Float,
    /// unsigned 16-bit (12 bits used).
    Ushort,
}

fn yes() -> bool {
    true
}

/// Coil sensitivity method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Calibration {
    /// ESPIRiT (BART `ecalib -m1`).
    Espirit(EspiritParams),
    /// Walsh/Inati with a square window.
    Walsh {
        /// Window width in pixels.
        #[serde(default = "d_window")]
        window: usize,
    },
}

fn d_window() -> usize {
    7
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration::Espirit(EspiritParams::default())
    }
}

/// Solver and parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Solver {
    /// Root-sum-of-squares of zero-filled coil images (no coil maps needed).
    ZeroFilled,
    /// Σ conj(s_c) x_c / Σ |s_c|².
    AdjointSense,
    /// Conjugate gradients on the SENSE normal equations.
    CgSense {
        /// Iteration cap.
        #[serde(default = "d_iter")]
        iterations: usize,
        /// Stop when ‖r‖/‖b‖ falls below this.
        #[serde(default = "d_tol")]
        tolerance: f64,
        /// Tikhonov weight λ, relative to the largest eigenvalue scale of AᴴA (≈ 1 for
        /// normalised maps).
        #[serde(default)]
        lambda: f64,
        /// Morozov's discrepancy principle: stop once ‖A x − y‖ ≤ τ σ √m (σ the noise level,
        /// m the measured samples), before CG fits the noise; 0 turns it off.
        #[serde(default)]
        discrepancy: f64,
        /// Stop once an iteration lowers ‖A x − y‖² by less than this fraction of it; 0 turns
        /// it off (see [`crate::solvers::EarlyStop::stall`]).
        #[serde(default)]
        stall: f64,
    },
    /// L1-wavelet compressed sensing (FISTA, Daubechies-2, random shifts), see [`crate::cs`].
    L1Wavelet(crate::cs::L1Params),
    /// The learned energy prior with data consistency (half-quadratic splitting), see
    /// [`crate::ebm`]; uses the embedded default prior.
    Ebm(crate::ebm::EbmParams),
    /// Total-variation compressed sensing (Condat–Vũ primal–dual), see [`crate::cs`].
    Tv(crate::cs::TvParams),
}

fn d_iter() -> usize {
    30
}
fn d_tol() -> f64 {
    1e-4
}

/// The most prior steps (levels × inner) an EBM protocol may ask for per slice: about 33× the
/// default protocol, minutes per 256² slice on a laptop CPU.
pub const MAX_EBM_PRIOR_STEPS: usize = 1000;
/// The most CG steps (levels × inner × cg_iterations + init_iterations) per slice.
pub const MAX_EBM_CG_STEPS: usize = 20_000;

fn check_cs(lambda: f64, iterations: usize) -> Result<(), String> {
    if iterations == 0 || iterations > 10_000 {
        return Err(format!(
            "solver.iterations = {iterations} must be in 1..=10000"
        ));
    }
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(format!("solver.lambda = {lambda} must be finite and ≥ 0"));
    }
    Ok(())
}

/// The protocols shipped with basin: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("sense", include_str!("../../../protocols/sense.toml")),
    (
        "zero-filled",
        include_str!("../../../protocols/zero-filled.toml"),
    ),
    (
        "cs-l1-wavelet",
        include_str!("../../../protocols/cs-l1-wavelet.toml"),
    ),
    ("cs-tv", include_str!("../../../protocols/cs-tv.toml")),
    (
        "brain-2d-ebm",
        include_str!("../../../protocols/brain-2d-ebm.toml"),
    ),
    (
        "brain-2d-ebm-weak-prior",
        include_str!("../../../protocols/brain-2d-ebm-weak-prior.toml"),
    ),
];

/// The protocol `basin recon` uses when none is given: the learned energy prior (issue 5:
/// better than CS at 4× and 8× on the validation cases, lesions kept at least as well as by
/// L1-wavelet; `benches/RESULTS.md`).
pub const DEFAULT_PROTOCOL: &str = "brain-2d-ebm";

impl Protocol {
    /// Parses TOML text; `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ReconError> {
        let p: Protocol = toml::from_str(text).map_err(|e| ReconError::Protocol {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        p.validate(origin)?;
        Ok(p)
    }

    /// Checks value ranges.
    pub fn validate(&self, origin: &str) -> Result<(), ReconError> {
        let bad = |m: String| {
            Err(ReconError::Protocol {
                origin: origin.to_string(),
                message: m,
            })
        };
        if let Calibration::Espirit(e) = &self.calibration {
            if !(2..=12).contains(&e.kernel) {
                return bad(format!(
                    "calibration.kernel = {} must be in 2..=12",
                    e.kernel
                ));
            }
            if e.calib_size < e.kernel + 2 {
                return bad(format!(
                    "calibration.calib_size = {} must be at least kernel + 2",
                    e.calib_size
                ));
            }
            if !(0.0..1.0).contains(&e.threshold) || !(0.0..=1.0).contains(&e.crop) {
                return bad(
                    "calibration.threshold must be in [0, 1) and calibration.crop in [0, 1]".into(),
                );
            }
        }
        if let Calibration::Walsh { window } = &self.calibration {
            if !(1..=31).contains(window) {
                return bad(format!("calibration.window = {window} must be in 1..=31"));
            }
        }
        if let Solver::CgSense {
            iterations,
            tolerance,
            lambda,
            discrepancy,
            stall,
        } = &self.solver
        {
            if !(discrepancy.is_finite() && (*discrepancy == 0.0 || *discrepancy >= 0.5)) {
                return bad(format!(
                    "solver.discrepancy = {discrepancy} must be 0 (off) or at least 0.5"
                ));
            }
            if !(stall.is_finite() && (0.0..0.5).contains(stall)) {
                return bad(format!(
                    "solver.stall = {stall} must be 0 (off) or a fraction below 0.5"
                ));
            }
            if *iterations == 0 || *iterations > 10_000 {
                return bad(format!(
                    "solver.iterations = {iterations} must be in 1..=10000"
                ));
            }
            if !(tolerance.is_finite() && *tolerance >= 0.0 && lambda.is_finite() && *lambda >= 0.0)
            {
                return bad("solver.tolerance and solver.lambda must be ≥ 0".into());
            }
        }
        let ebm = matches!(self.solver, Solver::Ebm(_));
        if (self.output.energy_map || self.output.uncertainty_samples > 0) && !ebm {
            return bad(
                "output.energy_map and output.uncertainty_samples need an EBM protocol (solver kind = \"ebm\")"
                    .into(),
            );
        }
        if self.output.uncertainty_samples == 1 || self.output.uncertainty_samples > 64 {
            return bad(format!(
                "output.uncertainty_samples = {} must be 0 (none) or in 2..=64",
                self.output.uncertainty_samples
            ));
        }
        match &self.solver {
            Solver::L1Wavelet(p) => {
                if !(1..=10).contains(&p.levels) {
                    return bad(format!("solver.levels = {} must be in 1..=10", p.levels));
                }
                check_cs(p.lambda as f64, p.iterations).or_else(&bad)?;
                if !(p.tikhonov.is_finite() && p.tikhonov >= 0.0) {
                    return bad(format!(
                        "solver.tikhonov = {} must be a finite value ≥ 0",
                        p.tikhonov
                    ));
                }
                if !(p.stall.is_finite() && (0.0..0.5).contains(&p.stall)) {
                    return bad(format!(
                        "solver.stall = {} must be 0 (off) or a fraction below 0.5",
                        p.stall
                    ));
                }
            }
            Solver::Tv(p) => check_cs(p.lambda as f64, p.iterations).or_else(&bad)?,
            Solver::Ebm(p) => {
                if !(p.sigma_min.is_finite()
                    && p.sigma_min > 0.0
                    && p.sigma_max >= p.sigma_min
                    && p.sigma_max.is_finite())
                {
                    return bad(
                        "solver.sigma_min and solver.sigma_max need 0 < sigma_min ≤ sigma_max"
                            .into(),
                    );
                }
                if !(p.prior_weight.is_finite() && p.prior_weight > 0.0) {
                    return bad("solver.prior_weight needs a finite value > 0".into());
                }
                for (name, v) in [
                    ("levels", p.levels),
                    ("inner", p.inner),
                    ("cg_iterations", p.cg_iterations),
                    ("init_iterations", p.init_iterations),
                ] {
                    if !(1..=1000).contains(&v) {
                        return bad(format!("solver.{name} = {v} must be in 1..=1000"));
                    }
                }
                // Each parameter may be in range while their product runs for days.
                let steps = p.levels * p.inner;
                let cg = steps * p.cg_iterations + p.init_iterations;
                if steps > MAX_EBM_PRIOR_STEPS || cg > MAX_EBM_CG_STEPS {
                    return bad(format!(
                        "solver: levels × inner = {steps} prior steps and levels × inner × cg_iterations + init_iterations = {cg} CG steps per slice; the limits are {MAX_EBM_PRIOR_STEPS} and {MAX_EBM_CG_STEPS} (the default protocol takes 30 and 160)"
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Resolves `name_or_path` (see [`Protocol::locate`]) to the protocol alone.
    pub fn resolve(name_or_path: &str, search_dir: Option<&Path>) -> Result<Self, ReconError> {
        Self::locate(name_or_path, search_dir).map(|(p, _)| p)
    }

    /// Whether `name` is a built-in protocol's name (which always means the built-in one).
    pub fn is_builtin(name: &str) -> bool {
        BUILTIN.iter().any(|(n, _)| *n == name)
    }

    /// Resolves `name_or_path` and says where it came from ("built-in" or the file's path).
    /// A built-in name always means the built-in protocol — a `sense.toml` lying in the
    /// working directory or in `search_dir` never replaces it silently; any other name is a
    /// TOML file's path, else `search_dir/NAME.toml` (the server's `--protocols DIR`).
    pub fn locate(
        name_or_path: &str,
        search_dir: Option<&Path>,
    ) -> Result<(Self, String), ReconError> {
        if let Some((n, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            let p = Self::from_toml(text, &format!("built-in protocol '{n}'"))?;
            return Ok((p, "built-in".into()));
        }
        let read = |f: &Path| -> Result<(Self, String), ReconError> {
            let text = std::fs::read_to_string(f).map_err(|e| ReconError::Protocol {
                origin: f.display().to_string(),
                message: e.to_string(),
            })?;
            let origin = f.display().to_string();
            Ok((Self::from_toml(&text, &origin)?, origin))
        };
        let p = Path::new(name_or_path);
        if p.is_file() {
            return read(p);
        }
        if let Some(dir) = search_dir {
            let f = dir.join(format!("{name_or_path}.toml"));
            if f.is_file() {
                return read(&f);
            }
        }
        Err(ReconError::Protocol {
            origin: name_or_path.to_string(),
            message: format!(
                "no such file and no built-in protocol of that name (built-in: {})",
                BUILTIN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}
