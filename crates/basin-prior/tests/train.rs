//! The float32 trainer: deterministic (two runs, and a run resumed from a checkpoint, give the
//! same losses bit for bit, whatever the thread count) and it learns (the DSM loss on held-out
//! patches falls).

use basin_core::rng::Rng;
use basin_prior::data::Augment;
use basin_prior::train::{TrainConfig, Trainer};
use ndarray::Array2;
use std::collections::HashMap;

/// Synthetic "anatomy": smooth blobs on a background, in the p99 ≈ 1 convention.
fn slices() -> Vec<Array2<f32>> {
    let mut rng = Rng::new(3);
    (0..6)
        .map(|_| {
            let blobs: Vec<(f64, f64, f64, f64)> = (0..5)
                .map(|_| {
                    (
                        10.0 + 28.0 * rng.uniform(),
                        10.0 + 28.0 * rng.uniform(),
                        3.0 + 6.0 * rng.uniform(),
                        0.3 + 0.7 * rng.uniform(),
                    )
                })
                .collect();
            Array2::from_shape_fn((48, 48), |(y, x)| {
                let mut v = 0.2;
                for &(cy, cx, r, a) in &blobs {
                    if ((y as f64 - cy).powi(2) + (x as f64 - cx).powi(2)).sqrt() < r {
                        v = a;
                    }
                }
                v as f32
            })
        })
        .collect()
}

fn config(steps: usize) -> TrainConfig {
    TrainConfig {
        levels: 2,
        c1: 6,
        k1: 3,
        c2: 6,
        k2: 3,
        sigma_min: 0.05,
        sigma_max: 0.3,
        steps,
        batch: 4,
        patch: 24,
        lr: 0.01,
        seed: 17,
        augment: Augment::default(),
    }
}

#[test]
fn training_is_deterministic_and_resumes_bit_for_bit() {
    let data = slices();
    let mut a = Trainer::new(config(8));
    let la: Vec<f64> = (0..8).map(|_| a.step(&data)).collect();
    // The same run on one thread.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let lb: Vec<f64> = pool.install(|| {
        let mut b = Trainer::new(config(8));
        (0..8).map(|_| b.step(&data)).collect()
    });
    assert_eq!(la, lb);
    // Four steps, a checkpoint, a resumed trainer, four more steps.
    let mut c = Trainer::new(config(8));
    let mut lc: Vec<f64> = (0..4).map(|_| c.step(&data)).collect();
    let ck = c.checkpoint(&HashMap::new()).unwrap();
    let mut d = Trainer::resume(config(8), &ck).unwrap();
    assert_eq!(d.step_count(), 4);
    lc.extend((0..4).map(|_| d.step(&data)));
    assert_eq!(la, lc);
    assert_eq!(a.model(), d.model());
    // A checkpoint of another architecture is refused with a reason.
    let mut other = config(8);
    other.c1 = 7;
    let e = Trainer::resume(other, &ck)
        .err()
        .expect("must fail")
        .to_string();
    assert!(e.contains("params"), "{e}");
}

#[test]
fn the_trainer_learns_held_out_dsm_loss_falls() {
    use basin_prior::fast::FastPyramid;
    let data = slices();
    let cfg = config(60);
    // Held-out patches: other blobs, fixed noise and σ.
    let mut rng = Rng::new(99);
    let held: Vec<(Vec<f32>, Vec<f32>, f32)> = slices()
        .iter()
        .map(|s| {
            let img = basin_prior::data::augment(s.view(), &cfg.augment, &mut rng);
            let p = basin_prior::data::random_patch(img.view(), 24, &mut rng);
            let n = (0..p.len()).map(|_| rng.normal() as f32).collect();
            let sigma = basin_prior::train::sample_sigma(&mut rng, 0.05, 0.3) as f32;
            (p.iter().copied().collect(), n, sigma)
        })
        .skip(3)
        .collect();
    let held_loss = |t: &Trainer| {
        let f = FastPyramid::new(t.model());
        let mut ws = f.train_workspace(24, 24);
        let mut acc = vec![0.0; f.num_params()];
        held.iter()
            .map(|(x, n, s)| f.dsm_loss_and_grad(&mut ws, x, n, *s, &mut acc))
            .sum::<f64>()
            / held.len() as f64
    };
    let mut t = Trainer::new(cfg);
    let before = held_loss(&t);
    for _ in 0..60 {
        t.step(&data[..3]);
    }
    let after = held_loss(&t);
    eprintln!("held-out DSM loss {before:.4} → {after:.4}");
    // A zero score (constant energy) scores E‖n‖²/N ≈ 1.
    assert!(after < 0.8 * before.min(1.0), "{before} → {after}");
}
