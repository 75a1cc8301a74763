//! Training data preparation from anatomical volumes (the readers live outside basin-prior,
//! which never reads MRI files): slices in all three orientations with enough tissue, the
//! shared intensity convention (99th percentile of the magnitude = 1), and the augmentations
//! of `DATA.md` — random intensity curves (gamma), contrast inversion, flips, small rotations
//! and scalings, and a smooth random phase that makes the real images complex.

use basin_core::rng::Rng;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};

/// Scale factor that maps the 99th percentile of |values| to 1 (1 when all are zero).
pub fn p99_scale<'a>(values: impl Iterator<Item = &'a f32>) -> f32 {
    let mut v: Vec<f32> = values.map(|x| x.abs()).filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 1.0;
    }
    let k = ((v.len() - 1) as f64 * 0.99).round() as usize;
    let (_, p, _) = v.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    if *p > 0.0 {
        1.0 / *p
    } else {
        1.0
    }
}

/// Slices of `volume` `[a, b, c]` along each of the three axes whose fraction of voxels above
/// 10 % of the volume's 99th percentile is at least `min_tissue`; each slice scaled by the
/// volume's p99 convention.
pub fn tissue_slices(volume: ArrayView3<'_, f32>, min_tissue: f64) -> Vec<Array2<f32>> {
    let scale = p99_scale(volume.iter());
    let mut out = Vec::new();
    for axis in 0..3 {
        for s in volume.axis_iter(Axis(axis)) {
            let n = s.len().max(1);
            let tissue = s.iter().filter(|&&v| v * scale > 0.1).count();
            if tissue as f64 / n as f64 >= min_tissue {
                out.push(s.mapv(|v| v * scale));
            }
        }
    }
    out
}

/// Bilinear sample of `img` at (y, x), zero outside.
fn sample(img: ArrayView2<'_, f32>, y: f64, x: f64) -> f32 {
    let (h, w) = img.dim();
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = ((y - y0) as f32, (x - x0) as f32);
    let at = |yy: f64, xx: f64| {
        if yy < 0.0 || xx < 0.0 || yy >= h as f64 || xx >= w as f64 {
            0.0
        } else {
            img[[yy as usize, xx as usize]]
        }
    };
    let a = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1.0) * fx;
    let b = at(y0 + 1.0, x0) * (1.0 - fx) + at(y0 + 1.0, x0 + 1.0) * fx;
    a * (1.0 - fy) + b * fy
}

/// Rotation by `deg` degrees and scaling by `scale` about the centre (bilinear, same size).
pub fn rotate_scale(img: ArrayView2<'_, f32>, deg: f64, scale: f64) -> Array2<f32> {
    let (h, w) = img.dim();
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let (s, c) = deg.to_radians().sin_cos();
    Array2::from_shape_fn((h, w), |(y, x)| {
        let (dy, dx) = ((y as f64 - cy) / scale, (x as f64 - cx) / scale);
        sample(img, cy + c * dy - s * dx, cx + s * dy + c * dx)
    })
}

/// Augmentation ranges (a training recipe's `[augment]`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Gamma drawn log-uniformly from [1/g, g].
    pub gamma: f64,
    /// Probability of contrast inversion (T1 ↔ T2/PD-like) inside the tissue.
    pub invert: f64,
    /// Largest rotation in degrees.
    pub rotate_deg: f64,
    /// Largest relative scaling (e.g. 0.1 for ±10 %).
    pub scale: f64,
    /// Largest phase excursion of the smooth random phase (radians).
    pub phase: f64,
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            gamma: 1.5,
            invert: 0.3,
            rotate_deg: 10.0,
            scale: 0.1,
            phase: std::f64::consts::PI,
        }
    }
}

/// One augmented complex image `[2, h, w]` (real, imaginary) from a magnitude slice: gamma,
/// optional inversion, flips, rotation/scaling, then a smooth random phase (a random plane plus a
/// low-order cosine term), rescaled to the p99 convention.
pub fn augment(slice: ArrayView2<'_, f32>, a: &Augment, rng: &mut Rng) -> Array3<f32> {
    let g = (a.gamma.ln() * (2.0 * rng.uniform() - 1.0)).exp() as f32;
    let mut m = slice.mapv(|v| v.max(0.0).powf(g));
    if rng.uniform() < a.invert {
        let top = 1.0 / p99_scale(m.iter());
        m.mapv_inplace(|v| {
            if v > 0.05 * top {
                (top - v).max(0.05 * top)
            } else {
                v
            }
        });
    }
    if rng.uniform() < 0.5 {
        m.invert_axis(Axis(1));
    }
    if rng.uniform() < 0.5 {
        m.invert_axis(Axis(0));
    }
    let deg = a.rotate_deg * (2.0 * rng.uniform() - 1.0);
    let sc = 1.0 + a.scale * (2.0 * rng.uniform() - 1.0);
    let m = rotate_scale(m.view(), deg, sc);
    let k = p99_scale(m.iter());
    let (h, w) = m.dim();
    let (p0, py, px, pc) = (
        rng.uniform() * 2.0 * std::f64::consts::PI,
        rng.normal(),
        rng.normal(),
        rng.normal(),
    );
    let mut out = Array3::zeros((2, h, w));
    for y in 0..h {
        for x in 0..w {
            let (u, v) = (y as f64 / h as f64 - 0.5, x as f64 / w as f64 - 0.5);
            let ph = p0
                + a.phase
                    * 0.5
                    * (py * u
                        + px * v
                        + pc * (std::f64::consts::PI * u).cos() * (std::f64::consts::PI * v).cos());
            let mag = m[[y, x]] * k;
            out[[0, y, x]] = mag * ph.cos() as f32;
            out[[1, y, x]] = mag * ph.sin() as f32;
        }
    }
    out
}

/// A random `size`×`size` patch of a `[2, h, w]` image (the whole image when smaller).
pub fn random_patch(img: ArrayView3<'_, f32>, size: usize, rng: &mut Rng) -> Array3<f32> {
    let (_, h, w) = img.dim();
    let (sh, sw) = (size.min(h), size.min(w));
    let y0 = ((h - sh + 1) as f64 * rng.uniform()) as usize;
    let x0 = ((w - sw + 1) as f64 * rng.uniform()) as usize;
    img.slice(ndarray::s![.., y0..y0 + sh, x0..x0 + sw])
        .to_owned()
}
