//! Coil sensitivity estimation from calibration (ACS) data: ESPIRiT (as BART `ecalib -m1`:
//! calibration matrix, its signal subspace from the eigenvectors of its Gram matrix (faer),
//! image-space per-pixel eigenvectors, crop by eigenvalue) and Walsh/Inati (per-pixel dominant
//! eigenvector of the locally averaged coil covariance).

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

/// Dominant eigenpair of a small Hermitian PSD matrix (row-major n×n) by power iteration: the
/// eigenvalue, with the unit eigenvector left in `v` (`w` is scratch; both of length n).
fn dominant_eig(g: &[C64], n: usize, iters: usize, v: &mut [C64], w: &mut [C64]) -> f64 {
    let zero = C64::new(0.0, 0.0);
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
        v.fill(zero);
        return 0.0;
    }
    for (i, x) in v.iter_mut().enumerate() {
        *x = g[i * n + best];
    }
    let mut lambda = 0.0;
    for _ in 0..iters {
        let nv: f64 = v.iter().map(|x| x.norm_sqr()).sum::<f64>().sqrt();
        if nv == 0.0 {
            break;
        }
        for x in v.iter_mut() {
            *x /= nv;
        }
        for (i, wi) in w.iter_mut().enumerate() {
            *wi = g[i * n..(i + 1) * n]
                .iter()
                .zip(v.iter())
                .fold(zero, |acc, (a, b)| acc + a * b);
        }
        lambda = v.iter().zip(w.iter()).map(|(a, b)| (a.conj() * b).re).sum();
        // Converged when G v is parallel to v: ‖Gv − λv‖ ≤ 1e-7 λ (G is PSD, so no sign flips).
        let resid: f64 = v
            .iter()
            .zip(w.iter())
            .map(|(a, b)| (b - a * lambda).norm_sqr())
            .sum::<f64>()
            .sqrt();
        v.copy_from_slice(w);
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
    lambda
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
    let q = signal_projector(acs, k, p.threshold)?;
    let r = kernel_correlation(&q, nc, k);
    // Per image row: the pixels' Gram matrices and their dominant eigenpairs.
    let mut maps = Array3::<C32>::zeros((nc, ny, nx));
    let mut eig = Array2::<f32>::zeros((ny, nx));
    let gram = ImageGram::new(&r, nc, k, ny, nx);
    let rows: Vec<(Vec<f32>, Vec<C32>)> = (0..ny)
        .into_par_iter()
        .map(|y| {
            let g = gram.row(y);
            let mut m = vec![C64::new(0.0, 0.0); nc * nc];
            let (mut v, mut w) = (vec![C64::new(0.0, 0.0); nc], vec![C64::new(0.0, 0.0); nc]);
            let mut lambdas = vec![0.0f32; nx];
            let mut vecs = vec![C32::new(0.0, 0.0); nc * nx];
            for x in 0..nx {
                gram.matrix(&g, x, &mut m);
                let l = dominant_eig(&m, nc, 60, &mut v, &mut w);
                normalize_phase(&mut v);
                lambdas[x] = l as f32;
                if l >= p.crop {
                    for c in 0..nc {
                        vecs[c * nx + x] = C32::new(v[c].re as f32, v[c].im as f32);
                    }
                }
            }
            (lambdas, vecs)
        })
        .collect();
    for (y, (lambdas, vecs)) in rows.into_iter().enumerate() {
        eig.row_mut(y).assign(&ndarray::ArrayView1::from(&lambdas));
        for c in 0..nc {
            maps.slice_mut(s![c, y, ..])
                .assign(&ndarray::ArrayView1::from(&vecs[c * nx..(c + 1) * nx]));
        }
    }
    Ok((maps, eig))
}

