//! GPU timings for `benches/gpu/run.sh` (METHOD.md of the device entry: warm-up, device
//! synchronisation around the timed region, median of repeats, fresh random inputs each time).
//!
//! `gpu-bench [--quick]`: opens `--backend gpu`'s device, measures the device-to-device copy
//! bandwidth (the ceiling), then times the prior gradient (256², 320²; one image and 16; the
//! gather convolutions against the tiled ones), batched centered 2D FFTs (16 × 320², 16 × 368²;
//! radix-4 and radix-16 plans) and a full EBM reconstruction (256², 8 coils, the default
//! protocol) one slice per solve and a 160-slice volume both as 160 one-slice solves and as
//! batched solves (16 and 160 slices per launch sequence), printing achieved GB/s and the
//! fraction of the ceiling. `--quick` shrinks every size (a smoke test on a software adapter).

use basin_core::rng::Rng;
use basin_core::C32;
use basin_gpu::fft::Fft2;
use basin_gpu::prior::{ConvKind, GpuPrior};
use basin_gpu::{Backend, Gpu};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `reps` runs of `f` after `warm` runs; `prep` makes fresh inputs outside
/// the timed region.
fn time(gpu: &Gpu, warm: usize, reps: usize, mut prep: impl FnMut(), mut f: impl FnMut()) -> f64 {
    for _ in 0..warm {
        prep();
        f();
    }
    gpu.sync();
    let mut t = Vec::new();
    for _ in 0..reps {
        prep();
        gpu.sync();
        let t0 = Instant::now();
        f();
        gpu.sync();
        t.push(t0.elapsed().as_secs_f64());
    }
    median(t)
}

fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal() as f32 * 0.3).collect()
}

