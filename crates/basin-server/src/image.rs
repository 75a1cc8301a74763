//! A reconstructed bucket as MRD images: the header from the acquisitions' geometry and
//! counters, MetaAttributes XML, float32 or 16-bit pixels as the protocol's `[output]` asks.

use basin_mrd::image::{ImageHeader, IMTYPE_MAGNITUDE};
use basin_mrd::stream::{ImagePixels, StreamImage};
use basin_mrd::IsmrmrdHeader;
use basin_recon::protocol::Pixels;
use basin_recon::{Protocol, SliceResult};
use ndarray::Array3;

/// Which image of a slice: the reconstruction, or one of the maps sent as extra series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The image (series 1).
    Image,
    /// The prior's per-pixel energy density (series 2).
    Energy,
    /// The posterior samples' per-pixel standard deviation (series 3).
    Uncertainty,
}

impl Kind {
    fn series(self) -> u16 {
        match self {
            Kind::Image => 1,
            Kind::Energy => 2,
            Kind::Uncertainty => 3,
        }
    }

    fn role(self) -> &'static str {
        match self {
            Kind::Image => "Image",
            Kind::Energy | Kind::Uncertainty => "Quantitative",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Image => "",
            Kind::Energy => " energy density",
            Kind::Uncertainty => " posterior SD",
        }
    }
}

/// `values` (`[z, y, x]`, the slice of `r`) as image `index` of `kind`'s series.
pub(crate) fn to_stream_image(
    r: &SliceResult,
    values: &Array3<f32>,
    kind: Kind,
    header: &IsmrmrdHeader,
    protocol: &Protocol,
    index: u16,
) -> StreamImage {
    let (nz, ny, nx) = values.dim();
    let fov = header
        .first_encoding()
        .map(|e| e.reconSpace.fieldOfView_mm)
        .unwrap_or_default();
    let g = &r.geometry;
    // The directions as every basin writer has them (an axial fallback when the
    // acquisitions carry none), so a streamed image and `basin recon`'s agree.
    let stack = basin_export::geometry::stack_geometry(
        std::slice::from_ref(g),
        nx,
        ny,
        nz,
        [fov.x, fov.y, fov.z],
        nz > 1,
    );
    let unit = |c: usize| stack.direction(c).map(|v| v as f32);
    let mut meta = basin_recon::pipeline::image_meta(protocol, kind.role(), values);
    for (k, v) in meta.iter_mut() {
        if k == "SequenceDescription" {
            v.push_str(kind.what());
        }
    }
    // The maps are signed, quantitative values: float32 whatever the image's pixel type.
    let pixels = match protocol.output.pixels {
        Pixels::Ushort if kind == Kind::Image => {
            let max = values
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0f32, f32::max);
            let scale = if max > 0.0 { 4095.0 / max as f64 } else { 0.0 };
            meta.push((
                "BasinScale".into(),
                format!("{}", if scale > 0.0 { 1.0 / scale } else { 0.0 }),
            ));
            ImagePixels::UShort(
                values
                    .iter()
                    .map(|&v| {
                        let v = if v.is_finite() {
                            v.max(0.0) as f64
                        } else {
                            0.0
                        };
                        (v * scale).round().clamp(0.0, 4095.0) as u16
                    })
                    .collect(),
            )
        }
        _ => ImagePixels::Float(values.iter().copied().collect()),
    };
    let head = ImageHeader {
        version: 1,
        data_type: pixels.data_type(),
        matrix_size: [nx as u16, ny as u16, nz as u16],
        field_of_view: [fov.x as f32, fov.y as f32, fov.z as f32],
        channels: 1,
        position: g.position,
        read_dir: unit(0),
        phase_dir: unit(1),
        slice_dir: unit(2),
        slice: r.key.slice,
        contrast: r.key.contrast,
        repetition: r.key.repetition,
        set: r.key.set,
        image_type: IMTYPE_MAGNITUDE,
        image_index: index,
        image_series_index: kind.series(),
        ..Default::default()
    };
    StreamImage {
        head,
        attributes: basin_mrd::image::meta_xml(&meta),
        pixels,
    }
}
