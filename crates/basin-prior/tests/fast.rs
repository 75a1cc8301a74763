//! The float32 im2col + GEMM path against the float64 reference: energy, density and ∇ₓE.

use basin_core::rng::Rng;
use basin_prior::fast::FastModel;
use basin_prior::EnergyModel;
use ndarray::Array3;

#[test]
fn fast_path_matches_reference() {
    let mut rng = Rng::new(21);
    // The last two sizes span several row bands of the banded convolutions (2048 pixels each).
    for (c1, k1, c2, k2, h, w) in [
        (8, 5, 6, 3, 24, 20),
        (4, 3, 4, 5, 17, 33),
        (4, 5, 3, 3, 70, 40),
        (3, 3, 2, 5, 13, 300),
    ] {
        let m = EnergyModel::random(c1, k1, c2, k2, 5);
        let x = Array3::from_shape_simple_fn((2, h, w), || rng.normal());
        for sigma in [0.05, 0.4] {
            let e_ref = m.energy(x.view(), sigma);
            let g_ref = m.grad_x(x.view(), sigma);
            let d_ref = m.energy_density(x.view(), sigma);
            let fm = FastModel::new(&m);
            let mut ws = fm.workspace(h, w);
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let mut g = vec![0.0f32; 2 * h * w];
            let mut d = vec![0.0f32; h * w];
            let e = fm.energy_grad(&mut ws, &xf, sigma as f32, &mut g, Some(&mut d));
            assert!(
                ((e as f64) - e_ref).abs() / e_ref.abs() < 1e-4,
                "energy {e} vs {e_ref}"
            );
            let num: f64 = g
                .iter()
                .zip(g_ref.iter())
                .map(|(&a, &b)| (a as f64 - b).powi(2))
                .sum();
            let den: f64 = g_ref.iter().map(|b| b * b).sum();
            assert!(
                (num / den).sqrt() < 1e-4,
                "gradient relative error {}",
                (num / den).sqrt()
            );
            let dn: f64 = d
                .iter()
                .zip(d_ref.iter())
                .map(|(&a, &b)| (a as f64 - b).powi(2))
                .sum();
            let dd: f64 = d_ref.iter().map(|b| b * b).sum();
            assert!((dn / dd).sqrt() < 1e-4);
            // A second call on the same workspace gives the same result (no stale state).
            let mut g2 = vec![0.0f32; 2 * h * w];
            let e2 = fm.energy_grad(&mut ws, &xf, sigma as f32, &mut g2, None);
            assert_eq!(e, e2);
            assert_eq!(g, g2);
        }
    }
}

fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

#[test]
fn fast_pyramid_matches_reference_in_energy_gradient_and_training_gradient() {
    use basin_prior::fast::FastPyramid;
    use basin_prior::Pyramid;
    let mut rng = Rng::new(22);
    for (h, w) in [(24, 20), (19, 33)] {
        let p = Pyramid::random(3, 6, 5, 5, 3, 9);
        let x = Array3::from_shape_simple_fn((2, h, w), || rng.normal() * 0.5);
        let n = Array3::from_shape_simple_fn((2, h, w), || rng.normal());
        let fp = FastPyramid::new(&p);
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let nf: Vec<f32> = n.iter().map(|&v| v as f32).collect();
        for sigma in [0.05, 0.3] {
            let mut ws = fp.workspace(h, w);
            let mut g = vec![0.0f32; 2 * h * w];
            let mut d = vec![0.0f32; h * w];
            let e = fp.energy_grad(&mut ws, &xf, sigma as f32, &mut g, Some(&mut d));
            let e_ref = p.energy(x.view(), sigma);
            assert!(
                ((e as f64) - e_ref).abs() / e_ref.abs() < 1e-4,
                "energy {e} vs {e_ref}"
            );
            let g64: Vec<f64> = g.iter().map(|&v| v as f64).collect();
            let gr = p.grad_x(x.view(), sigma);
            assert!(rel_l2(&g64, gr.as_slice().unwrap()) < 1e-4, "∇ₓE");
            let d64: Vec<f64> = d.iter().map(|&v| v as f64).collect();
            let dr = p.energy_density(x.view(), sigma);
            assert!(rel_l2(&d64, dr.as_slice().unwrap()) < 1e-4, "density");
            // Training gradient, accumulated twice to check that the workspace keeps no state.
            let mut tw = fp.train_workspace(h, w);
            let mut acc = vec![0.0f64; fp.num_params()];
            let loss = fp.dsm_loss_and_grad(&mut tw, &xf, &nf, sigma as f32, &mut acc);
            let loss2 = fp.dsm_loss_and_grad(&mut tw, &xf, &nf, sigma as f32, &mut acc);
            assert_eq!(loss, loss2);
            let (l_ref, g_ref) = p.dsm_loss_and_grad(x.view(), n.view(), sigma);
            assert!(
                (loss - l_ref).abs() / l_ref < 1e-4,
                "loss {loss} vs {l_ref}"
            );
            let half: Vec<f64> = acc.iter().map(|v| v / 2.0).collect();
            let e = rel_l2(&half, &g_ref.params());
            assert!(e < 1e-3, "DSM parameter gradient relative error {e}");
        }
    }
}

