//! FFT against a float64 naive DFT, operator adjoint tests, and metrics against plain loops.

use basin_core::fft::{fftc, ifftc};
use basin_core::linop::{adjoint_mismatch, Compose, Fft, LinearOp, Mask, Sense};
use basin_core::metrics::{nmse, psnr, ssim};
use basin_core::rng::Rng;
use basin_core::{C32, C64};
use ndarray::{Array1, Array3, Array4, ArrayD, IxDyn};

/// Centered orthonormal DFT in f64 by the definition: X[k] = Σ_j x[j] e^{∓2πi(k−N/2)(j−N/2)/N}/√N
/// (with ⌊N/2⌋ as the centre, which is what fftshift/ifftshift do for odd N as well).
fn naive_dft(x: &[C64], inverse: bool) -> Vec<C64> {
    let n = x.len();
    let c = (n / 2) as f64;
    let sign = if inverse { 1.0 } else { -1.0 };
    (0..n)
        .map(|k| {
            let mut acc = C64::new(0.0, 0.0);
            for (j, &v) in x.iter().enumerate() {
                let ph =
                    sign * 2.0 * std::f64::consts::PI * (k as f64 - c) * (j as f64 - c) / n as f64;
                acc += v * C64::new(ph.cos(), ph.sin());
            }
            acc / (n as f64).sqrt()
        })
        .collect()
}

fn rel_err(a: &[C64], b: &[C64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).norm_sqr()).sum();
    let den: f64 = b.iter().map(|y| y.norm_sqr()).sum();
    (num / den).sqrt()
}

#[test]
fn fft_1d_matches_naive_dft() {
    let mut rng = Rng::new(1);
    for &n in &[64usize, 100, 256, 320, 368, 7, 33] {
        let x: Vec<C32> = (0..n).map(|_| rng.complex_normal()).collect();
        let x64: Vec<C64> = x
            .iter()
            .map(|v| C64::new(v.re as f64, v.im as f64))
            .collect();
        for inverse in [false, true] {
            let mut a = Array1::from(x.clone());
            if inverse {
                ifftc(a.view_mut(), &[0]);
            } else {
                fftc(a.view_mut(), &[0]);
            }
            let got: Vec<C64> = a
                .iter()
                .map(|v| C64::new(v.re as f64, v.im as f64))
                .collect();
            let want = naive_dft(&x64, inverse);
            let e = rel_err(&got, &want);
            assert!(e < 1e-5, "n={n} inverse={inverse}: relative error {e}");
        }
    }
}

#[test]
fn fft_3d_matches_separable_naive_dft() {
    let (nz, ny, nx) = (6usize, 10usize, 12usize);
    let mut rng = Rng::new(2);
    let x = Array3::from_shape_simple_fn((nz, ny, nx), || rng.complex_normal());
    let mut got = x.clone();
    fftc(got.view_mut(), &[0, 1, 2]);
    // Reference: naive DFT along each axis in f64.
    let mut r = x.mapv(|v| C64::new(v.re as f64, v.im as f64));
    for ax in 0..3 {
        for mut lane in r.lanes_mut(ndarray::Axis(ax)) {
            let v: Vec<C64> = lane.iter().copied().collect();
            for (o, n) in lane.iter_mut().zip(naive_dft(&v, false)) {
                *o = n;
            }
        }
    }
    let g: Vec<C64> = got
        .iter()
        .map(|v| C64::new(v.re as f64, v.im as f64))
        .collect();
    let w: Vec<C64> = r.iter().copied().collect();
    let e = rel_err(&g, &w);
    assert!(e < 1e-5, "3D relative error {e}");
}

#[test]
fn fft_roundtrip_is_identity() {
    let mut rng = Rng::new(3);
    let x = Array3::from_shape_simple_fn((2, 100, 64), || rng.complex_normal());
    let mut y = x.clone();
    fftc(y.view_mut(), &[1, 2]);
    ifftc(y.view_mut(), &[1, 2]);
    let e: f32 = (&y - &x).iter().map(|v| v.norm_sqr()).sum::<f32>().sqrt()
        / x.iter().map(|v| v.norm_sqr()).sum::<f32>().sqrt();
    assert!(e < 1e-5, "roundtrip error {e}");
}

#[test]
fn operators_pass_the_adjoint_test() {
    let mut rng = Rng::new(4);
    let fft = Fft::new(&[3, 20, 18], &[1, 2]);
    assert!(adjoint_mismatch(&fft, 10) < 1e-5);
    let mask = ArrayD::from_shape_simple_fn(IxDyn(&[3, 20, 18]), || rng.uniform() < 0.4);
    let m = Mask::new(mask);
    assert!(adjoint_mismatch(&m, 11) < 1e-6);
    let comp = Compose::new(m, fft).expect("shapes agree");
    assert!(adjoint_mismatch(&comp, 12) < 1e-5);
    let maps = Array4::from_shape_simple_fn((4, 2, 16, 20), || rng.complex_normal());
    let smask = Array3::from_shape_simple_fn((2, 16, 20), || rng.uniform() < 0.5);
    for three_d in [false, true] {
        let sense = Sense::new(maps.clone(), smask.clone(), three_d).expect("shapes agree");
        let e = adjoint_mismatch(&sense, 13);
        assert!(e < 1e-5, "Sense (3D={three_d}) adjoint mismatch {e}");
    }
}

