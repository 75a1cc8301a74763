//! Training pieces (float64 reference): denoising score matching over a batch of patches with σ
//! drawn log-uniformly from [σ_min, σ_max], and the Adam optimiser.

use crate::model::{DsmGradient, EnergyModel};
use basin_core::rng::Rng;
use ndarray::Array3;

/// Adam (Kingma & Ba 2015) over every parameter of an [`EnergyModel`].
#[derive(Clone, Debug)]
pub struct Adam {
    /// Step size.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator floor.
    pub eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    /// Adam with the usual defaults (β₁ 0.9, β₂ 0.999, ε 1e-8) and step size `lr`.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        }
    }

    /// One update of `model` with gradient `grad` (same shapes).
    pub fn step(&mut self, model: &mut EnergyModel, grad: &DsmGradient) {
        let g = grad.params();
        if self.m.len() != g.len() {
            self.m = vec![0.0; g.len()];
            self.v = vec![0.0; g.len()];
            self.t = 0;
        }
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        for (i, p) in model.params_mut().into_iter().enumerate() {
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g[i];
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g[i] * g[i];
            let mh = self.m[i] / c1;
            let vh = self.v[i] / c2;
            *p -= self.lr * mh / (vh.sqrt() + self.eps);
        }
    }
}

/// σ drawn log-uniformly from [σ_min, σ_max].
pub fn sample_sigma(rng: &mut Rng, sigma_min: f64, sigma_max: f64) -> f64 {
    (sigma_min.ln() + rng.uniform() * (sigma_max.ln() - sigma_min.ln())).exp()
}

/// Mean DSM loss and gradient over `patches` (`[2, h, w]` each), one σ and one noise draw per
/// patch from `rng`.
pub fn dsm_batch(
    model: &EnergyModel,
    patches: &[Array3<f64>],
    sigma_min: f64,
    sigma_max: f64,
    rng: &mut Rng,
) -> (f64, DsmGradient) {
    let mut total = model.zeros_like();
    let mut loss = 0.0;
    for p in patches {
        let sigma = sample_sigma(rng, sigma_min, sigma_max);
        let n = Array3::from_shape_simple_fn(p.raw_dim(), || rng.normal());
        let (l, g) = model.dsm_loss_and_grad(p.view(), n.view(), sigma);
        loss += l;
        add_scaled(&mut total, &g, 1.0 / patches.len() as f64);
    }
    (loss / patches.len().max(1) as f64, total)
}

fn add_scaled(acc: &mut EnergyModel, g: &EnergyModel, s: f64) {
    for (a, b) in acc.params_mut().into_iter().zip(g.params()) {
        *a += s * b;
    }
}
