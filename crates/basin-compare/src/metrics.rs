//! The metrics of a comparison, on magnitude volumes `[z, y, x]` on the reference's grid, in f64.
//!
//! - The image is first fitted to the reference by one least-squares magnitude scale a
//!   (minimising ‖a·|x| − ref‖²): methods differ in their intensity scale (coil-map
//!   normalisation, a tool's own convention), which says nothing about their quality.
//!   [`Metrics::nmse_raw`] is the NMSE without the fit.
//! - NMSE, PSNR and SSIM with the fastMRI definitions ([`basin_core::metrics`]): PSNR's data
//!   range is the reference's maximum; SSIM a 7×7 uniform window, K1 = 0.01, K2 = 0.03, sample
//!   covariance, the mean over valid windows and slices (scikit-image's `structural_similarity`
//!   with `data_range = ref.max()`).
//! - HFEN (Ravishankar & Bresler 2011): ‖LoG(a|x|) − LoG(ref)‖ / ‖LoG(ref)‖ per volume, LoG a
//!   15×15 Laplacian-of-Gaussian with σ = 1.5 px (MATLAB's `fspecial('log', 15, 1.5)`: zero sum),
//!   applied to each slice with zero padding.
//! - Lesion contrast kept: the mean over the case's lesions of the lesion's relative contrast in
//!   the image over that in the reference ([`basin_phantom::lesions::contrast`]).

use basin_core::metrics::{nmse, psnr, ssim};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};

/// The least-squares factor a minimising ‖a·x − r‖² (x, r magnitudes).
pub fn ls_scale(x: ArrayView3<'_, f32>, r: ArrayView3<'_, f32>) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    ndarray::Zip::from(&x).and(&r).for_each(|&a, &b| {
        num += a as f64 * b as f64;
        den += a as f64 * a as f64;
    });
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// The image metrics of one method on one case.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageMetrics {
    /// The least-squares scale applied before NMSE, PSNR, SSIM and HFEN.
    pub scale: f64,
    /// NMSE after the scale fit.
    pub nmse: f64,
    /// PSNR (dB) after the scale fit.
    pub psnr: f64,
    /// SSIM after the scale fit.
    pub ssim: f64,
    /// NMSE of the image as written (no scale fit).
    pub nmse_raw: f64,
    /// High-frequency error norm after the scale fit.
    pub hfen: f64,
}

/// The metrics of `image` against `reference` (both `[z, y, x]` magnitudes of one shape).
pub fn image_metrics(image: ArrayView3<'_, f32>, reference: ArrayView3<'_, f32>) -> ImageMetrics {
    let a = ls_scale(image, reference);
    let scaled = image.mapv(|v| (v as f64 * a) as f32);
    ImageMetrics {
        scale: a,
        nmse: nmse(reference, scaled.view()),
        psnr: psnr(reference, scaled.view()),
        ssim: ssim(reference, scaled.view()),
        nmse_raw: nmse(reference, image),
        hfen: hfen(scaled.view(), reference),
    }
}

/// MATLAB's `fspecial('log', n, sigma)`: the Gaussian normalised to sum 1, times
/// (r² − 2σ²)/σ⁴, minus its mean (so that it sums to zero).
pub fn log_kernel(n: usize, sigma: f64) -> Array2<f64> {
    let c = (n as f64 - 1.0) / 2.0;
    let s2 = sigma * sigma;
    let g = Array2::from_shape_fn((n, n), |(y, x)| {
        let r2 = (y as f64 - c).powi(2) + (x as f64 - c).powi(2);
        (-r2 / (2.0 * s2)).exp()
    });
    let sum = g.sum();
    let h1 = Array2::from_shape_fn((n, n), |(y, x)| {
        let r2 = (y as f64 - c).powi(2) + (x as f64 - c).powi(2);
        g[[y, x]] / sum * (r2 - 2.0 * s2) / (s2 * s2)
    });
    let mean = h1.sum() / (n * n) as f64;
    h1.mapv(|v| v - mean)
}

/// `img` filtered by `k` (correlation, 'same' size, zero padding; `k` is symmetric here, so
/// correlation and convolution agree).
fn filter(img: ArrayView2<'_, f32>, k: &Array2<f64>) -> Array2<f64> {
    let (h, w) = img.dim();
    let n = k.dim().0 as isize;
    let c = n / 2;
    Array2::from_shape_fn((h, w), |(y, x)| {
        let mut s = 0.0;
        for dy in 0..n {
            let yy = y as isize + dy - c;
            if yy < 0 || yy >= h as isize {
                continue;
            }
            for dx in 0..n {
                let xx = x as isize + dx - c;
                if xx < 0 || xx >= w as isize {
                    continue;
                }
                s += k[[dy as usize, dx as usize]] * img[[yy as usize, xx as usize]] as f64;
            }
        }
        s
    })
}

/// HFEN of `image` against `reference` (see the module's documentation).
pub fn hfen(image: ArrayView3<'_, f32>, reference: ArrayView3<'_, f32>) -> f64 {
    let k = log_kernel(15, 1.5);
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (a, b) in image.axis_iter(Axis(0)).zip(reference.axis_iter(Axis(0))) {
        let (fa, fb) = (filter(a, &k), filter(b, &k));
        ndarray::Zip::from(&fa).and(&fb).for_each(|&p, &q| {
            num += (p - q) * (p - q);
            den += q * q;
        });
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// A lesion of a case (from its simulation record), in the reference's pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaseLesion {
    /// Slice (of the reference).
    pub slice: usize,
    /// The lesion.
    pub lesion: basin_phantom::lesions::Lesion,
}

/// The mean relative contrast kept over `lesions`: contrast in the scaled image over contrast in
/// the reference; None without lesions.
pub fn lesion_contrast_kept(
    image: ArrayView3<'_, f32>,
    reference: ArrayView3<'_, f32>,
    lesions: &[CaseLesion],
) -> Option<f64> {
    use basin_phantom::lesions::contrast;
    let kept: Vec<f64> = lesions
        .iter()
        .filter(|l| l.slice < reference.dim().0)
        .map(|l| {
            let t = contrast(reference.index_axis(Axis(0), l.slice), &l.lesion);
            contrast(image.index_axis(Axis(0), l.slice), &l.lesion) / t
        })
        .filter(|v| v.is_finite())
        .collect();
    (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64)
}

/// The centre `ny × nx` of every slice, as fastMRI's `center_crop` takes it (start
/// `(n − target) / 2`, rounded down). `ny`, `nx` must not exceed the volume's.
pub fn centre_crop(v: ArrayView3<'_, f32>, ny: usize, nx: usize) -> Array3<f32> {
    let (_, h, w) = v.dim();
    let (y0, x0) = ((h - ny) / 2, (w - nx) / 2);
    v.slice(ndarray::s![.., y0..y0 + ny, x0..x0 + nx])
        .to_owned()
}
