//! The multi-scale energy of `basin_prior::Pyramid` on the device: the same architecture and
//! weights (converted to f32 and uploaded once), evaluated for a batch of images.
//!
//! Per level s (the image mean-pooled s times, at σ/2ˢ): z₁ = W₁∗x + b₁ + a₁ ln σₛ,
//! h₁ = softplus(z₁), z₂ = W₂∗h₁ + b₂, e = Σ_k (α_k/σₛ) softplus(z₂,k); the gradient runs the
//! adjoint convolutions back (gated by sigmoid(z₁)), and coarse levels are spread back onto the
//! finer ones with the adjoint of pooling.

use crate::device::{grid, DBuf, Gpu};
use crate::kernels;
use basin_prior::{EnergyModel, Pyramid};

struct Level {
    c1: usize,
    k1: usize,
    c2: usize,
    k2: usize,
    w1: DBuf<f32>,
    b1: DBuf<f32>,
    a1: DBuf<f32>,
    w2: DBuf<f32>,
    b2: DBuf<f32>,
    alpha: DBuf<f32>,
    zero2: DBuf<f32>,
}

fn f32s<'a>(v: impl IntoIterator<Item = &'a f64>) -> Vec<f32> {
    v.into_iter().map(|&x| x as f32).collect()
}

impl Level {
    fn new(gpu: &Gpu, m: &EnergyModel) -> Self {
        let (c1, _, k1, _) = m.w1.dim();
        let (c2, _, k2, _) = m.w2.dim();
        Level {
            c1,
            k1,
            c2,
            k2,
            w1: gpu.upload(&f32s(m.w1.iter())),
            b1: gpu.upload(&f32s(m.b1.iter())),
            a1: gpu.upload(&f32s(m.a1.iter())),
            w2: gpu.upload(&f32s(m.w2.iter())),
            b2: gpu.upload(&f32s(m.b2.iter())),
            alpha: gpu.upload(&f32s(m.alpha.iter())),
            zero2: gpu.zeros(c2),
        }
    }
}

/// The expert field on the device: taps `[K, 4, 3]`, log πₖⱼ, the component variances, and
/// on the host what the launches need per σ.
struct ExpertsDev {
    host: basin_prior::experts::Experts,
    tap_off: DBuf<u32>,
    tap_w: DBuf<f32>,
    log_pi: DBuf<f32>,
    var: DBuf<f32>,
    /// (taps, box size, ‖f‖²) per filter.
    shape: Vec<(usize, usize, f64)>,
}

/// How the prior's convolutions run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// One thread per pixel and 4 channels, every input read from device memory (the
    /// default: the kernels measured on the H200 in benches/RESULTS.md).
    Gather,
    /// Shared-memory tiles of 16×16 outputs with the input halo and weights staged per channel,
    /// the first layer's softplus fused into its convolution. The same sums in the same order;
    /// not the default until `gpu-bench` measures it faster on a hardware GPU (on lavapipe,
    /// which emulates shared memory and barriers on the CPU, it is 1.4–1.9× slower).
    Tiled,
}

/// Output tile of the tiled convolutions (a 16×16 cube).
const TILE: u32 = 16;

/// The energy model on the device.
pub struct GpuPrior {
    levels: Vec<Level>,
    experts: Option<ExpertsDev>,
    conv: ConvKind,
}

/// Cubes and cube dimension of a tiled convolution over `ch` channels of `nb` images of h×w.
fn tiled_grid(
    h: usize,
    w: usize,
    ch: usize,
    nb: usize,
) -> (cubecl::prelude::CubeCount, cubecl::prelude::CubeDim) {
    let t = TILE as usize;
    let tiles = h.div_ceil(t) * w.div_ceil(t);
    (
        cubecl::prelude::CubeCount::Static(tiles as u32, ch.div_ceil(4) as u32, nb as u32),
        cubecl::prelude::CubeDim::new_2d(TILE, TILE),
    )
}

/// The kernel width and the shared memory (input tile with halo, 4 channels' weights) of a
/// tiled convolution with kernel width k.
fn tiled_sizes(k: usize) -> (u32, usize, usize) {
    let side = TILE as usize + k - 1;
    (k as u32, side * side, 4 * k * k)
}

