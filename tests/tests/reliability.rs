//! Issue 23: refuse before doing damage, one exit-code contract, warnings on stderr, a work
//! bound, the resolved protocol in --json. Each case failed (or did damage) before the fix.

use basin_tests::{basin, basin_bin, basin_ok, dir_names, python, small_phantom as phantom};
use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let o = basin(args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn an_output_never_replaces_the_input_or_another_output() {
    let dir = tempfile::tempdir().unwrap();
    let scan = phantom(dir.path(), "scan.h5");
    let raw = std::fs::read(&scan).unwrap();
    // `-o scan.h5 --force` used to replace the raw k-space with images, exit 0.
    let (code, _, err) = run(&["recon", s(&scan), "-o", s(&scan), "--force", "-q"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("would replace the input"), "{err}");
    assert_eq!(std::fs::read(&scan).unwrap(), raw, "the raw data changed");
    // The same output under two spellings.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let a = out.join("a.nii");
    let a2 = format!("{}/./out/a.nii", dir.path().display());
    let (code, _, err) = run(&["recon", s(&scan), "-o", s(&a), "--also", &a2, "-q"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("named twice"), "{err}");
    // A missing directory is found before the work and said in words, not `Io(Os { .. })`.
    let lost = dir.path().join("missing").join("x.nii");
    let (code, _, err) = run(&["recon", s(&scan), "-o", s(&lost), "-q"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("missing") && !err.contains("Os {"), "{err}");
    // One output that cannot be written: none of the others appear.
    let (code, _, err) = run(&[
        "recon",
        s(&scan),
        "-o",
        s(&a),
        "--also",
        s(&out.join("dcm")),
        "--also",
        "/proc/basin-test.nii",
        "-q",
    ]);
    assert_eq!(code, Some(4), "{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    // An unknown extension is a usage error, not a DICOM directory named x.foo.
    let (code, _, err) = run(&["recon", s(&scan), "-o", s(&out.join("x.foo")), "-q"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown output extension"), "{err}");
    // All outputs of a good run appear together; an existing one needs --force (exit 4).
    basin_ok(&[
        "recon",
        s(&scan),
        "-o",
        s(&a),
        "--also",
        s(&out.join("dcm")),
        "-p",
        "zero-filled",
        "-q",
    ]);
    assert!(a.is_file() && out.join("dcm").is_dir());
    let (code, _, err) = run(&["recon", s(&scan), "-o", s(&a), "-p", "zero-filled", "-q"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn exit_codes_tell_usage_from_input_from_output() {
    let dir = tempfile::tempdir().unwrap();
    let scan = phantom(dir.path(), "scan.h5");
    let out = dir.path().join("o.nii");
    // 2: clap's usage errors and an invalid protocol.
    assert_eq!(run(&["recon", s(&scan)]).0, Some(2));
    assert_eq!(
        run(&["recon", s(&scan), "-o", s(&out), "-p", "no-such"]).0,
        Some(2)
    );
    // 3: a missing or unreadable input.
    let (code, _, err) = run(&["recon", s(&dir.path().join("nope.h5")), "-o", s(&out)]);
    assert_eq!(code, Some(3), "{err}");
    let junk = dir.path().join("junk.h5");
    std::fs::write(&junk, "not hdf5").unwrap();
    assert_eq!(run(&["recon", s(&junk), "-o", s(&out)]).0, Some(3));
    assert!(!out.exists());
    // The CLI's own checks say their class: a usage error (2), an existing checkpoint (4).
    let (code, _, err) = run(&["score", s(&out), "-o", s(&dir.path().join("map.png"))]);
    assert_eq!(code, Some(2), "{err}");
    let recipe = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/basin-prior/model/default.toml"
    );
    let weights = dir.path().join("w.safetensors");
    std::fs::write(dir.path().join("w.safetensors.ckpt"), "an earlier run").unwrap();
    let (code, _, err) = run(&["train", "--config", recipe, "-o", s(&weights), "-q"]);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("checkpoint"), "{err}");
    // The contract is in --help.
    let help = basin_ok(&["--help"]);
    assert!(
        help.contains("Exit codes") && help.contains("4 output"),
        "{help}"
    );
}

#[test]
fn protocols_past_the_work_bound_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("days.toml");
    std::fs::write(
        &p,
        "name = \"days\"\n[solver]\nkind = \"ebm\"\nsigma_max = 0.05\nsigma_min = 0.01\nlevels = 1000\ninner = 1000\ncg_iterations = 1000\ninit_iterations = 10\nprior_weight = 1\n",
    )
    .unwrap();
    // The input does not even exist: the protocol is refused first.
    let (code, _, err) = run(&[
        "recon",
        s(&dir.path().join("later.h5")),
        "-o",
        s(&dir.path().join("o.nii")),
        "-p",
        s(&p),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("prior steps"), "{err}");
}

#[test]
fn built_in_protocol_names_win_and_json_records_the_resolved_protocol() {
    let dir = tempfile::tempdir().unwrap();
    phantom(dir.path(), "scan.h5");
    std::fs::create_dir(dir.path().join("protocols")).unwrap();
    std::fs::write(
        dir.path().join("protocols").join("sense.toml"),
        "name = \"sense\"\ndescription = \"impostor\"\n[solver]\nkind = \"zero-filled\"\n",
    )
    .unwrap();
    let o = Command::new(basin_bin())
        .current_dir(dir.path())
        .args(["recon", "scan.h5", "-o", "o.nii", "-p", "sense", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json = String::from_utf8_lossy(&o.stdout).to_string();
    let got = python(
        r#"
import sys, json
j = json.loads(sys.argv[1])
p = j['protocol']
print(j['schema'], bool(j['basin_version']), p['name'], p['source'], p['parameters']['solver']['kind'], p['parameters']['solver']['stall'])
"#,
        &[&json],
    );
    assert_eq!(got.trim(), "1 True sense built-in cg-sense 0.015", "{json}");
}

#[test]
fn warnings_reach_stderr_in_plain_and_quiet_runs_and_progress_is_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("noheader.h5");
    python(
        r#"
import sys, h5py, numpy as np
rng = np.random.default_rng(1)
k = (rng.standard_normal((2, 2, 32, 32)) + 1j * rng.standard_normal((2, 2, 32, 32))).astype(np.complex64)
with h5py.File(sys.argv[1], 'w') as f:
    f['kspace'] = k
"#,
        &[s(&f)],
    );
    for quiet in [false, true] {
        let out = dir.path().join(format!("o{quiet}.nii"));
        let mut args = vec!["recon", s(&f), "-o", s(&out), "-p", "zero-filled"];
        if quiet {
            args.push("-q");
        }
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains("warning:") && err.contains("geometry is unknown"),
            "quiet {quiet}: {err}"
        );
        // Not a terminal: progress comes as plain lines, and not at all with --quiet.
        assert_eq!(
            err.contains("reconstructed slice 2/2"),
            !quiet,
            "quiet {quiet}: {err}"
        );
    }
}

/// Output names with dots in the stem (`sub.01.nii.gz`) are written under that name: nifti-rs
/// rebuilt the name and wrote `sub.nii.gz`, which failed the rename.
#[test]
fn nifti_names_with_dots_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let scan = phantom(dir.path(), "scan.h5");
    for name in ["sub.01.nii", "sub.01.run-2.nii.gz"] {
        let out = dir.path().join(name);
        basin_ok(&["recon", s(&scan), "-o", s(&out), "-p", "zero-filled", "-q"]);
        let shape = python(
            "import sys, nibabel as nib; print(nib.load(sys.argv[1]).shape)",
            &[s(&out)],
        );
        assert_eq!(shape.trim(), "(32, 32, 1)", "{name}");
    }
    assert_eq!(
        dir_names(dir.path()),
        ["scan.h5", "sub.01.nii", "sub.01.run-2.nii.gz"]
    );
}

#[test]
fn score_gates_pipelines_reads_2d_nifti_and_skips_stray_files_in_a_series() {
    let dir = tempfile::tempdir().unwrap();
    let noise = dir.path().join("noise2d.nii.gz");
    // A 2D NIfTI (nibabel writes them) of pure noise: scored, and flagged.
    python(
        r#"
import sys, numpy as np, nibabel as nib
rng = np.random.default_rng(3)
nib.save(nib.Nifti1Image(rng.random((64, 64)).astype(np.float32), np.eye(4)), sys.argv[1])
"#,
        &[s(&noise)],
    );
    let (code, out, err) = run(&["score", s(&noise)]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ATYPICAL"), "{out}");
    let (code, out, err) = run(&["score", s(&noise), "--fail-on-atypical"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        out.contains("ATYPICAL") && err.contains("--fail-on-atypical"),
        "{err}"
    );
    // A DICOM series with a stray README: the series is scored, the stray file named.
    let scan = phantom(dir.path(), "scan.h5");
    let series = dir.path().join("series");
    basin_ok(&[
        "recon",
        s(&scan),
        "-o",
        s(&series),
        "-p",
        "zero-filled",
        "-q",
    ]);
    std::fs::write(series.join("README.txt"), "exported by the PACS").unwrap();
    let (code, out, err) = run(&["score", s(&series), "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("README.txt") && err.contains("skipped"),
        "{err}"
    );
    assert!(out.contains("\"schema\":1"), "{out}");
}

/// SIGINT and SIGTERM during a reconstruction: exit 130 / 143, no output and no temporary left.
#[test]
fn interrupts_exit_130_or_143_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scan = dir.path().join("scan.h5");
    basin_ok(&["phantom", "--matrix", "192", "--coils", "8", "-o", s(&scan)]);
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let out = dir.path().join("series");
        let child = Command::new(basin_bin())
            .args(["recon", s(&scan), "-o", s(&out), "--backend", "cpu", "-q"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let k = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(k.success());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{sig}: {err}");
        assert!(err.contains("interrupted"), "{err}");
        assert_eq!(dir_names(dir.path()), ["scan.h5"], "{sig}");
    }
}
