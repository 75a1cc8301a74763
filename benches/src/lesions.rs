//! Small synthetic lesions in the validation cases (issue 5, "pathology is kept"): disks 3 to 6
//! pixels across with ±20 % contrast, inserted into the 1 mm MNI152 slices before the cases are
//! simulated (so they go through the same 2× grid, coils, noise and undersampling as the
//! anatomy), on flat tissue of the noise-free truth. Shared by the `lesions` command and the
//! acceptance test in `tests/`.

use crate::cases::{mni_case, Case, N};
pub use basin_phantom::lesions::{contrast, place, Lesion};
use ndarray::{Array2, ArrayView2};

/// `slice` (1 mm, as [`crate::cases::mni_slices`] gives it) with the lesions multiplied in. A
/// slice pixel (ys, xs) lies at (ys + (N − h)/2 + ¼, xs + (N − w)/2 + ¼) on the cases' grid (the
/// 2× bilinear grid is centred on the 512² canvas whose spectrum is cropped to N²).
pub fn insert(slice: &Array2<f32>, lesions: &[Lesion]) -> Array2<f32> {
    let (h, w) = slice.dim();
    let (oy, ox) = (
        (N as f64 - h as f64) / 2.0 + 0.25,
        (N as f64 - w as f64) / 2.0 + 0.25,
    );
    let mut out = slice.clone();
    for ((ys, xs), v) in out.indexed_iter_mut() {
        let (y, x) = (ys as f64 + oy, xs as f64 + ox);
        for l in lesions {
            if ((y - l.y).powi(2) + (x - l.x).powi(2)).sqrt() <= l.r {
                *v *= l.factor;
            }
        }
    }
    out
}

/// Axial MNI152 slices that carry lesions: the quality cases' three and five more between
/// them, for enough lesions (flat brain tissue is scarce in any one slice).
pub const LESION_SLICES: [usize; 8] = [65, 70, 75, 80, 85, 90, 95, 100];

/// A validation case with lesions.
pub struct LesionCase {
    /// The case (its truth includes the lesions).
    pub case: Case,
    /// The lesions, on the case's grid.
    pub lesions: Vec<Lesion>,
}

/// The validation cases ([`crate::cases::mni_case`]) of each slice at each acceleration, with up
/// to `per_slice` lesions placed on the slice's lesion-free 4× truth.
pub fn lesion_cases(slices: &[Array2<f32>], accels: &[f64], per_slice: usize) -> Vec<LesionCase> {
    let mut out = Vec::new();
    for (i, s) in slices.iter().enumerate() {
        let clean = mni_case(s, i, 4.0);
        let lesions = place(clean.truth.index_axis(ndarray::Axis(0), 0), per_slice);
        let with = insert(s, &lesions);
        for &a in accels {
            out.push(LesionCase {
                case: mni_case(&with, i, a),
                lesions: lesions.clone(),
            });
        }
    }
    out
}

/// The fraction of each lesion's contrast that `recon` (a magnitude image of the case) keeps:
/// [`contrast`] in `recon` over [`contrast`] in the case's truth.
pub fn kept(lc: &LesionCase, recon: ArrayView2<'_, f32>) -> Vec<f64> {
    let truth = lc.case.truth.index_axis(ndarray::Axis(0), 0);
    lc.lesions
        .iter()
        .map(|l| contrast(recon, l) / contrast(truth, l))
        .collect()
}
