//! The cubecl kernels. Every kernel is written once here and mirrors a plain-Rust operation of
//! `basin-core` (FFT, SENSE), `basin-recon` (CG) or `basin-prior` (the energy); the parity tests
//! in `tests/parity.rs` compare each against that reference.
//!
//! Conventions: complex arrays are interleaved f32 (`re, im`, the memory layout of `Complex32`),
//! real arrays are plain f32; one thread computes one output value; sizes come in as `u32`
//! launch arguments. Kernels are launched with bounds checks (`#[cube(launch)]`).

#![allow(missing_docs)] // the #[cube] macro generates undocumented launch modules
use cubecl::prelude::*;

/// Threads per cube for element-wise kernels and the width of the reduction tree.
pub const BLOCK: u32 = 256;

// ---------------------------------------------------------------------------------------------
// FFT: one radix-p Stockham stage (Bainville's formulation, any radix) along one axis of a batch
// of lines. Output element o of a line takes p inputs:
//   y[(o + shift_out) mod n] = scale · Σ_r x[(j + r·n/p + shift_in) mod n] · T[(r·(k + q·ns)·n/(ns·p)) mod n]
// with q = (o / ns) mod p, k = o mod ns, j = (o / (ns·p))·ns + k and T[t] = exp(∓2πi t/n)
// (a table of the line length, computed in float64 on the host). `shift_in`/`shift_out` carry
// the ifftshift of the first stage and the fftshift of the last, `scale` the 1/√n of the last.
// Line l starts at (l / lines_inner)·batch_stride + (l mod lines_inner)·line_stride and its
// elements are elem_stride apart; `line_fast` = 1 makes consecutive threads walk along lines
// (coalesced for column transforms).
// ---------------------------------------------------------------------------------------------
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn fft_stage(
    src: &[f32],
    dst: &mut [f32],
    tw: &[f32],
    geom: &[u32],
    shift_in: u32,
    shift_out: u32,
    inverse: u32,
    scale: f32,
) {
    // geom: n, p, ns, lines, lines_inner, line_stride, batch_stride, elem_stride, line_fast
    let n = geom[0];
    let p = geom[1];
    let ns = geom[2];
    let lines = geom[3];
    let total = lines * n;
    let t = ABSOLUTE_POS as u32;
    if t < total {
        let lines_inner = geom[4];
        let line_stride = geom[5];
        let batch_stride = geom[6];
        let es = geom[7];
        let mut line = t / n;
        let mut o = t % n;
        if geom[8] == 1 {
            line = t % lines;
            o = t / lines;
        }
        let base = (line / lines_inner) * batch_stride + (line % lines_inner) * line_stride;
        let m = n / p;
        let q = (o / ns) % p;
        let k = o % ns;
        let j = (o / (ns * p)) * ns + k;
        let step = (k + q * ns) * (n / (ns * p));
        let mut re = 0.0f32;
        let mut im = 0.0f32;
        let sgn = select(inverse == 1, -1.0f32, 1.0f32);
        for r in 0..p {
            let i = (j + r * m + shift_in) % n;
            let a = (base + i * es) * 2;
            let xr = src[a as usize];
            let xi = src[(a + 1) as usize];
            let ti = ((r * step) % n) * 2;
            let wr = tw[ti as usize];
            let wi = tw[(ti + 1) as usize] * sgn;
            re += xr * wr - xi * wi;
            im += xr * wi + xi * wr;
        }
        let out = (base + ((o + shift_out) % n) * es) * 2;
        dst[out as usize] = re * scale;
        dst[(out + 1) as usize] = im * scale;
    }
}

/// dst = src (f32 values).
#[cube(launch)]
pub fn copy(src: &[f32], dst: &mut [f32], n: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < n {
        dst[t as usize] = src[t as usize];
    }
}

/// dst = 0 (f32 values).
#[cube(launch)]
pub fn fill_zero(dst: &mut [f32], n: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < n {
        dst[t as usize] = 0.0f32;
    }
}

// ---------------------------------------------------------------------------------------------
// SENSE pieces. Images are [nz, h, w] complex, coil arrays [nc, nz, h, w] complex, the mask
// [nz, h, w] real (1 sampled, 0 not), maps [nc, nz, h, w] complex.
// ---------------------------------------------------------------------------------------------

/// out[c, p] = maps[c, p] · x[p] (p over nz·h·w pixels).
#[cube(launch)]
pub fn coil_expand(x: &[f32], maps: &[f32], out: &mut [f32], npix: u32, ncoil: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < npix * ncoil {
        let p = t % npix;
        let sr = maps[(2 * t) as usize];
        let si = maps[(2 * t + 1) as usize];
        let xr = x[(2 * p) as usize];
        let xi = x[(2 * p + 1) as usize];
        out[(2 * t) as usize] = sr * xr - si * xi;
        out[(2 * t + 1) as usize] = sr * xi + si * xr;
    }
}

