//! What the prior is judged by, on slices that the caller reads (MNI152 per DATA.md, never
//! trained on): one-step Tweedie denoising, the per-slice energy score of `basin score`, the
//! corruptions a verification layer must notice (noise, 4× aliasing, a zipper line, motion
//! ghosting), and the slice-level ROC AUC that measures how well the energy separates them.

use crate::fast::FastPyramid;
use basin_core::fft::{fftc, ifftc};
use basin_core::rng::Rng;
use basin_core::C32;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

/// The noise level at which `basin score` evaluates energies (the finest σ the default prior
/// was trained near).
pub const SCORE_SIGMA: f32 = 0.02;

/// A magnitude slice as a complex image `[2, h, w]` with zero imaginary part.
pub fn complex_of(mag: ArrayView2<'_, f32>) -> Array3<f32> {
    let (h, w) = mag.dim();
    Array3::from_shape_fn(
        (2, h, w),
        |(c, y, x)| if c == 0 { mag[[y, x]] } else { 0.0 },
    )
}

/// PSNR in dB of a complex image `[2, h, w]` against a reference, peak = the reference's largest
/// magnitude, MSE over the complex values.
pub fn psnr_complex(x: ArrayView3<'_, f32>, reference: ArrayView3<'_, f32>) -> f64 {
    let (_, h, w) = reference.dim();
    let mut peak = 0.0f64;
    let mut se = 0.0f64;
    for y in 0..h {
        for xx in 0..w {
            let (a, b) = (reference[[0, y, xx]] as f64, reference[[1, y, xx]] as f64);
            peak = peak.max(a * a + b * b);
            se += (x[[0, y, xx]] as f64 - a).powi(2) + (x[[1, y, xx]] as f64 - b).powi(2);
        }
    }
    10.0 * (peak / (se / (h * w) as f64).max(f64::MIN_POSITIVE)).log10()
}

/// Adds complex Gaussian noise of level σ (σ per real channel).
pub fn add_noise(x: ArrayView3<'_, f32>, sigma: f32, rng: &mut Rng) -> Array3<f32> {
    x.mapv(|v| v + sigma * rng.normal() as f32)
}

/// One Tweedie step x̂ = x̃ − σ²∇ₓE(x̃; σ): the posterior mean estimate under the prior.
pub fn tweedie(model: &FastPyramid, noisy: ArrayView3<'_, f32>, sigma: f32) -> Array3<f32> {
    let (_, h, w) = noisy.dim();
    let mut ws = model.workspace(h, w);
    let x = noisy.as_standard_layout();
    let mut g = vec![0.0f32; 2 * h * w];
    model.energy_grad(&mut ws, x.as_slice().unwrap_or(&[]), sigma, &mut g, None);
    let mut out = noisy.to_owned();
    for (o, gv) in out.iter_mut().zip(&g) {
        *o -= sigma * sigma * gv;
    }
    out
}

/// Magnitude (in the p99 = 1 convention) above which a pixel counts as part of the object.
pub const OBJECT_LEVEL: f32 = 0.1;

/// What the energy says about one slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SliceScore {
    /// The learned network's energy at [`SCORE_SIGMA`] above that of an empty image of the same
    /// size (the energy's additive constant removed), per object pixel.
    pub energy: f64,
    /// The same for the whole prior (the network weighted by β(σ) plus the expert field): what
    /// reconstruction descends. Equal to `energy` for a model without an expert field.
    pub prior_energy: f64,
    /// Fraction of the pixels in the object (magnitude > [`OBJECT_LEVEL`]).
    pub object_fraction: f64,
}

/// The expert field of a scored model with its workspace, its energy of an empty image and the
/// network's weight β at [`SCORE_SIGMA`].
struct Field {
    experts: crate::experts::Experts,
    ws: crate::experts::ExpertsWorkspace,
    baseline: f64,
    beta: f64,
}

impl Field {
    /// The field's energy of `x` at [`SCORE_SIGMA`] (`grad` is scratch).
    fn energy(&mut self, x: &[f32], grad: &mut [f32]) -> f64 {
        grad.fill(0.0);
        self.experts
            .energy_grad_add(&mut self.ws, x, SCORE_SIGMA as f64, grad, None)
    }
}

