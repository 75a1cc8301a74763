//! The multi-scale energy (float64 reference): one small two-layer energy per level of an image
//! pyramid, summed. Level s sees the image mean-pooled 2ˢ × 2ˢ (`pool2` applied s times), where
//! white noise of level σ has level σ/2ˢ, so it is evaluated at σₛ = σ/2ˢ. A 5×5 + 3×3 network
//! sees 7 × 7 pixels; three levels see 28 × 28 at 1.31× the cost of one level — the cheap
//! receptive field that PRIOR-NOTES.md asked for.
//!
//! ```text
//! E(x; σ) = Σₛ E_θₛ(Dˢ x; σ/2ˢ)        ∇ₓE = Σₛ (Dˢ)ᵀ ∇E_θₛ(Dˢ x; σ/2ˢ)
//! ```
//!
//! Pooling keeps ⌊h/2⌋ × ⌊w/2⌋ pixels (a last odd row or column is not seen by coarser levels);
//! levels whose image would be empty are skipped.

use crate::model::EnergyModel;
use ndarray::{Array2, Array3, ArrayView3, Axis};

/// Mean over 2×2 blocks: `[c, h, w]` → `[c, ⌊h/2⌋, ⌊w/2⌋]`.
pub fn pool2(x: ArrayView3<'_, f64>) -> Array3<f64> {
    let (c, h, w) = x.dim();
    Array3::from_shape_fn((c, h / 2, w / 2), |(i, y, xx)| {
        0.25 * (x[[i, 2 * y, 2 * xx]]
            + x[[i, 2 * y + 1, 2 * xx]]
            + x[[i, 2 * y, 2 * xx + 1]]
            + x[[i, 2 * y + 1, 2 * xx + 1]])
    })
}

/// The adjoint of [`pool2`] onto a `[c, h, w]` image: each coarse value spread as value/4 over
/// its block.
pub fn pool2_adjoint(y: ArrayView3<'_, f64>, h: usize, w: usize) -> Array3<f64> {
    let c = y.shape()[0];
    let (hc, wc) = (y.shape()[1], y.shape()[2]);
    Array3::from_shape_fn((c, h, w), |(i, yy, xx)| {
        let (a, b) = (yy / 2, xx / 2);
        if a < hc && b < wc {
            0.25 * y[[i, a, b]]
        } else {
            0.0
        }
    })
}

/// The multi-scale energy: `levels[s]` scores the image pooled s times.
#[derive(Clone, Debug, PartialEq)]
pub struct Pyramid {
    /// One two-layer energy per level, finest first.
    pub levels: Vec<EnergyModel>,
    /// The expert field and the weights per σ (the network's energy is then weighted by β(σ));
    /// `None` while the network is trained.
    pub experts: Option<crate::experts::Experts>,
}

/// Gradient of the DSM loss with respect to every parameter of a [`Pyramid`].
pub type PyramidGradient = Pyramid;

/// The noise level seen by pyramid level `s` when the image has noise level σ.
pub fn level_sigma(sigma: f64, s: usize) -> f64 {
    sigma / (1u64 << s) as f64
}

impl Pyramid {
    /// `levels` random levels of the given layer shapes (seeds `seed`, `seed + 1`, …).
    pub fn random(levels: usize, c1: usize, k1: usize, c2: usize, k2: usize, seed: u64) -> Self {
        Pyramid {
            levels: (0..levels)
                .map(|s| EnergyModel::random(c1, k1, c2, k2, seed + s as u64))
                .collect(),
            experts: None,
        }
    }

    /// Same shapes, every parameter zero.
    pub fn zeros_like(&self) -> Self {
        Pyramid {
            levels: self.levels.iter().map(EnergyModel::zeros_like).collect(),
            experts: None,
        }
    }

    /// Every parameter, level by level in [`EnergyModel::params`] order.
    pub fn params(&self) -> Vec<f64> {
        self.levels.iter().flat_map(|l| l.params()).collect()
    }

    /// Every parameter as one mutable list, in [`Pyramid::params`] order.
    pub fn params_mut(&mut self) -> Vec<&mut f64> {
        self.levels
            .iter_mut()
            .flat_map(|l| l.params_mut())
            .collect()
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.levels.iter().map(|l| l.params().len()).sum()
    }

    /// The pooled images of every level that is not empty.
    fn images(&self, x: ArrayView3<'_, f64>) -> Vec<Array3<f64>> {
        let mut out = vec![x.to_owned()];
        while out.len() < self.levels.len() {
            let next = pool2(out[out.len() - 1].view());
            if next.shape()[1] == 0 || next.shape()[2] == 0 {
                break;
            }
            out.push(next);
        }
        out
    }

    /// The network's weight β(σ) (1 without experts).
    pub fn net_weight(&self, sigma: f64) -> f64 {
        self.experts.as_ref().map_or(1.0, |e| e.net_weight(sigma))
    }