/// Buffers of one level for a batch size and image size.
struct LevelWs {
    h: usize,
    w: usize,
    x: DBuf<f32>,
    z1: DBuf<f32>,
    h1: DBuf<f32>,
    z2: DBuf<f32>,
    d2: DBuf<f32>,
    dz1: DBuf<f32>,
    g: DBuf<f32>,
    dens: DBuf<f32>,
    dims1: DBuf<u32>,
    dims2: DBuf<u32>,
}

/// Buffers of the expert field.
struct ExpertsWs {
    dc: DBuf<f32>,
    dims: DBuf<u32>,
}

/// The noise levels a batch is judged at, on the device: for every step of a schedule and every
/// image of the batch, the values the kernels read (per pyramid level s: ln σₛ and β(σ)/σₛ; per
/// expert filter k: its weight at σ and the noise variance σ²‖fₖ‖² it adds). Built once per
/// solve ([`GpuPrior::conditioning`]), so a step of the iteration only selects its row.
pub struct Conditioning {
    buf: DBuf<f32>,
    nb: usize,
    stride: usize,
    /// Per step, whether expert filter k has a non-zero weight for some image (else its
    /// launches are skipped, as the CPU skips a zero weight).
    experts_on: Vec<Vec<bool>>,
}

impl Conditioning {
    /// Images per step.
    pub fn batch(&self) -> usize {
        self.nb
    }
    /// Steps (noise levels) held.
    pub fn steps(&self) -> usize {
        self.experts_on.len()
    }
}

/// Device buffers for [`GpuPrior::energy_grad`] on `nb` images of `h`×`w`. The input goes in
/// [`PriorWorkspace::input`] (planar `[nb, 2, h, w]`); the gradient (same layout) and the energy
/// density `[nb, h, w]` come out in [`PriorWorkspace::grad`] and [`PriorWorkspace::density`].
pub struct PriorWorkspace {
    nb: usize,
    levels: Vec<LevelWs>,
    experts: Option<ExpertsWs>,
}

impl PriorWorkspace {
    /// The input images, planar `[nb, 2, h, w]`.
    pub fn input(&self) -> &DBuf<f32> {
        &self.levels[0].x
    }
    /// ∇ₓE, planar `[nb, 2, h, w]`.
    pub fn grad(&self) -> &DBuf<f32> {
        &self.levels[0].g
    }
    /// The energy density `[nb, h, w]` (coarse levels spread over the pixels they pool).
    pub fn density(&self) -> &DBuf<f32> {
        &self.levels[0].dens
    }
    /// Images per batch.
    pub fn batch(&self) -> usize {
        self.nb
    }
}

impl GpuPrior {
    /// Uploads the weights of `p`.
    pub fn new(gpu: &Gpu, p: &Pyramid) -> Self {
        let experts = p.experts.as_ref().map(|e| {
            let mut off = vec![0u32; e.len() * 8];
            let mut tw = vec![0.0f32; e.len() * 4];
            for (k, f) in e.filters.iter().enumerate() {
                for (t, &(dy, dx, wt)) in f.taps.iter().take(4).enumerate() {
                    off[2 * (k * 4 + t)] = dy as u32;
                    off[2 * (k * 4 + t) + 1] = dx as u32;
                    tw[k * 4 + t] = wt as f32;
                }
            }
            ExpertsDev {
                tap_off: gpu.upload(&off),
                tap_w: gpu.upload(&tw),
                log_pi: gpu.upload(&f32s(e.log_pi.iter())),
                var: gpu.upload(&f32s(e.var.iter())),
                shape: e
                    .filters
                    .iter()
                    .map(|f| (f.taps.len().min(4), f.scale, f.norm2()))
                    .collect(),
                host: e.clone(),
            }
        });
        GpuPrior {
            levels: p.levels.iter().map(|m| Level::new(gpu, m)).collect(),
            experts,
            conv: ConvKind::Gather,
        }
    }

    /// The same prior with its convolutions run as `conv` (the gather kernels are the
    /// baseline the bench compares the tiled ones against).
    pub fn with_conv(mut self, conv: ConvKind) -> Self {
        self.conv = conv;
        self
    }

    /// How its convolutions run.
    pub fn conv(&self) -> ConvKind {
        self.conv
    }

