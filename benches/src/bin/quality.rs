//! `quality [--out DIR]`: reconstruction quality of every method on realistic acquisitions of
//! validation anatomy, as a thin user of `basin compare` ([`basin_benches::study`]).
//!
//! Dataset: `basin phantom --suite --seed 1 --anatomy mni=MNI152:60-108/12 --anatomy
//! s1=S1:135-175/10` (the realistic simulator: 2× off-grid object, smooth phase, 8 birdcage
//! coils, correlated noise with a noise scan, SNR 50; 4× equispaced 8 % ACS and 8× random 4 %
//! ACS) — the dataset `benches/compare-suite.sh` writes. Methods: the shipped protocols
//! zero-filled, sense, cs-l1-wavelet, cs-tv, brain-2d-ebm and brain-2d-ebm-weak-prior; basin's
//! L1-wavelet and TV with λ tuned per acceleration (`cs-l1-wavelet-tuned`, `cs-tv-tuned`) and
//! BART `ecalib` + `pics -l1` through `benches/bart-pics.py` with λ tuned the same way (best
//! PSNR of a grid on a separate MNI152 slice, z = 120, never in the test set). Metrics, runs and report are
//! `basin compare`'s (least-squares magnitude scale, fastMRI PSNR/SSIM); the reports are kept in
//! DIR/quality-Rx/ (index.html), and a rerun reuses their finished cells.
//!
//! Usage: `bash .ci/install-deps && bash benches/fetch-s1.sh && cargo build --release -p basin-cli
//! -p basin-benches && target/release/quality` (from the repository root; DIR defaults to
//! target/bench-study). Prints per acceleration a Markdown table of means ± SE and the paired
//! differences of the default protocol from every other method.

use basin_benches::study;
use std::path::PathBuf;

fn run(root: &std::path::Path) -> Result<(), String> {
    let dataset = root.join("suite");
    study::test_suite(&dataset, false)?;
    for accel in study::ACCELS {
        let t = study::tune(root, accel)?;
        let mut methods = Vec::new();
        for p in ["zero-filled", "sense", "cs-l1-wavelet"] {
            methods.push(basin_compare::Method::Protocol(study::protocol(p)?));
        }
        methods.push(study::l1_with(t.l1, "cs-l1-wavelet-tuned")?);
        methods.push(basin_compare::Method::Protocol(study::protocol("cs-tv")?));
        methods.push(study::tv_with(t.tv, "cs-tv-tuned")?);
        for p in ["brain-2d-ebm", "brain-2d-ebm-weak-prior"] {
            methods.push(basin_compare::Method::Protocol(study::protocol(p)?));
        }
        if let Some(b) = t.bart {
            methods.extend(study::bart(b, "bart-pics-l1"));
        }
        let report = root.join(format!("quality-{accel}x"));
        eprintln!("{accel}×: the test set into {}", report.display());
        let s = study::compare(
            &dataset,
            &study::test_cases(accel, false),
            methods,
            &report,
            true,
        )?;
        let bart_note = t
            .bart
            .map_or("BART not run".into(), |b| format!("BART λ {b}"));
        study::print_tables(
            &format!(
                "{accel}× (tuned λ: cs-l1-wavelet {}, cs-tv {}, {bart_note})",
                t.l1, t.tv
            ),
            &format!("{accel}×"),
            &s,
            "brain-2d-ebm",
        );
    }
    Ok(())
}

fn main() {
    let mut root = PathBuf::from("target/bench-study");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--out", Some(d)) => root = PathBuf::from(d),
            _ => {
                eprintln!("usage: quality [--out DIR]");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = run(&root) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
