//! Data consistency (issue 5): on phantoms without model error — k-space = A x + complex noise
//! of known level σₙ on the sampled lines, true unit-norm coil maps — the EBM's final residual
//! ‖Ax − y‖ / (σₙ √M) over the M measured samples lies between 0.8 and 1.2: it neither fits the
//! noise (≪ 1, as unregularised CG-SENSE drifts towards) nor ignores the data (≫ 1).

use basin_core::linop::{dot, LinearOp, Sense};
use basin_core::C32;
use basin_recon::ebm::{ebm, EbmParams};
use ndarray::{Array3, Array4};

mod common;

fn residual_over_noise(op: &Sense, x: &Array3<C32>, k: &Array4<C32>, sigma: f64) -> f64 {
    let mut r = op.forward(x.view().into_dyn());
    r -= &k.view().into_dyn();
    let m = op.mask().iter().filter(|&&v| v).count() * k.shape()[0];
    dot(r.view(), r.view()).re.sqrt() / (sigma * (m as f64).sqrt())
}

#[test]
fn ebm_residual_sits_at_the_noise_level() {
    let model = basin_prior::fast::FastPyramid::new(&basin_prior::default_model().unwrap().0);
    for accel in [4.0, 8.0] {
        let (truth, op) = common::exact_case(128, accel, 3);
        let peak = truth.iter().map(|c| c.norm()).fold(0.0f32, f32::max) as f64;
        let sigma = 0.02 * peak;
        let k = common::noisy_kspace(&op, &truth, sigma, 103);
        let (x, _) = ebm(&op, &k, &model, &EbmParams::default(), Some(sigma));
        let (xs, _) = basin_recon::solvers::cg_sense(&op, &k, 0.0, 1e-6, 10, None);
        let e = residual_over_noise(&op, &x, &k, sigma);
        let s = residual_over_noise(&op, &xs, &k, sigma);
        println!("accel {accel}: EBM residual/noise {e:.3} (CG-SENSE, 10 iterations: {s:.3})");
        assert!(
            (0.8..=1.2).contains(&e),
            "accel {accel}: EBM residual/noise {e}"
        );
    }
}

/// CG-SENSE with the discrepancy principle stops at the first iteration whose residual is at
/// most τ σ √M, and the residual it tracks without applying A matches the explicit ‖Ax − y‖.
#[test]
fn cg_sense_discrepancy_stops_at_the_noise_level() {
    let (truth, op) = common::exact_case(128, 4.0, 5);
    let peak = truth.iter().map(|c| c.norm()).fold(0.0f32, f32::max) as f64;
    let sigma = 0.004 * peak;
    let k = common::noisy_kspace(&op, &truth, sigma, 7);
    let m = op.mask().iter().filter(|&&v| v).count() * k.shape()[0];
    let tau = 1.2;
    let eps2 = (tau * sigma).powi(2) * m as f64;
    let (x, it) = basin_recon::solvers::cg_sense(&op, &k, 0.0, 0.0, 200, Some(eps2));
    let r = residual_over_noise(&op, &x, &k, sigma);
    println!("discrepancy stop after {it} iterations at residual/noise {r:.4}");
    assert!(it < 200, "stopped by the discrepancy, not the cap");
    assert!(r <= tau * 1.001, "residual/noise {r} above τ = {tau}");
    let (prev, _) = basin_recon::solvers::cg_sense(&op, &k, 0.0, 0.0, it - 1, None);
    let rp = residual_over_noise(&op, &prev, &k, sigma);
    assert!(
        rp > tau * 0.999,
        "one iteration earlier {rp} was already below τ"
    );
    // The tracked residual, with and without Tikhonov, against the explicit one (float32
    // operator, float64 sums: relative 1e-3).
    for lambda in [0.0f32, 0.05] {
        let b = op.adjoint(k.view().into_dyn());
        let yy = dot(k.view().into_dyn(), k.view().into_dyn()).re;
        let mut cg = basin_recon::solvers::Cg::new(&op, b, lambda).with_data_norm_sq(yy);
        for _ in 0..6 {
            cg.update();
        }
        let tracked = cg.data_residual_sq().unwrap();
        let x3: Array3<C32> = cg.x.clone().into_dimensionality().unwrap();
        let explicit = (residual_over_noise(&op, &x3, &k, sigma) * sigma).powi(2) * m as f64;
        println!("λ {lambda}: tracked {tracked:.6e}, explicit {explicit:.6e}");
        assert!(
            (tracked - explicit).abs() <= 1e-3 * explicit,
            "λ {lambda}: tracked {tracked} vs explicit {explicit}"
        );
    }
}

/// CG-SENSE's stall stop ends at the first iteration k whose explicit ‖A x_k − y‖² lies less
/// than ε·‖A x_k − y‖² below iteration k − 1's, and not earlier: recomputed with A from the
/// fixed-iteration solves k − 2, k − 1 and k (float32 operator: margin 1e-3 on ε).
#[test]
fn cg_sense_stall_stops_at_the_first_small_decrease() {
    let (truth, op) = common::exact_case(128, 4.0, 5);
    let peak = truth.iter().map(|c| c.norm()).fold(0.0f32, f32::max) as f64;
    let sigma = 0.01 * peak;
    let k = common::noisy_kspace(&op, &truth, sigma, 9);
    let r2 = |x: &Array3<C32>| residual_over_noise(&op, x, &k, 1.0).powi(2);
    for eps in [0.005, 0.015, 0.05] {
        let stop = basin_recon::solvers::EarlyStop {
            residual_sq: None,
            stall: eps,
        };
        let (x, it) = basin_recon::solvers::cg_sense_with(&op, &k, 0.0, 0.0, 200, &stop);
        println!("stall {eps}: stopped after {it} iterations");
        assert!((2..200).contains(&it), "stall {eps}: {it} iterations");
        let fixed = |n: usize| basin_recon::solvers::cg_sense(&op, &k, 0.0, 0.0, n, None).0;
        let same = fixed(it);
        let d = (&x - &same).mapv(|c| c.norm_sqr()).sum();
        assert!(
            d == 0.0,
            "stall {eps}: the stopped iterate is iteration {it}'s"
        );
        let (a, b) = (r2(&fixed(it - 1)), r2(&x));
        assert!(
            a - b < (eps + 1e-3) * b,
            "stall {eps}: iteration {it} lowered the residual by {} of it",
            (a - b) / b
        );
        if it >= 3 {
            let c = r2(&fixed(it - 2));
            assert!(
                c - a >= (eps - 1e-3) * a,
                "stall {eps}: iteration {} already lowered it by only {}",
                it - 1,
                (c - a) / a
            );
        }
    }
}
