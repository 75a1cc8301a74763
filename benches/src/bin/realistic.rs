//! Issue 18's benchmark: basin against BART on realistic acquisitions of anatomy basin never
//! trained on. Each slice of two validation subjects (DATA.md: MNI152 and Gallant lab subject S1)
//! goes through the realistic simulator (`basin phantom --from`: 2× off-grid object, smooth
//! phase, 8 birdcage coils, a receive-array noise covariance with a noise scan, SNR 50) at 4×
//! (equispaced, 8 % ACS) and 8× (random, 4 % ACS), is assembled as `basin recon` assembles a file,
//! and is reconstructed by the shipped protocols with prewhitening on and off, and by BART
//! (`ecalib -m1 -r 24:<ACS>` + `pics -S -l1 -i 100`) on the raw and on the whitened k-space, its
//! λ tuned per acceleration and input on a separate MNI152 slice. PSNR and SSIM of the magnitude
//! after the least-squares scale to the truth (the benchmarks' convention); seconds are wall time
//! per slice (basin: calibration + solve in-process; BART: both processes).
//!
//! Usage: `bash benches/fetch-s1.sh && cargo run --release -p basin-benches --bin realistic`.
//!
//! `… --bin realistic -- --schedules` instead sweeps the EBM protocol's iteration counts
//! (levels × inner prior steps, CG iterations per data-consistency step) on the tuning slices
//! only (MNI152 z = 120, S1 y = 130; neither is in the test set), to choose the shipped schedule
//! without looking at the test set.
//!
//! `--cg-trace` prints CG-SENSE's PSNR and residual per iteration (CSV) on the test and tuning
//! slices; `--prewhiten` tabulates prewhitening on against off for CG-SENSE (fixed iteration
//! counts, the shipped stop, the discrepancy stop) and L1-wavelet (λ, iterations); `--l1-maps`
//! runs L1 and CG-SENSE with the true and with basin's ESPIRiT maps, on and off; `--l1-trace`
//! prints L1-wavelet's PSNR and data residual per FISTA step (CSV), as `--cg-trace` does for CG;
//! `--calib-sweep [--kernels 6,5] [--protocols sense,…] [--accels 8] [--info]` runs protocols
//! with other ESPIRiT kernels and calibration widths and prints their PSNR and map error (CSV).

use basin_benches::cases::{metrics, mni_slices, realistic_acquisition, s1_slices};
use basin_benches::prior_validation::MNI152;
use basin_benches::{read_cfl, write_cfl};
use basin_core::C32;
use basin_mrd::KSpace;
use basin_phantom::realistic::Simulation;
use basin_recon::{prewhiten, reconstruct, Protocol};
use ndarray::{Array2, Array3, Axis};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const S1: &str = "target/data/S1_raw.nii.gz";
const MNI_SLICES: [usize; 5] = [60, 72, 84, 96, 108];
/// S1 is LIA: axial slices are planes of the second axis (inferior increasing).
const S1_SLICES: [usize; 5] = [80, 90, 100, 110, 120];
const TUNE_SLICE: usize = 120;
/// S1's tuning slice for the schedule sweep (not in the test set).
const S1_TUNE_SLICE: usize = 130;
const BART_GRID: [f64; 8] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2];
const PROTOCOLS: [&str; 4] = ["brain-2d-ebm", "sense", "cs-l1-wavelet", "cs-tv"];

struct Acq {
    sim: Simulation,
    kspace: KSpace,
    acs: usize,
}

fn acquire(slice: &Array2<f32>, accel: f64, seed: u64) -> Acq {
    let (sim, kspace) = realistic_acquisition(slice, accel, 0, seed);
    let acs = sim.acs.iter().filter(|&&a| a).count();
    Acq { sim, kspace, acs }
}

#[derive(Clone, Copy, Default)]
struct Score {
    psnr: f64,
    ssim: f64,
    seconds: f64,
}

fn score(x: &Array3<C32>, truth: &Array3<f32>, seconds: f64) -> Score {
    let m = metrics(x, truth);
    Score {
        psnr: m.psnr,
        ssim: m.ssim,
        seconds,
    }
}

fn run_basin(p: &Protocol, a: &Acq) -> (Score, Array3<C32>) {
    let t = Instant::now();
    let r = reconstruct(p, &a.kspace).expect("reconstruct");
    let s = t.elapsed().as_secs_f64();
    let maps = r.slices[0].maps.index_axis(Axis(1), 0).to_owned();
    (score(&r.slices[0].image, &a.sim.truth, s), maps)
}

