//! Side-by-side timing of basin and BART on the same data in the same run: 2D FFT of
//! 8×256×256, ESPIRiT calibration (`bart ecalib -m1`) and 20 CG-SENSE iterations
//! (`bart pics -l2 -r 0 -i 20`), 100 iterations of L1-wavelet (`bart pics -l1 -i 100`) and of
//! TV (`bart pics -R T:3:0:λ -i 100`). Prints medians and ratios. The data: a realistic
//! acquisition (the simulator of `basin phantom --from`: MNI152 axial slice z = 84 centred on a
//! 256² canvas, 2× off-grid object, smooth phase, 8 birdcage coils, a receive array's correlated
//! noise at SNR 50, 4× equispaced with 8 % ACS), the raw k-space given to both. Per-operation
//! timings only: the methods' quality is `quality`'s (through `basin compare`).
//!
//! BART runs as a process (its time includes start-up and reading/writing 4 MB of .cfl, which
//! is milliseconds); basin runs in-process. Usage: `cargo run --release -p basin-benches --bin
//! compare-bart [repeats]`.

use basin_benches::write_cfl;
use basin_core::fft::fftc;
use basin_core::linop::Sense;
use basin_core::C32;
use basin_recon::coils::{espirit_2d, EspiritParams};
use basin_recon::solvers::cg_sense;
use ndarray::{Array2, Array3, Axis};
use std::process::Command;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time<F: FnMut()>(repeats: usize, mut f: F) -> f64 {
    f(); // warm-up (plans, page faults)
    median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn bart(repeats: usize, args: &[&str]) -> Option<f64> {
    let run = || {
        Command::new("bart")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    run()?;
    Some(median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                let _ = run();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    ))
}

/// The realistic acquisition: k-space `[coil, y, x]` (zero where not sampled) and the mask.
fn realistic_case() -> Result<(Array3<C32>, Array2<bool>), String> {
    let path = basin_benches::prior_validation::MNI152;
    let (vol, _) = basin_export::nifti_in::read_axial(std::path::Path::new(path))
        .map_err(|e| format!("{path}: {e} (bash .ci/install-deps fetches it)"))?;
    let (nz, h, w) = vol.dim();
    if nz <= 84 || h > 256 || w > 256 {
        return Err(format!("{path}: {nz}×{h}×{w} is not MNI152 at 1 mm"));
    }
    let mut canvas = Array3::<f32>::zeros((1, 256, 256));
    let (oy, ox) = ((256 - h) / 2, (256 - w) / 2);
    canvas
        .slice_mut(ndarray::s![0, oy..oy + h, ox..ox + w])
        .assign(&vol.index_axis(Axis(0), 84));
    let spec = basin_phantom::realistic::RealisticSpec {
        matrix: (256, 256),
        coils: 8,
        accel: 4.0,
        center_fraction: 0.08,
        mask: basin_phantom::MaskKind::Equispaced,
        snr: 50.0,
        noise_cov: None,
        lesions: 0,
        noise_samples: 2048,
        seed: 1,
    };
    let sim = basin_phantom::realistic::simulate(&canvas, &spec).map_err(|e| e.to_string())?;
    let k = sim.kspace.index_axis(Axis(1), 0).to_owned();
    let mask = Array2::from_shape_fn((256, 256), |(y, _)| sim.lines[y]);
    Ok((k, mask))
}

fn main() {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let (sampled, mask) = match realistic_case() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let dir = std::env::temp_dir().join(format!("basin-bart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let k = dir.join("k");
    let m = dir.join("m");
    let o = dir.join("o");
    let s = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();
    write_cfl(
        &k,
        &[256, 256, 1, 8],
        sampled.as_slice().expect("contiguous"),
    )
    .expect("write k");
    let maps3 = espirit_2d(sampled.view(), mask.view(), &EspiritParams::default())
        .expect("ESPIRiT")
        .0;
    write_cfl(&m, &[256, 256, 1, 8], maps3.as_slice().expect("contiguous")).expect("write maps");

    let mut rows: Vec<(String, f64, Option<f64>)> = Vec::new();
    let mut img = sampled.clone();
    let t = time(repeats * 4, || fftc(img.view_mut(), &[1, 2]));
    rows.push((
        "2D FFT 8×256×256".into(),
        t,
        bart(repeats, &["fft", "-u", "-i", "3", &s(&k), &s(&o)]),
    ));
    let t = time(repeats, || {
        espirit_2d(sampled.view(), mask.view(), &EspiritParams::default()).expect("ESPIRiT");
    });
    rows.push((
        "ESPIRiT calibration 256², 8 coils".into(),
        t,
        bart(repeats, &["ecalib", "-m1", &s(&k), &s(&o)]),
    ));
    let m4 = maps3.clone().insert_axis(Axis(1));
    let mask3 = mask.clone().insert_axis(Axis(0));
    let op = Sense::new(m4, mask3, false).expect("Sense");
    let y = sampled.clone().insert_axis(Axis(1));
    let t = time(repeats, || {
        cg_sense(&op, &y, 0.0, 0.0, 20, None);
    });
    rows.push((
        "CG-SENSE 20 iterations 256², 8 coils".into(),
        t,
        bart(
            repeats,
            &[
                "pics",
                "-S",
                "-l2",
                "-r",
                "0",
                "-i",
                "20",
                &s(&k),
                &s(&m),
                &s(&o),
            ],
        ),
    ));
    let l1 = basin_recon::cs::L1Params {
        lambda: 0.002,
        iterations: 100,
        levels: 4,
        random_shift: true,
        stall: 0.0,
        tikhonov: 0.0,
        seed: 1,
    };
    let t = time(repeats, || {
        basin_recon::cs::l1_wavelet(&op, &y, &l1);
    });
    rows.push((
        "L1-wavelet 100 iterations 256², 8 coils".into(),
        t,
        bart(
            repeats,
            &[
                "pics",
                "-S",
                "-l1",
                "-r",
                "0.002",
                "-i",
                "100",
                &s(&k),
                &s(&m),
                &s(&o),
            ],
        ),
    ));
    let t = time(repeats, || {
        basin_recon::cs::tv(
            &op,
            &y,
            &basin_recon::cs::TvParams {
                lambda: 0.008,
                iterations: 100,
            },
        );
    });
    rows.push((
        "TV 100 iterations 256², 8 coils".into(),
        t,
        bart(
            repeats,
            &[
                "pics",
                "-S",
                "-R",
                "T:3:0:0.008",
                "-i",
                "100",
                &s(&k),
                &s(&m),
                &s(&o),
            ],
        ),
    ));
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "threads: {} (rayon), repeats: {repeats}, medians",
        rayon_threads()
    );
    println!("| operation | basin (s) | BART (s) | BART / basin |");
    println!("|---|---|---|---|");
    for (name, b, t) in rows {
        match t {
            Some(t) => println!("| {name} | {b:.4} | {t:.4} | {:.2}× |", t / b),
            None => println!("| {name} | {b:.4} | (bart not found) | |"),
        }
    }
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
