//! Side-by-side timing of basin and BART on the same data in the same run: 2D FFT of
//! 8×256×256, ESPIRiT calibration (`bart ecalib -m1`) and 20 CG-SENSE iterations
//! (`bart pics -l2 -r 0 -i 20`), 100 iterations of L1-wavelet (`bart pics -l1 -i 100`) and of
//! TV (`bart pics -R T:3:0:λ -i 100`) on the 256², 8-coil, 4× phantom. Prints medians and ratios.
//!
//! BART runs as a process (its time includes start-up and reading/writing 4 MB of .cfl, which
//! is milliseconds); basin runs in-process. Usage: `cargo run --release -p basin-benches --bin
//! compare-bart [repeats]`.

use basin_benches::{case, maps, write_cfl};
use basin_core::fft::fftc;
use basin_core::linop::Sense;
use basin_recon::coils::{espirit_2d, EspiritParams};
use basin_recon::solvers::cg_sense;
use ndarray::Axis;
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

fn main() {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let (p, mask) = case();
    let dir = std::env::temp_dir().join(format!("basin-bart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let k = dir.join("k");
    let m = dir.join("m");
    let o = dir.join("o");
    let s = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();
    write_cfl(
        &k,
        &[256, 256, 1, 8],
        p.sampled.as_slice().expect("contiguous"),
    )
    .expect("write k");
    let maps3 = maps(&p, &mask);
    write_cfl(&m, &[256, 256, 1, 8], maps3.as_slice().expect("contiguous")).expect("write maps");

    let mut rows: Vec<(String, f64, Option<f64>)> = Vec::new();
    let mut img = p.sampled.clone();
    let t = time(repeats * 4, || fftc(img.view_mut(), &[1, 2]));
    rows.push((
        "2D FFT 8×256×256".into(),
        t,
        bart(repeats, &["fft", "-u", "-i", "3", &s(&k), &s(&o)]),
    ));
    let t = time(repeats, || {
        espirit_2d(p.sampled.view(), mask.view(), &EspiritParams::default()).expect("ESPIRiT");
    });
    rows.push((
        "ESPIRiT calibration 256², 8 coils".into(),
        t,
        bart(repeats, &["ecalib", "-m1", &s(&k), &s(&o)]),
    ));
    let m4 = maps3.clone().insert_axis(Axis(1));
    let mask3 = mask.clone().insert_axis(Axis(0));
    let op = Sense::new(m4, mask3, false).expect("Sense");
    let y = p.sampled.clone().insert_axis(Axis(1));
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
