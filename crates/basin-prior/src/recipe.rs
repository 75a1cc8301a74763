//! The training recipe (TOML) of `basin train`: model shape, σ range, optimisation, data
//! sources, augmentations and the expert field — parsed and checked here, so that every driver
//! (the CLI, a batch trainer, tests) reads the same schema and refuses the same bad recipes.

use crate::data::Augment;
use crate::experts::FitConfig;
use crate::train::TrainConfig;
use crate::PriorError;
use serde::Deserialize;
use std::path::PathBuf;

/// The contrasts `[data] contrasts` may name (the sequence presets of `basin phantom
/// --contrast`; the synthesis itself lives in basin-phantom, which the driver calls).
pub const CONTRASTS: [&str; 5] = ["t2", "pd", "flair", "t1", "t2star"];

/// A whole recipe (the shipped one is `crates/basin-prior/model/default.toml`).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// `[model]`.
    pub model: ModelSec,
    /// `[noise]`.
    pub noise: NoiseSec,
    /// `[training]`.
    pub training: TrainingSec,
    /// `[data]`.
    pub data: DataSec,
    /// `[augment]`.
    pub augment: Augment,
    /// `[experts]`: the expert field fitted on the finished network (optional).
    pub experts: Option<ExpertsSec>,
}

/// `[experts]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ExpertsSec {
    /// Noise levels of the fit.
    pub n_sigma: usize,
    /// Images for the mixtures' EM.
    pub em_images: usize,
    /// Samples per image for EM.
    pub em_samples: usize,
    /// Images for the weights' fit.
    pub fit_images: usize,
    /// Fit on top of the network (else the field alone).
    pub with_network: bool,
    /// Seed of the fit.
    pub seed: u64,
    /// The expert field's own training anatomy (default: the [data] sources); the slices are
    /// chosen by [data] min_tissue.
    #[serde(default)]
    pub sources: Option<Vec<PathBuf>>,
}

/// `[model]`: pyramid levels, channels and kernel widths of the two layers.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ModelSec {
    /// Pyramid levels.
    pub levels: usize,
    /// First layer's channels.
    pub c1: usize,
    /// First layer's kernel width (odd).
    pub k1: usize,
    /// Second layer's channels.
    pub c2: usize,
    /// Second layer's kernel width (odd).
    pub k2: usize,
}

/// `[noise]`: the σ range of denoising score matching.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct NoiseSec {
    /// Smallest σ.
    pub sigma_min: f64,
    /// Largest σ.
    pub sigma_max: f64,
}

/// `[training]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TrainingSec {
    /// Steps.
    pub steps: usize,
    /// Patches per step.
    pub batch: usize,
    /// Patch width.
    pub patch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Seed.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Train the network on what an expert field leaves of the score: the recipe's [experts]
    /// fitted first without the network on the [data] sources, the network's DSM target then
    /// n − σ∇F(x̃) (see `Trainer::set_residual_field`).
    #[serde(default)]
    pub residual_of_experts: bool,
}

/// `[data]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct DataSec {
    /// NIfTI volumes the slices come from.
    pub sources: Vec<PathBuf>,
    /// Smallest fraction of tissue a slice needs.
    pub min_tissue: f64,
    /// Other contrasts synthesised with MR physics from each source (a T1-weighted head), as
    /// `basin phantom --contrast` names them (t2, pd, flair, t1, t2star), trained on beside the
    /// real image; the expert field sees them too (`../shared/DATA.md`: no registry ships a
    /// single-subject T2, PD or FLAIR brain). Empty: the real images only.
    #[serde(default)]
    pub contrasts: Vec<String>,
}

impl Recipe {
    /// Parses and checks a recipe's TOML text.
    pub fn from_toml(text: &str) -> Result<Recipe, PriorError> {
        let r: Recipe =
            toml::from_str(text).map_err(|e| PriorError::Recipe(format!("invalid recipe: {e}")))?;
        r.check()?;
        Ok(r)
    }

