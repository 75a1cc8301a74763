//! `basin compare`: every method on every case of a dataset, with metrics, paired statistics
//! and a report; the library [`basin_compare`] does the work, this parses and prints.

use crate::exit;
use anyhow::Result;
use basin_compare::{Event, Method, Spec};
use basin_recon::Protocol;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Arguments of `basin compare`.
#[derive(Args, Debug)]
#[command(after_help = "\
A dataset is a directory of acquisitions NAME.h5 (ISMRMRD or fastMRI), each with an optional
reference image NAME.reference.nii.gz or NAME_truth.nii.gz on basin's output grid (what
`basin phantom --from` and `--suite` write) and an optional simulation record NAME.json whose
lesions are scored. A fastMRI file without such a NIfTI is scored against its own
reconstruction_rss (reconstruction_esc for single-coil files); images larger in plane are
centre-cropped to it first, as fastMRI's evaluation does.

Metrics per case and method, after one least-squares magnitude scale of the image to the
reference: NMSE, PSNR and SSIM as fastMRI defines them (data range = the reference's maximum;
SSIM 7x7), HFEN (LoG 15x15, sigma 1.5); NMSE without the scale; the embedded prior's robust z of
the image; the lesion contrast kept; wall time. Paired differences between every two methods with
the standard error and the Wilcoxon signed-rank p-value.

The report directory gets metrics.csv (one row per case and method), summary.md, figures/ (per
case a grid of the images, |error| maps on one scale and the prior's energy maps; box plots of
PSNR and SSIM) and index.html (open it in a browser; it fetches nothing from the network).
Results per case and method are kept in REPORT/cells/: a rerun reuses those whose acquisition,
reference, method and basin version are unchanged.

Examples:
  basin phantom --suite suite/ --anatomy mni=mni152.nii.gz:60-108/12
  basin compare suite/ -p sense,cs-l1-wavelet,brain-2d-ebm -o report/
  basin compare suite/ -p brain-2d-ebm --tool bart='benches/bart-pics.sh {in} {out}' -o report/
  basin compare suite/ -p sense --images vendor=vendor_recons/ -o report/

Exit codes: 0 every method ran on every case; 1 some failed (listed in summary.md and on
stderr); 2 usage; 3 an unreadable dataset; 4 a report directory that cannot be written.")]
pub struct CompareArgs {
    /// The dataset directory.
    pub dataset: PathBuf,
    /// Only the cases whose names match these glob patterns, comma-separated (e.g.
    /// 'mni-*_4x,s1-*_4x'); default every case.
    #[arg(long, value_delimiter = ',', value_name = "GLOB,…")]
    pub cases: Vec<String>,
    /// Protocols, comma-separated (built-in names or TOML files), e.g.
    /// sense,cs-l1-wavelet,brain-2d-ebm.
    #[arg(short, long, value_delimiter = ',', value_name = "P,P,…")]
    pub protocols: Vec<String>,
    /// An external method: NAME='COMMAND {in} {out}', run by sh with {in} (the acquisition),
    /// {out} (the NIfTI image to write, on basin's output grid) and {name} (the case) filled in
    /// (quoted). Repeatable.
    #[arg(long, value_name = "NAME=CMD")]
    pub tool: Vec<String>,
    /// Precomputed images of another system: NAME=DIR holding per case DIR/CASE.nii.gz (or
    /// .nii), a DICOM series directory DIR/CASE/ or one DICOM file DIR/CASE.dcm, on basin's
    /// output grid. Repeatable.
    #[arg(long, value_name = "NAME=DIR")]
    pub images: Vec<String>,
    /// The report directory (created; an existing one must be an earlier report or empty).
    #[arg(short, long, value_name = "REPORT")]
    pub output: PathBuf,
    /// Cells (case × method) computed at once. Each reconstruction already uses every core, so
    /// 1 (the default) gives the most honest timings.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub jobs: usize,
    /// Where EBM protocols run (auto, cpu, gpu; see `basin recon --help`).
    #[arg(long, default_value = "auto", value_name = "auto|cpu|gpu")]
    pub backend: basin_recon::Backend,
    /// Do not score the images with the embedded prior (no prior z, no energy maps).
    #[arg(long)]
    pub no_prior_score: bool,
    /// Recompute every cell instead of reusing the report's earlier results.
    #[arg(long)]
    pub fresh: bool,
    /// No progress (errors and the final table only).
    #[arg(short, long)]
    pub quiet: bool,
}

