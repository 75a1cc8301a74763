//! Criterion benchmark of the prior's CPU production path: energy + gradient of one 256² complex
//! image (C₁ = 32, K₁ = 5, C₂ = 32, K₂ = 3), reported with its GMAC/s next to a faer GEMM of
//! similar shape ([32 × 288] · [288 × 65536]) measured in the same run.

use basin_prior::fast::FastModel;
use basin_prior::EnergyModel;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat};

fn benches(c: &mut Criterion) {
    let (h, w) = (256usize, 256usize);
    let m = EnergyModel::random(32, 5, 32, 3, 1);
    let fm = FastModel::new(&m);
    let mut ws = fm.workspace(h, w);
    let x: Vec<f32> = (0..2 * h * w)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let mut g = vec![0.0f32; 2 * h * w];
    let macs = (fm.macs_per_pixel() * h * w) as u64;
    let mut grp = c.benchmark_group("prior");
    grp.sample_size(10);
    grp.throughput(Throughput::Elements(macs));
    grp.bench_function("energy+grad 256x256 (elements = MACs)", |b| {
        b.iter(|| fm.energy_grad(&mut ws, &x, 0.1, &mut g, None))
    });
    let (mm, kk, nn) = (32usize, 288usize, h * w);
    let a = Mat::<f32>::from_fn(mm, kk, |i, j| ((i + j) % 7) as f32);
    let bm = Mat::<f32>::from_fn(kk, nn, |i, j| ((i * j) % 5) as f32);
    let mut cm = Mat::<f32>::zeros(mm, nn);
    grp.throughput(Throughput::Elements((mm * kk * nn) as u64));
    grp.bench_function("faer GEMM 32x288x65536 (elements = MACs)", |b| {
        b.iter(|| {
            matmul(
                cm.as_mut(),
                Accum::Replace,
                a.as_ref(),
                bm.as_ref(),
                1.0,
                faer::get_global_parallelism(),
            )
        })
    });
    grp.finish();
}

criterion_group!(prior, benches);
criterion_main!(prior);
