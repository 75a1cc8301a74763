//! Reconstruction on analytic phantoms: ESPIRiT maps against the true sensitivities, CG-SENSE
//! against the fully sampled reconstruction, prewhitening against the identity.

use basin_core::fft::ifftc;
use basin_core::linop::Sense;
use basin_core::metrics::nmse;
use basin_core::C32;
use basin_phantom::{generate, Kind, MaskKind, PhantomSpec};
use basin_recon::coils::{espirit_2d, walsh_2d, EspiritParams};
use basin_recon::prewhiten::{apply, noise_covariance, whitening_matrix};
use basin_recon::protocol::{Protocol, MAX_EBM_PRIOR_STEPS};
use basin_recon::solvers::cg_sense;
use ndarray::{s, Array3, Array4, Axis};

fn spec(accel: f64, noise: f64) -> PhantomSpec {
    PhantomSpec {
        kind: Kind::Brain,
        matrix: 128,
        coils: 8,
        accel,
        center_fraction: 0.16,
        mask: MaskKind::Equispaced,
        noise,
        seed: 7,
    }
}

/// Median over object pixels of |⟨a, b⟩| / (‖a‖‖b‖) between two sets of maps `[c, y, x]`.
fn median_map_similarity(a: &Array3<C32>, b: &Array3<C32>, inside: &ndarray::Array2<bool>) -> f64 {
    let mut vals = Vec::new();
    for ((y, x), &m) in inside.indexed_iter() {
        if !m {
            continue;
        }
        let (mut ip, mut na, mut nb) = (num_complex::Complex64::new(0.0, 0.0), 0.0f64, 0.0f64);
        for c in 0..a.shape()[0] {
            let u = a[[c, y, x]];
            let v = b[[c, y, x]];
            ip += num_complex::Complex64::new(u.re as f64, -u.im as f64)
                * num_complex::Complex64::new(v.re as f64, v.im as f64);
            na += u.norm_sqr() as f64;
            nb += v.norm_sqr() as f64;
        }
        vals.push(ip.norm() / (na * nb).sqrt().max(1e-30));
    }
    vals.sort_by(|a, b| a.partial_cmp(b).unwrap());
    vals[vals.len() / 2]
}

#[test]
fn espirit_and_walsh_maps_match_true_sensitivities() {
    let sp = spec(1.0, 0.0);
    let p = generate(&sp).unwrap();
    let mask = ndarray::Array2::from_elem((128, 128), true);
    let inside = p.truth.mapv(|v| v > 0.05);
    let (maps, eig) = espirit_2d(p.kspace.view(), mask.view(), &EspiritParams::default()).unwrap();
    let sim = median_map_similarity(&maps, &p.maps, &inside);
    assert!(sim > 0.99, "ESPIRiT median similarity {sim}");
    // Eigenvalue ≈ 1 inside the object.
    let mut inside_eigs: Vec<f32> = eig
        .iter()
        .zip(inside.iter())
        .filter(|(_, &m)| m)
        .map(|(&e, _)| e)
        .collect();
    inside_eigs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert!(inside_eigs[inside_eigs.len() / 2] > 0.95);
    let w = walsh_2d(p.kspace.view(), mask.view(), 7).unwrap();
    let simw = median_map_similarity(&w, &p.maps, &inside);
    assert!(simw > 0.98, "Walsh median similarity {simw}");
}

#[test]
fn cg_sense_at_r2_and_r4_matches_the_fully_sampled_reconstruction() {
    let full = generate(&spec(1.0, 0.0)).unwrap();
    let ones = ndarray::Array2::from_elem((128, 128), true);
    let (maps, _) = espirit_2d(full.kspace.view(), ones.view(), &EspiritParams::default()).unwrap();
    let maps4: Array4<C32> = maps.clone().insert_axis(Axis(1));
    let op_full = Sense::new(maps4.clone(), Array3::from_elem((1, 128, 128), true), false).unwrap();
    let y_full = full.kspace.clone().insert_axis(Axis(1));
    let (ref_img, _) = cg_sense(&op_full, &y_full, 0.0, 1e-6, 50, None);
    let ref_mag = ref_img.mapv(|v| v.norm());
    for accel in [2.0, 4.0] {
        let p = generate(&spec(accel, 0.0)).unwrap();
        let mask = Array3::from_shape_fn((1, 128, 128), |(_, y, _)| p.lines[y]);
        let op = Sense::new(maps4.clone(), mask, false).unwrap();
        let y = p.sampled.clone().insert_axis(Axis(1));
        let (img, it) = cg_sense(&op, &y, 0.0, 1e-5, 100, None);
        let e = nmse(ref_mag.view(), img.mapv(|v| v.norm()).view());
        eprintln!("R={accel}: NMSE {e:.2e} after {it} iterations");
        let bound = if accel == 2.0 { 1e-3 } else { 2e-2 };
        assert!(e < bound, "R={accel}: NMSE {e}");
        // Zero-filled is much worse: the solver is doing the work.
        let mut zf = y.clone();
        ifftc(zf.view_mut(), &[2, 3]);
        let zf_comb = zf.map_axis(Axis(0), |v| {
            v.iter().map(|c| c.norm_sqr()).sum::<f32>().sqrt()
        });
        let ez = nmse(ref_mag.view(), zf_comb.view());
        assert!(ez > 2.0 * e, "zero-filled NMSE {ez} vs CG {e}");
    }
}