/// x[p] = Σ_c conj(maps[c, p]) · k[c, p]  (+ ρ · v[p] when ρ ≠ 0), ρ = rho[roff + p / hw]: one
/// value per slice of h·w = `hw` pixels.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn coil_combine(
    k: &[f32],
    maps: &[f32],
    v: &[f32],
    x: &mut [f32],
    npix: u32,
    ncoil: u32,
    rho_tab: &[f32],
    roff: u32,
    hw: u32,
) {
    let p = ABSOLUTE_POS as u32;
    if p < npix {
        let mut re = 0.0f32;
        let mut im = 0.0f32;
        let rho = rho_tab[(roff + p / hw) as usize];
        if rho != 0.0f32 {
            re = rho * v[(2 * p) as usize];
            im = rho * v[(2 * p + 1) as usize];
        }
        for c in 0..ncoil {
            let i = c * npix + p;
            let sr = maps[(2 * i) as usize];
            let si = maps[(2 * i + 1) as usize];
            let kr = k[(2 * i) as usize];
            let ki = k[(2 * i + 1) as usize];
            re += sr * kr + si * ki;
            im += sr * ki - si * kr;
        }
        x[(2 * p) as usize] = re;
        x[(2 * p + 1) as usize] = im;
    }
}

/// k[c, p] ·= mask[p] (mask shared by the coils).
#[cube(launch)]
pub fn apply_mask(k: &mut [f32], mask: &[f32], npix: u32, ncoil: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < npix * ncoil {
        let m = mask[(t % npix) as usize];
        k[(2 * t) as usize] *= m;
        k[(2 * t + 1) as usize] *= m;
    }
}

// ---------------------------------------------------------------------------------------------
// Reductions and the CG recurrences. Scalars live on the device in `scal` (see `slot` in
// solver.rs) so the iteration never reads back to the host.
// ---------------------------------------------------------------------------------------------

/// Segmented dot products: the arrays are `CUBE_COUNT_Y` segments of `n` f32 values, and
/// partial[seg · CUBE_COUNT_X + cube] = Σ over this cube's grid-stride share of segment seg of
/// a[i]·b[i] (for complex interleaved arrays Re⟨a, b⟩). The cubes along Y are the segments
/// (the slices of a batch); along X the order of summation within a segment is that of a
/// one-segment launch, so a slice's sums do not depend on the batch it is in.
#[cube(launch)]
pub fn dot_partial(a: &[f32], b: &[f32], partial: &mut [f32], n: u32, #[comptime] block: u32) {
    let mut shared = Shared::new_slice(block as usize);
    let tid = UNIT_POS;
    let cubes = CUBE_COUNT_X;
    let base = CUBE_POS_Y * n;
    let mut acc = 0.0f32;
    let mut i = CUBE_POS_X * block + tid;
    while i < n {
        acc += a[(base + i) as usize] * b[(base + i) as usize];
        i += cubes * block;
    }
    shared[tid as usize] = acc;
    sync_cube();
    let mut s = CUBE_DIM / 2;
    while s > 0 {
        if tid < s {
            let v = shared[(tid + s) as usize];
            shared[tid as usize] += v;
        }
        sync_cube();
        s /= 2;
    }
    if tid == 0 {
        partial[(CUBE_POS_Y * cubes + CUBE_POS_X) as usize] = shared[0];
    }
}

/// scal[seg · nslot + slot] = Σ partial[seg · nparts ..][..nparts] (one cube per segment, the
/// segments along Y).
#[cube(launch)]
pub fn sum_partials(
    partial: &[f32],
    scal: &mut [f32],
    nparts: u32,
    slot: u32,
    nslot: u32,
    #[comptime] block: u32,
) {
    let mut shared = Shared::new_slice(block as usize);
    let tid = UNIT_POS;
    let seg = CUBE_POS_Y;
    let mut acc = 0.0f32;
    let mut i = tid;
    while i < nparts {
        acc += partial[(seg * nparts + i) as usize];
        i += block;
    }
    shared[tid as usize] = acc;
    sync_cube();
    let mut s = CUBE_DIM / 2;
    while s > 0 {
        if tid < s {
            let v = shared[(tid + s) as usize];
            shared[tid as usize] += v;
        }
        sync_cube();
        s /= 2;
    }
    if tid == 0 {
        scal[(seg * nslot + slot) as usize] = shared[0];
    }
}

/// y += sign · scal[(t / seg) · nslot + slot] · x: each segment of `seg` values (a slice) with
/// its own scalar.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn axpy_slot(
    x: &[f32],
    y: &mut [f32],
    scal: &[f32],
    slot: u32,
    sign: f32,
    n: u32,
    seg: u32,
    nslot: u32,
) {
    let t = ABSOLUTE_POS as u32;
    if t < n {
        let a = scal[((t / seg) * nslot + slot) as usize];
        y[t as usize] += sign * a * x[t as usize];
    }
}

/// p = r + scal[(t / seg) · nslot + slot] · p.
#[cube(launch)]
pub fn xpby_slot(r: &[f32], p: &mut [f32], scal: &[f32], slot: u32, n: u32, seg: u32, nslot: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < n {
        let b = scal[((t / seg) * nslot + slot) as usize];
        p[t as usize] = r[t as usize] + b * p[t as usize];
    }
}

