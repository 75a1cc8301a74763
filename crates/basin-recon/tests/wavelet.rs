//! The Daubechies-2 transform: its filter against the closed form (1 ± √3 …)/(4√2), orthogonal
//! (inverse ∘ forward = identity, norms kept), and a linear ramp has no detail in the interior
//! (two vanishing moments).

use basin_core::rng::Rng;
use basin_core::C32;
use basin_recon::wavelet::{forward, inverse, levels_for, DB2_LO};
use ndarray::Array3;

#[test]
fn db2_filter_has_the_closed_form() {
    let s3 = 3f64.sqrt();
    let d = 4.0 * 2f64.sqrt();
    let want = [
        (1.0 + s3) / d,
        (3.0 + s3) / d,
        (3.0 - s3) / d,
        (1.0 - s3) / d,
    ];
    for (a, b) in DB2_LO.iter().zip(want) {
        assert!((*a as f64 - b).abs() < 1e-7, "{a} vs {b}");
    }
}

#[test]
fn transform_is_orthogonal_and_has_two_vanishing_moments() {
    let mut rng = Rng::new(3);
    for (ny, nx) in [(64, 48), (40, 24), (30, 16)] {
        let levels = levels_for(ny, nx, 4);
        let x = Array3::from_shape_simple_fn((2, ny, nx), || rng.complex_normal());
        let mut w = x.clone();
        forward(&mut w, levels);
        let n0: f64 = x.iter().map(|c| c.norm_sqr() as f64).sum();
        let n1: f64 = w.iter().map(|c| c.norm_sqr() as f64).sum();
        assert!((n0 - n1).abs() / n0 < 1e-5, "norm {n0} → {n1}");
        inverse(&mut w, levels);
        let err = x
            .iter()
            .zip(w.iter())
            .map(|(a, b)| (a - b).norm())
            .fold(0.0f32, f32::max);
        assert!(
            err < 1e-4,
            "{ny}×{nx}, {levels} levels: reconstruction error {err}"
        );
    }
    // A ramp along x: one level of analysis along rows gives zero detail away from the periodic
    // wrap (the filter annihilates polynomials of degree ≤ 1).
    let mut r = Array3::from_shape_fn((1, 8, 32), |(_, _, x)| C32::new(x as f32, 0.0));
    forward(&mut r, 1);
    // After the row pass and the column pass, the detail columns 16..31 of the top half
    // (rows 0..3) hold the row details of a ramp (constant columns → zero column details).
    for y in 0..4 {
        for x in 16..30 {
            assert!(
                r[[0, y, x]].norm() < 1e-3,
                "detail at ({y}, {x}): {}",
                r[[0, y, x]]
            );
        }
    }
}