fn named(arg: &str, what: &str) -> Result<(String, String)> {
    arg.split_once('=')
        .map(|(n, v)| (n.trim().to_string(), v.to_string()))
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| exit::usage(format!("--{what} {arg}: expected NAME=VALUE")))
}

/// Runs `basin compare`.
pub fn run(a: CompareArgs) -> Result<()> {
    if a.jobs == 0 {
        return Err(exit::usage("--jobs must be at least 1"));
    }
    let mut methods = Vec::new();
    for p in a.protocols.iter().filter(|p| !p.trim().is_empty()) {
        methods.push(Method::Protocol(Protocol::resolve(p.trim(), None)?));
    }
    for t in &a.tool {
        let (name, template) = named(t, "tool")?;
        methods.push(Method::Tool { name, template });
    }
    for i in &a.images {
        let (name, dir) = named(i, "images")?;
        methods.push(Method::Images {
            name,
            dir: PathBuf::from(dir),
        });
    }
    let spec = Spec {
        dataset: a.dataset.clone(),
        cases: a.cases.clone(),
        methods,
        report: a.output.clone(),
        jobs: a.jobs,
        backend: a.backend,
        prior_score: !a.no_prior_score,
        fresh: a.fresh,
    };
    let bar = if a.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} cells {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let lines = !a.quiet && bar.is_hidden();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::atomic::AtomicUsize::new(0);
    let summary = basin_compare::run(&spec, &|e| match e {
        Event::Planned { cells, reused } => {
            let todo = cells - reused;
            total.store(todo, std::sync::atomic::Ordering::SeqCst);
            bar.set_length(todo as u64);
            if !a.quiet {
                bar.suspend(|| {
                    eprintln!(
                        "basin compare: {cells} cells (cases × methods), {reused} reused from {}",
                        a.output.display()
                    )
                });
            }
        }
        Event::Cell(c) => {
            let k = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let n = total.load(std::sync::atomic::Ordering::SeqCst);
            let what = match (&c.error, &c.metrics) {
                (Some(e), _) => format!("FAILED: {e}"),
                (None, Some(m)) => format!("PSNR {:.2} dB, SSIM {:.4}", m.psnr, m.ssim),
                (None, None) => "done (no reference)".into(),
            };
            let secs = c
                .seconds
                .map(|s| format!(" in {s:.1} s"))
                .unwrap_or_default();
            if lines || c.error.is_some() {
                bar.suspend(|| eprintln!("[{k}/{n}] {} on {}: {what}{secs}", c.method, c.case));
            }
            bar.inc(1);
            bar.set_message(format!("{} on {}", c.method, c.case));
        }
        Event::Report => bar.set_message("writing the report"),
    })
    .map_err(|e| match e {
        basin_compare::CompareError::Usage(m) => exit::usage(m),
        basin_compare::CompareError::Input(m) => exit::input(m),
        other => anyhow::Error::new(other),
    })?;
    bar.finish_and_clear();
    println!("method                 cases   PSNR dB          SSIM              seconds");
    for m in &summary.methods {
        let cells: Vec<_> = summary.cells.iter().filter(|c| &c.method == m).collect();
        let v = |f: &dyn Fn(&basin_compare::Cell) -> Option<f64>| {
            let x: Vec<f64> = cells.iter().filter_map(|c| f(c)).collect();
            basin_compare::stats::mean_se(&x)
        };
        let (p, pse) = v(&|c| c.metrics.map(|m| m.psnr));
        let (s, sse) = v(&|c| c.metrics.map(|m| m.ssim));
        let (t, _) = v(&|c| c.seconds);
        let n = cells.iter().filter(|c| c.error.is_none()).count();
        println!("{m:<22} {n:>5}   {p:6.2} ± {pse:<5.2}   {s:.4} ± {sse:<7.4}   {t:7.2}");
    }
    println!(
        "report: {} ({} cells, {} reused, {} failed)",
        a.output.join("index.html").display(),
        summary.cells.len(),
        summary.reused(),
        summary.failed()
    );
    if summary.failed() > 0 {
        return Err(exit::flagged(format!(
            "{} of {} cells failed (listed in {})",
            summary.failed(),
            summary.cells.len(),
            a.output.join("summary.md").display()
        )));
    }
    Ok(())
}
