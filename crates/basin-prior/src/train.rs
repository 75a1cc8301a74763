//! Training: denoising score matching over batches of augmented patches with σ drawn
//! log-uniformly from [σ_min, σ_max], Adam, checkpoints that resume bit for bit. The
//! [`Trainer`] runs on the float32 production path (rayon across the patches of a batch); the
//! float64 [`dsm_batch`] is the reference it is tested against.
//!
//! Determinism: every random draw of step t comes from its own generator seeded by (seed, t), in
//! a fixed order on one thread, and per-patch gradients are summed in patch order — so a run,
//! and a run resumed from a checkpoint, give the same losses whatever the thread count.

use crate::data::{augment, random_patch, Augment};
use crate::experts::{Experts, ExpertsWorkspace};
use crate::fast::{FastPyramid, PyramidTrainWorkspace};
use crate::model::{DsmGradient, EnergyModel};
use crate::pyramid::Pyramid;
use crate::PriorError;
use basin_core::rng::Rng;
use ndarray::{Array2, Array3};
use rayon::prelude::*;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::sync::Mutex;

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
        self.step_params(model.params_mut(), &grad.params());
    }

    /// One update of the parameters `params` with gradient `g` (same order).
    pub fn step_params(&mut self, params: Vec<&mut f64>, g: &[f64]) {
        if self.m.len() != g.len() {
            self.m = vec![0.0; g.len()];
            self.v = vec![0.0; g.len()];
            self.t = 0;
        }
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        for (i, p) in params.into_iter().enumerate() {
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

/// Everything that defines a training run.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Pyramid levels.
    pub levels: usize,
    /// First-layer channels.
    pub c1: usize,
    /// First-layer kernel width (odd).
    pub k1: usize,
    /// Second-layer channels.
    pub c2: usize,
    /// Second-layer kernel width (odd).
    pub k2: usize,
    /// Smallest training noise level.
    pub sigma_min: f64,
    /// Largest training noise level.
    pub sigma_max: f64,
    /// Number of Adam steps.
    pub steps: usize,
    /// Patches per step.
    pub batch: usize,
    /// Patch side in pixels.
    pub patch: usize,
    /// Adam step size (cosine-decayed to a tenth over the run).
    pub lr: f64,
    /// Seed of the initial weights and of every random draw.
    pub seed: u64,
    /// Augmentation ranges.
    pub augment: Augment,
}

/// A training run in progress.
pub struct Trainer {
    cfg: TrainConfig,
    model: Pyramid,
    adam: Adam,
    step: usize,
    workspaces: Vec<Mutex<Slot>>,
    field: Option<Experts>,
}

/// One thread's buffers: the network's, and the residual field's with its gradient and the
/// regression target.
struct Slot {
    net: PyramidTrainWorkspace,
    field: Option<(ExpertsWorkspace, Vec<f32>, Vec<f32>)>,
}

fn ckpt_err(m: impl ToString) -> PriorError {
    PriorError::Weights {
        tensor: "checkpoint".into(),
        message: m.to_string(),
    }
}

impl Trainer {
    /// A fresh run: weights initialised from the seed.
    pub fn new(cfg: TrainConfig) -> Self {
        let model = Pyramid::random(cfg.levels, cfg.c1, cfg.k1, cfg.c2, cfg.k2, cfg.seed);
        Trainer {
            adam: Adam::new(cfg.lr),
            model,
            step: 0,
            workspaces: Vec::new(),
            field: None,
            cfg,
        }
    }

    /// Trains the network on the residual of a fixed expert field F (fitted beforehand without
    /// the network): the target of each sample becomes n − σ∇F(x̃) instead of n, so the network
    /// learns what the field leaves of the score instead of what it already knows, and the
    /// reported loss is the DSM loss of network + field. Set it before the first step (and
    /// again, identically, on resume).
    pub fn set_residual_field(&mut self, field: Option<Experts>) {
        self.field = field;
        self.workspaces.clear();
    }

    /// The model as it stands.
    pub fn model(&self) -> &Pyramid {
        &self.model
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// Step size at step `t`: cosine decay from `lr` to `lr/10`.
    fn lr_at(&self, t: usize) -> f64 {
        let f = t as f64 / self.cfg.steps.max(1) as f64;
        self.cfg.lr * (0.1 + 0.45 * (1.0 + (std::f64::consts::PI * f.min(1.0)).cos()))
    }

    /// The patches, noise and σ of step `t`, drawn from `slices` (magnitude images in the p99
    /// convention).
    fn draw(&self, t: usize, slices: &[Array2<f32>]) -> Vec<(Array3<f32>, Vec<f32>, f32)> {
        let mut rng = Rng::new(
            self.cfg
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(t as u64 + 1),
        );
        (0..self.cfg.batch)
            .map(|_| {
                let i = ((slices.len() as f64 * rng.uniform()) as usize).min(slices.len() - 1);
                let img = augment(slices[i].view(), &self.cfg.augment, &mut rng);
                let p = random_patch(img.view(), self.cfg.patch, &mut rng);
                let sigma = sample_sigma(&mut rng, self.cfg.sigma_min, self.cfg.sigma_max) as f32;
                let n = (0..p.len()).map(|_| rng.normal() as f32).collect();
                (p, n, sigma)
            })
            .collect()
    }

    /// One Adam step on a batch drawn from `slices`; returns the batch's mean DSM loss.
    pub fn step(&mut self, slices: &[Array2<f32>]) -> f64 {
        assert!(!slices.is_empty(), "Trainer::step needs training slices");
        let batch = self.draw(self.step, slices);
        let fast = FastPyramid::new(&self.model);
        let threads = rayon::current_num_threads().max(1);
        let (ph, pw) = (batch[0].0.shape()[1], batch[0].0.shape()[2]);
        let field = self.field.as_ref();
        let new_slot = |h: usize, w: usize| Slot {
            net: fast.train_workspace(h, w),
            field: field.map(|f| {
                (
                    f.workspace(h, w),
                    vec![0.0; 2 * h * w],
                    vec![0.0; 2 * h * w],
                )
            }),
        };
        if self.workspaces.len() != threads {
            self.workspaces = (0..threads).map(|_| Mutex::new(new_slot(ph, pw))).collect();
        }
        let np = fast.num_params();
        let results: Vec<(f64, Vec<f64>)> = batch
            .par_iter()
            .map(|(p, n, sigma)| {
                let (h, w) = (p.shape()[1], p.shape()[2]);
                let slot = rayon::current_thread_index().unwrap_or(0) % self.workspaces.len();
                let mut guard = self.workspaces[slot]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let mut local;
                let ws: &mut Slot = if (h, w) == (ph, pw) {
                    &mut guard
                } else {
                    local = new_slot(h, w);
                    &mut local
                };
                let x = p.as_standard_layout();
                let mut acc = vec![0.0f64; np];
                let x = x.as_slice().unwrap_or(&[]);
                let loss = match (field, ws.field.as_mut()) {
                    (Some(f), Some((fws, g, target))) => {
                        // x̃ = x + σn exactly as the network's DSM forms it, then the target
                        // n − σ∇F(x̃).
                        for ((t, &a), &b) in target.iter_mut().zip(x).zip(n) {
                            *t = a + sigma * b;
                        }
                        g.fill(0.0);
                        f.energy_grad_add(fws, target, *sigma as f64, g, None);
                        for ((t, &gv), &nv) in target.iter_mut().zip(g.iter()).zip(n) {
                            *t = nv - sigma * gv;
                        }
                        fast.dsm_loss_and_grad_target(&mut ws.net, x, n, target, *sigma, &mut acc)
                    }
                    _ => fast.dsm_loss_and_grad(&mut ws.net, x, n, *sigma, &mut acc),
                };
                (loss, acc)
            })
            .collect();
        let scale = 1.0 / batch.len() as f64;
        let mut grad = vec![0.0f64; np];
        let mut loss = 0.0;
        for (l, g) in &results {
            loss += l * scale;
            for (a, b) in grad.iter_mut().zip(g) {
                *a += b * scale;
            }
        }
        self.adam.lr = self.lr_at(self.step);
        self.adam.step_params(self.model.params_mut(), &grad);
        self.step += 1;
        loss
    }

    /// A checkpoint: the model as float32 weights (so a checkpoint is also a loadable model),
    /// float64 parameters and Adam moments for an exact resume, the step, and `card`.
    pub fn checkpoint(&self, card: &HashMap<String, String>) -> Result<Vec<u8>, PriorError> {
        let mut meta = card.clone();
        meta.insert("step".into(), self.step.to_string());
        meta.insert("adam_t".into(), self.adam.t.to_string());
        crate::weights::to_safetensors_with(
            &self.model,
            &meta,
            vec![
                ("params".into(), self.model.params()),
                ("adam_m".into(), self.adam.m.clone()),
                ("adam_v".into(), self.adam.v.clone()),
            ],
        )
    }

    /// Resumes a run of `cfg` from checkpoint bytes written by [`Trainer::checkpoint`].
    pub fn resume(cfg: TrainConfig, bytes: &[u8]) -> Result<Self, PriorError> {
        let mut t = Trainer::new(cfg);
        let st = SafeTensors::deserialize(bytes).map_err(ckpt_err)?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(ckpt_err)?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let num = |k: &str| -> Result<usize, PriorError> {
            meta.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| ckpt_err(format!("metadata `{k}` missing or not a number")))
        };
        let np = t.model.num_params();
        let get = |name: &str| -> Result<Vec<f64>, PriorError> {
            let v = st
                .tensor(name)
                .map_err(|e| ckpt_err(format!("{name}: {e}")))?;
            if v.dtype() != Dtype::F64 || v.shape() != [np] {
                return Err(ckpt_err(format!(
                    "{name}: {:?} {:?}, expected F64 [{np}] — was it written with another model configuration?",
                    v.dtype(),
                    v.shape()
                )));
            }
            Ok(v.data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect())
        };
        for (p, v) in t.model.params_mut().into_iter().zip(get("params")?) {
            *p = v;
        }
        t.adam.m = get("adam_m")?;
        t.adam.v = get("adam_v")?;
        t.adam.t = num("adam_t")? as i32;
        t.step = num("step")?;
        Ok(t)
    }
}
