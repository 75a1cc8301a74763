//! Validation of an energy prior on MNI152 slices (DATA.md: never trained on): one-step Tweedie
//! denoising against total-variation denoising with its weight tuned on the same slices, and the
//! slice-level ROC AUC of the energy against corrupted copies. Shared by the `prior-validate`
//! command and the acceptance test in `tests/`.

use basin_core::rng::Rng;
use basin_prior::data::p99_scale;
use basin_prior::fast::FastPyramid;
use basin_prior::validate::{
    add_noise, complex_of, corrupt, psnr_complex, roc_auc, tweedie, Corruption, ScoreTypicality,
    Scorer, SliceScore,
};
use basin_recon::tv::tv_denoise;
use ndarray::{Array2, ArrayView3, Axis};
use rayon::prelude::*;

/// Where `.ci/install-deps` unpacks MNI152 (relative to the workspace root).
pub const MNI152: &str = "target/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz";

/// `per_axis` slices along each axis of `volume` at evenly spaced positions between 30 % and
/// 70 % of the extent, scaled by the volume's p99 convention.
pub fn validation_slices(volume: ArrayView3<'_, f32>, per_axis: usize) -> Vec<Array2<f32>> {
    let scale = p99_scale(volume.iter());
    let mut out = Vec::new();
    for axis in 0..3 {
        let n = volume.shape()[axis];
        for i in 0..per_axis {
            let f = 0.3 + 0.4 * i as f64 / (per_axis.max(2) - 1) as f64;
            let idx = ((n as f64 * f) as usize).min(n - 1);
            out.push(volume.index_axis(Axis(axis), idx).mapv(|v| v * scale));
        }
    }
    out
}

/// Mean PSNRs at one noise level.
#[derive(Clone, Debug)]
pub struct DenoiseRow {
    /// Noise level.
    pub sigma: f32,
    /// Noisy input.
    pub noisy: f64,
    /// One Tweedie step of the prior.
    pub tweedie: f64,
    /// TV denoising with the best weight of the grid.
    pub tv: f64,
    /// That weight.
    pub tv_lambda: f32,
}

/// Tweedie vs tuned TV at each σ (noise drawn from `seed`), mean PSNR over the slices.
pub fn tweedie_vs_tv(
    model: &FastPyramid,
    slices: &[Array2<f32>],
    sigmas: &[f32],
    seed: u64,
) -> Vec<DenoiseRow> {
    let mut rng = Rng::new(seed);
    sigmas
        .iter()
        .map(|&sigma| {
            let n = slices.len() as f64;
            let (mut noisy, mut tw) = (0.0, 0.0);
            let cases: Vec<_> = slices
                .iter()
                .map(|s| {
                    let x = complex_of(s.view());
                    let y = add_noise(x.view(), sigma, &mut rng);
                    (x, y)
                })
                .collect();
            for (x, y) in &cases {
                noisy += psnr_complex(y.view(), x.view()) / n;
                tw += psnr_complex(tweedie(model, y.view(), sigma).view(), x.view()) / n;
            }
            let mut best = (f64::NEG_INFINITY, 0.0f32);
            for f in [0.4f32, 0.6, 0.8, 1.0, 1.3, 1.7] {
                let lambda = f * sigma;
                // TV denoising is single-threaded: the slices in parallel, their PSNRs summed
                // in slice order (the same sum as a sequential loop).
                let per_slice: Vec<f64> = cases
                    .par_iter()
                    .map(|(x, y)| {
                        psnr_complex(tv_denoise(y.view(), lambda, 150).image.view(), x.view())
                    })
                    .collect();
                let p: f64 = per_slice.iter().sum::<f64>() / n;
                if p > best.0 {
                    best = (p, lambda);
                }
            }
            DenoiseRow {
                sigma,
                noisy,
                tweedie: tw,
                tv: best.0,
                tv_lambda: best.1,
            }
        })
        .collect()
}

