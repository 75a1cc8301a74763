//! Data preparation: the p99 convention, tissue selection, rotation, and augmentations that
//! keep shapes, stay finite and turn magnitudes into complex images of the same magnitude.

use basin_core::rng::Rng;
use basin_prior::data::{augment, p99_scale, random_patch, rotate_scale, tissue_slices, Augment};
use ndarray::{Array2, Array3};

#[test]
fn p99_maps_the_99th_percentile_to_one() {
    let v: Vec<f32> = (1..=1000).map(|i| i as f32).collect();
    // 99th percentile of 1..=1000 by nearest rank on 0-based index round(999·0.99) = 989 → 990.
    assert!((p99_scale(v.iter()) - 1.0 / 990.0).abs() < 1e-9);
    assert_eq!(p99_scale([0.0f32; 4].iter()), 1.0);
}

#[test]
fn tissue_slices_skip_empty_ones() {
    // A 10×12×14 volume with a cube of tissue in the middle.
    let vol = Array3::from_shape_fn((10, 12, 14), |(a, b, c)| {
        if (3..7).contains(&a) && (3..9).contains(&b) && (4..10).contains(&c) {
            100.0f32
        } else {
            0.0
        }
    });
    let s = tissue_slices(vol.view(), 0.1);
    // Along axis 0 slices 3..7 hold 36/168 > 10 %; along axis 1, 24/140; along axis 2, 24/120.
    assert_eq!(s.len(), 4 + 6 + 6);
    assert!(s
        .iter()
        .all(|x| x.iter().all(|&v| v == 0.0 || (v - 1.0).abs() < 1e-6)));
}

#[test]
fn rotation_by_zero_is_identity_and_by_90_moves_pixels() {
    let img = Array2::from_shape_fn((9, 9), |(y, x)| (y * 9 + x) as f32);
    let same = rotate_scale(img.view(), 0.0, 1.0);
    assert!(same
        .iter()
        .zip(img.iter())
        .all(|(a, b)| (a - b).abs() < 1e-4));
    let r = rotate_scale(img.view(), 90.0, 1.0);
    // Output (y, x) samples the source at (cy − dx, cx + dy) for 90°: the centre stays, the top
    // middle comes from the left middle, the right middle from the top middle.
    assert!((r[[4, 4]] - img[[4, 4]]).abs() < 1e-4);
    assert!((r[[0, 4]] - img[[4, 0]]).abs() < 1e-4);
    assert!((r[[4, 8]] - img[[0, 4]]).abs() < 1e-4);
}

#[test]
fn augmentations_make_complex_images_with_the_convention() {
    let slice = Array2::from_shape_fn((32, 40), |(y, x)| {
        let r = (((y as f32 - 16.0) / 12.0).powi(2) + ((x as f32 - 20.0) / 15.0).powi(2)).sqrt();
        if r < 1.0 {
            0.5 + 0.5 * (x as f32 / 40.0)
        } else {
            0.0
        }
    });
    let mut rng = Rng::new(3);
    for _ in 0..20 {
        let img = augment(slice.view(), &Augment::default(), &mut rng);
        assert_eq!(img.dim(), (2, 32, 40));
        assert!(img.iter().all(|v| v.is_finite()));
        let mag: Vec<f32> = (0..32 * 40)
            .map(|i| (img[[0, i / 40, i % 40]].powi(2) + img[[1, i / 40, i % 40]].powi(2)).sqrt())
            .collect();
        // The 99th percentile of the magnitude is 1 after augmentation.
        assert!(
            (p99_scale(mag.iter()) - 1.0).abs() < 0.02,
            "p99 {}",
            1.0 / p99_scale(mag.iter())
        );
        // The phase is not trivially zero.
        assert!(img
            .index_axis(ndarray::Axis(0), 1)
            .iter()
            .any(|v| v.abs() > 1e-3));
        let p = random_patch(img.view(), 16, &mut rng);
        assert_eq!(p.dim(), (2, 16, 16));
    }
}
