//! The production CPU path in float32: im2col + GEMM (faer) for both convolutions of the energy
//! and of its image gradient, in bands of rows split into [`BAND_GROUPS`] groups that run in
//! parallel, with every buffer planned once in a [`Workspace`] so the hot call allocates
//! nothing. Checked against the float64 reference in `model`.

use crate::model::EnergyModel;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef};

/// Float32 weights laid out for GEMM: W₁ as `[C₁, 2·K₁²]`, W₂ as `[C₂, C₁·K₂²]`.
#[derive(Clone, Debug)]
pub struct FastModel {
    c1: usize,
    k1: usize,
    c2: usize,
    k2: usize,
    w1: Vec<f32>,
    b1: Vec<f32>,
    a1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
    alpha: Vec<f32>,
}

/// Output pixels per band of the banded convolutions (the im2col matrix of a band of the
/// shipped model's second layer is 288 × 2048 float32 = 2.4 MB).
pub const BAND_PIXELS: usize = 2048;

/// The bands of an image are split into this many contiguous groups that run in parallel
/// (rayon), each with its own scratch. Fixed — not the thread count — so that every result is
/// the same on any number of threads (the backward pass sums the groups' outputs in order).
pub const BAND_GROUPS: usize = 2;

/// Scratch of one band group: the im2col matrix and GEMM output of its current band, and (for
/// the backward pass, whose col2im spills into the neighbouring bands' rows) its own output.
#[derive(Clone, Debug)]
struct GroupScratch {
    col: Vec<f32>,
    band_out: Vec<f32>,
    acc: Vec<f32>,
}

/// Buffers for one image size, reused across calls.
#[derive(Clone, Debug)]
pub struct Workspace {
    h: usize,
    w: usize,
    band: usize,
    z1: Vec<f32>,
    s1: Vec<f32>,
    z2: Vec<f32>,
    /// Band-major GEMM outputs of a forward pass before they are scattered to channel planes.
    staged: Vec<f32>,
    groups: Vec<GroupScratch>,
}

/// The row bands of one image for the banded convolutions.
struct BandGeometry<'a> {
    h: usize,
    w: usize,
    bands: &'a [(usize, usize)],
}

impl BandGeometry<'_> {
    /// The bands split into [`BAND_GROUPS`] contiguous groups (some empty for small images).
    fn groups(&self) -> [&[(usize, usize)]; BAND_GROUPS] {
        let n = self.bands.len();
        let per = n.div_ceil(BAND_GROUPS).max(1);
        std::array::from_fn(|i| &self.bands[(i * per).min(n)..((i + 1) * per).min(n)])
    }

    /// out `[cout, h·w]` = W · im2col(inp `[cin, h, w]`), band by band, the band groups in
    /// parallel (their GEMM outputs go band-major to `staged`, then to the channel planes).
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        wt: MatRef<'_, f32>,
        cin: usize,
        k: usize,
        inp: &[f32],
        staged: &mut [f32],
        scratch: &mut [GroupScratch],
        out: &mut [f32],
    ) {
        use rayon::prelude::*;
        let (h, w, hw) = (self.h, self.w, self.h * self.w);
        let (cout, r) = (wt.nrows(), wt.ncols());
        let groups = self.groups();
        // Each group's GEMM outputs go to its own part of `staged`, band after band.
        let mut parts: [&mut [f32]; BAND_GROUPS] = Default::default();
        let mut rest = &mut staged[..cout * hw];
        for (part, grp) in parts.iter_mut().zip(&groups) {
            let rows: usize = grp.iter().map(|&(y0, y1)| y1 - y0).sum();
            let (a, b) = std::mem::take(&mut rest).split_at_mut(cout * rows * w);
            *part = a;
            rest = b;
        }
        scratch
            .par_iter_mut()
            .zip(parts)
            .zip(groups)
            .for_each(|((sc, part), grp)| {
                let mut off = 0;
                for &(y0, y1) in grp {
                    let bw = (y1 - y0) * w;
                    im2col_rows(inp, cin, h, w, k, y0, y1, &mut sc.col);
                    matmul(
                        MatMut::from_row_major_slice_mut(&mut part[off..off + cout * bw], cout, bw),
                        Accum::Replace,
                        wt,
                        MatRef::from_row_major_slice(&sc.col[..r * bw], r, bw),
                        1.0,
                        faer::get_global_parallelism(),
                    );
                    off += cout * bw;
                }
            });
        let mut off = 0;
        for &(y0, y1) in self.bands {
            let bw = (y1 - y0) * w;
            scatter_band(&staged[off..], out, cout, hw, y0 * w, bw);
            off += cout * bw;
        }
    }

    /// out `[cin, h, w]` = col2im(Wᵀ · g) for g `[cout, h·w]` (the adjoint of
    /// [`BandGeometry::forward`]), band by band, the band groups in parallel into their own
    /// outputs, summed in group order; `out` is overwritten.
    fn backward(
        &self,
        wt: MatRef<'_, f32>,
        cin: usize,
        k: usize,
        g: &[f32],
        scratch: &mut [GroupScratch],
        out: &mut [f32],
    ) {
        use rayon::prelude::*;
        let (h, w, hw) = (self.h, self.w, self.h * self.w);
        let (cout, r) = (wt.nrows(), wt.ncols());
        scratch
            .par_iter_mut()
            .zip(self.groups())
            .for_each(|(sc, grp)| {
                sc.acc[..cin * hw].fill(0.0);
                for &(y0, y1) in grp {
                    let bw = (y1 - y0) * w;
                    gather_band(g, &mut sc.band_out, cout, hw, y0 * w, bw);
                    matmul(
                        MatMut::from_row_major_slice_mut(&mut sc.col[..r * bw], r, bw),
                        Accum::Replace,
                        wt.transpose(),
                        MatRef::from_row_major_slice(&sc.band_out[..cout * bw], cout, bw),
                        1.0,
                        faer::get_global_parallelism(),
                    );
                    col2im_rows_add(&sc.col, cin, h, w, k, y0, y1, &mut sc.acc);
                }
            });
        out[..cin * hw].copy_from_slice(&scratch[0].acc[..cin * hw]);
        for sc in &scratch[1..] {
            for (o, a) in out[..cin * hw].iter_mut().zip(&sc.acc[..cin * hw]) {
                *o += a;
            }
        }
    }
}

