//! `lesions [MNI152.nii.gz] [--weights W,W,..]`: how much of small lesions' contrast each method
//! keeps on validation anatomy (issue 5: ≥ 90 % at 4×, ≥ 75 % at 8×, never less than
//! L1-wavelet). Lesions of [`basin_benches::lesions`] in the MNI152 slices
//! [`LESION_SLICES`], simulated as the quality benchmark's cases at 4× and 8×; methods: CG-SENSE
//! (30 iterations), L1-wavelet (shipped protocol, and λ tuned on the first 4× case by PSNR as in
//! `quality`) and the EBM at the given prior weights (default: those of the two shipped EBM
//! protocols, `brain-2d-ebm` and `brain-2d-ebm-weak-prior`).
//! Prints per acceleration the mean fraction of contrast kept and the smallest, then each EBM's
//! paired difference from L1-wavelet (mean over lesions ± standard error).

use basin_benches::cases::{mni_slices, scaled_mag, tune_l1_lambda};
use basin_benches::lesions::{kept, lesion_cases, LESION_SLICES};
use basin_recon::protocol::{Protocol, Solver};
use ndarray::Axis;
use std::collections::BTreeMap;

fn main() {
    let mut path = basin_benches::prior_validation::MNI152.to_string();
    let ebm_protocol = |name: &str| match Protocol::resolve(name, None).map(|p| p.solver) {
        Ok(Solver::Ebm(p)) => p,
        other => {
            eprintln!("error: {name} is not an EBM protocol ({other:?})");
            std::process::exit(1);
        }
    };
    let ebm = ebm_protocol("brain-2d-ebm");
    let mut weights = vec![
        ebm.prior_weight,
        ebm_protocol("brain-2d-ebm-weak-prior").prior_weight,
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--weights" {
            let v = args.next().unwrap_or_default();
            let parsed: Result<Vec<f64>, _> = v.split(',').map(|w| w.parse::<f64>()).collect();
            weights = match parsed {
                Ok(w) if w.iter().all(|x| x.is_finite() && *x > 0.0) => w,
                _ => {
                    eprintln!(
                        "error: --weights takes prior weights > 0 separated by commas, got {v:?}"
                    );
                    std::process::exit(2);
                }
            };
        } else {
            path = a;
        }
    }
    let slices = match mni_slices(std::path::Path::new(&path), &LESION_SLICES) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let l1 = match Protocol::resolve("cs-l1-wavelet", None).map(|p| p.solver) {
        Ok(Solver::L1Wavelet(p)) => p,
        other => {
            eprintln!("error: cs-l1-wavelet is not an L1-wavelet protocol ({other:?})");
            std::process::exit(1);
        }
    };
    let (model, _) = basin_prior::default_model().expect("embedded prior");
    let fast = basin_prior::fast::FastPyramid::new(&model);
    let cases = lesion_cases(&slices, &[4.0, 8.0], 12);
    // (acceleration, method) -> kept per lesion, in the same lesion order for every method
    let mut rows: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    let mut l1_tuned = l1.lambda;
    for (ci, lc) in cases.iter().enumerate() {
        let c = &lc.case;
        let (_, op) = match c.operator() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("case {ci}: {e}");
                continue;
            }
        };
        let mut record = |name: &str, x: &ndarray::Array3<basin_core::C32>| {
            let m = scaled_mag(x, &c.truth);
            rows.entry((c.label.clone(), name.to_string()))
                .or_default()
                .extend(kept(lc, m.index_axis(Axis(0), 0)));
        };
        let (x, _) = basin_recon::solvers::cg_sense(&op, &c.kspace, 0.0, 1e-4, 30, None);
        record("CG-SENSE", &x);
        let (x, _) = basin_recon::cs::l1_wavelet(&op, &c.kspace, &l1);
        record("L1-wavelet (shipped protocol)", &x);
        if ci == 0 {
            l1_tuned = tune_l1_lambda(&op, c, &l1);
            eprintln!("L1-wavelet λ tuned on case 0: {l1_tuned}");
        }
        let q = basin_recon::cs::L1Params {
            lambda: l1_tuned,
            ..l1
        };
        let (x, _) = basin_recon::cs::l1_wavelet(&op, &c.kspace, &q);
        record("L1-wavelet, λ tuned", &x);
        for &w in &weights {
            let p = basin_recon::ebm::EbmParams {
                prior_weight: w,
                ..ebm
            };
            let (x, _) = basin_recon::ebm::ebm(&op, &c.kspace, &fast, &p, Some(0.01));
            record(&format!("EBM, prior weight {w}"), &x);
        }
        eprintln!(
            "case {} of {} done ({} lesions)",
            ci + 1,
            cases.len(),
            lc.lesions.len()
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!("| acceleration | method | lesions | contrast kept, mean | smallest |");
    println!("|---|---|---|---|---|");
    for ((acc, name), k) in &rows {
        println!(
            "| {acc} | {name} | {} | {:.3} | {:.3} |",
            k.len(),
            mean(k),
            k.iter().copied().fold(f64::INFINITY, f64::min)
        );
    }
    println!();
    for ((acc, name), k) in rows.iter().filter(|((_, n), _)| n.starts_with("EBM")) {
        for l1 in ["L1-wavelet (shipped protocol)", "L1-wavelet, λ tuned"] {
            let Some(r) = rows.get(&(acc.clone(), l1.to_string())) else {
                continue;
            };
            let d: Vec<f64> = k.iter().zip(r).map(|(a, b)| a - b).collect();
            let m = mean(&d);
            let sd = (d.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (d.len().max(2) - 1) as f64)
                .sqrt();
            println!(
                "{acc}: {name} − {l1}: {m:+.3} ± {:.3} (paired, standard error)",
                sd / (d.len() as f64).sqrt()
            );
        }
    }
}