/// The projector onto ESPIRiT's signal subspace, `conj(V_k V_kᴴ)` of the calibration matrix A
/// (one row per kernel position in the ACS block `[c, y, x]`, columns (coil, ky, kx)): V_k are
/// the right singular vectors whose σ² exceed `threshold` × σ²_max, found as the eigenvectors of
/// the Gram matrix AᴴA (σ² are its eigenvalues; as BART's `ecalib` computes them, and ~2× faster
/// than the SVD of A, which has more rows than columns).
fn signal_projector(
    acs: ArrayView3<'_, C32>,
    k: usize,
    threshold: f64,
) -> Result<Mat<C64>, ReconError> {
    let a = calibration_matrix(acs, k);
    let cols = a.ncols();
    let gram = a.adjoint() * &a;
    let evd = gram
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| ReconError::Numerical {
            what: "ESPIRiT calibration eigendecomposition".into(),
            message: format!("{e:?}"),
        })?;
    // Eigenvalues in nondecreasing order: the largest is last.
    let ev = evd.S().column_vector();
    let smax2 = if cols > 0 { ev[cols - 1].re } else { 0.0 };
    if smax2 <= 0.0 {
        return Err(ReconError::Calibration(
            "calibration data are all zero".into(),
        ));
    }
    let kept: Vec<usize> = (0..cols)
        .rev()
        .filter(|&i| ev[i].re > threshold * smax2)
        .collect();
    let kept = if kept.is_empty() {
        vec![cols - 1]
    } else {
        kept
    };
    let u = evd.U();
    // Patches (rows of A = U S Vᴴ) lie in the span of conj(v_k); the projection onto it is
    // conj(V_k V_kᴴ), which is what R below is built from (hence the conjugate there).
    let vk = Mat::<C64>::from_fn(cols, kept.len(), |i, j| u[(i, kept[j])]);
    Ok(&vk * vk.adjoint())
}

/// ESPIRiT's calibration matrix of the ACS block `[c, y, x]`: one row per position of a k×k
/// kernel inside the block, columns (coil, ky, kx).
fn calibration_matrix(acs: ArrayView3<'_, C32>, k: usize) -> Mat<C64> {
    let (nc, ay, ax) = acs.dim();
    let rows = (ay - k + 1) * (ax - k + 1);
    Mat::<C64>::from_fn(rows, nc * k * k, |r, c| {
        let py = r / (ax - k + 1);
        let px = r % (ax - k + 1);
        let coil = c / (k * k);
        let my = (c / k) % k;
        let mx = c % k;
        let v = acs[[coil, py + my, px + mx]];
        C64::new(v.re as f64, v.im as f64)
    })
}

/// The coil pairs c ≤ c′ of `nc` coils, in order, and the index of pair (c, c′) in it.
fn pair_index(nc: usize, c: usize, c2: usize) -> usize {
    // Row c of the upper triangle starts after c rows of lengths nc, nc − 1, …
    c * nc - c * (c.saturating_sub(1)) / 2 - c + c2
}

/// R_cc′(d) = Σ_m Q[(c,m),(c′,m−d)], d ∈ [−(k−1), k−1]², for the pairs c ≤ c′ (R_c′c(d) =
/// conj(R_cc′(−d)), Q being Hermitian): `[pair][dy][dx]`, `kd = 2k − 1` per axis.
fn kernel_correlation(q: &Mat<C64>, nc: usize, k: usize) -> Vec<C64> {
    let kd = 2 * k - 1;
    let npairs = nc * (nc + 1) / 2;
    let mut r = vec![C64::new(0.0, 0.0); npairs * kd * kd];
    for c in 0..nc {
        for c2 in c..nc {
            let pair = pair_index(nc, c, c2);
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
                    r[(pair * kd + dy) * kd + dx] = acc;
                }
            }
        }
    }
    r
}

/// The image-space Gram matrices G_cc′(r) of ESPIRiT: conj(R_cc′) embedded at the k-space
/// centre of an ny×nx grid, centred orthonormal inverse DFT, scaled by √(ny·nx)/k² — computed
/// as the separable sum over R's (2k − 1)² taps in float64 (the same values as the centred
/// inverse FFT of the embedded plane, without its ny·nx planes: per row y, the pairs c ≤ c′).
struct ImageGram {
    nc: usize,
    nx: usize,
    kd: usize,
    /// T[pair][dy][x] = Σ_dx conj(R[pair][dy][dx]) e^{2πi ddx (x − nx/2)/nx} / k².
    t: Vec<C64>,
    /// e^{2πi ddy (y − ny/2)/ny} per [y][dy], the y factor of the sum (0 for taps that fall
    /// outside the grid).
    ey: Vec<C64>,
}

