//! NIfTI-1 output: float32 magnitude volumes with the scanner affine in both sform and qform
//! (code 1, scanner anatomical), units mm and s, and a `descrip` naming basin and the protocol.

use crate::geometry::{lps_to_ras, quaternion, quaternion_f32, StackGeometry};
use crate::{atomic_write, ExportError};
use ndarray::{Array3, Array4, ArrayBase, Data, Dimension, RemoveAxis};
use nifti::writer::WriterOptions;
use nifti::NiftiHeader;
use std::path::Path;

/// Writes `volume` `[z, y, x]` to `path` (`.nii` or `.nii.gz`) with geometry `geom`.
pub fn write_nifti(
    path: &Path,
    volume: &Array3<f32>,
    geom: &StackGeometry,
    descrip: &str,
    overwrite: bool,
) -> Result<(), ExportError> {
    write_any(path, volume, geom, descrip, overwrite)
}

/// Writes a series of volumes `[t, z, y, x]` as one 4D NIfTI.
pub fn write_nifti_4d(
    path: &Path,
    volume: &Array4<f32>,
    geom: &StackGeometry,
    descrip: &str,
    overwrite: bool,
) -> Result<(), ExportError> {
    write_any(path, volume, geom, descrip, overwrite)
}

fn write_any<S, D>(
    path: &Path,
    volume: &ArrayBase<S, D>,
    geom: &StackGeometry,
    descrip: &str,
    overwrite: bool,
) -> Result<(), ExportError>
where
    S: Data<Elem = f32>,
    D: Dimension + RemoveAxis,
{
    let name = path.to_string_lossy();
    if !(name.ends_with(".nii") || name.ends_with(".nii.gz")) {
        return Err(ExportError::Invalid(format!(
            "{}: NIfTI output must end in .nii or .nii.gz",
            path.display()
        )));
    }
    let ras = lps_to_ras(&geom.lps);
    let (b, c, d, qfac) = quaternion(&ras);
    let [qb, qc, qd] = quaternion_f32(b, c, d);
    let row = |r: usize| {
        [
            ras[r][0] as f32,
            ras[r][1] as f32,
            ras[r][2] as f32,
            ras[r][3] as f32,
        ]
    };
    let mut descrip = descrip.as_bytes().to_vec();
    descrip.truncate(79);
    let s = geom.spacing;
    let h = NiftiHeader {
        pixdim: [
            qfac as f32,
            s[0] as f32,
            s[1] as f32,
            s[2] as f32,
            1.0,
            1.0,
            1.0,
            1.0,
        ],
        xyzt_units: 2 | 8, // mm, s
        sform_code: 1,
        qform_code: 1,
        srow_x: row(0),
        srow_y: row(1),
        srow_z: row(2),
        quatern_b: qb,
        quatern_c: qc,
        quatern_d: qd,
        quatern_x: ras[0][3] as f32,
        quatern_y: ras[1][3] as f32,
        quatern_z: ras[2][3] as f32,
        descrip,
        cal_max: volume.iter().fold(0.0f32, |m, &v| m.max(v)),
        cal_min: 0.0,
        ..NiftiHeader::default()
    };
    tracing::debug!(shape = ?volume.shape(), "writing NIfTI");
    write_with_header(path, overwrite, &h, volume)
}

/// Writes `volume` with header `h` to `path` atomically, through a dot-free temporary name.
fn write_with_header<S, D>(
    path: &Path,
    overwrite: bool,
    h: &NiftiHeader,
    volume: &ArrayBase<S, D>,
) -> Result<(), ExportError>
where
    S: Data<Elem = f32>,
    D: Dimension + RemoveAxis,
{
    atomic_write(path, overwrite, |tmp| {
        // nifti-rs indexes arrays [i, j, k(, t)]: reverse our [(t,) z, y, x] axes.
        via_plain_name(tmp, |p| {
            WriterOptions::new(p)
                .reference_header(h)
                .write_nifti(&volume.view().reversed_axes())
        })
    })
}

/// Runs a nifti-rs writer on a file whose stem has no dot, then renames it to `target`.
/// nifti-rs rebuilds its output name with `set_extension("")` + `with_extension("nii")`, which
/// turns a stem with a dot into another file: `sub.01.nii` was written as `sub.nii` (and a
/// temporary `.tmp-1-sub.01.nii` as `.tmp-1-sub.nii`, so the run failed or lost the name).
fn via_plain_name(
    target: &Path,
    write: impl FnOnce(&Path) -> Result<(), nifti::NiftiError>,
) -> Result<(), String> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let gz = target.to_string_lossy().ends_with(".gz");
    let plain = target.with_file_name(format!(
        ".basin-nifti-{}-{n}{}",
        std::process::id(),
        if gz { ".nii.gz" } else { ".nii" }
    ));
    crate::track(&plain);
    let r = write(&plain)
        .map_err(|e| e.to_string())
        .and_then(|_| std::fs::rename(&plain, target).map_err(|e| e.to_string()));
    crate::untrack(&plain);
    if r.is_err() {
        let _ = std::fs::remove_file(&plain);
    }
    r
}

/// Writes `volume` `[z, y, x]` (float32) on the grid of another NIfTI file: its header (affine,
/// spacing, units) with the data type, scaling, intensity range and `descrip` replaced.
pub fn write_nifti_like(
    path: &Path,
    volume: &Array3<f32>,
    reference: &NiftiHeader,
    descrip: &str,
    overwrite: bool,
) -> Result<(), ExportError> {
    let mut d = descrip.as_bytes().to_vec();
    d.truncate(79);
    let mut h = reference.clone();
    h.scl_slope = 1.0;
    h.scl_inter = 0.0;
    h.descrip = d;
    h.cal_min = volume.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    h.cal_max = volume.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    write_with_header(path, overwrite, &h, volume)
}
