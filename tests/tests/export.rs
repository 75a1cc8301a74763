//! Clinical outputs checked by independent readers: dciodvfy (no error, no warning), dcmdump,
//! pydicom, nibabel and h5py. Geometry for axial, sagittal, coronal, oblique and double-oblique
//! slices; multi-slice ordering; 3D partitions; anonymisation; no partial outputs.

use basin_tests::{basin, basin_ok, python, tool};
use std::path::{Path, PathBuf};

/// Rewrites a single-slice phantom file: geometry (read/phase directions, position), optional
/// extra slices along the normal (in the given order), optional 3D partitions, and a full
/// subject/study header. Directions are rotated from axial by `rx` then `ry` degrees.
const EDIT: &str = r#"
import sys, json, shutil, h5py, numpy as np
src, dst, cfg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def rot(ax, deg):
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    if ax == 'x': return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
R = np.array(cfg.get('base', [[1, 0, 0], [0, 1, 0]]), float).T  # columns: read, phase
R = rot('y', cfg.get('ry', 0)) @ rot('x', cfg.get('rx', 0)) @ R
r, p = R[:, 0], R[:, 1]
n = np.cross(r, p)
pos = np.array(cfg.get('pos', [0, 0, 0]), float)
with h5py.File(src, 'r') as f:
    xml = f['dataset/xml'][0]
    xml = xml.decode() if isinstance(xml, bytes) else xml
    recs = f['dataset/data'][()]
    dt = f['dataset/data'].dtype
offsets = cfg.get('slices', [0.0])
parts = cfg.get('partitions', 1)
out = []
for rec in recs:
    if int(rec['head']['flags']) & (1 << 18):
        out.append(rec); continue
    for si, off in enumerate(offsets):
        for e2 in range(parts):
            q = rec.copy()
            h = q['head']
            h['read_dir'] = r; h['phase_dir'] = p; h['slice_dir'] = n
            h['position'] = pos + off * n
            h['idx']['slice'] = si if parts == 1 else 0
            h['idx']['kspace_encode_step_2'] = e2
            q['head'] = h
            out.append(q)
if parts > 1:
    xml = xml.replace('<z>1</z>', f'<z>{parts}</z>').replace('<z>5.0</z>', f'<z>{5.0 * parts}</z>')
    xml = xml.replace('<kspace_encoding_step_2><minimum>0</minimum><maximum>0</maximum><center>0</center>', f'<kspace_encoding_step_2><minimum>0</minimum><maximum>{parts - 1}</maximum><center>{parts // 2}</center>')
if cfg.get('full_header'):
    import re
    for tag in ('subjectInformation', 'studyInformation', 'measurementInformation'):
        xml = re.sub(f'<{tag}>.*?</{tag}>', '', xml, flags=re.S)
    info = ('<subjectInformation><patientName>Doe^Jane</patientName><patientWeight_kg>61.5</patientWeight_kg>'
            '<patientHeight_m>1.68</patientHeight_m><patientID>PID-4711</patientID><patientBirthdate>1970-03-14</patientBirthdate>'
            '<patientGender>F</patientGender></subjectInformation>'
            '<studyInformation><studyDate>2026-11-02</studyDate><studyTime>09:41:07</studyTime><studyID>ST42</studyID>'
            '<accessionNumber>987654</accessionNumber><referringPhysicianName>House^Gregory</referringPhysicianName>'
            '<studyDescription>Brain MRI</studyDescription><studyInstanceUID>1.2.826.0.1.3680043.8.498.1</studyInstanceUID>'
            '<bodyPartExamined>Brain</bodyPartExamined></studyInformation>'
            '<measurementInformation><measurementID>M1</measurementID><patientPosition>HFS</patientPosition>'
            '<initialSeriesNumber>7</initialSeriesNumber><protocolName>t1_se</protocolName><sequenceName>se2d</sequenceName>'
            '<frameOfReferenceUID>1.2.826.0.1.3680043.8.498.2</frameOfReferenceUID></measurementInformation>')
    xml = xml.replace('<acquisitionSystemInformation>', info + '<acquisitionSystemInformation>', 1)
    xml = xml.replace('<systemVendor>basin</systemVendor>', '<systemVendor>basin</systemVendor>')
    xml = xml.replace('</acquisitionSystemInformation>', '<institutionName>General Hospital</institutionName><stationName>MR7</stationName><deviceID>SN123</deviceID></acquisitionSystemInformation>', 1)
    xml = xml.replace('<TE>10</TE>', '<TE>10</TE><TI>900</TI>')
