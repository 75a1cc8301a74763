#![warn(missing_docs)]
//! basin-prior: the learned anatomical energy E_θ(x; σ) — so far its float64 reference
//! implementation: the architecture, the energy and its per-pixel density, the exact image
//! gradient ∇ₓE, and the denoising-score-matching loss with its exact parameter gradient (the
//! "double backward" that needs second derivatives of the activations). The f32 production
//! path, training loop, weights and the shipped model build on this and are checked against it.
//!
//! Architecture (two learned convolutional layers, smooth activations, σ-conditioned):
//!
//! ```text
//! z₁ = W₁ ∗ x + b₁ + a₁·log σ        x: [2, H, W] (real, imaginary), W₁: [C₁, 2, K₁, K₁]
//! h₁ = softplus(z₁)
//! z₂ = W₂ ∗ h₁ + b₂                  W₂: [C₂, C₁, K₂, K₂]
//! e(p) = (1/σ) Σ_k α_k softplus(z₂,k(p))     energy density; E = Σ_p e(p)
//! ```
//!
//! Convolutions are "same" size with zero padding (cross-correlation, as in deep-learning
//! frameworks).

pub mod conv;
pub mod data;
pub mod experts;
pub mod fast;
pub mod model;
pub mod pyramid;
pub mod recipe;
pub mod train;
pub mod validate;
pub mod weights;

pub use model::{DsmGradient, EnergyModel};
pub use pyramid::{Pyramid, PyramidGradient};

/// The default model's weights and card (`model/default.safetensors`, trained by
/// `basin train --config model/default.toml`), embedded in every binary.
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../model/default.safetensors");

/// SHA-256 (hex) of the embedded default model: what a cached result made with the prior (a
/// `basin compare` cell, a `basin batch` record) names, so that a build with other weights
/// recomputes it instead of reusing it.
pub fn default_model_sha256() -> &'static str {
    use sha2::{Digest, Sha256};
    static SHA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SHA.get_or_init(|| format!("{:x}", Sha256::digest(DEFAULT_MODEL)))
}

/// The embedded default model and its card.
pub fn default_model() -> Result<(Pyramid, std::collections::HashMap<String, String>), PriorError> {
    weights::from_safetensors(DEFAULT_MODEL)
}

/// Errors of basin-prior.
#[derive(Debug, thiserror::Error)]
pub enum PriorError {
    /// Weights that cannot be read or do not fit the architecture.
    #[error("weights: tensor {tensor}: {message}")]
    Weights {
        /// Tensor name (or "header").
        tensor: String,
        /// What is wrong.
        message: String,
    },
    /// A training recipe that cannot be used (the message names the section).
    #[error("{0}")]
    Recipe(String),
}
