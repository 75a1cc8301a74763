//! Coil sensitivity estimation from calibration (ACS) data: ESPIRiT (as BART `ecalib -m1`:
//! calibration matrix, SVD with faer, image-space per-pixel eigenvectors, crop by eigenvalue)
//! and Walsh/Inati (per-pixel dominant eigenvector of the locally averaged coil covariance).

use crate::ReconError;
use basin_core::fft::ifftc;
use basin_core::{C32, C64};
use faer::Mat;
use ndarray::{s, Array2, Array3, Array4, ArrayView3, Axis};
use rayon::prelude::*;

/// ESPIRiT parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EspiritParams {
    /// Largest kernel width (BART `-k`, default 6); smaller on a short calibration block (see
    /// [`effective_kernel`]).
    #[serde(default = "d_kernel")]
    pub kernel: usize,
    /// Largest calibration region used per axis (BART `-r`, default 24).
    #[serde(default = "d_calib")]
    pub calib_size: usize,
    /// Singular values with σ² below threshold × σ²_max span the null space (BART `-t`, which
    /// thresholds eigenvalues of AᴴA, i.e. squared singular values; default 0.001).
    #[serde(default = "d_thresh")]
    pub threshold: f64,
    /// Maps are zero where the eigenvalue is below `crop` (BART `-c`, default 0.8).
    #[serde(default = "d_crop")]
    pub crop: f64,
}
fn d_kernel() -> usize {
    6
}
fn d_calib() -> usize {
    24
}
fn d_thresh() -> f64 {
    0.001
}
fn d_crop() -> f64 {
    0.8
}
impl Default for EspiritParams {
    fn default() -> Self {
        EspiritParams {
            kernel: 6,
            calib_size: 24,
            threshold: 0.001,
            crop: 0.8,
        }
    }
}

/// The largest centred region `[y0..y1) × [x0..x1)` that is fully sampled in `mask` `[y, x]`:
/// a block of full rows around the centre row (phase encoding along y, as ISMRMRD files store
/// it), else a block of full columns around the centre column (along x, as fastMRI files
/// store it). Empty (`y0 == y1`, `x0 == x1`) when neither centre line is fully sampled.
pub fn acs_region(mask: ndarray::ArrayView2<'_, bool>) -> (usize, usize, usize, usize) {
    let (ny, nx) = mask.dim();
    let full_block = |n: usize, full: &dyn Fn(usize) -> bool| {
        let c = n / 2;
        if n == 0 || !full(c) {
            return None;
        }
        let (mut a, mut b) = (c, c + 1);
        while a > 0 && full(a - 1) {
            a -= 1;
        }
        while b < n && full(b) {
            b += 1;
        }
        Some((a, b))
    };
    if let Some((y0, y1)) = full_block(ny, &|y| mask.row(y).iter().all(|&m| m)) {
        return (y0, y1, 0, nx);
    }
    if let Some((x0, x1)) = full_block(nx, &|x| mask.column(x).iter().all(|&m| m)) {
        return (0, ny, x0, x1);
    }
    (ny / 2, ny / 2, nx / 2, nx / 2)
}

/// Fully sampled phase-encoding lines of an [`acs_region`] (the shorter side of the block).
pub fn acs_lines(region: (usize, usize, usize, usize)) -> usize {
    (region.1 - region.0).min(region.3 - region.2)
}

/// Dominant eigenpair of a small Hermitian PSD matrix (row-major n×n) by power iteration.
fn dominant_eig(g: &[C64], n: usize, iters: usize) -> (f64, Vec<C64>) {
    // Start from the column with the largest norm.
    let mut best = 0;
    let mut best_norm = -1.0;
    for j in 0..n {
        let nrm: f64 = (0..n).map(|i| g[i * n + j].norm_sqr()).sum();
        if nrm > best_norm {
            best_norm = nrm;
            best = j;
        }
    }
    if best_norm <= 0.0 {
        return (0.0, vec![C64::new(0.0, 0.0); n]);
    }
    let mut v: Vec<C64> = (0..n).map(|i| g[i * n + best]).collect();
    let mut w = vec![C64::new(0.0, 0.0); n];
    let mut lambda = 0.0;
    for _ in 0..iters {
        let nv: f64 = v.iter().map(|x| x.norm_sqr()).sum::<f64>().sqrt();
        if nv == 0.0 {
            break;
        }
        for x in v.iter_mut() {
            *x /= nv;
        }
        for i in 0..n {
            let mut acc = C64::new(0.0, 0.0);
            for j in 0..n {
                acc += g[i * n + j] * v[j];
            }
            w[i] = acc;
        }
        lambda = v.iter().zip(&w).map(|(a, b)| (a.conj() * b).re).sum();
        // Converged when G v is parallel to v: ‖Gv − λv‖ ≤ 1e-7 λ (G is PSD, so no sign flips).
        let resid: f64 = v
            .iter()
            .zip(&w)
            .map(|(a, b)| (b - a * lambda).norm_sqr())
            .sum::<f64>()
            .sqrt();
        std::mem::swap(&mut v, &mut w);
        if resid <= 1e-7 * lambda.abs() {
            break;
        }
    }
    let nv: f64 = v.iter().map(|x| x.norm_sqr()).sum::<f64>().sqrt();
    if nv > 0.0 {
        for x in v.iter_mut() {
            *x /= nv;
        }
    }
    (lambda, v)
}

