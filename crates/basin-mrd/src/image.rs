//! ISMRMRD images: the fixed-layout image header and the writer of
//! `/<group>/<series>/{header, data, attributes}` as the ISMRMRD C library lays them out
//! (`data` is `[image, channel, z, y, x]`; magnitude images as float32, complex ones as
//! `{real, imag}`; `attributes` one variable-length string per image).

use crate::MrdError;
use basin_core::C32;
use hdf5::types::VarLenUnicode;
use ndarray::Array5;
use std::path::Path;

/// ISMRMRD `data_type` of float32 pixels.
pub const DATATYPE_FLOAT: u16 = 5;
/// ISMRMRD `data_type` of complex float32 pixels.
pub const DATATYPE_CXFLOAT: u16 = 7;
/// ISMRMRD `data_type` of unsigned 16-bit pixels.
pub const DATATYPE_USHORT: u16 = 1;
/// ISMRMRD `data_type` of signed 16-bit pixels.
pub const DATATYPE_SHORT: u16 = 2;
/// ISMRMRD `image_type` magnitude.
pub const IMTYPE_MAGNITUDE: u16 = 1;
/// ISMRMRD `image_type` complex.
pub const IMTYPE_COMPLEX: u16 = 5;

/// The ISMRMRD image header.
#[derive(hdf5::H5Type, Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct ImageHeader {
    /// Format version.
    pub version: u16,
    /// Pixel type (5 float, 7 complex float).
    pub data_type: u16,
    /// Flags.
    pub flags: u64,
    /// Measurement id.
    pub measurement_uid: u32,
    /// Pixels along x, y, z.
    pub matrix_size: [u16; 3],
    /// Field of view (mm).
    pub field_of_view: [f32; 3],
    /// Channels.
    pub channels: u16,
    /// Centre of the image (LPS, mm).
    pub position: [f32; 3],
    /// Row direction.
    pub read_dir: [f32; 3],
    /// Column direction.
    pub phase_dir: [f32; 3],
    /// Normal.
    pub slice_dir: [f32; 3],
    /// Table position.
    pub patient_table_position: [f32; 3],
    /// Average.
    pub average: u16,
    /// Slice.
    pub slice: u16,
    /// Contrast.
    pub contrast: u16,
    /// Phase.
    pub phase: u16,
    /// Repetition.
    pub repetition: u16,
    /// Set.
    pub set: u16,
    /// Time stamp.
    pub acquisition_time_stamp: u32,
    /// Physiology time stamps.
    pub physiology_time_stamp: [u32; 3],
    /// 1 magnitude, 2 phase, 3 real, 4 imaginary, 5 complex.
    pub image_type: u16,
    /// Index within the series.
    pub image_index: u16,
    /// Series index.
    pub image_series_index: u16,
    /// User integers.
    pub user_int: [i32; 8],
    /// User floats.
    pub user_float: [f32; 8],
    /// Length of the attribute string.
    pub attribute_string_len: u32,
}

#[derive(hdf5::H5Type, Clone, Copy, Debug, Default)]
#[repr(C)]
struct Cx {
    real: f32,
    imag: f32,
}

/// Pixels of one series: magnitude, complex or 16-bit, `[image, channel, z, y, x]`.
pub enum Pixels {
    /// float32 pixels.
    Magnitude(Array5<f32>),
    /// complex float32 pixels.
    Complex(Array5<C32>),
    /// unsigned 16-bit pixels.
    UShort(Array5<u16>),
}

/// Writes one image series to `/<group>/<series>/` of `path` (creating the file when absent,
/// replacing the series when present). `headers` and `attributes` have one entry per image.
pub fn write_images(
    path: &Path,
    group: &str,
    series: &str,
    headers: &[ImageHeader],
    pixels: &Pixels,
    attributes: &[String],
) -> Result<(), MrdError> {
    let err = |object: &str| {
        let object = object.to_string();
        move |source| MrdError::Hdf5 {
            file: path.to_path_buf(),
            object: object.clone(),
            source,
        }
    };
    let n = match pixels {
        Pixels::Magnitude(a) => a.shape()[0],
        Pixels::Complex(a) => a.shape()[0],
        Pixels::UShort(a) => a.shape()[0],
    };
    if headers.len() != n || attributes.len() != n {
        return Err(MrdError::Invalid {
            file: path.to_path_buf(),
            field: format!("/{group}/{series}"),
            message: format!(
                "{} headers and {} attribute strings for {n} images",
                headers.len(),
                attributes.len()
            ),
        });
    }
    let file = if path.exists() {
        hdf5::File::append(path)
    } else {
        hdf5::File::create(path)
    }
    .map_err(err("/"))?;
    let g = if file.link_exists(group) {
        file.group(group)
    } else {
        file.create_group(group)
    }
    .map_err(err(group))?;
    if g.link_exists(series) {
        g.unlink(series).map_err(err(series))?;
    }
    let s = g.create_group(series).map_err(err(series))?;
    let mut hs = headers.to_vec();
    for (h, a) in hs.iter_mut().zip(attributes) {
        h.attribute_string_len = a.len() as u32;
        h.data_type = match pixels {
            Pixels::Magnitude(_) => DATATYPE_FLOAT,
            Pixels::Complex(_) => DATATYPE_CXFLOAT,
            Pixels::UShort(_) => DATATYPE_USHORT,
        };
    }
    s.new_dataset_builder()
        .packed(true)
        .with_data(&hs)
        .create("header")
        .map_err(err("header"))?;
    let attrs: Vec<VarLenUnicode> = attributes
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|e: hdf5::types::StringError| MrdError::Invalid {
                    file: path.to_path_buf(),
                    field: "attributes".into(),
                    message: e.to_string(),
                })
        })
        .collect::<Result<_, _>>()?;
    s.new_dataset_builder()
        .with_data(&attrs)
        .create("attributes")
        .map_err(err("attributes"))?;
    match pixels {
        Pixels::Magnitude(a) => s
            .new_dataset_builder()
            .with_data(a)
            .create("data")
            .map(|_| ()),
        Pixels::Complex(a) => s
            .new_dataset_builder()
            .with_data(&a.mapv(|c| Cx {
                real: c.re,
                imag: c.im,
            }))
            .create("data")
            .map(|_| ()),
        Pixels::UShort(a) => s
            .new_dataset_builder()
            .with_data(a)
            .create("data")
            .map(|_| ()),
    }
    .map_err(err("data"))?;
    Ok(())
}