/// Copies a contiguous `[c, bw]` band into columns off..off+bw of a `[c, hw]` matrix. (Writing
/// the GEMM straight into the strided band crashed faer 0.24.4's f32 microkernel, so bands go
/// through a contiguous buffer.)
fn scatter_band(band: &[f32], full: &mut [f32], c: usize, hw: usize, off: usize, bw: usize) {
    for i in 0..c {
        full[i * hw + off..i * hw + off + bw].copy_from_slice(&band[i * bw..(i + 1) * bw]);
    }
}

/// Copies columns off..off+bw of a `[c, hw]` matrix into a contiguous `[c, bw]` band.
fn gather_band(full: &[f32], band: &mut [f32], c: usize, hw: usize, off: usize, bw: usize) {
    for i in 0..c {
        band[i * bw..(i + 1) * bw].copy_from_slice(&full[i * hw + off..i * hw + off + bw]);
    }
}

/// e^x for x ≤ 0, rounded to f32: computed in f64 — x = n ln 2 + r with |r| ≤ ln 2 / 2, e^r by
/// its degree-9 Taylor polynomial (truncation < 3e-11, far below f32's 6e-8 half-ulp), 2ⁿ by the
/// exponent bits — so the f32 result is correctly rounded but for rare ties, like glibc's
/// `expf`. Inputs below −1000 are clamped there (the f32 result is 0 either way). Branch-free.
///
/// Written out instead of calling libm's `expf`/`log1pf` because those run 10× slower after any
/// AVX-512 code (the GEMM kernels) on Intel CPUs — measured 308 vs 28 ns per softplus on a Xeon
/// with AVX-512, the prior's gradient 4× slower than on the AMD machine it was tuned on — while
/// plain arithmetic is unaffected. Rounded to f32 from an f64 value accurate to ~1e-10, the
/// results agree with libm's to within one ulp without bias. Training ([`softplus_sigmoid`])
/// uses it, so that `basin train` repeats the run that produced the shipped weights; inference
/// uses the vectorised [`softplus_sigmoid_lanes`] (what once looked like this function's
/// accuracy mattering for the card's slice statistics was the float32 energy sum).
#[inline]
fn exp_nonpositive(x: f32) -> f32 {
    exp_nonpositive_f64(x as f64) as f32
}

/// e^x for x ≤ 0 in f64 (relative error ~1e-10; see [`exp_nonpositive`]).
#[inline]
pub(crate) fn exp_nonpositive_f64(x: f64) -> f64 {
    // Round to nearest by the 1.5·2⁵² trick (no libm call: f64::round is one on baseline x86-64).
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let x = x.max(-1000.0);
    let n = (x * std::f64::consts::LOG2_E + SHIFTER) - SHIFTER;
    let r = x - n * std::f64::consts::LN_2;
    let mut p = 1.0 / 362_880.0; // 1/9!
    for c in INV_FACT.iter().rev() {
        p = p * r + c;
    }
    // 2ⁿ as two factors so that n down to −1443 stays representable.
    let ni = n as i64;
    let half = ni >> 1;
    let two = |m: i64| f64::from_bits(((m + 1023) as u64) << 52);
    p * two(half) * two(ni - half)
}

/// e^x for x ≤ 0 in f32 with a relative error below 2e-7 (x below −87 gives 0): for loops
/// the compiler can vectorise — branch-free, no conversions wider than 32 bits. x = n ln 2 + r,
/// |r| ≤ ln 2 / 2, e^r by its degree-7 Taylor polynomial, 2ⁿ by the exponent bits.
#[inline]
pub(crate) fn exp_nonpositive_f32(x: f32) -> f32 {
    const SHIFTER: f32 = 12_582_912.0; // 1.5·2²³
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E + SHIFTER) - SHIFTER;
    let r = (x - n * 0.693_145_75) - n * 1.428_606_8e-6;
    let mut p = 1.0f32 / 5040.0;
    for c in [
        1.0f32 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// ln x for finite x > 0 in f64 (relative error ~1e-10): x = m·2ᵉ with m ∈ [√½, √2), ln m =
/// 2 atanh(u), u = (m − 1)/(m + 1) ∈ [−0.172, 0.172], by the series of [`log1p_unit`]. Written
/// out for the reason given at [`exp_nonpositive`]; branch-free, with the exponent read as a
/// float by the 2⁵² trick (AVX2 has no 64-bit integer-to-float conversion), so that a loop over
/// it vectorises.
#[inline(always)]
pub(crate) fn ln_positive_f64(x: f64) -> f64 {
    const TWO52: f64 = 4_503_599_627_370_496.0;
    let bits = x.to_bits();
    let biased = f64::from_bits(0x4330_0000_0000_0000 | ((bits >> 52) & 0x7ff)) - TWO52;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = biased - 1023.0 + if big { 1.0 } else { 0.0 };
    let u = (m - 1.0) / (m + 1.0);
    let u2 = u * u;
    let mut s = 1.0 / 19.0;
    for c in ODD_RECIPROCALS {
        s = c + u2 * s;
    }
    2.0 * u * s + e * std::f64::consts::LN_2
}

/// 1/k! for k = 0..=8.
const INV_FACT: [f64; 9] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40_320.0,
];

/// ln(1 + e) for e ∈ [0, 1], rounded to f32: 2 atanh(u) with u = e/(2 + e) ∈ [0, 1/3] in f64,
/// its odd series to u¹⁹ (truncation < 6e-11 relative).
#[inline]
fn log1p_unit(e: f32) -> f32 {
    let e = e as f64;
    let u = e / (2.0 + e);
    let u2 = u * u;
    let mut s = 1.0 / 19.0;
    for c in ODD_RECIPROCALS {
        s = c + u2 * s;
    }
    (2.0 * u * s) as f32
}

/// 1/17, 1/15, …, 1/3, 1 (the atanh series of [`log1p_unit`], highest term first).
const ODD_RECIPROCALS: [f64; 9] = [
    1.0 / 17.0,
    1.0 / 15.0,
    1.0 / 13.0,
    1.0 / 11.0,
    1.0 / 9.0,
    1.0 / 7.0,
    1.0 / 5.0,
    1.0 / 3.0,
    1.0,
];

/// softplus(z) and sigmoid(z) from one exponential.
fn softplus_sigmoid(z: f32) -> (f32, f32) {
    let e = exp_nonpositive(-z.abs());
    let sp = z.max(0.0) + log1p_unit(e);
    let s = if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (sp, s)
}

