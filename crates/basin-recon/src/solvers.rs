//! Solvers on one bucket: zero-filled root-sum-of-squares, adjoint SENSE combination, and
//! CG-SENSE (conjugate gradients on (AᴴA + λI)x = Aᴴy) as a small state machine whose driver
//! owns the stopping rule.

use basin_core::fft::ifftc;
use basin_core::linop::{dot, LinearOp, Sense};
use basin_core::C32;
use ndarray::{Array3, Array4, ArrayD, Axis, Zip};

/// Root-sum-of-squares of the zero-filled coil images (real, non-negative, as complex).
pub fn zero_filled_rss(kspace: &Array4<C32>, three_d: bool) -> Array3<C32> {
    let mut img = kspace.clone();
    let axes: &[usize] = if three_d { &[1, 2, 3] } else { &[2, 3] };
    ifftc(img.view_mut(), axes);
    img.map_axis(Axis(0), |v| {
        C32::new(v.iter().map(|c| c.norm_sqr()).sum::<f32>().sqrt(), 0.0)
    })
}

/// Adjoint SENSE combination Σ conj(s_c)·x_c / Σ|s_c|² of the zero-filled coil images.
pub fn adjoint_sense(op: &Sense, kspace: &Array4<C32>) -> Array3<C32> {
    let x = op.adjoint(kspace.view().into_dyn());
    let norm = op
        .maps()
        .map_axis(Axis(0), |v| v.iter().map(|c| c.norm_sqr()).sum::<f32>());
    let mut x = x
        .into_dimensionality::<ndarray::Ix3>()
        .expect("Sense domain is 3D");
    Zip::from(&mut x).and(&norm).for_each(|v, &n| {
        *v = if n > 0.0 { *v / n } else { C32::new(0.0, 0.0) };
    });
    x
}

/// The smallest relative residual CG iterates towards in float32.
pub const CG_TOLERANCE_FLOOR: f64 = 1e-6;

/// Conjugate-gradient state for (AᴴA + λI) x = b.
pub struct Cg<'a, A: LinearOp> {
    op: &'a A,
    lambda: f32,
    /// Current estimate.
    pub x: ArrayD<C32>,
    r: ArrayD<C32>,
    p: ArrayD<C32>,
    rr: f64,
    rr0: f64,
    /// Re⟨x, b⟩ and ‖y‖² (when known), for the data residual without another operator pass.
    xb: f64,
    yy: Option<f64>,
    b: ArrayD<C32>,
    /// Iterations done.
    pub iterations: usize,
}

impl<'a, A: LinearOp> Cg<'a, A> {
    /// Starts from x = 0 with right-hand side b = Aᴴy.
    pub fn new(op: &'a A, b: ArrayD<C32>, lambda: f32) -> Self {
        let rr = dot(b.view(), b.view()).re;
        Cg {
            op,
            lambda,
            x: ArrayD::zeros(b.raw_dim()),
            p: b.clone(),
            r: b.clone(),
            rr,
            rr0: rr,
            xb: 0.0,
            yy: None,
            b,
            iterations: 0,
        }
    }

    /// Tells the state ‖y‖², so that [`Cg::data_residual_sq`] can follow ‖A x − y‖².
    pub fn with_data_norm_sq(mut self, yy: f64) -> Self {
        self.yy = Some(yy);
        self
    }

    /// ‖A x − y‖² without applying A: with AᴴA x = b − r − λx (b = Aᴴy) it is
    /// ‖y‖² − Re⟨x, b⟩ − Re⟨x, r⟩ − λ‖x‖². `None` until [`Cg::with_data_norm_sq`] is called.
    pub fn data_residual_sq(&self) -> Option<f64> {
        let yy = self.yy?;
        let xr = dot(self.x.view(), self.r.view()).re;
        let xx = if self.lambda != 0.0 {
            dot(self.x.view(), self.x.view()).re
        } else {
            0.0
        };
        Some((yy - self.xb - xr - self.lambda as f64 * xx).max(0.0))
    }

    /// Relative residual ‖r‖/‖b‖ of the normal equations.
    pub fn relative_residual(&self) -> f64 {
        if self.rr0 > 0.0 {
            (self.rr / self.rr0).sqrt()
        } else {
            0.0
        }
    }

