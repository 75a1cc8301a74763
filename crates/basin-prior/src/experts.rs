//! A field of Gaussian-scale-mixture experts on fixed multi-scale Haar filters, smoothed exactly by
//! the noise: the part of the energy that knows what MR images share with every piecewise-smooth
//! image (a background that is exactly empty, flat tissue, sharp edges), fitted to the training
//! anatomy, so the learned network only has to add what it knows on top.
//!
//! Each expert k filters the complex image with a fixed kernel f_k (the pixel itself, box means
//! and Haar differences at 1, 2 and 4 pixels in four directions, second differences). Its clean
//! response c is modelled as a mixture of isotropic complex Gaussians, p(c) = Σⱼ πₖⱼ N(c; 0, sⱼ²)
//! (sⱼ² per real component, fixed grid, πₖⱼ fitted by EM to clean training responses). Noise of
//! level σ adds σ²‖f_k‖² to each component's variance, so the *exact* noisy marginal is again a
//! mixture, and its negative log is the expert's energy at σ (Bayes least-squares shrinkage of
//! Portilla et al. 2003, in the Fields-of-Experts form of Roth & Black 2005):
//!
//! ```text
//! E(x; σ) = Σₖ αₖ(σ) Σ_p ψₖ(|(f_k ⋆ x)(p)|²; σ²‖f_k‖²) + β(σ) E_net(x; σ)
//! ψ(t; v) = −log Σⱼ πⱼ/(sⱼ² + v) · exp(−t / (2(sⱼ² + v)))
//! ```
//!
//! αₖ(σ) and the network's weight β(σ) are fitted by denoising score matching, which for weights
//! that enter the score linearly is an exact least-squares problem per σ (on a grid in log σ,
//! interpolated between). All filters are sums of shifted s×s box means, so a response costs a
//! few additions per pixel whatever the scale.

use basin_core::rng::Rng;
use ndarray::{Array2, Array3, ArrayView3};
use rayon::prelude::*;

/// One fixed filter: Σ weight · B_s[y + dy, x + dx], with B_s[q] the mean of the image over the
/// s×s block whose top-left pixel is q (pixels outside the image count as zero).
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// Name (for the model card).
    pub name: String,
    /// Box size s.
    pub scale: usize,
    /// (dy, dx, weight) taps on the box-mean image.
    pub taps: Vec<(usize, usize, f64)>,
}

impl Filter {
    /// The dense correlation kernel `[h, w]` this filter applies (for references and ‖f‖²).
    pub fn kernel(&self) -> Array2<f64> {
        let s = self.scale;
        let h = self.taps.iter().map(|t| t.0).max().unwrap_or(0) + s;
        let w = self.taps.iter().map(|t| t.1).max().unwrap_or(0) + s;
        let mut k = Array2::zeros((h, w));
        for &(dy, dx, wt) in &self.taps {
            for a in 0..s {
                for b in 0..s {
                    k[[dy + a, dx + b]] += wt / (s * s) as f64;
                }
            }
        }
        k
    }

    /// ‖f‖², the factor by which white noise variance passes through the filter.
    pub fn norm2(&self) -> f64 {
        self.kernel().iter().map(|v| v * v).sum()
    }
}

/// The fixed filter bank: the pixel, box means at 2, 4 and 8, and at 1, 2 and 4 pixels the Haar
/// differences along x, y and both diagonals and the Haar checkerboard; second differences at 1
/// and 2.
pub fn filter_bank() -> Vec<Filter> {
    let f = |name: String, scale, taps: Vec<(usize, usize, f64)>| Filter { name, scale, taps };
    let mut out = vec![f("id".into(), 1, vec![(0, 0, 1.0)])];
    for s in [1usize, 2, 4] {
        out.push(f(format!("dx{s}"), s, vec![(0, 0, 1.0), (0, s, -1.0)]));
        out.push(f(format!("dy{s}"), s, vec![(0, 0, 1.0), (s, 0, -1.0)]));
        out.push(f(
            format!("dd{s}"),
            s,
            vec![(0, 0, 0.5), (s, s, 0.5), (0, s, -0.5), (s, 0, -0.5)],
        ));
        out.push(f(format!("da{s}"), s, vec![(0, 0, 1.0), (s, s, -1.0)]));
        out.push(f(format!("db{s}"), s, vec![(0, s, 1.0), (s, 0, -1.0)]));
        if s <= 2 {
            out.push(f(
                format!("lx{s}"),
                s,
                vec![(0, 0, -1.0), (0, s, 2.0), (0, 2 * s, -1.0)],
            ));
            out.push(f(
                format!("ly{s}"),
                s,
                vec![(0, 0, -1.0), (s, 0, 2.0), (2 * s, 0, -1.0)],
            ));
        }
    }
    for s in [2usize, 4, 8] {
        out.push(f(format!("lp{s}"), s, vec![(0, 0, 1.0)]));
    }
    out
}