with h5py.File(dst, 'w') as f:
    f.create_dataset('dataset/xml', data=[xml], dtype=h5py.string_dtype())
    f.create_dataset('dataset/data', data=np.array(out, dtype=dt))
"#;

fn phantom(dir: &Path) -> PathBuf {
    let f = dir.join("src.h5");
    if !f.exists() {
        basin_ok(&[
            "phantom",
            "--kind",
            "brain",
            "--matrix",
            "64",
            "--coils",
            "4",
            "--noise",
            "0.001",
            "-o",
            f.to_str().unwrap(),
        ]);
    }
    f
}

fn edited(dir: &Path, name: &str, cfg: &str) -> PathBuf {
    let out = dir.join(format!("{name}.h5"));
    python(
        EDIT,
        &[phantom(dir).to_str().unwrap(), out.to_str().unwrap(), cfg],
    );
    out
}

fn dicom_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn assert_dciodvfy_clean(files: &[PathBuf]) {
    assert!(!files.is_empty());
    for f in files {
        let out = std::process::Command::new("dciodvfy")
            .arg(f)
            .output()
            .expect("dciodvfy (dicom3tools) installed by the test script");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let bad: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("Error") || l.starts_with("Warning"))
            .collect();
        assert!(
            bad.is_empty(),
            "dciodvfy on {}:\n{}",
            f.display(),
            bad.join("\n")
        );
        tool("dcmdump", &["-q", f.to_str().unwrap()]);
    }
}

/// Checks nibabel's sform and qform against the affine computed here from the ISMRMRD vectors,
/// and three landmark voxels through the NIfTI affine and through each DICOM file's
/// ImagePositionPatient / ImageOrientationPatient / PixelSpacing. Prints the largest errors.
const GEOMETRY: &str = r#"
import sys, glob, h5py, nibabel as nib, numpy as np, pydicom, xml.etree.ElementTree as ET
h5, nii, dcmdir, three_d = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == '1'
with h5py.File(h5, 'r') as f:
    xml = f['dataset/xml'][0]; xml = xml.decode() if isinstance(xml, bytes) else xml
    heads = [r['head'] for r in f['dataset/data'][()] if not int(r['head']['flags']) & (1 << 18)]