/// y = a · x + b · y (f32 values, host scalars).
#[cube(launch)]
pub fn axpby(x: &[f32], y: &mut [f32], a: f32, b: f32, n: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < n {
        y[t as usize] = a * x[t as usize] + b * y[t as usize];
    }
}

/// CG start: rr = rr0 = scal[RR_NEW]; running flag set when rr > 0.
/// Slots (of segment t, at t · nslot): 0 rr, 1 rr0, 2 pap, 3 pp, 4 alpha, 5 rr_new, 6 beta,
/// 7 running. One thread per segment (`nseg` slices, each its own CG).
#[cube(launch)]
pub fn cg_start(scal: &mut [f32], nseg: u32, nslot: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < nseg {
        let o = t * nslot;
        let rr = scal[(o + 5) as usize];
        scal[o as usize] = rr;
        scal[(o + 1) as usize] = rr;
        scal[(o + 4) as usize] = 0.0f32;
        scal[(o + 6) as usize] = 0.0f32;
        scal[(o + 7) as usize] = select(rr > 0.0f32, 1.0f32, 0.0f32);
    }
}

/// α = rr / pᴴAp, or 0 (and stop) when the CPU's `Cg::update` would stop: not running,
/// pᴴAp ≤ 0, or a Rayleigh quotient pᴴAp / pᴴp ≤ 1e-6 (numerical null space).
#[cube(launch)]
pub fn cg_alpha(scal: &mut [f32], nseg: u32, nslot: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < nseg {
        let o = t * nslot;
        let pap = scal[(o + 2) as usize];
        let pp = scal[(o + 3) as usize];
        let ok = scal[(o + 7) as usize] > 0.5f32 && pap > 0.0f32 && pap > 1e-6f32 * pp;
        scal[(o + 4) as usize] = select(ok, scal[o as usize] / pap, 0.0f32);
        scal[(o + 7) as usize] = select(ok, 1.0f32, 0.0f32);
    }
}

/// β = rr_new / rr, rr = rr_new; stop once ‖r‖/‖b‖ ≤ tol (tol2 = tol²) or when not running.
#[cube(launch)]
pub fn cg_beta(scal: &mut [f32], tol2: f32, nseg: u32, nslot: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < nseg {
        let o = t * nslot;
        let running = scal[(o + 7) as usize] > 0.5f32;
        let rr_new = scal[(o + 5) as usize];
        let rr = scal[o as usize];
        let beta = select(running && rr > 0.0f32, rr_new / rr, 0.0f32);
        scal[(o + 6) as usize] = beta;
        scal[o as usize] = select(running, rr_new, rr);
        let converged = rr_new <= tol2 * scal[(o + 1) as usize];
        scal[(o + 7) as usize] = select(running && !converged && rr_new > 0.0f32, 1.0f32, 0.0f32);
    }
}

// ---------------------------------------------------------------------------------------------
// The energy prior (mirrors basin_prior::pyramid / model): images are [nb, c, h, w] planar f32.
// ---------------------------------------------------------------------------------------------

/// Interleaved complex [nb, h·w] → planar [nb, 2, h·w] (real plane, then imaginary plane).
#[cube(launch)]
pub fn to_planar(x: &[f32], out: &mut [f32], hw: u32, nb: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < hw * nb {
        let b = t / hw;
        let p = t % hw;
        out[(b * 2 * hw + p) as usize] = x[(2 * t) as usize];
        out[(b * 2 * hw + hw + p) as usize] = x[(2 * t + 1) as usize];
    }
}

/// Mean over 2×2 blocks: [nb·c, h, w] → [nb·c, h/2, w/2].
#[cube(launch)]
pub fn pool2(x: &[f32], out: &mut [f32], h: u32, w: u32, planes: u32) {
    let hc = h / 2;
    let wc = w / 2;
    let t = ABSOLUTE_POS as u32;
    if t < planes * hc * wc {
        let pl = t / (hc * wc);
        let r = t % (hc * wc);
        let y = r / wc;
        let xx = r % wc;
        let b = pl * h * w + 2 * y * w + 2 * xx;
        out[t as usize] = 0.25f32
            * (x[b as usize] + x[(b + 1) as usize] + x[(b + w) as usize] + x[(b + w + 1) as usize]);
    }
}

/// fine += pool2ᵀ(coarse): each coarse value spread as value/4 over its block.
#[cube(launch)]
pub fn pool2_adjoint_add(coarse: &[f32], fine: &mut [f32], h: u32, w: u32, planes: u32) {
    let hc = h / 2;
    let wc = w / 2;
    let t = ABSOLUTE_POS as u32;
    if t < planes * h * w {
        let pl = t / (h * w);
        let r = t % (h * w);
        let y = r / w;
        let xx = r % w;
        let a = y / 2;
        let bb = xx / 2;
        if a < hc && bb < wc {
            fine[t as usize] += 0.25f32 * coarse[(pl * hc * wc + a * wc + bb) as usize];
        }
    }
}