/// The fixed grid of component standard deviations sⱼ (p99 = 1 convention).
pub fn component_sds() -> Vec<f64> {
    let n = 14;
    (0..n)
        .map(|j| (1e-3f64.ln() + (2.0f64 / 1e-3).ln() * j as f64 / (n - 1) as f64).exp())
        .collect()
}

/// The component variances sⱼ² of [`component_sds`].
pub fn component_vars() -> Vec<f64> {
    component_sds().iter().map(|s| s * s).collect()
}

/// The expert field: filters, mixtures, and the weights per σ.
#[derive(Clone, Debug, PartialEq)]
pub struct Experts {
    /// The filters (see [`filter_bank`]).
    pub filters: Vec<Filter>,
    /// Component variances sⱼ² (per real component).
    pub var: Vec<f64>,
    /// log πₖⱼ `[K, J]`.
    pub log_pi: Array2<f64>,
    /// ln σ of the weight table's rows (increasing).
    pub log_sigma: Vec<f64>,
    /// Weights `[T, K + 1]`: αₖ per filter, then β for the network.
    pub weights: Array2<f64>,
}

/// Box means B_s of the two planes of `x` (`[2, h, w]`, row-major) into `out`.
#[inline(always)]
fn box_means(x: &[f32], h: usize, w: usize, s: usize, tmp: &mut [f64], out: &mut [f64]) {
    let inv = 1.0 / (s * s) as f64;
    for c in 0..2 {
        let xp = &x[c * h * w..(c + 1) * h * w];
        // Horizontal sums over [x, x + s).
        for y in 0..h {
            let row = &xp[y * w..(y + 1) * w];
            let mut acc = 0.0f64;
            for &v in row.iter().take(s.min(w)) {
                acc += v as f64;
            }
            for xx in 0..w {
                tmp[y * w + xx] = acc;
                acc -= row[xx] as f64;
                if xx + s < w {
                    acc += row[xx + s] as f64;
                }
            }
        }
        let o = &mut out[c * h * w..(c + 1) * h * w];
        // Vertical sums over [y, y + s).
        for xx in 0..w {
            let mut acc = 0.0f64;
            for y in 0..s.min(h) {
                acc += tmp[y * w + xx];
            }
            for y in 0..h {
                o[y * w + xx] = acc * inv;
                acc -= tmp[y * w + xx];
                if y + s < h {
                    acc += tmp[(y + s) * w + xx];
                }
            }
        }
    }
}

/// The filter's complex response at (y, x) from its box-mean planes `boxed` (`[2, h, w]`).
#[inline(always)]
fn response(f: &Filter, boxed: &[f64], h: usize, w: usize, y: usize, x: usize) -> (f64, f64) {
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for &(dy, dx, wt) in &f.taps {
        let (yy, xq) = (y + dy, x + dx);
        if yy < h && xq < w {
            re += wt * boxed[yy * w + xq];
            im += wt * boxed[h * w + yy * w + xq];
        }
    }
    (re, im)
}

/// Adjoint of [`box_means`]: adds Bᵀg (`g` on the box grid, `[2, h, w]`) into `out` `[2, h, w]`.
#[inline(always)]
fn box_means_adjoint(g: &[f64], h: usize, w: usize, s: usize, tmp: &mut [f64], out: &mut [f32]) {
    let inv = 1.0 / (s * s) as f64;
    for c in 0..2 {
        let gp = &g[c * h * w..(c + 1) * h * w];
        // out[p] = inv Σ_{q ≤ p < q + s} g[q]: sums over q ∈ (p − s, p].
        for y in 0..h {
            let mut acc = 0.0f64;
            for xx in 0..w {
                acc += gp[y * w + xx];
                if xx >= s {
                    acc -= gp[y * w + xx - s];
                }
                tmp[y * w + xx] = acc;
            }
        }
        let o = &mut out[c * h * w..(c + 1) * h * w];
        for xx in 0..w {
            let mut acc = 0.0f64;
            for y in 0..h {
                acc += tmp[y * w + xx];
                if y >= s {
                    acc -= tmp[(y - s) * w + xx];
                }
                o[y * w + xx] += (acc * inv) as f32;
            }
        }
    }
}