ns = {'m': 'http://www.ismrm.org/ISMRMRD'}
root = ET.fromstring(xml)
rs = root.find('m:encoding/m:reconSpace', ns)
N = [int(rs.find('m:matrixSize/m:' + a, ns).text) for a in 'xyz']
F = [float(rs.find('m:fieldOfView_mm/m:' + a, ns).text) for a in 'xyz']
r, p, n = (np.array(heads[0][k], float) for k in ('read_dir', 'phase_dir', 'slice_dir'))
dx, dy = F[0] / N[0], F[1] / N[1]
centres = sorted({tuple(np.round(h['position'], 4)) for h in heads}, key=lambda c: np.dot(c, n))
if three_d:
    dz = F[2] / N[2]; first = np.array(centres[0]) - (N[2] // 2) * dz * n
else:
    dz = np.dot(np.array(centres[-1]) - np.array(centres[0]), n) / (len(centres) - 1) if len(centres) > 1 else F[2]
    first = np.array(centres[0])
A = np.eye(4)
A[:3, 0], A[:3, 1], A[:3, 2] = r * dx, p * dy, n * dz
A[:3, 3] = first - (N[0] // 2) * dx * r - (N[1] // 2) * dy * p
ras = np.diag([-1, -1, 1, 1]) @ A
img = nib.load(nii)
e_s = np.abs(img.get_sform() - ras).max(); e_q = np.abs(img.header.get_qform() - ras).max()
assert int(img.header['sform_code']) == 1 and int(img.header['qform_code']) == 1
files = sorted(glob.glob(dcmdir + '/*.dcm'))
ds = [pydicom.dcmread(f) for f in files]
nz = img.shape[2]
assert len(ds) == nz, (len(ds), nz)
e_l = 0.0
for (i, j, k) in [(0, 0, 0), (10, N[1] - 3, nz - 1), (N[0] - 1, 17, nz // 2)]:
    x_nii = (img.affine @ [i, j, k, 1])[:3]
    d = ds[k]
    iop = np.array(d.ImageOrientationPatient, float); ps = [float(v) for v in d.PixelSpacing]
    lps = np.array(d.ImagePositionPatient, float) + iop[:3] * i * ps[1] + iop[3:] * j * ps[0]
    e_l = max(e_l, np.abs(lps * [-1, -1, 1] - x_nii).max())
locs = [float(d.SliceLocation) for d in ds]
gaps = np.diff(locs)
sbs = {float(d.SpacingBetweenSlices) for d in ds}
print(e_s, e_q, e_l, int(np.all(gaps > 0)), np.ptp(gaps) if len(gaps) else 0.0, len(sbs))
"#;

fn check_geometry(dir: &Path, name: &str, h5: &Path, three_d: bool) {
    let nii = dir.join(format!("{name}.nii.gz"));
    let dcm = dir.join(format!("{name}_dcm"));
    basin_ok(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        nii.to_str().unwrap(),
        "--also",
        dcm.to_str().unwrap(),
        "-q",
    ]);
    assert_dciodvfy_clean(&dicom_files(&dcm));
    let out = python(
        GEOMETRY,
        &[
            h5.to_str().unwrap(),
            nii.to_str().unwrap(),
            dcm.to_str().unwrap(),
            if three_d { "1" } else { "0" },
        ],
    );
    let v: Vec<f64> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
    eprintln!(
        "{name}: sform {:.1e} qform {:.1e} landmarks {:.1e} mm",
        v[0], v[1], v[2]
    );
    assert!(
        v[0] < 1e-4 && v[1] < 1e-4,
        "{name}: NIfTI affine off by {} (sform) / {} (qform)",
        v[0],
        v[1]
    );
    assert!(v[2] < 1e-3, "{name}: landmarks disagree by {} mm", v[2]);
    assert_eq!(v[3], 1.0, "{name}: slices not in anatomical order");
    assert!(v[4] < 1e-3, "{name}: uneven slice spacing");
    assert_eq!(v[5], 1.0, "{name}: SpacingBetweenSlices not constant");
}

#[test]
fn geometry_of_all_orientations_agrees_between_nifti_and_dicom() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        ("axial", r#"{"pos": [10, -20, 30]}"#),
        (
            "sagittal",
            r#"{"base": [[0, 1, 0], [0, 0, -1]], "pos": [-12, 4, 8]}"#,
        ),
        (
            "coronal",
            r#"{"base": [[1, 0, 0], [0, 0, -1]], "pos": [3, 25, -7]}"#,
        ),
        ("oblique", r#"{"rx": 20, "pos": [5, 5, 5]}"#),
        (
            "double_oblique",
            r#"{"rx": 20, "ry": 15, "pos": [-8, 12, 40]}"#,
        ),
    ];
    for (name, cfg) in cases {
        let h5 = edited(d, name, cfg);
        check_geometry(d, name, &h5, false);
    }
}

#[test]
fn multi_slice_is_ordered_and_3d_gives_one_slice_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Slices acquired out of order along an oblique normal.
    let ms = edited(
        d,
        "multislice",
        r#"{"rx": 10, "pos": [0, 0, 20], "slices": [5.0, -5.0, 0.0, 10.0]}"#,
    );
    check_geometry(d, "multislice", &ms, false);
    let v3 = edited(d, "vol3d", r#"{"pos": [0, 0, 0], "partitions": 4}"#);
    let info = basin_ok(&["info", v3.to_str().unwrap(), "--json"]);
    assert!(info.contains("\"three_d\": true"));
    check_geometry(d, "vol3d", &v3, true);
}

const READ_IDS: &str = r#"
import sys, glob, pydicom
for f in sorted(glob.glob(sys.argv[1] + '/*.dcm')):
    d = pydicom.dcmread(f)
    vals = [str(d.get(t, '')) for t in ('PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex', 'PatientWeight', 'PatientSize', 'InstitutionName', 'StationName', 'DeviceSerialNumber', 'ReferringPhysicianName', 'AccessionNumber', 'StudyID', 'StudyDate', 'StudyTime', 'StudyInstanceUID', 'FrameOfReferenceUID', 'SeriesNumber', 'PatientIdentityRemoved')]
    print('|'.join(vals))
"#;

#[test]
fn full_header_series_is_valid_and_anonymize_removes_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h5 = edited(
        d,
        "full",
        r#"{"pos": [0, 0, 0], "slices": [0.0, 5.0], "full_header": true}"#,
    );
    // Identified series: header values carried over.
    let dcm = d.join("full_dcm");
    basin_ok(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        dcm.to_str().unwrap(),
        "-q",
    ]);
    assert_dciodvfy_clean(&dicom_files(&dcm));
    let ids = python(READ_IDS, &[dcm.to_str().unwrap()]);
    let first: Vec<&str> = ids.lines().next().unwrap().split('|').collect();
    assert_eq!(&first[..4], &["Doe^Jane", "PID-4711", "19700314", "F"]);
    assert_eq!(first[10], "987654");
    assert_eq!(first[12], "20261102");
    assert_eq!(first[14], "1.2.826.0.1.3680043.8.498.1");
    assert_eq!(first[16], "7");
    // Anonymized: DICOM, NIfTI and ISMRMRD outputs.
    let adcm = d.join("anon_dcm");
    let anii = d.join("anon.nii");
    let ah5 = d.join("anon.h5");
    basin_ok(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        adcm.to_str().unwrap(),
        "--also",
        anii.to_str().unwrap(),
        "--also",
        ah5.to_str().unwrap(),
        "--anonymize",
        "--uid-root",
        "1.2.3.4",
        "-q",
    ]);
    let files = dicom_files(&adcm);
    assert_dciodvfy_clean(&files);
    let secrets = [
        "Doe^Jane",
        "Doe",
        "PID-4711",
        "19700314",
        "1970",
        "61.5",
        "1.68",
        "General Hospital",
        "MR7",
        "SN123",
        "House",
        "987654",
        "ST42",
        "20261102",
        "094107",
        "1.2.826.0.1.3680043.8.498",
    ];
    for line in python(READ_IDS, &[adcm.to_str().unwrap()]).lines() {
        // New UIDs are random digit strings under the given root: a secret such as "1970" can
        // occur inside one by chance, so they are checked only against the old UID root.
        for field in line.split('|') {
            let new_uid = field.starts_with("1.2.3.4.");
            for s in secrets {
                if !new_uid || s.starts_with("1.2.826") {
                    assert!(!field.contains(s), "{s} survived anonymisation: {line}");
                }
            }
        }
        assert!(line.ends_with("|YES"), "PatientIdentityRemoved: {line}");
        assert!(
            line.contains("1.2.3.4."),
            "UIDs under the given root: {line}"
        );
    }
    for f in files.iter().chain([&anii, &ah5]) {
        let bytes = std::fs::read(f).unwrap();
        for s in [
            "Doe^Jane",
            "PID-4711",
            "General Hospital",
            "1.2.826.0.1.3680043.8.498",
        ] {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s} found in {}",
                f.display()
            );
        }
    }
}

