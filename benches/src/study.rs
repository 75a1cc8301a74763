//! The benchmarks' comparisons as thin users of `basin compare` ([`basin_compare`]): a dataset
//! written by `basin phantom --suite` ([`basin_phantom::suite`]) from the validation anatomy
//! (DATA.md: MNI152 axial z = 60…108 and Gallant lab S1 axial slices 135…175, 5 each), methods
//! given as protocols or tools, and [`basin_compare::run`] doing the reconstructions (the
//! pipeline of `basin recon`), the metrics and the report. One implementation of the metrics and
//! of running a method on a case: the benchmarks only choose the methods, tune λ on a separate
//! slice and print tables.

use basin_compare::{Cell, Method, Spec, Summary};
use basin_phantom::suite::{Anatomy, LesionSlices, SuiteSpec};
use basin_recon::protocol::{Protocol, Solver};
use std::path::{Path, PathBuf};

/// Gallant lab subject S1 (`bash benches/fetch-s1.sh`).
pub const S1: &str = "target/data/S1_raw.nii.gz";
/// MNI152 axial slices of the test set.
pub const MNI_SLICES: [usize; 5] = [60, 72, 84, 96, 108];
/// S1 axial slices of the test set (its stored LIA planes j = 80…120).
pub const S1_SLICES: [usize; 5] = [135, 145, 155, 165, 175];
/// The MNI152 slice λ is tuned on (not in the test set).
pub const TUNE_SLICE: usize = 120;
/// basin's L1-wavelet λ grid (p99 = 1 convention).
pub const L1_GRID: [f32; 7] = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02];
/// basin's TV λ grid (p99 = 1 convention).
pub const TV_GRID: [f32; 6] = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032];
/// BART `pics -l1` λ grid.
pub const BART_GRID: [f64; 8] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2];
/// The accelerations of the suite (4× equispaced 8 % ACS, 8× random 4 % ACS).
pub const ACCELS: [u32; 2] = [4, 8];

fn anatomy(name: &str, path: &str, slices: &[usize]) -> Result<Anatomy, String> {
    let (image, spacing) = basin_export::nifti_in::read_axial(Path::new(path)).map_err(|e| {
        format!("{path}: {e} (MNI152: bash .ci/install-deps; S1: bash benches/fetch-s1.sh)")
    })?;
    Ok(Anatomy {
        name: name.into(),
        source: path.into(),
        image,
        contrast: None,
        spacing,
        slices: slices.to_vec(),
    })
}

/// Writes `spec`'s suite to `dir` unless a finished one is there (a suite is written all at
/// once, so a `suite.json` means it is complete; delete the directory to rewrite it).
fn write_suite(dir: &Path, spec: &SuiteSpec) -> Result<(), String> {
    if dir.join("suite.json").is_file() {
        eprintln!("reusing the dataset {}", dir.display());
        return Ok(());
    }
    eprintln!("writing the dataset {}", dir.display());
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    basin_phantom::suite::write_suite(dir, spec, false, &|i, n, name| {
        eprintln!("  case {i}/{n}: {name}")
    })
    .map(|_| ())
    .map_err(|e| format!("{}: {e}", dir.display()))
}

/// The test set: `basin phantom --suite DIR --seed 1 --anatomy mni=MNI152:60-108/12
/// --anatomy s1=S1:135-175/10` (with `--lesion-slices all` when `lesions_everywhere`), the suite
/// `benches/compare-suite.sh` writes.
pub fn test_suite(dir: &Path, lesions_everywhere: bool) -> Result<(), String> {
    let spec = SuiteSpec {
        anatomy: vec![
            anatomy("mni", crate::prior_validation::MNI152, &MNI_SLICES)?,
            anatomy("s1", S1, &S1_SLICES)?,
        ],
        lesion_slices: if lesions_everywhere {
            LesionSlices::All
        } else {
            LesionSlices::First
        },
        seed: 1,
        ..SuiteSpec::default()
    };
    write_suite(dir, &spec)
}