/// [`filter_energy_grad`] as a pulp operation, so that it is compiled inside the
/// target-feature function pulp dispatches to (a closure here was compiled out of line, for the
/// baseline instruction set: the profile showed no AVX and a scalar exponential).
struct FilterPass<'a> {
    f: &'a Filter,
    consts32: &'a [(f32, f32)],
    x: &'a [f32],
    h: usize,
    w: usize,
    buf: &'a mut FilterBuffers,
}

impl pulp::WithSimd for FilterPass<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> f64 {
        filter_energy_grad(self.f, self.consts32, self.x, self.h, self.w, self.buf)
    }
}

/// One expert's energy with unit weight over `x` (`[2, h, w]`), its gradient into `buf.grad` and
/// its density into `buf.density`.
#[inline(always)]
fn filter_energy_grad(
    f: &Filter,
    consts32: &[(f32, f32)],
    x: &[f32],
    h: usize,
    w: usize,
    buf: &mut FilterBuffers,
) -> f64 {
    box_means(x, h, w, f.scale, &mut buf.tmp, &mut buf.boxed);
    buf.g.iter_mut().for_each(|v| *v = 0.0);
    let mut energy = 0.0f64;
    let n = h * w;
    let rows = &mut buf.rows;
    for y in 0..h {
        // Every step runs over the whole row (loops that vectorise): the responses tap by
        // tap (per pixel the same additions in the same order as a per-pixel loop), the
        // mixture component by component, then ψ and its derivative, and the gradient
        // scattered back tap by tap.
        rows.re.fill(0.0);
        rows.im.fill(0.0);
        for &(dy, dx, wt) in &f.taps {
            let yy = y + dy;
            if yy >= h || dx >= w {
                continue;
            }
            let len = w - dx;
            let src_re = &buf.boxed[yy * w + dx..yy * w + w];
            let src_im = &buf.boxed[n + yy * w + dx..n + yy * w + w];
            for ((r, i), (&br, &bi)) in rows.re[..len]
                .iter_mut()
                .zip(rows.im[..len].iter_mut())
                .zip(src_re.iter().zip(src_im))
            {
                *r += wt * br;
                *i += wt * bi;
            }
        }
        for ((t, m), ((s, ws), (&re, &im))) in rows.t.iter_mut().zip(rows.m.iter_mut()).zip(
            rows.s
                .iter_mut()
                .zip(rows.ws.iter_mut())
                .zip(rows.re.iter().zip(&rows.im)),
        ) {
            *t = (re * re + im * im) as f32;
            *m = f32::NEG_INFINITY;
            *s = 0.0;
            *ws = 0.0;
        }
        // The mixture in f32 (ψ to ~1e-6 relative; sums stay f64).
        for &(a, b) in consts32 {
            for (m, &t) in rows.m.iter_mut().zip(&rows.t) {
                *m = m.max(a - t * b);
            }
        }
        for &(a, b) in consts32 {
            let b2 = 2.0 * b;
            for ((s, ws), (&t, &m)) in rows
                .s
                .iter_mut()
                .zip(rows.ws.iter_mut())
                .zip(rows.t.iter().zip(&rows.m))
            {
                let e = crate::fast::exp_nonpositive_f32(a - t * b - m);
                *s += e;
                *ws += e * b2;
            }
        }
        // ψ = −(m + ln s) and ψ'/|r|·… = ws / s per pixel; the energy summed in pixel order.
        for ((e, d), ((&s, &ws), &m)) in rows
            .e
            .iter_mut()
            .zip(rows.d.iter_mut())
            .zip(rows.s.iter().zip(&rows.ws).zip(&rows.m))
        {
            let sv = s as f64;
            *e = -(m as f64 + crate::fast::ln_positive_f64(sv));
            *d = ws as f64 / sv;
        }
        for (o, &e) in buf.density[y * w..(y + 1) * w].iter_mut().zip(&rows.e) {
            energy += e;
            *o = e as f32;
        }
        for &(dy, dx, wt) in &f.taps {
            let yy = y + dy;
            if yy >= h || dx >= w {
                continue;
            }
            let len = w - dx;
            let (g_re, g_im) = buf.g.split_at_mut(n);
            let dst_re = &mut g_re[yy * w + dx..yy * w + w];
            let dst_im = &mut g_im[yy * w + dx..yy * w + w];
            for ((gr, gi), (&d, (&re, &im))) in dst_re.iter_mut().zip(dst_im.iter_mut()).zip(
                rows.d[..len]
                    .iter()
                    .zip(rows.re[..len].iter().zip(&rows.im[..len])),
            ) {
                *gr += wt * d * re;
                *gi += wt * d * im;
            }
        }
    }
    buf.grad.iter_mut().for_each(|v| *v = 0.0);
    box_means_adjoint(&buf.g, h, w, f.scale, &mut buf.tmp, &mut buf.grad);
    energy
}

