//! The realistic simulator (`basin phantom --from`): its noise has the covariance it records (in
//! the data and in the noise scan), its k-space, coil maps and truth agree with one another, its
//! generated covariance looks like a receive array's, lesions carry their contrast, and the same
//! seed gives the same acquisition.

use basin_core::fft::ifftc;
use basin_core::{C32, C64};
use basin_phantom::lesions::contrast;
use basin_phantom::realistic::{
    mean_abs_correlation, realistic_covariance, simulate, RealisticSpec,
};
use basin_phantom::{generate, Kind, MaskKind, PhantomSpec};
use ndarray::{s, Array2, Array3, Axis};

const N: usize = 96;

fn image() -> Array3<f32> {
    let p = generate(&PhantomSpec {
        kind: Kind::Brain,
        matrix: 90,
        coils: 1,
        accel: 1.0,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        noise: 0.0,
        seed: 1,
    })
    .unwrap();
    // Two slices (the second scaled: the simulator normalises the whole volume once).
    let t = p.truth;
    ndarray::stack(Axis(0), &[t.view(), t.mapv(|v| 0.7 * v).view()]).unwrap()
}

fn spec(snr: f64) -> RealisticSpec {
    RealisticSpec {
        matrix: (N, N),
        coils: 8,
        accel: 1.0,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        snr,
        noise_cov: None,
        lesions: 0,
        noise_samples: 8192,
        seed: 4,
    }
}

/// Sample covariance of complex samples `[c, n]`.
fn sample_cov(v: &Array2<C32>) -> Array2<C64> {
    let (c, n) = v.dim();
    Array2::from_shape_fn((c, c), |(i, j)| {
        (0..n)
            .map(|k| {
                let (a, b) = (v[[i, k]], v[[j, k]]);
                C64::new(a.re as f64, a.im as f64) * C64::new(b.re as f64, -b.im as f64)
            })
            .sum::<C64>()
            / n as f64
    })
}

/// Largest |Ψ̂ᵢⱼ − Ψᵢⱼ| / √(Ψᵢᵢ Ψⱼⱼ).
fn cov_error(est: &Array2<C64>, truth: &Array2<C64>) -> f64 {
    let n = truth.shape()[0];
    let mut worst = 0.0f64;
    for i in 0..n {
        for j in 0..n {
            let d =
                (est[[i, j]] - truth[[i, j]]).norm() / (truth[[i, i]].re * truth[[j, j]].re).sqrt();
            worst = worst.max(d);
        }
    }
    worst
}

#[test]
fn the_generated_covariance_looks_like_a_receive_arrays() {
    for seed in 0..5 {
        let c = realistic_covariance(8, seed);
        let d: Vec<f64> = (0..8).map(|i| c[[i, i]].re).collect();
        let mean = d.iter().sum::<f64>() / 8.0;
        assert!((mean - 1.0).abs() < 1e-9, "mean variance {mean}");
        let (lo, hi) = d
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(
            hi / lo < 1.4 / 0.5 + 1e-9 && hi / lo > 1.1,
            "variance spread {lo}..{hi}"
        );
        let m = mean_abs_correlation(&c);
        eprintln!("seed {seed}: variances {lo:.2}..{hi:.2}, mean |rho| {m:.3}");
        assert!((0.12..0.35).contains(&m), "mean |rho| {m}");
        for i in 0..8 {
            for j in 0..8 {
                assert!((c[[i, j]] - c[[j, i]].conj()).norm() < 1e-12);
            }
        }
    }
}

#[test]
fn noise_in_the_data_and_the_noise_scan_has_the_recorded_covariance() {
    let img = image();
    let noisy = simulate(&img, &spec(20.0)).unwrap();
    let clean = simulate(&img, &spec(f64::INFINITY)).unwrap();
    assert!(noisy.sigma > 0.0 && clean.sigma == 0.0);
    assert!((noisy.tissue_mean / noisy.sigma - 20.0).abs() < 1e-9);
    // The noise scan.
    let e = cov_error(&sample_cov(&noisy.noise_scan), &noisy.noise_cov);
    eprintln!("noise scan covariance error {e:.3}");
    assert!(e < 0.05, "noise scan covariance error {e}");
    // The data: noisy minus noise-free k-space of the same seed is the noise alone.
    let diff = &noisy.kspace - &clean.kspace;
    let nc = diff.shape()[0];
    let flat = diff.into_shape_with_order((nc, 2 * N * N)).unwrap();
    let e = cov_error(&sample_cov(&flat), &noisy.noise_cov);
    eprintln!("k-space noise covariance error {e:.3}");
    assert!(e < 0.05, "k-space noise covariance error {e}");
    assert!(mean_abs_correlation(&noisy.noise_cov) > 0.12);
}

