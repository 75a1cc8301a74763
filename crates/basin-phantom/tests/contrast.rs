//! Contrast synthesis from a T1-weighted head (`basin_phantom::contrast`): the signal equations
//! against their closed-form landmarks (CSF nulled at TI = T1 ln 2, proton density at TE = 0 and
//! long TR, the Ernst angle), the tissue classes of a layered synthetic head (the position prior
//! tells CSF from bone, which a T1 image alone does not), the contrasts that follow on it and on
//! Colin27's real T1, and seeding.

use basin_phantom::contrast::{
    classify, synthesize, synthesize_from, ContrastSpec, Sequence, Tissue, CLASSES, TISSUES_3T,
};
use ndarray::{Array3, Zip};
use rand::{Rng as _, SeedableRng};

fn tissue(name: &str) -> Tissue {
    *TISSUES_3T.iter().find(|t| t.name == name).unwrap()
}

#[test]
fn signal_equations_meet_their_closed_forms() {
    let csf = tissue("csf");
    // Inversion recovery with a very long TR nulls a tissue at TI = T1 ln 2.
    let ir = Sequence::InversionRecovery {
        tr: 1e9,
        ti: csf.t1 * std::f64::consts::LN_2,
        te: 10.0,
    };
    assert!(ir.signal(&csf).abs() < 1e-9, "{}", ir.signal(&csf));
    // The shipped FLAIR (TR 9000, TI 2500) nulls CSF to within 3 % of its density while
    // white matter keeps more than 5× that.
    let flair = Sequence::preset("flair").unwrap();
    let (c, w) = (flair.signal(&csf), flair.signal(&tissue("white")));
    assert!(c < 0.03 && w > 5.0 * c, "CSF {c}, white {w}");
    // Spin echo at TE → 0 and TR → ∞ gives the proton density.
    let se = Sequence::SpinEcho { tr: 1e9, te: 0.0 };
    for t in TISSUES_3T.iter().filter(|t| t.pd > 0.0) {
        assert!((se.signal(t) - t.pd).abs() < 1e-9, "{}", t.name);
    }
    // Spoiled GRE: the signal peaks at the Ernst angle acos(e^(−TR/T1)).
    let wm = tissue("white");
    let tr = 20.0;
    let ernst = (-tr / wm.t1).exp().acos().to_degrees();
    let at = |a: f64| {
        Sequence::SpoiledGre {
            tr,
            te: 4.0,
            flip_deg: a,
        }
        .signal(&wm)
    };
    assert!(at(ernst) > at(ernst - 1.0) && at(ernst) > at(ernst + 1.0));
    // Weightings as radiologists know them: CSF brightest on T2, darkest on T1 GRE.
    let t2 = Sequence::preset("t2").unwrap();
    let t1 = Sequence::preset("t1").unwrap();
    assert!(t2.signal(&csf) > t2.signal(&tissue("grey")));
    assert!(t2.signal(&tissue("grey")) > t2.signal(&wm));
    assert!(t1.signal(&wm) > t1.signal(&tissue("grey")));
    assert!(t1.signal(&tissue("grey")) > t1.signal(&csf));
}

/// Layer of the synthetic head at (z, y, x): the class index of `CLASSES`.
fn layer(z: usize, y: usize, x: usize) -> usize {
    let c = 48.0;
    let r = ((z as f64 - c).powi(2) + (y as f64 - c).powi(2) + (x as f64 - c).powi(2)).sqrt();
    // A ventricle inside the white matter.
    let v = ((z as f64 - c).powi(2) + (y as f64 - c + 8.0).powi(2) / 4.0 + (x as f64 - c).powi(2))
        .sqrt();
    match r {
        _ if v < 4.0 => 1,
        r if r < 22.0 => 3,
        r if r < 28.0 => 2,
        r if r < 30.0 => 1,
        r if r < 35.0 => 4,
        r if r < 38.0 => 5,
        r if r < 42.0 => 6,
        _ => 0,
    }
}

/// A T1-weighted image of the layered head: white 0.85, grey 0.6, CSF 0.2, bone 0.12, muscle
/// 0.5, fat 0.95, air 0, with noise of SD 0.02.
fn head() -> Array3<f32> {
    let t1 = [0.0f32, 0.2, 0.6, 0.85, 0.12, 0.5, 0.95];
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    Array3::from_shape_fn((96, 96, 96), |(z, y, x)| {
        let v = t1[layer(z, y, x)];
        if v > 0.0 {
            v + 0.02 * rng.sample::<f32, _>(rand_distr::StandardNormal)
        } else {
            0.0
        }
    })
}

/// Whether every neighbour within 1 voxel has the same layer (away from partial volumes).
fn interior(z: usize, y: usize, x: usize) -> bool {
    let l = layer(z, y, x);
    (z - 1..=z + 1).all(|a| (y - 1..=y + 1).all(|b| (x - 1..=x + 1).all(|c| layer(a, b, c) == l)))
}

