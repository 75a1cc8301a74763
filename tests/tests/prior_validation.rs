//! The embedded default prior on its validation anatomy (MNI152 2009a, never trained on;
//! DATA.md): one Tweedie step denoises, the typicality score separates clean slices from
//! corrupted copies (ROC AUC ≥ 0.95 for each corruption) and flags few clean slices, and the
//! numbers of the model card are what this run measures. The
//! comparison with tuned TV denoising is printed (see benches/RESULTS.md for the record).

use basin_benches::prior_validation::{
    clean_scores, corruption_zs, tweedie_vs_tv, validation_slices, MNI152,
};
use basin_prior::fast::FastPyramid;
use basin_prior::validate::{ScoreTypicality, Z_THRESHOLD};
use std::path::Path;

#[test]
fn default_prior_on_mni152_denoises_and_flags_corruptions() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(MNI152);
    let vol = basin_export::nifti_in::read_nifti_volume(&path)
        .unwrap_or_else(|e| panic!("{e} (.ci/install-deps fetches MNI152 from the nilearn wheel)"));
    let (model, card) = basin_prior::default_model().expect("embedded model");
    let f = FastPyramid::new(&model);
    let slices = validation_slices(vol.view(), 5);
    assert_eq!(slices.len(), 15);
    for r in tweedie_vs_tv(&f, &slices, &[0.05, 0.1], 7) {
        eprintln!(
            "σ {}: noisy {:.2} dB, Tweedie {:.2} dB, tuned TV {:.2} dB (λ {:.3})",
            r.sigma, r.noisy, r.tweedie, r.tv, r.tv_lambda
        );
        // Issue 4's bar: one Tweedie step ≥ tuned TV + 0.5 dB at both σ. The shipped energy
        // (a network trained on the expert field's residual + the field) measures +1.22 and +0.53 dB
        // (benches/RESULTS.md; the network trained alone with the field on top gave +0.76 and
        // +0.08 dB).
        let margin = 0.5;
        assert!(
            r.tweedie >= r.tv + margin,
            "σ {}: Tweedie {:.2} dB vs tuned TV {:.2} dB (+{margin} required)",
            r.sigma,
            r.tweedie,
            r.tv
        );
    }
    // The card's typical ranges are what the embedded weights give on these data.
    let typ =
        ScoreTypicality::fit_for_card(&clean_scores(&f, &validation_slices(vol.view(), 8)), &card);
    let card_typ = ScoreTypicality::from_card(&card).expect("the card's typical ranges");
    eprintln!("clean-slice scores: measured {typ:?}, card {card_typ:?}");
    // The shipped network completes the expert field, so the card judges by the network's score
    // norm, the whole prior's energy and the worst line (and keeps the network energy's range).
    let pairs = |t: &ScoreTypicality| {
        [Some(t.network), t.prior, t.score_norm, t.line]
            .into_iter()
            .map(|r| r.expect("every range in the card"))
            .flat_map(|r| [r.median, r.mad])
            .collect::<Vec<f64>>()
    };
    for (card, measured) in pairs(&card_typ).into_iter().zip(pairs(&typ)) {
        // The card keeps six decimals.
        assert!(
            (card - measured).abs() <= 1e-5 * measured.abs().max(1.0),
            "card {card} vs measured {measured}"
        );
    }
    // Issue 4's bar: AUC ≥ 0.95 for every corruption. Measured 1.000, 1.000, 1.000 and 0.973 for noise, aliasing,
    // zipper and ghosting (benches/RESULTS.md).
    let zs = corruption_zs(&f, &slices, &card_typ, 8);
    let aucs = zs.aucs();
    for (name, auc) in &aucs {
        eprintln!("ROC AUC clean vs {name}: {auc:.3}");
    }
    assert_eq!(aucs.len(), 4);
    for (name, auc) in &aucs {
        assert!(*auc >= 0.95, "{name}: AUC {auc:.3} (issue 4: ≥ 0.95)");
    }
    // The flag `basin score` raises (z > 3.5): how many clean validation slices it calls atypical
    // (false alarms, measured 1 of 15) and how many corrupted ones it catches.
    let flagged = |z: &[f64]| z.iter().filter(|&&v| v > Z_THRESHOLD).count();
    let alarms = flagged(&zs.clean);
    eprintln!("clean slices flagged: {alarms} of {}", zs.clean.len());
    assert!(
        alarms <= 1,
        "{alarms} of 15 clean validation slices flagged"
    );
    for (name, bad) in &zs.corrupted {
        let caught = flagged(bad);
        eprintln!("{name}: {caught} of {} flagged", bad.len());
        // Measured 15, 15, 15 and 11 of 15 (noise, aliasing, zipper, ghosting).
        assert!(
            caught * 2 > bad.len(),
            "{name}: only {caught} of {} flagged",
            bad.len()
        );
    }
}
