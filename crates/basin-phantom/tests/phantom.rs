//! The analytic phantom against independent references: J1 against its power series, the
//! ellipse Fourier transform against brute-force numerical integration, coil k-space against
//! the FFT of finely sampled coil-weighted images, and the masks against fastMRI's rules.

use basin_core::C64;
use basin_phantom::ellipse::{bessel_j1, ellipse_ft, ellipse_value, BRAIN, SHEPP_LOGAN};
use basin_phantom::{
    coil_coefficients, coil_value, generate, sampling_mask, Kind, MaskKind, PhantomSpec,
};
use std::f64::consts::PI;

#[test]
fn bessel_j1_matches_power_series() {
    for i in 0..200 {
        let x = i as f64 * 0.1;
        // J1(x) = Σ (−1)^m (x/2)^{2m+1} / (m! (m+1)!), summed in f64 until negligible.
        let mut term = x / 2.0;
        let mut sum = term;
        for m in 1..80 {
            term *= -(x * x / 4.0) / (m as f64 * (m + 1) as f64);
            sum += term;
        }
        assert!(
            (bessel_j1(x) - sum).abs() < 1e-7,
            "J1({x}) = {} vs series {sum}",
            bessel_j1(x)
        );
    }
}

#[test]
fn ellipse_ft_matches_numerical_integration() {
    // Midpoint rule on a 1200² grid over [−1, 1]²: error O(h) at edges, ~1e-3 relative.
    let n = 1200;
    let h = 2.0 / n as f64;
    for set in [&SHEPP_LOGAN[..], &BRAIN[..]] {
        let vals: Vec<(f64, f64, f64)> = (0..n * n)
            .map(|i| {
                let x = -1.0 + (i % n) as f64 * h + h / 2.0;
                let y = -1.0 + (i / n) as f64 * h + h / 2.0;
                (x, y, ellipse_value(set, x, y))
            })
            .filter(|v| v.2 != 0.0)
            .collect();
        for &(kx, ky) in &[(0.0, 0.0), (1.5, 0.0), (0.0, -2.5), (3.0, 4.0), (-6.5, 2.0)] {
            let mut acc = C64::new(0.0, 0.0);
            for &(x, y, v) in &vals {
                let ph = -2.0 * PI * (kx * x + ky * y);
                acc += C64::new(ph.cos(), ph.sin()) * v;
            }
            acc *= h * h;
            let ana = ellipse_ft(set, kx, ky);
            let dc = ellipse_ft(set, 0.0, 0.0).norm();
            assert!(
                (acc - ana).norm() < 3e-3 * dc,
                "k=({kx},{ky}): numeric {acc} vs analytic {ana}"
            );
        }
    }
}

#[test]
fn coil_value_matches_the_term_by_term_polynomial() {
    // Reference: the trigonometric polynomial of order 4 summed term by term, each exponential
    // from its own sine and cosine (the separable evaluation must agree to rounding).
    let order = 4i64;
    for coef in coil_coefficients(12) {
        for &(x, y) in &[
            (0.0, 0.0),
            (0.37, -0.81),
            (-1.0, 1.0),
            (0.93, 0.12),
            (-0.55, -0.66),
        ] {
            let mut want = C64::new(0.0, 0.0);
            let mut i = 0;
            for q in -order..=order {
                for p in -order..=order {
                    let ph = 2.0 * PI * (p as f64 * x + q as f64 * y) / 4.0;
                    want += coef[i] * C64::new(ph.cos(), ph.sin());
                    i += 1;
                }
            }
            let got = coil_value(&coef, x, y);
            assert!(
                (got - want).norm() <= 1e-12 * (1.0 + want.norm()),
                "({x}, {y}): {got} vs {want}"
            );
        }
    }
}

#[test]
fn coil_kspace_is_the_transform_of_the_coil_weighted_object() {
    // Noise-free, fully sampled phantom: each coil's k-space sample equals the continuous FT
    // of s_c·f, here integrated numerically on a fine grid at a few k-space positions.
    let spec = PhantomSpec {
        kind: Kind::SheppLogan,
        matrix: 32,
        coils: 3,
        accel: 1.0,
        center_fraction: 0.0,
        mask: MaskKind::Equispaced,
        noise: 0.0,
        seed: 0,
    };
    let p = generate(&spec).unwrap();
    let coef = coil_coefficients(3);
    let n = 800;
    let h = 2.0 / n as f64;
    for (c, coef_c) in coef.iter().enumerate() {
        for &(row, col) in &[(16usize, 16usize), (14, 19), (20, 9)] {
            // Sample (row, col) ↔ kx = (col − N/2)/2, ky = −(row − N/2)/2, scaled by N/4.
            let kx = (col as f64 - 16.0) / 2.0;
            let ky = -(row as f64 - 16.0) / 2.0;
            let mut acc = C64::new(0.0, 0.0);
            for i in 0..n * n {
                let x = -1.0 + (i % n) as f64 * h + h / 2.0;
                let y = -1.0 + (i / n) as f64 * h + h / 2.0;
                let v = ellipse_value(&SHEPP_LOGAN, x, y);
                if v != 0.0 {
                    let ph = -2.0 * PI * (kx * x + ky * y);
                    acc += coil_value(coef_c, x, y) * C64::new(ph.cos(), ph.sin()) * v;
                }
            }
            acc *= h * h * 32.0 / 4.0;
            let got = p.kspace[[c, row, col]];
            let got = C64::new(got.re as f64, got.im as f64);
            let dc = p.kspace[[c, 16, 16]].norm() as f64;
            assert!(
                (got - acc).norm() < 5e-3 * dc,
                "coil {c} ({row},{col}): {got} vs numeric {acc}"
            );
        }
    }
}

#[test]
fn masks_follow_fastmri_rules() {
    for (accel, cf) in [(4.0, 0.08), (8.0, 0.04)] {
        for kind in [MaskKind::Equispaced, MaskKind::Random] {
            let mut total = 0usize;
            for seed in 0..50 {
                let (lines, acs) = sampling_mask(kind, 368, accel, cf, seed).unwrap();
                let num_low = (368.0 * cf).round() as usize;
                assert_eq!(acs.iter().filter(|&&a| a).count(), num_low);
                let pad = (368 - num_low).div_ceil(2);
                assert!(acs[pad] && acs[pad + num_low - 1] && !acs[pad - 1]);
                assert!(
                    acs.iter().zip(&lines).all(|(&a, &l)| !a || l),
                    "centre always sampled"
                );
                total += lines.iter().filter(|&&l| l).count();
            }
            let mean = total as f64 / 50.0;
            let want = 368.0 / accel;
            assert!(
                (mean - want).abs() < 0.1 * want,
                "{kind:?} R={accel}: mean {mean} lines, want ≈ {want}"
            );
        }
    }
    assert!(sampling_mask(MaskKind::Random, 64, 0.5, 0.08, 0).is_err());
    assert!(sampling_mask(MaskKind::Random, 64, 8.0, 0.5, 0).is_err());
}