    /// Buffers for `nb` images of `h`×`w` (levels whose pooled image would be empty are
    /// skipped, as on the CPU).
    pub fn workspace(&self, gpu: &Gpu, nb: usize, h: usize, w: usize) -> PriorWorkspace {
        let mut dims = vec![(h, w)];
        while dims.len() < self.levels.len() {
            let (a, b) = dims[dims.len() - 1];
            if a / 2 == 0 || b / 2 == 0 {
                break;
            }
            dims.push((a / 2, b / 2));
        }
        let levels = dims
            .iter()
            .zip(&self.levels)
            .map(|(&(h, w), l)| {
                let hw = h * w;
                LevelWs {
                    h,
                    w,
                    x: gpu.zeros(nb * 2 * hw),
                    z1: gpu.zeros(nb * l.c1 * hw),
                    h1: gpu.zeros(nb * l.c1 * hw),
                    z2: gpu.zeros(nb * l.c2 * hw),
                    d2: gpu.zeros(nb * l.c2 * hw),
                    dz1: gpu.zeros(nb * l.c1 * hw),
                    g: gpu.zeros(nb * 2 * hw),
                    dens: gpu.zeros(nb * hw),
                    dims1: gpu.upload(&[2, l.c1, l.k1, h, w, nb].map(|v| v as u32)),
                    dims2: gpu.upload(&[l.c1, l.c2, l.k2, h, w, nb].map(|v| v as u32)),
                }
            })
            .collect();
        let experts = self.experts.as_ref().map(|e| ExpertsWs {
            dc: gpu.zeros(nb * 2 * h * w),
            dims: gpu.upload(&[h, w, nb, e.host.var.len()].map(|v| v as u32)),
        });
        PriorWorkspace {
            nb,
            levels,
            experts,
        }
    }

    /// f32 values of a [`PriorWorkspace`] per image of `h`×`w`: (all its buffers, the largest).
    pub fn floats_per_image(&self, h: usize, w: usize) -> (usize, usize) {
        let (mut hh, mut ww) = (h, w);
        let (mut total, mut largest) = (0, 0);
        for (s, l) in self.levels.iter().enumerate() {
            if s > 0 {
                if hh / 2 == 0 || ww / 2 == 0 {
                    break;
                }
                hh /= 2;
                ww /= 2;
            }
            let hw = hh * ww;
            // x, g (2 planes each), dens, z1, h1, dz1 (c1), z2, d2 (c2).
            total += (5 + 3 * l.c1 + 2 * l.c2) * hw;
            largest = largest.max(l.c1.max(l.c2) * hw);
        }
        if self.experts.is_some() {
            total += 2 * h * w;
        }
        (total, largest)
    }

    /// Floating-point operations of each convolution stage of [`GpuPrior::profile`] for `nb`
    /// images of `h`×`w` (2·cᵢ·cₒ·k² per pixel, summed over the pyramid's levels), under the
    /// stage names the profile uses for this prior's [`ConvKind`].
    pub fn conv_flops(&self, nb: usize, h: usize, w: usize) -> Vec<(&'static str, f64)> {
        let first = match self.conv {
            ConvKind::Gather => "conv 1",
            ConvKind::Tiled => "conv 1 + softplus",
        };
        let mut f = [0.0f64; 2];
        let (mut hh, mut ww) = (h, w);
        for (s, l) in self.levels.iter().enumerate() {
            if s > 0 {
                if hh / 2 == 0 || ww / 2 == 0 {
                    break;
                }
                hh /= 2;
                ww /= 2;
            }
            let px = (nb * hh * ww) as f64;
            f[0] += 2.0 * (2 * l.c1 * l.k1 * l.k1) as f64 * px;
            f[1] += 2.0 * (l.c1 * l.c2 * l.k2 * l.k2) as f64 * px;
        }
        vec![
            (first, f[0]),
            ("conv 2", f[1]),
            ("conv 2 adjoint (gated)", f[1]),
            ("conv 1 adjoint", f[0]),
        ]
    }