    /// One CG step.
    pub fn update(&mut self) {
        if self.rr == 0.0 {
            return;
        }
        let mut ap = self.op.normal(self.p.view());
        if self.lambda != 0.0 {
            Zip::from(&mut ap)
                .and(&self.p)
                .for_each(|a, &p| *a += p * self.lambda);
        }
        let pap = dot(self.p.view(), ap.view()).re;
        if pap <= 0.0 {
            self.rr = 0.0;
            return;
        }
        // A direction with a Rayleigh quotient below float32 resolution lies in the numerical
        // null space of the operator: stepping along it only amplifies round-off.
        let pp = dot(self.p.view(), self.p.view()).re;
        if pap <= 1e-6 * pp {
            self.rr = 0.0;
            return;
        }
        let alpha = (self.rr / pap) as f32;
        Zip::from(&mut self.x)
            .and(&self.p)
            .for_each(|x, &p| *x += p * alpha);
        Zip::from(&mut self.r)
            .and(&ap)
            .for_each(|r, &a| *r -= a * alpha);
        let rr_new = dot(self.r.view(), self.r.view()).re;
        let beta = (rr_new / self.rr) as f32;
        Zip::from(&mut self.p)
            .and(&self.r)
            .for_each(|p, &r| *p = r + *p * beta);
        self.rr = rr_new;
        self.xb = dot(self.x.view(), self.b.view()).re;
        self.iterations += 1;
    }

    /// Whether the tolerance is met or the iteration cap reached. Tolerances below
    /// [`CG_TOLERANCE_FLOOR`] act as the floor: float32 arithmetic cannot resolve smaller
    /// relative residuals, and iterating on round-off grows x in the null space of a singular
    /// AᴴA (e.g. one coil with undersampling) until it spoils Ax.
    pub fn done(&self, tolerance: f64, max_iter: usize) -> bool {
        self.iterations >= max_iter
            || self.rr == 0.0
            || self.relative_residual() <= tolerance.max(CG_TOLERANCE_FLOOR)
    }
}

/// When CG-SENSE stops before its iteration cap or tolerance (see [`cg_sense_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EarlyStop {
    /// Morozov's discrepancy principle: stop once ‖A x − y‖² ≤ this (τ² σ² m for m measured
    /// samples of complex noise variance σ²).
    pub residual_sq: Option<f64>,
    /// Stop once an iteration lowers ‖A x − y‖² by less than this fraction of it (0: off):
    /// the signal the data support is fitted and further iterations mostly fit noise and
    /// model error. Needs no noise level, so it behaves the same with and without
    /// prewhitening, and it stops where model error (coil maps from few ACS lines) keeps the
    /// residual above any noise-level threshold.
    pub stall: f64,
}

/// CG-SENSE: returns (image, iterations). With `stop_at` = Some(ε²) it also stops (Morozov's
/// discrepancy principle) once ‖A x − y‖² ≤ ε², before CG starts fitting the noise; ε² is
/// τ² σ² m for m measured samples of complex noise variance σ².
pub fn cg_sense(
    op: &Sense,
    kspace: &Array4<C32>,
    lambda: f32,
    tolerance: f64,
    max_iter: usize,
    stop_at: Option<f64>,
) -> (Array3<C32>, usize) {
    let stop = EarlyStop {
        residual_sq: stop_at,
        stall: 0.0,
    };
    cg_sense_with(op, kspace, lambda, tolerance, max_iter, &stop)
}

/// CG-SENSE with the early stops of `stop`: returns (image, iterations). The data residual is
/// tracked without applying A ([`Cg::data_residual_sq`]).
pub fn cg_sense_with(
    op: &Sense,
    kspace: &Array4<C32>,
    lambda: f32,
    tolerance: f64,
    max_iter: usize,
    stop: &EarlyStop,
) -> (Array3<C32>, usize) {
    let b = op.adjoint(kspace.view().into_dyn());
    let yy = dot(kspace.view().into_dyn(), kspace.view().into_dyn()).re;
    let mut cg = Cg::new(op, b, lambda).with_data_norm_sq(yy);
    let mut previous: Option<f64> = None;
    while !cg.done(tolerance, max_iter) {
        if let Some(r2) = cg.data_residual_sq() {
            if stop.residual_sq.is_some_and(|eps2| r2 <= eps2) {
                break;
            }
            if stop.stall > 0.0 && previous.is_some_and(|p| p - r2 < stop.stall * r2) {
                break;
            }
            previous = Some(r2);
        }
        cg.update();
    }
    let it = cg.iterations;
    (cg.x.into_dimensionality().expect("Sense domain is 3D"), it)
}

/// Data-consistency residual ‖A x − y‖ / ‖y‖.
pub fn dc_residual(op: &Sense, x: &Array3<C32>, kspace: &Array4<C32>) -> f64 {
    let ax = op.forward(x.view().into_dyn());
    let y = kspace.view().into_dyn();
    let diff = &ax - &y;
    let ny = dot(y.view(), y.view()).re.sqrt();
    dot(diff.view(), diff.view()).re.sqrt() / ny.max(1e-30)
}