/// Output (or, for the adjoint, input) channels computed by one thread of the convolutions:
/// each input value loaded is used for this many channels (register blocking).
pub const CONV_BLOCK: usize = 4;

/// Same-size cross-correlation with zero padding plus a per-channel shift:
/// out[b, o, y, x] = Σ_{i,dy,dx} w[o, i, dy, dx]·inp[b, i, y+dy−r, x+dx−r] + bias[o] + coef[o]·c_b
/// with c_b = cond[cidx + b·cstride] (image b's own conditioning value, its ln σ).
/// dims: ci, co, k, h, w, nb. One thread computes [`CONV_BLOCK`] = 4 consecutive output channels
/// of one pixel (launch ⌈co/4⌉·nb·h·w threads); channels past co read the last channel's weights
/// and are not written.
#[cube(launch)]
#[allow(clippy::manual_div_ceil)] // u32::div_ceil is not a cube operation
pub fn conv_same(
    inp: &[f32],
    wt: &[f32],
    bias: &[f32],
    coef: &[f32],
    out: &mut [f32],
    dims: &[u32],
    cond: &[f32],
    cidx: u32,
    cstride: u32,
) {
    let ci = dims[0];
    let co = dims[1];
    let k = dims[2];
    let h = dims[3];
    let w = dims[4];
    let nb = dims[5];
    let hw = h * w;
    let cg = (co + 3) / 4;
    let t = ABSOLUTE_POS as u32;
    if t < nb * cg * hw {
        let b = t / (cg * hw);
        let o0 = ((t / hw) % cg) * 4;
        let o1 = select(o0 + 1 < co, o0 + 1, co - 1);
        let o2 = select(o0 + 2 < co, o0 + 2, co - 1);
        let o3 = select(o0 + 3 < co, o0 + 3, co - 1);
        let pix = t % hw;
        let y = pix / w;
        let x = pix % w;
        let r = k / 2;
        let kk = k * k;
        let cval = cond[(cidx + b * cstride) as usize];
        let mut a0 = bias[o0 as usize] + coef[o0 as usize] * cval;
        let mut a1 = bias[o1 as usize] + coef[o1 as usize] * cval;
        let mut a2 = bias[o2 as usize] + coef[o2 as usize] * cval;
        let mut a3 = bias[o3 as usize] + coef[o3 as usize] * cval;
        for i in 0..ci {
            let ib = (b * ci + i) * hw;
            let w0 = (o0 * ci + i) * kk;
            let w1 = (o1 * ci + i) * kk;
            let w2 = (o2 * ci + i) * kk;
            let w3 = (o3 * ci + i) * kk;
            for dy in 0..k {
                // yy = y + dy − r, computed without going negative.
                let yp = y + dy;
                if yp >= r && yp - r < h {
                    let row = ib + (yp - r) * w;
                    for dx in 0..k {
                        let xp = x + dx;
                        if xp >= r && xp - r < w {
                            let v = inp[(row + xp - r) as usize];
                            let q = dy * k + dx;
                            a0 += wt[(w0 + q) as usize] * v;
                            a1 += wt[(w1 + q) as usize] * v;
                            a2 += wt[(w2 + q) as usize] * v;
                            a3 += wt[(w3 + q) as usize] * v;
                        }
                    }
                }
            }
        }
        let ob = b * co * hw + pix;
        out[(ob + o0 * hw) as usize] = a0;
        if o0 + 1 < co {
            out[(ob + o1 * hw) as usize] = a1;
        }
        if o0 + 2 < co {
            out[(ob + o2 * hw) as usize] = a2;
        }
        if o0 + 3 < co {
            out[(ob + o3 * hw) as usize] = a3;
        }
    }
}