/// The tuning set: MNI152 slice [`TUNE_SLICE`] through the same simulator (other seeds), cases
/// `tune-120_4x` and `tune-120_8x`.
pub fn tuning_suite(dir: &Path) -> Result<(), String> {
    let spec = SuiteSpec {
        anatomy: vec![anatomy(
            "tune",
            crate::prior_validation::MNI152,
            &[TUNE_SLICE],
        )?],
        lesions: 0,
        seed: 1000,
        ..SuiteSpec::default()
    };
    write_suite(dir, &spec)
}

/// A shipped protocol.
pub fn protocol(name: &str) -> Result<Protocol, String> {
    Protocol::resolve(name, None).map_err(|e| format!("protocol {name}: {e}"))
}

/// The shipped protocol `base` named `name`, its solver changed by `edit` (which says false
/// when the solver is not the kind it changes).
fn variant(
    base: &str,
    name: &str,
    edit: impl FnOnce(&mut Solver) -> bool,
) -> Result<Method, String> {
    let mut p = protocol(base)?;
    if !edit(&mut p.solver) {
        return Err(format!("{base}: unexpected solver {:?}", p.solver));
    }
    p.name = name.into();
    Ok(Method::Protocol(p))
}

/// `cs-l1-wavelet` with λ = `lambda`, named `name`.
pub fn l1_with(lambda: f32, name: &str) -> Result<Method, String> {
    variant("cs-l1-wavelet", name, |s| match s {
        Solver::L1Wavelet(q) => {
            q.lambda = lambda;
            true
        }
        _ => false,
    })
}

/// `cs-tv` with λ = `lambda`, named `name`.
pub fn tv_with(lambda: f32, name: &str) -> Result<Method, String> {
    variant("cs-tv", name, |s| match s {
        Solver::Tv(q) => {
            q.lambda = lambda;
            true
        }
        _ => false,
    })
}

/// `brain-2d-ebm` with its prior weight set to `w`, named `name`.
pub fn ebm_with(w: f64, name: &str) -> Result<Method, String> {
    variant("brain-2d-ebm", name, |s| match s {
        Solver::Ebm(q) => {
            q.prior_weight = w;
            true
        }
        _ => false,
    })
}

/// BART through `benches/bart-pics.py` (`ecalib -m1` + `pics -S -l1 -i 100`) at `lambda`, when
/// `bart` runs and a basin binary is found (the script asks `basin recon -p zero-filled` for the
/// output grid): `$BASIN`, else `basin` next to this program (`cargo build --release -p
/// basin-cli`). None, with the reason on stderr, otherwise.
pub fn bart(lambda: f64, name: &str) -> Option<Method> {
    static FOUND: std::sync::OnceLock<Option<(PathBuf, PathBuf)>> = std::sync::OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let bart_runs = std::process::Command::new("bart")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !bart_runs {
            eprintln!("BART left out: `bart version` does not run (bash .ci/install-deps)");
            return None;
        }
        let basin = std::env::var_os("BASIN").map(PathBuf::from).or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.join("basin"))
        })?;
        if !basin.is_file() {
            eprintln!(
                "BART left out: no basin binary at {} (cargo build --release -p basin-cli, or set BASIN)",
                basin.display()
            );
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bart-pics.py");
        Some((basin, script))
    });
    let (basin, script) = found.as_ref()?;
    let q = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    Some(Method::Tool {
        name: name.into(),
        template: format!(
            "BASIN={} /usr/bin/python3 {} {{in}} {{out}} --lambda {lambda}",
            q(basin),
            q(script)
        ),
    })
}