/// BART on the raw (or whitened) k-space: ESPIRiT maps then L1-wavelet; the score and the maps.
/// With `maps` (basin's, `[c, y, x]`) BART skips `ecalib` and solves with them on the raw
/// k-space.
fn run_bart(
    dir: &Path,
    a: &Acq,
    whiten: bool,
    lambda: f64,
    maps: Option<&Array3<C32>>,
) -> Option<(Score, Array3<C32>)> {
    let mut k = a.sim.kspace.clone();
    if whiten {
        let cov = prewhiten::noise_covariance(&a.sim.noise_scan);
        let w = prewhiten::whitening_matrix(&cov, 1.0).ok()?;
        prewhiten::apply(&w, &mut k);
    }
    let (nc, _, ny, nx) = k.dim();
    let kb = dir.join("k");
    let mb = dir.join("m");
    let ob = dir.join("o");
    write_cfl(&kb, &[nx, ny, 1, nc], k.as_slice()?).ok()?;
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    if let Some(m) = maps {
        write_cfl(&mb, &[nx, ny, 1, nc], m.as_standard_layout().as_slice()?).ok()?;
    }
    let t = Instant::now();
    let ok = |args: &[String]| {
        Command::new("bart")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .is_some()
    };
    if maps.is_none()
        && !ok(&[
            "ecalib".into(),
            "-m1".into(),
            "-r".into(),
            format!("24:{}", a.acs),
            s(&kb),
            s(&mb),
        ])
    {
        return None;
    }
    if !ok(&[
        "pics".into(),
        "-S".into(),
        "-l1".into(),
        "-r".into(),
        lambda.to_string(),
        "-i".into(),
        "100".into(),
        s(&kb),
        s(&mb),
        s(&ob),
    ]) {
        return None;
    }
    let secs = t.elapsed().as_secs_f64();
    let (_, v) = read_cfl(&ob).ok()?;
    let img = Array3::from_shape_vec((1, ny, nx), v).ok()?;
    let (_, m) = read_cfl(&mb).ok()?;
    let maps = Array3::from_shape_vec((nc, ny, nx), m).ok()?;
    Some((score(&img, &a.sim.truth, secs), maps))
}

/// Mean over the object (truth > 10 % of its maximum) of the phase-invariant map error
/// min_φ ‖m(r) − e^{iφ} s(r)‖² = ‖m‖² + ‖s‖² − 2|⟨s, m⟩| against the true unit-norm maps s;
/// `maps` `[c, y, x]`.
fn map_error(maps: &Array3<C32>, a: &Acq) -> f64 {
    let truth = a.sim.truth.index_axis(Axis(0), 0);
    let t = truth.iter().fold(0.0f32, |m, &v| m.max(v)) * 0.1;
    let (mut sum, mut n) = (0.0f64, 0usize);
    for ((y, x), &v) in truth.indexed_iter() {
        if v <= t {
            continue;
        }
        let (mut mm, mut ss, mut sm) = (0.0f64, 0.0f64, num_complex::Complex64::new(0.0, 0.0));
        for c in 0..maps.dim().0 {
            let m = maps[[c, y, x]];
            let s = a.sim.maps[[c, 0, y, x]];
            mm += m.norm_sqr() as f64;
            ss += s.norm_sqr() as f64;
            sm += num_complex::Complex64::new(
                (s.re * m.re + s.im * m.im) as f64,
                (s.re * m.im - s.im * m.re) as f64,
            );
        }
        sum += mm + ss - 2.0 * sm.norm();
        n += 1;
    }
    sum / n.max(1) as f64
}

fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, (var / n).sqrt())
}