/// The adjoint of [`conv_same`] in its input, as a gather:
/// out[b, i, y, x] = Σ_{o,dy,dx} w[o, i, dy, dx]·g[b, o, y−dy+r, x−dx+r], then, when `gate` = 1,
/// multiplied by sigmoid(z[b, i, y, x]) (the softplus derivative of the layer below).
/// dims: ci, co, k, h, w, nb. One thread computes 4 consecutive input channels of one pixel
/// (launch ⌈ci/4⌉·nb·h·w threads), as [`conv_same`] does for output channels.
#[cube(launch)]
#[allow(clippy::manual_div_ceil)] // u32::div_ceil is not a cube operation
pub fn conv_adjoint(g: &[f32], wt: &[f32], z: &[f32], out: &mut [f32], dims: &[u32], gate: u32) {
    let ci = dims[0];
    let co = dims[1];
    let k = dims[2];
    let h = dims[3];
    let w = dims[4];
    let nb = dims[5];
    let hw = h * w;
    let cg = (ci + 3) / 4;
    let t = ABSOLUTE_POS as u32;
    if t < nb * cg * hw {
        let b = t / (cg * hw);
        let i0 = ((t / hw) % cg) * 4;
        let i1 = select(i0 + 1 < ci, i0 + 1, ci - 1);
        let i2 = select(i0 + 2 < ci, i0 + 2, ci - 1);
        let i3 = select(i0 + 3 < ci, i0 + 3, ci - 1);
        let pix = t % hw;
        let y = pix / w;
        let x = pix % w;
        let r = k / 2;
        let kk = k * k;
        let mut a0 = 0.0f32;
        let mut a1 = 0.0f32;
        let mut a2 = 0.0f32;
        let mut a3 = 0.0f32;
        for o in 0..co {
            let gb = (b * co + o) * hw;
            let w0 = (o * ci + i0) * kk;
            let w1 = (o * ci + i1) * kk;
            let w2 = (o * ci + i2) * kk;
            let w3 = (o * ci + i3) * kk;
            for dy in 0..k {
                // source row y − dy + r
                let yp = y + r;
                if yp >= dy && yp - dy < h {
                    let row = gb + (yp - dy) * w;
                    for dx in 0..k {
                        let xp = x + r;
                        if xp >= dx && xp - dx < w {
                            let v = g[(row + xp - dx) as usize];
                            let q = dy * k + dx;
                            a0 += wt[(w0 + q) as usize] * v;
                            a1 += wt[(w1 + q) as usize] * v;
                            a2 += wt[(w2 + q) as usize] * v;
                            a3 += wt[(w3 + q) as usize] * v;
                        }
                    }
                }
            }
        }
        let ob = b * ci * hw + pix;
        let s0 = ob + i0 * hw;
        let s1 = ob + i1 * hw;
        let s2 = ob + i2 * hw;
        let s3 = ob + i3 * hw;
        if gate == 1 {
            a0 *= 1.0f32 / (1.0f32 + (-z[s0 as usize]).exp());
            a1 *= 1.0f32 / (1.0f32 + (-z[s1 as usize]).exp());
            a2 *= 1.0f32 / (1.0f32 + (-z[s2 as usize]).exp());
            a3 *= 1.0f32 / (1.0f32 + (-z[s3 as usize]).exp());
        }
        out[s0 as usize] = a0;
        if i0 + 1 < ci {
            out[s1 as usize] = a1;
        }
        if i0 + 2 < ci {
            out[s2 as usize] = a2;
        }
        if i0 + 3 < ci {
            out[s3 as usize] = a3;
        }
    }
}

/// h = softplus(z) = max(z, 0) + ln(1 + e^−|z|).
#[cube(launch)]
pub fn softplus(z: &[f32], h: &mut [f32], n: u32) {
    let t = ABSOLUTE_POS as u32;
    if t < n {
        let v = z[t as usize];
        h[t as usize] = v.max(0.0f32) + (-v.abs()).exp().log1p();
    }
}

/// The output layer for one pixel: d2[b, k, p] = (α_k/σ)·sigmoid(z2[b, k, p]) (∂e/∂z₂) and the
/// energy density e[b, p] = Σ_k (α_k/σ)·softplus(z2[b, k, p]), with 1/σ (times the network's
/// weight) = cond[cidx + b·cstride], image b's own.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn head(
    z2: &[f32],
    alpha: &[f32],
    d2: &mut [f32],
    dens: &mut [f32],
    c2: u32,
    hw: u32,
    nb: u32,
    cond: &[f32],
    cidx: u32,
    cstride: u32,
) {
    let t = ABSOLUTE_POS as u32;
    if t < nb * hw {
        let b = t / hw;
        let p = t % hw;
        let inv_sigma = cond[(cidx + b * cstride) as usize];
        let mut e = 0.0f32;
        for k in 0..c2 {
            let i = (b * c2 + k) * hw + p;
            let v = z2[i as usize];
            let a = alpha[k as usize] * inv_sigma;
            d2[i as usize] = a / (1.0f32 + (-v).exp());
            e += a * (v.max(0.0f32) + (-v.abs()).exp().log1p());
        }
        dens[t as usize] = e;
    }
}

/// The prior step of half-quadratic splitting on interleaved images:
/// z[b, p] = supp[b, p] · (x[b, p] − s2_b · g[b, :, p]) with g planar [nb, 2, hw] and
/// s2_b = s2[soff + b] (λσ² of image b).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn prior_step(
    x: &[f32],
    g: &[f32],
    supp: &[f32],
    z: &mut [f32],
    s2_tab: &[f32],
    soff: u32,
    hw: u32,
    nb: u32,
) {
    let t = ABSOLUTE_POS as u32;
    if t < hw * nb {
        let b = t / hw;
        let p = t % hw;
        let s2 = s2_tab[(soff + b) as usize];
        let m = supp[t as usize];
        let gr = g[(b * 2 * hw + p) as usize];
        let gi = g[(b * 2 * hw + hw + p) as usize];
        z[(2 * t) as usize] = m * (x[(2 * t) as usize] - s2 * gr);
        z[(2 * t + 1) as usize] = m * (x[(2 * t + 1) as usize] - s2 * gi);
    }
}