impl ImageGram {
    fn new(r: &[C64], nc: usize, k: usize, ny: usize, nx: usize) -> Self {
        let kd = 2 * k - 1;
        let npairs = nc * (nc + 1) / 2;
        // The tap at offset dd sits at grid index n/2 + dd; the centred inverse DFT of a plane
        // P is (1/√n) Σ_l P[l] e^{2πi (l − n/2)(j − n/2)/n} along each axis.
        let factor = |n: usize, j: usize, dd: i64| -> C64 {
            let l = n as i64 / 2 + dd;
            if l < 0 || l >= n as i64 {
                return C64::new(0.0, 0.0);
            }
            let ph =
                2.0 * std::f64::consts::PI * (dd * (j as i64 - n as i64 / 2)) as f64 / n as f64;
            C64::new(ph.cos(), ph.sin())
        };
        let off = |d: usize| d as i64 - (k as i64 - 1);
        let ex: Vec<C64> = (0..nx)
            .flat_map(|x| (0..kd).map(move |dx| (x, dx)))
            .map(|(x, dx)| factor(nx, x, off(dx)))
            .collect();
        let ey: Vec<C64> = (0..ny)
            .flat_map(|y| (0..kd).map(move |dy| (y, dy)))
            .map(|(y, dy)| factor(ny, y, off(dy)))
            .collect();
        // √(ny·nx)/k² × 1/√(ny·nx) of the orthonormal transform.
        let scale = 1.0 / (k * k) as f64;
        let mut t = vec![C64::new(0.0, 0.0); npairs * kd * nx];
        for pair in 0..npairs {
            for dy in 0..kd {
                let taps = &r[(pair * kd + dy) * kd..(pair * kd + dy + 1) * kd];
                for x in 0..nx {
                    let e = &ex[x * kd..(x + 1) * kd];
                    let acc = taps
                        .iter()
                        .zip(e)
                        .fold(C64::new(0.0, 0.0), |acc, (r, e)| acc + r.conj() * e);
                    t[(pair * kd + dy) * nx + x] = acc * scale;
                }
            }
        }
        ImageGram { nc, nx, kd, t, ey }
    }

    /// Row y of every pair's plane: `[pair][x]`.
    fn row(&self, y: usize) -> Vec<C64> {
        let (nx, kd) = (self.nx, self.kd);
        let npairs = self.nc * (self.nc + 1) / 2;
        let e = &self.ey[y * kd..(y + 1) * kd];
        let mut out = vec![C64::new(0.0, 0.0); npairs * nx];
        for pair in 0..npairs {
            let o = &mut out[pair * nx..(pair + 1) * nx];
            for (dy, &f) in e.iter().enumerate() {
                if f == C64::new(0.0, 0.0) {
                    continue;
                }
                let t = &self.t[(pair * kd + dy) * nx..(pair * kd + dy + 1) * nx];
                for (o, &t) in o.iter_mut().zip(t) {
                    *o += f * t;
                }
            }
        }
        out
    }

    /// Pixel x's full nc×nc Hermitian matrix (row-major) from a [`row`](Self::row).
    fn matrix(&self, row: &[C64], x: usize, m: &mut [C64]) {
        let nc = self.nc;
        for c in 0..nc {
            for c2 in c..nc {
                let v = row[pair_index(nc, c, c2) * self.nx + x];
                if c == c2 {
                    // Real in exact arithmetic (R_cc(d) = conj(R_cc(−d))).
                    m[c * nc + c] = C64::new(v.re, 0.0);
                } else {
                    m[c * nc + c2] = v;
                    m[c2 * nc + c] = v.conj();
                }
            }
        }
    }
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
            let (mut v, mut w) = (vec![C64::new(0.0, 0.0); nc], vec![C64::new(0.0, 0.0); nc]);
            dominant_eig(&m, nc, 30, &mut v, &mut w);
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