/// The EBM schedule sweep (`--schedules`): PSNR, SSIM and seconds of `brain-2d-ebm` with other
/// (levels, inner, cg_iterations) on the tuning slices, against the shipped schedule.
fn sweep_schedules(root: &Path) {
    let slices = tune_slices(root);
    let schedules: [(usize, usize, usize); 8] = [
        (6, 5, 5),
        (6, 4, 4),
        (6, 3, 5),
        (6, 3, 4),
        (6, 3, 3),
        (5, 3, 4),
        (4, 4, 4),
        (4, 3, 4),
    ];
    let base = Protocol::resolve("brain-2d-ebm", None).unwrap();
    println!(
        "| accel | schedule (levels × inner, CG) | prior steps | PSNR dB | SSIM | seconds/slice |"
    );
    println!("|---|---|---|---|---|---|");
    for accel in [4.0, 8.0] {
        let acqs: Vec<Acq> = slices
            .iter()
            .enumerate()
            .map(|(i, (_, s))| acquire(s, accel, 900 + i as u64))
            .collect();
        for (levels, inner, cg) in schedules {
            let mut p = base.clone();
            if let basin_recon::protocol::Solver::Ebm(e) = &mut p.solver {
                e.levels = levels;
                e.inner = inner;
                e.cg_iterations = cg;
            }
            let v: Vec<Score> = acqs.iter().map(|a| run_basin(&p, a).0).collect();
            let n = v.len() as f64;
            let (ps, ss, t) = v.iter().fold((0.0, 0.0, 0.0), |acc, s| {
                (
                    acc.0 + s.psnr / n,
                    acc.1 + s.ssim / n,
                    acc.2 + s.seconds / n,
                )
            });
            for ((name, _), s) in slices.iter().zip(&v) {
                eprintln!(
                    "{accel}× {name} {levels}×{inner}, CG {cg}: {:.2} dB {:.4} ({:.2} s)",
                    s.psnr, s.ssim, s.seconds
                );
            }
            println!(
                "| {accel}× | {levels} × {inner}, CG {cg} | {} | {ps:.2} | {ss:.4} | {t:.2} |",
                levels * inner
            );
        }
    }
}

/// The seed of test case `i` at `accel`, shared by every mode so they see the same acquisitions.
fn case_seed(i: usize, accel: f64) -> u64 {
    100 + i as u64 + if accel > 5.0 { 50 } else { 0 }
}

/// The tuning slices (MNI152 z 120, S1 y 130; neither in the test set) as (name, image).
fn tune_slices(root: &Path) -> Vec<(String, Array2<f32>)> {
    let mni = mni_slices(&root.join(MNI152), &[TUNE_SLICE])
        .unwrap_or_else(|e| panic!("{e} (.ci/install-deps fetches MNI152)"));
    let s1 = s1_slices(&root.join(S1), &[S1_TUNE_SLICE])
        .unwrap_or_else(|e| panic!("{e} (run benches/fetch-s1.sh)"));
    vec![
        (format!("MNI152 z{TUNE_SLICE}"), mni[0].clone()),
        (format!("S1 y{S1_TUNE_SLICE}"), s1[0].clone()),
    ]
}

/// The test slices as (name, image): MNI152 then S1.
fn test_slices(root: &Path) -> Vec<(String, Array2<f32>)> {
    let mni = mni_slices(&root.join(MNI152), &MNI_SLICES)
        .unwrap_or_else(|e| panic!("{e} (.ci/install-deps fetches MNI152)"));
    let s1 = s1_slices(&root.join(S1), &S1_SLICES)
        .unwrap_or_else(|e| panic!("{e} (run benches/fetch-s1.sh)"));
    mni.into_iter()
        .zip(MNI_SLICES)
        .map(|(s, z)| (format!("MNI152 z{z}"), s))
        .chain(
            s1.into_iter()
                .zip(S1_SLICES)
                .map(|(s, y)| (format!("S1 y{y}"), s)),
        )
        .collect()
}