/// Per-σ constants of one expert's mixture: aⱼ = log πⱼ − ln(sⱼ² + v), bⱼ = 1/(2(sⱼ² + v)).
fn mixture_consts(log_pi: &[f64], var: &[f64], v: f64) -> Vec<(f64, f64)> {
    log_pi
        .iter()
        .zip(var)
        .map(|(&lp, &s2)| (lp - (s2 + v).ln(), 0.5 / (s2 + v)))
        .collect()
}

/// Buffers for one image size.
#[derive(Clone, Debug)]
pub struct ExpertsWorkspace {
    h: usize,
    w: usize,
    per_filter: Vec<FilterBuffers>,
}

#[derive(Clone, Debug)]
struct RowBuffers {
    re: Vec<f64>,
    im: Vec<f64>,
    /// ψ and its derivative factor per pixel of the row.
    e: Vec<f64>,
    d: Vec<f64>,
    t: Vec<f32>,
    m: Vec<f32>,
    s: Vec<f32>,
    ws: Vec<f32>,
}

#[derive(Clone, Debug)]
struct FilterBuffers {
    rows: RowBuffers,
    boxed: Vec<f64>,
    tmp: Vec<f64>,
    g: Vec<f64>,
    grad: Vec<f32>,
    density: Vec<f32>,
}

impl Experts {
    /// The whole bank with random mixtures and weights on a three-row σ table (0.01, 0.1, 0.5):
    /// for tests and benchmarks.
    pub fn random(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let filters = filter_bank();
        let var = component_vars();
        let k = filters.len();
        let log_pi = Array2::from_shape_fn((k, var.len()), |_| rng.normal());
        let weights = Array2::from_shape_fn((3, k + 1), |_| 0.05 + 0.2 * rng.uniform());
        Experts {
            filters,
            var,
            log_pi,
            log_sigma: vec![0.01f64.ln(), 0.1f64.ln(), 0.5f64.ln()],
            weights,
        }
    }

    /// Number of filters K.
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether there are no filters.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The weights (αₖ for k < K, β last) at σ: linear in ln σ between the table's rows,
    /// clamped to its ends.
    pub fn weights_at(&self, sigma: f64) -> Vec<f64> {
        let ls = sigma.max(f64::MIN_POSITIVE).ln();
        let t = &self.log_sigma;
        let row = |i: usize| self.weights.row(i).to_vec();
        if t.len() == 1 || ls <= t[0] {
            return row(0);
        }
        if ls >= t[t.len() - 1] {
            return row(t.len() - 1);
        }
        let i = t.windows(2).position(|p| ls < p[1]).unwrap_or(t.len() - 2);
        let u = (ls - t[i]) / (t[i + 1] - t[i]);
        row(i)
            .iter()
            .zip(row(i + 1))
            .map(|(a, b)| a + u * (b - a))
            .collect()
    }

    /// Buffers for `h`×`w` images.
    pub fn workspace(&self, h: usize, w: usize) -> ExpertsWorkspace {
        ExpertsWorkspace {
            h,
            w,
            per_filter: self
                .filters
                .iter()
                .map(|_| FilterBuffers {
                    rows: RowBuffers {
                        re: vec![0.0; w],
                        im: vec![0.0; w],
                        e: vec![0.0; w],
                        d: vec![0.0; w],
                        t: vec![0.0f32; w],
                        m: vec![0.0; w],
                        s: vec![0.0; w],
                        ws: vec![0.0; w],
                    },
                    boxed: vec![0.0; 2 * h * w],
                    tmp: vec![0.0; h * w],
                    g: vec![0.0; 2 * h * w],
                    grad: vec![0.0; 2 * h * w],
                    density: vec![0.0; h * w],
                })
                .collect(),
        }
    }

