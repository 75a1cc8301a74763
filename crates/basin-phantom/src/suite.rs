//! `basin phantom --suite DIR`: a standard, seeded dataset for research comparisons
//! (`basin compare`). Every case is `NAME.h5` with `NAME_truth.nii.gz` (the reference on basin's
//! output grid), `NAME_maps.nii.gz` and `NAME.json`; `suite.json` describes every case.
//!
//! Cases, at each acceleration setting (default 4× equispaced with 8 % centre, 8× random with
//! 4 % centre):
//! - the analytic phantoms (modified Shepp–Logan, brain ellipses) with analytic k-space;
//! - the brain-ellipse image through the realistic simulator (2× off-grid, smooth phase,
//!   birdcage coils, a receive-array noise covariance with a noise scan, SNR 50), without and
//!   with small lesions;
//! - each given anatomy slice (validation anatomy: MNI152, S1, a user's images; as acquired or
//!   turned into another contrast by [`crate::contrast`]) through the realistic simulator, and
//!   the first slice of each anatomy with lesions too.

use crate::files::{phantom_to_files, simulate_to_files, FilesError, SimFiles, Source};
use crate::mask::MaskKind;
use crate::realistic::RealisticSpec;
use crate::{Kind, PhantomError, PhantomSpec};
use ndarray::{s, Array3, Axis};
use std::path::Path;

/// An acceleration setting: R, mask family and fully sampled centre fraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    /// Acceleration.
    pub accel: f64,
    /// Mask family.
    pub mask: MaskKind,
    /// Centre fraction.
    pub center_fraction: f64,
}

impl Setting {
    /// The fastMRI settings: 4× equispaced with 8 % centre, 8× random with 4 % centre.
    pub fn fastmri() -> Vec<Setting> {
        vec![
            Setting {
                accel: 4.0,
                mask: MaskKind::Equispaced,
                center_fraction: 0.08,
            },
            Setting {
                accel: 8.0,
                mask: MaskKind::Random,
                center_fraction: 0.04,
            },
        ]
    }

    fn label(&self) -> String {
        format!("{}x", self.accel)
    }
}

/// Anatomy to simulate: axial slices of an image.
#[derive(Clone, Debug)]
pub struct Anatomy {
    /// Short name used in case names (letters, digits, `-`).
    pub name: String,
    /// Where it came from (a path), for the record.
    pub source: String,
    /// The image `[z, y, x]` (anterior up), from `basin_export::nifti_in::read_axial` (already
    /// turned into `contrast` when that is set).
    pub image: Array3<f32>,
    /// The contrast synthesised from the source (a T1-weighted head) into `image`
    /// ([`crate::contrast::synthesize`]), recorded in each case's JSON; `None`: the image as read.
    pub contrast: Option<crate::contrast::ContrastSpec>,
    /// Voxel size (x, y, z) in mm.
    pub spacing: [f64; 3],
    /// Slices of `image` to simulate (one case each).
    pub slices: Vec<usize>,
}

/// Which anatomy slices of a suite also get a copy with lesions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LesionSlices {
    /// The first slice of each anatomy.
    #[default]
    First,
    /// Every slice (for lesion studies).
    All,
}

/// What the suite holds.
#[derive(Clone, Debug)]
pub struct SuiteSpec {
    /// Matrix of the analytic phantoms and of the brain-ellipse image (N×N).
    pub matrix: usize,
    /// Receive coils.
    pub coils: usize,
    /// SNR of the realistic cases.
    pub snr: f64,
    /// Lesions per slice of the lesion cases.
    pub lesions: usize,
    /// Which anatomy slices also get a lesion case (the brain-ellipse image always does when
    /// `lesions` > 0).
    pub lesion_slices: LesionSlices,
    /// Acceleration settings.
    pub settings: Vec<Setting>,
    /// Anatomy beyond the built-in brain ellipses.
    pub anatomy: Vec<Anatomy>,
    /// Seed of the first case (case i uses seed + i).
    pub seed: u64,
}

impl Default for SuiteSpec {
    fn default() -> Self {
        SuiteSpec {
            matrix: 256,
            coils: 8,
            snr: 50.0,
            lesions: 4,
            lesion_slices: LesionSlices::First,
            settings: Setting::fastmri(),
            anatomy: Vec::new(),
            seed: 1,
        }
    }
}

