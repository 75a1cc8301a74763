//! Reading an image that another step judges or measures — `basin score`'s input, `basin
//! compare`'s precomputed images — as `[z, y, x]` slices, whatever it came as: a NIfTI file,
//! a DICOM file or series directory, or an image series of an ISMRMRD file (basin's own or
//! another tool's). One reader, so that every driver sees the same slices of the same file.

use crate::ExportError;
use basin_core::C32;
use ndarray::{s, Array3, Axis};
use nifti::NiftiHeader;
use std::path::Path;

/// An image read by [`read_image`].
#[derive(Debug)]
pub struct Image {
    /// The slices `[z, y, x]`: NIfTI slices along its third axis with rows its second (as
    /// `basin recon` writes them), DICOM slices in the series' order, ISMRMRD images in file
    /// order. Real images have zero imaginary parts; an ISMRMRD series with several channels is
    /// combined by root sum of squares.
    pub slices: Array3<C32>,
    /// The NIfTI header of a NIfTI input: the grid a derived map (an energy or misfit map) is
    /// written on. `None` for DICOM and ISMRMRD inputs.
    pub nifti: Option<Box<NiftiHeader>>,
}

/// Which reader a path takes, by its name (and whether it is a directory).
fn kind_of(path: &Path) -> Kind {
    let name = path.to_string_lossy().to_lowercase();
    if path.is_dir() || name.ends_with(".dcm") || name.ends_with(".ima") {
        Kind::Dicom
    } else if name.ends_with(".nii") || name.ends_with(".nii.gz") {
        Kind::Nifti
    } else if name.ends_with(".h5") || name.ends_with(".mrd") || name.ends_with(".hdf5") {
        Kind::Mrd
    } else {
        Kind::Unknown
    }
}

enum Kind {
    Dicom,
    Nifti,
    Mrd,
    Unknown,
}

/// Reads `path` as [`Image`]: a directory, `.dcm` or `.ima` as DICOM; `.nii` / `.nii.gz` as
/// NIfTI; `.h5` / `.mrd` / `.hdf5` as ISMRMRD images (the series named `series`, matched
/// whole or by its last component, else the first); anything else is tried as DICOM.
pub fn read_image(path: &Path, series: Option<&str>) -> Result<Image, ExportError> {
    let bad = |m: String| ExportError::Read {
        file: path.to_path_buf(),
        message: m,
    };
    if !path.exists() {
        return Err(bad("no such file or directory".into()));
    }
    let real = |v: Array3<f32>| v.mapv(|x| C32::new(x, 0.0));
    match kind_of(path) {
        Kind::Dicom => Ok(Image {
            slices: real(crate::dicom_in::read_dicom_series(path)?),
            nifti: None,
        }),
        Kind::Nifti => {
            let (v, h) = crate::nifti_in::read_nifti(path)?;
            // [i, j, k] → slices along k, each [j, i] (rows = j, columns = i).
            Ok(Image {
                slices: real(v.reversed_axes().as_standard_layout().to_owned()),
                nifti: Some(Box::new(h)),
            })
        }
        Kind::Mrd => {
            let all = basin_mrd::image::read_images(path).map_err(|e| bad(e.to_string()))?;
            let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
            let s = match series {
                Some(want) => all
                    .iter()
                    .find(|s| s.name == want || s.name.ends_with(&format!("/{want}")))
                    .ok_or_else(|| bad(format!("no image series {want} (has {names:?})")))?,
                None => all
                    .first()
                    .ok_or_else(|| bad("no image series (no /<group>/<series>/data)".into()))?,
            };
            Ok(Image {
                slices: combine_channels(&s.pixels),
                nifti: None,
            })
        }
        Kind::Unknown => Ok(Image {
            slices: real(crate::dicom_in::read_dicom_series(path).map_err(|e| {
                bad(format!(
                    "not recognised as NIfTI (.nii, .nii.gz), ISMRMRD (.h5, .mrd) or DICOM ({e})"
                ))
            })?),
            nifti: None,
        }),
    }
}

/// ISMRMRD pixels `[image, channel, z, y, x]` as slices `[image · z, y, x]`: one channel as
/// stored (complex kept), several by root sum of squares.
fn combine_channels(px: &ndarray::Array5<C32>) -> Array3<C32> {
    let (n, c, nz, ny, nx) = px.dim();
    let mut out = Array3::<C32>::zeros((n * nz, ny, nx));
    for i in 0..n {
        for z in 0..nz {
            let mut sl = out.index_axis_mut(Axis(0), i * nz + z);
            if c == 1 {
                sl.assign(&px.slice(s![i, 0, z, .., ..]));
            } else {
                for ((y, x), v) in sl.indexed_iter_mut() {
                    let rss: f32 = (0..c).map(|ch| px[[i, ch, z, y, x]].norm_sqr()).sum();
                    *v = C32::new(rss.sqrt(), 0.0);
                }
            }
        }
    }
    out
}