    fn check(&self) -> Result<(), PriorError> {
        let bad = |m: &str| Err(PriorError::Recipe(m.to_string()));
        let m = &self.model;
        if m.levels == 0
            || m.c1 == 0
            || m.c2 == 0
            || m.k1.is_multiple_of(2)
            || m.k2.is_multiple_of(2)
        {
            return bad("[model] needs levels ≥ 1, channels ≥ 1 and odd kernel widths");
        }
        let n = &self.noise;
        if !(n.sigma_min > 0.0 && n.sigma_max >= n.sigma_min && n.sigma_max.is_finite()) {
            return bad("[noise] needs 0 < sigma_min ≤ sigma_max");
        }
        let t = &self.training;
        if t.steps == 0
            || t.batch == 0
            || t.patch < 8
            || t.lr.is_nan()
            || t.lr <= 0.0
            || t.checkpoint_every == 0
        {
            return bad(
                "[training] needs steps, batch, checkpoint_every ≥ 1, patch ≥ 8 and lr > 0",
            );
        }
        if let Some(e) = &self.experts {
            if e.n_sigma == 0 || e.em_images == 0 || e.em_samples == 0 || e.fit_images == 0 {
                return bad("[experts] needs n_sigma, em_images, em_samples and fit_images ≥ 1");
            }
        }
        if self.data.sources.is_empty() {
            return bad("[data] sources is empty");
        }
        if let Some(c) = self
            .data
            .contrasts
            .iter()
            .find(|c| !CONTRASTS.contains(&c.as_str()))
        {
            return bad(&format!(
                "[data] contrasts: {c:?} is not one of {}",
                CONTRASTS.join(", ")
            ));
        }
        if self.training.residual_of_experts && self.experts.is_none() {
            return bad("[training] residual_of_experts needs an [experts] section (the field the network completes)");
        }
        Ok(())
    }

    /// The trainer's configuration.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            levels: self.model.levels,
            c1: self.model.c1,
            k1: self.model.k1,
            c2: self.model.c2,
            k2: self.model.k2,
            sigma_min: self.noise.sigma_min,
            sigma_max: self.noise.sigma_max,
            steps: self.training.steps,
            batch: self.training.batch,
            patch: self.training.patch,
            lr: self.training.lr,
            seed: self.training.seed,
            augment: self.augment,
        }
    }
}

impl ExpertsSec {
    /// The expert field's fit for a training run of `cfg`, on top of the network or not.
    pub fn fit_config(&self, cfg: &TrainConfig, with_network: bool) -> FitConfig {
        FitConfig {
            sigma_min: cfg.sigma_min,
            sigma_max: cfg.sigma_max,
            n_sigma: self.n_sigma,
            em_images: self.em_images,
            em_samples: self.em_samples,
            fit_images: self.fit_images,
            with_network,
            seed: self.seed,
            augment: cfg.augment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../model/default.toml");

    #[test]
    fn the_shipped_recipe_parses_into_the_trainers_configuration() {
        let r = Recipe::from_toml(SHIPPED).unwrap();
        let c = r.train_config();
        assert_eq!(
            (c.levels, c.c1, c.k1, c.c2, c.k2),
            (
                r.model.levels,
                r.model.c1,
                r.model.k1,
                r.model.c2,
                r.model.k2
            )
        );
        assert_eq!(c.steps, r.training.steps);
        assert_eq!(c.augment.rotate_deg, r.augment.rotate_deg);
        assert!(c.sigma_min > 0.0 && c.sigma_max >= c.sigma_min);
    }

    #[test]
    fn bad_recipes_are_refused_naming_the_section() {
        let cases = [
            ("k1 = ", "k1 = 4 #", "[model]"),
            ("sigma_min = ", "sigma_min = -1 #", "[noise]"),
            ("lr = ", "lr = 0 #", "[training]"),
            ("sources = ", "sources = [] #", "[data] sources is empty"),
            (
                "contrasts = ",
                "contrasts = [\"t3\"] #",
                "[data] contrasts: \"t3\"",
            ),
        ];
        for (key, replacement, expect) in cases {
            let text = SHIPPED.replacen(key, replacement, 1);
            assert_ne!(text, SHIPPED, "{key} not in the shipped recipe");
            let e = Recipe::from_toml(&text).unwrap_err().to_string();
            assert!(e.contains(expect), "{key}: {e}");
        }
        let e = Recipe::from_toml(&format!("{SHIPPED}\n[extra]\nx = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid recipe") && e.contains("extra"), "{e}");
    }
}
