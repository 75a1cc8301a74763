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

/// Why a file in transfer syntax `ts` is not read.
fn compressed(ts: &str) -> String {
    format!(
        "transfer syntax {ts} is compressed; basin reads uncompressed DICOM (decompress with dcmdjpeg or gdcmconv -w)"
    )
}

/// Checks, before dicom-object parses the file, that no data element declares more bytes than
/// the file has left: dicom-object allocates and zeroes a value's declared length before reading
/// it, so one corrupt length costs up to 4 GiB of memory and seconds per file. Walks the element
/// headers as dicom-object reads them — the file meta group (explicit VR little endian, as long
/// as its group length says), then the data set in the three native transfer syntaxes
/// (sequences and items entered, other values skipped; an unknown VR has a 4-byte length).
/// A transfer syntax other than the native ones is refused here (basin reads uncompressed DICOM).
/// Files it cannot follow (no `DICM` marker, no transfer syntax) are left to dicom-object's own
/// errors. `Err` is the message (naming the element).
fn check_lengths(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 144 || &bytes[128..132] != b"DICM" {
        return Ok(());
    }
    let u16_at = |p: usize, big: bool| {
        let b = [bytes[p], bytes[p + 1]];
        if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |p: usize, big: bool| {
        let b = [bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    // The VRs with a 2-byte length in explicit VR (PS3.5 7.1.2); any other, unknown ones too,
    // has 2 reserved bytes and a 4-byte length (as dicom-encoding reads them).
    const SHORT_VRS: [&[u8; 2]; 21] = [
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN",
        b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    ];
    // One element header at `pos`: (group, element, value length, header bytes, is SQ), or None
    // when the file ends inside it.
    let header = |pos: usize, explicit: bool, big: bool| {
        if pos + 8 > bytes.len() {
            return None;
        }
        let (group, element) = (u16_at(pos, big), u16_at(pos + 2, big));
        if group == 0xFFFE || !explicit {
            return Some((group, element, u32_at(pos + 4, big), 8, false));
        }
        let vr = [bytes[pos + 4], bytes[pos + 5]];
        if SHORT_VRS.contains(&&vr) {
            return Some((group, element, u16_at(pos + 6, big) as u32, 8, false));
        }
        if pos + 12 > bytes.len() {
            return None;
        }
        Some((group, element, u32_at(pos + 8, big), 12, &vr == b"SQ"))
    };
    let too_long = |group: u16, element: u16, len: u32, pos: usize| {
        let left = bytes.len() - pos;
        (len != u32::MAX && len as usize > left).then(|| {
            format!(
                "not a readable DICOM file: element ({group:04X},{element:04X}) declares {len} bytes but the file has {left} left (truncated or corrupt)"
            )
        })
    };
    // The meta group: (0002,0000) first, then elements while fewer than its value were read.
    let Some((0x0002, 0x0000, 4, 8, false)) = header(132, true, false) else {
        return Ok(());
    };
    let group_length = u32_at(140, false) as usize;
    let mut pos = 144;
    let mut ts = None;
    while pos - 144 < group_length {
        let Some((g, e, len, h, _)) = header(pos, true, false) else {
            return Ok(());
        };
        pos += h;
        if let Some(m) = too_long(g, e, len, pos) {
            return Err(m);
        }
        if len == u32::MAX {
            return Ok(());
        }
        if (g, e) == (0x0002, 0x0010) {
            ts = Some(String::from_utf8_lossy(&bytes[pos..pos + len as usize]).into_owned());
        }
        pos += len as usize;
    }
    // Padded with NUL or spaces; a stray control character is trimmed as dicom-object does.
    let ts = ts.map(|t| {
        t.trim_matches(|c: char| c == '\0' || c.is_whitespace() || c.is_control())
            .to_string()
    });
    let (explicit, big) = match ts.as_deref() {
        Some("1.2.840.10008.1.2") => (false, false),
        Some("1.2.840.10008.1.2.1") => (true, false),
        Some("1.2.840.10008.1.2.2") => (true, true),
        // basin reads the native syntaxes only: the others are refused before dicom-object
        // parses their data sets (encapsulated, deflated, or not a syntax at all).
        Some(other) => return Err(compressed(other)),
        None => return Ok(()),
    };
    // The data set: every defined length must fit; sequences, items and undefined lengths
    // (their contents follow) are entered, other values skipped.
    while let Some((g, e, len, h, sequence)) = header(pos, explicit, big) {
        pos += h;
        if let Some(m) = too_long(g, e, len, pos) {
            return Err(m);
        }
        if !(sequence || g == 0xFFFE || len == u32::MAX) {
            pos += len as usize;
        }
    }
    Ok(())
}

fn read_one(path: &Path) -> Result<Slice, ExportError> {
    let bad = |m: String| ExportError::Read {
        file: path.to_path_buf(),
        message: m,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    check_lengths(&bytes).map_err(bad)?;
    let obj: DefaultDicomObject =
        open_file(path).map_err(|e| bad(format!("not a readable DICOM file: {e}")))?;
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    if !NATIVE.contains(&ts.as_str()) {
        return Err(bad(compressed(&ts)));
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
    let pixel_data = obj
        .element(tags::PIXEL_DATA)
        .map_err(|_| bad("PixelData missing".into()))?;
    // dicom-object decodes OW values to 16-bit words in the machine's byte order (big endian
    // files included); OB values stay the file's bytes, in the transfer syntax's order.
    let words = matches!(
        pixel_data.value(),
        dicom_core::value::Value::Primitive(
            dicom_core::value::PrimitiveValue::U16(_) | dicom_core::value::PrimitiveValue::I16(_)
        )
    );
    let data = pixel_data
        .to_bytes()
        .map_err(|e| bad(format!("PixelData: {e}")))?;
    let n = rows * cols;
    let big = ts == "1.2.840.10008.1.2.2";
    let word = |c: &[u8]| {
        let b = [c[0], c[1]];
        if words {
            u16::from_ne_bytes(b)
        } else if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let raw: Vec<f64> = match (bits, signed) {
        (8, false) => data.iter().take(n).map(|&b| b as f64).collect(),
        (16, s) => data
            .chunks_exact(2)
            .take(n)
            .map(|c| {
                let w = word(c);
                if s {
                    w as i16 as f64
                } else {
                    w as f64
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
