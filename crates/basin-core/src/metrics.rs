//! Image-quality metrics with the fastMRI definitions, computed in f64 on magnitude volumes
//! `[z, y, x]`: NMSE, PSNR (data range = maximum of the target volume) and SSIM (7×7 uniform
//! window, K1 = 0.01, K2 = 0.03, sample covariance, border of 3 pixels excluded, mean over slices).

use ndarray::{s, Array2, ArrayView2, ArrayView3};

/// Normalised mean squared error ‖gt − pred‖² / ‖gt‖².
pub fn nmse(gt: ArrayView3<'_, f32>, pred: ArrayView3<'_, f32>) -> f64 {
    let mut num = 0.0f64;
    let mut den = 0.0f64;
    ndarray::Zip::from(&gt).and(&pred).for_each(|&g, &p| {
        let d = g as f64 - p as f64;
        num += d * d;
        den += (g as f64) * (g as f64);
    });
    num / den.max(f64::MIN_POSITIVE)
}

/// Peak signal-to-noise ratio in dB with data range = max(gt).
pub fn psnr(gt: ArrayView3<'_, f32>, pred: ArrayView3<'_, f32>) -> f64 {
    let max = gt.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let mut mse = 0.0f64;
    ndarray::Zip::from(&gt).and(&pred).for_each(|&g, &p| {
        let d = g as f64 - p as f64;
        mse += d * d;
    });
    mse /= gt.len().max(1) as f64;
    10.0 * (max * max / mse.max(f64::MIN_POSITIVE)).log10()
}

/// Structural similarity, mean over slices, data range = max(gt) of the whole volume.
pub fn ssim(gt: ArrayView3<'_, f32>, pred: ArrayView3<'_, f32>) -> f64 {
    let max = gt.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let n = gt.shape()[0];
    let mut total = 0.0;
    for z in 0..n {
        total += ssim_2d(gt.slice(s![z, .., ..]), pred.slice(s![z, .., ..]), max);
    }
    total / n.max(1) as f64
}

/// SSIM of one slice with a given data range (skimage `structural_similarity` defaults).
pub fn ssim_2d(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, data_range: f64) -> f64 {
    const W: usize = 7;
    let (ny, nx) = a.dim();
    if ny < W || nx < W {
        return f64::NAN;
    }
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let np = (W * W) as f64;
    let cov_norm = np / (np - 1.0);
    // Integral images of a, b, a², b², ab for O(1) window sums.
    let integral = |f: &dyn Fn(f64, f64) -> f64| {
        let mut s = Array2::<f64>::zeros((ny + 1, nx + 1));
        for y in 0..ny {
            let mut row = 0.0;
            for x in 0..nx {
                row += f(a[[y, x]] as f64, b[[y, x]] as f64);
                s[[y + 1, x + 1]] = s[[y, x + 1]] + row;
            }
        }
        s
    };
    let sa = integral(&|a, _| a);
    let sb = integral(&|_, b| b);
    let saa = integral(&|a, _| a * a);
    let sbb = integral(&|_, b| b * b);
    let sab = integral(&|a, b| a * b);
    let win = |s: &Array2<f64>, y: usize, x: usize| {
        s[[y + W, x + W]] - s[[y, x + W]] - s[[y + W, x]] + s[[y, x]]
    };
    let mut total = 0.0;
    let mut count = 0usize;
    for y in 0..=(ny - W) {
        for x in 0..=(nx - W) {
            let ux = win(&sa, y, x) / np;
            let uy = win(&sb, y, x) / np;
            let vx = cov_norm * (win(&saa, y, x) / np - ux * ux);
            let vy = cov_norm * (win(&sbb, y, x) / np - uy * uy);
            let vxy = cov_norm * (win(&sab, y, x) / np - ux * uy);
            let num = (2.0 * ux * uy + c1) * (2.0 * vxy + c2);
            let den = (ux * ux + uy * uy + c1) * (vx + vy + c2);
            total += num / den;
            count += 1;
        }
    }
    total / count as f64
}

/// Pearson correlation coefficient of two equally long series (f64, two passes); NaN when
/// either is constant or they are empty.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "pearson: series of different lengths");
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[cfg(test)]
mod pearson_tests {
    use super::pearson;

    /// x = 1..5, y = (2, 4, 5, 4, 5): cov = 6, var x = 10, var y = 6, r = 6/√60 by hand.
    #[test]
    fn matches_the_hand_computed_value_and_its_symmetries() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 4.0, 5.0, 4.0, 5.0];
        let r = pearson(&x, &y);
        assert!((r - 6.0 / 60f64.sqrt()).abs() < 1e-12, "{r}");
        assert!((pearson(&y, &x) - r).abs() < 1e-15);
        let affine: Vec<f64> = y.iter().map(|v| 3.0 * v - 7.0).collect();
        assert!((pearson(&x, &affine) - r).abs() < 1e-12);
        let neg: Vec<f64> = x.iter().map(|v| -v).collect();
        assert!((pearson(&x, &neg) + 1.0).abs() < 1e-12);
        assert!(pearson(&x, &[1.0; 5]).is_nan());
    }
}
