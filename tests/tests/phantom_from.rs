//! `basin phantom --from` end to end (issue 18): a realistic acquisition simulated from a real
//! brain slice (MNI152, never trained on) is read back by `basin recon`, and nibabel sees the
//! simulator's truth on exactly the reconstruction's grid; fully sampled, the reconstruction
//! matches the truth (NMSE < 1e-3) noise-free and with a correlated-noise scan (prewhitening on);
//! existing outputs and the inputs are never replaced.

use basin_benches::prior_validation::MNI152;
use basin_tests::{basin, basin_ok, python};
use std::path::Path;

/// Prints the largest affine difference, the shapes and the NMSE of the reconstruction against
/// the truth (both read by nibabel).
const CHECK: &str = r#"
import sys, json, nibabel as nib, numpy as np
t, r = nib.load(sys.argv[1]), nib.load(sys.argv[2])
a = np.asarray(t.dataobj, float).squeeze()
b = np.asarray(r.dataobj, float).squeeze()
print(json.dumps({
    "affine": float(np.abs(t.affine - r.affine).max()),
    "truth_shape": list(t.shape[:3]),
    "recon_shape": list(r.shape[:3]),
    "nmse": float(np.sum((a - b) ** 2) / np.sum(a ** 2)),
}))
"#;

fn check(truth: &Path, recon: &Path) -> serde_json::Value {
    let out = python(CHECK, &[truth.to_str().unwrap(), recon.to_str().unwrap()]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn simulated_from_mni152_reconstructs_to_its_truth_on_the_same_grid() {
    let mni = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(MNI152);
    assert!(
        mni.is_file(),
        ".ci/install-deps fetches MNI152 from the nilearn wheel"
    );
    let mni = mni.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, snr, slices) in [("clean", "inf", "90"), ("noisy", "2000", "88:90")] {
        let h5 = dir.path().join(format!("{name}.h5"));
        let nii = dir.path().join(format!("{name}_recon.nii.gz"));
        let truth = dir.path().join(format!("{name}_truth.nii.gz"));
        basin_ok(&[
            "phantom",
            "--from",
            mni,
            "--slices",
            slices,
            "--snr",
            snr,
            "--seed",
            "3",
            "-o",
            h5.to_str().unwrap(),
        ]);
        let rec: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        assert!(dir.path().join(format!("{name}_maps.nii.gz")).is_file());
        // The noise-free acquisition carries no noise scan (nothing to whiten); the noisy one
        // does, so its reconstruction below runs with prewhitening.
        let samples = rec["noise_samples"].as_u64().unwrap();
        assert_eq!(
            samples == 0,
            snr == "inf",
            "{name}: noise scan of {samples} samples"
        );
        basin_ok(&[
            "recon",
            h5.to_str().unwrap(),
            "-o",
            nii.to_str().unwrap(),
            "-p",
            "sense",
        ]);
        let c = check(&truth, &nii);
        eprintln!("{name} (SNR {snr}): {c}");
        assert_eq!(c["truth_shape"], c["recon_shape"], "{name}: grids differ");
        assert!(
            c["affine"].as_f64().unwrap() < 1e-4,
            "{name}: affines differ: {c}"
        );
        let nmse = c["nmse"].as_f64().unwrap();
        assert!(nmse < 1e-3, "{name}: fully sampled NMSE {nmse:.2e} ≥ 1e-3");
    }
    let clean = dir.path().join("clean.h5");
    let before = std::fs::read(&clean).unwrap();
    let out = basin(&[
        "phantom",
        "--from",
        mni,
        "--slices",
        "90",
        "-o",
        clean.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "an existing output was replaced");
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("already exists"), "unclear refusal: {msg}");
    assert_eq!(
        std::fs::read(&clean).unwrap(),
        before,
        "the refused run touched the output"
    );
    // An output name that is the input: refused even with --force.
    let truth = dir.path().join("clean_truth.nii.gz");
    let before = std::fs::read(&truth).unwrap();
    let out = basin(&[
        "phantom",
        "--from",
        truth.to_str().unwrap(),
        "--force",
        "-o",
        clean.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "an output replaced the input");
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("replace the input"), "unclear refusal: {msg}");
    assert_eq!(std::fs::read(&truth).unwrap(), before, "the input changed");
}