    /// A noisy 8-coil brain phantom's k-space `[c, y, x]` (fully sampled, 64²) and its centred
    /// 24² ACS block, as ESPIRiT sees them.
    fn calibration() -> Array3<C32> {
        let p = basin_phantom::generate(&basin_phantom::PhantomSpec {
            kind: basin_phantom::Kind::Brain,
            matrix: 64,
            coils: 8,
            accel: 1.0,
            center_fraction: 1.0,
            mask: basin_phantom::MaskKind::Equispaced,
            noise: 0.01,
            seed: 3,
        })
        .expect("phantom");
        p.kspace.slice(s![.., 20..44, 20..44]).to_owned()
    }

    /// The projector from the Gram matrix's eigenvectors equals the one from the calibration
    /// matrix's SVD (faer's thin SVD, float64), as the old code computed it.
    #[test]
    fn signal_projector_from_the_gram_matrix_equals_the_svds() {
        let acs = calibration();
        let k = 6;
        let q = signal_projector(acs.view(), k, 0.001).unwrap();
        let a = calibration_matrix(acs.view(), k);
        let cols = a.ncols();
        let svd = a.thin_svd().unwrap();
        let sv = svd.S().column_vector();
        let kept = (0..sv.nrows())
            .filter(|&i| sv[i].re * sv[i].re > 0.001 * sv[0].re * sv[0].re)
            .count();
        assert!(
            kept > 10 && kept < cols,
            "kept {kept} of {cols}: a trivial subspace"
        );
        let vk = Mat::<C64>::from_fn(cols, kept, |i, j| svd.V()[(i, j)]);
        let reference = &vk * vk.adjoint();
        let (mut diff, mut norm) = (0.0f64, 0.0f64);
        for i in 0..cols {
            for j in 0..cols {
                diff += (q[(i, j)] - reference[(i, j)]).norm_sqr();
                norm += reference[(i, j)].norm_sqr();
            }
        }
        let rel = (diff / norm).sqrt();
        assert!(rel < 1e-9, "projector relative difference {rel:e}");
    }

    /// The separable float64 sum of [`ImageGram`] equals the centred inverse FFT (basin-core,
    /// float32) of conj(R) embedded at the k-space centre and scaled by √(ny·nx)/k², for every
    /// pair c ≤ c′ — and for c > c′ the FFT of the full R (computed here by a plain loop over
    /// Q) is the conjugate of the pair's value, so the pixel matrices are Hermitian. Odd and
    /// even grids.
    #[test]
    fn image_gram_equals_the_centred_inverse_fft_of_the_embedded_kernel() {
        let acs = calibration();
        let nc = acs.dim().0;
        let k = 5;
        let kd = 2 * k - 1;
        let q = signal_projector(acs.view(), k, 0.001).unwrap();
        let r = kernel_correlation(&q, nc, k);
        // R for every ordered pair, by the definition R_cc′(d) = Σ_m Q[(c,m),(c′,m−d)].
        let full = |c: usize, c2: usize, dy: i64, dx: i64| -> C64 {
            let mut acc = C64::new(0.0, 0.0);
            for my in 0..k as i64 {
                for mx in 0..k as i64 {
                    let (m2y, m2x) = (my - dy, mx - dx);
                    if (0..k as i64).contains(&m2y) && (0..k as i64).contains(&m2x) {
                        acc += q[(
                            c * k * k + (my * k as i64 + mx) as usize,
                            c2 * k * k + (m2y * k as i64 + m2x) as usize,
                        )];
                    }
                }
            }
            acc
        };
        for &(ny, nx) in &[(24usize, 20usize), (23, 27)] {
            let gram = ImageGram::new(&r, nc, k, ny, nx);
            let scale = ((ny * nx) as f64).sqrt() / (k * k) as f64;
            let mut planes = Array3::<C32>::zeros((nc * nc, ny, nx));
            for c in 0..nc {
                for c2 in 0..nc {
                    for dy in 0..kd {
                        for dx in 0..kd {
                            let (ddy, ddx) =
                                (dy as i64 - (k as i64 - 1), dx as i64 - (k as i64 - 1));
                            let v = full(c, c2, ddy, ddx).conj() * scale;
                            let (yy, xx) = (ny as i64 / 2 + ddy, nx as i64 / 2 + ddx);
                            planes[[c * nc + c2, yy as usize, xx as usize]] =
                                C32::new(v.re as f32, v.im as f32);
                        }
                    }
                }
            }
            ifftc(planes.view_mut(), &[1, 2]);
            let mut m = vec![C64::new(0.0, 0.0); nc * nc];
            let (mut diff, mut norm) = (0.0f64, 0.0f64);
            for y in 0..ny {
                let row = gram.row(y);
                for x in 0..nx {
                    gram.matrix(&row, x, &mut m);
                    for i in 0..nc * nc {
                        let f = planes[[i, y, x]];
                        diff += (m[i] - C64::new(f.re as f64, f.im as f64)).norm_sqr();
                        norm += m[i].norm_sqr();
                    }
                }
            }
            let rel = (diff / norm).sqrt();
            assert!(
                rel < 1e-5,
                "{ny}×{nx}: Gram matrices vs inverse FFT, relative {rel:e}"
            );
        }
    }

