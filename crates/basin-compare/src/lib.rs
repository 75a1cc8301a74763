//! `basin compare`: every method on every case of a dataset, scored against each case's
//! reference with the field's metrics, paired statistics between methods, and a report
//! (`metrics.csv`, `summary.md`, PNG figures, a self-contained `index.html`).
//!
//! A **dataset** is a directory of acquisitions `NAME.h5` (ISMRMRD or fastMRI) with an optional
//! reference `NAME.reference.nii.gz` (or `NAME_truth.nii.gz`, what `basin phantom --from` and
//! `--suite` write) on basin's output grid, and an optional simulation record `NAME.json` whose
//! `lesions` are scored. A **method** is a protocol (built in or a TOML file, run by the same
//! pipeline as `basin recon`), an external tool (a shell command template with `{in}` and `{out}`,
//! which must write NIfTI on basin's grid), or a directory of precomputed images (`DIR/NAME.nii.gz`,
//! or DICOM: a series directory `DIR/NAME/` or a file `DIR/NAME.dcm`). A fastMRI file without a
//! NIfTI reference is scored against its own `reconstruction_rss`.
//!
//! Every (case, method) result is a **cell** kept under `REPORT/cells/` with the checksums of its
//! inputs and the method's full description; a rerun reuses cells whose inputs and method are
//! unchanged and recomputes the rest. The report's files are written together at the end.

pub mod figures;
pub mod metrics;
mod report;
pub mod stats;

use basin_recon::consistency::DataCheck;
use basin_recon::pipeline::{Format, Job, Outputs, Pipeline};
use basin_recon::{Protocol, ReconOptions};
use metrics::{image_metrics, lesion_contrast_kept, CaseLesion, ImageMetrics};
use ndarray::Array3;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

pub use report::{paired, paired_row, PairedRow};

/// Errors of a comparison as a whole (a failing cell is recorded in its cell, not here).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Bad arguments: no method, two methods of one name, a report directory that is a dataset.
    #[error("{0}")]
    Usage(String),
    /// The dataset cannot be read or holds no case.
    #[error("{0}")]
    Input(String),
    /// The report cannot be written.
    #[error(transparent)]
    Output(#[from] basin_export::ExportError),
    /// A protocol or the pipeline failed before any cell ran.
    #[error(transparent)]
    Recon(#[from] basin_recon::ReconError),
}

/// One case of a dataset.
#[derive(Clone, Debug)]
pub struct Case {
    /// The acquisition's file stem.
    pub name: String,
    /// The acquisition.
    pub input: PathBuf,
    /// The reference image, if any.
    pub reference: Option<Reference>,
    /// Lesions from the simulation record, if any.
    pub lesions: Vec<CaseLesion>,
}

/// A case's reference image.
#[derive(Clone, Debug, PartialEq)]
pub enum Reference {
    /// A NIfTI file on basin's output grid (`NAME.reference.nii.gz`, `NAME_truth.nii.gz`).
    Nifti(PathBuf),
    /// The fastMRI file's own `reconstruction_rss` (or `reconstruction_esc`): the RSS of the
    /// fully sampled data centre-cropped to the reconstruction matrix. Images larger in plane
    /// are centre-cropped to it the same way (fastMRI's `center_crop`) before scoring.
    FastMri(PathBuf),
}

impl Reference {
    /// The file holding the reference.
    pub fn path(&self) -> &Path {
        match self {
            Reference::Nifti(p) | Reference::FastMri(p) => p,
        }
    }

    /// The reference magnitude `[z, y, x]`.
    pub fn load(&self) -> Result<Array3<f32>, String> {
        match self {
            Reference::Nifti(p) => read_image(p),
            Reference::FastMri(p) => basin_mrd::io::read_fastmri_reference(p)
                .map_err(|e| e.to_string())?
                .map(|v| v.mapv(f32::abs))
                .ok_or_else(|| format!("{}: no reconstruction_rss", p.display())),
        }
    }

    /// `image` on the reference's grid (`reference` holds its dimensions): unchanged when the
    /// grids agree; centre-cropped in plane for a fastMRI reference; otherwise an error.
    pub fn fit(
        &self,
        image: Array3<f32>,
        reference: (usize, usize, usize),
    ) -> Result<Array3<f32>, String> {
        let (z, y, x) = image.dim();
        if (z, y, x) == reference {
            return Ok(image);
        }
        let (rz, ry, rx) = reference;
        if matches!(self, Reference::FastMri(_)) && z == rz && y >= ry && x >= rx {
            return Ok(metrics::centre_crop(image.view(), ry, rx));
        }
        Err(format!(
            "the image ({z}×{y}×{x} slices × rows × columns) is not on the reference's grid ({rz}×{ry}×{rx})"
        ))
    }
}

/// The cases of the dataset directory `dir`, sorted by name.
pub fn discover(dir: &Path) -> Result<Vec<Case>, CompareError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        CompareError::Input(format!("{}: cannot read the dataset: {e}", dir.display()))
    })?;
    let mut cases = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let Some(name) = p.file_name().map(|n| n.to_string_lossy().to_string()) else {
            continue;
        };
        let Some(stem) = name
            .strip_suffix(".h5")
            .or_else(|| name.strip_suffix(".mrd"))
        else {
            continue;
        };
        if !p.is_file() {
            continue;
        }
        let reference = [
            format!("{stem}.reference.nii.gz"),
            format!("{stem}.reference.nii"),
            format!("{stem}_truth.nii.gz"),
        ]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|r| r.is_file())
        .map(Reference::Nifti)
        .or_else(|| {
            basin_mrd::io::has_fastmri_reference(&p).then(|| Reference::FastMri(p.clone()))
        });
        let lesions = read_lesions(&dir.join(format!("{stem}.json")));
        cases.push(Case {
            name: stem.to_string(),
            input: p,
            reference,
            lesions,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    if cases.is_empty() {
        return Err(CompareError::Input(format!(
            "{}: no acquisitions (NAME.h5) in the dataset",
            dir.display()
        )));
    }
    Ok(cases)
}

/// The `lesions` of a simulation record (`basin phantom --from`/`--suite`); none when the file
/// is absent or holds none.
fn read_lesions(path: &Path) -> Vec<CaseLesion> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let Some(list) = v.get("lesions").and_then(|l| l.as_array()) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|l| {
            let f = |k: &str| l.get(k).and_then(|x| x.as_f64());
            Some(CaseLesion {
                slice: f("slice")? as usize,
                lesion: basin_phantom::lesions::Lesion {
                    y: f("y")?,
                    x: f("x")?,
                    r: f("radius_px")?,
                    factor: f("factor")? as f32,
                },
            })
        })
        .collect()
}