/// Scores slices of one size: the workspaces and the energies of an empty image (the energy's
/// additive constant, which depends only on the size) are computed once, not per slice.
///
/// Two statistics of one model describe a slice: the learned network's energy and the whole
/// prior's. They see different things. The network notices structure that anatomy lacks (4×
/// aliasing, zipper lines: slice ROC AUC 1.00 and 0.99 on the validation slices, against 0.68
/// and 0.78 for the whole prior, whose expert field is a generic piecewise-smoothness energy);
/// the whole prior notices noise and motion ghosts (AUC 0.99 for ghosts, against 0.93 for the
/// network). A slice is as atypical as the more atypical of the two ([`ScoreTypicality`]), as
/// in multi-statistic typicality tests (Morningstar et al. 2021, "Density of States
/// Estimation for Out-of-Distribution Detection"). Energy maps are the network's.
///
/// The network runs once per slice: the whole prior's energy is β(σ) times its energy plus the
/// expert field's, added in the order [`FastPyramid::energy_grad`] adds them.
pub struct Scorer {
    net: FastPyramid,
    ws: crate::fast::PyramidWorkspace,
    baseline: f64,
    field: Option<Field>,
    h: usize,
    w: usize,
    grad: Vec<f32>,
}

impl Scorer {
    /// A scorer for `h`×`w` slices.
    pub fn new(model: &FastPyramid, h: usize, w: usize) -> Self {
        let mut grad = vec![0.0; 2 * h * w];
        let empty = vec![0.0f32; 2 * h * w];
        let net = model.network_only();
        let mut ws = net.workspace(h, w);
        let baseline = net.energy_grad(&mut ws, &empty, SCORE_SIGMA, &mut grad, None);
        let field = model.experts().map(|e| {
            let mut f = Field {
                experts: e.clone(),
                ws: e.workspace(h, w),
                baseline: 0.0,
                beta: model.net_weight(SCORE_SIGMA),
            };
            f.baseline = f.energy(&empty, &mut grad);
            f
        });
        Scorer {
            net,
            ws,
            baseline,
            field,
            h,
            w,
            grad,
        }
    }

    /// The network's energy density `[h, w]` of `x` `[2, h, w]` at [`SCORE_SIGMA`] and its total
    /// energy.
    pub fn map(&mut self, x: ArrayView3<'_, f32>) -> (Array2<f32>, f64) {
        assert_eq!(x.dim(), (2, self.h, self.w), "Scorer: slice size");
        let xs = x.as_standard_layout();
        let mut d = vec![0.0f32; self.h * self.w];
        let e = self.net.energy_grad(
            &mut self.ws,
            xs.as_slice().unwrap_or(&[]),
            SCORE_SIGMA,
            &mut self.grad,
            Some(&mut d),
        );
        let map = Array2::from_shape_vec((self.h, self.w), d)
            .unwrap_or_else(|_| Array2::zeros((self.h, self.w)));
        (map, e)
    }

    /// The network's energy-density map of `x` `[2, h, w]` at [`SCORE_SIGMA`] and the slice's
    /// [`SliceScore`].
    pub fn score(&mut self, x: ArrayView3<'_, f32>) -> (Array2<f32>, SliceScore) {
        let (d, e) = self.map(x);
        let (h, w) = (self.h, self.w);
        let object = (0..h)
            .flat_map(|y| (0..w).map(move |xx| (y, xx)))
            .filter(|&(y, xx)| x[[0, y, xx]].hypot(x[[1, y, xx]]) > OBJECT_LEVEL)
            .count()
            .max(1) as f64;
        let energy = (e - self.baseline) / object;
        let prior_energy = match &mut self.field {
            Some(f) => {
                let xs = x.as_standard_layout();
                let whole = f.beta * e + f.energy(xs.as_slice().unwrap_or(&[]), &mut self.grad);
                (whole - (f.beta * self.baseline + f.baseline)) / object
            }
            None => energy,
        };
        (
            d,
            SliceScore {
                energy,
                prior_energy,
                object_fraction: object / (h * w).max(1) as f64,
            },
        )
    }
}

