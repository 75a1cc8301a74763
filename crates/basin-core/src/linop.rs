//! Linear operators with forward, adjoint and normal maps, composable, and the one adjoint test
//! that every operator's tests call.
//!
//! Solvers are generic over [`LinearOp`]; a SENSE operator is `Mask · Fft · maps` written as one
//! fused [`Sense`] so that its normal operator (the CG hot loop) needs one buffer per coil.

use crate::fft::{fftc, ifftc};
use crate::rng::Rng;
use crate::{CoreError, C32};
use ndarray::{Array3, Array4, ArrayD, ArrayView3, ArrayViewD, ArrayViewMutD, Axis, IxDyn, Zip};
use rayon::prelude::*;

/// A linear map A from arrays of shape `ishape` to arrays of shape `oshape`.
pub trait LinearOp: Sync {
    /// Shape of the domain.
    fn ishape(&self) -> Vec<usize>;
    /// Shape of the range.
    fn oshape(&self) -> Vec<usize>;
    /// y = A x.
    fn forward_into(&self, x: ArrayViewD<'_, C32>, y: ArrayViewMutD<'_, C32>);
    /// x = Aᴴ y.
    fn adjoint_into(&self, y: ArrayViewD<'_, C32>, x: ArrayViewMutD<'_, C32>);
    /// z = AᴴA x; operators override this when they can do it cheaper.
    fn normal_into(&self, x: ArrayViewD<'_, C32>, mut z: ArrayViewMutD<'_, C32>) {
        let mut y = ArrayD::zeros(IxDyn(&self.oshape()));
        self.forward_into(x, y.view_mut());
        self.adjoint_into(y.view(), z.view_mut());
    }
    /// A x, allocating the result.
    fn forward(&self, x: ArrayViewD<'_, C32>) -> ArrayD<C32> {
        let mut y = ArrayD::zeros(IxDyn(&self.oshape()));
        self.forward_into(x, y.view_mut());
        y
    }
    /// Aᴴ y, allocating the result.
    fn adjoint(&self, y: ArrayViewD<'_, C32>) -> ArrayD<C32> {
        let mut x = ArrayD::zeros(IxDyn(&self.ishape()));
        self.adjoint_into(y, x.view_mut());
        x
    }
    /// AᴴA x, allocating the result.
    fn normal(&self, x: ArrayViewD<'_, C32>) -> ArrayD<C32> {
        let mut z = ArrayD::zeros(IxDyn(&self.ishape()));
        self.normal_into(x, z.view_mut());
        z
    }
}

/// Centered orthonormal FFT over `axes` of arrays of a fixed shape (unitary: Aᴴ = A⁻¹).
#[derive(Clone, Debug)]
pub struct Fft {
    shape: Vec<usize>,
    axes: Vec<usize>,
}

impl Fft {
    /// FFT over `axes` of arrays shaped `shape`.
    pub fn new(shape: &[usize], axes: &[usize]) -> Self {
        Fft {
            shape: shape.to_vec(),
            axes: axes.to_vec(),
        }
    }
}

impl LinearOp for Fft {
    fn ishape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn oshape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn forward_into(&self, x: ArrayViewD<'_, C32>, mut y: ArrayViewMutD<'_, C32>) {
        y.assign(&x);
        fftc(y, &self.axes);
    }
    fn adjoint_into(&self, y: ArrayViewD<'_, C32>, mut x: ArrayViewMutD<'_, C32>) {
        x.assign(&y);
        ifftc(x, &self.axes);
    }
    fn normal_into(&self, x: ArrayViewD<'_, C32>, mut z: ArrayViewMutD<'_, C32>) {
        z.assign(&x);
    }
}

/// Sampling mask: keeps samples where the mask is non-zero and sets the others to exactly 0.
#[derive(Clone, Debug)]
pub struct Mask {
    mask: ArrayD<bool>,
}

impl Mask {
    /// Mask from a boolean array of the operator's shape.
    pub fn new(mask: ArrayD<bool>) -> Self {
        Mask { mask }
    }
}

impl LinearOp for Mask {
    fn ishape(&self) -> Vec<usize> {
        self.mask.shape().to_vec()
    }
    fn oshape(&self) -> Vec<usize> {
        self.mask.shape().to_vec()
    }
    fn forward_into(&self, x: ArrayViewD<'_, C32>, mut y: ArrayViewMutD<'_, C32>) {
        Zip::from(&mut y)
            .and(&x)
            .and(&self.mask)
            .for_each(|y, &x, &m| {
                *y = if m { x } else { C32::new(0.0, 0.0) };
            });
    }
    fn adjoint_into(&self, y: ArrayViewD<'_, C32>, x: ArrayViewMutD<'_, C32>) {
        self.forward_into(y, x);
    }
}

