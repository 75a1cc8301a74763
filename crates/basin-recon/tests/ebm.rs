//! The EBM solver with the embedded prior: it improves on CG-SENSE on an undersampled phantom,
//! and with noise-free single-coil data its data-consistency step is the exact projection
//! (measured samples reproduced, unmeasured ones filled by the prior).

use basin_core::linop::{LinearOp, Sense};
use basin_core::C32;
use basin_prior::fast::FastPyramid;
use basin_recon::ebm::{ebm, EbmParams};
use basin_recon::protocol::{Protocol, Solver};
use ndarray::{Array3, Axis};

fn nmse_vs_truth(x: &Array3<C32>, truth: &ndarray::Array2<f32>) -> f64 {
    let m: Vec<f64> = x.iter().map(|c| c.norm() as f64).collect();
    let t: Vec<f64> = truth.iter().map(|&v| v as f64).collect();
    let a = m.iter().zip(&t).map(|(p, q)| p * q).sum::<f64>()
        / m.iter().map(|p| p * p).sum::<f64>().max(1e-30);
    let num: f64 = m.iter().zip(&t).map(|(p, q)| (a * p - q).powi(2)).sum();
    num / t.iter().map(|q| q * q).sum::<f64>()
}

fn shipped() -> EbmParams {
    match Protocol::resolve("brain-2d-ebm", None).unwrap().solver {
        Solver::Ebm {
            sigma_max,
            sigma_min,
            levels,
            inner,
            cg_iterations,
            init_iterations,
        } => EbmParams {
            sigma_max,
            sigma_min,
            levels,
            inner,
            cg_iterations,
            init_iterations,
        },
        s => panic!("brain-2d-ebm has solver {s:?}"),
    }
}

fn model() -> FastPyramid {
    FastPyramid::new(&basin_prior::default_model().unwrap().0)
}

#[test]
fn ebm_improves_on_cg_sense_on_an_undersampled_phantom() {
    use basin_phantom::{generate, Kind, MaskKind, PhantomSpec};
    use basin_recon::coils::{espirit_2d, EspiritParams};
    let spec = PhantomSpec {
        kind: Kind::Brain,
        matrix: 128,
        coils: 8,
        accel: 4.0,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        noise: 0.002,
        seed: 3,
    };
    let p = generate(&spec).unwrap();
    let mask2 = ndarray::Array2::from_shape_fn((128, 128), |(y, _)| p.lines[y]);
    let (maps, _) = espirit_2d(p.sampled.view(), mask2.view(), &EspiritParams::default()).unwrap();
    let op = Sense::new(maps.insert_axis(Axis(1)), mask2.insert_axis(Axis(0)), false).unwrap();
    let k = p.sampled.clone().insert_axis(Axis(1));
    let (cg, _) = basin_recon::solvers::cg_sense(&op, &k, 0.0, 1e-6, 30);
    let (x, rep) = ebm(&op, &k, &model(), &shipped(), None);
    let (e_cg, e_ebm) = (nmse_vs_truth(&cg, &p.truth), nmse_vs_truth(&x, &p.truth));
    eprintln!("NMSE CG-SENSE {e_cg:.4}, EBM {e_ebm:.4}; {rep:?}");
    assert!(e_ebm < 0.6 * e_cg, "EBM {e_ebm} vs CG-SENSE {e_cg}");
    assert!(rep.energy.is_finite() && rep.iterations > 0);
}

#[test]
fn single_coil_noise_free_data_consistency_is_exact() {
    use basin_phantom::{generate, Kind, MaskKind, PhantomSpec};
    let spec = PhantomSpec {
        kind: Kind::SheppLogan,
        matrix: 64,
        coils: 1,
        accel: 4.0,
        center_fraction: 0.08,
        mask: MaskKind::Random,
        noise: 0.0,
        seed: 5,
    };
    let p = generate(&spec).unwrap();
    let mask = Array3::from_shape_fn((1, 64, 64), |(_, y, _)| p.lines[y]);
    let maps = ndarray::Array4::from_elem((1, 1, 64, 64), C32::new(1.0, 0.0));
    let op = Sense::new(maps, mask.clone(), false).unwrap();
    let k = p.sampled.clone().insert_axis(Axis(1));
    // CG-SENSE asked for more than float32 can resolve stays data-consistent (it used to
    // diverge in the null space of this singular AᴴA).
    let (cg, _) = basin_recon::solvers::cg_sense(&op, &k, 0.0, 1e-12, 50);
    assert!(basin_recon::solvers::dc_residual(&op, &cg, &k) < 1e-3);
    let (x, rep) = ebm(&op, &k, &model(), &shipped(), Some(0.0));
    let ax = op.forward(x.view().into_dyn());
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for ((i, &a), &b) in ax.indexed_iter().zip(k.view().into_dyn().iter()) {
        if mask[[i[1], i[2], i[3]]] {
            num += (a - b).norm_sqr() as f64;
            den += b.norm_sqr() as f64;
        }
    }
    let rel = (num / den).sqrt();
    assert!(rel < 1e-3, "measured samples changed by {rel}");
    // The unmeasured samples (of the unmasked k-space of x) are not left at zero.
    let mut kx = x.clone();
    basin_core::fft::fftc(kx.view_mut(), &[1, 2]);
    let filled: f64 = kx
        .indexed_iter()
        .filter(|(i, _)| !mask[[i.0, i.1, i.2]])
        .map(|(_, v)| v.norm_sqr() as f64)
        .sum();
    assert!(filled > 1e-6 * den, "unmeasured k-space stayed empty");
    assert_eq!(rep.noise_std, 0.0);
}

#[test]
fn posterior_sampling_is_reproducible_and_spreads() {
    use basin_phantom::{generate, Kind, MaskKind, PhantomSpec};
    use basin_recon::ebm::posterior;
    let spec = PhantomSpec {
        kind: Kind::SheppLogan,
        matrix: 32,
        coils: 1,
        accel: 4.0,
        center_fraction: 0.08,
        mask: MaskKind::Random,
        noise: 0.01,
        seed: 2,
    };
    let p = generate(&spec).unwrap();
    let mask = Array3::from_shape_fn((1, 32, 32), |(_, y, _)| p.lines[y]);
    let maps = ndarray::Array4::from_elem((1, 1, 32, 32), C32::new(1.0, 0.0));
    let op = Sense::new(maps, mask, false).unwrap();
    let k = p.sampled.clone().insert_axis(Axis(1));
    let m = model();
    let (mean, sd) = posterior(&op, &k, &m, &shipped(), None, 3, 7);
    let (mean2, sd2) = posterior(&op, &k, &m, &shipped(), None, 3, 7);
    assert_eq!(mean, mean2);
    assert_eq!(sd, sd2);
    assert!(mean.iter().all(|c| c.re.is_finite() && c.im.is_finite()));
    assert!(sd.iter().all(|&v| v.is_finite() && v >= 0.0));
    // Unmeasured lines make the samples differ.
    assert!(sd.iter().any(|&v| v > 0.0));
}