/// One case of a suite.
#[derive(Clone, Debug)]
pub struct SuiteCase {
    /// File stem.
    pub name: String,
    /// How it is simulated.
    pub what: What,
    /// Acceleration setting.
    pub setting: Setting,
    /// Lesions per slice.
    pub lesions: usize,
    /// Seed.
    pub seed: u64,
}

/// How a case is simulated.
#[derive(Clone, Debug)]
pub enum What {
    /// An analytic phantom.
    Analytic(Kind),
    /// The built-in brain-ellipse image through the realistic simulator.
    Ellipses,
    /// Slice `.1` of anatomy `.0` (an index into [`SuiteSpec::anatomy`]) through the realistic
    /// simulator.
    Anatomy(usize, usize),
}

/// The cases of `spec`, in the order they are written.
pub fn plan(spec: &SuiteSpec) -> Vec<SuiteCase> {
    let mut out = Vec::new();
    let mut push = |name: String, what: What, setting: Setting, lesions: usize| {
        let seed = spec.seed + out.len() as u64;
        out.push(SuiteCase {
            name,
            what,
            setting,
            lesions,
            seed,
        });
    };
    for st in &spec.settings {
        let l = st.label();
        push(
            format!("shepp-logan_{l}"),
            What::Analytic(Kind::SheppLogan),
            *st,
            0,
        );
        push(
            format!("brain-ellipses_{l}"),
            What::Analytic(Kind::Brain),
            *st,
            0,
        );
        push(format!("ellipses-realistic_{l}"), What::Ellipses, *st, 0);
        if spec.lesions > 0 {
            push(
                format!("ellipses-realistic_{l}_lesions"),
                What::Ellipses,
                *st,
                spec.lesions,
            );
        }
        for (a, an) in spec.anatomy.iter().enumerate() {
            for (i, &z) in an.slices.iter().enumerate() {
                push(format!("{}-{z}_{l}", an.name), What::Anatomy(a, z), *st, 0);
                if (i == 0 || spec.lesion_slices == LesionSlices::All) && spec.lesions > 0 {
                    push(
                        format!("{}-{z}_{l}_lesions", an.name),
                        What::Anatomy(a, z),
                        *st,
                        spec.lesions,
                    );
                }
            }
        }
    }
    out
}

/// Checks `spec` before any work: anatomy names and slices.
pub fn check(spec: &SuiteSpec) -> Result<(), PhantomError> {
    let bad = |name: &'static str, message: String| PhantomError::Param { name, message };
    if spec.settings.is_empty() {
        return Err(bad("settings", "no acceleration setting".into()));
    }
    for an in &spec.anatomy {
        if an.name.is_empty()
            || !an
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(bad(
                "anatomy",
                format!("name '{}': letters, digits and '-' only", an.name),
            ));
        }
        let n = an.image.dim().0;
        if let Some(z) = an.slices.iter().find(|&&z| z >= n) {
            return Err(bad(
                "anatomy",
                format!(
                    "{}: slice {z} of {n} (0 to {})",
                    an.source,
                    n.saturating_sub(1)
                ),
            ));
        }
        if an.slices.is_empty() {
            return Err(bad("anatomy", format!("{}: no slices", an.source)));
        }
    }
    let names: Vec<String> = plan(spec).into_iter().map(|c| c.name).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(bad("anatomy", format!("two cases are named {n}")));
        }
    }
    Ok(())
}

