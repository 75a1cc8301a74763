//! Reading and writing ISMRMRD and fastMRI HDF5 files with hdf5-metno.
//!
//! ISMRMRD: `/<group>/xml` (the header, a string) and `/<group>/data` (a compound of `head`,
//! `traj` and `data`, the last two variable-length; `data` is either interleaved float32, as the
//! C library writes it, or `{real, imag}` pairs). fastMRI: `/kspace` complex64 `{r, i}` of shape
//! `[slices, coils, ky, kx]` or `[slices, ky, kx]`, `/ismrmrd_header`, optional `/mask`.
//! Every read checks the stored type first and bounds what it allocates by the file's size.

use crate::acquisition::{Acquisition, AcquisitionHeader};
use crate::header::IsmrmrdHeader;
use crate::MrdError;
use basin_core::C32;
use hdf5::types::{
    FixedAscii, FixedUnicode, TypeDescriptor, VarLenArray, VarLenAscii, VarLenUnicode,
};
use ndarray::{Array2, Array3, Array4};
use std::path::{Path, PathBuf};

#[derive(hdf5::H5Type, Clone, Copy, Debug, Default)]
#[repr(C)]
struct ComplexRI {
    real: f32,
    imag: f32,
}

#[derive(hdf5::H5Type, Clone, Copy, Debug, Default)]
#[repr(C)]
struct ComplexFm {
    r: f32,
    i: f32,
}

#[derive(hdf5::H5Type, Clone)]
#[repr(C)]
struct AcqRecordF {
    head: AcquisitionHeader,
    traj: VarLenArray<f32>,
    data: VarLenArray<f32>,
}

#[derive(hdf5::H5Type, Clone)]
#[repr(C)]
struct AcqRecordC {
    head: AcquisitionHeader,
    traj: VarLenArray<f32>,
    data: VarLenArray<ComplexRI>,
}

/// Which kind of HDF5 k-space file a path holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// ISMRMRD with acquisitions in the named group.
    Ismrmrd {
        /// Group holding `xml` and `data`.
        group: String,
    },
    /// fastMRI-style `kspace` at the root.
    FastMri,
}

/// Most samples basin will allocate for one array, whatever a header claims (2³¹).
pub const MAX_ELEMENTS: usize = 1 << 31;

fn h5err<'a>(file: &'a Path, object: &str) -> impl Fn(hdf5::Error) -> MrdError + 'a {
    let object = object.to_string();
    move |source| MrdError::Hdf5 {
        file: file.to_path_buf(),
        object: object.clone(),
        source,
    }
}