// ---------------------------------------------------------------------------------------------
// The expert field (mirrors basin_prior::experts): one launch per filter. Filter k is
// c[q] = Σ_t w_t · B_s[q + d_t] with B_s the mean over the s×s block at its top-left pixel (zero
// outside the image); tap_off[(k·4 + t)·2 ..] = (dy, dx), tap_w[k·4 + t] = w_t for t < ntaps;
// inv = 1/s². Its mixture has
// log πₖⱼ = log_pi[k·nj + j] and variances var[j]; noise adds v = σ²‖f_k‖².
// ---------------------------------------------------------------------------------------------

/// Responses of filter k, their energy ψ (α·ψ added to `dens`) and α·ψ'·c into `dc` (planar
/// [nb, 2, h, w]); image b's noise variance v and weight α are cond[vidx + b·cstride] and
/// cond[aidx + b·cstride].
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn expert_response(
    x: &[f32],
    tap_off: &[u32],
    tap_w: &[f32],
    log_pi: &[f32],
    var: &[f32],
    dc: &mut [f32],
    dens: &mut [f32],
    dims: &[u32],
    k: u32,
    ntaps: u32,
    scale: u32,
    inv: f32,
    cond: &[f32],
    vidx: u32,
    aidx: u32,
    cstride: u32,
) {
    // dims: h, w, nb, nj
    let h = dims[0];
    let w = dims[1];
    let nb = dims[2];
    let nj = dims[3];
    let hw = h * w;
    let t = ABSOLUTE_POS as u32;
    if t < nb * hw {
        let b = t / hw;
        let p = t % hw;
        let y = p / w;
        let xx = p % w;
        let v = cond[(vidx + b * cstride) as usize];
        let alpha = cond[(aidx + b * cstride) as usize];
        let mut re = 0.0f32;
        let mut im = 0.0f32;
        for ti in 0..ntaps {
            let o = (k * 4 + ti) as usize;
            let yy = y + tap_off[2 * o];
            let xq = xx + tap_off[2 * o + 1];
            let wt = tap_w[o];
            if yy < h && xq < w {
                let mut sr = 0.0f32;
                let mut si = 0.0f32;
                for a in 0..scale {
                    for c in 0..scale {
                        if yy + a < h && xq + c < w {
                            let i = b * 2 * hw + (yy + a) * w + xq + c;
                            sr += x[i as usize];
                            si += x[(i + hw) as usize];
                        }
                    }
                }
                re += wt * sr * inv;
                im += wt * si * inv;
            }
        }
        let tt = re * re + im * im;
        let v0 = var[0] + v;
        let mut m = log_pi[(k * nj) as usize] - v0.ln() - tt * 0.5f32 / v0;
        for j in 1..nj {
            let vj = var[j as usize] + v;
            let l = log_pi[(k * nj + j) as usize] - vj.ln() - tt * 0.5f32 / vj;
            if l > m {
                m = l;
            }
        }
        let mut s = 0.0f32;
        let mut ws = 0.0f32;
        for j in 0..nj {
            let vj = var[j as usize] + v;
            let e = (log_pi[(k * nj + j) as usize] - vj.ln() - tt * 0.5f32 / vj - m).exp();
            s += e;
            ws += e / vj;
        }
        let d = alpha * ws / s;
        dc[(b * 2 * hw + p) as usize] = d * re;
        dc[(b * 2 * hw + hw + p) as usize] = d * im;
        dens[t as usize] += alpha * (-(m + s.ln()));
    }
}

/// g += ∂/∂x of Σ_q ⟨dc[q], c[q]⟩ for filter k: the adjoint of its taps and box means, as a
/// gather (each thread owns one pixel of both planes).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn expert_adjoint(
    dc: &[f32],
    tap_off: &[u32],
    tap_w: &[f32],
    g: &mut [f32],
    dims: &[u32],
    k: u32,
    ntaps: u32,
    scale: u32,
    inv: f32,
) {
    let h = dims[0];
    let w = dims[1];
    let nb = dims[2];
    let hw = h * w;
    let t = ABSOLUTE_POS as u32;
    if t < nb * hw {
        let b = t / hw;
        let p = t % hw;
        let y = p / w;
        let xx = p % w;
        let mut gr = 0.0f32;
        let mut gi = 0.0f32;
        for a in 0..scale {
            for c in 0..scale {
                // r = p − (a, c) is a box position containing p.
                if a <= y && c <= xx {
                    let ry = y - a;
                    let rx = xx - c;
                    for ti in 0..ntaps {
                        let o = (k * 4 + ti) as usize;
                        let dy = tap_off[2 * o];
                        let dx = tap_off[2 * o + 1];
                        // q = r − d_t is the response that read B[r].
                        if dy <= ry && dx <= rx {
                            let q = b * 2 * hw + (ry - dy) * w + rx - dx;
                            let wt = tap_w[o] * inv;
                            gr += wt * dc[q as usize];
                            gi += wt * dc[(q + hw) as usize];
                        }
                    }
                }
            }
        }
        g[(b * 2 * hw + p) as usize] += gr;
        g[(b * 2 * hw + hw + p) as usize] += gi;
    }
}