    /// Each expert's energy with unit weight, its gradient (into the workspace) and density;
    /// experts with `active[k]` false are skipped (energy 0, buffers untouched).
    fn per_filter(
        &self,
        ws: &mut ExpertsWorkspace,
        x: &[f32],
        sigma: f64,
        active: &[bool],
    ) -> Vec<f64> {
        let (h, w) = (ws.h, ws.w);
        let s2 = sigma * sigma;
        ws.per_filter
            .par_iter_mut()
            .zip(self.filters.par_iter().enumerate())
            .map(|(buf, (k, f))| {
                if !active[k] {
                    return 0.0;
                }
                let consts = mixture_consts(
                    self.log_pi.row(k).as_slice().unwrap_or(&[]),
                    &self.var,
                    s2 * f.norm2(),
                );
                let consts32: Vec<(f32, f32)> =
                    consts.iter().map(|&(a, b)| (a as f32, b as f32)).collect();
                // Compiled for the widest SIMD the CPU has (pulp's runtime dispatch): the loops
                // are element-wise or sequential sums and never fused, so the results are the
                // same on every instruction set.
                pulp::Arch::new().dispatch(FilterPass {
                    f,
                    consts32: &consts32,
                    x,
                    h,
                    w,
                    buf,
                })
            })
            .collect()
    }

    /// β(σ), the weight of the network's energy.
    pub fn net_weight(&self, sigma: f64) -> f64 {
        self.weights_at(sigma)[self.len()]
    }

    /// Energy Σₖ αₖ(σ) Σ_p ψₖ of `x` (`[2, h, w]`), with ∇ₓ added into `grad` and, when given,
    /// the density added into `density` `[h, w]` (each response counted at its filter's anchor).
    pub fn energy_grad_add(
        &self,
        ws: &mut ExpertsWorkspace,
        x: &[f32],
        sigma: f64,
        grad: &mut [f32],
        mut density: Option<&mut [f32]>,
    ) -> f64 {
        let wts = self.weights_at(sigma);
        // Experts of weight zero at this σ (non-negative least squares zeroes some) cost nothing.
        let active: Vec<bool> = wts.iter().map(|&a| a != 0.0).collect();
        let energies = self.per_filter(ws, x, sigma, &active);
        let mut e = 0.0;
        for (k, buf) in ws.per_filter.iter().enumerate() {
            if !active[k] {
                continue;
            }
            let a = wts[k];
            e += a * energies[k];
            for (g, v) in grad.iter_mut().zip(&buf.grad) {
                *g += (a as f32) * v;
            }
            if let Some(d) = density.as_deref_mut() {
                for (o, v) in d.iter_mut().zip(&buf.density) {
                    *o += (a as f32) * v;
                }
            }
        }
        e
    }

    /// The unit-weight gradients of every expert for `x` at σ, each `[2, h, w]` (the columns of
    /// the weight fit).
    pub fn unit_gradients(
        &self,
        ws: &mut ExpertsWorkspace,
        x: &[f32],
        sigma: f64,
    ) -> Vec<Vec<f32>> {
        self.per_filter(ws, x, sigma, &vec![true; self.filters.len()]);
        ws.per_filter.iter().map(|b| b.grad.clone()).collect()
    }

    /// The energy density `[h, w]` of `x` in float64 by plain dense correlation (the reference
    /// of the tests): each response's weighted energy at its filter's anchor pixel.
    pub fn density_reference(&self, x: ArrayView3<'_, f64>, sigma: f64) -> Array2<f64> {
        self.reference(x, sigma).0
    }

    /// ∇ₓ of the experts' energy in float64 by plain dense correlation and its adjoint.
    pub fn grad_reference(&self, x: ArrayView3<'_, f64>, sigma: f64) -> Array3<f64> {
        self.reference(x, sigma).1
    }

