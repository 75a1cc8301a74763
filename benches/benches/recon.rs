//! Criterion benchmarks of the reconstruction hot paths on the 256², 8-coil, 4× phantom:
//! the 2D FFT of 8×256×256, ESPIRiT calibration, and 20 CG-SENSE iterations.

use basin_benches::{case, maps};
use basin_core::fft::fftc;
use basin_core::linop::Sense;
use basin_recon::coils::{espirit_2d, EspiritParams};
use basin_recon::solvers::cg_sense;
use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::Axis;

fn benches(c: &mut Criterion) {
    let (p, mask) = case();
    let mut img = p.sampled.clone();
    c.bench_function("fft2 8x256x256", |b| {
        b.iter(|| fftc(img.view_mut(), &[1, 2]))
    });
    let mut g = c.benchmark_group("slow");
    g.sample_size(10);
    g.bench_function("espirit 256x256 8 coils", |b| {
        b.iter(|| {
            espirit_2d(p.sampled.view(), mask.view(), &EspiritParams::default()).expect("ESPIRiT")
        })
    });
    let op = Sense::new(
        maps(&p, &mask).insert_axis(Axis(1)),
        mask.clone().insert_axis(Axis(0)),
        false,
    )
    .expect("Sense");
    let y = p.sampled.clone().insert_axis(Axis(1));
    g.bench_function("cg-sense 20 it 256x256 8 coils", |b| {
        b.iter(|| cg_sense(&op, &y, 0.0, 0.0, 20, None))
    });
    g.finish();
}

criterion_group!(recon, benches);
criterion_main!(recon);