/// The normal operator skips the transforms along axes where the mask does not vary (the
/// readout of Cartesian line masks); it must still equal Aᴴ ∘ A for every kind of mask.
#[test]
fn sense_normal_shortcut_equals_adjoint_of_forward() {
    let mut rng = Rng::new(5);
    let maps = Array4::from_shape_simple_fn((3, 2, 12, 10), || rng.complex_normal());
    let lines: Vec<bool> = (0..12).map(|_| rng.uniform() < 0.4).collect();
    let cols: Vec<bool> = (0..10).map(|_| rng.uniform() < 0.5).collect();
    let masks = [
        (
            "phase-encode lines",
            Array3::from_shape_fn((2, 12, 10), |(_, y, _)| lines[y]),
        ),
        (
            "readout columns",
            Array3::from_shape_fn((2, 12, 10), |(_, _, x)| cols[x]),
        ),
        (
            "slice on / slice off",
            Array3::from_shape_fn((2, 12, 10), |(z, _, _)| z == 0),
        ),
        ("fully sampled", Array3::from_elem((2, 12, 10), true)),
    ];
    for (name, mask) in masks {
        for three_d in [false, true] {
            let sense = Sense::new(maps.clone(), mask.clone(), three_d).expect("shapes agree");
            let e = adjoint_mismatch(&sense, 14);
            assert!(
                e < 1e-5,
                "{name} (3D={three_d}): normal vs adjoint∘forward {e}"
            );
        }
    }
}

#[test]
fn adjoint_test_catches_a_wrong_adjoint() {
    // A deliberately broken operator: adjoint forgets the conjugate.
    struct Broken;
    impl LinearOp for Broken {
        fn ishape(&self) -> Vec<usize> {
            vec![8]
        }
        fn oshape(&self) -> Vec<usize> {
            vec![8]
        }
        fn forward_into(
            &self,
            x: ndarray::ArrayViewD<'_, C32>,
            mut y: ndarray::ArrayViewMutD<'_, C32>,
        ) {
            y.assign(&x.mapv(|v| v * C32::new(0.0, 1.0)));
        }
        fn adjoint_into(
            &self,
            y: ndarray::ArrayViewD<'_, C32>,
            mut x: ndarray::ArrayViewMutD<'_, C32>,
        ) {
            x.assign(&y.mapv(|v| v * C32::new(0.0, 1.0)));
        }
    }
    assert!(adjoint_mismatch(&Broken, 1) > 0.1);
}

#[test]
fn metrics_match_plain_loops() {
    let mut rng = Rng::new(5);
    let gt = Array3::from_shape_simple_fn((2, 24, 20), || rng.uniform() as f32);
    let pred = gt.mapv(|v| v + 0.05 * (rng.normal() as f32));
    // NMSE and PSNR by definition.
    let (mut num, mut den, mut max) = (0.0f64, 0.0f64, 0.0f64);
    for (&g, &p) in gt.iter().zip(pred.iter()) {
        num += (g as f64 - p as f64).powi(2);
        den += (g as f64).powi(2);
        max = max.max(g as f64);
    }
    assert!((nmse(gt.view(), pred.view()) - num / den).abs() < 1e-12);
    let want_psnr = 10.0 * (max * max / (num / gt.len() as f64)).log10();
    assert!((psnr(gt.view(), pred.view()) - want_psnr).abs() < 1e-9);
    // SSIM by explicit 7×7 window loops (skimage definition, sample covariance).
    let mut total = 0.0;
    for z in 0..2 {
        let mut acc = 0.0;
        let mut cnt = 0;
        for y in 0..=(24 - 7) {
            for x in 0..=(20 - 7) {
                let mut v = Vec::new();
                for dy in 0..7 {
                    for dx in 0..7 {
                        v.push((
                            gt[[z, y + dy, x + dx]] as f64,
                            pred[[z, y + dy, x + dx]] as f64,
                        ));
                    }
                }
                let n = v.len() as f64;
                let ma = v.iter().map(|p| p.0).sum::<f64>() / n;
                let mb = v.iter().map(|p| p.1).sum::<f64>() / n;
                let va = v.iter().map(|p| (p.0 - ma).powi(2)).sum::<f64>() / (n - 1.0);
                let vb = v.iter().map(|p| (p.1 - mb).powi(2)).sum::<f64>() / (n - 1.0);
                let cab = v.iter().map(|p| (p.0 - ma) * (p.1 - mb)).sum::<f64>() / (n - 1.0);
                let c1 = (0.01 * max).powi(2);
                let c2 = (0.03 * max).powi(2);
                acc += (2.0 * ma * mb + c1) * (2.0 * cab + c2)
                    / ((ma * ma + mb * mb + c1) * (va + vb + c2));
                cnt += 1;
            }
        }
        total += acc / cnt as f64;
    }
    let got = ssim(gt.view(), pred.view());
    assert!(
        (got - total / 2.0).abs() < 1e-9,
        "ssim {got} vs {}",
        total / 2.0
    );
    assert!((ssim(gt.view(), gt.view()) - 1.0).abs() < 1e-12);
}
