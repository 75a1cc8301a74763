//! Criterion benchmark of the prior's CPU production path: energy + gradient of one 256² complex
//! image (C₁ = 32, K₁ = 5, C₂ = 32, K₂ = 3), reported with its GMAC/s next to a faer GEMM of
//! similar shape ([32 × 288] · [288 × 65536]) measured in the same run; the shipped three-level
//! pyramid of that shape on the same image; and training steps per second of the shipped recipe
//! (batch 16, patches 64², rayon across the patches).

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
    let pyr = basin_prior::Pyramid::random(3, 32, 5, 32, 3, 1);
    let fp = basin_prior::fast::FastPyramid::new(&pyr);
    let mut pws = fp.workspace(h, w);
    grp.throughput(Throughput::Elements(
        (fp.macs_per_pixel() * (h * w) as f64) as u64,
    ));
    grp.bench_function(
        "pyramid 3 levels energy+grad 256x256 (elements = MACs)",
        |b| b.iter(|| fp.energy_grad(&mut pws, &x, 0.1, &mut g, None)),
    );
    // The shipped model: the expert field plus the network weighted by β(σ), at a σ of the
    // EBM schedule (elements = pixels: the experts are not multiply-accumulates).
    let (shipped, _) = basin_prior::default_model().expect("embedded model");
    let sp = basin_prior::fast::FastPyramid::new(&shipped);
    let mut sws = sp.workspace(h, w);
    grp.throughput(Throughput::Elements((h * w) as u64));
    grp.bench_function(
        "shipped prior energy+grad 256x256 at sigma 0.02 (elements = pixels)",
        |b| b.iter(|| sp.energy_grad(&mut sws, &x, 0.02, &mut g, None)),
    );
    let net = sp.network_only();
    let mut nws = net.workspace(h, w);
    grp.bench_function(
        "shipped network alone 256x256 at sigma 0.02 (elements = pixels)",
        |b| b.iter(|| net.energy_grad(&mut nws, &x, 0.02, &mut g, None)),
    );
    grp.finish();
    let mut grp = c.benchmark_group("prior-training");
    grp.sample_size(10);
    grp.throughput(Throughput::Elements(16));
    let slices: Vec<ndarray::Array2<f32>> = (0..4)
        .map(|k| {
            ndarray::Array2::from_shape_fn((181, 217), |(y, x)| {
                let r = ((y as f32 - 90.0).powi(2) + (x as f32 - 108.0).powi(2)).sqrt();
                if r < 70.0 + 5.0 * k as f32 {
                    0.5 + 0.3 * ((x + y) as f32 * 0.05).sin()
                } else {
                    0.0
                }
            })
        })
        .collect();
    let cfg = basin_prior::train::TrainConfig {
        levels: 3,
        c1: 32,
        k1: 5,
        c2: 32,
        k2: 3,
        sigma_min: 0.01,
        sigma_max: 0.5,
        steps: 1000,
        batch: 16,
        patch: 64,
        lr: 0.002,
        seed: 1,
        augment: basin_prior::data::Augment::default(),
    };
    let mut trainer = basin_prior::train::Trainer::new(cfg);
    grp.bench_function(
        "training step, 16 patches of 64x64 (elements = patches)",
        |b| b.iter(|| trainer.step(&slices)),
    );
    grp.finish();
}

criterion_group!(prior, benches);
criterion_main!(prior);
