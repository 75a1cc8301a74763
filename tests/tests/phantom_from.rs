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

/// `basin recon H5 -o NII -p sense`.
fn recon_sense(h5: &Path, nii: &Path) {
    basin_ok(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        nii.to_str().unwrap(),
        "-p",
        "sense",
    ]);
}

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
        recon_sense(&h5, &nii);
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

/// A volume stored in another orientation (nibabel reorients MNI152 from RAS to LIA, as subject
/// S1 of DATA.md is stored) gives the same axial slices: the simulator follows the header's
/// orientation, not the storage order.
#[test]
fn the_orientation_of_the_input_is_read_from_its_header() {
    let mni = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(MNI152);
    let dir = tempfile::tempdir().unwrap();
    let lia = dir.path().join("mni_lia.nii.gz");
    python(
        r#"
import sys, nibabel as nib
from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform
img = nib.load(sys.argv[1])
out = img.as_reoriented(ornt_transform(io_orientation(img.affine), axcodes2ornt("LIA")))
assert nib.aff2axcodes(out.affine) == ("L", "I", "A")
nib.save(out, sys.argv[2])
"#,
        &[mni.to_str().unwrap(), lia.to_str().unwrap()],
    );
    let mut truths = Vec::new();
    for (name, src) in [("ras", mni.as_path()), ("lia", lia.as_path())] {
        let h5 = dir.path().join(format!("{name}.h5"));
        basin_ok(&[
            "phantom",
            "--from",
            src.to_str().unwrap(),
            "--slices",
            "90",
            "--snr",
            "inf",
            "-o",
            h5.to_str().unwrap(),
        ]);
        truths.push(dir.path().join(format!("{name}_truth.nii.gz")));
    }
    let out = python(
        r#"
import sys, nibabel as nib, numpy as np
a, b = (np.asarray(nib.load(p).dataobj, float) for p in sys.argv[1:3])
print(float(np.abs(a - b).max() / np.abs(a).max()) if a.shape == b.shape else "shape")
"#,
        &[truths[0].to_str().unwrap(), truths[1].to_str().unwrap()],
    );
    let d: f64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("truths differ in shape: {out}"));
    assert!(
        d < 1e-5,
        "RAS and LIA storage give different slices: max rel diff {d}"
    );
}

/// `--lesions N` on an image without flat tissue (uniform random texture, ±50 %): no lesion
/// fits, and the run says so on stderr (one line per slice) instead of writing a lesion-free
/// simulation silently; the JSON lists the lesions placed (none).
#[test]
fn lesions_that_do_not_fit_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("texture.nii.gz");
    python(
        r#"
import sys, numpy as np, nibabel as nib
rng = np.random.default_rng(3)
v = (0.5 + rng.random((64, 64, 1))).astype(np.float32)
nib.save(nib.Nifti1Image(v, np.eye(4)), sys.argv[1])
"#,
        &[img.to_str().unwrap()],
    );
    let h5 = dir.path().join("t.h5");
    let o = basin(&[
        "phantom",
        "--from",
        img.to_str().unwrap(),
        "--lesions",
        "3",
        "--coils",
        "4",
        "-o",
        h5.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: slice 0: 0 of 3 lesions placed"),
        "{err}"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("t.json")).unwrap()).unwrap();
    assert_eq!(
        record["lesions"].as_array().map(Vec::len),
        Some(0),
        "{record}"
    );
}

