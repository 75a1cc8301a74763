//! `basin recon --max-memory` (issue 23): the estimated peak resident memory it compares with
//! the limit (`memory_estimate_bytes` in --json) holds on cases its model was not fitted on
//! (other protocols, sizes and coil counts, a realistic multi-slice acquisition, posterior
//! sampling): measured peak (`/usr/bin/time -f %M`) ≤ estimate ≤ 2.5 × measured. Past the
//! limit, the run is refused with exit 3 and writes nothing.

use basin_benches::prior_validation::MNI152;
use basin_tests::{basin, basin_bin, basin_ok};
use std::path::Path;
use std::process::Command;

/// Runs `basin recon FILE -o OUT --json -q ARGS` under /usr/bin/time: (estimate, peak) bytes.
fn measured(file: &Path, out: &Path, args: &[&str]) -> (u64, u64) {
    let o = Command::new("/usr/bin/time")
        .args(["-f", "peak-kb %M"])
        .arg(basin_bin())
        .args(["recon", file.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--json", "-q", "--force", "--backend", "cpu"])
        .args(args)
        .output()
        .expect("/usr/bin/time (Debian package time, installed by .ci/install-deps)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "basin recon {args:?} failed:\n{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let peak_kb: u64 = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("peak-kb "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {err}"));
    (v["memory_estimate_bytes"].as_u64().unwrap(), peak_kb * 1024)
}

#[test]
fn the_memory_estimate_bounds_measured_peaks_and_the_limit_refuses_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let s = |n: &str| p(n).to_str().unwrap().to_string();
    let make = |name: &str, matrix: &str, coils: &str| {
        basin_ok(&[
            "phantom",
            "--matrix",
            matrix,
            "--coils",
            coils,
            "--accel",
            "3",
            "-o",
            &s(name),
        ]);
        p(name)
    };
    let mni = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(MNI152);
    basin_ok(&[
        "phantom",
        "--from",
        mni.to_str().unwrap(),
        "--slices",
        "84:88",
        "--accel",
        "4",
        "-o",
        &s("mni.h5"),
    ]);
    let cases: Vec<(&str, std::path::PathBuf, Vec<&str>)> = vec![
        (
            "cs-tv 192² 12 coils",
            make("a.h5", "192", "12"),
            vec!["-p", "cs-tv"],
        ),
        (
            "ebm 96² 6 coils",
            make("b.h5", "96", "6"),
            vec!["-p", "brain-2d-ebm"],
        ),
        (
            "ebm posterior, 3 samples, 128² 8 coils",
            make("c.h5", "128", "8"),
            vec!["-p", "brain-2d-ebm", "--samples", "3"],
        ),
        (
            "l1-wavelet, realistic 4 slices 234×198 8 coils",
            p("mni.h5"),
            vec!["-p", "cs-l1-wavelet"],
        ),
    ];
    for (name, file, args) in &cases {
        let (estimate, peak) = measured(file, &p("out.nii"), args);
        let ratio = estimate as f64 / peak as f64;
        eprintln!("{name}: estimate {estimate} B, measured peak {peak} B, ratio {ratio:.2}");
        assert!(
            (1.0..=2.5).contains(&ratio),
            "{name}: estimate {estimate} B vs measured peak {peak} B (ratio {ratio:.2})"
        );
    }
    // Past the limit: exit 3 naming the estimate and the limit, no output.
    let out = p("refused.nii");
    let o = basin(&[
        "recon",
        &s("a.h5"),
        "-p",
        "cs-tv",
        "-o",
        out.to_str().unwrap(),
        "--max-memory",
        "40M",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("--max-memory") && err.contains("estimated"),
        "{err}"
    );
    assert!(!out.exists());
}