#[derive(hdf5::H5Type, Clone, Copy)]
#[repr(C)]
struct CxRi {
    r: f32,
    i: f32,
}

/// One image series read back from an ISMRMRD file.
pub struct ImageSeries {
    /// `/<group>/<series>` inside the file.
    pub name: String,
    /// Pixels `[image, channel, z, y, x]` (real images have zero imaginary parts).
    pub pixels: Array5<C32>,
    /// Whether the stored pixels were complex.
    pub complex: bool,
}

/// Reads every image series (`/<group>/<series>/data`, two levels deep) of an ISMRMRD file —
/// basin's own or another tool's: float or integer pixels, complex ones stored as
/// `{real, imag}` (C library) or `{r, i}` (h5py). Series are returned in name order.
pub fn read_images(path: &Path) -> Result<Vec<ImageSeries>, MrdError> {
    let file = hdf5::File::open(path).map_err(|source| MrdError::Hdf5 {
        file: path.to_path_buf(),
        object: "/".into(),
        source,
    })?;
    let err = |object: String| {
        move |source| MrdError::Hdf5 {
            file: path.to_path_buf(),
            object: object.clone(),
            source,
        }
    };
    let mut out = Vec::new();
    let mut groups = file.member_names().map_err(err("/".into()))?;
    groups.sort();
    for g in groups {
        let Ok(group) = file.group(&g) else { continue };
        let mut series = group.member_names().map_err(err(g.clone()))?;
        series.sort();
        for s in series {
            let name = format!("/{g}/{s}");
            let Ok(sg) = group.group(&s) else { continue };
            if !sg.link_exists("data") {
                continue;
            }
            let ds = sg.dataset("data").map_err(err(format!("{name}/data")))?;
            let shape = ds.shape();
            if shape.len() != 5 {
                return Err(MrdError::Invalid {
                    file: path.to_path_buf(),
                    field: format!("{name}/data"),
                    message: format!("shape {shape:?}, expected [image, channel, z, y, x]"),
                });
            }
            let dims = (shape[0], shape[1], shape[2], shape[3], shape[4]);
            let td = ds
                .dtype()
                .and_then(|t| t.to_descriptor())
                .map_err(err(format!("{name}/data")))?;
            let (flat, complex): (Vec<C32>, bool) = match td {
                hdf5::types::TypeDescriptor::Compound(c) => {
                    let fields: Vec<&str> = c.fields.iter().map(|f| f.name.as_str()).collect();
                    if fields == ["real", "imag"] {
                        let v = ds.read_raw::<Cx>().map_err(err(format!("{name}/data")))?;
                        (v.iter().map(|c| C32::new(c.real, c.imag)).collect(), true)
                    } else if fields == ["r", "i"] {
                        let v = ds.read_raw::<CxRi>().map_err(err(format!("{name}/data")))?;
                        (v.iter().map(|c| C32::new(c.r, c.i)).collect(), true)
                    } else {
                        return Err(MrdError::Invalid {
                            file: path.to_path_buf(),
                            field: format!("{name}/data"),
                            message: format!(
                                "compound pixels with fields {fields:?}: expected {{real, imag}} or {{r, i}}"
                            ),
                        });
                    }
                }
                _ => {
                    let v = ds
                        .as_reader()
                        .read_raw::<f32>()
                        .map_err(err(format!("{name}/data")))?;
                    (v.iter().map(|&x| C32::new(x, 0.0)).collect(), false)
                }
            };
            let pixels = Array5::from_shape_vec(dims, flat).map_err(|e| MrdError::Invalid {
                file: path.to_path_buf(),
                field: format!("{name}/data"),
                message: e.to_string(),
            })?;
            out.push(ImageSeries {
                name,
                pixels,
                complex,
            });
        }
    }
    Ok(out)
}

/// ISMRMRD MetaAttributes XML (`<ismrmrdMeta><meta><name>…</name><value>…</value></meta>…`)
/// of `pairs`, in order; a name given several times gets one `<meta>` with several values.
pub fn meta_xml(pairs: &[(String, String)]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut names: Vec<&str> = Vec::new();
    for (n, _) in pairs {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    let mut x = String::from("<?xml version=\"1.0\"?>\n<ismrmrdMeta>");
    for n in names {
        x.push_str("<meta><name>");
        x.push_str(&esc(n));
        x.push_str("</name>");
        for (_, v) in pairs.iter().filter(|(m, _)| m == n) {
            x.push_str("<value>");
            x.push_str(&esc(v));
            x.push_str("</value>");
        }
        x.push_str("</meta>");
    }
    x.push_str("</ismrmrdMeta>\n");
    x
}
