//! Prewhitening changes the statistical weighting, never the image (issue 18): the same object
//! acquired with white coil noise and with a strongly correlated coil noise covariance (the
//! realistic simulator's birdcage coils, noise scans with each covariance) reconstructs to the
//! same image up to noise, for every protocol; and on correlated noise prewhitening on is not
//! worse than off.

use basin_core::metrics::psnr;
use basin_core::{C32, C64};
use basin_mrd::KSpace;
use basin_phantom::realistic::{mean_abs_correlation, simulate, RealisticSpec};
use basin_phantom::{generate, Kind, MaskKind, PhantomSpec};
use basin_recon::{reconstruct, Protocol};
use ndarray::{Array2, Array3, Axis};

mod common;

const N: usize = 128;

/// The brain-like ellipse phantom's 128² magnitude, as an image to simulate from.
fn object() -> Array3<f32> {
    let p = generate(&PhantomSpec {
        kind: Kind::Brain,
        matrix: N,
        coils: 1,
        accel: 1.0,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        noise: 0.0,
        seed: 1,
    })
    .unwrap();
    p.truth.insert_axis(Axis(0))
}

/// A strongly correlated 8-coil covariance: variances 0.3–2.0, every neighbour pair correlated
/// with |ρ| ≈ 0.5–0.6 and a phase, plus a common component: mean |ρ| ≈ 0.38.
fn strong_covariance() -> Array2<C64> {
    let n = 8;
    let mut g = Array2::<C64>::eye(n);
    for i in 0..n {
        g[[i, (i + 1) % n]] += C64::from_polar(0.8, 0.3 * i as f64);
        g[[i, (i + 3) % n]] += C64::from_polar(0.3, -0.5);
        for j in 0..n {
            g[[i, j]] += C64::from_polar(0.5 / (n as f64).sqrt(), 0.4 * i as f64 - 0.2 * j as f64);
        }
    }
    let r = g.dot(&g.t().mapv(|v| v.conj()));
    let var: Vec<f64> = (0..n).map(|i| 0.3 + 1.7 * i as f64 / 7.0).collect();
    Array2::from_shape_fn((n, n), |(i, j)| {
        r[[i, j]] / (r[[i, i]].re * r[[j, j]].re).sqrt() * (var[i] * var[j]).sqrt()
    })
}

/// One simulated acquisition of `obj`, assembled as `basin recon` assembles a file, and its truth.
fn acquire(
    obj: &Array3<f32>,
    cov: Option<Array2<C64>>,
    accel: f64,
    snr: f64,
    seed: u64,
) -> (KSpace, Array3<f32>) {
    let spec = RealisticSpec {
        matrix: (N, N),
        coils: 8,
        accel,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        snr,
        noise_cov: Some(cov.unwrap_or_else(|| Array2::eye(8))),
        lesions: 0,
        noise_samples: 4096,
        seed,
    };
    let sim = simulate(obj, &spec).unwrap();
    (common::assemble_simulation(&sim, accel), sim.truth)
}

fn magnitude(p: &Protocol, k: &KSpace) -> Array3<f32> {
    let r = reconstruct(p, k).unwrap();
    r.slices[0].image.mapv(|v: C32| v.norm())
}

/// ‖a − b‖² / ‖b‖² over pixels where the truth is above 5 % of its maximum.
fn nmse_inside(a: &Array3<f32>, b: &Array3<f32>, truth: &Array3<f32>) -> f64 {
    let t = truth.iter().fold(0.0f32, |m, &v| m.max(v)) * 0.05;
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for ((&x, &y), &w) in a.iter().zip(b).zip(truth) {
        if w > t {
            num += ((x - y) as f64).powi(2);
            den += (y as f64).powi(2);
        }
    }
    num / den
}

/// PSNR of |x| against the truth after the least-squares scale (the benchmarks' convention).
fn psnr_ls(x: &Array3<f32>, truth: &Array3<f32>) -> f64 {
    let (n, d) = x
        .iter()
        .zip(truth)
        .fold((0.0f64, 0.0f64), |(n, d), (&p, &q)| {
            (n + (p * q) as f64, d + (p * p) as f64)
        });
    let a = (n / d) as f32;
    psnr(truth.view(), x.mapv(|v| v * a).view())
}

#[test]
fn a_correlated_noise_covariance_does_not_shade_the_image() {
    let obj = object();
    let cov = strong_covariance();
    assert!(
        mean_abs_correlation(&cov) > 0.25,
        "the covariance is strong"
    );
    let (white, truth) = acquire(&obj, None, 1.0, 400.0, 5);
    let (correlated, _) = acquire(&obj, Some(cov.clone()), 1.0, 400.0, 5);
    for name in ["zero-filled", "sense", "cs-tv", "brain-2d-ebm"] {
        let p = Protocol::resolve(name, None).unwrap();
        assert!(p.prewhiten, "{name} prewhitens");
        let a = magnitude(&p, &white);
        let b = magnitude(&p, &correlated);
        let e = nmse_inside(&b, &a, &truth);
        eprintln!("{name}: NMSE between the white- and correlated-noise images {e:.2e}");
        assert!(e < 3e-4, "{name}: the images differ by NMSE {e:.2e}");
    }
    // The control: the shading the fix removes, ‖W s‖/‖s‖ for birdcage maps (‖s‖ = 1) under
    // this covariance, differs from the truth by far more than the tolerance above.
    let w = basin_recon::prewhiten::whitening_matrix(&cov, 1.0).unwrap();
    let maps = basin_phantom::realistic::birdcage(8, N, N, 0.0);
    let mut ratio = Array3::<f32>::zeros((1, N, N));
    for y in 0..N {
        for x in 0..N {
            let s: Vec<C64> = (0..8)
                .map(|c| {
                    let v = maps[[c, y, x]];
                    C64::new(v.re as f64, v.im as f64)
                })
                .collect();
            let ws: f64 = (0..8)
                .map(|i| (0..8).map(|j| w[[i, j]] * s[j]).sum::<C64>().norm_sqr())
                .sum::<f64>()
                .sqrt();
            ratio[[0, y, x]] = ws as f32;
        }
    }
    let shaded = &truth * &ratio;
    let mean = shaded.sum() / truth.sum();
    let e = nmse_inside(&shaded.mapv(|v| v / mean), &truth, &truth);
    eprintln!("shading ‖W s‖/‖s‖ alone: NMSE {e:.2e}");
    assert!(e > 10.0 * 3e-4, "the control shading is large: {e:.2e}");
}

#[test]
fn prewhitening_is_not_worse_than_no_prewhitening_on_correlated_noise() {
    let obj = object();
    let cov = basin_phantom::realistic::realistic_covariance(8, 11);
    let (k, truth) = acquire(&obj, Some(cov), 4.0, 50.0, 9);
    let mut gain_sense = 0.0;
    for name in ["sense", "cs-l1-wavelet", "cs-tv", "brain-2d-ebm"] {
        let on = Protocol::resolve(name, None).unwrap();
        let mut off = on.clone();
        off.prewhiten = false;
        let a = psnr_ls(&magnitude(&on, &k), &truth);
        let b = psnr_ls(&magnitude(&off, &k), &truth);
        eprintln!("{name}: PSNR prewhitened {a:.2} dB, not {b:.2} dB");
        assert!(a >= b - 0.05, "{name}: prewhitening costs {:.2} dB", b - a);
        if name == "sense" {
            gain_sense = a - b;
        }
    }
    assert!(
        gain_sense > 0.0,
        "CG-SENSE gains from prewhitening: {gain_sense:.2} dB"
    );
}
