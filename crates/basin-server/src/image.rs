//! A reconstructed bucket as an MRD image: the header from the acquisitions' geometry and
//! counters, MetaAttributes XML, float32 magnitude pixels.

use basin_mrd::image::{ImageHeader, IMTYPE_MAGNITUDE};
use basin_mrd::stream::{ImagePixels, StreamImage};
use basin_mrd::IsmrmrdHeader;
use basin_recon::{Protocol, SliceResult};

/// The image of one reconstructed bucket, `index`-th of series `series`.
pub(crate) fn to_stream_image(
    r: &SliceResult,
    header: &IsmrmrdHeader,
    protocol: &Protocol,
    index: u16,
    series: u16,
) -> StreamImage {
    let (nz, ny, nx) = r.image.dim();
    let fov = header
        .first_encoding()
        .map(|e| e.reconSpace.fieldOfView_mm)
        .unwrap_or_default();
    let magnitude = r.image.mapv(|v| v.norm());
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
    let head = ImageHeader {
        version: 1,
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
        image_series_index: series,
        ..Default::default()
    };
    let attributes = basin_mrd::image::meta_xml(&basin_recon::pipeline::image_meta(
        protocol, "Image", &magnitude,
    ));
    StreamImage {
        head,
        attributes,
        pixels: ImagePixels::Float(magnitude.iter().copied().collect()),
    }
}
