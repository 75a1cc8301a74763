//! `prior-validate WEIGHTS [--mni FILE] [--calibrate CLEAN.nii.gz]... [--out SHIPPED.safetensors]`:
//! prints the Tweedie-vs-TV table and the ROC AUCs of a prior (weights or a training checkpoint)
//! on MNI152 validation slices. With `--out`, writes the model as shipped: float32 weights only,
//! the training card (with `--set KEY=VALUE` entries added, e.g. the training time of a run
//! stopped at a checkpoint) plus these validation results and the typical ranges against which
//! `basin score` flags slices. With `--calibrate` (repeatable: clean reconstructions of
//! single-subject training anatomy, `benches/score-calibrate.sh` makes them) those ranges are the
//! single-subject rule fitted on their slices (`ScoreTypicality::fit_single_subject`) and MNI152
//! only validates them; without it, the older rule's ranges are fitted on the MNI152 slices.

use basin_benches::prior_validation::{
    clean_scores, corruption_zs, tweedie_vs_tv, validation_slices, volume_scores, MNI152,
};
use basin_prior::fast::FastPyramid;
use basin_prior::validate::ScoreTypicality;
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut weights = None;
    let mut mni = MNI152.to_string();
    let mut out = None;
    let mut set: Vec<(String, String)> = Vec::new();
    let mut calibrate: Vec<String> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--mni" if i + 1 < args.len() => {
                mni = args[i + 1].clone();
                i += 1;
            }
            "--out" if i + 1 < args.len() => {
                out = Some(args[i + 1].clone());
                i += 1;
            }
            "--calibrate" if i + 1 < args.len() => {
                calibrate.push(args[i + 1].clone());
                i += 1;
            }
            "--set" if i + 1 < args.len() => {
                if let Some((k, v)) = args[i + 1].split_once('=') {
                    set.push((k.to_string(), v.to_string()));
                }
                i += 1;
            }
            a if weights.is_none() && !a.starts_with('-') => weights = Some(a.to_string()),
            a => {
                eprintln!("unexpected argument {a}");
                weights = None;
                break;
            }
        }
        i += 1;
    }
    let Some(weights) = weights else {
        eprintln!("usage: prior-validate WEIGHTS.safetensors [--mni MNI152.nii.gz] [--calibrate CLEAN.nii.gz]... [--out SHIPPED.safetensors [--set KEY=VALUE]...]");
        std::process::exit(2);
    };
    if let Err(e) = run(&weights, &mni, &calibrate, out.as_deref(), &set) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(
    weights: &str,
    mni: &str,
    calibrate: &[String],
    out: Option<&str>,
    set: &[(String, String)],
) -> Result<(), String> {
    let bytes = std::fs::read(weights).map_err(|e| format!("{weights}: {e}"))?;
    let (model, mut card) =
        basin_prior::weights::from_safetensors(&bytes).map_err(|e| format!("{weights}: {e}"))?;
    let vol =
        basin_export::nifti_in::read_nifti_volume(Path::new(mni)).map_err(|e| e.to_string())?;
    let slices = validation_slices(vol.view(), 5);
    let f = FastPyramid::new(&model);
    let step = card
        .get("step")
        .or(card.get("steps"))
        .cloned()
        .unwrap_or_else(|| "?".into());
    println!(
        "model {weights}: {} parameters, step {step}",
        model.num_params()
    );
    let t = Instant::now();
    let mut report = String::from("MNI152 2009a, 15 slices (5 per axis at 30-70 % of the extent), p99 = 1, complex Gaussian noise; PSNR over complex values, peak = max magnitude.\n");
    report += "| σ | noisy dB | Tweedie dB | TV dB (λ) | Tweedie − TV |\n|---|---|---|---|---|\n";
    for r in tweedie_vs_tv(&f, &slices, &[0.05, 0.1], 7) {
        report += &format!(
            "| {} | {:.2} | {:.2} | {:.2} ({:.3}) | {:+.2} |\n",
            r.sigma,
            r.noisy,
            r.tweedie,
            r.tv,
            r.tv_lambda,
            r.tweedie - r.tv
        );
    }
    // The typical ranges: the single-subject rule on the calibration volumes' slices, or the
    // older rule on 24 MNI152 slices (8 per axis); the AUCs on 15 MNI152 slices.
    let typ = if calibrate.is_empty() {
        ScoreTypicality::fit_for_card(&clean_scores(&f, &validation_slices(vol.view(), 8)), &card)
    } else {
        let mut clean = Vec::new();
        for c in calibrate {
            clean.extend(volume_scores(&f, Path::new(c))?);
        }
        report += &format!(
            "score calibrated on {} clean slices of {} single-subject volumes (the single-subject rule); ",
            clean.len(),
            calibrate.len()
        );
        ScoreTypicality::fit_single_subject(&clean)
    };
    let mut ranges: Vec<String> = typ
        .ranges()
        .iter()
        .map(|(name, _, t)| format!("{name} median {:.4}, MAD {:.4}", t.median, t.mad))
        .collect();
    if let Some(st) = typ.structure {
        ranges.push(format!(
            "structure line ln(score norm) = {:.4} + {:.4} × energy",
            st.intercept, st.slope
        ));
    }
    report += &format!(
        "slice statistics at sigma 0.02 ({}, energies per object pixel): {}. AUC of the largest robust z of {}:\n",
        if calibrate.is_empty() { "24 MNI152 slices" } else { "calibration slices" },
        ranges.join("; "),
        typ.rule()
    );
    for (name, auc) in corruption_zs(&f, &slices, &typ, 8).aucs() {
        report += &format!("ROC AUC clean vs {name}: {auc:.3}\n");
    }
    print!("{report}");
    eprintln!(
        "({} slices, {:.1} s)",
        slices.len(),
        t.elapsed().as_secs_f64()
    );
    if let Some(out) = out {
        for k in ["params", "adam_m", "adam_v", "adam_t", "step"] {
            card.remove(k);
        }
        card.insert("validation".into(), report);
        for (k, v) in set {
            card.insert(k.clone(), v.clone());
        }
        typ.to_card(&mut card);
        let bytes =
            basin_prior::weights::to_safetensors(&model, &card).map_err(|e| e.to_string())?;
        let tmp = format!("{out}.tmp");
        std::fs::write(&tmp, bytes).map_err(|e| format!("{tmp}: {e}"))?;
        std::fs::rename(&tmp, out).map_err(|e| format!("{out}: {e}"))?;
        println!("wrote {out}");
    }
    Ok(())
}
