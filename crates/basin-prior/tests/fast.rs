//! The float32 im2col + GEMM path against the float64 reference: energy, density and ∇ₓE.

use basin_core::rng::Rng;
use basin_prior::fast::FastModel;
use basin_prior::EnergyModel;
use ndarray::Array3;

#[test]
fn fast_path_matches_reference() {
    let mut rng = Rng::new(21);
    for (c1, k1, c2, k2, h, w) in [(8, 5, 6, 3, 24, 20), (4, 3, 4, 5, 17, 33)] {
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