fn main() {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "gpu-bench [--quick]: GPU timings (copy ceiling, prior gradient gather/tiled and per stage, FFT radix 4/16, EBM one-slice vs batched); --quick shrinks every size"
        );
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let gpu = Gpu::open(Backend::Gpu)
        .expect("a GPU")
        .expect("--backend gpu always opens a device");
    println!("device: {}", gpu.description());
    let mut rng = Rng::new(1);
    let (reps, warm) = if quick { (3, 1) } else { (20, 3) };
    let mut rows: Vec<(String, f64, f64)> = Vec::new();

    // Ceiling: copy kernel over 256 MiB (read + write).
    let n = if quick { 1 << 20 } else { 1 << 26 };
    let a = gpu.upload(&random(&mut rng, n));
    let b = gpu.zeros(n);
    let t = time(&gpu, warm, reps, || {}, || gpu.copy(&a, &b));
    let ceiling = 8.0 * n as f64 / t / 1e9;
    println!(
        "copy {} MiB: {:.3} ms, {ceiling:.0} GB/s (ceiling)",
        (4 * n) >> 20,
        t * 1e3
    );
    drop((a, b));

    let (pyr, _) = basin_prior::default_model().expect("embedded model");
    let gather = GpuPrior::new(&gpu, &pyr).with_conv(ConvKind::Gather);
    let tiled = GpuPrior::new(&gpu, &pyr).with_conv(ConvKind::Tiled);
    let prior = GpuPrior::new(&gpu, &pyr);
    let sizes: &[usize] = if quick { &[32, 40] } else { &[256, 320] };
    for &s in sizes {
        for (nb, prior) in [(1usize, &gather), (1, &tiled), (16, &gather), (16, &tiled)] {
            let ws = prior.workspace(&gpu, nb, s, s);
            let cond = prior.conditioning(&gpu, &[vec![0.02; nb]]);
            let x = std::cell::RefCell::new(gpu.upload(&random(&mut rng, nb * 2 * s * s)));
            let t = time(
                &gpu,
                warm,
                reps,
                || *x.borrow_mut() = gpu.upload(&random(&mut rng, nb * 2 * s * s)),
                || {
                    gpu.copy(&x.borrow(), ws.input());
                    prior.energy_grad(&gpu, &ws, &cond, 0);
                },
            );
            let bytes = prior.bytes_moved(nb, s, s) as f64;
            let gbs = bytes / t / 1e9;
            rows.push((
                format!("prior grad {nb}x{s}², {:?} convolutions", prior.conv()),
                t,
                gbs,
            ));
        }
    }
    // Per stage: the gradient once with the device synchronised after each stage.
    let s = sizes[0];
    let nb = 16;
    let mut stages = Vec::new();
    for prior in [&gather, &tiled] {
        let ws = prior.workspace(&gpu, nb, s, s);
        let cond = prior.conditioning(&gpu, &[vec![0.02; nb]]);
        gpu.copy(&gpu.upload(&random(&mut rng, nb * 2 * s * s)), ws.input());
        prior.profile(&gpu, &ws, &cond, 0); // warm-up (pipelines compiled)
        let mut runs: Vec<Vec<(&str, f64)>> = (0..reps.min(5))
            .map(|_| prior.profile(&gpu, &ws, &cond, 0))
            .collect();
        let flops = prior.conv_flops(nb, s, s);
        for (i, &(name, _)) in runs[0].clone().iter().enumerate() {
            let t = median(runs.iter_mut().map(|r| r[i].1).collect());
            let rate = flops
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| f / t / 1e9);
            stages.push((format!("{:?}", prior.conv()), name, t, rate));
        }
    }

    let ffts: &[(usize, usize)] = if quick {
        &[(4, 40), (4, 46)]
    } else {
        &[(16, 320), (16, 368)]
    };
    for &(nb, s) in ffts {
        for max_radix in [4, 16] {
            let fft = Fft2::with_max_radix(&gpu, nb, s, s, max_radix);
            let d = std::cell::RefCell::new(gpu.upload(&random(&mut rng, 2 * nb * s * s)));
            let t = time(
                &gpu,
                warm,
                reps,
                || *d.borrow_mut() = gpu.upload(&random(&mut rng, 2 * nb * s * s)),
                || fft.run(&gpu, &d.borrow(), false),
            );
            // Each Stockham stage reads and writes the batch once.
            let bytes = (fft.passes * 2 * 8 * nb * s * s) as f64;
            rows.push((
                format!(
                    "fft2 {nb}x{s}², radices ≤ {max_radix} ({} passes)",
                    fft.passes
                ),
                t,
                bytes / t / 1e9,
            ));
        }
    }

    // Full EBM, default protocol, 256² 8 coils (random smooth-free data: timing only); a
    // batch of nb slices is one operator (the slices along z), each slice its own problem.
    let (m, nc) = if quick { (32, 2) } else { (256, 8) };
    let p = basin_recon::ebm::EbmParams::default();
    let batch = |rng: &mut Rng, nb: usize| {
        let maps = ndarray::Array4::from_shape_fn((nc, nb, m, m), |_| rng.complex_normal() * 0.35);
        let mask = ndarray::Array3::from_shape_fn((nb, m, m), |(_, y, _)| {
            y % 4 == 0 || (y as i64 - m as i64 / 2).abs() < (m as i64 / 25)
        });
        let supp = ndarray::Array3::from_elem((nb, m, m), true);
        let y = ndarray::Array4::from_shape_fn((nc, nb, m, m), |(_, z, yy, _)| {
            if mask[[z, yy, 0]] {
                rng.complex_normal()
            } else {
                C32::new(0.0, 0.0)
            }
        });
        let scheds = vec![basin_recon::ebm::device_schedule(&p, 0.01); nb];
        (maps, mask, supp, y, scheds)
    };
    let one = batch(&mut rng, 1);
    let run = |b: &(_, _, _, _, Vec<_>)| {
        basin_gpu::ebm::run(&gpu, &prior, &b.0, &b.1, &b.2, &b.3, &b.4, false).expect("EBM");
    };
    let t_slice = time(&gpu, 1, if quick { 2 } else { 5 }, || {}, || run(&one));
    rows.push((format!("EBM {m}² {nc} coils, 1 slice"), t_slice, f64::NAN));
    let nslices = if quick { 4 } else { 160 };
    let t0 = Instant::now();
    for _ in 0..nslices {
        run(&one);
    }
    gpu.sync();
    let t_vol = t0.elapsed().as_secs_f64();
    rows.push((
        format!("EBM {m}² {nc} coils, {nslices} one-slice solves"),
        t_vol,
        f64::NAN,
    ));
    for nb in if quick { vec![2, 4] } else { vec![16, 160] } {
        let b = batch(&mut rng, nb);
        let t = time(&gpu, 1, if quick { 2 } else { 3 }, || {}, || run(&b));
        rows.push((
            format!(
                "EBM {m}² {nc} coils, batch of {nb}: {:.3} ms per slice",
                t * 1e3 / nb as f64
            ),
            t,
            f64::NAN,
        ));
    }

    println!(
        "\n| prior grad {nb}x{s}², stage | convolutions | median ms | GFLOP/s |\n|---|---|---|---|"
    );
    for (kind, name, t, rate) in &stages {
        let rate = rate.map_or("–".to_string(), |r| format!("{r:.1}"));
        println!("| {name} | {kind} | {:.3} | {rate} |", t * 1e3);
    }
    println!("\n| what | median ms | GB/s | of ceiling |\n|---|---|---|---|");
    for (what, t, gbs) in rows {
        if gbs.is_nan() {
            println!("| {what} | {:.3} | – | – |", t * 1e3);
        } else {
            println!(
                "| {what} | {:.3} | {gbs:.1} | {:.0} % |",
                t * 1e3,
                100.0 * gbs / ceiling
            );
        }
    }
}