/// The prewhitening study (`--prewhiten`): on the test cases, CG-SENSE with prewhitening on
/// and off at fixed iteration counts, at the shipped stop and at the discrepancy stop it
/// replaced, and L1-wavelet on and off over λ and iterations — whether whitening's loss at 8×
/// is the estimator (worse at every setting) or where each one stops (better at its best
/// setting, worse at a stop).
fn prewhiten_study(root: &Path) {
    use basin_recon::protocol::Solver;
    let slices = test_slices(root);
    let iters = [2usize, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30];
    let sense = Protocol::resolve("sense", None).unwrap();
    let mut discrepancy_stop = sense.clone();
    if let Solver::CgSense {
        discrepancy, stall, ..
    } = &mut discrepancy_stop.solver
    {
        *discrepancy = 1.2;
        *stall = 0.0;
    }
    let stops = [
        ("shipped stop (stall 0.015)", sense.clone()),
        ("discrepancy 1.2 (shipped before)", discrepancy_stop),
    ];
    let l1 = Protocol::resolve("cs-l1-wavelet", None).unwrap();
    // (λ factor, iterations) of L1-wavelet against the shipped protocol.
    let l1_settings = [
        (0.25f32, 100usize),
        (0.5, 100),
        (1.0, 100),
        (2.0, 100),
        (4.0, 100),
        (8.0, 100),
        (1.0, 300),
    ];
    for accel in [4.0, 8.0] {
        // [slice][setting] PSNR and iterations, prewhitening on and off.
        let mut cg = vec![vec![[0.0f64; 2]; iters.len()]; slices.len()];
        let mut stopped = vec![vec![[(0.0f64, 0usize); 2]; stops.len()]; slices.len()];
        let mut lw = vec![vec![[0.0f64; 2]; l1_settings.len()]; slices.len()];
        for (i, (name, slice)) in slices.iter().enumerate() {
            let a = acquire(slice, accel, case_seed(i, accel));
            for (j, on) in [true, false].into_iter().enumerate() {
                for (t, (_, p)) in stops.iter().enumerate() {
                    let mut p = p.clone();
                    p.prewhiten = on;
                    let r = reconstruct(&p, &a.kspace).expect("reconstruct");
                    stopped[i][t][j] = (
                        score(&r.slices[0].image, &a.sim.truth, 0.0).psnr,
                        r.slices[0].diagnostics.iterations,
                    );
                }
                for (t, &n) in iters.iter().enumerate() {
                    let q = cg_fixed(n, on);
                    cg[i][t][j] = run_basin(&q, &a).0.psnr;
                }
                for (t, &(f, n)) in l1_settings.iter().enumerate() {
                    let mut q = l1.clone();
                    q.prewhiten = on;
                    if let Solver::L1Wavelet(l) = &mut q.solver {
                        l.lambda *= f;
                        l.iterations = n;
                    }
                    lw[i][t][j] = run_basin(&q, &a).0.psnr;
                }
            }
            let s = &stopped[i][0];
            eprintln!(
                "{accel}× {name}: CG stop on {} off {}, PSNR on {:.2} off {:.2}",
                s[0].1, s[1].1, s[0].0, s[1].0
            );
        }
        println!(
            "\n### {accel}×: CG-SENSE, prewhitening on − off ({} slices)\n",
            slices.len()
        );
        println!("| iterations | on dB | off dB | on − off dB |");
        println!("|---|---|---|---|");
        let row = |label: String, on: Vec<f64>, off: Vec<f64>| {
            let d: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a - b).collect();
            let (a, _) = mean_se(&on);
            let (b, _) = mean_se(&off);
            let (m, e) = mean_se(&d);
            println!("| {label} | {a:.2} | {b:.2} | {m:+.2} ± {e:.2} |");
        };
        for (t, n) in iters.iter().enumerate() {
            row(
                n.to_string(),
                cg.iter().map(|v| v[t][0]).collect(),
                cg.iter().map(|v| v[t][1]).collect(),
            );
        }
        let n = slices.len() as f64;
        for (t, (label, _)) in stops.iter().enumerate() {
            let mean_it = |j: usize| stopped.iter().map(|s| s[t][j].1 as f64).sum::<f64>() / n;
            row(
                format!(
                    "{label}: mean iterations on {:.1}, off {:.1}",
                    mean_it(0),
                    mean_it(1)
                ),
                stopped.iter().map(|s| s[t][0].0).collect(),
                stopped.iter().map(|s| s[t][1].0).collect(),
            );
        }
        let best = |j: usize| -> Vec<f64> {
            cg.iter()
                .map(|v| v.iter().map(|x| x[j]).fold(f64::MIN, f64::max))
                .collect()
        };
        row("best per slice (oracle)".into(), best(0), best(1));
        println!(
            "\n### {accel}×: cs-l1-wavelet, prewhitening on − off ({} slices)\n",
            slices.len()
        );
        println!("| λ, iterations | on dB | off dB | on − off dB |");
        println!("|---|---|---|---|");
        for (t, (f, n)) in l1_settings.iter().enumerate() {
            row(
                format!("{f} × shipped, {n}"),
                lw.iter().map(|v| v[t][0]).collect(),
                lw.iter().map(|v| v[t][1]).collect(),
            );
        }
    }
}

/// The `sense` protocol with exactly `n` CG iterations (no early stop), prewhitening `on` or
/// off.
fn cg_fixed(n: usize, on: bool) -> Protocol {
    let mut q = Protocol::resolve("sense", None).unwrap();
    q.prewhiten = on;
    if let basin_recon::protocol::Solver::CgSense {
        iterations,
        discrepancy,
        tolerance,
        stall,
        ..
    } = &mut q.solver
    {
        *iterations = n;
        *discrepancy = 0.0;
        *stall = 0.0;
        *tolerance = 0.0;
    }
    q
}