    /// Power iteration against faer's Hermitian eigendecomposition (float64): random PSD 8×8
    /// matrices with a dominant eigenvalue, and ESPIRiT's own pixel matrices of the phantom.
    #[test]
    fn dominant_eig_matches_a_full_eigendecomposition() {
        let mut rng = basin_core::rng::Rng::new(11);
        let n = 8;
        let mut mats: Vec<Vec<C64>> = Vec::new();
        for trial in 0..20 {
            // B diag(d) Bᴴ with B random: PSD, eigen gap set by d.
            let b: Vec<C64> = (0..n * n)
                .map(|_| C64::new(rng.normal(), rng.normal()))
                .collect();
            let d: Vec<f64> = (0..n)
                .map(|i| {
                    if i == 0 {
                        4.0 + trial as f64
                    } else {
                        rng.uniform()
                    }
                })
                .collect();
            let mut g = vec![C64::new(0.0, 0.0); n * n];
            for i in 0..n {
                for j in 0..n {
                    g[i * n + j] = (0..n)
                        .map(|l| b[i * n + l] * d[l] * b[j * n + l].conj())
                        .sum();
                }
            }
            mats.push(g);
        }
        let acs = calibration();
        let q = signal_projector(acs.view(), 6, 0.001).unwrap();
        let r = kernel_correlation(&q, n, 6);
        let gram = ImageGram::new(&r, n, 6, 64, 64);
        for y in [10, 32, 50] {
            let row = gram.row(y);
            for x in [12, 32, 40] {
                let mut m = vec![C64::new(0.0, 0.0); n * n];
                gram.matrix(&row, x, &mut m);
                mats.push(m);
            }
        }
        for (t, g) in mats.iter().enumerate() {
            let (mut v, mut w) = (vec![C64::new(0.0, 0.0); n], vec![C64::new(0.0, 0.0); n]);
            let l = dominant_eig(g, n, 500, &mut v, &mut w);
            let a = Mat::<C64>::from_fn(n, n, |i, j| g[i * n + j]);
            let evd = a.self_adjoint_eigen(faer::Side::Lower).unwrap();
            let (l0, l1) = (
                evd.S().column_vector()[n - 1].re,
                evd.S().column_vector()[n - 2].re,
            );
            assert!((l - l0).abs() <= 1e-9 * l0, "matrix {t}: λ {l} vs {l0}");
            if l1 < 0.99 * l0 {
                let ip: C64 = (0..n).map(|i| evd.U()[(i, n - 1)].conj() * v[i]).sum();
                assert!(
                    1.0 - ip.norm() < 1e-9,
                    "matrix {t}: |⟨v, u⟩| = {}",
                    ip.norm()
                );
            }
        }
    }

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
