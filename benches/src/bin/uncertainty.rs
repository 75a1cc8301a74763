//! `uncertainty [--out DIR] [--samples N]`: whether the posterior SD map of the default
//! protocol (`basin recon -p brain-2d-ebm --samples N --uncertainty SD.nii.gz`, seed 7) means
//! something, on the quality benchmark's realistic acquisitions of validation anatomy
//! ([`basin_benches::study`]: MNI152 and S1, 4× and 8×). Each case runs through `basin recon`'s
//! pipeline ([`basin_recon::pipeline::Pipeline::run`]) and its files are read back as `basin
//! compare` reads them; the reference is the suite's truth. Inside the object (truth > 10 % of
//! its maximum), after the least-squares scale a of the mean to the truth (the SD scaled by the
//! same a):
//! - Pearson correlation of SD with |error| per pixel, and Spearman's over 8×8 patches (patches
//!   at least half inside the object; per patch the mean SD and the mean |error|);
//! - coverage of the interval mean ± k·SD, k calibrated on the separate tuning slice (MNI152
//!   z = 120, same acceleration) as the 90th percentile of |error|/SD there — nominal 90 % — and
//!   the coverage at the Gaussian k = 1.645 for comparison;
//! - PSNR/SSIM of the mean (`basin compare`'s metrics) and seconds.
//!
//! Usage: as `quality` (`target/release/uncertainty`, DIR defaults to target/bench-study).

use basin_benches::study;
use basin_compare::metrics::{image_metrics, ls_scale};
use basin_compare::stats::{mean_se, spearman};
use basin_recon::pipeline::{Format, Job, Outputs, Pipeline};
use basin_recon::{Protocol, ReconOptions};
use ndarray::Array3;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One case's measurements.
struct Measured {
    name: String,
    /// |error| / SD per object pixel.
    ratio: Vec<f64>,
    pearson: f64,
    spearman_patch: f64,
    psnr: f64,
    ssim: f64,
    seconds: f64,
}