/// A method to compare.
#[derive(Clone, Debug)]
pub enum Method {
    /// A protocol, run as `basin recon` runs it.
    Protocol(Protocol),
    /// An external tool: `sh -c TEMPLATE` with `{in}` (the acquisition), `{out}` (the NIfTI to
    /// write, on basin's output grid) and `{name}` (the case) substituted, shell-quoted.
    Tool {
        /// Method name.
        name: String,
        /// Command template.
        template: String,
    },
    /// Precomputed images: `DIR/NAME.nii.gz` (or `.nii`, a DICOM series directory `DIR/NAME/`,
    /// a DICOM file `DIR/NAME.dcm`) per case.
    Images {
        /// Method name.
        name: String,
        /// Directory.
        dir: PathBuf,
    },
}

impl Method {
    /// The method's name (file names in the report use it).
    pub fn name(&self) -> &str {
        match self {
            Method::Protocol(p) => &p.name,
            Method::Tool { name, .. } | Method::Images { name, .. } => name,
        }
    }

    /// Everything that decides the method's output (a changed value recomputes its cells).
    fn signature(&self) -> serde_json::Value {
        match self {
            Method::Protocol(p) => serde_json::json!({"protocol": p}),
            Method::Tool { template, .. } => serde_json::json!({"tool": template}),
            Method::Images { dir, .. } => serde_json::json!({"images": dir}),
        }
    }
}

/// What to compare and where to write the report.
pub struct Spec {
    /// The dataset directory.
    pub dataset: PathBuf,
    /// Only the cases whose names match one of these glob patterns (all when empty).
    pub cases: Vec<String>,
    /// The methods, in the order of the report's tables.
    pub methods: Vec<Method>,
    /// The report directory.
    pub report: PathBuf,
    /// Cells computed at once.
    pub jobs: usize,
    /// Where EBM protocols run.
    pub backend: basin_recon::Backend,
    /// Score every image with the embedded prior (its robust z and energy maps).
    pub prior_score: bool,
    /// Recompute every cell (the report directory's earlier cells are ignored).
    pub fresh: bool,
}

