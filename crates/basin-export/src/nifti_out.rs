//! NIfTI-1 output: float32 magnitude volumes with the scanner affine in both sform and qform
//! (code 1, scanner anatomical), units mm and s, and a `descrip` naming basin and the protocol.

use crate::geometry::{lps_to_ras, quaternion, StackGeometry};
use crate::{atomic_write, ExportError};
use ndarray::{Array3, Array4, ArrayBase, Data, Dimension, RemoveAxis};
use nifti::writer::WriterOptions;
use nifti::NiftiHeader;
use std::path::Path;

/// Writes `volume` `[z, y, x]` to `path` (`.nii` or `.nii.gz`) with geometry `geom`.
pub fn write_nifti(path: &Path, volume: &Array3<f32>, geom: &StackGeometry, descrip: &str, overwrite: bool) -> Result<(), ExportError> {
    write_any(path, volume, geom, descrip, overwrite)
}

/// Writes a series of volumes `[t, z, y, x]` as one 4D NIfTI.
pub fn write_nifti_4d(path: &Path, volume: &Array4<f32>, geom: &StackGeometry, descrip: &str, overwrite: bool) -> Result<(), ExportError> {
    write_any(path, volume, geom, descrip, overwrite)
}

fn write_any<S, D>(path: &Path, volume: &ArrayBase<S, D>, geom: &StackGeometry, descrip: &str, overwrite: bool) -> Result<(), ExportError>
where
    S: Data<Elem = f32>,
    D: Dimension + RemoveAxis,
{
    let name = path.to_string_lossy();
    if !(name.ends_with(".nii") || name.ends_with(".nii.gz")) {
        return Err(ExportError::Invalid(format!("{}: NIfTI output must end in .nii or .nii.gz", path.display())));
    }
    let ras = lps_to_ras(&geom.lps);
    let (b, c, d, qfac) = quaternion(&ras);
    let mut h = NiftiHeader::default();
    h.pixdim = [qfac as f32, geom.spacing[0] as f32, geom.spacing[1] as f32, geom.spacing[2] as f32, 1.0, 1.0, 1.0, 1.0];
    h.xyzt_units = 2 | 8; // mm, s
    h.sform_code = 1;
    h.qform_code = 1;
    h.srow_x = [ras[0][0] as f32, ras[0][1] as f32, ras[0][2] as f32, ras[0][3] as f32];
    h.srow_y = [ras[1][0] as f32, ras[1][1] as f32, ras[1][2] as f32, ras[1][3] as f32];
    h.srow_z = [ras[2][0] as f32, ras[2][1] as f32, ras[2][2] as f32, ras[2][3] as f32];
    h.quatern_b = b as f32;
    h.quatern_c = c as f32;
    h.quatern_d = d as f32;
    h.quatern_x = ras[0][3] as f32;
    h.quatern_y = ras[1][3] as f32;
    h.quatern_z = ras[2][3] as f32;
    let mut desc = descrip.as_bytes().to_vec();
    desc.truncate(79);
    h.descrip = desc;
    let max = volume.iter().fold(0.0f32, |m, &v| m.max(v));
    h.cal_max = max;
    h.cal_min = 0.0;
    tracing::debug!(shape = ?volume.shape(), "writing NIfTI");
    atomic_write(path, overwrite, |tmp| {
        // nifti-rs indexes arrays [i, j, k(, t)]: reverse our [(t,) z, y, x] axes.
        WriterOptions::new(tmp).reference_header(&h).write_nifti(&volume.view().reversed_axes()).map_err(|e| e.to_string())
    })
}