#[test]
fn ismrmrd_images_and_preview() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h5 = edited(d, "ms", r#"{"pos": [0, 0, 0], "slices": [0.0, 5.0, -5.0]}"#);
    let out = d.join("img.h5");
    let png = d.join("preview.png");
    basin_ok(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--preview",
        png.to_str().unwrap(),
        "-q",
    ]);
    let r = python(
        r#"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
h = f['dataset/image_0/header'][()]; d = f['dataset/image_0/data']
print(d.shape, list(h['slice']), [round(float(z), 3) for z in h['position'][:, 2]], int(h['image_type'][0]), int(h['data_type'][0]))
"#,
        &[out.to_str().unwrap()],
    );
    assert_eq!(r.trim(), "(3, 1, 1, 64, 64) [0, 1, 2] [-5.0, 0.0, 5.0] 1 5");
    // Complex images on request, with the same magnitude.
    let cplx = d.join("cplx.h5");
    basin_ok(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        cplx.to_str().unwrap(),
        "--complex",
        "-q",
    ]);
    let r = python(
        r#"
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1], 'r')['dataset/image_0']
b = h5py.File(sys.argv[2], 'r')['dataset/image_0']
c = b['data'][()]; c = c['real'] + 1j * c['imag']
print(int(b['header']['image_type'][0]), int(b['header']['data_type'][0]), float(np.abs(np.abs(c) - a['data'][()]).max() / a['data'][()].max()))
"#,
        &[out.to_str().unwrap(), cplx.to_str().unwrap()],
    );
    let v: Vec<&str> = r.split_whitespace().collect();
    assert_eq!(&v[..2], &["5", "7"]);
    assert!(
        v[2].parse::<f64>().unwrap() < 1e-6,
        "complex magnitude differs: {}",
        v[2]
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // 3 slices of 64² → a 2×2 montage of 128×128 (IHDR width and height, big-endian).
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 128);
    assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 128);
}

