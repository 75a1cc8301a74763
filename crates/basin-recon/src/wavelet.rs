//! Orthogonal 2D discrete wavelet transform with Daubechies-2 filters (four taps, the wavelet
//! of BART's `pics -l1`), periodic boundaries, Mallat layout (the approximation band in the
//! top-left corner), applied to each slice `[y, x]` of a `[z, y, x]` complex image. Because the
//! transform is orthogonal, the inverse is the transpose and soft-thresholding its
//! coefficients is the exact proximal operator of the ℓ1 norm in the wavelet domain.

use basin_core::C32;
use ndarray::{Array3, ArrayViewMut1, Axis};

/// Daubechies-2 decomposition low-pass filter (Daubechies 1992, Table 6.1; pywt `db2.dec_lo`
/// reversed).
pub const DB2_LO: [f32; 4] = [0.482_962_9, 0.836_516_3, 0.224_143_87, -0.129_409_52];

fn high(lo: &[f32; 4]) -> [f32; 4] {
    // g[k] = (−1)^k h[L−1−k]
    [lo[3], -lo[2], lo[1], -lo[0]]
}

fn analysis_1d(v: &mut ArrayViewMut1<'_, C32>, n: usize, tmp: &mut Vec<C32>) {
    let (h, g) = (DB2_LO, high(&DB2_LO));
    tmp.clear();
    tmp.resize(n, C32::new(0.0, 0.0));
    let half = n / 2;
    for i in 0..half {
        let (mut a, mut d) = (C32::new(0.0, 0.0), C32::new(0.0, 0.0));
        for k in 0..4 {
            let x = v[(2 * i + k) % n];
            a += x * h[k];
            d += x * g[k];
        }
        tmp[i] = a;
        tmp[half + i] = d;
    }
    for i in 0..n {
        v[i] = tmp[i];
    }
}

fn synthesis_1d(v: &mut ArrayViewMut1<'_, C32>, n: usize, tmp: &mut Vec<C32>) {
    let (h, g) = (DB2_LO, high(&DB2_LO));
    tmp.clear();
    tmp.resize(n, C32::new(0.0, 0.0));
    let half = n / 2;
    for i in 0..half {
        let (a, d) = (v[i], v[half + i]);
        for k in 0..4 {
            tmp[(2 * i + k) % n] += a * h[k] + d * g[k];
        }
    }
    for i in 0..n {
        v[i] = tmp[i];
    }
}

/// Number of levels for an `ny`×`nx` slice: halve while both sides are even and at least 8,
/// at most `max_levels`.
pub fn levels_for(ny: usize, nx: usize, max_levels: usize) -> usize {
    let (mut a, mut b, mut l) = (ny, nx, 0);
    while l < max_levels && a % 2 == 0 && b % 2 == 0 && a >= 8 && b >= 8 {
        a /= 2;
        b /= 2;
        l += 1;
    }
    l
}

/// The smallest sides ≥ (`ny`, `nx`) that are multiples of 2^`max_levels`: the grid on which
/// L1-wavelet transforms an `ny`×`nx` slice (zero-padded at the high end), so that a matrix
/// such as 234 × 198, whose halves are odd after one level, still gets `max_levels` levels
/// instead of one (one level leaves the approximation band, a quarter of the coefficients and
/// most of the image's energy, unregularised).
pub fn padded_size(ny: usize, nx: usize, max_levels: usize) -> (usize, usize) {
    let m = 1usize << max_levels.min(16);
    (ny.div_ceil(m) * m, nx.div_ceil(m) * m)
}

/// Forward transform of every slice with `levels` levels (see [`levels_for`]).
pub fn forward(x: &mut Array3<C32>, levels: usize) {
    let mut tmp = Vec::new();
    for mut sl in x.axis_iter_mut(Axis(0)) {
        let (mut ny, mut nx) = sl.dim();
        for _ in 0..levels {
            for y in 0..ny {
                analysis_1d(
                    &mut sl.row_mut(y).slice_mut(ndarray::s![..nx]),
                    nx,
                    &mut tmp,
                );
            }
            for xx in 0..nx {
                analysis_1d(
                    &mut sl.column_mut(xx).slice_mut(ndarray::s![..ny]),
                    ny,
                    &mut tmp,
                );
            }
            ny /= 2;
            nx /= 2;
        }
    }
}

/// Inverse (= transpose) of [`forward`].
pub fn inverse(x: &mut Array3<C32>, levels: usize) {
    let mut tmp = Vec::new();
    for mut sl in x.axis_iter_mut(Axis(0)) {
        let (ny0, nx0) = sl.dim();
        for l in (0..levels).rev() {
            let (ny, nx) = (ny0 >> l, nx0 >> l);
            for xx in 0..nx {
                synthesis_1d(
                    &mut sl.column_mut(xx).slice_mut(ndarray::s![..ny]),
                    ny,
                    &mut tmp,
                );
            }
            for y in 0..ny {
                synthesis_1d(
                    &mut sl.row_mut(y).slice_mut(ndarray::s![..nx]),
                    nx,
                    &mut tmp,
                );
            }
        }
    }
}

/// Soft-thresholds the detail coefficients (everything outside the coarsest approximation band)
/// of transformed slices by `t`: c ← c · max(0, 1 − t/|c|).
pub fn soft_threshold_details(x: &mut Array3<C32>, levels: usize, t: f32) {
    for mut sl in x.axis_iter_mut(Axis(0)) {
        let (ny, nx) = sl.dim();
        let (ay, ax) = (ny >> levels, nx >> levels);
        for ((y, xx), c) in sl.indexed_iter_mut() {
            if y < ay && xx < ax {
                continue;
            }
            let m = c.norm();
            *c = if m > t {
                *c * (1.0 - t / m)
            } else {
                C32::new(0.0, 0.0)
            };
        }
    }
}
