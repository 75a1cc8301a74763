//! The exact gradients against central finite differences in float64 on random images and
//! random weights: ∇ₓE (relative error < 1e-4) and the DSM loss's parameter gradient.

use basin_core::rng::Rng;
use basin_prior::EnergyModel;
use ndarray::Array3;

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-8)
}

#[test]
fn image_gradient_matches_finite_differences() {
    let mut rng = Rng::new(1);
    for (seed, sigma) in [(2u64, 0.05), (3, 0.3)] {
        let m = EnergyModel::random(6, 5, 4, 3, seed);
        let x = Array3::from_shape_simple_fn((2, 9, 11), || rng.normal());
        let g = m.grad_x(x.view(), sigma);
        let h = 1e-5;
        let mut worst = 0.0f64;
        for idx in [(0, 0, 0), (1, 4, 5), (0, 8, 10), (1, 2, 9), (0, 6, 1)] {
            let mut xp = x.clone();
            xp[idx] += h;
            let mut xm = x.clone();
            xm[idx] -= h;
            let fd = (m.energy(xp.view(), sigma) - m.energy(xm.view(), sigma)) / (2.0 * h);
            worst = worst.max(rel(g[idx], fd));
        }
        assert!(worst < 1e-4, "σ = {sigma}: worst relative error {worst}");
        // The density sums to the energy.
        assert!((m.energy_density(x.view(), sigma).sum() - m.energy(x.view(), sigma)).abs() < 1e-9);
    }
}

#[test]
fn dsm_parameter_gradient_matches_finite_differences() {
    let mut rng = Rng::new(5);
    let m = EnergyModel::random(4, 3, 3, 3, 7);
    let x = Array3::from_shape_simple_fn((2, 7, 8), || rng.normal());
    let n = Array3::from_shape_simple_fn((2, 7, 8), || rng.normal());
    let sigma = 0.2;
    let (_, grad) = m.dsm_loss_and_grad(x.view(), n.view(), sigma);
    let analytic = grad.params();
    let count = analytic.len();
    let h = 1e-6;
    let mut worst = 0.0f64;
    // Every parameter of this small model.
    for (i, &a) in analytic.iter().enumerate() {
        let mut mp = m.clone();
        *mp.params_mut()[i] += h;
        let mut mm = m.clone();
        *mm.params_mut()[i] -= h;
        let fd = (mp.dsm_loss_and_grad(x.view(), n.view(), sigma).0
            - mm.dsm_loss_and_grad(x.view(), n.view(), sigma).0)
            / (2.0 * h);
        let e = if a.abs().max(fd.abs()) < 1e-7 {
            0.0
        } else {
            rel(a, fd)
        };
        worst = worst.max(e);
    }
    assert!(
        worst < 1e-4,
        "worst relative error over {count} parameters: {worst}"
    );
}

