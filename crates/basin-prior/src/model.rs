//! The energy model (float64 reference): parameters, energy and density, the exact image
//! gradient, and the denoising-score-matching loss with its exact parameter gradient.

use crate::conv::{conv, conv_adjoint, conv_weight_grad};
use basin_core::rng::Rng;
use ndarray::{Array1, Array2, Array3, Array4, ArrayView3, Axis, Zip};

fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Parameters of the two-layer convolutional energy (see the crate documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct EnergyModel {
    /// First-layer kernels `[C₁, 2, K₁, K₁]`.
    pub w1: Array4<f64>,
    /// First-layer biases `[C₁]`.
    pub b1: Array1<f64>,
    /// First-layer log σ coefficients `[C₁]`.
    pub a1: Array1<f64>,
    /// Second-layer kernels `[C₂, C₁, K₂, K₂]`.
    pub w2: Array4<f64>,
    /// Second-layer biases `[C₂]`.
    pub b2: Array1<f64>,
    /// Output weights α `[C₂]`.
    pub alpha: Array1<f64>,
}

/// Gradient of the DSM loss with respect to every parameter (same shapes as the model).
pub type DsmGradient = EnergyModel;

/// Intermediate values of one forward pass.
struct Forward {
    z1: Array3<f64>,
    h1: Array3<f64>,
    z2: Array3<f64>,
}

impl EnergyModel {
    /// A model with `c1` first-layer channels of width `k1` and `c2` second-layer channels of
    /// width `k2`, initialised with scaled Gaussian weights (He-like) from `seed`.
    pub fn random(c1: usize, k1: usize, c2: usize, k2: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let s1 = (2.0 / (2 * k1 * k1) as f64).sqrt();
        let s2 = (2.0 / (c1 * k2 * k2) as f64).sqrt();
        EnergyModel {
            w1: Array4::from_shape_simple_fn((c1, 2, k1, k1), || rng.normal() * s1),
            b1: Array1::from_shape_simple_fn(c1, || rng.normal() * 0.1),
            a1: Array1::from_shape_simple_fn(c1, || rng.normal() * 0.1),
            w2: Array4::from_shape_simple_fn((c2, c1, k2, k2), || rng.normal() * s2),
            b2: Array1::from_shape_simple_fn(c2, || rng.normal() * 0.1),
            alpha: Array1::from_shape_simple_fn(c2, || 0.5 + rng.uniform()),
        }
    }

    /// A model of the same shapes with every parameter zero (gradient accumulator).
    pub fn zeros_like(&self) -> Self {
        EnergyModel {
            w1: Array4::zeros(self.w1.raw_dim()),
            b1: Array1::zeros(self.b1.raw_dim()),
            a1: Array1::zeros(self.a1.raw_dim()),
            w2: Array4::zeros(self.w2.raw_dim()),
            b2: Array1::zeros(self.b2.raw_dim()),
            alpha: Array1::zeros(self.alpha.raw_dim()),
        }
    }

    /// Every parameter's value in the order of [`EnergyModel::params_mut`].
    pub fn params(&self) -> Vec<f64> {
        self.w1
            .iter()
            .chain(self.b1.iter())
            .chain(self.a1.iter())
            .chain(self.w2.iter())
            .chain(self.b2.iter())
            .chain(self.alpha.iter())
            .copied()
            .collect()
    }

    /// Every parameter as one mutable list (w1, b1, a1, w2, b2, α in order), for optimisers and
    /// finite-difference checks.
    pub fn params_mut(&mut self) -> Vec<&mut f64> {
        self.w1
            .iter_mut()
            .chain(self.b1.iter_mut())
            .chain(self.a1.iter_mut())
            .chain(self.w2.iter_mut())
            .chain(self.b2.iter_mut())
            .chain(self.alpha.iter_mut())
            .collect()
    }

    fn forward(&self, x: ArrayView3<'_, f64>, sigma: f64) -> Forward {
        let ls = sigma.ln();
        let mut z1 = conv(x, self.w1.view());
        for (c, mut plane) in z1.axis_iter_mut(Axis(0)).enumerate() {
            let shift = self.b1[c] + self.a1[c] * ls;
            plane.mapv_inplace(|v| v + shift);
        }
        let h1 = z1.mapv(softplus);
        let mut z2 = conv(h1.view(), self.w2.view());
        for (k, mut plane) in z2.axis_iter_mut(Axis(0)).enumerate() {
            let b = self.b2[k];
            plane.mapv_inplace(|v| v + b);
        }
        Forward { z1, h1, z2 }
    }

    /// Per-pixel energy density e(p) `[H, W]` of image `x` `[2, H, W]` at noise level σ.
    pub fn energy_density(&self, x: ArrayView3<'_, f64>, sigma: f64) -> Array2<f64> {
        let f = self.forward(x, sigma);
        let mut e = Array2::zeros((x.shape()[1], x.shape()[2]));
        for (k, plane) in f.z2.axis_iter(Axis(0)).enumerate() {
            let a = self.alpha[k] / sigma;
            Zip::from(&mut e)
                .and(&plane)
                .for_each(|e, &z| *e += a * softplus(z));
        }
        e
    }

    /// The energy E(x; σ) = Σ_p e(p).
    pub fn energy(&self, x: ArrayView3<'_, f64>, sigma: f64) -> f64 {
        self.energy_density(x, sigma).sum()
    }

    /// The exact image gradient ∇ₓE `[2, H, W]`.
    pub fn grad_x(&self, x: ArrayView3<'_, f64>, sigma: f64) -> Array3<f64> {
        let f = self.forward(x, sigma);
        self.backward_x(&f, sigma)
    }

    fn backward_x(&self, f: &Forward, sigma: f64) -> Array3<f64> {
        let mut d2 = f.z2.clone();
        for (k, mut plane) in d2.axis_iter_mut(Axis(0)).enumerate() {
            let a = self.alpha[k] / sigma;
            plane.mapv_inplace(|z| a * sigmoid(z));
        }
        let mut dz1 = conv_adjoint(d2.view(), self.w2.view());
        Zip::from(&mut dz1)
            .and(&f.z1)
            .for_each(|d, &z| *d *= sigmoid(z));
        conv_adjoint(dz1.view(), self.w1.view())
    }

    /// Denoising score matching on one clean image `x` with one noise draw `n` (both
    /// `[2, H, W]`) at level σ: x̃ = x + σn, loss L = ‖σ∇ₓE(x̃) − n‖² / N (the λ(σ) = σ²
    /// weighting of ‖−∇ₓE − (−n/σ)‖², averaged over the N values). Returns L and ∂L/∂θ.
    pub fn dsm_loss_and_grad(
        &self,
        x: ArrayView3<'_, f64>,
        n: ArrayView3<'_, f64>,
        sigma: f64,
    ) -> (f64, DsmGradient) {
        let xt = &x + &(&n * sigma);
        let g = self.grad_x(xt.view(), sigma);
        let count = g.len() as f64;
        let r = &g * sigma - n;
        let loss = r.iter().map(|v| v * v).sum::<f64>() / count;
        // ∂L/∂θ = vᵀ ∂(∇ₓE)/∂θ with v = 2σ r / N.
        let v = r.mapv(|t| 2.0 * sigma * t / count);
        (
            loss,
            self.grad_params_of_directional(xt.view(), v.view(), sigma),
        )
    }

    /// ∂/∂θ ⟨∇ₓE(x̃; σ), v⟩ for a fixed direction `v` — the parameter gradient of any loss
    /// of ∇ₓE whose derivative with respect to ∇ₓE is `v`. It needs the second derivatives
    /// of the activations: a tangent pass along v, then reverse mode through both the primal
    /// and the tangent values.
    pub fn grad_params_of_directional(
        &self,
        xt: ArrayView3<'_, f64>,
        v: ArrayView3<'_, f64>,
        sigma: f64,
    ) -> DsmGradient {
        let f = self.forward(xt, sigma);
        let zd1 = conv(v, self.w1.view()); // ż₁
        let s1 = f.z1.mapv(sigmoid);
        let hd1 = &s1 * &zd1; // ḣ₁ = softplus'(z₁)·ż₁ = s(z₁)·ż₁
        let zd2 = conv(hd1.view(), self.w2.view()); // ż₂
        let mut grad = self.zeros_like();
        let mut g_z2 = Array3::zeros(f.z2.raw_dim()); // ∂D/∂z₂
        let mut g_zd2 = Array3::zeros(f.z2.raw_dim()); // ∂D/∂ż₂
        for k in 0..self.alpha.len() {
            let a = self.alpha[k] / sigma;
            let mut ga = 0.0;
            Zip::from(g_z2.index_axis_mut(Axis(0), k))
                .and(g_zd2.index_axis_mut(Axis(0), k))
                .and(f.z2.index_axis(Axis(0), k))
                .and(zd2.index_axis(Axis(0), k))
                .for_each(|gz, gzd, &z, &zd| {
                    let s = sigmoid(z);
                    *gz = a * s * (1.0 - s) * zd;
                    *gzd = a * s;
                    ga += s * zd / sigma;
                });
            grad.alpha[k] = ga;
            grad.b2[k] = g_z2.index_axis(Axis(0), k).sum();
        }
        conv_weight_grad(g_z2.view(), f.h1.view(), &mut grad.w2);
        conv_weight_grad(g_zd2.view(), hd1.view(), &mut grad.w2);
        let g_h1 = conv_adjoint(g_z2.view(), self.w2.view()); // ∂D/∂h₁
        let g_hd1 = conv_adjoint(g_zd2.view(), self.w2.view()); // ∂D/∂ḣ₁
                                                                // ∂D/∂z₁ = ∂D/∂h₁·s(z₁) + ∂D/∂ḣ₁·s'(z₁)·ż₁ ;  ∂D/∂ż₁ = ∂D/∂ḣ₁·s(z₁)
        let mut g_z1 = Array3::zeros(f.z1.raw_dim());
        Zip::from(&mut g_z1)
            .and(&g_h1)
            .and(&g_hd1)
            .and(&s1)
            .and(&zd1)
            .for_each(|o, &gh, &ghd, &s, &zd| {
                *o = gh * s + ghd * s * (1.0 - s) * zd;
            });
        let g_zd1 = &g_hd1 * &s1;
        conv_weight_grad(g_z1.view(), xt, &mut grad.w1);
        conv_weight_grad(g_zd1.view(), v, &mut grad.w1);
        let ls = sigma.ln();
        for c in 0..self.b1.len() {
            let s = g_z1.index_axis(Axis(0), c).sum();
            grad.b1[c] = s;
            grad.a1[c] = s * ls;
        }
        grad
    }
}