/// Residual training (`[training] residual_of_experts`): with the target n − σ∇F(x̃) of a fixed
/// expert field F, the production path's loss and parameter gradient match the float64
/// reference, and the loss equals the plain DSM loss of the sum E + F (an independent float64
/// evaluation of the combined model with β = 1) — so the network is fitted to complete F.
#[test]
fn residual_training_fits_the_sum_of_network_and_field() {
    use basin_prior::experts::Experts;
    use basin_prior::fast::FastPyramid;
    use basin_prior::Pyramid;
    let mut rng = Rng::new(31);
    let (h, w) = (22, 26);
    let p = Pyramid::random(2, 5, 5, 4, 3, 12);
    let mut field = Experts::random(5);
    let k = field.len();
    field.weights.column_mut(k).fill(0.0);
    let x = Array3::from_shape_simple_fn((2, h, w), || rng.normal() * 0.4);
    let n = Array3::from_shape_simple_fn((2, h, w), || rng.normal());
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let nf: Vec<f32> = n.iter().map(|&v| v as f32).collect();
    for sigma in [0.03, 0.2] {
        let xt = &x + &(&n * sigma);
        let target = &n - &(field.grad_reference(xt.view(), sigma) * sigma);
        let (l_ref, g_ref) = p.dsm_loss_and_grad_target(x.view(), n.view(), target.view(), sigma);
        // The same loss, as the DSM loss of network + field (β = 1) evaluated as one model.
        let mut sum = p.clone();
        let mut f1 = field.clone();
        f1.weights.column_mut(k).fill(1.0);
        sum.experts = Some(f1);
        let r = sum.grad_x(xt.view(), sigma) * sigma - &n;
        let l_sum = r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64;
        assert!((l_ref - l_sum).abs() / l_sum < 1e-10, "{l_ref} vs {l_sum}");
        // Production path (float32) against the reference.
        let fp = FastPyramid::new(&p);
        let mut tw = fp.train_workspace(h, w);
        let tf: Vec<f32> = target.iter().map(|&v| v as f32).collect();
        let mut acc = vec![0.0f64; fp.num_params()];
        let loss = fp.dsm_loss_and_grad_target(&mut tw, &xf, &nf, &tf, sigma as f32, &mut acc);
        assert!(
            (loss - l_ref).abs() / l_ref < 1e-4,
            "loss {loss} vs {l_ref}"
        );
        let e = rel_l2(&acc, &g_ref.params());
        assert!(e < 1e-3, "parameter gradient relative error {e}");
        // A target equal to n is plain DSM.
        let mut a2 = vec![0.0f64; fp.num_params()];
        let mut a3 = vec![0.0f64; fp.num_params()];
        let l2 = fp.dsm_loss_and_grad_target(&mut tw, &xf, &nf, &nf, sigma as f32, &mut a2);
        let l3 = fp.dsm_loss_and_grad(&mut tw, &xf, &nf, sigma as f32, &mut a3);
        assert_eq!((l2, &a2), (l3, &a3));
    }
}