    /// Bytes [`GpuPrior::energy_grad`] must move through device memory with this kernel
    /// decomposition (every kernel reading its inputs once and writing its outputs once) for
    /// `nb` images of `h`×`w`: the numerator of the achieved bandwidth in `gpu-bench`.
    pub fn bytes_moved(&self, nb: usize, h: usize, w: usize) -> usize {
        let (mut hh, mut ww) = (h, w);
        let mut total = 0;
        for (s, l) in self.levels.iter().enumerate() {
            if s > 0 {
                if hh / 2 == 0 || ww / 2 == 0 {
                    break;
                }
                let fine = hh * ww;
                hh /= 2;
                ww /= 2;
                // pool2 (2 planes) and the adjoint pooling of gradient (2) and density (1).
                total += 2 * fine + 2 * hh * ww + 3 * hh * ww + 2 * 3 * fine;
            }
            let hw = hh * ww;
            let (c1, c2) = (l.c1, l.c2);
            let act = match self.conv {
                ConvKind::Gather => (2 + c1) * hw + 2 * c1 * hw, // conv1, then softplus
                ConvKind::Tiled => (2 + 2 * c1) * hw,            // conv1 writing z1 and h1
            };
            total += act
                + (c1 + c2) * hw // conv2
                + (2 * c2 + 1) * hw // head
                + (c2 + 2 * c1) * hw // adjoint 2 (gated)
                + (c1 + 2) * hw; // adjoint 1
        }
        4 * nb * total
    }

    /// Values per image in a [`Conditioning`] row.
    fn cond_stride(&self) -> usize {
        2 * self.levels.len() + 2 * self.experts.as_ref().map_or(0, |e| e.shape.len())
    }

    /// The conditioning row of one image at noise level σ (float32 as the kernels use it) and
    /// which expert filters have a non-zero weight.
    fn cond_row(&self, sigma: f32) -> (Vec<f32>, Vec<bool>) {
        let wts = self
            .experts
            .as_ref()
            .map(|e| e.host.weights_at(sigma as f64));
        // The network's weight β(σ) scales its head, hence its gradient and density.
        let beta = wts.as_ref().map_or(1.0, |w| w[w.len() - 1] as f32);
        let mut row = Vec::with_capacity(self.cond_stride());
        for s in 0..self.levels.len() {
            let sig = sigma / (1u32 << s) as f32;
            row.push(sig.ln());
            row.push(beta / sig);
        }
        let mut on = Vec::new();
        if let (Some(e), Some(w)) = (&self.experts, &wts) {
            row.extend(e.shape.iter().enumerate().map(|(k, _)| w[k] as f32));
            row.extend(
                e.shape
                    .iter()
                    .map(|&(_, _, norm2)| (sigma as f64 * sigma as f64 * norm2) as f32),
            );
            on = e
                .shape
                .iter()
                .enumerate()
                .map(|(k, _)| w[k] != 0.0)
                .collect();
        }
        (row, on)
    }

    /// Uploads the conditioning of a batch: `sigmas[step][b]` is image b's noise level at that
    /// step (every step the same number of images). One copy.
    pub fn conditioning(&self, gpu: &Gpu, sigmas: &[Vec<f32>]) -> Conditioning {
        let nb = sigmas.first().map_or(0, Vec::len);
        assert!(
            sigmas.iter().all(|s| s.len() == nb),
            "every step conditions the same batch"
        );
        let stride = self.cond_stride();
        let mut buf = Vec::with_capacity(sigmas.len() * nb * stride);
        let mut experts_on = Vec::with_capacity(sigmas.len());
        for step in sigmas {
            let mut on = vec![false; self.experts.as_ref().map_or(0, |e| e.shape.len())];
            for &sigma in step {
                let (row, o) = self.cond_row(sigma);
                buf.extend(row);
                on.iter_mut().zip(o).for_each(|(a, b)| *a |= b);
            }
            experts_on.push(on);
        }
        Conditioning {
            buf: gpu.upload(&buf),
            nb,
            stride,
            experts_on,
        }
    }

    /// ∇ₓE and the energy density of the images in `ws.input()`, image b at the noise level of
    /// row `step` of `cond` (one per image: a batch of slices each at its own σ).
    pub fn energy_grad(&self, gpu: &Gpu, ws: &PriorWorkspace, cond: &Conditioning, step: usize) {
        self.grad_marked(gpu, ws, cond, step, |_| {});
    }

    /// [`GpuPrior::energy_grad`] once, the device synchronised after each stage: seconds per
    /// stage (pooling, each convolution and its adjoint, the head, the expert field), summed
    /// over the pyramid's levels, in the order first run. For the bench's per-kernel table.
    pub fn profile(
        &self,
        gpu: &Gpu,
        ws: &PriorWorkspace,
        cond: &Conditioning,
        step: usize,
    ) -> Vec<(&'static str, f64)> {
        let mut out: Vec<(&'static str, f64)> = Vec::new();
        gpu.sync();
        let mut t = std::time::Instant::now();
        self.grad_marked(gpu, ws, cond, step, |name| {
            gpu.sync();
            let dt = t.elapsed().as_secs_f64();
            t = std::time::Instant::now();
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some(e) => e.1 += dt,
                None => out.push((name, dt)),
            }
        });
        out
    }

