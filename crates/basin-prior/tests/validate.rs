//! The slice score against the float64 reference energy.

use basin_core::rng::Rng;
use basin_prior::fast::FastPyramid;
use basin_prior::validate::{Scorer, OBJECT_LEVEL, SCORE_SIGMA};
use basin_prior::Pyramid;
use ndarray::Array3;

#[test]
fn scorer_matches_the_reference_energy_above_the_empty_image() {
    let p = Pyramid::random(3, 4, 5, 4, 3, 9);
    let fast = FastPyramid::new(&p);
    let (h, w) = (29, 36);
    let mut scorer = Scorer::new(&fast, h, w);
    let mut rng = Rng::new(4);
    // Several slices through one scorer: the cached baseline must serve each of them.
    for _ in 0..3 {
        let x = Array3::from_shape_fn((2, h, w), |_| rng.normal() as f32 * 0.3);
        let (map, score) = scorer.score(x.view());
        let x64 = x.mapv(|v| v as f64);
        let s = SCORE_SIGMA as f64;
        let e = p.energy(x64.view(), s) - p.energy(Array3::zeros((2, h, w)).view(), s);
        let object = x
            .index_axis(ndarray::Axis(0), 0)
            .iter()
            .zip(x.index_axis(ndarray::Axis(0), 1).iter())
            .filter(|(a, b)| a.hypot(**b) > OBJECT_LEVEL)
            .count();
        let want = e / object as f64;
        assert!(
            (score.energy - want).abs() <= 1e-3 * want.abs().max(1.0),
            "{} vs {want}",
            score.energy
        );
        let want_map = p.energy_density(x64.view(), s);
        let err = map
            .iter()
            .zip(want_map.iter())
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-3, "density max error {err}");
    }
}
