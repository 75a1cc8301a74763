//! Bad input gets a clear error naming the file and the field, exit code 3 (2 for an invalid
//! protocol: usage), no panic, and no allocation beyond what the file can hold.

use basin_tests::{basin, python, small_phantom as phantom};
use std::path::Path;

fn assert_clean_error(code: i32, args: &[&str], file: &Path, needles: &[&str]) {
    let out = basin(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "basin {args:?} should fail with {code}; stderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "panic for {args:?}:\n{err}");
    assert!(
        err.contains(&file.display().to_string()),
        "error does not name {}:\n{err}",
        file.display()
    );
    for n in needles {
        assert!(err.contains(n), "error for {args:?} lacks {n:?}:\n{err}");
    }
}

#[test]
fn missing_and_truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.h5");
    assert_clean_error(
        3,
        &["info", missing.to_str().unwrap()],
        &missing,
        &["no such file"],
    );
    let f = phantom(dir.path(), "p.h5");
    let bytes = std::fs::read(&f).unwrap();
    let t = dir.path().join("truncated.h5");
    std::fs::write(&t, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("t.nii");
    let out_s = out.to_str().unwrap();
    assert_clean_error(3, &["recon", t.to_str().unwrap(), "-o", out_s], &t, &[]);
    assert!(!out.exists(), "no output after a failed read");
    let text = dir.path().join("text.h5");
    std::fs::write(&text, "not hdf5 at all").unwrap();
    assert_clean_error(
        3,
        &["info", text.to_str().unwrap()],
        &text,
        &["not a readable HDF5 file"],
    );
}

#[test]
fn wrong_types_and_missing_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    python(
        r#"
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(d + '/float_kspace.h5', 'w') as f:
    f['kspace'] = np.zeros((2, 4, 16, 16), np.float32)
with h5py.File(d + '/axes.h5', 'w') as f:
    f['kspace'] = np.zeros((16, 16), np.complex64)
with h5py.File(d + '/nodata.h5', 'w') as f:
    f['dataset/xml'] = 'x'
    f['dataset/other'] = 1
with h5py.File(d + '/nodata2.h5', 'w') as f:
    g = f.create_group('dataset'); g['xml'] = 'x'; g['data'] = np.zeros(3, np.float32)
with h5py.File(d + '/empty.h5', 'w') as f:
    f['something'] = 1
"#,
        &[d],
    );
    let p = |n: &str| dir.path().join(n);
    assert_clean_error(
        3,
        &["info", p("float_kspace.h5").to_str().unwrap()],
        &p("float_kspace.h5"),
        &["/kspace", "expected complex"],
    );
    assert_clean_error(
        3,
        &["info", p("axes.h5").to_str().unwrap()],
        &p("axes.h5"),
        &["/kspace", "axes"],
    );
    assert_clean_error(
        3,
        &[
            "info",
            p("nodata.h5").to_str().unwrap(),
            "--dataset",
            "dataset",
        ],
        &p("nodata.h5"),
        &["missing /dataset/data"],
    );
    assert_clean_error(
        3,
        &["info", p("nodata2.h5").to_str().unwrap()],
        &p("nodata2.h5"),
        &["/dataset/"],
    );
    assert_clean_error(
        3,
        &["info", p("empty.h5").to_str().unwrap()],
        &p("empty.h5"),
        &["neither an ISMRMRD group"],
    );
}

#[test]
fn inconsistent_headers_nan_and_huge_matrices() {
    let dir = tempfile::tempdir().unwrap();
    let src = phantom(dir.path(), "p.h5");
    let d = dir.path().to_str().unwrap();
    python(
        r#"
import sys, shutil, h5py, numpy as np
d, src = sys.argv[1], sys.argv[2]
# One acquisition claims more samples than it holds.
shutil.copy(src, d + '/samples.h5')
with h5py.File(d + '/samples.h5', 'r+') as f:
    data = f['dataset/data'][()]
    data[3]['head']['number_of_samples'] = 60000
    f['dataset/data'][3] = data[3]
# NaN in one sample.
shutil.copy(src, d + '/nan.h5')
with h5py.File(d + '/nan.h5', 'r+') as f:
    rec = f['dataset/data'][5]
    x = rec['data'].copy(); x[7] = np.nan
    rec['data'] = x
    f['dataset/data'][5] = rec
# A header that declares a 10^9-sample matrix.
shutil.copy(src, d + '/huge.h5')
with h5py.File(d + '/huge.h5', 'r+') as f:
    xml = f['dataset/xml'][0]
    xml = xml.decode() if isinstance(xml, bytes) else xml
    xml = xml.replace('<x>32</x>', '<x>32768</x>', 2).replace('<y>32</y>', '<y>32768</y>', 2)
    del f['dataset/xml']
    f.create_dataset('dataset/xml', data=[xml], dtype=h5py.string_dtype())
# Malformed XML.
shutil.copy(src, d + '/badxml.h5')
with h5py.File(d + '/badxml.h5', 'r+') as f:
    del f['dataset/xml']
    f.create_dataset('dataset/xml', data=['<ismrmrdHeader><encoding>'], dtype=h5py.string_dtype())
"#,
        &[d, src.to_str().unwrap()],
    );
    let p = |n: &str| dir.path().join(n);
    let out = p("o.nii");
    let o = out.to_str().unwrap();
    assert_clean_error(
        3,
        &["recon", p("samples.h5").to_str().unwrap(), "-o", o],
        &p("samples.h5"),
        &["acquisition 3", "60000"],
    );
    assert_clean_error(
        3,
        &["recon", p("nan.h5").to_str().unwrap(), "-o", o],
        &p("nan.h5"),
        &["acquisition 5", "NaN"],
    );
    assert_clean_error(
        3,
        &["recon", p("huge.h5").to_str().unwrap(), "-o", o],
        &p("huge.h5"),
        &["matrixSize"],
    );
    assert_clean_error(
        3,
        &["info", p("badxml.h5").to_str().unwrap()],
        &p("badxml.h5"),
        &["/dataset/xml", "invalid ISMRMRD header"],
    );
    assert!(!out.exists());
}

#[test]
fn unknown_protocol_key_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = phantom(dir.path(), "p.h5");
    let proto = dir.path().join("typo.toml");
    std::fs::write(
        &proto,
        "name = \"x\"\n[solver]\nkind = \"cg-sense\"\niteratons = 5\n",
    )
    .unwrap();
    let out = dir.path().join("o.nii");
    assert_clean_error(
        2,
        &[
            "recon",
            src.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-p",
            proto.to_str().unwrap(),
        ],
        &proto,
        &["iteratons"],
    );
    let o = basin(&[
        "recon",
        src.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-p",
        "no-such-protocol",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("built-in: sense, zero-filled"));
    assert!(!out.exists());
}