fn measure(
    pipeline: &Pipeline,
    protocol: &Protocol,
    case: &basin_compare::Case,
    scratch: &Path,
    samples: usize,
) -> Result<Measured, String> {
    let reference = case
        .reference
        .as_ref()
        .ok_or_else(|| format!("{}: no reference", case.name))?;
    let image = scratch.join(format!("{}.nii.gz", case.name));
    let sd_path = scratch.join(format!("{}.sd.nii.gz", case.name));
    let outputs = Outputs {
        images: vec![(image.clone(), Format::Nifti)],
        uncertainty: Some(sd_path.clone()),
        ..Outputs::default()
    };
    let job = Job {
        input: &case.input,
        dataset: None,
        protocol,
        options: ReconOptions {
            samples,
            seed: 7,
            ..Default::default()
        },
        outputs: &outputs,
        force: true,
    };
    let t = Instant::now();
    pipeline
        .run(&job, &|_| {})
        .map_err(|e| format!("{}: {e}", case.name))?;
    let seconds = t.elapsed().as_secs_f64();
    let mean = basin_compare::read_image(&image)?;
    let sd = basin_compare::read_image(&sd_path)?;
    let truth = reference.load()?;
    if mean.dim() != truth.dim() || sd.dim() != truth.dim() {
        return Err(format!(
            "{}: image {:?}, SD {:?} and truth {:?} differ in shape",
            case.name,
            mean.dim(),
            sd.dim(),
            truth.dim()
        ));
    }
    let a = ls_scale(mean.view(), truth.view()) as f32;
    let q = image_metrics(mean.view(), truth.view());
    let peak = truth.iter().copied().fold(0.0f32, f32::max);
    let inside = truth.mapv(|t| t > 0.1 * peak);
    let err: Array3<f32> = (&mean * a - &truth).mapv(f32::abs);
    let sd = sd.mapv(|s| s * a);
    let (mut e, mut s) = (Vec::new(), Vec::new());
    for ((&i, &ev), &sv) in inside.iter().zip(&err).zip(&sd) {
        if i {
            e.push(ev as f64);
            s.push(sv as f64);
        }
    }
    let ratio = e.iter().zip(&s).map(|(e, s)| e / s.max(1e-12)).collect();
    let (nz, ny, nx) = truth.dim();
    let (mut pe, mut ps) = (Vec::new(), Vec::new());
    for z in 0..nz {
        for y0 in (0..ny.saturating_sub(7)).step_by(8) {
            for x0 in (0..nx.saturating_sub(7)).step_by(8) {
                let (mut n, mut se, mut ss) = (0usize, 0.0f64, 0.0f64);
                for y in y0..y0 + 8 {
                    for x in x0..x0 + 8 {
                        if inside[[z, y, x]] {
                            n += 1;
                            se += err[[z, y, x]] as f64;
                            ss += sd[[z, y, x]] as f64;
                        }
                    }
                }
                if n >= 32 {
                    pe.push(se / n as f64);
                    ps.push(ss / n as f64);
                }
            }
        }
    }
    Ok(Measured {
        name: case.name.clone(),
        ratio,
        pearson: basin_core::metrics::pearson(&s, &e),
        spearman_patch: spearman(&ps, &pe),
        psnr: q.psnr,
        ssim: q.ssim,
        seconds,
    })
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

fn coverage(ratio: &[f64], k: f64) -> f64 {
    ratio.iter().filter(|&&r| r <= k).count() as f64 / ratio.len().max(1) as f64
}

fn run(root: &Path, samples: usize) -> Result<(), String> {
    let dataset = root.join("suite");
    let tuning = root.join("tune");
    study::test_suite(&dataset, false)?;
    study::tuning_suite(&tuning)?;
    let scratch = root.join("uncertainty");
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let protocol = study::protocol("brain-2d-ebm")?;
    let pipeline = Pipeline::new(basin_recon::Backend::Cpu);
    println!("| accel | cases | PSNR dB (mean of samples) | SSIM | Pearson(SD, abs error), pixels | Spearman, 8×8 patches | k (tuning slice, 90 %) | coverage at k | coverage at 1.645 | s/slice |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for accel in study::ACCELS {
        let select = |dir: &Path, patterns: &[String]| {
            basin_compare::select(dir, patterns).map_err(|e| e.to_string())
        };
        let tune = select(&tuning, &[format!("tune-*_{accel}x")])?;
        let tune = tune
            .first()
            .ok_or_else(|| format!("no tuning case at {accel}×"))?;
        let t = measure(&pipeline, &protocol, tune, &scratch, samples)?;
        let k = quantile(&t.ratio, 0.9);
        eprintln!("{accel}×: k = {k:.3} on {}", t.name);
        let mut rows = Vec::new();
        for c in select(&dataset, &study::test_cases(accel, false))? {
            let m = measure(&pipeline, &protocol, &c, &scratch, samples)?;
            eprintln!(
                "  {}: PSNR {:.2}, Pearson {:.3}, Spearman(patches) {:.3}, coverage {:.3}, {:.1} s",
                m.name,
                m.psnr,
                m.pearson,
                m.spearman_patch,
                coverage(&m.ratio, k),
                m.seconds
            );
            rows.push(m);
        }
        let col = |f: &dyn Fn(&Measured) -> f64, d: usize| {
            let (m, se) = mean_se(&rows.iter().map(f).collect::<Vec<_>>());
            format!("{m:.d$} ± {se:.d$}")
        };
        println!(
            "| {accel}× | {} | {} | {} | {} | {} | {k:.3} | {} | {} | {} |",
            rows.len(),
            col(&|m| m.psnr, 2),
            col(&|m| m.ssim, 4),
            col(&|m| m.pearson, 3),
            col(&|m| m.spearman_patch, 3),
            col(&|m| coverage(&m.ratio, k), 3),
            col(&|m| coverage(&m.ratio, 1.645), 3),
            col(&|m| m.seconds, 1),
        );
    }
    Ok(())
}

fn main() {
    let mut root = PathBuf::from("target/bench-study");
    let mut samples = 8usize;
    let mut args = std::env::args().skip(1);
    let usage = || -> ! {
        eprintln!("usage: uncertainty [--out DIR] [--samples N]  (N ≥ 2)");
        std::process::exit(2)
    };
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--out", Some(d)) => root = PathBuf::from(d),
            ("--samples", Some(n)) => match n.parse() {
                Ok(n) if n >= 2 => samples = n,
                _ => usage(),
            },
            _ => usage(),
        }
    }
    if let Err(e) = run(&root, samples) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
