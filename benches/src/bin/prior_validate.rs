//! `prior-validate WEIGHTS [MNI152.nii.gz]`: prints the Tweedie-vs-TV table and the ROC AUCs of a
//! prior (weights or a training checkpoint) on MNI152 validation slices.

use basin_benches::prior_validation::{auc_rows, tweedie_vs_tv, validation_slices, MNI152};
use basin_prior::fast::FastPyramid;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(weights) = args.get(1) else {
        eprintln!("usage: prior-validate WEIGHTS.safetensors [MNI152.nii.gz]");
        std::process::exit(2);
    };
    let mni = args.get(2).map(String::as_str).unwrap_or(MNI152);
    let run = || -> Result<(), String> {
        let bytes = std::fs::read(weights).map_err(|e| format!("{weights}: {e}"))?;
        let (model, card) = basin_prior::weights::from_safetensors(&bytes)
            .map_err(|e| format!("{weights}: {e}"))?;
        let vol = basin_export::nifti_in::read_nifti_volume(std::path::Path::new(mni))
            .map_err(|e| e.to_string())?;
        let slices = validation_slices(vol.view(), 5);
        let f = FastPyramid::new(&model);
        println!(
            "model {weights}: {} parameters, step {}",
            model.num_params(),
            card.get("step")
                .or(card.get("steps"))
                .map(String::as_str)
                .unwrap_or("?")
        );
        let t = Instant::now();
        println!("| σ | noisy dB | Tweedie dB | TV dB (λ) | Tweedie − TV |");
        println!("|---|---|---|---|---|");
        for r in tweedie_vs_tv(&f, &slices, &[0.05, 0.1], 7) {
            println!(
                "| {} | {:.2} | {:.2} | {:.2} ({:.3}) | {:+.2} |",
                r.sigma,
                r.noisy,
                r.tweedie,
                r.tv,
                r.tv_lambda,
                r.tweedie - r.tv
            );
        }
        for (name, auc) in auc_rows(&f, &slices, 8) {
            println!("ROC AUC clean vs {name}: {auc:.3}");
        }
        eprintln!(
            "({} slices, {:.1} s)",
            slices.len(),
            t.elapsed().as_secs_f64()
        );
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