// ---------------------------------------------------------------------------------------------
// Tiled convolutions: one cube of `tile`×`tile` threads computes a tile of the output for 4
// channels of one image. For every channel it sums over, the cube first copies the input tile
// with its halo ((tile + k − 1)², zero outside the image) and the 4·k² weights into shared
// memory, so each input value is read from device memory once per tile and channel group
// instead of k² times. Launch: cubes (tiles, ⌈channels/4⌉, nb), cube dimension tile×tile.
// Same sums, in the same order over (channel, dy, dx), as `conv_same` / `conv_adjoint`.
// ---------------------------------------------------------------------------------------------

/// Stages the `side`² tile of one image plane (starting at `base`) whose top-left corner is
/// (ty0 − r, tx0 − r) into shared memory, zero outside the h×w plane; the cube's `nthreads`
/// threads share the copy.
#[cube]
#[allow(clippy::too_many_arguments)]
fn stage_tile(
    src: &[f32],
    s: &mut Shared<[f32]>,
    base: u32,
    ty0: u32,
    tx0: u32,
    h: u32,
    w: u32,
    r: u32,
    side: u32,
    lin: u32,
    nthreads: u32,
) {
    let mut idx = lin;
    while idx < side * side {
        let gy = ty0 + idx / side;
        let gx = tx0 + idx % side;
        let mut v = 0.0f32;
        if gy >= r && gy - r < h && gx >= r && gx - r < w {
            v = src[(base + (gy - r) * w + gx - r) as usize];
        }
        s[idx as usize] = v;
        idx += nthreads;
    }
}

/// Stages the k² weights of 4 channels into shared memory: channel c's are
/// wt[(min(start + c, count − 1)·stride + fixed)·k² ..] (the 4 output channels of one input
/// channel for the convolution, the 4 input channels of one output channel for its adjoint).
#[cube]
#[allow(clippy::too_many_arguments)]
fn stage_weights(
    wt: &[f32],
    s: &mut Shared<[f32]>,
    start: u32,
    count: u32,
    stride: u32,
    fixed: u32,
    kk: u32,
    lin: u32,
    nthreads: u32,
) {
    let mut j = lin;
    while j < 4 * kk {
        let c = j / kk;
        let ch = select(start + c < count, start + c, count - 1);
        s[j as usize] = wt[((ch * stride + fixed) * kk + j % kk) as usize];
        j += nthreads;
    }
}

/// [`conv_same`] tiled; with `softplus_out` it also writes act = softplus(out) (the first
/// layer's activation, fused).
#[cube(launch)]
#[allow(clippy::too_many_arguments, clippy::manual_div_ceil)]
pub fn conv_same_tiled(
    inp: &[f32],
    wt: &[f32],
    bias: &[f32],
    coef: &[f32],
    out: &mut [f32],
    act: &mut [f32],
    dims: &[u32],
    cond: &[f32],
    cidx: u32,
    cstride: u32,
    #[comptime] k: u32,
    #[comptime] tile: u32,
    #[comptime] smem_in: usize,
    #[comptime] smem_w: usize,
    #[comptime] softplus_out: bool,
) {
    let ci = dims[0];
    let co = dims[1];
    let h = dims[3];
    let w = dims[4];
    let hw = h * w;
    let side = tile + k - 1;
    let r = k / 2;
    let kk = k * k;
    let tiles_x = (w + tile - 1) / tile;
    let ty0 = (CUBE_POS_X / tiles_x) * tile;
    let tx0 = (CUBE_POS_X % tiles_x) * tile;
    let o0 = CUBE_POS_Y * 4;
    let b = CUBE_POS_Z;
    let ty = UNIT_POS_Y;
    let tx = UNIT_POS_X;
    let lin = ty * tile + tx;
    let nthreads = tile * tile;
    let mut s_in = Shared::new_slice(smem_in);
    let mut s_w = Shared::new_slice(smem_w);
    let cval = cond[(cidx + b * cstride) as usize];
    let o1 = select(o0 + 1 < co, o0 + 1, co - 1);
    let o2 = select(o0 + 2 < co, o0 + 2, co - 1);
    let o3 = select(o0 + 3 < co, o0 + 3, co - 1);
    let mut a0 = bias[o0 as usize] + coef[o0 as usize] * cval;
    let mut a1 = bias[o1 as usize] + coef[o1 as usize] * cval;
    let mut a2 = bias[o2 as usize] + coef[o2 as usize] * cval;
    let mut a3 = bias[o3 as usize] + coef[o3 as usize] * cval;
    for i in 0..ci {
        stage_tile(
            inp,
            &mut s_in,
            (b * ci + i) * hw,
            ty0,
            tx0,
            h,
            w,
            r,
            side,
            lin,
            nthreads,
        );
        // Weights of output channels o0.. (clamped to co − 1) from input channel i.
        stage_weights(wt, &mut s_w, o0, co, ci, i, kk, lin, nthreads);
        sync_cube();
        for dy in 0..k {
            for dx in 0..k {
                let v = s_in[((ty + dy) * side + tx + dx) as usize];
                let q = dy * k + dx;
                a0 += s_w[q as usize] * v;
                a1 += s_w[(kk + q) as usize] * v;
                a2 += s_w[(2 * kk + q) as usize] * v;
                a3 += s_w[(3 * kk + q) as usize] * v;
            }
        }
        sync_cube();
    }
    let y = ty0 + ty;
    let x = tx0 + tx;
    if y < h && x < w {
        let ob = b * co * hw + y * w + x;
        out[(ob + o0 * hw) as usize] = a0;
        if softplus_out {
            act[(ob + o0 * hw) as usize] = a0.max(0.0f32) + (-a0.abs()).exp().log1p();
        }
        if o0 + 1 < co {
            out[(ob + o1 * hw) as usize] = a1;
            if softplus_out {
                act[(ob + o1 * hw) as usize] = a1.max(0.0f32) + (-a1.abs()).exp().log1p();
            }
        }
        if o0 + 2 < co {
            out[(ob + o2 * hw) as usize] = a2;
            if softplus_out {
                act[(ob + o2 * hw) as usize] = a2.max(0.0f32) + (-a2.abs()).exp().log1p();
            }
        }
        if o0 + 3 < co {
            out[(ob + o3 * hw) as usize] = a3;
            if softplus_out {
                act[(ob + o3 * hw) as usize] = a3.max(0.0f32) + (-a3.abs()).exp().log1p();
            }
        }
    }
}

