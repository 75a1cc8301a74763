//! fastMRI-style sampling masks along the phase-encoding direction: a fully sampled centre of
//! `round(N · center_fraction)` lines plus random (probability chosen so that the expected total
//! is N/R) or equispaced lines (spacing adjusted for the centre, random offset).

use rand::{Rng, SeedableRng};

/// Mask family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskKind {
    /// Equispaced lines with a random offset (fastMRI `EquispacedMaskFunc`).
    Equispaced,
    /// Independent random lines (fastMRI `RandomMaskFunc`).
    Random,
}

/// Returns (sampled lines, central calibration lines) for `n` phase-encoding lines.
pub fn sampling_mask(
    kind: MaskKind,
    n: usize,
    accel: f64,
    center_fraction: f64,
    seed: u64,
) -> Result<(Vec<bool>, Vec<bool>), String> {
    if !(accel >= 1.0 && accel.is_finite()) {
        return Err(format!("acceleration {accel} must be ≥ 1"));
    }
    if !(0.0..=1.0).contains(&center_fraction) {
        return Err(format!(
            "centre fraction {center_fraction} must be in [0, 1]"
        ));
    }
    let num_low = (n as f64 * center_fraction).round() as usize;
    let pad = (n - num_low).div_ceil(2);
    let mut acs = vec![false; n];
    for a in acs.iter_mut().skip(pad).take(num_low) {
        *a = true;
    }
    if accel <= 1.0 {
        return Ok((vec![true; n], acs));
    }
    if num_low as f64 >= n as f64 / accel {
        return Err(format!(
            "centre of {num_low} lines already exceeds the {:.0} lines that {accel}× allows",
            n as f64 / accel
        ));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut lines = acs.clone();
    match kind {
        MaskKind::Random => {
            let prob = (n as f64 / accel - num_low as f64) / (n - num_low) as f64;
            for l in lines.iter_mut() {
                if rng.random::<f64>() < prob {
                    *l = true;
                }
            }
        }
        MaskKind::Equispaced => {
            let adjusted =
                accel * (num_low as f64 - n as f64) / (num_low as f64 * accel - n as f64);
            let offset = rng.random_range(0..(adjusted.round() as usize).max(1));
            let mut pos = offset as f64;
            while pos < (n - 1) as f64 {
                lines[pos.round() as usize] = true;
                pos += adjusted;
            }
        }
    }
    Ok((lines, acs))
}