    fn reference(&self, x: ArrayView3<'_, f64>, sigma: f64) -> (Array2<f64>, Array3<f64>) {
        let (_, h, w) = x.dim();
        let wts = self.weights_at(sigma);
        let mut d = Array2::zeros((h, w));
        let mut g = Array3::zeros((2, h, w));
        for (k, f) in self.filters.iter().enumerate() {
            let ker = f.kernel();
            let consts = mixture_consts(
                self.log_pi.row(k).as_slice().unwrap_or(&[]),
                &self.var,
                sigma * sigma * f.norm2(),
            );
            for y in 0..h {
                for xx in 0..w {
                    let (mut re, mut im) = (0.0, 0.0);
                    for ((a, b), &kv) in ker.indexed_iter() {
                        if y + a < h && xx + b < w {
                            re += kv * x[[0, y + a, xx + b]];
                            im += kv * x[[1, y + a, xx + b]];
                        }
                    }
                    let t = re * re + im * im;
                    let terms: Vec<(f64, f64)> = consts
                        .iter()
                        .map(|&(a, b)| ((a - t * b).exp(), 2.0 * b))
                        .collect();
                    let s: f64 = terms.iter().map(|p| p.0).sum();
                    let dpsi: f64 = terms.iter().map(|p| p.0 * p.1).sum::<f64>() / s;
                    d[[y, xx]] += wts[k] * -s.ln();
                    for ((a, b), &kv) in ker.indexed_iter() {
                        if y + a < h && xx + b < w {
                            g[[0, y + a, xx + b]] += wts[k] * kv * dpsi * re;
                            g[[1, y + a, xx + b]] += wts[k] * kv * dpsi * im;
                        }
                    }
                }
            }
        }
        (d, g)
    }
}

/// Fits the mixture weights πₖⱼ of every filter by EM on clean responses (`samples` images
/// `[2, h, w]`, up to `per_filter` responses drawn from them per filter).
pub fn fit_mixtures(
    filters: &[Filter],
    samples: &[Array3<f32>],
    per_filter: usize,
    rng: &mut Rng,
) -> Array2<f64> {
    let var = component_vars();
    let j = var.len();
    let mut log_pi = Array2::zeros((filters.len(), j));
    for (k, f) in filters.iter().enumerate() {
        let mut ts = Vec::new();
        for img in samples {
            let (_, h, w) = img.dim();
            let x = img.as_standard_layout();
            let xs = x.as_slice().unwrap_or(&[]);
            let (mut tmp, mut boxed) = (vec![0.0; h * w], vec![0.0; 2 * h * w]);
            box_means(xs, h, w, f.scale, &mut tmp, &mut boxed);
            for y in 0..h {
                for xx in 0..w {
                    let (re, im) = response(f, &boxed, h, w, y, xx);
                    ts.push(re * re + im * im);
                }
            }
        }
        // A seeded subsample (a partial Fisher–Yates shuffle).
        let (m, len) = (per_filter.min(ts.len()), ts.len());
        for i in 0..m {
            let r = i + ((len - i) as f64 * rng.uniform()) as usize;
            ts.swap(i, r.min(len - 1));
        }
        ts.truncate(m);
        let mut pi = vec![1.0 / j as f64; j];
        let mut resp = vec![0.0; j];
        for _ in 0..80 {
            let consts = mixture_consts(&pi.iter().map(|p| p.ln()).collect::<Vec<_>>(), &var, 0.0);
            let mut acc = vec![0.0; j];
            for &t in &ts {
                let mut mx = f64::NEG_INFINITY;
                for (r, &(a, b)) in resp.iter_mut().zip(&consts) {
                    *r = a - t * b;
                    mx = mx.max(*r);
                }
                let mut s = 0.0;
                for r in resp.iter_mut() {
                    *r = (*r - mx).exp();
                    s += *r;
                }
                for (a, r) in acc.iter_mut().zip(&resp) {
                    *a += r / s;
                }
            }
            let total: f64 = acc.iter().sum::<f64>() + 1e-8 * j as f64;
            for (p, a) in pi.iter_mut().zip(&acc) {
                *p = (a + 1e-8) / total;
            }
        }
        for (jj, p) in pi.iter().enumerate() {
            log_pi[[k, jj]] = p.ln();
        }
    }
    log_pi
}