/// A complex slice as the prior's `[2, h, w]` planes (real, imaginary), multiplied by `scale`
/// (the p99 = 1 convention).
pub fn planes(slice: ArrayView2<'_, C32>, scale: f32) -> Array3<f32> {
    let (h, w) = slice.dim();
    Array3::from_shape_fn((2, h, w), |(c, y, x)| {
        let v = slice[[y, x]] * scale;
        if c == 0 {
            v.re
        } else {
            v.im
        }
    })
}

/// The typical range of slice energies of clean images (median and median absolute deviation
/// of validation slices). Slices far from it on either side are atypical — too rough (noise,
/// spikes) or too smooth for anatomy (blurring, aliasing and ghosts spread over the background):
/// the typicality test for likelihood models of Nalisnick et al. (2019).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Typicality {
    /// Median slice energy.
    pub median: f64,
    /// Median absolute deviation from it.
    pub mad: f64,
}

impl Typicality {
    /// Fits the range to clean slice energies.
    pub fn fit(energies: &[f64]) -> Self {
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            if v.is_empty() {
                0.0
            } else {
                v[v.len() / 2]
            }
        };
        let median = med(&mut energies.to_vec());
        let mad = med(&mut energies.iter().map(|e| (e - median).abs()).collect());
        Typicality {
            median,
            mad: mad.max(1e-12),
        }
    }

    /// Robust z-score |e − median| / (1.4826 MAD) (≈ standard deviations for Gaussian data).
    pub fn z(&self, energy: f64) -> f64 {
        (energy - self.median).abs() / (1.4826 * self.mad)
    }
}

/// The typical ranges of both statistics of a [`SliceScore`] on clean validation slices, kept in
/// the model card (`score_median`, `score_mad` for the network; `prior_score_median`,
/// `prior_score_mad` for the whole prior).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreTypicality {
    /// Range of [`SliceScore::energy`].
    pub network: Typicality,
    /// Range of [`SliceScore::prior_energy`]; `None` for cards written before it was measured
    /// (such slices are judged by the network's energy alone).
    pub prior: Option<Typicality>,
}

impl ScoreTypicality {
    /// Fits both ranges to clean slices.
    pub fn fit(clean: &[SliceScore]) -> Self {
        let net: Vec<f64> = clean.iter().map(|s| s.energy).collect();
        let prior: Vec<f64> = clean.iter().map(|s| s.prior_energy).collect();
        ScoreTypicality {
            network: Typicality::fit(&net),
            prior: Some(Typicality::fit(&prior)),
        }
    }

    /// The larger robust z of the two statistics.
    pub fn z(&self, s: &SliceScore) -> f64 {
        let zn = self.network.z(s.energy);
        self.prior.map_or(zn, |p| zn.max(p.z(s.prior_energy)))
    }

    /// Reads the ranges from a model card; `None` without the network's range.
    pub fn from_card(card: &std::collections::HashMap<String, String>) -> Option<Self> {
        let range = |m: &str, d: &str| {
            let num = |k: &str| card.get(k).and_then(|v| v.trim().parse::<f64>().ok());
            match (num(m), num(d)) {
                (Some(median), Some(mad)) if mad > 0.0 && median.is_finite() && mad.is_finite() => {
                    Some(Typicality { median, mad })
                }
                _ => None,
            }
        };
        Some(ScoreTypicality {
            network: range("score_median", "score_mad")?,
            prior: range("prior_score_median", "prior_score_mad"),
        })
    }

    /// Writes the ranges into a model card.
    pub fn to_card(&self, card: &mut std::collections::HashMap<String, String>) {
        card.insert("score_median".into(), format!("{:.6}", self.network.median));
        card.insert("score_mad".into(), format!("{:.6}", self.network.mad));
        if let Some(p) = self.prior {
            card.insert("prior_score_median".into(), format!("{:.6}", p.median));
            card.insert("prior_score_mad".into(), format!("{:.6}", p.mad));
        }
    }
}

