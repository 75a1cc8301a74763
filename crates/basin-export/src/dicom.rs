//! DICOM output: an MR Image Storage series, one file per slice, 16-bit unsigned pixels scaled
//! to 12 bits, with the patient, study, series, frame of reference, equipment, image plane,
//! image pixel, MR image, VOI LUT and SOP common modules filled from the ISMRMRD header where
//! it has the information and from documented defaults where it has not. UIDs are generated
//! under `2.25` (or a caller's root); a new SeriesInstanceUID per run; the StudyInstanceUID and
//! FrameOfReferenceUID come from the header when present. `anonymize` applies the DICOM PS3.15
//! Basic Application Level Confidentiality Profile to what basin writes.

use crate::geometry::StackGeometry;
use crate::ExportError;
use basin_mrd::IsmrmrdHeader;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use ndarray::Array3;
use rand::{RngCore, SeedableRng};
use std::path::{Path, PathBuf};

/// MR Image Storage SOP class.
pub const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
/// basin's implementation class UID (under 2.25, fixed).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.302430918622379131412377946380112301331";

/// Options of a DICOM series.
#[derive(Clone, Debug)]
pub struct DicomOptions {
    /// SeriesDescription (names the protocol).
    pub series_description: String,
    /// Root under which UIDs are made (default `2.25`, i.e. UUID-derived).
    pub uid_root: Option<String>,
    /// Apply the PS3.15 basic confidentiality profile.
    pub anonymize: bool,
    /// Overwrite an existing series directory.
    pub overwrite: bool,
    /// Whether the encoding was 3D (MRAcquisitionType).
    pub three_d: bool,
}

/// A new UID: `2.25.<128-bit random decimal>`, or `<root>.<random decimal>` within 64 characters.
pub fn new_uid(root: Option<&str>) -> String {
    let mut b = [0u8; 16];
    rand::rngs::StdRng::from_os_rng().fill_bytes(&mut b);
    let v = u128::from_be_bytes(b);
    match root {
        None => format!("2.25.{v}"),
        Some(r) => {
            // The root is at most 40 characters (validate_uid_root), so ≥ 23 digits remain.
            let mut s = format!("{}.{}", r.trim_end_matches('.'), v);
            s.truncate(64);
            s
        }
    }
}

/// Checks a UID root: digits and dots, no empty or zero-led components, at most 40 characters.
pub fn validate_uid_root(root: &str) -> Result<(), ExportError> {
    let ok = !root.is_empty()
        && root.len() <= 40
        && root.split('.').all(|c| {
            !c.is_empty()
                && c.chars().all(|ch| ch.is_ascii_digit())
                && (c == "0" || !c.starts_with('0'))
        });
    if ok {
        Ok(())
    } else {
        Err(ExportError::Invalid(format!("--uid-root {root:?}: a UID root is digits separated by dots, no leading zeros, at most 40 characters")))
    }
}

fn da(date: &str) -> String {
    date.chars()
        .filter(|c| c.is_ascii_digit())
        .take(8)
        .collect()
}

fn tm(time: &str) -> String {
    let digits: String = time
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(6)
        .collect();
    digits
}

/// Today's date and time (UTC) as DICOM DA and TM.
fn now() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, (rem / 60) % 60, rem % 60),
    )
}

fn ds(v: f64) -> String {
    // Decimal string of at most 16 characters.
    let mut s = format!("{v:.6}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if s == "-0" {
        s = "0".into();
    }
    s.truncate(16);
    s
}

fn ds_multi(v: &[f64]) -> String {
    v.iter().map(|&x| ds(x)).collect::<Vec<_>>().join("\\")
}

struct Builder(InMemDicomObject);

impl Builder {
    fn put(&mut self, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) {
        self.0.put(DataElement::new(tag, vr, value.into()));
    }
    fn s(&mut self, tag: Tag, vr: VR, value: &str) {
        self.put(tag, vr, value.to_string());
    }
}

