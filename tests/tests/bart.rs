//! basin against BART (Debian's `bart` 0.8.00) on the same data: ESPIRiT maps against
//! `bart ecalib -m1`, and CG-SENSE against `bart pics -l2 -r 0` with the same maps.

use basin_core::linop::Sense;
use basin_core::metrics::nmse;
use basin_core::C32;
use basin_phantom::{generate, Kind, MaskKind, PhantomSpec};
use basin_recon::coils::{espirit_2d, EspiritParams};
use basin_recon::solvers::cg_sense;
use basin_tests::{read_cfl, tool, write_cfl};
use ndarray::{Array2, Array3, Axis};

fn similarity_median(a: &Array3<C32>, b: &Array3<C32>, inside: &Array2<bool>) -> f64 {
    let mut v: Vec<f64> = inside
        .indexed_iter()
        .filter(|(_, &m)| m)
        .map(|((y, x), _)| {
            let (mut ip, mut na, mut nb) = (num_complex::Complex64::new(0.0, 0.0), 0.0, 0.0);
            for c in 0..a.shape()[0] {
                let (u, w) = (a[[c, y, x]], b[[c, y, x]]);
                ip +=
                    num_complex::Complex64::new((u.conj() * w).re as f64, (u.conj() * w).im as f64);
                na += u.norm_sqr() as f64;
                nb += w.norm_sqr() as f64;
            }
            ip.norm() / (na * nb).sqrt().max(1e-30)
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[test]
fn espirit_agrees_with_bart_ecalib() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("k");
    let m = dir.path().join("m");
    tool(
        "bart",
        &["phantom", "-x", "128", "-s", "8", "-k", k.to_str().unwrap()],
    );
    tool(
        "bart",
        &["ecalib", "-m1", k.to_str().unwrap(), m.to_str().unwrap()],
    );
    let (kd, kdata) = read_cfl(&k).expect("read k");
    assert_eq!(&kd[..4], &[128, 128, 1, 8]);
    // BART's dims are [x, y, z, coil] with x fastest: the same memory as our C-order [c, z, y, x].
    let ks = Array3::from_shape_vec((8, 128, 128), kdata).unwrap();
    let (md, mdata) = read_cfl(&m).expect("read maps");
    assert_eq!(&md[..4], &[128, 128, 1, 8]);
    let bart_maps = Array3::from_shape_vec((8, 128, 128), mdata).unwrap();
    let mask = Array2::from_elem((128, 128), true);
    let (maps, _) = espirit_2d(ks.view(), mask.view(), &EspiritParams::default()).unwrap();
    // Inside the object: the coil-combined image above 10 % of its maximum.
    let mut img = ks.clone();
    basin_core::fft::ifftc(img.view_mut(), &[1, 2]);
    let rss = img.map_axis(Axis(0), |v| {
        v.iter().map(|c| c.norm_sqr()).sum::<f32>().sqrt()
    });
    let max = rss.iter().fold(0.0f32, |a, &b| a.max(b));
    let inside = rss.mapv(|v| v > 0.1 * max);
    let sim = similarity_median(&maps, &bart_maps, &inside);
    eprintln!("ESPIRiT vs BART ecalib: median similarity {sim:.5}");
    assert!(sim > 0.98, "median similarity {sim}");
}

#[test]
fn cg_sense_is_within_10_percent_of_bart_pics() {
    let dir = tempfile::tempdir().unwrap();
    let n = 128;
    let full = generate(&PhantomSpec {
        kind: Kind::Brain,
        matrix: n,
        coils: 8,
        accel: 1.0,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        noise: 0.0,
        seed: 1,
    })
    .unwrap();
    let truth = full.truth.clone().insert_axis(Axis(0));
    for accel in [2.0, 4.0] {
        let p = generate(&PhantomSpec {
            kind: Kind::Brain,
            matrix: n,
            coils: 8,
            accel,
            center_fraction: 0.08,
            mask: MaskKind::Equispaced,
            noise: 0.001,
            seed: 1,
        })
        .unwrap();
        let calib_mask = Array2::from_shape_fn((n, n), |(y, _)| p.lines[y]);
        let (maps, _) = espirit_2d(
            p.sampled.view(),
            calib_mask.view(),
            &EspiritParams::default(),
        )
        .unwrap();
        let kb = dir.path().join(format!("k{accel}"));
        let mb = dir.path().join(format!("m{accel}"));
        let ob = dir.path().join(format!("o{accel}"));
        write_cfl(&kb, &[n, n, 1, 8], p.sampled.as_slice().unwrap()).expect("write k");
        write_cfl(&mb, &[n, n, 1, 8], maps.as_slice().unwrap()).expect("write maps");
        tool(
            "bart",
            &[
                "pics",
                "-l2",
                "-r",
                "0",
                "-i",
                "30",
                kb.to_str().unwrap(),
                mb.to_str().unwrap(),
                ob.to_str().unwrap(),
            ],
        );
        let (_, od) = read_cfl(&ob).expect("read BART output");
        let bart = Array3::from_shape_vec((1, n, n), od)
            .unwrap()
            .mapv(|v| v.norm());
        let mask = Array3::from_shape_fn((1, n, n), |(_, y, _)| p.lines[y]);
        let op = Sense::new(maps.insert_axis(Axis(1)), mask, false).unwrap();
        let (img, _) = cg_sense(
            &op,
            &p.sampled.clone().insert_axis(Axis(1)),
            0.0,
            0.0,
            30,
            None,
        );
        let ours = img.mapv(|v| v.norm());
        // Least-squares scale to the truth (BART rescales its input), then NMSE.
        let scaled = |x: &Array3<f32>| {
            let s = x
                .iter()
                .zip(truth.iter())
                .map(|(a, b)| (a * b) as f64)
                .sum::<f64>()
                / x.iter().map(|a| (a * a) as f64).sum::<f64>();
            x.mapv(|v| v * s as f32)
        };
        let e_ours = nmse(truth.view(), scaled(&ours).view());
        let e_bart = nmse(truth.view(), scaled(&bart).view());
        eprintln!("R={accel}: NMSE basin {e_ours:.5}, BART {e_bart:.5}");
        assert!(
            e_ours <= 1.1 * e_bart,
            "R={accel}: basin {e_ours} vs BART {e_bart}"
        );
    }
}
