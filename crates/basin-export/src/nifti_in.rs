//! Reading NIfTI volumes (`.nii`, `.nii.gz`) as float32 voxel arrays, with the header's
//! intensity scaling applied: the anatomical sources of the prior (DATA.md) and images to score.

use crate::ExportError;
use ndarray::{Array3, Ix3};
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