    /// The launches of [`GpuPrior::energy_grad`], `mark(stage)` called after each stage.
    fn grad_marked(
        &self,
        gpu: &Gpu,
        ws: &PriorWorkspace,
        cond: &Conditioning,
        step: usize,
        mut mark: impl FnMut(&'static str),
    ) {
        let nb = ws.nb;
        assert!(
            cond.nb == nb && step < cond.steps(),
            "conditioning for {} images × {} steps, asked for {nb} images at step {step}",
            cond.nb,
            cond.steps()
        );
        let n = ws.levels.len();
        let cl = gpu.client();
        let cs = cond.stride as u32;
        let base = (step * nb * cond.stride) as u32;
        for s in 1..n {
            let (f, c) = (&ws.levels[s - 1], &ws.levels[s]);
            let (cc, d) = grid(nb * 2 * c.h * c.w);
            kernels::pool2::launch(
                cl,
                cc,
                d,
                f.x.arg(),
                c.x.arg(),
                f.h as u32,
                f.w as u32,
                (nb * 2) as u32,
            );
        }
        mark("pooling");
        for (s, (lw, l)) in ws.levels.iter().zip(&self.levels).enumerate() {
            let hw = lw.h * lw.w;
            let (ln_sig, head_scale) = (base + 2 * s as u32, base + 2 * s as u32 + 1);
            match self.conv {
                ConvKind::Gather => {
                    // One thread per pixel and CONV_BLOCK channels.
                    let blocks = |ch: usize| nb * ch.div_ceil(kernels::CONV_BLOCK) * hw;
                    let (c, d) = grid(nb * l.c1 * hw);
                    let (cb1, db1) = grid(blocks(l.c1));
                    kernels::conv_same::launch(
                        cl,
                        cb1,
                        db1,
                        lw.x.arg(),
                        l.w1.arg(),
                        l.b1.arg(),
                        l.a1.arg(),
                        lw.z1.arg(),
                        lw.dims1.arg(),
                        cond.buf.arg(),
                        ln_sig,
                        cs,
                    );
                    mark("conv 1");
                    kernels::softplus::launch(
                        cl,
                        c,
                        d,
                        lw.z1.arg(),
                        lw.h1.arg(),
                        (nb * l.c1 * hw) as u32,
                    );
                    mark("softplus");
                    let (c2, d2) = grid(blocks(l.c2));
                    kernels::conv_same::launch(
                        cl,
                        c2,
                        d2,
                        lw.h1.arg(),
                        l.w2.arg(),
                        l.b2.arg(),
                        l.zero2.arg(),
                        lw.z2.arg(),
                        lw.dims2.arg(),
                        cond.buf.arg(),
                        ln_sig, // multiplies the zero coefficients of the second layer
                        cs,
                    );
                    mark("conv 2");
                }
                ConvKind::Tiled => {
                    // z₁ = W₁∗x + b₁ + a₁ ln σ with h₁ = softplus(z₁) written beside it, then
                    // z₂ = W₂∗h₁ + b₂ (no activation).
                    for (inp, wt, bias, coef, out, act, dims, ch, k, fused, name) in [
                        (
                            &lw.x,
                            &l.w1,
                            &l.b1,
                            &l.a1,
                            &lw.z1,
                            &lw.h1,
                            &lw.dims1,
                            l.c1,
                            l.k1,
                            true,
                            "conv 1 + softplus",
                        ),
                        (
                            &lw.h1, &l.w2, &l.b2, &l.zero2, &lw.z2, &l.zero2, &lw.dims2, l.c2,
                            l.k2, false, "conv 2",
                        ),
                    ] {
                        let (c, d) = tiled_grid(lw.h, lw.w, ch, nb);
                        let (k, sin, sw) = tiled_sizes(k);
                        kernels::conv_same_tiled::launch(
                            cl,
                            c,
                            d,
                            inp.arg(),
                            wt.arg(),
                            bias.arg(),
                            coef.arg(),
                            out.arg(),
                            act.arg(),
                            dims.arg(),
                            cond.buf.arg(),
                            ln_sig,
                            cs,
                            k,
                            TILE,
                            sin,
                            sw,
                            fused,
                        );
                        mark(name);
                    }
                }
            }
            let (cp, dp) = grid(nb * hw);
            kernels::head::launch(
                cl,
                cp,
                dp,
                lw.z2.arg(),
                l.alpha.arg(),
                lw.d2.arg(),
                lw.dens.arg(),
                l.c2 as u32,
                hw as u32,
                nb as u32,
                cond.buf.arg(),
                head_scale,
                cs,
            );
            mark("head");
            // The adjoints: ∂e/∂z₂ back through W₂ (gated by sigmoid(z₁)), then through W₁.
            for (grad, wt, out, dims, gate, ch, k, name) in [
                (
                    &lw.d2,
                    &l.w2,
                    &lw.dz1,
                    &lw.dims2,
                    1u32,
                    l.c1,
                    l.k2,
                    "conv 2 adjoint (gated)",
                ),
                (
                    &lw.dz1,
                    &l.w1,
                    &lw.g,
                    &lw.dims1,
                    0,
                    2,
                    l.k1,
                    "conv 1 adjoint",
                ),
            ] {
                match self.conv {
                    ConvKind::Gather => {
                        let (c, d) = grid(nb * ch.div_ceil(kernels::CONV_BLOCK) * hw);
                        kernels::conv_adjoint::launch(
                            cl,
                            c,
                            d,
                            grad.arg(),
                            wt.arg(),
                            lw.z1.arg(),
                            out.arg(),
                            dims.arg(),
                            gate,
                        );
                    }
                    ConvKind::Tiled => {
                        let (c, d) = tiled_grid(lw.h, lw.w, ch, nb);
                        let (k, sin, sw) = tiled_sizes(k);
                        kernels::conv_adjoint_tiled::launch(
                            cl,
                            c,
                            d,
                            grad.arg(),
                            wt.arg(),
                            lw.z1.arg(),
                            out.arg(),
                            dims.arg(),
                            gate,
                            k,
                            TILE,
                            sin,
                            sw,
                        );
                    }
                }
                mark(name);
            }
        }
        for s in (1..n).rev() {
            let (f, c) = (&ws.levels[s - 1], &ws.levels[s]);
            for (coarse, fine, planes) in [(&c.g, &f.g, nb * 2), (&c.dens, &f.dens, nb)] {
                let (cc, d) = grid(planes * f.h * f.w);
                kernels::pool2_adjoint_add::launch(
                    cl,
                    cc,
                    d,
                    coarse.arg(),
                    fine.arg(),
                    f.h as u32,
                    f.w as u32,
                    planes as u32,
                );
            }
        }
        mark("pooling adjoint");
        if let (Some(e), Some(ew)) = (&self.experts, &ws.experts) {
            let l0 = &ws.levels[0];
            let (cp, dp) = grid(nb * l0.h * l0.w);
            let nk = e.shape.len() as u32;
            let first = base + 2 * self.levels.len() as u32;
            for (k, &(ntaps, scale, _)) in e.shape.iter().enumerate() {
                if !cond.experts_on[step][k] {
                    continue; // zero weight at this σ for every image: no energy, no gradient
                }
                kernels::expert_response::launch(
                    cl,
                    cp.clone(),
                    dp,
                    l0.x.arg(),
                    e.tap_off.arg(),
                    e.tap_w.arg(),
                    e.log_pi.arg(),
                    e.var.arg(),
                    ew.dc.arg(),
                    l0.dens.arg(),
                    ew.dims.arg(),
                    k as u32,
                    ntaps as u32,
                    scale as u32,
                    1.0 / (scale * scale) as f32,
                    cond.buf.arg(),
                    first + nk + k as u32,
                    first + k as u32,
                    cs,
                );
                kernels::expert_adjoint::launch(
                    cl,
                    cp.clone(),
                    dp,
                    ew.dc.arg(),
                    e.tap_off.arg(),
                    e.tap_w.arg(),
                    l0.g.arg(),
                    ew.dims.arg(),
                    k as u32,
                    ntaps as u32,
                    scale as u32,
                    1.0 / (scale * scale) as f32,
                );
            }
            mark("expert field");
        }
    }
}