/// [`conv_adjoint`] tiled: the gradient tile with its halo in shared memory for every output
/// channel summed over; 4 input channels per cube.
#[cube(launch)]
#[allow(clippy::too_many_arguments, clippy::manual_div_ceil)]
pub fn conv_adjoint_tiled(
    g: &[f32],
    wt: &[f32],
    z: &[f32],
    out: &mut [f32],
    dims: &[u32],
    gate: u32,
    #[comptime] k: u32,
    #[comptime] tile: u32,
    #[comptime] smem_in: usize,
    #[comptime] smem_w: usize,
) {
    let ci = dims[0];
    let co = dims[1];
    let h = dims[3];
    let w = dims[4];
    let hw = h * w;
    let side = tile + k - 1;
    let r = k / 2;
    let kk = k * k;
    let tiles_x = (w + tile - 1) / tile;
    let ty0 = (CUBE_POS_X / tiles_x) * tile;
    let tx0 = (CUBE_POS_X % tiles_x) * tile;
    let i0 = CUBE_POS_Y * 4;
    let b = CUBE_POS_Z;
    let ty = UNIT_POS_Y;
    let tx = UNIT_POS_X;
    let lin = ty * tile + tx;
    let nthreads = tile * tile;
    let mut s_g = Shared::new_slice(smem_in);
    let mut s_w = Shared::new_slice(smem_w);
    let i1 = select(i0 + 1 < ci, i0 + 1, ci - 1);
    let i2 = select(i0 + 2 < ci, i0 + 2, ci - 1);
    let i3 = select(i0 + 3 < ci, i0 + 3, ci - 1);
    let mut a0 = 0.0f32;
    let mut a1 = 0.0f32;
    let mut a2 = 0.0f32;
    let mut a3 = 0.0f32;
    for o in 0..co {
        stage_tile(
            g,
            &mut s_g,
            (b * co + o) * hw,
            ty0,
            tx0,
            h,
            w,
            r,
            side,
            lin,
            nthreads,
        );
        // Weights of input channels i0.. (clamped to ci − 1) into output channel o.
        stage_weights(wt, &mut s_w, i0, ci, 1, o * ci, kk, lin, nthreads);
        sync_cube();
        // Output (y, x) reads g at (y − dy + r, x − dx + r): tile position (ty + k−1−dy, …).
        for dy in 0..k {
            for dx in 0..k {
                let v = s_g[((ty + k - 1 - dy) * side + tx + k - 1 - dx) as usize];
                let q = dy * k + dx;
                a0 += s_w[q as usize] * v;
                a1 += s_w[(kk + q) as usize] * v;
                a2 += s_w[(2 * kk + q) as usize] * v;
                a3 += s_w[(3 * kk + q) as usize] * v;
            }
        }
        sync_cube();
    }
    let y = ty0 + ty;
    let x = tx0 + tx;
    if y < h && x < w {
        let ob = b * ci * hw + y * w + x;
        let s0 = ob + i0 * hw;
        let s1 = ob + i1 * hw;
        let s2 = ob + i2 * hw;
        let s3 = ob + i3 * hw;
        if gate == 1 {
            a0 *= 1.0f32 / (1.0f32 + (-z[s0 as usize]).exp());
            a1 *= 1.0f32 / (1.0f32 + (-z[s1 as usize]).exp());
            a2 *= 1.0f32 / (1.0f32 + (-z[s2 as usize]).exp());
            a3 *= 1.0f32 / (1.0f32 + (-z[s3 as usize]).exp());
        }
        out[s0 as usize] = a0;
        if i0 + 1 < ci {
            out[s1 as usize] = a1;
        }
        if i0 + 2 < ci {
            out[s2 as usize] = a2;
        }
        if i0 + 3 < ci {
            out[s3 as usize] = a3;
        }
    }
}