/// Runs `methods` on the cases of `dataset` matching `cases` (globs) into `report` (reusing
/// finished cells of an earlier run), one cell at a time (honest wall times on a small host),
/// with a line per cell on stderr.
pub fn compare(
    dataset: &Path,
    cases: &[String],
    methods: Vec<Method>,
    report: &Path,
    prior_score: bool,
) -> Result<Summary, String> {
    let spec = Spec {
        dataset: dataset.to_path_buf(),
        cases: cases.to_vec(),
        methods,
        report: report.to_path_buf(),
        jobs: 1,
        backend: basin_recon::Backend::Cpu,
        prior_score,
        fresh: false,
    };
    let summary = basin_compare::run(&spec, &|e| {
        if let basin_compare::Event::Cell(c) = e {
            match (&c.error, &c.metrics) {
                (Some(err), _) => eprintln!("  {} on {}: FAILED: {err}", c.method, c.case),
                (None, Some(m)) => eprintln!(
                    "  {} on {}: PSNR {:.2} dB, SSIM {:.4}, {:.2} s",
                    c.method,
                    c.case,
                    m.psnr,
                    m.ssim,
                    c.seconds.unwrap_or(f64::NAN)
                ),
                (None, None) => eprintln!("  {} on {}: no reference", c.method, c.case),
            }
        }
    })
    .map_err(|e| format!("basin compare: {e}"))?;
    if summary.failed() > 0 {
        eprintln!(
            "warning: {} cells failed (see {})",
            summary.failed(),
            report.join("summary.md").display()
        );
    }
    Ok(summary)
}

/// The method of `candidates` (names) with the best mean PSNR in `summary`.
pub fn best_by_psnr<'a>(summary: &Summary, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .filter_map(|m| Some((m, mean(summary, m, |c| c.metrics.map(|x| x.psnr))?.0)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(m, _)| m.as_str())
}

/// Mean and standard error of `f` over `method`'s cells that have it.
pub fn mean(
    summary: &Summary,
    method: &str,
    f: impl Fn(&Cell) -> Option<f64>,
) -> Option<(f64, f64)> {
    let v: Vec<f64> = summary
        .cells
        .iter()
        .filter(|c| c.method == method)
        .filter_map(&f)
        .filter(|v| v.is_finite())
        .collect();
    (!v.is_empty()).then(|| basin_compare::stats::mean_se(&v))
}

/// Prints (under the heading `title`) the Markdown table of means ± SE per method (PSNR, SSIM,
/// NMSE, seconds, and the lesion contrast kept when any cell has it) and the paired differences
/// `focus` − each other method (PSNR, SSIM; the lesion contrast kept too when there are
/// lesions), each line led by `label`.
pub fn print_tables(title: &str, label: &str, summary: &Summary, focus: &str) {
    let lesions = summary.cells.iter().any(|c| c.lesion_kept.is_some());
    println!("\n### {title}\n");
    print!("| method | cases | PSNR dB | SSIM | NMSE | s/slice |");
    println!(
        "{}",
        if lesions {
            " lesion contrast kept |"
        } else {
            ""
        }
    );
    println!(
        "|---|---|---|---|---|---|{}",
        if lesions { "---|" } else { "" }
    );
    let f = |v: Option<(f64, f64)>, d: usize| {
        v.map_or("–".into(), |(a, se)| format!("{a:.d$} ± {se:.d$}"))
    };
    for m in &summary.methods {
        let n = summary
            .cells
            .iter()
            .filter(|c| &c.method == m && c.metrics.is_some())
            .count();
        print!(
            "| {m} | {n} | {} | {} | {} | {} |",
            f(mean(summary, m, |c| c.metrics.map(|x| x.psnr)), 2),
            f(mean(summary, m, |c| c.metrics.map(|x| x.ssim)), 4),
            f(mean(summary, m, |c| c.metrics.map(|x| x.nmse)), 5),
            mean(summary, m, |c| c.seconds).map_or("–".into(), |v| format!("{:.2}", v.0)),
        );
        if lesions {
            print!(" {} |", f(mean(summary, m, |c| c.lesion_kept), 3));
        }
        println!();
    }
    println!();
    // Non-finite values (an infinite PSNR) are left out of the differences.
    type Get = fn(&Cell) -> Option<f64>;
    let mut metrics: Vec<(&'static str, Get, usize)> = vec![
        (
            "PSNR dB",
            |c| c.metrics.map(|m| m.psnr).filter(|v| v.is_finite()),
            2,
        ),
        (
            "SSIM",
            |c| c.metrics.map(|m| m.ssim).filter(|v| v.is_finite()),
            4,
        ),
    ];
    if lesions {
        metrics.push((
            "lesion contrast kept",
            |c| c.lesion_kept.filter(|v| v.is_finite()),
            3,
        ));
    }
    for other in summary.methods.iter().filter(|m| *m != focus) {
        for (metric, get, d) in &metrics {
            let Some(r) = basin_compare::paired_row(metric, get, focus, other, &summary.cells)
            else {
                continue;
            };
            let p = r.p.map_or("–".into(), |p| format!("{p:.3}"));
            println!(
                "- {label}: {focus} − {other}, {metric}: {:+.d$} ± {:.d$} (n = {}, Wilcoxon p {p})",
                r.mean, r.se, r.n
            );
        }
    }
}