/// `--cg-trace`: CSV on stdout of CG-SENSE's PSNR and ‖Ax − y‖/(σ√m) after 1…20 iterations
/// (no early stop) with prewhitening on and off, on the test slices and the tuning slices (named
/// `TUNE …`), to choose and check the stopping rule of the `sense` protocol.
fn cg_trace(root: &Path) {
    let mut slices = test_slices(root);
    slices.extend(
        tune_slices(root)
            .into_iter()
            .map(|(name, s)| (format!("TUNE {name}"), s)),
    );
    println!("accel,slice,prewhiten,iterations,psnr,residual_over_noise,noise_std");
    for accel in [4.0, 8.0] {
        for (i, (name, slice)) in slices.iter().enumerate() {
            let a = acquire(slice, accel, case_seed(i, accel));
            for on in [true, false] {
                for n in 1..=20 {
                    let q = cg_fixed(n, on);
                    let r = reconstruct(&q, &a.kspace).expect("reconstruct");
                    let d = &r.slices[0].diagnostics;
                    let sc = score(&r.slices[0].image, &a.sim.truth, 0.0);
                    println!(
                        "{accel},{name},{on},{n},{:.4},{:.5},{:.4}",
                        sc.psnr, d.residual_over_noise, d.noise_std
                    );
                }
            }
        }
    }
}

/// `--l1-trace`: CSV on stdout of L1-wavelet's PSNR and ‖Az − y‖² (relative to its value after
/// the first step) after 1…200 FISTA steps of the shipped λ with prewhitening on and off, on the
/// test slices and the tuning slices (named `TUNE …`), built as `reconstruct` builds them (ESPIRiT
/// maps from the unwhitened calibration, whitened for the operator), to choose and check a
/// stopping rule for the `cs-l1-wavelet` protocol as `--cg-trace` did for `sense`.
fn l1_trace(root: &Path) {
    use basin_core::linop::Sense;
    use basin_recon::protocol::Solver;
    let mut slices = test_slices(root);
    slices.extend(
        tune_slices(root)
            .into_iter()
            .map(|(name, s)| (format!("TUNE {name}"), s)),
    );
    let l1 = Protocol::resolve("cs-l1-wavelet", None).unwrap();
    let Solver::L1Wavelet(l1p) = l1.solver else {
        unreachable!("cs-l1-wavelet is an L1 protocol")
    };
    // Tikhonov weights μ of the elastic net to trace (`--l1-trace 0.05,0.1`); the shipped 0 by
    // default.
    let mus: Vec<f32> = list_arg("--l1-trace")
        .map(|v| v.iter().map(|m| m.parse().expect("μ list")).collect())
        .unwrap_or(vec![0.0]);
    println!("accel,slice,prewhiten,tikhonov,iterations,psnr,residual_rel,residual_over_noise");
    for accel in [4.0, 8.0] {
        for (i, (name, slice)) in slices.iter().enumerate() {
            let a = acquire(slice, accel, case_seed(i, accel));
            let b = &a.kspace.buckets[0];
            let maps =
                basin_recon::coils::estimate(&l1.calibration, &b.calib, &b.calib_mask, false)
                    .unwrap();
            let w = basin_recon::whitening_for(&l1, &a.kspace).unwrap().unwrap();
            let mut wdata = b.data.clone();
            prewhiten::apply(&w, &mut wdata);
            for (on, &mu) in [true, false]
                .into_iter()
                .flat_map(|on| mus.iter().map(move |mu| (on, mu)))
            {
                let (m, d) = if on {
                    (prewhiten::whiten_maps(&maps, &w).0, &wdata)
                } else {
                    (maps.clone(), &b.data)
                };
                let op = Sense::new(m, b.mask.clone(), false).unwrap();
                // The seed `reconstruct` gives the first bucket.
                let p = basin_recon::cs::L1Params {
                    seed: 1,
                    tikhonov: mu,
                    ..l1p
                };
                let mut f = basin_recon::cs::Fista::new(&op, d, &p);
                // Expected noise energy of the sampled data, in Fista's scaled units: unit
                // variance per coil and sample when whitened, tr Ψ (at the data's bandwidth)
                // per sample when not.
                let nsampled = b.mask.iter().filter(|&&m| m).count() as f64;
                let per_sample = if on {
                    w.nrows() as f64
                } else {
                    let noise = a
                        .kspace
                        .noise
                        .as_ref()
                        .expect("realistic cases have a noise scan");
                    let cov = prewhiten::noise_covariance(noise);
                    let dwell = (a.kspace.noise_dwell_us / a.kspace.data_dwell_us) as f64;
                    (0..cov.nrows()).map(|c| cov[[c, c]].re).sum::<f64>() * dwell
                };
                let s = f.scale() as f64;
                let noise_energy = nsampled * per_sample / (s * s);
                let mut first = f64::NAN;
                for n in 1..=200 {
                    f.update();
                    if n == 1 {
                        first = f.residual_sq;
                    }
                    // The benchmarks' PSNR (after the least-squares scale, so the scaled
                    // iterate will do), without the SSIM and HFEN of `score`.
                    let mag = basin_benches::cases::scaled_mag(&f.x, &a.sim.truth);
                    let psnr = basin_core::metrics::psnr(a.sim.truth.view(), mag.view());
                    println!(
                        "{accel},{name},{on},{mu},{n},{psnr:.4},{:.6e},{:.6e}",
                        f.residual_sq / first,
                        f.residual_sq / noise_energy
                    );
                }
            }
            eprintln!("{accel}× {name} traced");
        }
    }
}