/// Identifying values kept from the header (emptied or replaced by `anonymize`).
struct Identity {
    patient_name: String,
    patient_id: String,
    birth_date: String,
    sex: String,
    weight: Option<f64>,
    size_m: Option<f64>,
    study_date: String,
    study_time: String,
    accession: String,
    referring: String,
    study_id: String,
    institution: Option<String>,
    station: Option<String>,
    device_serial: Option<String>,
}

fn identity(h: &IsmrmrdHeader, anonymize: bool) -> Identity {
    let subj = h.subjectInformation.clone().unwrap_or_default();
    let study = h.studyInformation.clone().unwrap_or_default();
    let sys = h.acquisitionSystemInformation.clone().unwrap_or_default();
    if anonymize {
        return Identity {
            patient_name: String::new(),
            patient_id: "ANONYMOUS".into(),
            birth_date: String::new(),
            sex: String::new(),
            weight: None,
            size_m: None,
            // PS3.15 "Z": replaced by dummy values (empty ones would make the series unusable in
            // a DICOMDIR).
            study_date: "19000101".into(),
            study_time: "000000".into(),
            accession: String::new(),
            referring: String::new(),
            study_id: "1".into(),
            institution: None,
            station: None,
            device_serial: None,
        };
    }
    let sex = match subj.patientGender.as_deref() {
        Some("M") => "M",
        Some("F") => "F",
        Some("O") => "O",
        _ => "",
    };
    Identity {
        patient_name: subj.patientName.unwrap_or_default(),
        patient_id: subj.patientID.unwrap_or_default(),
        birth_date: subj.patientBirthdate.as_deref().map(da).unwrap_or_default(),
        sex: sex.into(),
        weight: subj.patientWeight_kg,
        size_m: subj.patientHeight_m,
        study_date: study.studyDate.as_deref().map(da).unwrap_or_default(),
        study_time: study.studyTime.as_deref().map(tm).unwrap_or_default(),
        accession: study
            .accessionNumber
            .map(|a| a.to_string())
            .unwrap_or_default(),
        referring: study.referringPhysicianName.unwrap_or_default(),
        study_id: study.studyID.unwrap_or_default().chars().take(16).collect(),
        institution: sys.institutionName,
        station: sys.stationName,
        device_serial: sys.deviceID,
    }
}

/// Intensity scale to 12 bits and a window (centre, width) covering the 0.5–99.5 % range.
fn scaling(volume: &Array3<f32>) -> (f64, f64, f64) {
    let v = crate::sorted_finite(volume.iter());
    let max = v.last().copied().unwrap_or(0.0).max(0.0) as f64;
    let scale = if max > 0.0 { 4095.0 / max } else { 0.0 };
    let q = |p: f64| crate::quantile(&v, p).unwrap_or(0.0) as f64 * scale;
    let (lo, hi) = (q(0.005), q(0.995));
    let width = (hi - lo).max(1.0);
    (scale, lo + width / 2.0, width)
}