/// λ tuned at one acceleration.
#[derive(Clone, Copy, Debug)]
pub struct Tuned {
    /// basin's L1-wavelet.
    pub l1: f32,
    /// basin's TV.
    pub tv: f32,
    /// BART `pics -l1` (None without BART).
    pub bart: Option<f64>,
}

/// λ for basin's L1-wavelet and TV and for BART at `accel`, each the best PSNR of its grid
/// ([`L1_GRID`], [`TV_GRID`], [`BART_GRID`]) on the tuning suite's case at that acceleration
/// (written to `root/tune`, report `root/tune-Rx`; a rerun reuses both).
pub fn tune(root: &Path, accel: u32) -> Result<Tuned, String> {
    let dataset = root.join("tune");
    tuning_suite(&dataset)?;
    let name_l1 = |l: f32| format!("l1-lambda-{l}");
    let name_tv = |l: f32| format!("tv-lambda-{l}");
    let name_bart = |l: f64| format!("bart-lambda-{l}");
    let mut methods = Vec::new();
    for l in L1_GRID {
        methods.push(l1_with(l, &name_l1(l))?);
    }
    for l in TV_GRID {
        methods.push(tv_with(l, &name_tv(l))?);
    }
    for l in BART_GRID {
        methods.extend(bart(l, &name_bart(l)));
    }
    eprintln!("tuning λ at {accel}× on {}", dataset.display());
    let s = compare(
        &dataset,
        &[format!("tune-*_{accel}x")],
        methods,
        &root.join(format!("tune-{accel}x")),
        false,
    )?;
    fn pick<T: Copy>(s: &Summary, grid: &[T], name: impl Fn(T) -> String) -> Option<T> {
        let names: Vec<String> = grid.iter().map(|&l| name(l)).collect();
        let best = best_by_psnr(s, &names)?;
        grid.iter().copied().find(|&l| name(l) == best)
    }
    let t = Tuned {
        l1: pick(&s, &L1_GRID, name_l1)
            .ok_or("no L1-wavelet λ could be tuned (every run failed)")?,
        tv: pick(&s, &TV_GRID, name_tv).ok_or("no TV λ could be tuned (every run failed)")?,
        bart: pick(&s, &BART_GRID, name_bart),
    };
    eprintln!("tuned at {accel}×: {t:?}");
    Ok(t)
}

/// Cases of the test set at `accel`: `mni-*_Rx,s1-*_Rx`, with `_lesions` for the lesion copies.
pub fn test_cases(accel: u32, lesions: bool) -> Vec<String> {
    let tail = if lesions { "_lesions" } else { "" };
    vec![
        format!("mni-*_{accel}x{tail}"),
        format!("s1-*_{accel}x{tail}"),
    ]
}
