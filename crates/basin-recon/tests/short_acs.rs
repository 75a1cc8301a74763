//! ESPIRiT from a short calibration block (issue 18): 8× random sampling with a 4 % centre on a
//! 234-line matrix leaves 9 ACS lines. With the default kernel 6 the kernel fits only 4 times
//! along the phase encode and the maps could fail (map error 20–80× that of kernel 5 on
//! validation slices); `effective_kernel` shrinks the kernel until it fits at least as many times
//! as it has taps, and the maps stay close to the true birdcage sensitivities.

use basin_core::C32;
use basin_phantom::realistic::{simulate, RealisticSpec};
use basin_phantom::{generate, Kind, MaskKind, PhantomSpec};
use basin_recon::coils::{acs_region, effective_kernel, espirit_2d, EspiritParams};
use ndarray::{Array2, Array3, Axis};

#[test]
fn the_kernel_fits_at_least_as_often_as_it_has_taps() {
    // (configured kernel, ACS lines) → kernel used.
    for (k, lines, want) in [
        (6, 24, 6),
        (6, 20, 6),
        (6, 11, 6),
        (6, 10, 5),
        (6, 9, 5),
        (6, 7, 4),
        (6, 5, 3),
        (6, 4, 3),
        (4, 24, 4),
        (2, 9, 2),
    ] {
        let got = effective_kernel(k, lines);
        assert_eq!(got, want, "kernel {k}, {lines} lines");
        if lines >= 5 {
            assert!(
                lines + 1 >= 2 * got,
                "{lines} lines hold kernel {got} fewer times than taps"
            );
        }
    }
}

/// Mean over the object of the phase-invariant map error min_φ ‖m − e^{iφ}s‖² (float64).
fn map_error(maps: &Array3<C32>, truth_maps: &Array3<C32>, inside: &Array2<bool>) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for ((y, x), &m) in inside.indexed_iter() {
        if !m {
            continue;
        }
        let (mut mm, mut ss) = (0.0f64, 0.0f64);
        let mut sm = num_complex::Complex64::new(0.0, 0.0);
        for c in 0..maps.dim().0 {
            let a = maps[[c, y, x]];
            let b = truth_maps[[c, y, x]];
            mm += a.norm_sqr() as f64;
            ss += b.norm_sqr() as f64;
            sm += num_complex::Complex64::new(a.re as f64, -a.im as f64)
                * num_complex::Complex64::new(b.re as f64, b.im as f64);
        }
        sum += mm + ss - 2.0 * sm.norm();
        n += 1;
    }
    sum / n.max(1) as f64
}

#[test]
fn espirit_from_nine_acs_lines_matches_the_true_birdcage_maps() {
    let (ny, nx) = (234, 198);
    let obj = generate(&PhantomSpec {
        kind: Kind::Brain,
        matrix: ny,
        coils: 1,
        accel: 1.0,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        noise: 0.0,
        seed: 1,
    })
    .unwrap()
    .truth;
    // The brain phantom is square; crop its readout to the MNI152-like 234 × 198 grid.
    let x0 = (ny - nx) / 2;
    let obj = obj
        .slice(ndarray::s![.., x0..x0 + nx])
        .to_owned()
        .insert_axis(Axis(0));
    let mut errors = Vec::new();
    for seed in [3, 4, 5] {
        let sim = simulate(
            &obj,
            &RealisticSpec {
                matrix: (ny, nx),
                coils: 8,
                accel: 8.0,
                center_fraction: 0.04,
                mask: MaskKind::Random,
                snr: 50.0,
                noise_cov: None,
                lesions: 0,
                noise_samples: 2048,
                seed,
            },
        )
        .unwrap();
        let mask = Array2::from_shape_fn((ny, nx), |(y, _)| sim.lines[y]);
        let (y0, y1, _, _) = acs_region(mask.view());
        assert_eq!(y1 - y0, 9, "the case is meant to have 9 ACS lines");
        let k = sim.kspace.index_axis(Axis(1), 0);
        let (maps, _) = espirit_2d(k, mask.view(), &EspiritParams::default()).unwrap();
        let truth = sim.truth.index_axis(Axis(0), 0);
        let t = truth.iter().fold(0.0f32, |m, &v| m.max(v)) * 0.1;
        let inside = truth.mapv(|v| v > t);
        let true_maps = sim.maps.index_axis(Axis(1), 0).to_owned();
        errors.push(map_error(&maps, &true_maps, &inside));
    }
    eprintln!("map errors from 9 ACS lines: {errors:?}");
    // Kernel 5 (the rule) gives ~2.1e-3 on this phantom; kernel 6 on the same 9 lines gave 0.14
    // (checked by disabling the rule), and 2e-3 … 4e-2 on validation anatomy against 3e-4 … 5e-4
    // for kernel 5 (benches/RESULTS.md, 2026-12-07).
    for e in errors {
        assert!(e < 6e-3, "map error {e}");
    }
}