#[test]
fn kspace_maps_and_truth_agree_and_the_object_is_off_the_grid() {
    let img = image();
    let sim = simulate(&img, &spec(f64::INFINITY)).unwrap();
    assert_eq!(sim.truth.dim(), (2, N, N));
    for z in 0..2 {
        // Coil images combined with the true maps: Σ conj(s_c) x_c = ρ e^{iφ} when ‖s‖ = 1.
        let mut k = sim.kspace.slice(s![.., z, .., ..]).to_owned();
        ifftc(k.view_mut(), &[1, 2]);
        let maps = sim.maps.slice(s![.., z, .., ..]);
        let comb = Array2::from_shape_fn((N, N), |(y, x)| {
            (0..8)
                .map(|c| maps[[c, y, x]].conj() * k[[c, y, x]])
                .sum::<C32>()
                .norm()
        });
        let t = sim.truth.index_axis(Axis(0), z);
        let (num, den) = comb
            .iter()
            .zip(t.iter())
            .fold((0.0, 0.0), |(n, d), (&a, &b)| {
                (n + ((a - b) as f64).powi(2), d + (b as f64).powi(2))
            });
        eprintln!("slice {z}: NMSE(coil-combined, truth) {:.2e}", num / den);
        assert!(num / den < 1e-3, "slice {z}: NMSE {}", num / den);
        // Unit root sum of squares.
        for y in (0..N).step_by(7) {
            for x in (0..N).step_by(7) {
                let r: f32 = (0..8).map(|c| maps[[c, y, x]].norm_sqr()).sum();
                assert!((r - 1.0).abs() < 1e-4, "rss {r}");
            }
        }
    }
    // The second slice is the first at 0.7 (one normalisation for the volume).
    let ratio = sim.truth.index_axis(Axis(0), 1).sum() / sim.truth.index_axis(Axis(0), 0).sum();
    assert!((ratio - 0.7).abs() < 0.02, "slice ratio {ratio}");
    assert!(sim
        .offsets
        .iter()
        .all(|o| o.0.abs() <= 0.5 && o.1.abs() <= 0.5 && (o.0 != 0.0 || o.1 != 0.0)));
}

#[test]
fn the_same_seed_gives_the_same_acquisition_and_lesions_have_their_contrast() {
    let img = image();
    let mut sp = spec(50.0);
    sp.accel = 4.0;
    sp.lesions = 3;
    let a = simulate(&img, &sp).unwrap();
    let b = simulate(&img, &sp).unwrap();
    assert_eq!(a.kspace, b.kspace);
    assert_eq!(a.noise_scan, b.noise_scan);
    assert_eq!(a.truth, b.truth);
    sp.seed += 1;
    let c = simulate(&img, &sp).unwrap();
    assert_ne!(a.kspace, c.kspace);
    // Undersampled: lines not acquired are exactly zero.
    let acquired = a.lines.iter().filter(|&&l| l).count();
    assert!(acquired < N / 2 && acquired > N / 6, "{acquired} lines");
    for (y, &l) in a.lines.iter().enumerate() {
        if !l {
            assert!(a
                .kspace
                .slice(s![.., .., y, ..])
                .iter()
                .all(|v| v.norm() == 0.0));
        }
    }
    let n: usize = a.lesions.iter().map(|l| l.len()).sum();
    assert!(n >= 2, "{n} lesions placed");
    for (z, ls) in a.lesions.iter().enumerate() {
        for l in ls {
            let c = contrast(a.truth.index_axis(Axis(0), z), l);
            let want = l.factor as f64 - 1.0;
            eprintln!(
                "lesion r {} factor {}: contrast in the truth {c:.3}",
                l.r, l.factor
            );
            assert!(
                c * want > 0.0 && (c - want).abs() < 0.6 * want.abs(),
                "contrast {c}"
            );
        }
    }
}

#[test]
fn bad_specs_are_refused() {
    let img = image();
    let mut sp = spec(50.0);
    sp.coils = 0;
    assert!(simulate(&img, &sp).is_err());
    let mut sp = spec(50.0);
    sp.matrix = (64, 64);
    assert!(
        simulate(&img, &sp).is_err(),
        "matrix smaller than the image"
    );
    let mut sp = spec(-1.0);
    sp.snr = -1.0;
    assert!(simulate(&img, &sp).is_err());
    let mut sp = spec(50.0);
    let mut bad = Array2::<C64>::eye(8);
    bad[[0, 1]] = C64::new(2.0, 0.0);
    bad[[1, 0]] = C64::new(2.0, 0.0);
    sp.noise_cov = Some(bad);
    let e = simulate(&img, &sp).unwrap_err().to_string();
    assert!(e.contains("noise-cov"), "{e}");
    assert!(simulate(&Array3::zeros((1, 90, 90)), &spec(50.0)).is_err());
}

/// `--lesion-slices`: the first slice of each anatomy gets a lesion copy by default, every slice
/// with `All`; each case keeps a distinct seed.
#[test]
fn suite_lesion_slices_choose_which_anatomy_slices_get_lesions() {
    use basin_phantom::suite::{plan, Anatomy, LesionSlices, SuiteSpec};
    let spec = |lesion_slices| SuiteSpec {
        lesion_slices,
        anatomy: vec![Anatomy {
            name: "a".into(),
            source: "test".into(),
            image: ndarray::Array3::zeros((3, 8, 8)),
            contrast: None,
            spacing: [1.0; 3],
            slices: vec![0, 2],
        }],
        ..SuiteSpec::default()
    };
    let lesion_cases = |s: &SuiteSpec| -> Vec<String> {
        plan(s)
            .into_iter()
            .filter(|c| c.lesions > 0)
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(
        lesion_cases(&spec(LesionSlices::First)),
        [
            "ellipses-realistic_4x_lesions",
            "a-0_4x_lesions",
            "ellipses-realistic_8x_lesions",
            "a-0_8x_lesions"
        ]
    );
    assert_eq!(
        lesion_cases(&spec(LesionSlices::All)),
        [
            "ellipses-realistic_4x_lesions",
            "a-0_4x_lesions",
            "a-2_4x_lesions",
            "ellipses-realistic_8x_lesions",
            "a-0_8x_lesions",
            "a-2_8x_lesions"
        ]
    );
    let p = plan(&spec(LesionSlices::All));
    let mut seeds: Vec<u64> = p.iter().map(|c| c.seed).collect();
    seeds.sort();
    seeds.dedup();
    assert_eq!(seeds.len(), p.len());
}
