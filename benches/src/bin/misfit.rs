//! Issue 19's data-aware score: does `basin score --kspace` (basin_recon::consistency) flag a
//! reconstruction that departs locally from its raw data, and leave clean ones alone?
//!
//! Realistic acquisitions (`basin phantom --from`: 8 birdcage coils, a receive-array noise
//! covariance with a noise scan, SNR 50, 4 lesions of ±20 % per slice) at 4× (equispaced, 8 %
//! ACS) and 8× (random, 4 % ACS), reconstructed by the default EBM, CG-SENSE and TV. Each
//! reconstruction is judged clean, with a 4-px disk brightened by 20 % inserted 12 rows below a
//! lesion (on tissue), and with each lesion's contrast halved ("erased 50 %"). The flag
//! threshold ([`MISFIT_OUTLIER`]) was set on the calibration anatomy (Colin27, a training
//! subject); the rates that count are on the validation anatomy (MNI152 and S1).
//!
//! Usage: `bash benches/fetch-s1.sh && cargo run --release -p basin-benches --bin misfit`.

use basin_benches::cases::{mni_slices, realistic_acquisition, s1_slices};
use basin_benches::prior_validation::MNI152;
use basin_recon::consistency::{DataCheck, MISFIT_OUTLIER};
use basin_recon::{reconstruct, Protocol};
use ndarray::{Array2, Array3, Axis};
use std::path::Path;

const COLIN27: &str = "/usr/share/mricron/templates/ch2.nii.gz";
const PROTOCOLS: [&str; 3] = ["brain-2d-ebm", "sense", "cs-tv"];

/// Outlier values (worst |misfit| over the slice's typical misfit) of one group of cases.
#[derive(Default)]
struct Group {
    clean: Vec<f64>,
    /// Residual over the noise and misfit spread of the clean reconstructions.
    fit: Vec<(f64, f64)>,
    inserted: Vec<f64>,
    erased: Vec<f64>,
}

fn disk(m: &mut Array3<f32>, cy: f64, cx: f64, r: f64, factor: f32) {
    for ((_, y, x), v) in m.indexed_iter_mut() {
        if (y as f64 - cy).hypot(x as f64 - cx) <= r {
            *v *= factor;
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let colin_z = [50usize, 60, 70, 80, 90, 100, 110];
    let mni_z = [60usize, 72, 84, 96, 108];
    let s1_y = [80usize, 90, 100, 110, 120];
    let mut sets: Vec<(&str, String, Array2<f32>)> = Vec::new();
    for (z, s) in colin_z
        .iter()
        .zip(mni_slices(Path::new(COLIN27), &colin_z).expect("Colin27 (mricron-data)"))
    {
        sets.push(("calibration (Colin27)", format!("Colin27 z{z}"), s));
    }
    for (z, s) in mni_z
        .iter()
        .zip(mni_slices(&root.join(MNI152), &mni_z).expect("MNI152 (.ci/install-deps)"))
    {
        sets.push(("validation (MNI152, S1)", format!("MNI152 z{z}"), s));
    }
    let s1 = s1_slices(&root.join("target/data/S1_raw.nii.gz"), &s1_y)
        .unwrap_or_else(|e| panic!("{e} (bash benches/fetch-s1.sh)"));
    for (y, s) in s1_y.iter().zip(s1) {
        sets.push(("validation (MNI152, S1)", format!("S1 y{y}"), s));
    }
    let mut groups: Vec<((String, f64, &str), Group)> = Vec::new();
    for accel in [4.0, 8.0] {
        for (i, (set, name, slice)) in sets.iter().enumerate() {
            let (sim, k) = realistic_acquisition(slice, accel, 4, 300 + i as u64);
            let check = DataCheck::new(&k).expect("data check");
            let truth = sim.truth.index_axis(Axis(0), 0);
            let tmax = truth.iter().fold(0.0f32, |m, &v| m.max(v));
            let lesions = &sim.lesions[0];
            // The insertion site: 12 rows below a lesion, on tissue.
            let site = lesions.iter().map(|l| (l.y + 12.0, l.x)).find(|&(y, x)| {
                let (y, x) = (y.round() as usize, x.round() as usize);
                y < truth.dim().0 && truth[[y, x.min(truth.dim().1 - 1)]] > 0.3 * tmax
            });
            for proto in PROTOCOLS {
                let r =
                    reconstruct(&Protocol::resolve(proto, None).unwrap(), &k).expect("reconstruct");
                let mag: Array3<f32> = r.slices[0].image.mapv(|c| c.norm());
                let judge = |m: &Array3<f32>| check.misfit(m.view()).expect("misfit").outlier(0);
                let key = (set.to_string(), accel, proto);
                let gi = match groups.iter().position(|g| g.0 == key) {
                    Some(p) => p,
                    None => {
                        groups.push((key, Group::default()));
                        groups.len() - 1
                    }
                };
                let m = check.misfit(mag.view()).expect("misfit");
                let clean = m.outlier(0);
                let fit = (m.residual_over_noise[0], m.spread[0]);
                groups[gi].1.fit.push(fit);
                let mut line = format!(
                    "{accel}× {name} {proto}: residual/noise {:.2}, spread {:.2}, clean {clean:.1}",
                    fit.0, fit.1
                );
                groups[gi].1.clean.push(clean);
                if let Some((cy, cx)) = site {
                    let mut e = mag.clone();
                    disk(&mut e, cy, cx, 2.0, 1.2);
                    let v = judge(&e);
                    line += &format!(", inserted {v:.1}");
                    groups[gi].1.inserted.push(v);
                }
                for l in lesions {
                    let mut e = mag.clone();
                    disk(
                        &mut e,
                        l.y,
                        l.x,
                        l.r,
                        (1.0 + 0.5 * (l.factor - 1.0)) / l.factor,
                    );
                    let v = judge(&e);
                    line += &format!(", erased r{} {v:.1}", l.r);
                    groups[gi].1.erased.push(v);
                }
                eprintln!("{line}");
            }
        }
    }
    println!(
        "Outlier = worst |misfit| / max(typical misfit, 1); flagged above {MISFIT_OUTLIER}.\n"
    );
    println!("| anatomy | accel | reconstruction | clean: residual/noise, misfit spread (medians) | clean flagged | clean outlier (median, max) | inserted 4-px disk flagged | lesion erased 50 % flagged |");
    println!("|---|---|---|---|---|---|---|---|");
    let rate = |v: &[f64]| {
        let n = v.iter().filter(|&&x| x > MISFIT_OUTLIER).count();
        format!("{n}/{}", v.len())
    };
    for ((set, accel, proto), g) in &groups {
        let mut c = g.clean.clone();
        c.sort_by(f64::total_cmp);
        let med = c.get(c.len() / 2).copied().unwrap_or(f64::NAN);
        let max = c.last().copied().unwrap_or(f64::NAN);
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        let r = median(g.fit.iter().map(|f| f.0).collect());
        let sp = median(g.fit.iter().map(|f| f.1).collect());
        println!(
            "| {set} | {accel}× | {proto} | {r:.2}, {sp:.2} | {} | {med:.1}, {max:.1} | {} | {} |",
            rate(&g.clean),
            rate(&g.inserted),
            rate(&g.erased)
        );
    }
}
