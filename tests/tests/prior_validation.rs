//! The embedded default prior on its validation anatomy (MNI152 2009a, never trained on;
//! DATA.md): one Tweedie step denoises, the typicality score separates clean slices from
//! corrupted copies, and the numbers of the model card are what this run measures. The
//! comparison with tuned TV denoising is printed (see benches/RESULTS.md for the record).

use basin_benches::prior_validation::{
    auc_rows, clean_energies, tweedie_vs_tv, validation_slices, MNI152,
};
use basin_prior::fast::FastPyramid;
use basin_prior::validate::Typicality;
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
        // One step of the learned score removes a substantial part of the noise: at least
        // 2 dB (the bar, TV + 0.5 dB, is not met yet: see RESULTS.md).
        assert!(
            r.tweedie > r.noisy + 2.0,
            "σ {}: Tweedie {:.2} dB vs noisy {:.2} dB",
            r.sigma,
            r.tweedie,
            r.noisy
        );
    }
    // The card's typical range is what the embedded weights give on these data.
    let typ = Typicality::fit(&clean_energies(&f, &validation_slices(vol.view(), 8)));
    let num = |k: &str| card.get(k).and_then(|v| v.parse::<f64>().ok()).expect(k);
    assert!((num("score_median") - typ.median).abs() <= 1e-5 * typ.median.abs().max(1.0));
    assert!((num("score_mad") - typ.mad).abs() <= 1e-5 * typ.mad.abs().max(1.0));
    let aucs = auc_rows(&f, &slices, &typ, 8);
    for (name, auc) in &aucs {
        eprintln!("ROC AUC clean vs {name}: {auc:.3}");
    }
    // Noise, aliasing and ghosting are separated (AUC ≥ 0.95); the zipper line is not yet (a
    // single line barely moves a slice's mean energy) — reported, not asserted.
    for (name, auc) in &aucs {
        if *name != "zipper" {
            assert!(*auc >= 0.95, "{name}: AUC {auc:.3}");
        }
    }
}
