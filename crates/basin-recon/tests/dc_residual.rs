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
        let (xs, _) = basin_recon::solvers::cg_sense(&op, &k, 0.0, 1e-6, 10);
        let e = residual_over_noise(&op, &x, &k, sigma);
        let s = residual_over_noise(&op, &xs, &k, sigma);
        println!("accel {accel}: EBM residual/noise {e:.3} (CG-SENSE, 10 iterations: {s:.3})");
        assert!(
            (0.8..=1.2).contains(&e),
            "accel {accel}: EBM residual/noise {e}"
        );
    }
}
