//! `basin recon --backend`: the EBM protocol on the GPU path (lavapipe in CI) writes the same
//! image as on the CPU (read back with nibabel), the chosen device is reported, `auto` never
//! picks a software adapter, and a bad value is a clear error.

use basin_tests::{basin, basin_ok, python};

#[test]
fn recon_backend_gpu_matches_cpu_and_reports_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    basin_ok(&[
        "phantom",
        "--matrix",
        "64",
        "--coils",
        "4",
        "--accel",
        "3",
        "--center-fraction",
        "0.15",
        "-o",
        &d("p.h5"),
    ]);
    let run = |backend: &str, out: &str| -> serde_json::Value {
        let s = basin_ok(&[
            "recon",
            &d("p.h5"),
            "-o",
            &d(out),
            "--protocol",
            "brain-2d-ebm",
            "--backend",
            backend,
            "--json",
        ]);
        serde_json::from_str(&s).expect("JSON summary")
    };
    let gpu = run("gpu", "gpu.nii");
    let cpu = run("cpu", "cpu.nii");
    let auto = run("auto", "auto.nii");
    let dev = gpu["device"].as_str().unwrap();
    // The GPU path solves the acquisition's slices in batches and says so per slice.
    assert_eq!(gpu["slices"][0]["batch"], 1, "{gpu}");
    assert_eq!(cpu["slices"][0]["batch"], 1, "{cpu}");
    println!("--backend gpu ran on {dev}");
    assert_eq!(cpu["device"], "cpu");
    assert!(dev != "cpu", "--backend gpu must open a device");
    if dev.contains("software") {
        assert_eq!(
            auto["device"], "cpu",
            "auto must not pick a software adapter"
        );
    }
    let nmse = python(
        "import nibabel as nib, numpy as np, sys\n\
         a = nib.load(sys.argv[1]).get_fdata(); b = nib.load(sys.argv[2]).get_fdata()\n\
         print(((a - b) ** 2).sum() / (b ** 2).sum())",
        &[&d("gpu.nii"), &d("cpu.nii")],
    );
    let nmse: f64 = nmse.trim().parse().unwrap();
    println!("NIfTI magnitude GPU vs CPU: NMSE {nmse:.2e}");
    assert!(nmse < 1e-4, "GPU vs CPU NMSE {nmse}");
    // Other solvers run on the CPU and say so.
    let sense = basin(&[
        "recon",
        &d("p.h5"),
        "-o",
        &d("s.nii"),
        "--protocol",
        "sense",
        "--backend",
        "gpu",
        "--json",
    ]);
    assert!(sense.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&sense.stdout).unwrap();
    assert_eq!(summary["device"], "cpu");
    assert!(String::from_utf8_lossy(&sense.stderr).contains("applies to the EBM solver"));
    let bad_size = basin(&[
        "recon",
        &d("p.h5"),
        "-o",
        &d("x.nii"),
        "--gpu-memory",
        "lots",
    ]);
    let err = String::from_utf8_lossy(&bad_size.stderr);
    assert_eq!(bad_size.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is not a size") && !err.contains("panicked"),
        "{err}"
    );
    let bad = basin(&["recon", &d("p.h5"), "-o", &d("x.nii"), "--backend", "tpu"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("auto, cpu or gpu") && !err.contains("panicked"),
        "{err}"
    );
}
