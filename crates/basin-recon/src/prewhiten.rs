//! Noise prewhitening: the coil noise covariance Ψ from the noise scan, scaled to the imaging
//! bandwidth, its Cholesky factor Ψ = L Lᴴ (faer), and the whitening transform W = L⁻¹ applied
//! along the coil axis so that the whitened noise is white with unit variance.
//!
//! Whitening changes the statistical weighting, never the image: coil maps estimated on whitened
//! data would have unit norm in the *whitened* coil space, W s / ‖W s‖, and give the image
//! ρ ‖W s‖, shaded by the noise covariance. So the maps are estimated on the unwhitened
//! calibration data (s/‖s‖) and [`whiten_maps`] gives the solvers the operator maps W s/‖s‖ (up to
//! one global constant) under which they see ρ ‖s‖ in every iteration.

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
    let l = cholesky_lower(cov, scale)?;
    let n = l.shape()[0];
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
                s -= l[[i, k]] * w[[k, col]];
            }
            w[[i, col]] = s / l[[i, i]];
        }
    }
    Ok(w)
}

/// The lower Cholesky factor L of Ψ·scale = L Lᴴ (W⁻¹, which takes whitened coil vectors back
/// to the original coil space).
pub fn cholesky_lower(cov: &Array2<C64>, scale: f64) -> Result<Array2<C64>, ReconError> {
    let n = cov.shape()[0];
    let m = Mat::<C64>::from_fn(n, n, |i, j| cov[[i, j]] * scale);
    let llt = m.llt(Side::Lower).map_err(|e| ReconError::Numerical {
        what: "noise covariance".into(),
        message: format!("not positive definite ({e:?}); is a coil dead or the noise scan empty?"),
    })?;
    let l = llt.L();
    Ok(Array2::from_shape_fn((n, n), |(i, j)| {
        if j <= i {
            l[(i, j)]
        } else {
            C64::new(0.0, 0.0)
        }
    }))
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

/// Operator maps for whitened data from unit-norm maps `maps` `[c, z, y, x]` estimated in the
/// original coil space: k · W s/‖s‖, with k = 1 / median ‖W s/‖s‖‖ over the maps' support so the
/// operator's norm stays near 1. The solvers' image is then ρ ‖s‖ / k; multiply it by k.
pub fn whiten_maps(maps: &Array4<C32>, w: &Array2<C64>) -> (Array4<C32>, f32) {
    let (nc, nz, ny, nx) = maps.dim();
    let mut out = Array4::<C32>::zeros((nc, nz, ny, nx));
    let mut norms = Vec::new();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let mut n2 = 0.0f64;
                for i in 0..nc {
                    let mut acc = C64::new(0.0, 0.0);
                    for j in 0..=i {
                        let v = maps[[j, z, y, x]];
                        acc += w[[i, j]] * C64::new(v.re as f64, v.im as f64);
                    }
                    n2 += acc.norm_sqr();
                    out[[i, z, y, x]] = C32::new(acc.re as f32, acc.im as f32);
                }
                if n2 > 0.0 {
                    norms.push(n2.sqrt() as f32);
                }
            }
        }
    }
    let k = if norms.is_empty() {
        1.0
    } else {
        let m = norms.len() / 2;
        1.0 / *norms.select_nth_unstable_by(m, |a, b| a.total_cmp(b)).1
    };
    out.mapv_inplace(|v| v * k);
    (out, k)
}