/// The robust z above which `basin score` flags a slice (Iglewicz & Hoaglin's outlier rule).
pub const Z_THRESHOLD: f64 = 3.5;

/// The energy density `[z, y, x]` at [`SCORE_SIGMA`] of a complex volume `[z, y, x]`, scaled to
/// the p99 = 1 convention first (as `basin score` and `basin recon --energy-map` report it).
pub fn energy_density_volume(model: &FastPyramid, vol: &Array3<C32>) -> Array3<f32> {
    let mags: Vec<f32> = vol.iter().map(|c| c.norm()).collect();
    let scale = crate::data::p99_scale(mags.iter());
    let (nz, ny, nx) = vol.dim();
    let mut out = Array3::zeros((nz, ny, nx));
    let mut scorer = Scorer::new(model, ny, nx);
    for z in 0..nz {
        let x = planes(vol.index_axis(ndarray::Axis(0), z), scale);
        out.index_axis_mut(ndarray::Axis(0), z)
            .assign(&scorer.map(x.view()).0);
    }
    out
}

/// Corruptions of a clean slice that the energy should flag.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Corruption {
    /// Complex Gaussian noise of the given σ.
    Noise(f32),
    /// Zero-filled reconstruction of 4× equispaced undersampling along the first axis with a
    /// fully sampled 8 % centre (fastMRI's 4× mask).
    Aliasing4x,
    /// A zipper: one line at a random column with alternating ±0.25 along it (RF leakage).
    Zipper,
    /// Motion ghosting: every other phase-encoding line with a 0.5 rad phase error, which puts a
    /// ghost at half the field of view.
    Ghosting,
}

fn kspace_edit(x: ArrayView3<'_, f32>, edit: impl Fn(usize, C32) -> C32) -> Array3<f32> {
    let (_, h, w) = x.dim();
    let mut k = Array2::from_shape_fn((h, w), |(y, xx)| C32::new(x[[0, y, xx]], x[[1, y, xx]]));
    fftc(k.view_mut(), &[0, 1]);
    for ((ky, _), v) in k.indexed_iter_mut() {
        *v = edit(ky, *v);
    }
    ifftc(k.view_mut(), &[0, 1]);
    Array3::from_shape_fn((2, h, w), |(c, y, xx)| {
        if c == 0 {
            k[[y, xx]].re
        } else {
            k[[y, xx]].im
        }
    })
}

/// Applies a corruption.
pub fn corrupt(x: ArrayView3<'_, f32>, c: Corruption, rng: &mut Rng) -> Array3<f32> {
    let (_, h, w) = x.dim();
    match c {
        Corruption::Noise(s) => add_noise(x, s, rng),
        Corruption::Aliasing4x => {
            let centre = ((h as f64 * 0.08).round() as usize).max(1);
            let c0 = h / 2 - centre / 2;
            kspace_edit(x, |ky, v| {
                if ky % 4 == 0 || (ky >= c0 && ky < c0 + centre) {
                    v
                } else {
                    C32::new(0.0, 0.0)
                }
            })
        }
        Corruption::Zipper => {
            let col = w / 4 + ((w / 2) as f64 * rng.uniform()) as usize;
            let mut out = x.to_owned();
            for y in 0..h {
                out[[0, y, col]] += if y % 2 == 0 { 0.25 } else { -0.25 };
            }
            out
        }
        Corruption::Ghosting => {
            let e = C32::from_polar(1.0, 0.5);
            kspace_edit(x, |ky, v| if ky % 2 == 1 { v * e } else { v })
        }
    }
}

/// Area under the ROC curve for scores where `positive` should be higher than `negative`
/// (Mann–Whitney U / (n₊ n₋), ties counted one half).
pub fn roc_auc(negative: &[f64], positive: &[f64]) -> f64 {
    let mut u = 0.0;
    for &p in positive {
        for &n in negative {
            u += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    u / (negative.len() * positive.len()).max(1) as f64
}
