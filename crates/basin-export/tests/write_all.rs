//! `write_all`: several outputs (files and directories) appear together or not at all.

use basin_export::{write_all, ExportError, Output};
use std::path::Path;

fn file(p: &Path, text: &'static str) -> Output<'static> {
    (
        p.to_path_buf(),
        Box::new(move |t: &Path| std::fs::write(t, text).map_err(|e| e.to_string())),
    )
}

fn dir(p: &Path, text: &'static str) -> Output<'static> {
    (
        p.to_path_buf(),
        Box::new(move |t: &Path| {
            std::fs::create_dir(t).map_err(|e| e.to_string())?;
            std::fs::write(t.join("1.dcm"), text).map_err(|e| e.to_string())
        }),
    )
}

fn entries(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_failing_output_leaves_nothing_behind() {
    let d = tempfile::tempdir().unwrap();
    let failing: Output<'static> = (
        d.path().join("c.nii"),
        Box::new(|t: &Path| {
            std::fs::write(t, "partial").unwrap();
            Err("disk full".into())
        }),
    );
    let e = write_all(
        vec![
            file(&d.path().join("a.nii"), "a"),
            dir(&d.path().join("dcm"), "b"),
            failing,
        ],
        false,
    )
    .unwrap_err();
    assert!(matches!(e, ExportError::Write { .. }), "{e}");
    assert!(entries(d.path()).is_empty(), "{:?}", entries(d.path()));
}

#[test]
fn outputs_replace_files_and_directories_only_with_overwrite() {
    let d = tempfile::tempdir().unwrap();
    let (a, dcm) = (d.path().join("a.nii"), d.path().join("dcm"));
    write_all(vec![file(&a, "one"), dir(&dcm, "one")], false).unwrap();
    let e = write_all(vec![file(&a, "two")], false).unwrap_err();
    assert!(matches!(e, ExportError::Exists(_)));
    std::fs::write(dcm.join("stale.dcm"), "x").unwrap();
    write_all(vec![file(&a, "two"), dir(&dcm, "two")], true).unwrap();
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "two");
    // The directory is replaced as a whole: no stale file of the old series survives.
    assert_eq!(entries(&dcm), vec!["1.dcm"]);
    assert_eq!(std::fs::read_to_string(dcm.join("1.dcm")).unwrap(), "two");
    assert_eq!(entries(d.path()), vec!["a.nii", "dcm"]);
}

#[test]
fn outputs_are_checked_against_inputs_each_other_and_their_directories() {
    use basin_export::check_outputs;
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("scan.h5");
    std::fs::write(&input, "raw").unwrap();
    let refused = |r: Result<(), ExportError>| match r {
        Err(ExportError::Refused { message, .. }) => message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // The input itself, even with overwrite, by another spelling, and through a hard link.
    let m = refused(check_outputs(&[&input], &[&input], true));
    assert!(m.contains("would replace the input"), "{m}");
    let other = d.path().join(".").join("scan.h5");
    refused(check_outputs(&[&input], &[&other], true));
    let link = d.path().join("link.h5");
    std::fs::hard_link(&input, &link).unwrap();
    refused(check_outputs(&[&input], &[&link], true));
    // A directory holding the input (a DICOM output would replace it as a whole).
    let m = refused(check_outputs(&[&input], &[d.path()], true));
    assert!(m.contains("holding the input"), "{m}");
    // One output named twice.
    let a = d.path().join("out.nii");
    let a2 = d.path().join("sub").join("..").join("out.nii");
    std::fs::create_dir(d.path().join("sub")).unwrap();
    let m = refused(check_outputs(&[&input], &[&a, &a2], false));
    assert!(m.contains("named twice"), "{m}");
    // A missing directory.
    let m = refused(check_outputs(
        &[&input],
        &[&d.path().join("nope").join("x.nii")],
        false,
    ));
    assert!(m.contains("nope"), "{m}");
    // An existing output without overwrite; fine with it.
    std::fs::write(&a, "old").unwrap();
    assert!(matches!(
        check_outputs(&[&input], &[&a], false),
        Err(ExportError::Exists(_))
    ));
    check_outputs(&[&input], &[&a], true).unwrap();
    // No probe file is left behind.
    assert_eq!(
        entries(d.path()),
        vec!["link.h5", "out.nii", "scan.h5", "sub"]
    );
}

/// A directory that does not accept new files: /proc refuses them to every user, root too
/// (a read-only directory does not stop root, who runs CI).
#[cfg(target_os = "linux")]
#[test]
fn a_directory_that_refuses_files_is_refused_before_any_work() {
    let r = basin_export::check_outputs(&[], &[Path::new("/proc/basin-x.nii")], false);
    assert!(
        matches!(&r, Err(ExportError::Refused { message, .. }) if message.contains("cannot write in /proc")),
        "{r:?}"
    );
}