/// Composition A ∘ B (apply B first).
pub struct Compose<A, B> {
    a: A,
    b: B,
}

impl<A: LinearOp, B: LinearOp> Compose<A, B> {
    /// A ∘ B; fails when B's range is not A's domain.
    pub fn new(a: A, b: B) -> Result<Self, CoreError> {
        if a.ishape() != b.oshape() {
            return Err(CoreError::Shape {
                what: "Compose",
                expected: a.ishape(),
                got: b.oshape(),
            });
        }
        Ok(Compose { a, b })
    }
}

impl<A: LinearOp, B: LinearOp> LinearOp for Compose<A, B> {
    fn ishape(&self) -> Vec<usize> {
        self.b.ishape()
    }
    fn oshape(&self) -> Vec<usize> {
        self.a.oshape()
    }
    fn forward_into(&self, x: ArrayViewD<'_, C32>, y: ArrayViewMutD<'_, C32>) {
        let t = self.b.forward(x);
        self.a.forward_into(t.view(), y);
    }
    fn adjoint_into(&self, y: ArrayViewD<'_, C32>, x: ArrayViewMutD<'_, C32>) {
        let t = self.a.adjoint(y);
        self.b.adjoint_into(t.view(), x);
    }
}

/// The SENSE operator: image `[z, y, x]` → k-space `[coil, z, y, x]`,
/// y_c = M · F(s_c · x), with F over the 2 in-plane axes (2D) or all 3 spatial axes (3D).
#[derive(Clone, Debug)]
pub struct Sense {
    maps: Array4<C32>,
    mask: Array3<bool>,
    axes: Vec<usize>,
    /// The FFT axes along which the mask varies. Along an axis where it does not (the readout
    /// of Cartesian data), F⁻¹ M F = M there, so the normal operator transforms only along these.
    normal_axes: Vec<usize>,
}

impl Sense {
    /// SENSE from coil maps `[c, z, y, x]` and a sampling mask `[z, y, x]` shared by all coils.
    /// `three_d` selects an FFT over z as well (3D encoding) instead of slice by slice.
    pub fn new(maps: Array4<C32>, mask: Array3<bool>, three_d: bool) -> Result<Self, CoreError> {
        let (_, z, y, x) = maps.dim();
        if mask.dim() != (z, y, x) {
            return Err(CoreError::Shape {
                what: "Sense mask",
                expected: vec![z, y, x],
                got: mask.shape().to_vec(),
            });
        }
        let axes: Vec<usize> = if three_d { vec![0, 1, 2] } else { vec![1, 2] };
        let normal_axes = axes
            .iter()
            .copied()
            .filter(|&a| !constant_along(&mask, a))
            .collect();
        Ok(Sense {
            maps,
            mask,
            axes,
            normal_axes,
        })
    }

    /// The coil sensitivity maps `[c, z, y, x]`.
    pub fn maps(&self) -> &Array4<C32> {
        &self.maps
    }

    /// The sampling mask `[z, y, x]`.
    pub fn mask(&self) -> &Array3<bool> {
        &self.mask
    }

    /// Whether the FFT runs over z as well (3D encoding) rather than slice by slice.
    pub fn is_3d(&self) -> bool {
        self.axes.len() == 3
    }

    /// M F (s_c x) with F along `axes` (all FFT axes for the forward operator; the normal
    /// operator passes only those where the mask varies).
    fn coil_forward(
        &self,
        c: usize,
        x: ArrayView3<'_, C32>,
        out: &mut Array3<C32>,
        axes: &[usize],
    ) {
        Zip::from(&mut *out)
            .and(&x)
            .and(self.maps.index_axis(Axis(0), c))
            .for_each(|o, &x, &s| *o = s * x);
        fftc(out.view_mut(), axes);
        Zip::from(&mut *out).and(&self.mask).for_each(|o, &m| {
            if !m {
                *o = C32::new(0.0, 0.0);
            }
        });
    }
}

