//! Reading a DICOM image series (a directory of single-frame files, or one file) as float32
//! pixels `[slice, row, column]` with the rescale slope and intercept applied, ordered by
//! position along the slice normal (InstanceNumber when positions are missing). Uncompressed
//! transfer syntaxes only; anything else is refused with a clear error.

use crate::ExportError;
use dicom_dictionary_std::tags;
use dicom_object::{open_file, DefaultDicomObject};
use ndarray::Array3;
use std::path::{Path, PathBuf};

const NATIVE: [&str; 3] = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
];

struct Slice {
    key: f64,
    rows: usize,
    cols: usize,
    pixels: Vec<f32>,
}

fn read_one(path: &Path) -> Result<Slice, ExportError> {
    let bad = |m: String| ExportError::Read {
        file: path.to_path_buf(),
        message: m,
    };
    let obj: DefaultDicomObject =
        open_file(path).map_err(|e| bad(format!("not a readable DICOM file: {e}")))?;
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    if !NATIVE.contains(&ts.as_str()) {
        return Err(bad(format!(
            "transfer syntax {ts} is compressed; basin reads uncompressed DICOM (decompress with dcmdjpeg or gdcmconv -w)"
        )));
    }
    let int = |tag, name: &str| -> Result<i64, ExportError> {
        obj.element(tag)
            .map_err(|_| bad(format!("{name} missing")))?
            .to_int::<i64>()
            .map_err(|e| bad(format!("{name}: {e}")))
    };
    let float_or = |tag, default: f64| {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_float64().ok())
            .unwrap_or(default)
    };
    let rows = int(tags::ROWS, "Rows")? as usize;
    let cols = int(tags::COLUMNS, "Columns")? as usize;
    let bits = int(tags::BITS_ALLOCATED, "BitsAllocated")?;
    let signed = int(tags::PIXEL_REPRESENTATION, "PixelRepresentation").unwrap_or(0) == 1;
    let spp = int(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel").unwrap_or(1);
    let frames = int(tags::NUMBER_OF_FRAMES, "NumberOfFrames").unwrap_or(1);
    if spp != 1 || frames != 1 {
        return Err(bad(format!(
            "{spp} samples per pixel and {frames} frames: basin reads single-frame greyscale images"
        )));
    }
    let slope = float_or(tags::RESCALE_SLOPE, 1.0);
    let intercept = float_or(tags::RESCALE_INTERCEPT, 0.0);
    let data = obj
        .element(tags::PIXEL_DATA)
        .map_err(|_| bad("PixelData missing".into()))?
        .to_bytes()
        .map_err(|e| bad(format!("PixelData: {e}")))?;
    let n = rows * cols;
    let big = ts == "1.2.840.10008.1.2.2";
    let raw: Vec<f64> = match (bits, signed) {
        (8, false) => data.iter().take(n).map(|&b| b as f64).collect(),
        (16, s) => data
            .chunks_exact(2)
            .take(n)
            .map(|c| {
                let b = [c[0], c[1]];
                match (s, big) {
                    (false, false) => u16::from_le_bytes(b) as f64,
                    (false, true) => u16::from_be_bytes(b) as f64,
                    (true, false) => i16::from_le_bytes(b) as f64,
                    (true, true) => i16::from_be_bytes(b) as f64,
                }
            })
            .collect(),
        _ => {
            return Err(bad(format!(
                "BitsAllocated {bits} (signed: {signed}) is not supported (8 or 16)"
            )))
        }
    };
    if raw.len() != n {
        return Err(bad(format!(
            "PixelData holds {} pixels, Rows × Columns = {n}",
            raw.len()
        )));
    }
    let pos = obj
        .element(tags::IMAGE_POSITION_PATIENT)
        .ok()
        .and_then(|e| e.to_multi_float64().ok());
    let ori = obj
        .element(tags::IMAGE_ORIENTATION_PATIENT)
        .ok()
        .and_then(|e| e.to_multi_float64().ok());
    let key = match (pos, ori) {
        (Some(p), Some(o)) if p.len() == 3 && o.len() == 6 => {
            let nrm = [
                o[1] * o[5] - o[2] * o[4],
                o[2] * o[3] - o[0] * o[5],
                o[0] * o[4] - o[1] * o[3],
            ];
            p[0] * nrm[0] + p[1] * nrm[1] + p[2] * nrm[2]
        }
        _ => int(tags::INSTANCE_NUMBER, "InstanceNumber").unwrap_or(0) as f64,
    };
    Ok(Slice {
        key,
        rows,
        cols,
        pixels: raw
            .into_iter()
            .map(|v| (v * slope + intercept) as f32)
            .collect(),
    })
}

/// Whether a file starts with the DICOM Part 10 preamble: 128 bytes, then "DICM".
fn has_preamble(f: &Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 132];
    std::fs::File::open(f)
        .and_then(|mut h| h.read_exact(&mut b))
        .is_ok()
        && &b[128..] == b"DICM"
}

/// Reads a series from a directory (every regular file in it, hidden files and files
/// without the DICOM preamble skipped) or from one
/// file, as `[slice, row, column]`.
pub fn read_dicom_series(path: &Path) -> Result<Array3<f32>, ExportError> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| ExportError::Read {
                file: path.to_path_buf(),
                message: e.to_string(),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        v.sort();
        // Files without the DICOM Part 10 preamble ("DICM" at byte 128) — a README, a
        // DICOMDIR's notes, a stray thumbnail — are skipped with a warning instead of failing
        // the whole series; when no file has the preamble, all are tried as they are.
        let (dicom, other): (Vec<PathBuf>, Vec<PathBuf>) =
            v.into_iter().partition(|f| has_preamble(f));
        if dicom.is_empty() {
            other
        } else {
            for f in &other {
                tracing::warn!("{}: not a DICOM file; skipped", f.display());
            }
            dicom
        }
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        return Err(ExportError::Read {
            file: path.to_path_buf(),
            message: "no files in the directory".into(),
        });
    }
    let mut slices = files
        .iter()
        .map(|f| read_one(f))
        .collect::<Result<Vec<_>, _>>()?;
    let (rows, cols) = (slices[0].rows, slices[0].cols);
    if let Some((i, s)) = slices
        .iter()
        .enumerate()
        .find(|(_, s)| (s.rows, s.cols) != (rows, cols))
    {
        return Err(ExportError::Read {
            file: files[i].clone(),
            message: format!(
                "{}×{} pixels, the series' first image has {rows}×{cols}",
                s.rows, s.cols
            ),
        });
    }
    slices.sort_by(|a, b| a.key.total_cmp(&b.key));
    let n = slices.len();
    let flat: Vec<f32> = slices.into_iter().flat_map(|s| s.pixels).collect();
    Array3::from_shape_vec((n, rows, cols), flat).map_err(|e| ExportError::Read {
        file: path.to_path_buf(),
        message: e.to_string(),
    })
}