/// The result of one method on one case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    /// Case name.
    pub case: String,
    /// Method name.
    pub method: String,
    /// What the result was computed from (checksums, the method, basin's version).
    pub key: serde_json::Value,
    /// The image metrics (None without a reference or when the method failed).
    pub metrics: Option<ImageMetrics>,
    /// ‖A(a·x) − y‖/(σ√M): how well the image explains the measured data
    /// ([`basin_recon::consistency`]); ≈ 1 down to the noise, ≫ 1 when it ignores the data.
    pub dc_residual: Option<f64>,
    /// The largest robust z of the image's slices under the embedded prior.
    pub prior_z: Option<f64>,
    /// Mean lesion contrast kept.
    pub lesion_kept: Option<f64>,
    /// Wall time of the method (None for precomputed images).
    pub seconds: Option<f64>,
    /// Why the method failed on this case.
    pub error: Option<String>,
    /// Reused from an earlier run.
    #[serde(skip)]
    pub reused: bool,
}

/// What a run reports as it goes.
pub enum Event<'a> {
    /// The cells to do (cases × methods) and how many are reused.
    Planned {
        /// Cells in all.
        cells: usize,
        /// Of which reused.
        reused: usize,
    },
    /// A cell finished (computed or failed).
    Cell(&'a Cell),
    /// Writing the report.
    Report,
}

/// A comparison's outcome.
pub struct Summary {
    /// The cases.
    pub cases: Vec<Case>,
    /// Method names.
    pub methods: Vec<String>,
    /// Every cell, case-major.
    pub cells: Vec<Cell>,
    /// The report's files.
    pub files: Vec<PathBuf>,
}

impl Summary {
    /// Cells reused from an earlier run.
    pub fn reused(&self) -> usize {
        self.cells.iter().filter(|c| c.reused).count()
    }

    /// Cells whose method failed.
    pub fn failed(&self) -> usize {
        self.cells.iter().filter(|c| c.error.is_some()).count()
    }
}

/// The file marking a directory as a `basin compare` report (another directory is refused).
const MARKER: &str = ".basin-compare";

