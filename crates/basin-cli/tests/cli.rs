//! The CLI's surface: help text, refusal to overwrite, unsupported outputs, and a phantom
//! going through `info` and `recon` (this file also makes `cargo test` build the binary that
//! the workspace's end-to-end tests use).

use std::process::Command;

fn basin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_basin"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_subcommand() {
    let out = basin(&["--help"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for sub in ["info", "recon", "phantom"] {
        assert!(s.contains(sub), "--help lacks {sub}:\n{s}");
    }
}

#[test]
fn phantom_info_recon_and_overwrite_rules() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("p.h5");
    let h5s = h5.to_str().unwrap();
    let out = basin(&[
        "phantom",
        "--kind",
        "brain",
        "--matrix",
        "64",
        "--coils",
        "4",
        "--accel",
        "2",
        "--center-fraction",
        "0.25",
        "-o",
        h5s,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Refuses to overwrite without --force and leaves the file intact.
    let before = std::fs::read(&h5).unwrap();
    let out = basin(&["phantom", "--matrix", "32", "-o", h5s]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&h5).unwrap(), before);

    let info = basin(&["info", h5s, "--json"]);
    assert!(info.status.success());
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["coils"], 4);
    assert_eq!(v["buckets"][0]["sampled_lines"], 32);
    assert_eq!(v["noise_samples"], 256);

    let nii = dir.path().join("p.nii.gz");
    let out = basin(&["recon", h5s, "-o", nii.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["shape_xyzt"], serde_json::json!([64, 64, 1, 1]));
    assert_eq!(v["slices"][0]["prewhitened"], true);
    // No --protocol: the learned energy prior, whose diagnostics carry the final energy.
    assert_eq!(v["protocol"]["name"], "brain-2d-ebm");
    assert_eq!(v["protocol"]["source"], "built-in");
    assert!(v["slices"][0]["energy"]
        .as_f64()
        .is_some_and(f64::is_finite));
    assert!(nii.is_file());
    let out = basin(&["recon", h5s, "-o", nii.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "existing output must be refused"
    );
    let twice = dir.path().join("twice.nii");
    let t = twice.to_str().unwrap();
    let out = basin(&["recon", h5s, "-o", t, "--also", t]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("named twice"));
    let out = basin(&[
        "recon",
        h5s,
        "-o",
        dir.path().join("s").to_str().unwrap(),
        "--uid-root",
        "1.02.3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "zero-led UID component must be refused"
    );
    assert!(!twice.exists() && !dir.path().join("s").exists());
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

/// On a headless machine (no XDG_RUNTIME_DIR, no WAYLAND_DISPLAY) the default protocol's GPU
/// search loads the Vulkan drivers, whose libwayland printed "error: XDG_RUNTIME_DIR is invalid
/// or not set" once per probe; basin's stderr must carry only its own lines. (Where no Vulkan
/// driver is installed nothing is printed either way; CI installs Mesa's.)
#[test]
fn gpu_search_on_a_headless_machine_prints_no_wayland_errors() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = dir.path().join("p.h5");
    let h5s = h5.to_str().unwrap();
    assert!(
        basin(&["phantom", "--matrix", "32", "--coils", "2", "-o", h5s])
            .status
            .success()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_basin"))
        .args([
            "recon",
            h5s,
            "-o",
            dir.path().join("x.nii").to_str().unwrap(),
        ])
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    assert!(
        err.lines().all(|l| l.starts_with("device: ")
            || l.starts_with("reconstructed slice ")
            || l.starts_with("wrote ")),
        "unexpected stderr:\n{err}"
    );
}
