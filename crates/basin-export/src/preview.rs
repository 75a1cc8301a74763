//! PNG previews: a montage of the slices of a magnitude volume, 8-bit grey, windowed to the
//! 99.5th percentile, for a quick look without a viewer.

use crate::{atomic_write, ExportError};
use ndarray::Array3;
use std::path::Path;

/// Writes a montage of `volume` `[z, y, x]` (row 0 at the top) as a PNG.
pub fn write_preview(
    path: &Path,
    volume: &Array3<f32>,
    overwrite: bool,
) -> Result<(), ExportError> {
    let (nz, ny, nx) = volume.dim();
    if nz == 0 || ny == 0 || nx == 0 {
        return Err(ExportError::Invalid(
            "empty volume: nothing to preview".into(),
        ));
    }
    let cols = (nz as f64).sqrt().ceil() as usize;
    let rows = nz.div_ceil(cols);
    let (w, h) = (cols * nx, rows * ny);
    let v = crate::sorted_finite(volume.iter());
    let top = crate::quantile(&v, 0.995)
        .unwrap_or(1.0)
        .max(f32::MIN_POSITIVE);
    let mut img = vec![0u8; w * h];
    for z in 0..nz {
        let (r0, c0) = ((z / cols) * ny, (z % cols) * nx);
        for y in 0..ny {
            for x in 0..nx {
                let g = (volume[[z, y, x]] / top * 255.0).clamp(0.0, 255.0) as u8;
                img[(r0 + y) * w + c0 + x] = g;
            }
        }
    }
    atomic_write(path, overwrite, |tmp| {
        let f = std::fs::File::create(tmp).map_err(|e| e.to_string())?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w as u32, h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(|e| e.to_string())?;
        wr.write_image_data(&img).map_err(|e| e.to_string())
    })
}