/// The corruptions of the acceptance criteria with their names.
pub fn corruptions() -> Vec<(&'static str, Corruption)> {
    vec![
        ("noise σ=0.05", Corruption::Noise(0.05)),
        ("4x aliasing", Corruption::Aliasing4x),
        ("zipper", Corruption::Zipper),
        ("motion ghosting", Corruption::Ghosting),
    ]
}

/// Scores of slices (one [`Scorer`] per slice size).
pub fn slice_scores(
    model: &FastPyramid,
    slices: impl IntoIterator<Item = ndarray::Array3<f32>>,
) -> Vec<SliceScore> {
    let mut scorer: Option<((usize, usize), Scorer)> = None;
    slices
        .into_iter()
        .map(|x| {
            let (_, h, w) = x.dim();
            if scorer.as_ref().map(|s| s.0) != Some((h, w)) {
                scorer = Some(((h, w), Scorer::new(model, h, w)));
            }
            let s = &mut scorer.as_mut().expect("set above").1;
            s.score(x.view()).1
        })
        .collect()
}

/// Scores ([`Scorer::score`]) of clean slices.
pub fn clean_scores(model: &FastPyramid, slices: &[Array2<f32>]) -> Vec<SliceScore> {
    slice_scores(model, slices.iter().map(|s| complex_of(s.view())))
}

/// The statistics of every slice of a NIfTI volume, read and scaled as `basin score` reads it
/// (slices along the third axis, the volume's p99 = 1), that holds enough of the object to be
/// judged ([`basin_prior::validate::MIN_OBJECT`]).
pub fn volume_scores(
    model: &FastPyramid,
    path: &std::path::Path,
) -> Result<Vec<SliceScore>, String> {
    let img = basin_export::image_in::read_image(path, None)
        .map_err(|e| e.to_string())?
        .slices;
    let (_, judged) = basin_prior::validate::score_volume(model, None, &img, &|_| {});
    Ok(judged
        .into_iter()
        .map(|j| j.score)
        .filter(|s| s.object_fraction >= basin_prior::validate::MIN_OBJECT)
        .collect())
}

/// Typicality z-scores of clean slices and of their corrupted copies.
pub struct CorruptionZ {
    /// The statistics of each clean slice (to judge them by another rule without scoring
    /// them again).
    pub clean_scores: Vec<SliceScore>,
    /// z of each clean slice.
    pub clean: Vec<f64>,
    /// Per corruption (in the order of [`corruptions`]), its name and the z of each corrupted
    /// slice.
    pub corrupted: Vec<(&'static str, Vec<f64>)>,
}

impl CorruptionZ {
    /// ROC AUC of clean against corrupted slices for each corruption.
    pub fn aucs(&self) -> Vec<(&'static str, f64)> {
        self.corrupted
            .iter()
            .map(|(name, bad)| (*name, roc_auc(&self.clean, bad)))
            .collect()
    }
}

/// Scores clean slices and corrupted copies of them (random draws from `seed`) by their
/// typicality z against `typ`.
pub fn corruption_zs(
    model: &FastPyramid,
    slices: &[Array2<f32>],
    typ: &ScoreTypicality,
    seed: u64,
) -> CorruptionZ {
    let scores = clean_scores(model, slices);
    let clean: Vec<f64> = scores.iter().map(|s| typ.z(s)).collect();
    let mut rng = Rng::new(seed);
    let corrupted = corruptions()
        .into_iter()
        .map(|(name, c)| {
            let bad: Vec<f64> = slice_scores(
                model,
                slices
                    .iter()
                    .map(|s| corrupt(complex_of(s.view()).view(), c, &mut rng)),
            )
            .iter()
            .map(|s| typ.z(s))
            .collect();
            (name, bad)
        })
        .collect();
    CorruptionZ {
        clean_scores: scores,
        clean,
        corrupted,
    }
}