/// softplus(t) and sigmoid(t) in float32 throughout — e^−|t| by [`exp_nonpositive_f32`]
/// (relative error < 2e-7), ln(1 + e) = 2 atanh(e / (2 + e)) by its odd series to u¹³
/// (truncation < 2e-8 for e ≤ 1), selects instead of branches — so that a loop over it
/// vectorises. Within 1e-6 of float64 (`tests::planes_match_f64`). For t below −87 the results
/// are e^−87 ≈ 2e-38 instead of 0.
#[inline(always)]
fn softplus_sigmoid_lanes(t: f32) -> (f32, f32) {
    let e = exp_nonpositive_f32(-t.abs());
    let u = e / (2.0 + e);
    let u2 = u * u;
    let mut s = 1.0f32 / 13.0;
    for c in [
        1.0f32 / 11.0,
        1.0 / 9.0,
        1.0 / 7.0,
        1.0 / 5.0,
        1.0 / 3.0,
        1.0,
    ] {
        s = c + u2 * s;
    }
    let r = 1.0 / (1.0 + e);
    let sg = if t >= 0.0 { r } else { e * r };
    (t.max(0.0) + 2.0 * u * s, sg)
}

/// The first layer's activation over one channel plane: z ← softplus(z + shift), s ←
/// sigmoid(z + shift). Compiled for the widest SIMD the CPU has (pulp's runtime dispatch; the
/// results are the same on every instruction set, as the arithmetic is element-wise and never
/// fused).
fn softplus_sigmoid_planes(z: &mut [f32], s: &mut [f32], shift: f32) {
    pulp::Arch::new().dispatch(
        #[inline(always)]
        || {
            for (zv, sv) in z.iter_mut().zip(s.iter_mut()) {
                let (sp, sg) = softplus_sigmoid_lanes(*zv + shift);
                *zv = sp;
                *sv = sg;
            }
        },
    )
}

/// Lanes of the output layer's energy sum (a fixed number, so the sum's order — and its value —
/// does not depend on the instruction set).
const SUM_LANES: usize = 16;

/// The output layer over one channel plane: returns Σ a·softplus(z + b) and leaves
/// z ← a·sigmoid(z + b) (∂E/∂z); adds a·softplus(z + b) into `density` when given. The sum runs
/// in [`SUM_LANES`] interleaved float64 partial sums added pairwise at the end: the energy is a
/// sum of ~10⁶ positive terms whose slice scores are differences of ~2e-3 of it (`validate`),
/// which float32 partial sums (rounding ~1e-5 of the total) would swamp.
fn output_energy_plane(z: &mut [f32], a: f32, b: f32, density: Option<&mut [f32]>) -> f64 {
    let mut acc = [0.0f64; SUM_LANES];
    pulp::Arch::new().dispatch(
        #[inline(always)]
        || match density {
            None => {
                let mut chunks = z.chunks_exact_mut(SUM_LANES);
                for ch in &mut chunks {
                    for (zv, a_l) in ch.iter_mut().zip(acc.iter_mut()) {
                        let (sp, sg) = softplus_sigmoid_lanes(*zv + b);
                        *a_l += (a * sp) as f64;
                        *zv = a * sg;
                    }
                }
                for (zv, a_l) in chunks.into_remainder().iter_mut().zip(acc.iter_mut()) {
                    let (sp, sg) = softplus_sigmoid_lanes(*zv + b);
                    *a_l += (a * sp) as f64;
                    *zv = a * sg;
                }
            }
            Some(d) => {
                for (p, (zv, dv)) in z.iter_mut().zip(d.iter_mut()).enumerate() {
                    let (sp, sg) = softplus_sigmoid_lanes(*zv + b);
                    let e = a * sp;
                    acc[p % SUM_LANES] += e as f64;
                    *dv += e;
                    *zv = a * sg;
                }
            }
        },
    );
    let mut n = SUM_LANES;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            acc[i] += acc[i + n];
        }
    }
    acc[0]
}

/// col[(i·K + dy)·K + dx, y·W + x] = inp[i, y + dy − r, x + dx − r] (zero outside).
fn im2col(inp: &[f32], c: usize, h: usize, w: usize, k: usize, col: &mut [f32]) {
    im2col_rows(inp, c, h, w, k, 0, h, col);
}