/// `--l1-maps`: L1-wavelet (shipped λ and iterations) and CG-SENSE (10 iterations) with
/// prewhitening on and off, each with the true birdcage maps and with basin's ESPIRiT maps, on
/// the test slices — whether whitening's L1 loss at 8× comes from the calibration's model error.
fn l1_maps(root: &Path) {
    use basin_core::linop::Sense;
    let slices = test_slices(root);
    let sense = Protocol::resolve("sense", None).unwrap();
    for accel in [8.0, 4.0] {
        let mut acc = vec![Vec::new(); 8];
        for (i, (name, slice)) in slices.iter().enumerate() {
            let a = acquire(slice, accel, case_seed(i, accel));
            let b = &a.kspace.buckets[0];
            let r = reconstruct(&sense, &a.kspace).unwrap();
            let esp = r.slices[0].maps.clone();
            let w = basin_recon::whitening_for(&sense, &a.kspace)
                .unwrap()
                .unwrap();
            let mut wdata = b.data.clone();
            prewhiten::apply(&w, &mut wdata);
            let mut line = format!("{accel}× {name}:");
            let mut t = 0;
            for (mname, maps) in [("true", a.sim.maps.clone()), ("espirit", esp)] {
                for on in [true, false] {
                    let (m, k, d) = if on {
                        let (m, k) = prewhiten::whiten_maps(&maps, &w);
                        (m, k, &wdata)
                    } else {
                        (maps.clone(), 1.0, &b.data)
                    };
                    let op = Sense::new(m, b.mask.clone(), false).unwrap();
                    let l1p = match Protocol::resolve("cs-l1-wavelet", None).unwrap().solver {
                        basin_recon::protocol::Solver::L1Wavelet(p) => p,
                        _ => unreachable!(),
                    };
                    let (x, _) = basin_recon::cs::l1_wavelet(
                        &op,
                        d,
                        &basin_recon::cs::L1Params { seed: 1, ..l1p },
                    );
                    let pl = score(&x.mapv(|v| v * k), &a.sim.truth, 0.0).psnr;
                    let (x, _) = basin_recon::solvers::cg_sense(&op, d, 0.0, 0.0, 10, None);
                    let pc = score(&x.mapv(|v| v * k), &a.sim.truth, 0.0).psnr;
                    line += &format!(
                        " {mname} {} L1 {pl:.2} CG10 {pc:.2};",
                        if on { "on" } else { "off" }
                    );
                    acc[t].push(pl);
                    acc[t + 1].push(pc);
                    t += 2;
                }
            }
            eprintln!("{line}");
        }
        let m: Vec<String> = acc.iter().map(|v| format!("{:.2}", mean_se(v).0)).collect();
        println!(
            "{accel}× means [true on L1, CG; true off L1, CG; esp on L1, CG; esp off L1, CG]: {}",
            m.join(" ")
        );
    }
}

/// The comma-separated list after `flag` on the command line (`--kernels 6,5` → ["6", "5"]).
fn list_arg(flag: &str) -> Option<Vec<String>> {
    std::env::args()
        .skip_while(|a| a != flag)
        .nth(1)
        .map(|v| v.split(',').map(str::to_string).collect())
}