/// Solves min ‖A w − b‖² given AᵀA (`n`×`n`, row-major) and Aᵀb, with w ≥ 0 (Lawson–Hanson
/// active set on the normal equations; a small ridge keeps the subproblems well posed).
pub fn nnls_normal(ata: &[f64], atb: &[f64], n: usize) -> Vec<f64> {
    let ridge = 1e-9
        * (0..n)
            .map(|i| ata[i * n + i])
            .fold(0.0, f64::max)
            .max(1e-300);
    let solve = |set: &[usize]| -> Vec<f64> {
        let m = set.len();
        let mut a = vec![0.0; m * m];
        let mut b = vec![0.0; m];
        for (i, &p) in set.iter().enumerate() {
            b[i] = atb[p];
            for (j, &q) in set.iter().enumerate() {
                a[i * m + j] = ata[p * n + q] + if i == j { ridge } else { 0.0 };
            }
        }
        // Cholesky.
        for j in 0..m {
            let mut d = a[j * m + j];
            for k in 0..j {
                d -= a[j * m + k] * a[j * m + k];
            }
            let d = d.max(ridge).sqrt();
            a[j * m + j] = d;
            for i in j + 1..m {
                let mut v = a[i * m + j];
                for k in 0..j {
                    v -= a[i * m + k] * a[j * m + k];
                }
                a[i * m + j] = v / d;
            }
        }
        let mut z = b;
        for i in 0..m {
            for k in 0..i {
                z[i] -= a[i * m + k] * z[k];
            }
            z[i] /= a[i * m + i];
        }
        for i in (0..m).rev() {
            for k in i + 1..m {
                z[i] -= a[k * m + i] * z[k];
            }
            z[i] /= a[i * m + i];
        }
        z
    };
    let mut x = vec![0.0; n];
    let mut passive: Vec<usize> = Vec::new();
    for _ in 0..3 * n + 10 {
        // Gradient of −½‖Aw − b‖²: Aᵀb − AᵀA w.
        let grad: Vec<f64> = (0..n)
            .map(|i| atb[i] - (0..n).map(|j| ata[i * n + j] * x[j]).sum::<f64>())
            .collect();
        let cand = (0..n)
            .filter(|i| !passive.contains(i))
            .max_by(|&a, &b| grad[a].total_cmp(&grad[b]));
        match cand {
            Some(i) if grad[i] > 1e-12 * atb.iter().map(|v| v.abs()).fold(0.0, f64::max) => {
                passive.push(i)
            }
            _ => break,
        }
        loop {
            let z = solve(&passive);
            if z.iter().all(|&v| v > 0.0) {
                for (&p, &v) in passive.iter().zip(&z) {
                    x[p] = v;
                }
                break;
            }
            // Step back towards z until a variable hits zero, drop it.
            let mut t = 1.0f64;
            for (&p, &v) in passive.iter().zip(&z) {
                if v <= 0.0 {
                    t = t.min(x[p] / (x[p] - v));
                }
            }
            for (&p, &v) in passive.iter().zip(&z) {
                x[p] += t * (v - x[p]);
            }
            passive.retain(|&p| x[p] > 1e-15);
            for (i, xi) in x.iter_mut().enumerate() {
                if !passive.contains(&i) {
                    *xi = 0.0;
                }
            }
            if passive.is_empty() {
                break;
            }
        }
    }
    x
}

/// How [`fit`] fits the experts.
#[derive(Clone, Debug, PartialEq)]
pub struct FitConfig {
    /// Smallest σ of the weight table.
    pub sigma_min: f64,
    /// Largest σ of the weight table.
    pub sigma_max: f64,
    /// Rows of the weight table (σ geometric between the two).
    pub n_sigma: usize,
    /// Augmented training images the mixtures are fitted on.
    pub em_images: usize,
    /// Responses per filter drawn from them for EM.
    pub em_samples: usize,
    /// Augmented noisy training images per σ of the weight fit.
    pub fit_images: usize,
    /// Whether the network's energy is a column of the weight fit (else β = 0).
    pub with_network: bool,
    /// Seed.
    pub seed: u64,
    /// Augmentations (as the network's training).
    pub augment: crate::data::Augment,
}

/// What [`fit`] measured: the weight fit's DSM loss per σ with and without the experts.
#[derive(Clone, Debug, PartialEq)]
pub struct FitReport {
    /// (σ, loss of the network alone ‖σ∇E_net − n‖²/N, loss of the fitted sum).
    pub rows: Vec<(f64, f64, f64)>,
}