/// Writes `volume` `[slice, y, x]` (slices already in anatomical order) as a DICOM series into
/// directory `dir` (created; atomically replaced with `overwrite`). Returns the file paths.
pub fn write_dicom_series(
    dir: &Path,
    volume: &Array3<f32>,
    geom: &StackGeometry,
    header: &IsmrmrdHeader,
    opts: &DicomOptions,
) -> Result<Vec<PathBuf>, ExportError> {
    if dir.exists() && !opts.overwrite {
        return Err(ExportError::Exists(dir.to_path_buf()));
    }
    if let Some(r) = &opts.uid_root {
        validate_uid_root(r)?;
    }
    let root = opts.uid_root.as_deref();
    let (nz, ny, nx) = volume.dim();
    let id = identity(header, opts.anonymize);
    let study = header.studyInformation.clone().unwrap_or_default();
    let meas = header.measurementInformation.clone().unwrap_or_default();
    let sys = header
        .acquisitionSystemInformation
        .clone()
        .unwrap_or_default();
    let seq = header.sequenceParameters.clone().unwrap_or_default();
    let valid_uid = |u: &Option<String>| {
        u.as_ref()
            .filter(|s| {
                !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_digit() || c == '.')
            })
            .cloned()
    };
    let study_uid = if opts.anonymize {
        None
    } else {
        valid_uid(&study.studyInstanceUID)
    }
    .unwrap_or_else(|| new_uid(root));
    let frame_uid = if opts.anonymize {
        None
    } else {
        valid_uid(&meas.frameOfReferenceUID)
    }
    .unwrap_or_else(|| new_uid(root));
    let series_uid = new_uid(root);
    let (content_date, content_time) = now();
    // Documented defaults: a header without a study date/time/ID gets the reconstruction's date
    // and time and study ID "1".
    let mut id = id;
    if id.study_date.is_empty() {
        id.study_date = content_date.clone();
    }
    if id.study_time.is_empty() {
        id.study_time = content_time.clone();
    }
    if id.study_id.is_empty() {
        id.study_id = "1".into();
    }
    if id.patient_id.is_empty() {
        id.patient_id = "UNKNOWN".into();
    }
    let (scale, wc, ww) = scaling(volume);
    // BodyPartExamined (CS, upper case, ≤ 16): from the header, else HEAD (basin's prior is
    // trained on brains; an unpaired part, so no Laterality is required).
    let body_part: String = study
        .bodyPartExamined
        .as_deref()
        .map(|b| {
            b.to_uppercase()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == ' ' || *c == '_')
                .take(16)
                .collect()
        })
        .filter(|b: &String| !b.is_empty())
        .unwrap_or_else(|| "HEAD".into());
    let lps = &geom.lps;
    let (row_dir, col_dir, normal) = (geom.direction(0), geom.direction(1), geom.direction(2));
    let iop = ds_multi(&[
        row_dir[0], row_dir[1], row_dir[2], col_dir[0], col_dir[1], col_dir[2],
    ]);
    let slice_thickness = header
        .first_encoding()
        .map(|e| {
            e.reconSpace.fieldOfView_mm.z
                / if opts.three_d {
                    e.reconSpace.matrixSize.z.max(1) as f64
                } else {
                    1.0
                }
        })
        .unwrap_or(geom.spacing[2]);

    let tmp = dir.with_file_name(format!(
        ".tmp-{}-{}",
        std::process::id(),
        dir.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    crate::track(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| ExportError::Write {
        file: dir.to_path_buf(),
        message: format!("cannot create the series directory: {e}"),
    })?;
    let result = (|| -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for k in 0..nz {
            let mut b = Builder(InMemDicomObject::new_empty());
            b.s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
            b.s(tags::IMAGE_TYPE, VR::CS, "DERIVED\\PRIMARY\\OTHER");
            b.s(tags::SOP_CLASS_UID, VR::UI, MR_IMAGE_STORAGE);
            let sop_uid = new_uid(root);
            b.s(tags::SOP_INSTANCE_UID, VR::UI, &sop_uid);
            b.s(tags::STUDY_DATE, VR::DA, &id.study_date);
            b.s(
                tags::CONTENT_DATE,
                VR::DA,
                if opts.anonymize {
                    "19000101"
                } else {
                    &content_date
                },
            );
            b.s(tags::STUDY_TIME, VR::TM, &id.study_time);
            b.s(
                tags::CONTENT_TIME,
                VR::TM,
                if opts.anonymize {
                    "000000"
                } else {
                    &content_time
                },
            );
            b.s(tags::ACCESSION_NUMBER, VR::SH, &id.accession);
            b.s(tags::MODALITY, VR::CS, "MR");
            b.s(
                tags::MANUFACTURER,
                VR::LO,
                sys.systemVendor.as_deref().unwrap_or(""),
            );
            if let Some(v) = &id.institution {
                b.s(tags::INSTITUTION_NAME, VR::LO, v);
            }
            b.s(tags::REFERRING_PHYSICIAN_NAME, VR::PN, &id.referring);
            if let Some(v) = &id.station {
                b.s(tags::STATION_NAME, VR::SH, v);
            }
            b.s(tags::BODY_PART_EXAMINED, VR::CS, &body_part);
            if let Some(d) = study
                .studyDescription
                .as_deref()
                .filter(|_| !opts.anonymize)
            {
                b.s(tags::STUDY_DESCRIPTION, VR::LO, d);
            }
            b.s(
                tags::SERIES_DESCRIPTION,
                VR::LO,
                &opts.series_description.chars().take(64).collect::<String>(),
            );
            if let Some(v) = &sys.systemModel {
                b.s(tags::MANUFACTURER_MODEL_NAME, VR::LO, v);
            }
            b.s(
                tags::DERIVATION_DESCRIPTION,
                VR::ST,
                &format!("reconstructed by basin {}", env!("CARGO_PKG_VERSION")),
            );
            b.s(tags::PATIENT_NAME, VR::PN, &id.patient_name);
            b.s(tags::PATIENT_ID, VR::LO, &id.patient_id);
            b.s(tags::PATIENT_BIRTH_DATE, VR::DA, &id.birth_date);
            b.s(tags::PATIENT_SEX, VR::CS, &id.sex);
            if let Some(w) = id.weight {
                b.s(tags::PATIENT_WEIGHT, VR::DS, &ds(w));
            }
            if let Some(s) = id.size_m {
                b.s(tags::PATIENT_SIZE, VR::DS, &ds(s));
            }
            if opts.anonymize {
                b.s(tags::PATIENT_IDENTITY_REMOVED, VR::CS, "YES");
                b.s(
                    tags::DEIDENTIFICATION_METHOD,
                    VR::LO,
                    "DICOM PS3.15 Basic Application Confidentiality Profile",
                );
            }
            b.s(tags::SCANNING_SEQUENCE, VR::CS, "RM");
            b.s(tags::SEQUENCE_VARIANT, VR::CS, "NONE");
            b.s(tags::SCAN_OPTIONS, VR::CS, "");
            b.s(
                tags::MR_ACQUISITION_TYPE,
                VR::CS,
                if opts.three_d { "3D" } else { "2D" },
            );
            if let Some(n) = &meas.sequenceName {
                b.s(tags::SEQUENCE_NAME, VR::SH, n);
            }
            b.s(tags::SLICE_THICKNESS, VR::DS, &ds(slice_thickness));
            b.s(
                tags::REPETITION_TIME,
                VR::DS,
                &seq.TR.first().map(|&v| ds(v)).unwrap_or_default(),
            );
            b.s(
                tags::ECHO_TIME,
                VR::DS,
                &seq.TE.first().map(|&v| ds(v)).unwrap_or_default(),
            );
            if let Some(f) = header.experimentalConditions.as_ref() {
                b.s(
                    tags::IMAGING_FREQUENCY,
                    VR::DS,
                    &ds(f.H1resonanceFrequency_Hz as f64 / 1e6),
                );
            }
            b.s(tags::IMAGED_NUCLEUS, VR::SH, "1H");
            if let Some(t) = sys.systemFieldStrength_T {
                b.s(tags::MAGNETIC_FIELD_STRENGTH, VR::DS, &ds(t));
            }
            b.s(tags::SPACING_BETWEEN_SLICES, VR::DS, &ds(geom.spacing[2]));
            b.s(
                tags::ECHO_TRAIN_LENGTH,
                VR::IS,
                &header
                    .first_encoding()
                    .and_then(|e| e.echoTrainLength)
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            );
            if let Some(v) = &id.device_serial {
                b.s(tags::DEVICE_SERIAL_NUMBER, VR::LO, v);
            }
            b.s(
                tags::SOFTWARE_VERSIONS,
                VR::LO,
                &format!("basin {}", env!("CARGO_PKG_VERSION")),
            );
            if let Some(&fa) = seq.flipAngle_deg.first() {
                b.s(tags::FLIP_ANGLE, VR::DS, &ds(fa));
            }
            b.s(
                tags::PATIENT_POSITION,
                VR::CS,
                meas.patientPosition.as_deref().unwrap_or("HFS"),
            );
            b.s(tags::STUDY_INSTANCE_UID, VR::UI, &study_uid);
            b.s(tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
            b.s(tags::STUDY_ID, VR::SH, &id.study_id);
            b.s(
                tags::SERIES_NUMBER,
                VR::IS,
                &meas.initialSeriesNumber.unwrap_or(1).to_string(),
            );
            b.s(tags::INSTANCE_NUMBER, VR::IS, &(k + 1).to_string());
            let pos: Vec<f64> = (0..3).map(|a| lps[a][2] * k as f64 + lps[a][3]).collect();
            b.s(tags::IMAGE_POSITION_PATIENT, VR::DS, &ds_multi(&pos));
            b.s(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, &iop);
            b.s(tags::FRAME_OF_REFERENCE_UID, VR::UI, &frame_uid);
            b.s(tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
            b.s(
                tags::SLICE_LOCATION,
                VR::DS,
                &ds(pos[0] * normal[0] + pos[1] * normal[1] + pos[2] * normal[2]),
            );
            b.put(
                tags::SAMPLES_PER_PIXEL,
                VR::US,
                PrimitiveValue::U16([1u16].as_slice().into()),
            );
            b.s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
            b.put(
                tags::ROWS,
                VR::US,
                PrimitiveValue::U16([ny as u16].as_slice().into()),
            );
            b.put(
                tags::COLUMNS,
                VR::US,
                PrimitiveValue::U16([nx as u16].as_slice().into()),
            );
            b.s(
                tags::PIXEL_SPACING,
                VR::DS,
                &ds_multi(&[geom.spacing[1], geom.spacing[0]]),
            );
            b.put(
                tags::BITS_ALLOCATED,
                VR::US,
                PrimitiveValue::U16([16u16].as_slice().into()),
            );
            b.put(
                tags::BITS_STORED,
                VR::US,
                PrimitiveValue::U16([12u16].as_slice().into()),
            );
            b.put(
                tags::HIGH_BIT,
                VR::US,
                PrimitiveValue::U16([11u16].as_slice().into()),
            );
            b.put(
                tags::PIXEL_REPRESENTATION,
                VR::US,
                PrimitiveValue::U16([0u16].as_slice().into()),
            );
            b.s(tags::WINDOW_CENTER, VR::DS, &ds(wc.round()));
            b.s(tags::WINDOW_WIDTH, VR::DS, &ds(ww.round().max(1.0)));
            let px: Vec<u16> = volume
                .slice(ndarray::s![k, .., ..])
                .iter()
                .map(|&v| (v.max(0.0) as f64 * scale).round().clamp(0.0, 4095.0) as u16)
                .collect();
            b.put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(px.into()));
            let file =
                b.0.with_meta(
                    FileMetaTableBuilder::new()
                        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                        .implementation_version_name("BASIN_0_1"),
                )
                .map_err(|e| e.to_string())?;
            let name = format!("IM{:05}.dcm", k + 1);
            file.write_to_file(tmp.join(&name))
                .map_err(|e| e.to_string())?;
            names.push(name);
        }
        Ok(names)
    })();
    let names = match result {
        Ok(n) => n,
        Err(message) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(ExportError::Write {
                file: dir.to_path_buf(),
                message,
            });
        }
    };
    // Swap the finished series into place; an old one is removed only after the swap.
    let old = dir.with_file_name(format!(
        ".old-{}-{}",
        std::process::id(),
        dir.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    ));
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| ExportError::Write {
            file: dir.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::rename(&old, dir);
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(ExportError::Write {
            file: dir.to_path_buf(),
            message: e.to_string(),
        });
    }
    crate::untrack(&tmp);
    let _ = std::fs::remove_dir_all(&old);
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}
