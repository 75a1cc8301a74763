//! `uncertainty [MNI152.nii.gz] [SAMPLES]`: issue 5's "uncertainty is informative" on the
//! validation cases of the quality benchmark ([`basin_benches::cases`]): posterior sampling with
//! the shipped EBM protocol (`basin recon --samples`, default 8 samples, seed 7) on ESPIRiT maps,
//! then the Pearson correlation between the per-pixel standard deviation and the absolute error
//! of the samples' mean, over the pixels inside the object (truth > 10 % of its maximum). Also
//! the mean's PSNR/SSIM (fastMRI definitions, magnitudes scaled to the truth) and seconds.
//! Prints one row per case and a Markdown table of means per acceleration.

use basin_benches::cases::{ls_factor, metrics, mni_cases, scaled_mag};
use basin_core::metrics::pearson;
use basin_recon::protocol::{Protocol, Solver};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| basin_benches::prior_validation::MNI152.to_string());
    let samples: usize = match args.next().map(|s| s.parse()) {
        None => 8,
        Some(Ok(n)) if n >= 2 => n,
        Some(_) => {
            eprintln!("error: SAMPLES must be an integer ≥ 2");
            std::process::exit(2);
        }
    };
    let cases = match mni_cases(std::path::Path::new(&path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let Solver::Ebm(p) = Protocol::resolve("brain-2d-ebm", None)
        .expect("shipped protocol")
        .solver
    else {
        panic!("brain-2d-ebm is an EBM protocol")
    };
    let (model, _) = basin_prior::default_model().expect("embedded prior");
    let fast = basin_prior::fast::FastPyramid::new(&model);
    let mut rows: std::collections::BTreeMap<String, Vec<[f64; 5]>> = Default::default();
    for c in &cases {
        let (_, op) = match c.operator() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{}: {e}", c.label);
                continue;
            }
        };
        let t = Instant::now();
        let post = basin_recon::ebm::posterior(&op, &c.kspace, &fast, &p, Some(0.01), samples, 7);
        let secs = t.elapsed().as_secs_f64();
        let m = scaled_mag(&post.mean, &c.truth);
        // The SD on the truth's scale: the same least-squares factor as the mean's.
        let factor = ls_factor(&post.mean, &c.truth);
        let peak = c.truth.iter().cloned().fold(0.0f32, f32::max);
        let (mut err, mut sd) = (Vec::new(), Vec::new());
        for ((t, v), s) in c.truth.iter().zip(&m).zip(&post.sd) {
            if *t > 0.1 * peak {
                err.push((v - t).abs() as f64);
                sd.push((s * factor) as f64);
            }
        }
        let r = pearson(&sd, &err);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let q = metrics(&post.mean, &c.truth);
        let row = [r, mean(&sd) / peak as f64, q.psnr, q.ssim, secs];
        eprintln!(
            "{}: Pearson {:.3}, mean sd/peak {:.4}, PSNR {:.2}, SSIM {:.4}, {:.1} s",
            c.label, row[0], row[1], row[2], row[3], row[4]
        );
        rows.entry(c.label.clone()).or_default().push(row);
    }
    println!("| acceleration | Pearson(sd, abs error) | mean sd / peak | PSNR dB (mean of samples) | SSIM | seconds |");
    println!("|---|---|---|---|---|---|");
    for (acc, v) in &rows {
        let n = v.len() as f64;
        let mean = |i: usize| v.iter().map(|r| r[i]).sum::<f64>() / n;
        println!(
            "| {acc} | {:.3} | {:.4} | {:.2} | {:.4} | {:.1} |",
            mean(0),
            mean(1),
            mean(2),
            mean(3),
            mean(4)
        );
    }
}