/// Checks the spec before any work.
fn check(spec: &Spec) -> Result<(), CompareError> {
    if spec.methods.is_empty() {
        return Err(CompareError::Usage(
            "no method: give -p PROTOCOLS, --tool NAME=CMD or --images NAME=DIR".into(),
        ));
    }
    for (i, m) in spec.methods.iter().enumerate() {
        let n = m.name();
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || n.starts_with('.')
        {
            return Err(CompareError::Usage(format!(
                "method name '{n}': letters, digits, '-', '_' and '.' only"
            )));
        }
        if spec.methods[..i].iter().any(|o| o.name() == n) {
            return Err(CompareError::Usage(format!("two methods are named '{n}'")));
        }
        if let Method::Tool { template, .. } = m {
            if !template.contains("{in}") || !template.contains("{out}") {
                return Err(CompareError::Usage(format!(
                    "--tool {n}: the command must contain {{in}} and {{out}}"
                )));
            }
        }
        if let Method::Images { dir, .. } = m {
            if !dir.is_dir() {
                return Err(CompareError::Input(format!(
                    "--images {n}={}: not a directory",
                    dir.display()
                )));
            }
        }
    }
    if !spec.dataset.is_dir() {
        return Err(CompareError::Input(format!(
            "{}: not a directory (a dataset is a directory of NAME.h5 files)",
            spec.dataset.display()
        )));
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    let inputs = std::iter::once(spec.dataset.as_path()).chain(spec.methods.iter().filter_map(
        |m| match m {
            Method::Images { dir, .. } => Some(dir.as_path()),
            _ => None,
        },
    ));
    for i in inputs {
        if same(i, &spec.report) {
            return Err(CompareError::Usage(format!(
                "the report directory {} is an input directory: give another -o",
                spec.report.display()
            )));
        }
    }
    if spec.report.exists() {
        let empty = std::fs::read_dir(&spec.report)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !spec.report.is_dir() || (!empty && !spec.report.join(MARKER).is_file()) {
            return Err(CompareError::Usage(format!(
                "{}: exists and is not a basin compare report (no {MARKER}); give a new or empty directory",
                spec.report.display()
            )));
        }
    }
    Ok(())
}

/// `s` quoted for `sh` (single quotes).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The prior's model and clean ranges, loaded once.
struct Prior {
    model: basin_prior::fast::FastPyramid,
    typ: Option<basin_prior::validate::ScoreTypicality>,
}

/// The cases of the dataset directory `dir` whose names match one of the glob `patterns` (all
/// when there are none), sorted by name; a usage error when a pattern is malformed or none
/// matches.
pub fn select(dir: &Path, patterns: &[String]) -> Result<Vec<Case>, CompareError> {
    let mut cases = discover(dir)?;
    if !patterns.is_empty() {
        let globs = patterns
            .iter()
            .map(|p| {
                glob::Pattern::new(p).map_err(|e| CompareError::Usage(format!("--cases {p}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        cases.retain(|c| globs.iter().any(|g| g.matches(&c.name)));
        if cases.is_empty() {
            return Err(CompareError::Usage(format!(
                "--cases {}: no case of {} matches",
                patterns.join(","),
                dir.display()
            )));
        }
    }
    Ok(cases)
}

/// Runs a comparison (see the crate's documentation).
pub fn run(spec: &Spec, events: &(dyn Fn(Event<'_>) + Sync)) -> Result<Summary, CompareError> {
    check(spec)?;
    let cases = select(&spec.dataset, &spec.cases)?;
    std::fs::create_dir_all(spec.report.join("cells")).map_err(|e| {
        CompareError::Output(basin_export::ExportError::Refused {
            file: spec.report.clone(),
            message: format!("cannot create the report directory: {e}"),
        })
    })?;
    std::fs::write(
        spec.report.join(MARKER),
        "a basin compare report: cells/ holds each method's result per case\n",
    )
    .map_err(|e| {
        CompareError::Output(basin_export::ExportError::Refused {
            file: spec.report.join(MARKER),
            message: e.to_string(),
        })
    })?;
    let prior = if spec.prior_score {
        let (model, card) = basin_prior::default_model()
            .map_err(|e| CompareError::Input(format!("the embedded prior: {e}")))?;
        Some(Prior {
            model: basin_prior::fast::FastPyramid::new(&model),
            typ: basin_prior::validate::ScoreTypicality::from_card(&card),
        })
    } else {
        None
    };
    let pipeline = Pipeline::new(spec.backend);
    // Every cell's key first (checksums once per file), then the ones to compute.
    let mut todo = Vec::new();
    let mut cells: Vec<Option<Cell>> = Vec::new();
    for (ci, case) in cases.iter().enumerate() {
        let input_sha = basin_recon::batch::sha256_of(&case.input).map_err(|e| {
            CompareError::Input(format!("{}: cannot read: {e}", case.input.display()))
        })?;
        let ref_sha = match &case.reference {
            Some(Reference::Nifti(r)) => {
                Some(basin_recon::batch::sha256_of(r).map_err(|e| {
                    CompareError::Input(format!("{}: cannot read: {e}", r.display()))
                })?)
            }
            // Inside the input file, whose checksum is in the key.
            Some(Reference::FastMri(_)) => Some("reconstruction_rss".to_string()),
            None => None,
        };
        for m in &spec.methods {
            let image_sha = match m {
                Method::Images { dir, .. } => image_in(dir, &case.name).and_then(|p| image_sha(&p)),
                _ => None,
            };
            let key = serde_json::json!({
                "input_sha256": input_sha,
                "reference_sha256": ref_sha,
                "lesions": case.lesions.len(),
                "method": m.signature(),
                "image_sha256": image_sha,
                "prior_score": spec.prior_score,
                "dc_residual": 1,
                "basin": env!("CARGO_PKG_VERSION"),
                // EBM protocols and the prior's z depend on the embedded weights.
                "prior_sha256": basin_prior::default_model_sha256(),
            });
            let old = (!spec.fresh)
                .then(|| read_cell(&cell_path(&spec.report, &case.name, m.name())))
                .flatten()
                .filter(|c| c.key == key && c.error.is_none())
                .filter(|_| match m {
                    Method::Images { .. } => true,
                    _ => image_path(&spec.report, &case.name, m.name()).is_file(),
                })
                .map(|mut c| {
                    c.reused = true;
                    c
                });
            if old.is_none() {
                todo.push((cells.len(), ci, m, key));
            }
            cells.push(old);
        }
    }
    events(Event::Planned {
        cells: cells.len(),
        reused: cells.len() - todo.len(),
    });
    let results = Mutex::new(cells);
    // The measured data of each case, calibrated once for all its methods' images.
    let checks: Vec<OnceLock<Result<DataCheck, String>>> =
        cases.iter().map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let workers = spec.jobs.clamp(1, todo.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((slot, ci, m, key)) = todo.get(i) else {
                    break;
                };
                let case = &cases[*ci];
                let check = checks[*ci]
                    .get_or_init(|| DataCheck::from_file(&case.input).map_err(|e| e.to_string()));
                let cell = compute(spec, &pipeline, prior.as_ref(), case, check, m, key.clone());
                let _ = write_cell(&cell_path(&spec.report, &case.name, m.name()), &cell);
                events(Event::Cell(&cell));
                if let Ok(mut r) = results.lock() {
                    r[*slot] = Some(cell);
                }
            });
        }
    });
    let cells: Vec<Cell> = results
        .into_inner()
        .map_err(|_| CompareError::Input("a worker panicked".into()))?
        .into_iter()
        .flatten()
        .collect();
    events(Event::Report);
    let methods: Vec<String> = spec.methods.iter().map(|m| m.name().to_string()).collect();
    let files = report::write(spec, &cases, &methods, &cells)?;
    Ok(Summary {
        cases,
        methods,
        cells,
        files,
    })
}

fn cell_path(report: &Path, case: &str, method: &str) -> PathBuf {
    report
        .join("cells")
        .join(case)
        .join(format!("{method}.json"))
}

/// Where a protocol's or a tool's image of a case is kept.
pub fn image_path(report: &Path, case: &str, method: &str) -> PathBuf {
    report
        .join("images")
        .join(case)
        .join(format!("{method}.nii.gz"))
}

/// The prior's energy map of a method's image of a case.
fn energy_path(report: &Path, case: &str, method: &str) -> PathBuf {
    report
        .join("cells")
        .join(case)
        .join(format!("{method}.energy.nii.gz"))
}

/// A precomputed image of `case` in `dir`: `CASE.nii.gz`, `CASE.nii`, a DICOM series directory
/// `CASE/` or one DICOM file `CASE.dcm`.
fn image_in(dir: &Path, case: &str) -> Option<PathBuf> {
    [
        format!("{case}.nii.gz"),
        format!("{case}.nii"),
        format!("{case}.dcm"),
    ]
    .into_iter()
    .map(|n| dir.join(n))
    .find(|p| p.is_file())
    .or_else(|| Some(dir.join(case)).filter(|p| p.is_dir()))
}

/// The checksum of an image file, or of a DICOM directory's files (names and contents, sorted).
fn image_sha(p: &Path) -> Option<String> {
    if !p.is_dir() {
        return basin_recon::batch::sha256_of(p).ok();
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(p)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.is_file())
        .collect();
    files.sort();
    let mut all = String::new();
    for f in files {
        all.push_str(&file_name(&f));
        all.push('\0');
        all.push_str(&basin_recon::batch::sha256_of(&f).ok()?);
        all.push('\n');
    }
    use sha2::Digest;
    Some(format!("{:x}", sha2::Sha256::digest(all.as_bytes())))
}

/// The magnitude `[z, y, x]` of an image: NIfTI (as `basin recon` writes it), or DICOM (a
/// series directory or one file; slices in the series' order, rows and columns as stored), read
/// as `basin score` reads it ([`basin_export::image_in::read_image`]).
pub fn read_image(p: &Path) -> Result<Array3<f32>, String> {
    basin_export::image_in::read_image(p, None)
        .map(|i| i.slices.mapv(|c| c.norm()))
        .map_err(|e| e.to_string())
}

fn read_cell(p: &Path) -> Option<Cell> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

fn write_cell(p: &Path, c: &Cell) -> Result<(), String> {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let text = serde_json::to_string_pretty(c).map_err(|e| e.to_string())? + "\n";
    basin_export::atomic_write(p, true, |tmp| {
        std::fs::write(tmp, text).map_err(|e| e.to_string())
    })
    .map_err(|e| e.to_string())
}

/// Runs `m` on `case` and scores it.
fn compute(
    spec: &Spec,
    pipeline: &Pipeline,
    prior: Option<&Prior>,
    case: &Case,
    check: &Result<DataCheck, String>,
    m: &Method,
    key: serde_json::Value,
) -> Cell {
    let mut cell = Cell {
        case: case.name.clone(),
        method: m.name().to_string(),
        key,
        metrics: None,
        dc_residual: None,
        prior_z: None,
        lesion_kept: None,
        seconds: None,
        error: None,
        reused: false,
    };
    match produce(spec, pipeline, case, m) {
        Ok((path, seconds)) => {
            cell.seconds = seconds;
            if let Err(e) = score(spec, prior, case, check, m, &path, &mut cell) {
                cell.error = Some(e);
            }
        }
        Err(e) => cell.error = Some(e),
    }
    cell
}

/// The method's image of the case (made now, or found) and the seconds it took.
fn produce(
    spec: &Spec,
    pipeline: &Pipeline,
    case: &Case,
    m: &Method,
) -> Result<(PathBuf, Option<f64>), String> {
    let out = image_path(&spec.report, &case.name, m.name());
    match m {
        Method::Protocol(p) => {
            if let Some(d) = out.parent() {
                std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
            }
            let outputs = Outputs {
                images: vec![(out.clone(), Format::Nifti)],
                ..Outputs::default()
            };
            let t = Instant::now();
            pipeline
                .run(
                    &Job {
                        input: &case.input,
                        dataset: None,
                        protocol: p,
                        options: ReconOptions::default(),
                        outputs: &outputs,
                        force: true,
                    },
                    &|_| {},
                )
                .map_err(|e| e.to_string())?;
            Ok((out, Some(t.elapsed().as_secs_f64())))
        }
        Method::Tool { template, .. } => {
            if let Some(d) = out.parent() {
                std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
            }
            let input = case.input.canonicalize().map_err(|e| e.to_string())?;
            let tmp =
                out.with_file_name(format!(".tmp-{}-{}", std::process::id(), file_name(&out)));
            let _ = std::fs::remove_file(&tmp);
            let cmd = template
                .replace("{in}", &shell_quote(&input.to_string_lossy()))
                .replace("{out}", &shell_quote(&tmp.to_string_lossy()))
                .replace("{name}", &shell_quote(&case.name));
            let t = Instant::now();
            let o = std::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| format!("cannot run sh: {e}"))?;
            let seconds = t.elapsed().as_secs_f64();
            if !o.status.success() {
                let _ = std::fs::remove_file(&tmp);
                let err = String::from_utf8_lossy(&o.stderr);
                let tail: String = err
                    .lines()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(" | ");
                return Err(format!("the tool failed ({}): {tail}", o.status));
            }
            if !tmp.is_file() {
                return Err("the tool exited 0 but wrote no {out} file".into());
            }
            std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
            Ok((out, Some(seconds)))
        }
        Method::Images { dir, .. } => image_in(dir, &case.name)
            .map(|p| (p, None))
            .ok_or_else(|| format!("no {}.nii.gz in {}", case.name, dir.display())),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Scores the image at `path` into `cell`.
fn score(
    spec: &Spec,
    prior: Option<&Prior>,
    case: &Case,
    check: &Result<DataCheck, String>,
    m: &Method,
    path: &Path,
    cell: &mut Cell,
) -> Result<(), String> {
    let image = read_image(path)?;
    if let Some(r) = &case.reference {
        let reference = r.load()?;
        let fitted = r.fit(image.clone(), reference.dim())?;
        let image = &fitted;
        let mm = image_metrics(image.view(), reference.view());
        let scaled = image.mapv(|v| (v as f64 * mm.scale) as f32);
        cell.lesion_kept = lesion_contrast_kept(scaled.view(), reference.view(), &case.lesions);
        cell.metrics = Some(mm);
    }
    match check {
        Ok(c) => {
            cell.dc_residual = Some(
                c.residual_over_noise(image.view())
                    .map_err(|e| format!("data consistency: {e}"))?,
            );
        }
        Err(e) => tracing::warn!("{}: no data-consistency check: {e}", case.name),
    }
    if let Some(p) = prior {
        let (nz, ny, nx) = image.dim();
        if ny >= 8 && nx >= 8 && nz > 0 {
            let c = image.mapv(|v| basin_core::C32::new(v, 0.0));
            let (map, judged) =
                basin_prior::validate::score_volume(&p.model, p.typ.as_ref(), &c, &|_| {});
            cell.prior_z = judged.iter().filter_map(|j| j.z).reduce(f64::max);
            let e = energy_path(&spec.report, &case.name, m.name());
            if let Some(d) = e.parent() {
                std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
            }
            basin_export::nifti_out::write_nifti(
                &e,
                &map,
                &basin_export::geometry::StackGeometry::unit(),
                "basin energy density",
                true,
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The middle slice of a magnitude volume (for figures).
fn middle_slice(v: &Array3<f32>) -> Option<ndarray::Array2<f32>> {
    let z = v.dim().0 / 2;
    (v.dim().0 > 0).then(|| v.index_axis(ndarray::Axis(0), z).to_owned())
}