    /// Per-pixel energy density `[H, W]`: each level's density spread back over the pixels it
    /// pooled (so the density sums to the energy), plus the experts' density.
    pub fn energy_density(&self, x: ArrayView3<'_, f64>, sigma: f64) -> Array2<f64> {
        let mut d = self.net_energy_density(x, sigma) * self.net_weight(sigma);
        if let Some(e) = &self.experts {
            d += &e.density_reference(x, sigma);
        }
        d
    }

    /// The energy E(x; σ).
    pub fn energy(&self, x: ArrayView3<'_, f64>, sigma: f64) -> f64 {
        let beta = self.net_weight(sigma);
        let net = if beta != 0.0 {
            self.net_energy(x, sigma)
        } else {
            0.0
        };
        beta * net
            + self
                .experts
                .as_ref()
                .map_or(0.0, |e| e.density_reference(x, sigma).sum())
    }

    /// The exact image gradient ∇ₓE `[2, H, W]`.
    pub fn grad_x(&self, x: ArrayView3<'_, f64>, sigma: f64) -> Array3<f64> {
        let mut g = self.net_grad_x(x, sigma) * self.net_weight(sigma);
        if let Some(e) = &self.experts {
            g += &e.grad_reference(x, sigma);
        }
        g
    }

    fn net_energy_density(&self, x: ArrayView3<'_, f64>, sigma: f64) -> Array2<f64> {
        let imgs = self.images(x);
        let mut acc: Option<Array3<f64>> = None;
        for s in (0..imgs.len()).rev() {
            let d = self.levels[s]
                .energy_density(imgs[s].view(), level_sigma(sigma, s))
                .insert_axis(Axis(0));
            acc = Some(match acc {
                None => d,
                Some(coarse) => {
                    d + pool2_adjoint(coarse.view(), imgs[s].shape()[1], imgs[s].shape()[2])
                }
            });
        }
        acc.map(|a| a.index_axis_move(Axis(0), 0))
            .unwrap_or_else(|| Array2::zeros((x.shape()[1], x.shape()[2])))
    }

    fn net_energy(&self, x: ArrayView3<'_, f64>, sigma: f64) -> f64 {
        let imgs = self.images(x);
        imgs.iter()
            .enumerate()
            .map(|(s, im)| self.levels[s].energy(im.view(), level_sigma(sigma, s)))
            .sum()
    }

    fn net_grad_x(&self, x: ArrayView3<'_, f64>, sigma: f64) -> Array3<f64> {
        let imgs = self.images(x);
        let mut acc: Option<Array3<f64>> = None;
        for s in (0..imgs.len()).rev() {
            let g = self.levels[s].grad_x(imgs[s].view(), level_sigma(sigma, s));
            acc = Some(match acc {
                None => g,
                Some(coarse) => {
                    g + pool2_adjoint(coarse.view(), imgs[s].shape()[1], imgs[s].shape()[2])
                }
            });
        }
        acc.unwrap_or_else(|| Array3::zeros(x.raw_dim()))
    }

    /// Denoising score matching as [`EnergyModel::dsm_loss_and_grad`], for the whole pyramid:
    /// L = ‖σ∇ₓE(x + σn) − n‖² / N and ∂L/∂θ for every level.
    pub fn dsm_loss_and_grad(
        &self,
        x: ArrayView3<'_, f64>,
        n: ArrayView3<'_, f64>,
        sigma: f64,
    ) -> (f64, PyramidGradient) {
        self.dsm_loss_and_grad_target(x, n, n, sigma)
    }

    /// The network's loss ‖σ∇ₓE(x + σn) − target‖² / N and its parameter gradient: the reference
    /// of [`crate::fast::FastPyramid::dsm_loss_and_grad_target`] (residual training).
    pub fn dsm_loss_and_grad_target(
        &self,
        x: ArrayView3<'_, f64>,
        n: ArrayView3<'_, f64>,
        target: ArrayView3<'_, f64>,
        sigma: f64,
    ) -> (f64, PyramidGradient) {
        let xt = &x + &(&n * sigma);
        let g = self.net_grad_x(xt.view(), sigma);
        let count = g.len() as f64;
        let r = &g * sigma - target;
        let loss = r.iter().map(|v| v * v).sum::<f64>() / count;
        let v = r.mapv(|t| 2.0 * sigma * t / count);
        // ⟨Σₛ (Dˢ)ᵀ ∇Eₛ(Dˢx̃), v⟩ = Σₛ ⟨∇Eₛ(Dˢx̃), Dˢv⟩: each level sees its pooled direction.
        let xs = self.images(xt.view());
        let vs = self.images(v.view());
        let mut grad = self.zeros_like();
        for s in 0..xs.len() {
            grad.levels[s] = self.levels[s].grad_params_of_directional(
                xs[s].view(),
                vs[s].view(),
                level_sigma(sigma, s),
            );
        }
        (loss, grad)
    }
}
