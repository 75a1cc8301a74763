//! Reading NIfTI volumes (`.nii`, `.nii.gz`) as float32 voxel arrays, with the header's
//! intensity scaling applied: the anatomical sources of the prior (DATA.md) and images to score.

use crate::ExportError;
use ndarray::{Array3, Axis, Ix3};
use nifti::{IntoNdArray, NiftiHeader, NiftiObject, ReaderOptions};
use std::path::Path;

/// The voxels of a 3D NIfTI file (a 4D file with one volume is accepted) as `[i, j, k]`
/// (NIfTI axis order), scaled by `scl_slope`/`scl_inter` when set.
pub fn read_nifti_volume(path: &Path) -> Result<Array3<f32>, ExportError> {
    read_nifti(path).map(|(v, _)| v)
}

/// [`read_nifti_volume`] and the file's header (for writing derived maps on the same grid).
pub fn read_nifti(path: &Path) -> Result<(Array3<f32>, NiftiHeader), ExportError> {
    let bad = |m: String| ExportError::Read {
        file: path.to_path_buf(),
        message: m,
    };
    let obj = ReaderOptions::new()
        .read_file(path)
        .map_err(|e| bad(format!("not a readable NIfTI file: {e}")))?;
    let header = obj.header().clone();
    let volume = obj.into_volume();
    // nifti-rs panics ("Inconsistent raw data size") when the voxel bytes do not match the
    // header's dimensions and type (found by fuzzing): check first.
    {
        use nifti::NiftiVolume;
        let voxels = volume
            .dim()
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d as usize));
        let want = voxels.and_then(|v| v.checked_mul(volume.data_type().size_of()));
        if want != Some(volume.raw_data().len()) {
            return Err(bad(format!(
                "the header's dimensions {:?} and data type {:?} do not match the {} bytes of voxel data",
                volume.dim(),
                volume.data_type(),
                volume.raw_data().len()
            )));
        }
    }
    let arr = volume
        .into_ndarray::<f32>()
        .map_err(|e| bad(format!("voxel data: {e}")))?;
    let shape = arr.shape().to_vec();
    let arr = match shape.len() {
        2 => arr.insert_axis(ndarray::Axis(2)),
        3 => arr,
        4 if shape[3] == 1 => arr.index_axis_move(ndarray::Axis(3), 0),
        n => {
            return Err(bad(format!(
                "{n}-dimensional volume {shape:?}: expected 2D, 3D (or 4D with one volume)"
            )))
        }
    };
    let v = arr
        .into_dimensionality::<Ix3>()
        .map_err(|e| bad(e.to_string()))?;
    if v.iter().any(|x| !x.is_finite()) {
        return Err(bad("voxels contain NaN or infinite values".into()));
    }
    Ok((v.as_standard_layout().to_owned(), header))
}

/// An image as `[z, y, x]` axial slices (anterior up, the subject's right on the left of the
/// matrix as radiology shows it, by the NIfTI header's orientation) and its voxel size (x, y,
/// z): a NIfTI file (.nii, .nii.gz), or else a DICOM file or series directory (1 mm voxels).
/// The anatomy `basin phantom --from` and `--suite --anatomy` simulate.
pub fn read_axial(path: &Path) -> Result<(Array3<f32>, [f64; 3]), ExportError> {
    let is_nifti = {
        let n = path.to_string_lossy().to_lowercase();
        n.ends_with(".nii") || n.ends_with(".nii.gz")
    };
    if is_nifti {
        let (vol, h) = read_nifti(path)?;
        let pix = [h.pixdim[1], h.pixdim[2], h.pixdim[3]].map(|d| {
            if d.is_finite() && d > 0.0 {
                d as f64
            } else {
                1.0
            }
        });
        // Voxel axes to R, A, S by the header's orientation (a stored LIA or LPS volume gives
        // axial slices too); without one, the voxel axes are taken as R, A, S.
        let axes = ras_axes(&h).unwrap_or([(0, false), (1, false), (2, false)]);
        let mut v = vol.permuted_axes([axes[0].0, axes[1].0, axes[2].0]);
        for (d, &(_, flip)) in axes.iter().enumerate() {
            if flip {
                v.invert_axis(Axis(d));
            }
        }
        let spacing = [pix[axes[0].0], pix[axes[1].0], pix[axes[2].0]];
        // [R, A, S] → axial slices [S, A, R] with anterior up.
        let mut v = v.permuted_axes([2, 1, 0]);
        v.invert_axis(Axis(1));
        Ok((v.as_standard_layout().to_owned(), spacing))
    } else {
        let v = crate::dicom_in::read_dicom_series(path)?;
        Ok((v, [1.0, 1.0, 1.0]))
    }
}

/// For the world axes R, A, S: the voxel axis nearest to each and whether it runs the other
/// way, from the sform (or else the qform) of a NIfTI header; `None` without a usable one.
fn ras_axes(h: &NiftiHeader) -> Option<[(usize, bool); 3]> {
    // m[w][j]: world component w of voxel axis j.
    let m: [[f64; 3]; 3] = if h.sform_code > 0 {
        let r = [h.srow_x, h.srow_y, h.srow_z];
        std::array::from_fn(|w| std::array::from_fn(|j| r[w][j] as f64))
    } else if h.qform_code > 0 {
        let (b, c, d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let r = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        std::array::from_fn(|w| {
            std::array::from_fn(|j| if j == 2 { r[w][j] * qfac } else { r[w][j] })
        })
    } else {
        return None;
    };
    let mut out = [(0usize, false); 3];
    let mut used = [false; 3];
    for (w, row) in m.iter().enumerate() {
        let j = (0..3).max_by(|&x, &y| row[x].abs().total_cmp(&row[y].abs()))?;
        if used[j] || row[j] == 0.0 || !row[j].is_finite() {
            return None;
        }
        used[j] = true;
        out[w] = (j, row[j] < 0.0);
    }
    Some(out)
}