#[test]
fn a_layered_head_is_classified_and_csf_is_told_from_bone() {
    let img = head();
    let labels = classify(img.view()).labels();
    let mut hit = [0usize; 7];
    let mut all = [0usize; 7];
    for z in 1..95 {
        for y in 1..95 {
            for x in 1..95 {
                if interior(z, y, x) {
                    let l = layer(z, y, x);
                    all[l] += 1;
                    hit[l] += (labels[[z, y, x]] as usize == l) as usize;
                }
            }
        }
    }
    for k in 0..CLASSES.len() {
        let f = hit[k] as f64 / all[k].max(1) as f64;
        println!("{}: {:.3} of {}", CLASSES[k], f, all[k]);
        assert!(
            f >= 0.85,
            "{}: {f:.3} of {} interior voxels",
            CLASSES[k],
            all[k]
        );
    }
    // The contrasts that follow: on T2 the CSF (ventricle and the rim) is brightest and the
    // bone dark; on FLAIR the CSF is dark and the white matter is not.
    let mean = |v: &Array3<f32>, k: usize| {
        let (mut s, mut n) = (0.0f64, 0usize);
        for ((z, y, x), &val) in v.indexed_iter() {
            if (1..95).contains(&z)
                && (1..95).contains(&y)
                && (1..95).contains(&x)
                && layer(z, y, x) == k
                && interior(z, y, x)
            {
                s += val as f64;
                n += 1;
            }
        }
        s / n as f64
    };
    let spec = |name: &str| ContrastSpec {
        sequence: Sequence::preset(name).unwrap(),
        field_t: 3.0,
        bias: 0.0,
        variation: 0.0,
        seed: 1,
    };
    let t2 = synthesize(img.view(), &spec("t2"));
    let flair = synthesize(img.view(), &spec("flair"));
    let (csf, grey, white, bone) = (mean(&t2, 1), mean(&t2, 2), mean(&t2, 3), mean(&t2, 4));
    println!("T2: CSF {csf:.3}, grey {grey:.3}, white {white:.3}, bone {bone:.3}");
    assert!(csf > 1.5 * grey && grey > white && bone < 0.15 * csf);
    let (fc, fw) = (mean(&flair, 1), mean(&flair, 3));
    println!("FLAIR: CSF {fc:.3}, white {fw:.3}");
    assert!(fc < 0.2 * fw);
}

#[test]
fn colin27_gets_the_contrasts_of_its_tissues_and_the_seed_decides_the_variation() {
    let path = std::path::Path::new("/usr/share/mricron/templates/ch2.nii.gz");
    assert!(
        path.is_file(),
        ".ci/install-deps installs mricron-data (Colin27)"
    );
    let (t1w, _) = basin_export::nifti_in::read_axial(path).unwrap();
    let tissues = classify(t1w.view());
    let labels = tissues.labels();
    let count = |k: u8| labels.iter().filter(|&&l| l == k).count() as f64;
    let (grey, white) = (count(2), count(3));
    let gf = grey / (grey + white);
    println!(
        "Colin27: grey {grey}, white {white} (grey fraction {gf:.2}), CSF {}, bone {}, muscle {}, fat {}",
        count(1),
        count(4),
        count(5),
        count(6)
    );
    // The adult brain is about half grey matter by volume; the classes must not collapse.
    assert!((0.3..0.7).contains(&gf), "grey fraction {gf}");
    let spec = |name: &str, seed: u64| ContrastSpec {
        sequence: Sequence::preset(name).unwrap(),
        field_t: 3.0,
        bias: 0.1,
        variation: 0.05,
        seed,
    };
    let median = |v: &Array3<f32>, k: u8| {
        let mut s: Vec<f32> = v
            .iter()
            .zip(&labels)
            .filter(|(_, &l)| l == k)
            .map(|(&x, _)| x)
            .collect();
        let m = s.len() / 2;
        *s.select_nth_unstable_by(m, f32::total_cmp).1
    };
    let t2 = synthesize_from(&tissues, &spec("t2", 1), 1.0);
    let flair = synthesize_from(&tissues, &spec("flair", 1), 1.0);
    let (c, g, w) = (median(&t2, 1), median(&t2, 2), median(&t2, 3));
    println!("T2 medians: CSF {c:.3}, grey {g:.3}, white {w:.3}");
    assert!(c > g && g > w, "T2: CSF {c}, grey {g}, white {w}");
    let (fc, fg, fw) = (median(&flair, 1), median(&flair, 2), median(&flair, 3));
    println!("FLAIR medians: CSF {fc:.3}, grey {fg:.3}, white {fw:.3}");
    assert!(
        fc < 0.5 * fw && fg > fw,
        "FLAIR: CSF {fc}, grey {fg}, white {fw}"
    );
    // Seeded: the same seed gives the same image, another seed another variation and bias.
    let again = synthesize_from(&tissues, &spec("t2", 1), 1.0);
    assert_eq!(t2, again);
    let other = synthesize_from(&tissues, &spec("t2", 2), 1.0);
    let diff = Zip::from(&t2)
        .and(&other)
        .fold(0.0f64, |m, &a, &b| m.max((a - b).abs() as f64));
    assert!(diff > 0.01, "seeds 1 and 2 differ by at most {diff}");
}
