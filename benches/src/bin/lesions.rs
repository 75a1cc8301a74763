//! `lesions [--out DIR] [--weights W,W,..]`: how much of small lesions' contrast each method
//! keeps on realistic acquisitions of validation anatomy, as a thin user of `basin compare`
//! ([`basin_benches::study`]).
//!
//! Dataset: the quality benchmark's suite written with `--lesion-slices all` (every MNI152 and S1
//! slice also gets a copy with 4 small disks of ± contrast, recorded in the case's JSON; the
//! simulator inserts them into the high-resolution object before the acquisition). Methods:
//! sense (CG-SENSE), cs-l1-wavelet (shipped, and λ tuned per acceleration on the separate MNI152
//! slice as in `quality`), brain-2d-ebm and brain-2d-ebm-weak-prior, and the EBM at each
//! `--weights` prior weight. The contrast kept is `basin compare`'s (per case the mean over its
//! lesions of the lesion's contrast in the image over that in the reference, after the
//! least-squares scale). Prints per acceleration the means ± SE and the default protocol's paired
//! differences from every other method; reports in DIR/lesions-Rx/.
//!
//! Usage: as `quality` (`target/release/lesions`, DIR defaults to target/bench-study).

use basin_benches::study;
use std::path::PathBuf;

fn run(root: &std::path::Path, weights: &[f64]) -> Result<(), String> {
    let dataset = root.join("suite-lesions");
    study::test_suite(&dataset, true)?;
    for accel in study::ACCELS {
        let l1 = study::tune(root, accel)?.l1;
        let mut methods = vec![
            basin_compare::Method::Protocol(study::protocol("sense")?),
            basin_compare::Method::Protocol(study::protocol("cs-l1-wavelet")?),
            study::l1_with(l1, "cs-l1-wavelet-tuned")?,
            basin_compare::Method::Protocol(study::protocol("brain-2d-ebm")?),
            basin_compare::Method::Protocol(study::protocol("brain-2d-ebm-weak-prior")?),
        ];
        for &w in weights {
            methods.push(study::ebm_with(w, &format!("ebm-prior-weight-{w}"))?);
        }
        let report = root.join(format!("lesions-{accel}x"));
        eprintln!("{accel}×: the lesion cases into {}", report.display());
        let s = study::compare(
            &dataset,
            &study::test_cases(accel, true),
            methods,
            &report,
            false,
        )?;
        study::print_tables(
            &format!("{accel}× lesions (cs-l1-wavelet-tuned λ {l1})"),
            &format!("{accel}×"),
            &s,
            "brain-2d-ebm",
        );
    }
    Ok(())
}

fn main() {
    let mut root = PathBuf::from("target/bench-study");
    let mut weights = Vec::new();
    let mut args = std::env::args().skip(1);
    let usage = || -> ! {
        eprintln!("usage: lesions [--out DIR] [--weights W,W,..]  (prior weights > 0)");
        std::process::exit(2)
    };
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--out", Some(d)) => root = PathBuf::from(d),
            ("--weights", Some(v)) => {
                weights = match v.split(',').map(str::parse::<f64>).collect() {
                    Ok(w) => w,
                    Err(_) => usage(),
                };
                if !weights.iter().all(|w| w.is_finite() && *w > 0.0) {
                    usage()
                }
            }
            _ => usage(),
        }
    }
    if let Err(e) = run(&root, &weights) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