/// Rotates each pixel's map vector so that coil 0 has zero phase (BART's convention).
fn normalize_phase(v: &mut [C64]) {
    let r = v[0].norm();
    if r > 0.0 {
        let ph = v[0].conj() / r;
        for x in v.iter_mut() {
            *x *= ph;
        }
    }
}

/// The ESPIRiT kernel width used on a calibration block whose shorter side is `lines`: the
/// configured `kernel`, made smaller where needed so that the kernel fits at least as many
/// times along each side as it has taps there (`lines − k + 1 ≥ k`), but not below 3 (or the
/// configured width, if smaller). With fewer positions than taps the calibration matrix leaves
/// the signal subspace undetermined along that axis, and the maps can fail badly: kernel 6 on
/// 9 ACS lines (8× with 4 % ACS on 234 phase encodes) gave map errors 20–80× those of
/// kernel 5 on four of five validation slices (benches/RESULTS.md, 2026-12-07).
pub fn effective_kernel(kernel: usize, lines: usize) -> usize {
    kernel.min(lines.div_ceil(2).max(3))
}

/// ESPIRiT maps `[c, y, x]` of shape `(ny, nx)` from 2D calibration k-space `[c, y, x]` with its
/// sampling mask `[y, x]`. Also returns the per-pixel dominant eigenvalue.
pub fn espirit_2d(
    calib: ArrayView3<'_, C32>,
    mask: ndarray::ArrayView2<'_, bool>,
    p: &EspiritParams,
) -> Result<(Array3<C32>, Array2<f32>), ReconError> {
    let (nc, ny, nx) = calib.dim();
    let (y0, y1, x0, x1) = acs_region(mask);
    let ay = (y1 - y0).min(p.calib_size);
    let ax = (x1 - x0).min(p.calib_size);
    let k = effective_kernel(p.kernel, ay.min(ax));
    if ay < k + 2 || ax < k + 2 {
        return Err(ReconError::Calibration(format!(
            "the fully sampled centre is {}×{} lines; ESPIRiT with kernel {k} needs at least {}×{} (use protocol calibration method \"walsh\" or acquire more ACS lines)",
            y1 - y0,
            x1 - x0,
            k + 2,
            k + 2
        )));
    }
    // Centre the calibration block on the k-space centre.
    let cy0 = (ny / 2).saturating_sub(ay / 2).clamp(y0, y1 - ay);
    let cx0 = (nx / 2).saturating_sub(ax / 2).clamp(x0, x1 - ax);
    let acs = calib.slice(s![.., cy0..cy0 + ay, cx0..cx0 + ax]);
    // Calibration matrix: one row per kernel position, columns (coil, ky, kx).
    let rows = (ay - k + 1) * (ax - k + 1);
    let cols = nc * k * k;
    let a = Mat::<C64>::from_fn(rows, cols, |r, c| {
        let py = r / (ax - k + 1);
        let px = r % (ax - k + 1);
        let coil = c / (k * k);
        let my = (c / k) % k;
        let mx = c % k;
        let v = acs[[coil, py + my, px + mx]];
        C64::new(v.re as f64, v.im as f64)
    });
    let svd = a.thin_svd().map_err(|e| ReconError::Numerical {
        what: "ESPIRiT calibration SVD".into(),
        message: format!("{e:?}"),
    })?;
    let sv = svd.S().column_vector();
    let smax = if sv.nrows() > 0 { sv[0].re } else { 0.0 };
    if smax <= 0.0 {
        return Err(ReconError::Calibration(
            "calibration data are all zero".into(),
        ));
    }
    let kept = (0..sv.nrows())
        .filter(|&i| sv[i].re * sv[i].re > p.threshold * smax * smax)
        .count()
        .max(1);
    let v = svd.V();
    // Patches (rows of A = U S Vᴴ) lie in the span of conj(v_k); the projection onto it is
    // conj(V_k V_kᴴ), which is what R below is built from (hence the conjugate there).
    let vk = Mat::<C64>::from_fn(cols, kept, |i, j| v[(i, j)]);
    let q = &vk * vk.adjoint();
    // R_cc'(d) = Σ_m Q[(c,m),(c',m−d)], d ∈ [−(k−1), k−1]².
    let kd = 2 * k - 1;
    let mut r = vec![C64::new(0.0, 0.0); nc * nc * kd * kd];
    for c in 0..nc {
        for c2 in 0..nc {
            for dy in 0..kd {
                for dx in 0..kd {
                    let (ddy, ddx) = (dy as i64 - (k as i64 - 1), dx as i64 - (k as i64 - 1));
                    let mut acc = C64::new(0.0, 0.0);
                    for my in 0..k as i64 {
                        let m2y = my - ddy;
                        if m2y < 0 || m2y >= k as i64 {
                            continue;
                        }
                        for mx in 0..k as i64 {
                            let m2x = mx - ddx;
                            if m2x < 0 || m2x >= k as i64 {
                                continue;
                            }
                            let i = c * k * k + (my as usize) * k + mx as usize;
                            let j = c2 * k * k + (m2y as usize) * k + m2x as usize;
                            acc += q[(i, j)];
                        }
                    }
                    r[((c * nc + c2) * kd + dy) * kd + dx] = acc;
                }
            }
        }
    }
    // Image-space Gram matrices G_cc'(r): R embedded at the k-space centre, centred inverse FFT.
    let scale = ((ny * nx) as f64).sqrt() / (k * k) as f64;
    let mut g = Array3::<C32>::zeros((nc * nc, ny, nx));
    for c in 0..nc {
        for c2 in 0..nc {
            let mut plane = g.index_axis_mut(Axis(0), c * nc + c2);
            for dy in 0..kd {
                for dx in 0..kd {
                    let yy = ny as i64 / 2 + dy as i64 - (k as i64 - 1);
                    let xx = nx as i64 / 2 + dx as i64 - (k as i64 - 1);
                    if yy >= 0 && yy < ny as i64 && xx >= 0 && xx < nx as i64 {
                        let val = r[((c * nc + c2) * kd + dy) * kd + dx].conj() * scale;
                        plane[[yy as usize, xx as usize]] = C32::new(val.re as f32, val.im as f32);
                    }
                }
            }
        }
    }
    ifftc(g.view_mut(), &[1, 2]);
    // Per pixel: dominant eigenvector.
    let mut maps = Array3::<C32>::zeros((nc, ny, nx));
    let mut eig = Array2::<f32>::zeros((ny, nx));
    let results: Vec<(f64, Vec<C64>)> = (0..ny * nx)
        .into_par_iter()
        .map(|idx| {
            let (y, x) = (idx / nx, idx % nx);
            let mut m = vec![C64::new(0.0, 0.0); nc * nc];
            for i in 0..nc * nc {
                let v = g[[i, y, x]];
                m[i] = C64::new(v.re as f64, v.im as f64);
            }
            let (l, mut v) = dominant_eig(&m, nc, 60);
            normalize_phase(&mut v);
            (l, v)
        })
        .collect();
    for (idx, (l, v)) in results.into_iter().enumerate() {
        let (y, x) = (idx / nx, idx % nx);
        eig[[y, x]] = l as f32;
        if l >= p.crop {
            for c in 0..nc {
                maps[[c, y, x]] = C32::new(v[c].re as f32, v[c].im as f32);
            }
        }
    }
    Ok((maps, eig))
}

