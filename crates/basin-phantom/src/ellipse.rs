//! Ellipse phantoms with an exact continuous Fourier transform: the modified Shepp–Logan
//! (Toft's contrasts) and a brain-like set with a skull, cortex, ventricles and small lesions.
//! Coordinates span [−1, 1] across the field of view; y points up (towards row 0).

use basin_core::C64;
use std::f64::consts::PI;

/// One ellipse: intensity, semi-axes, centre, rotation (degrees).
#[derive(Clone, Copy, Debug)]
pub struct Ellipse {
    /// Additive intensity.
    pub a: f64,
    /// Semi-axis along its own x.
    pub rx: f64,
    /// Semi-axis along its own y.
    pub ry: f64,
    /// Centre x.
    pub x0: f64,
    /// Centre y.
    pub y0: f64,
    /// Rotation in degrees (counter-clockwise).
    pub phi_deg: f64,
}

const fn e(a: f64, rx: f64, ry: f64, x0: f64, y0: f64, phi_deg: f64) -> Ellipse {
    Ellipse {
        a,
        rx,
        ry,
        x0,
        y0,
        phi_deg,
    }
}

/// The modified Shepp–Logan phantom (Toft 1996 intensities).
pub const SHEPP_LOGAN: [Ellipse; 10] = [
    e(1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    e(-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    e(-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    e(-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    e(0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    e(0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    e(0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    e(0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    e(0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    e(0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
];

/// A brain-like ellipse set: scalp/skull ring, grey matter, white matter, ventricles, deep
/// nuclei and a few small lesions of ±20 % contrast.
pub const BRAIN: [Ellipse; 16] = [
    e(0.35, 0.72, 0.90, 0.0, 0.0, 0.0),       // scalp
    e(-0.30, 0.68, 0.86, 0.0, 0.0, 0.0),      // skull (dark)
    e(0.75, 0.65, 0.83, 0.0, 0.0, 0.0),       // grey matter / CSF rim
    e(-0.25, 0.58, 0.76, 0.0, -0.02, 0.0),    // white matter (darker on this contrast)
    e(0.45, 0.09, 0.26, -0.11, 0.08, 12.0),   // left ventricle
    e(0.45, 0.09, 0.26, 0.11, 0.08, -12.0),   // right ventricle
    e(0.30, 0.04, 0.10, 0.0, -0.25, 0.0),     // third ventricle
    e(0.12, 0.10, 0.14, -0.30, -0.05, 20.0),  // left putamen
    e(0.12, 0.10, 0.14, 0.30, -0.05, -20.0),  // right putamen
    e(0.08, 0.07, 0.08, -0.15, -0.18, 0.0),   // left thalamus
    e(0.08, 0.07, 0.08, 0.15, -0.18, 0.0),    // right thalamus
    e(0.10, 0.25, 0.06, 0.0, 0.55, 0.0),      // frontal sulcus band
    e(0.10, 0.03, 0.03, 0.40, 0.35, 0.0),     // lesion +
    e(-0.10, 0.025, 0.025, -0.42, 0.30, 0.0), // lesion −
    e(0.10, 0.02, 0.02, 0.25, -0.55, 0.0),    // lesion +
    e(0.20, 0.05, 0.12, 0.0, -0.62, 0.0),     // cerebellar vermis
];

/// Bessel function of the first kind, order 1 (rational approximations, |error| < 1e-8).
pub fn bessel_j1(x: f64) -> f64 {
    let ax = x.abs();
    if ax < 8.0 {
        let y = x * x;
        let num = x
            * (72362614232.0
                + y * (-7895059235.0
                    + y * (242396853.1
                        + y * (-2972611.439 + y * (15704.48260 + y * (-30.16036606))))));
        let den = 144725228442.0
            + y * (2300535178.0 + y * (18583304.74 + y * (99447.43394 + y * (376.9991397 + y))));
        num / den
    } else {
        let z = 8.0 / ax;
        let y = z * z;
        let xx = ax - 2.356194491;
        let p = 1.0
            + y * (0.183105e-2
                + y * (-0.3516396496e-4 + y * (0.2457520174e-5 + y * (-0.240337019e-6))));
        let q = 0.04687499995
            + y * (-0.2002690873e-3
                + y * (0.8449199096e-5 + y * (-0.88228987e-6 + y * 0.105787412e-6)));
        let ans = (std::f64::consts::FRAC_2_PI / ax).sqrt() * (xx.cos() * p - z * xx.sin() * q);
        if x < 0.0 {
            -ans
        } else {
            ans
        }
    }
}

/// Continuous Fourier transform ∫ f(r) e^{−2πi k·r} dr of a set of ellipses at (kx, ky).
pub fn ellipse_ft(set: &[Ellipse], kx: f64, ky: f64) -> C64 {
    let mut acc = C64::new(0.0, 0.0);
    for el in set {
        let (s, c) = (el.phi_deg * PI / 180.0).sin_cos();
        // k in the ellipse's own frame, scaled by the semi-axes.
        let u = el.rx * (c * kx + s * ky);
        let v = el.ry * (-s * kx + c * ky);
        let kappa = (u * u + v * v).sqrt();
        let mag = if kappa < 1e-12 {
            PI
        } else {
            bessel_j1(2.0 * PI * kappa) / kappa
        };
        let ph = -2.0 * PI * (kx * el.x0 + ky * el.y0);
        acc += C64::new(ph.cos(), ph.sin()) * (el.a * el.rx * el.ry * mag);
    }
    acc
}

/// The phantom's value at (x, y): the sum of the intensities of the ellipses containing it.
pub fn ellipse_value(set: &[Ellipse], x: f64, y: f64) -> f64 {
    set.iter()
        .filter(|el| {
            let (s, c) = (el.phi_deg * PI / 180.0).sin_cos();
            let dx = x - el.x0;
            let dy = y - el.y0;
            let u = (c * dx + s * dy) / el.rx;
            let v = (-s * dx + c * dy) / el.ry;
            u * u + v * v <= 1.0
        })
        .map(|el| el.a)
        .sum()
}