/// `--calib-sweep`: ESPIRiT kernel and calibration-block width against the true maps (map error
/// inside the object) and through CG-SENSE and L1-wavelet with prewhitening on and off, on the
/// test and tuning slices at 8× and 4× (CSV on stdout).
fn calib_sweep(root: &Path) {
    use basin_recon::coils::EspiritParams;
    use basin_recon::protocol::Calibration;
    let mut slices = test_slices(root);
    slices.extend(
        tune_slices(root)
            .into_iter()
            .map(|(name, s)| (format!("TUNE {name}"), s)),
    );
    // `--kernels 6,5` (calibration block 24) and `--protocols …` narrow the sweep.
    let variants: Vec<(usize, usize)> = match list_arg("--kernels") {
        Some(k) => k.iter().map(|k| (k.parse().expect("kernel"), 24)).collect(),
        None => vec![(6, 24), (5, 24), (4, 24), (6, 48), (4, 48), (3, 24)],
    };
    let protocols = list_arg("--protocols")
        .unwrap_or_else(|| vec!["sense".to_string(), "cs-l1-wavelet".to_string()]);
    let accels: Vec<f64> = list_arg("--accels")
        .map(|v| v.iter().map(|a| a.parse().expect("acceleration")).collect())
        .unwrap_or(vec![8.0, 4.0]);
    let info = std::env::args().any(|a| a == "--info");
    println!("accel,slice,kernel,calib,protocol,prewhiten,psnr,map_error");
    for &accel in &accels {
        for (i, (name, slice)) in slices.iter().enumerate() {
            let a = acquire(slice, accel, case_seed(i, accel));
            for &(kernel, calib_size) in &variants {
                let cal = Calibration::Espirit(EspiritParams {
                    kernel,
                    calib_size,
                    ..EspiritParams::default()
                });
                if info {
                    let b = &a.kspace.buckets[0];
                    let maps =
                        basin_recon::coils::estimate(&cal, &b.calib, &b.calib_mask, false).unwrap();
                    let m = maps.index_axis(Axis(1), 0).to_owned();
                    eprintln!(
                        "{accel} {name} k{kernel} c{calib_size} map_error {:.6}",
                        map_error(&m, &a)
                    );
                    continue;
                }
                for proto in &protocols {
                    for on in [true, false] {
                        let mut p = Protocol::resolve(proto, None).unwrap();
                        p.prewhiten = on;
                        p.calibration = cal.clone();
                        let (sc, maps) = run_basin(&p, &a);
                        println!(
                            "{accel},{name},{kernel},{calib_size},{proto},{on},{:.4},{:.6}",
                            sc.psnr,
                            map_error(&maps, &a)
                        );
                    }
                }
            }
            eprintln!("{accel}× {name} done");
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::args().any(|a| a == "--calib-sweep") {
        return calib_sweep(&root);
    }
    if std::env::args().any(|a| a == "--schedules") {
        return sweep_schedules(&root);
    }
    if std::env::args().any(|a| a == "--l1-maps") {
        return l1_maps(&root);
    }
    if std::env::args().any(|a| a == "--l1-trace") {
        return l1_trace(&root);
    }
    if std::env::args().any(|a| a == "--cg-trace") {
        return cg_trace(&root);
    }
    if std::env::args().any(|a| a == "--prewhiten") {
        return prewhiten_study(&root);
    }
    let tune = mni_slices(&root.join(MNI152), &[TUNE_SLICE]).unwrap();
    let slices = test_slices(&root);
    let dir = std::env::temp_dir().join(format!("basin-realistic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for accel in [4.0, 8.0] {
        // BART's λ per input, tuned on a slice not in the test set.
        let ta = acquire(&tune[0], accel, 999);
        let mut lambdas = [0.0; 3];
        for (i, whiten) in [false, true].into_iter().enumerate() {
            let mut best = (f64::NEG_INFINITY, BART_GRID[0]);
            for l in BART_GRID {
                if let Some((sc, _)) = run_bart(&dir, &ta, whiten, l, None) {
                    if sc.psnr > best.0 {
                        best = (sc.psnr, l);
                    }
                }
            }
            lambdas[i] = best.1;
            eprintln!(
                "{accel}×: BART λ ({}) = {}",
                if whiten { "whitened" } else { "raw" },
                best.1
            );
        }
        {
            let (_, tm) = run_basin(&Protocol::resolve("sense", None).unwrap(), &ta);
            let mut best = (f64::NEG_INFINITY, BART_GRID[0]);
            for l in BART_GRID {
                if let Some((sc, _)) = run_bart(&dir, &ta, false, l, Some(&tm)) {
                    if sc.psnr > best.0 {
                        best = (sc.psnr, l);
                    }
                }
            }
            lambdas[2] = best.1;
            eprintln!("{accel}×: BART λ (basin's maps) = {}", best.1);
        }
        let mut rows: Vec<(String, Vec<Score>)> = Vec::new();
        let (mut maperr_basin, mut maperr_bart) = (Vec::new(), Vec::new());
        let mut push = |name: String, s: Score| match rows.iter_mut().find(|r| r.0 == name) {
            Some(r) => r.1.push(s),
            None => rows.push((name, vec![s])),
        };
        for (i, (name, slice)) in slices.iter().enumerate() {
            let a = acquire(slice, accel, case_seed(i, accel));
            let mut basin_maps = None;
            for p in PROTOCOLS {
                let on = Protocol::resolve(p, None).unwrap();
                let mut off = on.clone();
                off.prewhiten = false;
                let (s_on, maps) = run_basin(&on, &a);
                let (s_off, _) = run_basin(&off, &a);
                if p == "sense" {
                    maperr_basin.push(map_error(&maps, &a));
                    basin_maps = Some(maps);
                }
                eprintln!(
                    "{accel}× {name}: {p} {:.2} dB / {:.4} ({:.2} s), prewhiten off {:.2} dB",
                    s_on.psnr, s_on.ssim, s_on.seconds, s_off.psnr
                );
                push(p.to_string(), s_on);
                push(format!("{p}, prewhiten off"), s_off);
            }
            for (j, whiten) in [false, true].into_iter().enumerate() {
                let label = format!(
                    "BART pics -l1 ({} k-space, λ {})",
                    if whiten { "whitened" } else { "raw" },
                    lambdas[j]
                );
                match run_bart(&dir, &a, whiten, lambdas[j], None) {
                    Some((s, maps)) => {
                        if !whiten {
                            maperr_bart.push(map_error(&maps, &a));
                        }
                        eprintln!(
                            "{accel}× {name}: {label} {:.2} dB ({:.2} s)",
                            s.psnr, s.seconds
                        );
                        push(label, s);
                    }
                    None => eprintln!("{accel}× {name}: {label} failed"),
                }
            }
            // BART's solver with basin's maps: the solver alone, without BART's calibration.
            let label = format!(
                "BART pics -l1 with basin's ESPIRiT maps (raw, λ {})",
                lambdas[2]
            );
            let bm = basin_maps.as_ref().expect("the sense protocol ran");
            if let Some((s, _)) = run_bart(&dir, &a, false, lambdas[2], Some(bm)) {
                eprintln!(
                    "{accel}× {name}: {label} {:.2} dB ({:.2} s)",
                    s.psnr, s.seconds
                );
                push(label, s);
            }
        }
        let n = slices.len();
        println!(
            "\n### {accel}× ({}, {} % ACS), {n} slices (5 MNI152, 5 S1), SNR 50, 8 birdcage coils\n",
            if accel > 5.0 { "random" } else { "equispaced" },
            if accel > 5.0 { 4 } else { 8 }
        );
        println!("| method | PSNR dB | SSIM | seconds/slice |");
        println!("|---|---|---|---|");
        for (name, v) in &rows {
            let (p, pe) = mean_se(&v.iter().map(|s| s.psnr).collect::<Vec<_>>());
            let (q, qe) = mean_se(&v.iter().map(|s| s.ssim).collect::<Vec<_>>());
            let (t, _) = mean_se(&v.iter().map(|s| s.seconds).collect::<Vec<_>>());
            println!(
                "| {name} ({} slices) | {p:.2} ± {pe:.2} | {q:.4} ± {qe:.4} | {t:.2} |",
                v.len()
            );
        }
        let (mb, mbe) = mean_se(&maperr_basin);
        let (mr, mre) = mean_se(&maperr_bart);
        println!(
            "\nCoil maps against the true birdcage maps inside the object (mean phase-invariant \
             ‖m − e^{{iφ}}s‖² per pixel): basin ESPIRiT {mb:.4} ± {mbe:.4}, BART `ecalib -m1 -r \
             24:<ACS>` {mr:.4} ± {mre:.4}"
        );
        // Paired differences against each BART row.
        for (bname, b) in rows
            .iter()
            .filter(|r| r.0.starts_with("BART") && r.1.len() == n)
        {
            println!("\nPaired against {bname} (mean ± standard error over slices):\n");
            for (name, v) in rows.iter().filter(|r| !r.0.starts_with("BART")) {
                let dp: Vec<f64> = v.iter().zip(b).map(|(x, y)| x.psnr - y.psnr).collect();
                let ds: Vec<f64> = v.iter().zip(b).map(|(x, y)| x.ssim - y.ssim).collect();
                let dt: Vec<f64> = v
                    .iter()
                    .zip(b)
                    .map(|(x, y)| x.seconds / y.seconds)
                    .collect();
                let (a1, e1) = mean_se(&dp);
                let (a2, e2) = mean_se(&ds);
                let (a3, _) = mean_se(&dt);
                println!("- {name}: {a1:+.2} ± {e1:.2} dB, SSIM {a2:+.4} ± {e2:.4}, time {a3:.2}×");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