/// Walsh/Inati maps `[c, y, x]`: low-resolution coil images from the ACS region (zero-padded),
/// coil covariance averaged over a `window`×`window` neighbourhood, dominant eigenvector.
pub fn walsh_2d(
    calib: ArrayView3<'_, C32>,
    mask: ndarray::ArrayView2<'_, bool>,
    window: usize,
) -> Result<Array3<C32>, ReconError> {
    let (nc, ny, nx) = calib.dim();
    let region = acs_region(mask);
    let (y0, y1, x0, x1) = region;
    if acs_lines(region) < 4 {
        return Err(ReconError::Calibration(format!(
            "the fully sampled centre is {} lines; Walsh maps need at least 4",
            acs_lines(region)
        )));
    }
    let mut low = Array3::<C32>::zeros((nc, ny, nx));
    low.slice_mut(s![.., y0..y1, x0..x1])
        .assign(&calib.slice(s![.., y0..y1, x0..x1]));
    ifftc(low.view_mut(), &[1, 2]);
    let h = window / 2;
    let results: Vec<Vec<C64>> = (0..ny * nx)
        .into_par_iter()
        .map(|idx| {
            let (y, x) = (idx / nx, idx % nx);
            let mut m = vec![C64::new(0.0, 0.0); nc * nc];
            for yy in y.saturating_sub(h)..(y + h + 1).min(ny) {
                for xx in x.saturating_sub(h)..(x + h + 1).min(nx) {
                    for i in 0..nc {
                        let a = low[[i, yy, xx]];
                        let a = C64::new(a.re as f64, a.im as f64);
                        for j in 0..nc {
                            let b = low[[j, yy, xx]];
                            m[i * nc + j] += a * C64::new(b.re as f64, -b.im as f64);
                        }
                    }
                }
            }
            let (_, mut v) = dominant_eig(&m, nc, 30);
            normalize_phase(&mut v);
            v
        })
        .collect();
    let mut maps = Array3::<C32>::zeros((nc, ny, nx));
    for (idx, v) in results.into_iter().enumerate() {
        let (y, x) = (idx / nx, idx % nx);
        for c in 0..nc {
            maps[[c, y, x]] = C32::new(v[c].re as f32, v[c].im as f32);
        }
    }
    Ok(maps)
}