#[test]
fn a_tiny_model_learns_validation_dsm_loss_falls() {
    use basin_prior::train::{dsm_batch, sample_sigma, Adam};
    // Patches of smooth piecewise-constant images (disks on a background, with a smooth phase):
    // 24 for training, 8 held out with fixed noise draws for validation.
    let mut rng = Rng::new(11);
    let patch = |rng: &mut Rng| {
        let (cx, cy, r) = (
            4.0 + 8.0 * rng.uniform(),
            4.0 + 8.0 * rng.uniform(),
            2.0 + 4.0 * rng.uniform(),
        );
        let (a, b, ph) = (
            0.2 + 0.3 * rng.uniform(),
            0.6 + 0.4 * rng.uniform(),
            rng.uniform(),
        );
        Array3::from_shape_fn((2, 16, 16), |(c, y, x)| {
            let inside = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt() < r;
            let m = if inside { b } else { a };
            let phase = ph + 0.05 * x as f64;
            if c == 0 {
                m * phase.cos()
            } else {
                m * phase.sin()
            }
        })
    };
    let train: Vec<Array3<f64>> = (0..24).map(|_| patch(&mut rng)).collect();
    let val: Vec<(Array3<f64>, Array3<f64>, f64)> = (0..8)
        .map(|_| {
            let p = patch(&mut rng);
            let n = Array3::from_shape_simple_fn((2, 16, 16), || rng.normal());
            let s = sample_sigma(&mut rng, 0.05, 0.5);
            (p, n, s)
        })
        .collect();
    let val_loss = |m: &EnergyModel| {
        val.iter()
            .map(|(p, n, s)| m.dsm_loss_and_grad(p.view(), n.view(), *s).0)
            .sum::<f64>()
            / val.len() as f64
    };
    let mut m = EnergyModel::random(4, 3, 4, 3, 12);
    let before = val_loss(&m);
    let mut adam = Adam::new(0.01);
    let mut train_rng = Rng::new(13);
    for step in 0..40 {
        let batch: Vec<Array3<f64>> = (0..6)
            .map(|i| train[(step * 6 + i) % train.len()].clone())
            .collect();
        let (_, g) = dsm_batch(&m, &batch, 0.05, 0.5, &mut train_rng);
        adam.step(&mut m, &g);
    }
    let after = val_loss(&m);
    // A constant energy (zero score) scores mean(n²) ≈ 1: the trained model must beat it, i.e.
    // actually point towards the clean patches.
    let trivial = val
        .iter()
        .map(|(_, n, _)| n.iter().map(|v| v * v).sum::<f64>() / n.len() as f64)
        .sum::<f64>()
        / val.len() as f64;
    eprintln!("validation DSM loss {before:.4} → {after:.4} (zero-score baseline {trivial:.4})");
    assert!(
        after < 0.9 * before,
        "validation DSM loss did not fall: {before} → {after}"
    );
    assert!(
        after < 0.9 * trivial,
        "no better than a constant energy: {after} vs {trivial}"
    );
}

#[test]
fn pyramid_gradients_match_finite_differences() {
    use basin_prior::Pyramid;
    let mut rng = Rng::new(31);
    // Odd sizes: pooling drops the last row/column at coarser levels.
    let p = Pyramid::random(3, 4, 3, 3, 3, 40);
    let x = Array3::from_shape_simple_fn((2, 13, 10), || rng.normal());
    let n = Array3::from_shape_simple_fn((2, 13, 10), || rng.normal());
    let sigma = 0.15;
    let g = p.grad_x(x.view(), sigma);
    let h = 1e-5;
    let mut worst = 0.0f64;
    for idx in [(0, 0, 0), (1, 5, 4), (0, 12, 9), (1, 3, 7), (0, 11, 2)] {
        let mut xp = x.clone();
        xp[idx] += h;
        let mut xm = x.clone();
        xm[idx] -= h;
        let fd = (p.energy(xp.view(), sigma) - p.energy(xm.view(), sigma)) / (2.0 * h);
        worst = worst.max(rel(g[idx], fd));
    }
    assert!(worst < 1e-4, "∇ₓE worst relative error {worst}");
    let d = p.energy_density(x.view(), sigma);
    assert!((d.sum() - p.energy(x.view(), sigma)).abs() < 1e-9 * d.sum().abs().max(1.0));
    let (_, grad) = p.dsm_loss_and_grad(x.view(), n.view(), sigma);
    let analytic = grad.params();
    let hp = 1e-6;
    let mut worst = 0.0f64;
    // Every 7th parameter, across all three levels.
    for i in (0..analytic.len()).step_by(7) {
        let mut pp = p.clone();
        *pp.params_mut()[i] += hp;
        let mut pm = p.clone();
        *pm.params_mut()[i] -= hp;
        let fd = (pp.dsm_loss_and_grad(x.view(), n.view(), sigma).0
            - pm.dsm_loss_and_grad(x.view(), n.view(), sigma).0)
            / (2.0 * hp);
        let a = analytic[i];
        if a.abs().max(fd.abs()) > 1e-7 {
            worst = worst.max(rel(a, fd));
        }
    }
    assert!(
        worst < 1e-4,
        "DSM parameter gradient worst relative error {worst}"
    );
}