/// [`im2col`] for the output rows y0..y1 only: col is `[c·K², (y1 − y0)·W]`.
#[allow(clippy::too_many_arguments)]
fn im2col_rows(
    inp: &[f32],
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    y0: usize,
    y1: usize,
    col: &mut [f32],
) {
    let r = (k / 2) as isize;
    let hw = h * w;
    let bw = (y1 - y0) * w;
    for i in 0..c {
        for dy in 0..k {
            for dx in 0..k {
                let row = &mut col[((i * k + dy) * k + dx) * bw..][..bw];
                let off = dx as isize - r;
                // Columns x with 0 ≤ x + off < w read the source; the rest are zero.
                let lo = (-off).max(0) as usize;
                let hi = (w as isize - off).min(w as isize).max(0) as usize;
                for y in y0..y1 {
                    let yy = y as isize + dy as isize - r;
                    let dst = &mut row[(y - y0) * w..(y - y0 + 1) * w];
                    if yy < 0 || yy >= h as isize || lo >= hi {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &inp[i * hw + yy as usize * w..][..w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    let s0 = (lo as isize + off) as usize;
                    dst[lo..hi].copy_from_slice(&src[s0..s0 + (hi - lo)]);
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: out[i, yy, xx] = Σ col[(i, dy, dx), p] over the positions p that
/// read (yy, xx).
fn col2im(col: &[f32], c: usize, h: usize, w: usize, k: usize, out: &mut [f32]) {
    out[..c * h * w].fill(0.0);
    col2im_rows_add(col, c, h, w, k, 0, h, out);
}

/// Adds the adjoint of [`im2col_rows`] (output rows y0..y1) into `out` `[c, h, w]`.
#[allow(clippy::too_many_arguments)]
fn col2im_rows_add(
    col: &[f32],
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    y0: usize,
    y1: usize,
    out: &mut [f32],
) {
    let r = (k / 2) as isize;
    let hw = h * w;
    let bw = (y1 - y0) * w;
    for i in 0..c {
        for dy in 0..k {
            for dx in 0..k {
                let row = &col[((i * k + dy) * k + dx) * bw..][..bw];
                let off = dx as isize - r;
                let lo = (-off).max(0) as usize;
                let hi = (w as isize - off).min(w as isize).max(0) as usize;
                if lo >= hi {
                    continue;
                }
                for y in y0..y1 {
                    let yy = y as isize + dy as isize - r;
                    if yy < 0 || yy >= h as isize {
                        continue;
                    }
                    let s0 = (lo as isize + off) as usize;
                    let dst = &mut out[i * hw + yy as usize * w + s0..][..hi - lo];
                    let src = &row[(y - y0) * w + lo..(y - y0) * w + hi];
                    for (d, v) in dst.iter_mut().zip(src) {
                        *d += v;
                    }
                }
            }
        }
    }
}

impl FastModel {
    /// Converts reference weights to the float32 GEMM layout.
    pub fn new(m: &EnergyModel) -> Self {
        let (c1, _, k1, _) = m.w1.dim();
        let (c2, _, k2, _) = m.w2.dim();
        let f = |v: &mut dyn Iterator<Item = &f64>| v.map(|&x| x as f32).collect::<Vec<f32>>();
        FastModel {
            c1,
            k1,
            c2,
            k2,
            w1: f(&mut m.w1.iter()),
            b1: f(&mut m.b1.iter()),
            a1: f(&mut m.a1.iter()),
            w2: f(&mut m.w2.iter()),
            b2: f(&mut m.b2.iter()),
            alpha: f(&mut m.alpha.iter()),
        }
    }

    /// Buffers for images of `h`×`w`.
    pub fn workspace(&self, h: usize, w: usize) -> Workspace {
        let hw = h * w;
        let band = (BAND_PIXELS / w.max(1)).clamp(1, h.max(1));
        let bw = band * w;
        let group = GroupScratch {
            col: vec![0.0; (2 * self.k1 * self.k1).max(self.c1 * self.k2 * self.k2) * bw],
            band_out: vec![0.0; self.c1.max(self.c2) * bw],
            acc: vec![0.0; self.c1.max(2) * hw],
        };
        Workspace {
            h,
            w,
            band,
            z1: vec![0.0; self.c1 * hw],
            s1: vec![0.0; self.c1 * hw],
            z2: vec![0.0; self.c2 * hw],
            staged: vec![0.0; self.c1.max(self.c2) * hw],
            groups: vec![group; BAND_GROUPS],
        }
    }

    /// Multiply-accumulates of one energy + gradient evaluation per pixel (four GEMMs).
    pub fn macs_per_pixel(&self) -> usize {
        2 * (self.c1 * 2 * self.k1 * self.k1 + self.c2 * self.c1 * self.k2 * self.k2)
    }

    /// Energy of `x` (`[2, h, w]` row-major: real plane, then imaginary plane) at σ; writes
    /// ∇ₓE into `grad` (same layout) and, when given, the energy density into `density` `[h, w]`.
    ///
    /// Each convolution runs over bands of rows (about [`BAND_PIXELS`] output pixels) so that
    /// the im2col matrix of a band stays in cache between its construction and its GEMM.
    pub fn energy_grad(
        &self,
        ws: &mut Workspace,
        x: &[f32],
        sigma: f32,
        grad: &mut [f32],
        density: Option<&mut [f32]>,
    ) -> f64 {
        let (h, w) = (ws.h, ws.w);
        let hw = h * w;
        assert_eq!(x.len(), 2 * hw, "energy_grad: x must be [2, {h}, {w}]");
        assert_eq!(
            grad.len(),
            2 * hw,
            "energy_grad: grad must be [2, {h}, {w}]"
        );
        let (r1, r2) = (2 * self.k1 * self.k1, self.c1 * self.k2 * self.k2);
        let bands: Vec<(usize, usize)> = (0..h)
            .step_by(ws.band)
            .map(|y0| (y0, (y0 + ws.band).min(h)))
            .collect();
        let w1 = MatRef::from_row_major_slice(&self.w1, self.c1, r1);
        let w2 = MatRef::from_row_major_slice(&self.w2, self.c2, r2);
        // Layer 1: z1 = W1 · im2col(x), band by band.
        let g = BandGeometry {
            h,
            w,
            bands: &bands,
        };
        g.forward(
            w1,
            2,
            self.k1,
            x,
            &mut ws.staged,
            &mut ws.groups,
            &mut ws.z1,
        );
        let ls = sigma.ln();
        {
            use rayon::prelude::*;
            // Channels in parallel (element-wise: the same result on any number of threads).
            ws.z1[..self.c1 * hw]
                .par_chunks_mut(hw)
                .zip(ws.s1[..self.c1 * hw].par_chunks_mut(hw))
                .enumerate()
                .for_each(|(c, (z, s))| {
                    // z1 now holds h1 = softplus(z1 + shift), s1 its sigmoid.
                    softplus_sigmoid_planes(z, s, self.b1[c] + self.a1[c] * ls);
                });
        }
        // Layer 2: z2 = W2 · im2col(h1).
        g.forward(
            w2,
            self.c1,
            self.k2,
            &ws.z1,
            &mut ws.staged,
            &mut ws.groups,
            &mut ws.z2,
        );
        // Output layer, channels in parallel: each channel's energy is summed over its pixels in
        // order and the channels' sums are added in channel order, so the result does not
        // depend on the number of threads. The density (scoring only) adds across channels per
        // pixel and stays serial.
        let channel = |k: usize, z: &mut [f32], d: Option<&mut [f32]>| -> f64 {
            // z2 now holds ∂E/∂z2.
            output_energy_plane(z, self.alpha[k] / sigma, self.b2[k], d)
        };
        let z2 = &mut ws.z2[..self.c2 * hw];
        let energy: f64 = match density {
            Some(d) => {
                d[..hw].fill(0.0);
                z2.chunks_mut(hw)
                    .enumerate()
                    .map(|(k, z)| channel(k, z, Some(&mut d[..hw])))
                    .sum()
            }
            None => {
                use rayon::prelude::*;
                let per: Vec<f64> = z2
                    .par_chunks_mut(hw)
                    .enumerate()
                    .map(|(k, z)| channel(k, z, None))
                    .collect();
                per.iter().sum()
            }
        };
        // Backward: ∂E/∂h1 = col2im(W2ᵀ · δ2), ∂E/∂z1 = ∂E/∂h1 ⊙ s(z1), ∇ₓE = col2im(W1ᵀ · δ1).
        // z1 (h1 is no longer needed) accumulates ∂E/∂h1.
        g.backward(w2, self.c1, self.k2, &ws.z2, &mut ws.groups, &mut ws.z1);
        {
            use rayon::prelude::*;
            ws.z1
                .par_chunks_mut(hw)
                .zip(ws.s1.par_chunks(hw))
                .for_each(|(d, s)| {
                    for (d, s) in d.iter_mut().zip(s) {
                        *d *= s;
                    }
                });
        }
        g.backward(w1, 2, self.k1, &ws.z1, &mut ws.groups, grad);
        energy
    }
}

/// dst (m×n) ← or += a (m×k) · b (k×n), all row-major slices; `bt`: b is given as its
/// transpose (n×k, row-major).
#[allow(clippy::too_many_arguments)]
fn gemm(
    dst: &mut [f32],
    add: bool,
    a: &[f32],
    at: bool,
    b: &[f32],
    bt: bool,
    m: usize,
    k: usize,
    n: usize,
) {
    let am = if at {
        MatRef::from_row_major_slice(a, k, m).transpose()
    } else {
        MatRef::from_row_major_slice(a, m, k)
    };
    let bm = if bt {
        MatRef::from_row_major_slice(b, n, k).transpose()
    } else {
        MatRef::from_row_major_slice(b, k, n)
    };
    matmul(
        MatMut::from_row_major_slice_mut(&mut dst[..m * n], m, n),
        if add { Accum::Add } else { Accum::Replace },
        am,
        bm,
        1.0,
        faer::get_global_parallelism(),
    );
}

/// Buffers of one training evaluation (forward, backward, tangent and reverse passes) for one
/// image size, reused across calls.
#[derive(Clone, Debug)]
pub struct TrainWorkspace {
    h: usize,
    w: usize,
    col1x: Vec<f32>,
    col1v: Vec<f32>,
    tmp1: Vec<f32>,
    h1: Vec<f32>,
    s1: Vec<f32>,
    zd1: Vec<f32>,
    gh1: Vec<f32>,
    dz1: Vec<f32>,
    gz1: Vec<f32>,
    col2h: Vec<f32>,
    col2hd: Vec<f32>,
    tmp2: Vec<f32>,
    s2: Vec<f32>,
    d2: Vec<f32>,
    zd2: Vec<f32>,
    gz2: Vec<f32>,
    gw1: Vec<f32>,
    gw2: Vec<f32>,
}

impl FastModel {
    /// Number of parameters (the length of [`EnergyModel::params`]).
    pub fn num_params(&self) -> usize {
        self.w1.len() + 2 * self.c1 + self.w2.len() + 2 * self.c2
    }

    /// Training buffers for images of `h`×`w`.
    pub fn train_workspace(&self, h: usize, w: usize) -> TrainWorkspace {
        let hw = h * w;
        let (r1, r2) = (2 * self.k1 * self.k1, self.c1 * self.k2 * self.k2);
        let v = |n: usize| vec![0.0f32; n];
        TrainWorkspace {
            h,
            w,
            col1x: v(r1 * hw),
            col1v: v(r1 * hw),
            tmp1: v(r1 * hw),
            h1: v(self.c1 * hw),
            s1: v(self.c1 * hw),
            zd1: v(self.c1 * hw),
            gh1: v(self.c1 * hw),
            dz1: v(self.c1 * hw),
            gz1: v(self.c1 * hw),
            col2h: v(r2 * hw),
            col2hd: v(r2 * hw),
            tmp2: v(r2 * hw),
            s2: v(self.c2 * hw),
            d2: v(self.c2 * hw),
            zd2: v(self.c2 * hw),
            gz2: v(self.c2 * hw),
            gw1: v(self.w1.len()),
            gw2: v(self.w2.len()),
        }
    }

    /// Training pass 1: ∇ₓE(x̃; σ) into `grad`, keeping in `ws` what pass 2 needs.
    pub fn train_grad_x(&self, ws: &mut TrainWorkspace, xt: &[f32], sigma: f32, grad: &mut [f32]) {
        let (h, w) = (ws.h, ws.w);
        let hw = h * w;
        let (r1, r2) = (2 * self.k1 * self.k1, self.c1 * self.k2 * self.k2);
        im2col(xt, 2, h, w, self.k1, &mut ws.col1x);
        gemm(
            &mut ws.h1, false, &self.w1, false, &ws.col1x, false, self.c1, r1, hw,
        );
        let ls = sigma.ln();
        for c in 0..self.c1 {
            let shift = self.b1[c] + self.a1[c] * ls;
            let z = &mut ws.h1[c * hw..(c + 1) * hw];
            let s = &mut ws.s1[c * hw..(c + 1) * hw];
            for (zv, sv) in z.iter_mut().zip(s.iter_mut()) {
                let (sp, sg) = softplus_sigmoid(*zv + shift);
                *sv = sg;
                *zv = sp;
            }
        }
        im2col(&ws.h1, self.c1, h, w, self.k2, &mut ws.col2h);
        gemm(
            &mut ws.s2, false, &self.w2, false, &ws.col2h, false, self.c2, r2, hw,
        );
        for k in 0..self.c2 {
            let a = self.alpha[k] / sigma;
            let b = self.b2[k];
            let s2 = &mut ws.s2[k * hw..(k + 1) * hw];
            let d2 = &mut ws.d2[k * hw..(k + 1) * hw];
            for (sv, dv) in s2.iter_mut().zip(d2.iter_mut()) {
                let (_, sg) = softplus_sigmoid(*sv + b);
                *sv = sg;
                *dv = a * sg;
            }
        }
        gemm(
            &mut ws.tmp2,
            false,
            &self.w2,
            true,
            &ws.d2,
            false,
            r2,
            self.c2,
            hw,
        );
        col2im(&ws.tmp2, self.c1, h, w, self.k2, &mut ws.gh1);
        for ((d, g), s) in ws.dz1.iter_mut().zip(&ws.gh1).zip(&ws.s1) {
            *d = g * s;
        }
        gemm(
            &mut ws.tmp1,
            false,
            &self.w1,
            true,
            &ws.dz1,
            false,
            r1,
            self.c1,
            hw,
        );
        col2im(&ws.tmp1, 2, h, w, self.k1, grad);
    }

    /// Training pass 2 (after [`FastModel::train_grad_x`] on the same workspace): adds
    /// ∂/∂θ ⟨∇ₓE(x̃; σ), v⟩ to `acc` (in [`EnergyModel::params`] order).
    pub fn train_grad_params(
        &self,
        ws: &mut TrainWorkspace,
        v: &[f32],
        sigma: f32,
        acc: &mut [f64],
    ) {
        let (h, w) = (ws.h, ws.w);
        let hw = h * w;
        let (r1, r2) = (2 * self.k1 * self.k1, self.c1 * self.k2 * self.k2);
        // Tangent pass: ż₁ = W₁ ∗ v, ḣ₁ = s(z₁)ż₁, ż₂ = W₂ ∗ ḣ₁.
        im2col(v, 2, h, w, self.k1, &mut ws.col1v);
        gemm(
            &mut ws.zd1,
            false,
            &self.w1,
            false,
            &ws.col1v,
            false,
            self.c1,
            r1,
            hw,
        );
        for ((g, z), s) in ws.gz1.iter_mut().zip(&ws.zd1).zip(&ws.s1) {
            *g = z * s; // ḣ₁, held in gz1 until it is im2col'ed
        }
        im2col(&ws.gz1, self.c1, h, w, self.k2, &mut ws.col2hd);
        gemm(
            &mut ws.zd2,
            false,
            &self.w2,
            false,
            &ws.col2hd,
            false,
            self.c2,
            r2,
            hw,
        );
        // Reverse through the output layer.
        let (o_b1, o_a1) = (self.w1.len(), self.w1.len() + self.c1);
        let o_w2 = o_a1 + self.c1;
        let (o_b2, o_al) = (o_w2 + self.w2.len(), o_w2 + self.w2.len() + self.c2);
        for k in 0..self.c2 {
            let a = self.alpha[k] / sigma;
            let (mut ga, mut gb) = (0.0f64, 0.0f64);
            let rng = k * hw..(k + 1) * hw;
            for ((g, &s), &zd) in ws.gz2[rng.clone()]
                .iter_mut()
                .zip(&ws.s2[rng.clone()])
                .zip(&ws.zd2[rng])
            {
                *g = a * s * (1.0 - s) * zd;
                gb += *g as f64;
                ga += (s * zd) as f64;
            }
            acc[o_al + k] += ga / sigma as f64;
            acc[o_b2 + k] += gb;
        }
        gemm(
            &mut ws.gw2,
            false,
            &ws.d2,
            false,
            &ws.col2hd,
            true,
            self.c2,
            hw,
            r2,
        );
        gemm(
            &mut ws.gw2,
            true,
            &ws.gz2,
            false,
            &ws.col2h,
            true,
            self.c2,
            hw,
            r2,
        );
        for (a, &g) in acc[o_w2..o_b2].iter_mut().zip(&ws.gw2) {
            *a += g as f64;
        }
        // Back to the first layer: ∂/∂z₁ = col2im(W₂ᵀ ∂/∂z₂)·s(z₁) + ∂/∂ḣ₁·s'(z₁)·ż₁, where
        // ∂/∂ḣ₁ is the gradient pass's gh1 and ∂/∂ż₁ = gh1·s(z₁) its dz1.
        gemm(
            &mut ws.tmp2,
            false,
            &self.w2,
            true,
            &ws.gz2,
            false,
            r2,
            self.c2,
            hw,
        );
        col2im(&ws.tmp2, self.c1, h, w, self.k2, &mut ws.gz1);
        for (((g, &gh), &s), &zd) in ws.gz1.iter_mut().zip(&ws.gh1).zip(&ws.s1).zip(&ws.zd1) {
            *g = *g * s + gh * s * (1.0 - s) * zd;
        }
        gemm(
            &mut ws.gw1,
            false,
            &ws.gz1,
            false,
            &ws.col1x,
            true,
            self.c1,
            hw,
            r1,
        );
        gemm(
            &mut ws.gw1,
            true,
            &ws.dz1,
            false,
            &ws.col1v,
            true,
            self.c1,
            hw,
            r1,
        );
        for (a, &g) in acc[..o_b1].iter_mut().zip(&ws.gw1) {
            *a += g as f64;
        }
        let ls = (sigma as f64).ln();
        for c in 0..self.c1 {
            let s: f64 = ws.gz1[c * hw..(c + 1) * hw].iter().map(|&v| v as f64).sum();
            acc[o_b1 + c] += s;
            acc[o_a1 + c] += s * ls;
        }
    }
}

/// Mean over 2×2 blocks of a `[c, h, w]` buffer into `[c, ⌊h/2⌋, ⌊w/2⌋]`.
fn pool2(src: &[f32], c: usize, h: usize, w: usize, dst: &mut [f32]) {
    let (hc, wc) = (h / 2, w / 2);
    for i in 0..c {
        for y in 0..hc {
            let r0 = &src[i * h * w + 2 * y * w..][..w];
            let r1 = &src[i * h * w + (2 * y + 1) * w..][..w];
            let d = &mut dst[i * hc * wc + y * wc..][..wc];
            for (x, dv) in d.iter_mut().enumerate() {
                *dv = 0.25 * (r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1]);
            }
        }
    }
}

/// Adds the adjoint of [`pool2`] of `coarse` `[c, ⌊h/2⌋, ⌊w/2⌋]` into `dst` `[c, h, w]`.
fn pool2_adjoint_add(coarse: &[f32], c: usize, h: usize, w: usize, dst: &mut [f32]) {
    let (hc, wc) = (h / 2, w / 2);
    for i in 0..c {
        for y in 0..2 * hc {
            let src = &coarse[i * hc * wc + (y / 2) * wc..][..wc];
            let d = &mut dst[i * h * w + y * w..][..w];
            for x in 0..2 * wc {
                d[x] += 0.25 * src[x / 2];
            }
        }
    }
}

/// The float32 multi-scale energy of [`crate::pyramid::Pyramid`].
#[derive(Clone, Debug)]
pub struct FastPyramid {
    levels: Vec<FastModel>,
    experts: Option<crate::experts::Experts>,
}

/// The sizes of the non-empty pyramid levels of an `h`×`w` image (at most `n`).
fn level_dims(n: usize, h: usize, w: usize) -> Vec<(usize, usize)> {
    let mut d = vec![(h, w)];
    while d.len() < n {
        let (a, b) = d[d.len() - 1];
        if a / 2 == 0 || b / 2 == 0 {
            break;
        }
        d.push((a / 2, b / 2));
    }
    d
}

/// Inference buffers of a [`FastPyramid`] for one image size.
#[derive(Clone, Debug)]
pub struct PyramidWorkspace {
    dims: Vec<(usize, usize)>,
    xs: Vec<Vec<f32>>,
    gs: Vec<Vec<f32>>,
    ds: Vec<Vec<f32>>,
    ws: Vec<Workspace>,
    experts: Option<crate::experts::ExpertsWorkspace>,
}

/// Training buffers of a [`FastPyramid`] for one patch size.
#[derive(Clone, Debug)]
pub struct PyramidTrainWorkspace {
    dims: Vec<(usize, usize)>,
    xs: Vec<Vec<f32>>,
    vs: Vec<Vec<f32>>,
    gs: Vec<Vec<f32>>,
    ws: Vec<TrainWorkspace>,
}

impl FastPyramid {
    /// Converts reference weights to the float32 layout.
    pub fn new(p: &crate::pyramid::Pyramid) -> Self {
        FastPyramid {
            levels: p.levels.iter().map(FastModel::new).collect(),
            experts: p.experts.clone(),
        }
    }

    /// The network alone (β = 1, no experts): what training optimises.
    pub fn network_only(&self) -> Self {
        FastPyramid {
            levels: self.levels.clone(),
            experts: None,
        }
    }

    /// The expert field besides the network, if the energy has one.
    pub fn experts(&self) -> Option<&crate::experts::Experts> {
        self.experts.as_ref()
    }

    /// β(σ), the weight of the network's energy (1 without an expert field).
    pub fn net_weight(&self, sigma: f32) -> f64 {
        self.experts
            .as_ref()
            .map_or(1.0, |e| e.net_weight(sigma as f64))
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.levels.iter().map(FastModel::num_params).sum()
    }

    /// Inference buffers for `h`×`w` images.
    pub fn workspace(&self, h: usize, w: usize) -> PyramidWorkspace {
        let dims = level_dims(self.levels.len(), h, w);
        PyramidWorkspace {
            xs: dims.iter().map(|&(a, b)| vec![0.0; 2 * a * b]).collect(),
            gs: dims.iter().map(|&(a, b)| vec![0.0; 2 * a * b]).collect(),
            ds: dims.iter().map(|&(a, b)| vec![0.0; a * b]).collect(),
            ws: dims
                .iter()
                .zip(&self.levels)
                .map(|(&(a, b), l)| l.workspace(a, b))
                .collect(),
            experts: self.experts.as_ref().map(|e| e.workspace(h, w)),
            dims,
        }
    }

    /// Multiply-accumulates per full-resolution pixel of one energy + gradient evaluation
    /// (coarser levels weighted by their share of the pixels).
    pub fn macs_per_pixel(&self) -> f64 {
        self.levels
            .iter()
            .enumerate()
            .map(|(s, l)| l.macs_per_pixel() as f64 / 4f64.powi(s as i32))
            .sum()
    }

    /// Energy of `x` (`[2, h, w]`) at σ; writes ∇ₓE into `grad` and, when given, the energy
    /// density `[h, w]` (coarse levels spread over the pixels they pool).
    pub fn energy_grad(
        &self,
        ws: &mut PyramidWorkspace,
        x: &[f32],
        sigma: f32,
        grad: &mut [f32],
        mut density: Option<&mut [f32]>,
    ) -> f64 {
        let beta = self.net_weight(sigma);
        let mut energy = 0.0f64;
        if beta != 0.0 {
            energy = beta * self.net_energy_grad(ws, x, sigma, grad, density.as_deref_mut());
            if beta != 1.0 {
                let b = beta as f32;
                grad.iter_mut().for_each(|g| *g *= b);
                if let Some(d) = density.as_deref_mut() {
                    d.iter_mut().for_each(|v| *v *= b);
                }
            }
        } else {
            grad.iter_mut().for_each(|g| *g = 0.0);
            if let Some(d) = density.as_deref_mut() {
                d.iter_mut().for_each(|v| *v = 0.0);
            }
        }
        if let (Some(e), Some(ews)) = (&self.experts, ws.experts.as_mut()) {
            energy += e.energy_grad_add(ews, x, sigma as f64, grad, density);
        }
        energy
    }

    fn net_energy_grad(
        &self,
        ws: &mut PyramidWorkspace,
        x: &[f32],
        sigma: f32,
        grad: &mut [f32],
        density: Option<&mut [f32]>,
    ) -> f64 {
        let n = ws.dims.len();
        let want_d = density.is_some();
        ws.xs[0].copy_from_slice(x);
        for s in 1..n {
            let (h, w) = ws.dims[s - 1];
            let (prev, next) = ws.xs.split_at_mut(s);
            pool2(&prev[s - 1], 2, h, w, &mut next[0]);
        }
        let mut energy = 0.0f64;
        for s in 0..n {
            let sig = sigma / (1u32 << s) as f32;
            let d = if want_d {
                Some(&mut ws.ds[s][..])
            } else {
                None
            };
            energy += self.levels[s].energy_grad(&mut ws.ws[s], &ws.xs[s], sig, &mut ws.gs[s], d);
        }
        for s in (1..n).rev() {
            let (h, w) = ws.dims[s - 1];
            let (fine, coarse) = ws.gs.split_at_mut(s);
            pool2_adjoint_add(&coarse[0], 2, h, w, &mut fine[s - 1]);
            if want_d {
                let (fine, coarse) = ws.ds.split_at_mut(s);
                pool2_adjoint_add(&coarse[0], 1, h, w, &mut fine[s - 1]);
            }
        }
        grad.copy_from_slice(&ws.gs[0]);
        if let Some(d) = density {
            d.copy_from_slice(&ws.ds[0]);
        }
        energy
    }

    /// Training buffers for `h`×`w` patches.
    pub fn train_workspace(&self, h: usize, w: usize) -> PyramidTrainWorkspace {
        let dims = level_dims(self.levels.len(), h, w);
        PyramidTrainWorkspace {
            xs: dims.iter().map(|&(a, b)| vec![0.0; 2 * a * b]).collect(),
            vs: dims.iter().map(|&(a, b)| vec![0.0; 2 * a * b]).collect(),
            gs: dims.iter().map(|&(a, b)| vec![0.0; 2 * a * b]).collect(),
            ws: dims
                .iter()
                .zip(&self.levels)
                .map(|(&(a, b), l)| l.train_workspace(a, b))
                .collect(),
            dims,
        }
    }

    /// Denoising score matching on one clean patch `x` with noise `n` (both `[2, h, w]`) at σ,
    /// as [`crate::pyramid::Pyramid::dsm_loss_and_grad`]: returns the loss and adds ∂L/∂θ to
    /// `acc` (in [`crate::pyramid::Pyramid::params`] order).
    pub fn dsm_loss_and_grad(
        &self,
        ws: &mut PyramidTrainWorkspace,
        x: &[f32],
        n: &[f32],
        sigma: f32,
        acc: &mut [f64],
    ) -> f64 {
        self.dsm_loss_and_grad_target(ws, x, n, n, sigma, acc)
    }

    /// [`Self::dsm_loss_and_grad`] with another regression target: at x̃ = x + σn the loss is
    /// ‖σ∇ₓE(x̃) − target‖²/N. With target = n − σ∇F(x̃) for a fixed energy F, the network
    /// learns what F leaves of the score (the loss is then the DSM loss of E + F).
    pub fn dsm_loss_and_grad_target(
        &self,
        ws: &mut PyramidTrainWorkspace,
        x: &[f32],
        n: &[f32],
        target: &[f32],
        sigma: f32,
        acc: &mut [f64],
    ) -> f64 {
        let levels = ws.dims.len();
        for ((xt, &a), &b) in ws.xs[0].iter_mut().zip(x).zip(n) {
            *xt = a + sigma * b;
        }
        for s in 1..levels {
            let (h, w) = ws.dims[s - 1];
            let (prev, next) = ws.xs.split_at_mut(s);
            pool2(&prev[s - 1], 2, h, w, &mut next[0]);
        }
        for s in 0..levels {
            let sig = sigma / (1u32 << s) as f32;
            self.levels[s].train_grad_x(&mut ws.ws[s], &ws.xs[s], sig, &mut ws.gs[s]);
        }
        for s in (1..levels).rev() {
            let (h, w) = ws.dims[s - 1];
            let (fine, coarse) = ws.gs.split_at_mut(s);
            pool2_adjoint_add(&coarse[0], 2, h, w, &mut fine[s - 1]);
        }
        let count = n.len() as f32;
        let mut loss = 0.0f64;
        for ((v, &g), &nv) in ws.vs[0].iter_mut().zip(&ws.gs[0]).zip(target) {
            let r = sigma * g - nv;
            loss += (r as f64) * (r as f64);
            *v = 2.0 * sigma * r / count;
        }
        for s in 1..levels {
            let (h, w) = ws.dims[s - 1];
            let (prev, next) = ws.vs.split_at_mut(s);
            pool2(&prev[s - 1], 2, h, w, &mut next[0]);
        }
        let mut off = 0;
        for s in 0..self.levels.len() {
            let np = self.levels[s].num_params();
            if s < levels {
                let sig = sigma / (1u32 << s) as f32;
                self.levels[s].train_grad_params(
                    &mut ws.ws[s],
                    &ws.vs[s],
                    sig,
                    &mut acc[off..off + np],
                );
            }
            off += np;
        }
        loss / count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written softplus and sigmoid against f64 libm over the whole range the layers
    /// see (and past f32's underflow of e^−|z| near −87), including 0.
    #[test]
    fn exp_f32_matches_libm() {
        let mut worst = 0.0f64;
        let mut x = 0.0f32;
        while x > -87.0 {
            let want = (x as f64).exp();
            worst = worst.max((exp_nonpositive_f32(x) as f64 - want).abs() / want);
            x -= 0.000_71;
        }
        assert!(worst < 2e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive_f32(-1000.0), (-87.0f64).exp() as f32);
    }

    #[test]
    fn ln_positive_matches_libm() {
        let mut worst = 0.0f64;
        let mut x = 1e-300f64;
        while x < 1e300 {
            for f in [1.0, 1.1, 1.414, 1.5, 1.9999] {
                let v = x * f;
                let err = (ln_positive_f64(v) - v.ln()).abs() / v.ln().abs().max(1.0);
                worst = worst.max(err);
            }
            x *= 3.7;
        }
        assert!(worst < 1e-12, "relative error {worst}");
        assert_eq!(ln_positive_f64(1.0), 0.0);
    }

    /// The vectorised activations of the two layers against float64 (at the float32 sum z + b,
    /// the input both see) over the range the layers see, the
    /// output layer's lane-split energy sum against a float64 sum, and the density variant
    /// against the plain one (same values, same sum).
    #[test]
    fn planes_match_f64() {
        let n = 64_901; // not a multiple of the sum's lanes
        let z0: Vec<f32> = (0..n)
            .map(|i| -120.0 + 240.0 * i as f32 / n as f32)
            .collect();
        let (shift, a, b) = (0.37f32, 0.61f32, -0.23f32);
        let f64_pair = |t: f64| {
            let sp = t.max(0.0) + (-t.abs()).exp().ln_1p();
            (sp, 1.0 / (1.0 + (-t).exp()))
        };
        let rel = |got: f32, want: f64| {
            if want.abs() > 1e-30 {
                ((got as f64 - want) / want).abs()
            } else {
                (got as f64 - want).abs()
            }
        };
        let (mut z, mut s) = (z0.clone(), vec![0.0f32; n]);
        softplus_sigmoid_planes(&mut z, &mut s, shift);
        let mut worst = 0.0f64;
        for i in 0..n {
            let (sp, sg) = f64_pair((z0[i] + shift) as f64);
            worst = worst.max(rel(z[i], sp)).max(rel(s[i], sg));
        }
        assert!(worst < 1e-6, "layer 1: relative error {worst}");

        let mut z = z0.clone();
        let energy = output_energy_plane(&mut z, a, b, None);
        let mut want = 0.0f64;
        let mut worst = 0.0f64;
        for i in 0..n {
            let (sp, sg) = f64_pair((z0[i] + b) as f64);
            want += a as f64 * sp;
            worst = worst.max(rel(z[i], a as f64 * sg));
        }
        assert!(
            worst < 1e-6,
            "output layer gradient: relative error {worst}"
        );
        assert!(
            ((energy - want) / want).abs() < 1e-6,
            "energy {energy} vs {want}"
        );
        let (mut zd, mut d) = (z0.clone(), vec![1.0f32; n]);
        assert_eq!(output_energy_plane(&mut zd, a, b, Some(&mut d)), energy);
        assert_eq!(zd, z);
        for i in 0..n {
            let (sp, _) = f64_pair((z0[i] + b) as f64);
            assert!(((d[i] - 1.0) as f64 - a as f64 * sp).abs() <= 1e-6 * (1.0 + a as f64 * sp));
        }
    }

    #[test]
    fn softplus_sigmoid_match_f64() {
        let mut worst = (0.0f64, 0.0f64);
        let mut z = -120.0f32;
        while z <= 120.0 {
            let (sp, sg) = softplus_sigmoid(z);
            let zz = z as f64;
            let e = (-zz.abs()).exp();
            let sp64 = zz.max(0.0) + e.ln_1p();
            let sg64 = 1.0 / (1.0 + (-zz).exp());
            // Below 1e-37 the f32 results are 0 or denormal (e underflows).
            if sp64 > 1e-37 {
                worst.0 = worst.0.max(((sp as f64 - sp64) / sp64).abs());
            }
            if sg64 > 1e-37 {
                worst.1 = worst.1.max(((sg as f64 - sg64) / sg64).abs());
            }
            z += 0.003_7;
        }
        assert!(
            worst.0 < 1e-6 && worst.1 < 1e-6,
            "softplus {} sigmoid {}",
            worst.0,
            worst.1
        );
        let (sp0, sg0) = softplus_sigmoid(0.0);
        assert!((sp0 - std::f32::consts::LN_2).abs() < 1e-7 && sg0 == 0.5);
        assert_eq!(softplus_sigmoid(-200.0), (0.0, 0.0));
    }
}