/// Coil maps `[c, z, y, x]` for a bucket: 2D estimation per z (for 3D data the calibration is
/// first transformed along z, so each partition is calibrated in hybrid space). Single-coil
/// data (fastMRI's single-coil files) get a map of ones: the operator is then the masked FFT,
/// its data consistency the exact projection onto the measured samples, and no calibration
/// lines are needed.
pub fn estimate(
    method: &crate::protocol::Calibration,
    calib: &Array4<C32>,
    calib_mask: &ndarray::Array3<bool>,
    three_d: bool,
) -> Result<Array4<C32>, ReconError> {
    let (nc, nz, ny, nx) = calib.dim();
    if nc == 1 {
        return Ok(Array4::from_elem((1, nz, ny, nx), C32::new(1.0, 0.0)));
    }
    let mut hybrid = calib.clone();
    if three_d {
        basin_core::fft::ifftc(hybrid.view_mut(), &[1]);
    }
    // In-plane mask: a (y, x) position counts as sampled if it is in any partition.
    let mask2 = calib_mask.map_axis(Axis(0), |v| v.iter().any(|&m| m));
    let mut maps = Array4::<C32>::zeros((nc, nz, ny, nx));
    for z in 0..nz {
        let cz = hybrid.slice(s![.., z, .., ..]);
        // A 3D partition without calibration signal (outside the object) has no sensitivity
        // to estimate: its maps stay zero, so the solver returns zero there.
        if three_d && cz.iter().all(|v| v.norm_sqr() == 0.0) {
            continue;
        }
        let m = match method {
            crate::protocol::Calibration::Espirit(p) => espirit_2d(cz, mask2.view(), p)?.0,
            crate::protocol::Calibration::Walsh { window } => walsh_2d(cz, mask2.view(), *window)?,
        };
        maps.slice_mut(s![.., z, .., ..]).assign(&m);
    }
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Phase encoding along y (full rows), along x (full columns, fastMRI), and neither.
    #[test]
    fn acs_region_finds_full_rows_or_full_columns() {
        let rows =
            ndarray::Array2::from_shape_fn((16, 12), |(y, x)| (6..11).contains(&y) || x == 3);
        assert_eq!(acs_region(rows.view()), (6, 11, 0, 12));
        assert_eq!(acs_lines(acs_region(rows.view())), 5);
        let cols = ndarray::Array2::from_shape_fn((16, 12), |(y, x)| (4..9).contains(&x) || y == 2);
        assert_eq!(acs_region(cols.view()), (0, 16, 4, 9));
        assert_eq!(acs_lines(acs_region(cols.view())), 5);
        let none = ndarray::Array2::from_shape_fn((16, 12), |(y, x)| y == 8 && x == 6);
        assert_eq!(acs_lines(acs_region(none.view())), 0);
    }
}