#[test]
fn failed_writes_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h5 = phantom(d);
    // The parent of the output does not exist: every format fails cleanly.
    for name in ["missing/out.nii.gz", "missing/out.h5", "missing/series"] {
        let p = d.join(name);
        let out = basin(&[
            "recon",
            h5.to_str().unwrap(),
            "-o",
            p.to_str().unwrap(),
            "-q",
        ]);
        assert_eq!(out.status.code(), Some(4), "{name}");
        assert!(!p.exists());
    }
    // An existing series is kept when the new one is refused, and replaced whole with --force.
    let s = d.join("series");
    basin_ok(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        s.to_str().unwrap(),
        "-q",
    ]);
    let before = dicom_files(&s);
    let out = basin(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        s.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(dicom_files(&s), before);
    basin_ok(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        s.to_str().unwrap(),
        "-q",
        "--force",
    ]);
    assert_eq!(dicom_files(&s).len(), before.len());
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".tmp-") || n.starts_with(".old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// DICOM written by another producer (pydicom) in each native transfer syntax — implicit VR
/// little endian, explicit little and big endian — with nested sequences (pydicom writes them
/// and their items with undefined length), reads back to pydicom's pixels: the reader's pre-scan of element
/// lengths (issue 23: corrupt lengths refused before dicom-object allocates them) follows every
/// layout without refusing a valid file.
#[test]
fn dicom_of_another_producer_reads_in_every_native_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let out = python(
        r#"
import sys, numpy as np, pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, generate_uid
px = (np.arange(7 * 9, dtype=np.uint16).reshape(7, 9) * 37 + 5)
for name, ts in [("implicit", ImplicitVRLittleEndian), ("explicit", ExplicitVRLittleEndian), ("big", ExplicitVRBigEndian)]:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ts
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = ts != ExplicitVRBigEndian
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    item = Dataset(); item.CodeValue = "T1"; item.CodingSchemeDesignator = "99TEST"
    inner = Dataset(); inner.CodeMeaning = "nested"; item.PurposeOfReferenceCodeSequence = Sequence([inner])
    ds.ProcedureCodeSequence = Sequence([item])
    ds.Rows, ds.Columns = px.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-3"
    ds.PixelData = px.astype(">u2" if ts == ExplicitVRBigEndian else "<u2").tobytes()
    ds.save_as(f"{sys.argv[1]}/{name}.dcm", write_like_original=False)
    back = pydicom.dcmread(f"{sys.argv[1]}/{name}.dcm")
    print(name, float(np.abs(back.pixel_array * 0.5 - 3 - (px * 0.5 - 3)).max()))
"#,
        &[dir.path().to_str().unwrap()],
    );
    assert_eq!(out.lines().count(), 3, "{out}");
    for name in ["implicit", "explicit", "big"] {
        let f = dir.path().join(format!("{name}.dcm"));
        let v =
            basin_export::dicom_in::read_dicom_series(&f).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.dim(), (1, 7, 9), "{name}");
        for ((_, y, x), got) in v.indexed_iter() {
            let want = ((y * 9 + x) * 37 + 5) as f32 * 0.5 - 3.0;
            assert_eq!(*got, want, "{name} at ({y}, {x})");
        }
    }
}
