//! Noise prewhitening: the coil noise covariance Ψ from the noise scan, scaled to the imaging
//! bandwidth, its Cholesky factor Ψ = L Lᴴ (faer), and the whitening transform W = L⁻¹ applied
//! along the coil axis so that the whitened noise is white with unit variance.

use crate::ReconError;
use basin_core::{C32, C64};
use faer::{Mat, Side};
use ndarray::{Array2, Array4, Axis};

/// Noise covariance of `noise` `[coil, sample]`, in f64: Ψ = N Nᴴ / (n − 1).
pub fn noise_covariance(noise: &Array2<C32>) -> Array2<C64> {
    let (nc, ns) = noise.dim();
    let mut cov = Array2::<C64>::zeros((nc, nc));
    for i in 0..nc {
        for j in 0..=i {
            let mut acc = C64::new(0.0, 0.0);
            for k in 0..ns {
                let a = noise[[i, k]];
                let b = noise[[j, k]];
                acc += C64::new(a.re as f64, a.im as f64) * C64::new(b.re as f64, -b.im as f64);
            }
            let v = acc / (ns.max(2) - 1) as f64;
            cov[[i, j]] = v;
            cov[[j, i]] = v.conj();
        }
    }
    cov
}

/// Whitening matrix W = L⁻¹ for Ψ·scale = L Lᴴ, where `scale` = noise dwell / data dwell
/// (noise variance per sample grows with bandwidth, i.e. with 1/dwell).
pub fn whitening_matrix(cov: &Array2<C64>, scale: f64) -> Result<Array2<C64>, ReconError> {
    let n = cov.shape()[0];
    let m = Mat::<C64>::from_fn(n, n, |i, j| cov[[i, j]] * scale);
    let llt = m.llt(Side::Lower).map_err(|e| ReconError::Numerical {
        what: "noise covariance".into(),
        message: format!("not positive definite ({e:?}); is a coil dead or the noise scan empty?"),
    })?;
    let l = llt.L();
    // Invert the lower-triangular factor column by column (forward substitution).
    let mut w = Array2::<C64>::zeros((n, n));
    for col in 0..n {
        for i in 0..n {
            let mut s = if i == col {
                C64::new(1.0, 0.0)
            } else {
                C64::new(0.0, 0.0)
            };
            for k in 0..i {
                s -= l[(i, k)] * w[[k, col]];
            }
            w[[i, col]] = s / l[(i, i)];
        }
    }
    Ok(w)
}

/// Applies W along axis 0 (coils) of `data` `[coil, z, y, x]` in place.
pub fn apply(w: &Array2<C64>, data: &mut Array4<C32>) {
    let nc = data.shape()[0];
    let wf: Vec<C32> = w
        .iter()
        .map(|v| C32::new(v.re as f32, v.im as f32))
        .collect();
    let mut tmp = vec![C32::new(0.0, 0.0); nc];
    for mut lane in data.lanes_mut(Axis(0)) {
        for (i, t) in tmp.iter_mut().enumerate() {
            let mut acc = C32::new(0.0, 0.0);
            for j in 0..=i {
                acc += wf[i * nc + j] * lane[j];
            }
            *t = acc;
        }
        for (l, t) in lane.iter_mut().zip(&tmp) {
            *l = *t;
        }
    }
}
