//! ISMRMRD image output: one magnitude image per slice in `/dataset/image_0`, with the slice's
//! position and directions, field of view, matrix and indices in the image header, written
//! atomically.

use crate::geometry::StackGeometry;
use crate::{atomic_write, ExportError};
use basin_core::C32;
use basin_mrd::image::{write_images, ImageHeader, Pixels, IMTYPE_COMPLEX, IMTYPE_MAGNITUDE};
use ndarray::Array4;
use std::path::Path;

/// Writes volumes `[t, z, y, x]` (t = contrast/repetition groups) as ISMRMRD images: magnitude,
/// or complex when `complex` holds the complex volumes of the same shape. `meta` is each image's
/// attribute string (MetaAttributes XML, [`basin_mrd::image::meta_xml`]).
pub fn write_ismrmrd_images(
    path: &Path,
    volumes: &Array4<f32>,
    complex: Option<&Array4<C32>>,
    geom: &StackGeometry,
    meta: &str,
    overwrite: bool,
) -> Result<(), ExportError> {
    let (nt, nz, ny, nx) = volumes.dim();
    let lps = &geom.lps;
    let unit = |c: usize| geom.direction(c).map(|v| v as f32);
    let mut headers = Vec::with_capacity(nt * nz);
    for t in 0..nt {
        for k in 0..nz {
            // Centre of slice k: the voxel (nx/2, ny/2, k).
            let c: Vec<f32> = (0..3)
                .map(|a| {
                    (lps[a][0] * (nx / 2) as f64
                        + lps[a][1] * (ny / 2) as f64
                        + lps[a][2] * k as f64
                        + lps[a][3]) as f32
                })
                .collect();
            headers.push(ImageHeader {
                version: 1,
                matrix_size: [nx as u16, ny as u16, 1],
                field_of_view: [
                    (geom.spacing[0] * nx as f64) as f32,
                    (geom.spacing[1] * ny as f64) as f32,
                    geom.spacing[2] as f32,
                ],
                channels: 1,
                position: [c[0], c[1], c[2]],
                read_dir: unit(0),
                phase_dir: unit(1),
                slice_dir: unit(2),
                slice: k as u16,
                repetition: t as u16,
                image_type: if complex.is_some() {
                    IMTYPE_COMPLEX
                } else {
                    IMTYPE_MAGNITUDE
                },
                image_index: (t * nz + k + 1) as u16,
                image_series_index: 1,
                ..Default::default()
            });
        }
    }
    let shape = (nt * nz, 1, 1, ny, nx);
    let bad = |e: ndarray::ShapeError| ExportError::Invalid(e.to_string());
    let px = match complex {
        Some(c) if c.dim() == volumes.dim() => {
            Pixels::Complex(c.to_shape(shape).map_err(bad)?.to_owned())
        }
        Some(_) => {
            return Err(ExportError::Invalid(
                "complex and magnitude volumes differ in shape".into(),
            ))
        }
        None => Pixels::Magnitude(volumes.to_shape(shape).map_err(bad)?.to_owned()),
    };
    let attrs = vec![meta.to_string(); nt * nz];
    atomic_write(path, overwrite, |tmp| {
        write_images(tmp, "dataset", "image_0", &headers, &px, &attrs).map_err(|e| e.to_string())
    })
}