fn open(path: &Path) -> Result<hdf5::File, MrdError> {
    if !path.exists() {
        return Err(MrdError::Io {
            file: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    hdf5::File::open(path).map_err(|source| MrdError::NotHdf5 {
        file: path.to_path_buf(),
        source,
    })
}

/// Tells whether `path` is an ISMRMRD file (using `group`, or the only group with `data` and
/// `xml` when `group` is None) or a fastMRI file.
pub fn detect(path: &Path, group: Option<&str>) -> Result<FileKind, MrdError> {
    let file = open(path)?;
    if let Some(g) = group {
        if !file.link_exists(g) {
            return Err(MrdError::Missing {
                file: path.to_path_buf(),
                object: format!("/{g}"),
            });
        }
        return Ok(FileKind::Ismrmrd {
            group: g.to_string(),
        });
    }
    if file.link_exists("kspace") {
        return Ok(FileKind::FastMri);
    }
    let names = file.member_names().map_err(h5err(path, "/"))?;
    let mut candidates = Vec::new();
    for n in names {
        if let Ok(g) = file.group(&n) {
            if g.link_exists("data") && g.link_exists("xml") {
                candidates.push(n);
            }
        }
    }
    match candidates.len() {
        0 => Err(MrdError::Invalid {
            file: path.to_path_buf(),
            field: "/".into(),
            message: "neither an ISMRMRD group with 'xml' and 'data' nor a fastMRI 'kspace' dataset was found".into(),
        }),
        1 => Ok(FileKind::Ismrmrd { group: candidates.remove(0) }),
        _ => {
            if candidates.iter().any(|c| c == "dataset") {
                Ok(FileKind::Ismrmrd { group: "dataset".into() })
            } else {
                Err(MrdError::Invalid {
                    file: path.to_path_buf(),
                    field: "/".into(),
                    message: format!("several ISMRMRD groups ({}); choose one with --dataset", candidates.join(", ")),
                })
            }
        }
    }
}

/// Reads a string dataset stored as variable-length UTF-8/ASCII or fixed-length, scalar or 1-element.
fn read_string(file: &Path, ds: &hdf5::Dataset, name: &str) -> Result<String, MrdError> {
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(h5err(file, name))?;
    if ds.size() == 0 {
        return Err(MrdError::Invalid {
            file: file.to_path_buf(),
            field: name.into(),
            message: "empty string dataset".into(),
        });
    }
    let s = match desc {
        TypeDescriptor::VarLenUnicode => ds
            .read_raw::<VarLenUnicode>()
            .map_err(h5err(file, name))?
            .first()
            .map(|s| s.as_str().to_string()),
        TypeDescriptor::VarLenAscii => ds
            .read_raw::<VarLenAscii>()
            .map_err(h5err(file, name))?
            .first()
            .map(|s| s.as_str().to_string()),
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) if n > (1 << 22) => {
            return Err(MrdError::Invalid {
                file: file.to_path_buf(),
                field: name.into(),
                message: format!("fixed-length string of {n} bytes is too long for a header"),
            });
        }
        TypeDescriptor::FixedAscii(_) => ds
            .read_raw::<FixedAscii<{ 1 << 22 }>>()
            .map_err(h5err(file, name))?
            .first()
            .map(|s| s.as_str().to_string()),
        TypeDescriptor::FixedUnicode(_) => ds
            .read_raw::<FixedUnicode<{ 1 << 22 }>>()
            .map_err(h5err(file, name))?
            .first()
            .map(|s| s.as_str().to_string()),
        other => {
            return Err(MrdError::Type {
                file: file.to_path_buf(),
                object: name.into(),
                expected: "a string".into(),
                found: format!("{other:?}"),
            })
        }
    };
    s.ok_or_else(|| MrdError::Invalid {
        file: file.to_path_buf(),
        field: name.into(),
        message: "empty string dataset".into(),
    })
}

fn parse_header(file: &Path, name: &str, xml: &str) -> Result<IsmrmrdHeader, MrdError> {
    IsmrmrdHeader::from_xml(xml.trim_end_matches('\0')).map_err(|e| MrdError::Header {
        file: file.to_path_buf(),
        object: name.into(),
        message: e.to_string(),
    })
}

/// Reads the header and all acquisitions of ISMRMRD group `group`.
pub fn read_ismrmrd(
    path: &Path,
    group: &str,
) -> Result<(IsmrmrdHeader, Vec<Acquisition>), MrdError> {
    read_ismrmrd_with_xml(path, group).map(|(_, h, a)| (h, a))
}

/// As [`read_ismrmrd`], also returning the header's XML text as stored (what a client streams).
pub fn read_ismrmrd_with_xml(
    path: &Path,
    group: &str,
) -> Result<(String, IsmrmrdHeader, Vec<Acquisition>), MrdError> {
    let file = open(path)?;
    let g = file.group(group).map_err(|_| MrdError::Missing {
        file: path.to_path_buf(),
        object: format!("/{group}"),
    })?;
    let xml_name = format!("/{group}/xml");
    let data_name = format!("/{group}/data");
    let xml_ds = g.dataset("xml").map_err(|_| MrdError::Missing {
        file: path.to_path_buf(),
        object: xml_name.clone(),
    })?;
    let ds = g.dataset("data").map_err(|_| MrdError::Missing {
        file: path.to_path_buf(),
        object: data_name.clone(),
    })?;
    let xml = read_string(path, &xml_ds, &xml_name)?;
    let header = parse_header(path, &xml_name, &xml)?;

    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(h5err(path, &data_name))?;
    let complex_pairs = match &desc {
        TypeDescriptor::Compound(c) => {
            let field = c.fields.iter().find(|f| f.name == "data");
            let head = c.fields.iter().any(|f| f.name == "head");
            match (field.map(|f| &f.ty), head) {
                (Some(TypeDescriptor::VarLenArray(inner)), true) => match inner.as_ref() {
                    TypeDescriptor::Float(_) => false,
                    TypeDescriptor::Compound(ci)
                        if ci.fields.iter().any(|f| f.name == "real")
                            && ci.fields.iter().any(|f| f.name == "imag") =>
                    {
                        true
                    }
                    other => {
                        return Err(MrdError::Type {
                            file: path.to_path_buf(),
                            object: format!("{data_name}.data"),
                            expected: "variable-length float32 or {real, imag}".into(),
                            found: format!("variable-length {other:?}"),
                        })
                    }
                },
                _ => {
                    return Err(MrdError::Type {
                        file: path.to_path_buf(),
                        object: data_name.clone(),
                        expected: "compound {head, traj, data} (ISMRMRD acquisitions)".into(),
                        found: format!("{desc:?}").chars().take(200).collect(),
                    })
                }
            }
        }
        other => {
            return Err(MrdError::Type {
                file: path.to_path_buf(),
                object: data_name.clone(),
                expected: "compound {head, traj, data} (ISMRMRD acquisitions)".into(),
                found: format!("{other:?}").chars().take(200).collect(),
            })
        }
    };
    let count = ds.size();
    let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as usize;
    if count.saturating_mul(64) > file_size.saturating_mul(4) + (1 << 20) {
        return Err(MrdError::Invalid {
            file: path.to_path_buf(),
            field: data_name,
            message: format!(
                "declares {count} acquisitions, more than a file of {file_size} bytes can hold"
            ),
        });
    }
    let mut out = Vec::with_capacity(count);
    if complex_pairs {
        let recs = ds
            .read_raw::<AcqRecordC>()
            .map_err(h5err(path, &data_name))?;
        for (i, r) in recs.iter().enumerate() {
            let data: Vec<C32> = r
                .data
                .as_slice()
                .iter()
                .map(|c| C32::new(c.real, c.imag))
                .collect();
            out.push(decode(path, i, r.head, r.traj.as_slice(), data)?);
        }
    } else {
        let recs = ds
            .read_raw::<AcqRecordF>()
            .map_err(h5err(path, &data_name))?;
        for (i, r) in recs.iter().enumerate() {
            let d = r.data.as_slice();
            if d.len() % 2 != 0 {
                return Err(MrdError::Invalid {
                    file: path.to_path_buf(),
                    field: format!("{data_name}[{i}].data"),
                    message: format!("odd number of floats ({}) for complex samples", d.len()),
                });
            }
            let data: Vec<C32> = d.chunks_exact(2).map(|p| C32::new(p[0], p[1])).collect();
            out.push(decode(path, i, r.head, r.traj.as_slice(), data)?);
        }
    }
    Ok((xml, header, out))
}

fn decode(
    path: &Path,
    i: usize,
    head: AcquisitionHeader,
    traj: &[f32],
    data: Vec<C32>,
) -> Result<Acquisition, MrdError> {
    let ns = head.number_of_samples as usize;
    let nc = head.active_channels as usize;
    if data.len() != ns * nc {
        return Err(MrdError::Invalid {
            file: path.to_path_buf(),
            field: format!("acquisition {i}: number_of_samples × active_channels"),
            message: format!(
                "header declares {ns} samples × {nc} channels = {} but the acquisition holds {} complex samples",
                ns * nc,
                data.len()
            ),
        });
    }
    let nt = head.trajectory_dimensions as usize * ns;
    if traj.len() != nt {
        return Err(MrdError::Invalid {
            file: path.to_path_buf(),
            field: format!("acquisition {i}: trajectory_dimensions"),
            message: format!(
                "header declares {nt} trajectory values but the acquisition holds {}",
                traj.len()
            ),
        });
    }
    let data = Array2::from_shape_vec((nc, ns), data).map_err(|e| MrdError::Invalid {
        file: path.to_path_buf(),
        field: format!("acquisition {i}"),
        message: e.to_string(),
    })?;
    Ok(Acquisition {
        head,
        traj: traj.to_vec(),
        data,
    })
}

/// Writes an ISMRMRD file with `header` and `acquisitions` in group `group` (data as
/// interleaved float32, as the ISMRMRD C library does). Overwrites `path`.
pub fn write_ismrmrd(
    path: &Path,
    group: &str,
    header: &IsmrmrdHeader,
    acquisitions: &[Acquisition],
) -> Result<(), MrdError> {
    let file = hdf5::File::create(path).map_err(h5err(path, "/"))?;
    let g = file.create_group(group).map_err(h5err(path, group))?;
    let xml = header.to_xml().map_err(|e| MrdError::Header {
        file: path.to_path_buf(),
        object: "xml".into(),
        message: e.to_string(),
    })?;
    let xml: VarLenUnicode =
        xml.parse()
            .map_err(|e: hdf5::types::StringError| MrdError::Header {
                file: path.to_path_buf(),
                object: "xml".into(),
                message: e.to_string(),
            })?;
    g.new_dataset_builder()
        .with_data(&[xml])
        .create("xml")
        .map_err(h5err(path, "xml"))?;
    let recs: Vec<AcqRecordF> = acquisitions
        .iter()
        .map(|a| {
            let mut head = a.head;
            head.number_of_samples = a.data.shape()[1] as u16;
            head.active_channels = a.data.shape()[0] as u16;
            let flat: Vec<f32> = a.data.iter().flat_map(|c| [c.re, c.im]).collect();
            AcqRecordF {
                head,
                traj: VarLenArray::from_slice(&a.traj),
                data: VarLenArray::from_slice(&flat),
            }
        })
        .collect();
    // Packed like the ISMRMRD C library's compound (the Python package reads raw bytes).
    g.new_dataset_builder()
        .packed(true)
        .with_data(&recs)
        .create("data")
        .map_err(h5err(path, "data"))?;
    Ok(())
}

/// A fastMRI-style file: k-space `[slices, coils, ky, kx]` (single-coil files get one coil),
/// its ISMRMRD header when present, and the 1D column mask when present.
#[derive(Clone, Debug)]
pub struct FastMri {
    /// k-space `[slices, coils, rows, columns]` as stored.
    pub kspace: Array4<C32>,
    /// The ISMRMRD header (`/ismrmrd_header`).
    pub header: Option<IsmrmrdHeader>,
    /// Sampled columns (`/mask`), one flag per column of the last axis.
    pub mask: Option<Vec<bool>>,
    /// Whether the file was single-coil (`[slices, ky, kx]`).
    pub single_coil: bool,
}

/// Bytes of a fastMRI file's `kspace` array in memory (complex64), from its shape.
pub fn fastmri_kspace_bytes(path: &Path) -> Result<u64, MrdError> {
    let file = open(path)?;
    let ds = file.dataset("kspace").map_err(|_| MrdError::Missing {
        file: path.to_path_buf(),
        object: "/kspace".into(),
    })?;
    Ok(ds
        .shape()
        .iter()
        .fold(8u64, |a, &n| a.saturating_mul(n as u64)))
}

/// Reads a fastMRI-style file.
pub fn read_fastmri(path: &Path) -> Result<FastMri, MrdError> {
    let file = open(path)?;
    let ds = file.dataset("kspace").map_err(|_| MrdError::Missing {
        file: path.to_path_buf(),
        object: "/kspace".into(),
    })?;
    let desc = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(h5err(path, "/kspace"))?;
    let ok = matches!(&desc, TypeDescriptor::Compound(c)
        if c.fields.len() == 2
        && c.fields.iter().any(|f| f.name == "r" && matches!(f.ty, TypeDescriptor::Float(_)))
        && c.fields.iter().any(|f| f.name == "i" && matches!(f.ty, TypeDescriptor::Float(_))));
    if !ok {
        return Err(MrdError::Type {
            file: path.to_path_buf(),
            object: "/kspace".into(),
            expected: "complex {r, i} (h5py complex64)".into(),
            found: format!("{desc:?}").chars().take(200).collect(),
        });
    }
    let shape = ds.shape();
    let single_coil = match shape.len() {
        3 => true,
        4 => false,
        n => {
            return Err(MrdError::Invalid {
                file: path.to_path_buf(),
                field: "/kspace".into(),
                message: format!("expected 3 axes [slices, ky, kx] or 4 axes [slices, coils, ky, kx], found {n}: {shape:?}"),
            })
        }
    };
    let total: usize = shape
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .unwrap_or(usize::MAX);
    let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as usize;
    if total > MAX_ELEMENTS || total.saturating_mul(8) > file_size.saturating_mul(64) + (64 << 20) {
        return Err(MrdError::Invalid {
            file: path.to_path_buf(),
            field: "/kspace".into(),
            message: format!("declares shape {shape:?} ({total} samples), more than a file of {file_size} bytes can hold"),
        });
    }
    let raw = ds.read_raw::<ComplexFm>().map_err(h5err(path, "/kspace"))?;
    let dims = if single_coil {
        (shape[0], 1, shape[1], shape[2])
    } else {
        (shape[0], shape[1], shape[2], shape[3])
    };
    let kspace =
        Array4::from_shape_vec(dims, raw.into_iter().map(|c| C32::new(c.r, c.i)).collect())
            .map_err(|e| MrdError::Invalid {
                file: path.to_path_buf(),
                field: "/kspace".into(),
                message: e.to_string(),
            })?;
    let header = if file.link_exists("ismrmrd_header") {
        let hds = file
            .dataset("ismrmrd_header")
            .map_err(h5err(path, "/ismrmrd_header"))?;
        let xml = read_string(path, &hds, "/ismrmrd_header")?;
        Some(parse_header(path, "/ismrmrd_header", &xml)?)
    } else {
        None
    };
    let mask = if file.link_exists("mask") {
        let mds = file.dataset("mask").map_err(h5err(path, "/mask"))?;
        if mds.ndim() != 1 || mds.size() != dims.3 {
            return Err(MrdError::Invalid {
                file: path.to_path_buf(),
                field: "/mask".into(),
                message: format!(
                    "expected one value per k-space column ({}), found shape {:?}",
                    dims.3,
                    mds.shape()
                ),
            });
        }
        let m = mds.read_raw::<f64>().map_err(h5err(path, "/mask"))?;
        Some(m.into_iter().map(|v| v != 0.0).collect())
    } else {
        None
    };
    Ok(FastMri {
        kspace,
        header,
        mask,
        single_coil,
    })
}

/// Whether `path` is an HDF5 file with a fastMRI reference image (see
/// [`read_fastmri_reference`]); false for anything unreadable.
pub fn has_fastmri_reference(path: &Path) -> bool {
    open(path).is_ok_and(|f| {
        f.link_exists("kspace")
            && (f.link_exists("reconstruction_rss") || f.link_exists("reconstruction_esc"))
    })
}

/// The reference image a fastMRI file carries, `/reconstruction_rss` (`[slices, rows, columns]`,
/// the root-sum-of-squares of the fully sampled coil images centre-cropped to the reconstruction
/// matrix, as the fastMRI dataset defines it); `None` when the file has none. Single-coil files'
/// `/reconstruction_esc` is used when there is no RSS.
pub fn read_fastmri_reference(path: &Path) -> Result<Option<Array3<f32>>, MrdError> {
    let file = open(path)?;
    let Some(name) = ["reconstruction_rss", "reconstruction_esc"]
        .into_iter()
        .find(|n| file.link_exists(n))
    else {
        return Ok(None);
    };
    let ds = file.dataset(name).map_err(h5err(path, name))?;
    let shape = ds.shape();
    let invalid = |message: String| MrdError::Invalid {
        file: path.to_path_buf(),
        field: format!("/{name}"),
        message,
    };
    let dims = match shape[..] {
        [z, y, x] => (z, y, x),
        [y, x] => (1, y, x),
        _ => {
            return Err(invalid(format!(
                "expected [slices, rows, columns], found shape {shape:?}"
            )))
        }
    };
    let total = dims
        .0
        .checked_mul(dims.1)
        .and_then(|v| v.checked_mul(dims.2))
        .filter(|&v| v <= MAX_ELEMENTS)
        .ok_or_else(|| invalid(format!("shape {shape:?} is past basin's size limit")))?;
    if total == 0 {
        return Err(invalid(format!("shape {shape:?} has a zero axis")));
    }
    let raw = ds.read_raw::<f32>().map_err(h5err(path, name))?;
    if raw.iter().any(|v| !v.is_finite()) {
        return Err(invalid("contains NaN or infinite values".into()));
    }
    Array3::from_shape_vec(dims, raw)
        .map(Some)
        .map_err(|e| invalid(e.to_string()))
}

/// Path of a sibling temporary file for atomic writes: `dir/.name.tmp-<pid>`.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