/// Prints the mean of the truth over the voxels where a T1 image is dark inside a central box
/// (ventricles: CSF) and where it is bright (white matter), for `--contrast`: reads the
/// simulated truth and the T1 slice it came from.
const VENTRICLES: &str = r#"
import sys, nibabel as nib, numpy as np
t = np.asarray(nib.load(sys.argv[1]).dataobj, float).squeeze()
t1 = np.asarray(nib.load(sys.argv[2]).dataobj, float).squeeze()
h, w = t.shape
box = (slice(h // 2 - 20, h // 2 + 20), slice(w // 2 - 25, w // 2 + 25))
a, b = t[box], t1[box]
print(float(a[b < np.percentile(b, 5)].mean()), float(a[b > np.percentile(b, 70)].mean()))
"#;

/// `--contrast t2` and `flair` on Colin27 (the training subject, DATA.md): the JSON records the
/// sequence, the fully sampled reconstruction matches the synthesised truth (NMSE < 1e-3), and
/// the ventricles (dark on the T1 truth of the same slice) are brighter than white matter on T2
/// and darker on FLAIR, also when a `--suite` anatomy names the contrast; bad --field, a bad
/// contrast name and --contrast without --from are usage errors.
#[test]
fn a_synthesised_contrast_is_simulated_and_reconstructed() {
    let colin = "/usr/share/mricron/templates/ch2.nii.gz";
    assert!(
        Path::new(colin).is_file(),
        ".ci/install-deps installs mricron-data"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let sim = |name: &str, extra: &[&str]| {
        let h5 = d(&format!("{name}.h5"));
        let mut args = vec![
            "phantom", "--from", colin, "--slices", "80", "--snr", "inf", "--seed", "4", "-o",
        ];
        args.push(h5.to_str().unwrap());
        args.extend(extra);
        basin_ok(&args);
        h5
    };
    sim("t1", &[]);
    for (contrast, brighter) in [("t2", true), ("flair", false)] {
        let h5 = sim(contrast, &["--contrast", contrast]);
        let rec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d(&format!("{contrast}.json"))).unwrap())
                .unwrap();
        let seq = &rec["contrast"]["sequence"];
        println!("{contrast}: {seq}");
        assert_eq!(
            seq["kind"],
            if brighter {
                "spin-echo"
            } else {
                "inversion-recovery"
            }
        );
        assert_eq!(rec["contrast"]["field_t"], 3.0);
        let nii = d(&format!("{contrast}_recon.nii.gz"));
        recon_sense(&h5, &nii);
        let truth = d(&format!("{contrast}_truth.nii.gz"));
        let c = check(&truth, &nii);
        let nmse = c["nmse"].as_f64().unwrap();
        assert!(nmse < 1e-3, "{contrast}: fully sampled NMSE {nmse:.2e}");
        let v = python(
            VENTRICLES,
            &[
                truth.to_str().unwrap(),
                d("t1_truth.nii.gz").to_str().unwrap(),
            ],
        );
        let v: Vec<f64> = v.split_whitespace().map(|x| x.parse().unwrap()).collect();
        println!(
            "{contrast}: ventricles {:.3}, white matter {:.3}",
            v[0], v[1]
        );
        assert_eq!(v[0] > 1.5 * v[1], brighter, "{contrast}: {v:?}");
        if !brighter {
            assert!(v[0] < 0.5 * v[1], "{contrast}: {v:?}");
        }
    }
    // The same contrast in a `--suite` dataset (an --anatomy with :t2): the case's record says
    // so and its truth shows it; an unknown contrast there is a usage error too.
    let suite = d("suite");
    basin_ok(&[
        "phantom",
        "--suite",
        suite.to_str().unwrap(),
        "--anatomy",
        &format!("c={colin}:80:t2"),
        "--accelerations",
        "4",
        "--snr",
        "inf",
        "--seed",
        "4",
        "-q",
    ]);
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(suite.join("c-80_4x.json")).unwrap())
            .unwrap();
    assert_eq!(rec["contrast"]["sequence"]["kind"], "spin-echo", "{rec}");
    let v = python(
        VENTRICLES,
        &[
            suite.join("c-80_4x_truth.nii.gz").to_str().unwrap(),
            d("t1_truth.nii.gz").to_str().unwrap(),
        ],
    );
    let v: Vec<f64> = v.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert!(v[0] > 1.5 * v[1], "suite t2: {v:?}");
    let o = basin(&[
        "phantom",
        "--suite",
        d("suite2").to_str().unwrap(),
        "--anatomy",
        &format!("c={colin}:80:t3"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("'t3' is not a contrast"));
    let o = basin(&[
        "phantom",
        "--from",
        colin,
        "--slices",
        "80",
        "--contrast",
        "t2",
        "--field",
        "2",
        "-o",
        d("x.h5").to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("1.5 and 3"));
    let o = basin(&[
        "phantom",
        "--contrast",
        "t2",
        "-o",
        d("y.h5").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!d("x.h5").exists() && !d("y.h5").exists());
}
