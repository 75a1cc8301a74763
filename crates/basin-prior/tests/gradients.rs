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
    let mut gm = grad.clone();
    let analytic: Vec<f64> = gm.params_mut().into_iter().map(|p| *p).collect();
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
