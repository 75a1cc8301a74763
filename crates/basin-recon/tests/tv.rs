//! TV denoising is certified by its duality gap (primal minus dual objective, both computed
//! independently of the iteration) and behaves at the limits: λ = 0 returns the data, a large λ
//! returns the constant mean.

use basin_core::rng::Rng;
use basin_recon::tv::tv_denoise;
use ndarray::Array3;

#[test]
fn tv_denoising_converges_with_a_small_duality_gap() {
    let mut rng = Rng::new(4);
    let y = Array3::from_shape_fn((2, 24, 20), |(c, yy, x)| {
        let inside = (yy as f32 - 12.0).powi(2) + (x as f32 - 9.0).powi(2) < 40.0;
        let v = if inside { 1.0 } else { 0.2 } * if c == 0 { 0.8 } else { 0.6 };
        v + 0.1 * rng.normal() as f32
    });
    let r = tv_denoise(y.view(), 0.1, 2000);
    let gap = (r.primal - r.dual) / r.primal;
    assert!(r.dual <= r.primal + 1e-6 * r.primal.abs());
    assert!(
        gap < 1e-3,
        "relative duality gap {gap} (primal {}, dual {})",
        r.primal,
        r.dual
    );
    // λ = 0: the data itself.
    let r0 = tv_denoise(y.view(), 0.0, 50);
    assert!(r0
        .image
        .iter()
        .zip(y.iter())
        .all(|(a, b)| (a - b).abs() < 1e-5));
    // Huge λ: each channel's mean.
    let rb = tv_denoise(y.view(), 1e3, 3000);
    for c in 0..2 {
        let mean = y.index_axis(ndarray::Axis(0), c).mean().unwrap();
        let img = rb.image.index_axis(ndarray::Axis(0), c);
        let worst = img.iter().map(|v| (v - mean).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-2, "channel {c}: off the mean by {worst}");
    }
}