/// Writes the suite into the directory `dir` (created; all cases appear together or none: they
/// are written to a temporary sibling moved into place at the end). `progress(done, total,
/// name)` after each case. Returns the cases.
pub fn write_suite(
    dir: &Path,
    spec: &SuiteSpec,
    force: bool,
    progress: &(dyn Fn(usize, usize, &str) + Sync),
) -> Result<Vec<SuiteCase>, FilesError> {
    check(spec)?;
    let cases = plan(spec);
    let ellipses = crate::generate(&PhantomSpec {
        kind: Kind::Brain,
        matrix: spec.matrix,
        coils: 1,
        accel: 1.0,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        noise: 0.0,
        seed: spec.seed,
    })?
    .truth
    .insert_axis(Axis(0));
    let px = crate::FOV_MM / spec.matrix as f64;
    basin_export::check_outputs(&[], &[dir], force)?;
    let write = |tmp: &Path| -> Result<(), String> {
        let mut entries = Vec::new();
        std::fs::create_dir(tmp).map_err(|e| e.to_string())?;
        for (i, c) in cases.iter().enumerate() {
            let files = SimFiles::of(&tmp.join(format!("{}.h5", c.name)));
            let entry = write_case(c, spec, &ellipses, px, &files).map_err(|e| e.to_string())?;
            entries.push(entry);
            progress(i + 1, cases.len(), &c.name);
        }
        let manifest = serde_json::json!({
            "schema": 1,
            "basin": env!("CARGO_PKG_VERSION"),
            "what": "basin phantom --suite: a seeded dataset for basin compare; each case NAME.h5 has its reference NAME_truth.nii.gz on basin's output grid",
            "matrix": spec.matrix,
            "coils": spec.coils,
            "snr": spec.snr,
            "seed": spec.seed,
            "cases": entries,
        });
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())? + "\n";
        std::fs::write(tmp.join("suite.json"), text).map_err(|e| e.to_string())
    };
    basin_export::write_all(vec![(dir.to_path_buf(), Box::new(write))], force)?;
    Ok(cases)
}

fn write_case(
    c: &SuiteCase,
    spec: &SuiteSpec,
    ellipses: &Array3<f32>,
    px: f64,
    files: &SimFiles,
) -> Result<serde_json::Value, FilesError> {
    let st = c.setting;
    let realistic = |matrix: (usize, usize)| RealisticSpec {
        matrix,
        coils: spec.coils,
        accel: st.accel,
        center_fraction: st.center_fraction,
        mask: st.mask,
        snr: spec.snr,
        noise_cov: None,
        lesions: c.lesions,
        noise_samples: crate::files::NOISE_SAMPLES,
        seed: c.seed,
    };
    // With the lesions the simulator found room for (flat tissue only): fewer than asked on
    // textured or small slices.
    let placed_in = |sim: crate::realistic::Simulation| sim.lesions.iter().map(Vec::len).sum();
    let (kind, source, placed): (_, _, usize) = match &c.what {
        What::Analytic(kind) => {
            phantom_to_files(
                &PhantomSpec {
                    kind: *kind,
                    matrix: spec.matrix,
                    coils: spec.coils,
                    accel: st.accel,
                    center_fraction: st.center_fraction,
                    mask: st.mask,
                    noise: 0.0005,
                    seed: c.seed,
                },
                files,
                false,
            )?;
            ("analytic", "built-in".to_string(), 0)
        }
        What::Ellipses => {
            let source = Source {
                name: "built-in brain-ellipse image".into(),
                slices: 0..1,
                spacing: [px, px, 5.0],
                noise_cov_given: None,
                contrast: None,
            };
            let sim = simulate_to_files(
                ellipses,
                &source,
                &realistic((spec.matrix, spec.matrix)),
                files,
                &[],
                false,
            )?;
            ("realistic", source.name, placed_in(sim))
        }
        What::Anatomy(a, z) => {
            let an = &spec.anatomy[*a];
            let image = an.image.slice(s![*z..*z + 1, .., ..]).to_owned();
            let (_, h, w) = image.dim();
            let source = Source {
                name: an.source.clone(),
                slices: *z..*z + 1,
                spacing: an.spacing,
                noise_cov_given: None,
                contrast: an.contrast,
            };
            let sim = simulate_to_files(
                &image,
                &source,
                &realistic((h + h % 2, w + w % 2)),
                files,
                &[],
                false,
            )?;
            ("realistic", an.source.clone(), placed_in(sim))
        }
    };
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string());
    Ok(serde_json::json!({
        "name": c.name,
        "kind": kind,
        "source": source,
        "slice": match c.what { What::Anatomy(_, z) => Some(z), _ => None },
        "contrast": match c.what { What::Anatomy(a, _) => spec.anatomy[a].contrast, _ => None },
        "accel": st.accel,
        "mask": format!("{:?}", st.mask).to_lowercase(),
        "center_fraction": st.center_fraction,
        "snr": (kind == "realistic").then_some(spec.snr),
        "lesions": c.lesions,
        "lesions_placed": placed,
        "seed": c.seed,
        "acquisition": name(&files.acquisition),
        "reference": name(&files.truth),
        "record": name(&files.record),
    }))
}