/// Fits the expert field on training slices (magnitude, p99 = 1) on top of `network` (the
/// network alone, see [`crate::fast::FastPyramid::network_only`]): mixtures by EM on clean
/// augmented images, then per σ of the table the weights (αₖ ≥ 0, β ≥ 0) minimising the
/// denoising-score-matching loss ‖σ²∇E(x + σn) − σn‖² over augmented noisy images — a
/// non-negative least-squares problem, since the weights enter the score linearly.
pub fn fit(
    network: &crate::fast::FastPyramid,
    slices: &[Array2<f32>],
    cfg: &FitConfig,
    mut progress: impl FnMut(&str),
) -> (Experts, FitReport) {
    let mut rng = Rng::new(cfg.seed);
    let pick = |rng: &mut Rng| {
        let i = ((slices.len() as f64 * rng.uniform()) as usize).min(slices.len() - 1);
        crate::data::augment(slices[i].view(), &cfg.augment, rng)
    };
    let em: Vec<Array3<f32>> = (0..cfg.em_images).map(|_| pick(&mut rng)).collect();
    let filters = filter_bank();
    progress("mixtures (EM)");
    let log_pi = fit_mixtures(&filters, &em, cfg.em_samples, &mut rng);
    let var = component_vars();
    let nt = cfg.n_sigma.max(1);
    let log_sigma: Vec<f64> = (0..nt)
        .map(|i| {
            let u = if nt == 1 {
                0.0
            } else {
                i as f64 / (nt - 1) as f64
            };
            cfg.sigma_min.ln() + u * (cfg.sigma_max / cfg.sigma_min).ln()
        })
        .collect();
    let k = filters.len();
    let mut experts = Experts {
        filters,
        var,
        log_pi,
        log_sigma: log_sigma.clone(),
        weights: Array2::zeros((nt, k + 1)),
    };
    let mut report = FitReport { rows: Vec::new() };
    let n = k + 1;
    for (ti, &ls) in log_sigma.iter().enumerate() {
        let sigma = ls.exp();
        progress(&format!("weights at σ = {sigma:.4} ({}/{nt})", ti + 1));
        let mut ata = vec![0.0f64; n * n];
        let mut atb = vec![0.0f64; n];
        let mut btb = 0.0f64;
        let mut count = 0usize;
        for _ in 0..cfg.fit_images {
            let x = pick(&mut rng);
            let (_, h, w) = x.dim();
            let noise: Vec<f32> = (0..2 * h * w).map(|_| rng.normal() as f32).collect();
            let xs = x.as_standard_layout();
            let xt: Vec<f32> = xs
                .iter()
                .zip(&noise)
                .map(|(&a, &b)| a + sigma as f32 * b)
                .collect();
            let mut ws = experts.workspace(h, w);
            let mut cols = experts.unit_gradients(&mut ws, &xt, sigma);
            let mut g = vec![0.0f32; 2 * h * w];
            if cfg.with_network {
                let mut nws = network.workspace(h, w);
                network.energy_grad(&mut nws, &xt, sigma as f32, &mut g, None);
            }
            cols.push(g);
            // Columns σ²∇Eₖ against the target σn, accumulated in f64 over the pixels.
            let s2 = sigma * sigma;
            for p in 0..2 * h * w {
                let b = sigma * noise[p] as f64;
                btb += b * b;
                for i in 0..n {
                    let ai = s2 * cols[i][p] as f64;
                    atb[i] += ai * b;
                    for j in i..n {
                        ata[i * n + j] += ai * s2 * cols[j][p] as f64;
                    }
                }
            }
            count += 2 * h * w;
        }
        for i in 0..n {
            for j in 0..i {
                ata[i * n + j] = ata[j * n + i];
            }
        }
        let wts = if cfg.with_network {
            nnls_normal(&ata, &atb, n)
        } else {
            // β = 0: solve without the network's column.
            let mut a = vec![0.0; k * k];
            for i in 0..k {
                a[i * k..(i + 1) * k].copy_from_slice(&ata[i * n..i * n + k]);
            }
            let mut w = nnls_normal(&a, &atb[..k], k);
            w.push(0.0);
            w
        };
        // Loss of weights w: (wᵀAᵀAw − 2wᵀAᵀb + bᵀb)/N, in units of ‖σ∇E − n‖² (÷σ²).
        let loss = |w: &[f64]| {
            let mut q = btb;
            for i in 0..n {
                q -= 2.0 * w[i] * atb[i];
                for j in 0..n {
                    q += w[i] * ata[i * n + j] * w[j];
                }
            }
            q / (count as f64 * sigma * sigma)
        };
        let mut net_only = vec![0.0; n];
        net_only[k] = 1.0;
        report.rows.push((sigma, loss(&net_only), loss(&wts)));
        for (j, &v) in wts.iter().enumerate() {
            experts.weights[[ti, j]] = v;
        }
    }
    (experts, report)
}
