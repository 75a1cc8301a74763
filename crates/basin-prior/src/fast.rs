//! The production CPU path in float32: im2col + GEMM (faer) for both convolutions of the energy
//! and of its image gradient, with every buffer planned once in a [`Workspace`] so the hot call
//! allocates nothing. Checked against the float64 reference in `model`.

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

/// Buffers for one image size, reused across calls.
#[derive(Clone, Debug)]
pub struct Workspace {
    h: usize,
    w: usize,
    col1: Vec<f32>,
    z1: Vec<f32>,
    s1: Vec<f32>,
    col2: Vec<f32>,
    z2: Vec<f32>,
}

/// softplus(z) and sigmoid(z) from one exponential.
fn softplus_sigmoid(z: f32) -> (f32, f32) {
    let e = (-z.abs()).exp();
    let sp = z.max(0.0) + e.ln_1p();
    let s = if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (sp, s)
}

/// col[(i·K + dy)·K + dx, y·W + x] = inp[i, y + dy − r, x + dx − r] (zero outside).
fn im2col(inp: &[f32], c: usize, h: usize, w: usize, k: usize, col: &mut [f32]) {
    let r = (k / 2) as isize;
    let hw = h * w;
    for i in 0..c {
        for dy in 0..k {
            for dx in 0..k {
                let row = &mut col[((i * k + dy) * k + dx) * hw..][..hw];
                for y in 0..h {
                    let yy = y as isize + dy as isize - r;
                    let dst = &mut row[y * w..(y + 1) * w];
                    if yy < 0 || yy >= h as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &inp[i * hw + yy as usize * w..][..w];
                    for (x, d) in dst.iter_mut().enumerate() {
                        let xx = x as isize + dx as isize - r;
                        *d = if xx < 0 || xx >= w as isize {
                            0.0
                        } else {
                            src[xx as usize]
                        };
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: out[i, yy, xx] = Σ col[(i, dy, dx), p] over the positions p that
/// read (yy, xx).
fn col2im(col: &[f32], c: usize, h: usize, w: usize, k: usize, out: &mut [f32]) {
    let r = (k / 2) as isize;
    let hw = h * w;
    out[..c * hw].fill(0.0);
    for i in 0..c {
        for dy in 0..k {
            for dx in 0..k {
                let row = &col[((i * k + dy) * k + dx) * hw..][..hw];
                for y in 0..h {
                    let yy = y as isize + dy as isize - r;
                    if yy < 0 || yy >= h as isize {
                        continue;
                    }
                    let dst = &mut out[i * hw + yy as usize * w..][..w];
                    for x in 0..w {
                        let xx = x as isize + dx as isize - r;
                        if xx >= 0 && xx < w as isize {
                            dst[xx as usize] += row[y * w + x];
                        }
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
        Workspace {
            h,
            w,
            col1: vec![0.0; 2 * self.k1 * self.k1 * hw],
            z1: vec![0.0; self.c1 * hw],
            s1: vec![0.0; self.c1 * hw],
            col2: vec![0.0; self.c1 * self.k2 * self.k2 * hw],
            z2: vec![0.0; self.c2 * hw],
        }
    }

    /// Multiply-accumulates of one energy + gradient evaluation per pixel (four GEMMs).
    pub fn macs_per_pixel(&self) -> usize {
        2 * (self.c1 * 2 * self.k1 * self.k1 + self.c2 * self.c1 * self.k2 * self.k2)
    }

    /// Energy of `x` (`[2, h, w]` row-major: real plane, then imaginary plane) at σ; writes
    /// ∇ₓE into `grad` (same layout) and, when given, the energy density into `density` `[h, w]`.
    pub fn energy_grad(
        &self,
        ws: &mut Workspace,
        x: &[f32],
        sigma: f32,
        grad: &mut [f32],
        mut density: Option<&mut [f32]>,
    ) -> f32 {
        let (h, w) = (ws.h, ws.w);
        let hw = h * w;
        assert_eq!(x.len(), 2 * hw, "energy_grad: x must be [2, {h}, {w}]");
        assert_eq!(
            grad.len(),
            2 * hw,
            "energy_grad: grad must be [2, {h}, {w}]"
        );
        let par = faer::get_global_parallelism();
        let (k1s, k2s) = (self.k1 * self.k1, self.k2 * self.k2);
        // Layer 1.
        im2col(x, 2, h, w, self.k1, &mut ws.col1);
        matmul(
            MatMut::from_row_major_slice_mut(&mut ws.z1, self.c1, hw),
            Accum::Replace,
            MatRef::from_row_major_slice(&self.w1, self.c1, 2 * k1s),
            MatRef::from_row_major_slice(&ws.col1, 2 * k1s, hw),
            1.0,
            par,
        );
        let ls = sigma.ln();
        for c in 0..self.c1 {
            let shift = self.b1[c] + self.a1[c] * ls;
            let z = &mut ws.z1[c * hw..(c + 1) * hw];
            let s = &mut ws.s1[c * hw..(c + 1) * hw];
            for (zv, sv) in z.iter_mut().zip(s.iter_mut()) {
                let (sp, sg) = softplus_sigmoid(*zv + shift);
                *sv = sg;
                *zv = sp; // z1 now holds h1
            }
        }
        // Layer 2.
        im2col(&ws.z1, self.c1, h, w, self.k2, &mut ws.col2);
        matmul(
            MatMut::from_row_major_slice_mut(&mut ws.z2, self.c2, hw),
            Accum::Replace,
            MatRef::from_row_major_slice(&self.w2, self.c2, self.c1 * k2s),
            MatRef::from_row_major_slice(&ws.col2, self.c1 * k2s, hw),
            1.0,
            par,
        );
        if let Some(d) = density.as_deref_mut() {
            d[..hw].fill(0.0);
        }
        let mut energy = 0.0f64;
        for k in 0..self.c2 {
            let a = self.alpha[k] / sigma;
            let b = self.b2[k];
            for (p, zv) in ws.z2[k * hw..(k + 1) * hw].iter_mut().enumerate() {
                let (sp, sg) = softplus_sigmoid(*zv + b);
                let e = a * sp;
                energy += e as f64;
                if let Some(d) = density.as_deref_mut() {
                    d[p] += e;
                }
                *zv = a * sg; // z2 now holds ∂E/∂z2
            }
        }
        // Backward: ∂E/∂h1 = col2im(W2ᵀ · δ2), ∂E/∂z1 = ∂E/∂h1 ⊙ s(z1), ∇ₓE = col2im(W1ᵀ · δ1).
        matmul(
            MatMut::from_row_major_slice_mut(&mut ws.col2, self.c1 * k2s, hw),
            Accum::Replace,
            MatRef::from_row_major_slice(&self.w2, self.c2, self.c1 * k2s).transpose(),
            MatRef::from_row_major_slice(&ws.z2, self.c2, hw),
            1.0,
            par,
        );
        col2im(&ws.col2, self.c1, h, w, self.k2, &mut ws.z1);
        for (d, s) in ws.z1.iter_mut().zip(&ws.s1) {
            *d *= s;
        }
        matmul(
            MatMut::from_row_major_slice_mut(&mut ws.col1, 2 * k1s, hw),
            Accum::Replace,
            MatRef::from_row_major_slice(&self.w1, self.c1, 2 * k1s).transpose(),
            MatRef::from_row_major_slice(&ws.z1, self.c1, hw),
            1.0,
            par,
        );
        col2im(&ws.col1, 2, h, w, self.k1, grad);
        energy as f32
    }
}