impl LinearOp for Sense {
    fn ishape(&self) -> Vec<usize> {
        self.maps.shape()[1..].to_vec()
    }
    fn oshape(&self) -> Vec<usize> {
        self.maps.shape().to_vec()
    }
    fn forward_into(&self, x: ArrayViewD<'_, C32>, mut y: ArrayViewMutD<'_, C32>) {
        let x = x
            .into_dimensionality::<ndarray::Ix3>()
            .expect("Sense input is [z, y, x]");
        y.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(c, mut yc)| {
                let mut buf = Array3::zeros(x.dim());
                self.coil_forward(c, x.view(), &mut buf, &self.axes);
                yc.assign(&buf.into_dyn());
            });
    }
    fn adjoint_into(&self, y: ArrayViewD<'_, C32>, mut x: ArrayViewMutD<'_, C32>) {
        let y = y
            .into_dimensionality::<ndarray::Ix4>()
            .expect("Sense range is [c, z, y, x]");
        let dim = (y.shape()[1], y.shape()[2], y.shape()[3]);
        let acc = (0..y.shape()[0])
            .into_par_iter()
            .map(|c| {
                let mut buf = Array3::zeros(dim);
                Zip::from(&mut buf)
                    .and(y.index_axis(Axis(0), c))
                    .and(&self.mask)
                    .for_each(|b, &v, &m| {
                        if m {
                            *b = v;
                        }
                    });
                ifftc(buf.view_mut(), &self.axes);
                Zip::from(&mut buf)
                    .and(self.maps.index_axis(Axis(0), c))
                    .for_each(|b, &s| *b *= s.conj());
                buf
            })
            .reduce(|| Array3::zeros(dim), |a, b| a + b);
        x.assign(&acc.into_dyn());
    }
    fn normal_into(&self, x: ArrayViewD<'_, C32>, mut z: ArrayViewMutD<'_, C32>) {
        let x = x
            .into_dimensionality::<ndarray::Ix3>()
            .expect("Sense input is [z, y, x]");
        let dim = x.dim();
        let acc = (0..self.maps.shape()[0])
            .into_par_iter()
            .fold(
                || (Array3::zeros(dim), Array3::zeros(dim)),
                |(mut acc, mut buf), c| {
                    // F⁻¹ M F only along the axes where the mask varies (exact: the transforms
                    // along the others cancel because M commutes with them).
                    self.coil_forward(c, x.view(), &mut buf, &self.normal_axes);
                    ifftc(buf.view_mut(), &self.normal_axes);
                    Zip::from(&mut acc)
                        .and(&buf)
                        .and(self.maps.index_axis(Axis(0), c))
                        .for_each(|a, &b, &s| *a += s.conj() * b);
                    (acc, buf)
                },
            )
            .map(|(acc, _)| acc)
            .reduce(|| Array3::zeros(dim), |a, b| a + b);
        z.assign(&acc.into_dyn());
    }
}

/// Whether `mask` is the same at every position along `axis`.
fn constant_along(mask: &Array3<bool>, axis: usize) -> bool {
    let first = mask.index_axis(Axis(axis), 0);
    mask.axis_iter(Axis(axis)).all(|lane| lane == first)
}

/// Complex inner product ⟨a, b⟩ = Σ conj(a)·b, accumulated in f64.
pub fn dot(a: ArrayViewD<'_, C32>, b: ArrayViewD<'_, C32>) -> num_complex::Complex64 {
    let mut acc = num_complex::Complex64::new(0.0, 0.0);
    Zip::from(&a).and(&b).for_each(|&a, &b| {
        let p = a.conj() * b;
        acc += num_complex::Complex64::new(p.re as f64, p.im as f64);
    });
    acc
}

/// Adjoint test: relative mismatch |⟨Ax, y⟩ − ⟨x, Aᴴy⟩| / (‖Ax‖‖y‖) on random x, y, and the
/// same for the normal operator against adjoint ∘ forward. Returns the larger of the two.
pub fn adjoint_mismatch<A: LinearOp + ?Sized>(op: &A, seed: u64) -> f64 {
    let mut rng = Rng::new(seed);
    let x = ArrayD::from_shape_simple_fn(IxDyn(&op.ishape()), || rng.complex_normal());
    let y = ArrayD::from_shape_simple_fn(IxDyn(&op.oshape()), || rng.complex_normal());
    let ax = op.forward(x.view());
    let ahy = op.adjoint(y.view());
    let lhs = dot(ax.view(), y.view());
    let rhs = dot(x.view(), ahy.view());
    let nax = dot(ax.view(), ax.view()).re.sqrt();
    let ny = dot(y.view(), y.view()).re.sqrt();
    let adj = (lhs - rhs).norm() / (nax * ny).max(1e-30);
    let n1 = op.normal(x.view());
    let n2 = op.adjoint(ax.view());
    let diff = &n1 - &n2;
    let normal =
        dot(diff.view(), diff.view()).re.sqrt() / dot(n2.view(), n2.view()).re.sqrt().max(1e-30);
    adj.max(normal)
}