#[test]
fn prewhitening_makes_noise_white() {
    let p = generate(&spec(1.0, 0.01)).unwrap();
    let cov = noise_covariance(&p.noise_scan);
    // Estimated covariance close to the simulated one (256 samples: ~6 % standard error).
    let scale = p.noise_cov[[0, 0]].re;
    for i in 0..8 {
        for j in 0..8 {
            let d = (cov[[i, j]] - p.noise_cov[[i, j]]).norm() / scale;
            assert!(d < 0.3, "cov[{i},{j}] off by {d}");
        }
    }
    let w = whitening_matrix(&cov, 1.0).unwrap();
    let mut noise = p
        .noise_scan
        .clone()
        .insert_axis(Axis(1))
        .insert_axis(Axis(1));
    apply(&w, &mut noise);
    let white = noise_covariance(&noise.slice(s![.., 0, 0, ..]).to_owned());
    for i in 0..8 {
        for j in 0..8 {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!(
                (white[[i, j]].re - want).abs() < 1e-3 && white[[i, j]].im.abs() < 1e-3,
                "whitened cov[{i},{j}] = {}",
                white[[i, j]]
            );
        }
    }
    // Bandwidth scaling: twice the noise dwell time → noise variance halves after scaling.
    let w2 = whitening_matrix(&cov, 0.5).unwrap();
    assert!((w2[[0, 0]].re / w[[0, 0]].re - 2f64.sqrt()).abs() < 1e-9);
}

// Protocol resolution and the work bound (issue 23).

/// A `sense.toml` in the search directory (the working directory's `protocols/` used to be
/// searched first) must not replace the built-in `sense`; other names still find their file.
#[test]
fn built_in_names_win_over_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let local =
        "name = \"sense\"\ndescription = \"a local impostor\"\n[solver]\nkind = \"zero-filled\"\n";
    std::fs::write(dir.path().join("sense.toml"), local).unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        local.replace("\"sense\"", "\"mine\""),
    )
    .unwrap();
    let (p, source) = Protocol::locate("sense", Some(dir.path())).unwrap();
    assert_eq!(source, "built-in");
    assert!(matches!(
        p.solver,
        basin_recon::protocol::Solver::CgSense { .. }
    ));
    let (p, source) = Protocol::locate("mine", Some(dir.path())).unwrap();
    assert_eq!(p.name, "mine");
    assert!(source.ends_with("mine.toml"), "{source}");
    // An explicit path to the local file is taken as written.
    let path = dir.path().join("sense.toml");
    let (p, _) = Protocol::locate(path.to_str().unwrap(), None).unwrap();
    assert_eq!(p.description, "a local impostor");
}

/// Every EBM parameter within 1..=1000 but their product past the documented bound: refused
/// before any data are read.
#[test]
fn an_ebm_protocol_past_the_work_bound_is_refused() {
    let text = |levels: usize, inner: usize| {
        format!(
            "name = \"x\"\n[solver]\nkind = \"ebm\"\nsigma_max = 0.05\nsigma_min = 0.01\nlevels = {levels}\ninner = {inner}\ncg_iterations = 5\ninit_iterations = 10\nprior_weight = 1\n"
        )
    };
    assert!(Protocol::from_toml(&text(6, 5), "t").is_ok());
    let e = Protocol::from_toml(&text(1000, 1000), "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains(&MAX_EBM_PRIOR_STEPS.to_string()), "{e}");
    assert!(Protocol::from_toml(&text(100, 10), "t").is_ok());
    assert!(Protocol::from_toml(&text(100, 11), "t").is_err());
}

/// CG-SENSE's stall fraction: 0 (off) and fractions below 0.5 are accepted, a negative, a
/// non-finite or a too-large one is refused naming the field; a protocol without it is off.
#[test]
fn a_cg_sense_stall_outside_its_range_is_refused() {
    let text =
        |stall: &str| format!("name = \"x\"\n[solver]\nkind = \"cg-sense\"\nstall = {stall}\n");
    for ok in ["0", "0.015", "0.49"] {
        assert!(Protocol::from_toml(&text(ok), "t").is_ok(), "stall = {ok}");
    }
    for bad in ["-0.01", "0.5", "2", "nan", "inf"] {
        let e = Protocol::from_toml(&text(bad), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("solver.stall"), "stall = {bad}: {e}");
    }
    let p = Protocol::from_toml("name = \"x\"\n[solver]\nkind = \"cg-sense\"\n", "t").unwrap();
    match p.solver {
        basin_recon::protocol::Solver::CgSense { stall, .. } => assert_eq!(stall, 0.0),
        other => panic!("{other:?}"),
    }
}
