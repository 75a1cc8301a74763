//! The prior from the command line: `basin train` is deterministic and resumes bit for bit with
//! the shipped recipe (a small expert fit); `basin score` reads NIfTI, DICOM and ISMRMRD images consistently, writes
//! the energy map on the input's grid (checked with nibabel) — the same map `basin recon
//! --energy-map` writes — scores noisy slices as less plausible than clean ones, passes clean
//! slices of a real EPI it never saw while ranking their aliased copies below them, and refuses bad
//! input clearly.

use basin_tests::{basin, basin_ok, python};
use std::path::Path;

const RECIPE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/basin-prior/model/default.toml"
);
const MNI152: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../target/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
);

fn losses(json: &str) -> Vec<f64> {
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON summary");
    v["losses"]
        .as_array()
        .expect("losses")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

#[test]
fn train_with_the_shipped_recipe_is_deterministic_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (a, c) = (out("a.safetensors"), out("c.safetensors"));
    // The shipped recipe (network, noise, training with residual_of_experts, data, augment) with
    // a small [experts] section: each run first fits the residual expert field, and the shipped
    // fit takes ~90 s here for nothing this test checks (the same code path at its full size is
    // what `basin train` runs; the recipe itself is parsed by basin-prior's recipe tests).
    let shipped = std::fs::read_to_string(RECIPE).unwrap();
    let head = shipped.split("\n[experts]").next().unwrap().to_string();
    assert!(head.contains("residual_of_experts = true"), "{head}");
    let recipe = out("recipe.toml");
    std::fs::write(
        &recipe,
        format!("{head}\n[experts]\nn_sigma = 2\nem_images = 2\nem_samples = 3000\nfit_images = 1\nwith_network = true\nseed = 3\n"),
    )
    .unwrap();
    let run = |o: &str, steps: &str, extra: &[&str]| {
        let mut args = vec![
            "train", "--config", &recipe, "-o", o, "--steps", steps, "--json", "-q",
        ];
        args.extend_from_slice(extra);
        losses(&basin_ok(&args))
    };
    // Three runs: a straight 2-step run, and a second run of the same recipe and seed stopped
    // after 1 step — its loss must equal the first run's (determinism) — then resumed to 2: the
    // second loss and the weights equal the straight run's.
    let la = run(&a, "2", &[]);
    assert_eq!(la.len(), 2);
    assert!(la.iter().all(|l| l.is_finite() && *l > 0.0));
    let l1 = run(&c, "1", &[]);
    assert_eq!(l1, la[..1], "two runs of the same recipe and seed differ");
    std::fs::remove_file(&c).unwrap();
    let l2 = run(&c, "2", &["--resume"]);
    assert_eq!(l2, la[1..]);
    assert_eq!(
        std::fs::read(&a).unwrap().len(),
        std::fs::read(&c).unwrap().len()
    );
    let same = python(
        r#"
import sys, json, struct
def tensors(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]] for k, v in h.items() if k != '__metadata__'}
print(tensors(sys.argv[1]) == tensors(sys.argv[2]))
"#,
        &[&a, &c],
    );
    assert_eq!(same.trim(), "True");
    // The recipe's [data] contrasts are synthesised from Colin27 and trained on beside its real
    // T1: the card counts the slices of each (each contrast keeps at least a fifth of the
    // volume's slices in its three orientations: Colin27 is 181×217×181).
    let data = python(
        r#"
import sys, json, struct, re
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
d = json.loads(b[8:8 + n])['__metadata__']['data']
real, synth = re.match(r'(\d+) tissue slices from .*; (\d+) tissue slices of contrasts synthesised', d).groups()
print(real, synth, all(f'ch2.nii.gz as {c}' in d for c in ('t2', 'pd', 'flair')))
"#,
        &[&a],
    );
    let v: Vec<&str> = data.split_whitespace().collect();
    let (real, synth): (usize, usize) = (v[0].parse().unwrap(), v[1].parse().unwrap());
    assert!(real > 115 && synth > 3 * 115 && v[2] == "True", "{data}");
    // An existing output or checkpoint is not overwritten silently.
    let e = basin(&["train", "--config", RECIPE, "-o", &a, "--steps", "1", "-q"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("already exists"));
}

/// Five axial MNI152 slices, clean and with noise of 5 % of the p99, as NIfTI (nibabel).
fn mni_pair(dir: &Path) -> (String, String) {
    let clean = dir.join("clean.nii.gz");
    let noisy = dir.join("noisy.nii.gz");
    python(
        r#"
import sys, numpy as np, nibabel as nib
img = nib.load(sys.argv[1])
v = img.get_fdata()[:, :, 80:85].astype(np.float32)
p99 = np.percentile(np.abs(img.get_fdata()), 99)
rng = np.random.default_rng(5)
nib.save(nib.Nifti1Image(v, img.affine), sys.argv[2])
nib.save(nib.Nifti1Image((v + 0.05 * p99 * rng.standard_normal(v.shape)).astype(np.float32), img.affine), sys.argv[3])
"#,
        &[MNI152, clean.to_str().unwrap(), noisy.to_str().unwrap()],
    );
    (
        clean.to_str().unwrap().to_string(),
        noisy.to_str().unwrap().to_string(),
    )
}

/// Each slice's `key` in basin score's JSON against the numbers numpy printed (one per slice),
/// to `tol` × (1 + |numpy's|).
fn assert_matches_numpy(json: &str, key: &str, numpy: &str, tol: f64) {
    let want: Vec<f64> = numpy
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    let got = field(json, key);
    assert_eq!(want.len(), got.len(), "{key}: slices");
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{key}: basin {g} vs numpy {w}"
        );
    }
}

fn scores(json: &str) -> Vec<f64> {
    field(json, "energy")
}

fn field(json: &str, key: &str) -> Vec<f64> {
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON");
    v["slices"]
        .as_array()
        .expect("slices")
        .iter()
        .map(|s| s[key].as_f64().expect(key))
        .collect()
}

#[test]
fn score_writes_the_map_on_the_input_grid_and_ranks_noise_as_implausible() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, noisy) = mni_pair(dir.path());
    let map = dir.path().join("energy.nii.gz");
    let m = map.to_str().unwrap();
    let (jc, jn) = (
        basin_ok(&["score", &clean, "-o", m, "--json"]),
        basin_ok(&["score", &noisy, "--json"]),
    );
    // Both energies (the network's and the whole prior's) rank the noisy slices higher.
    for key in ["energy", "prior_energy"] {
        let (sc, sn) = (field(&jc, key), field(&jn, key));
        assert_eq!(sc.len(), 5);
        assert_eq!(sn.len(), 5);
        for (c, n) in sc.iter().zip(&sn) {
            assert!(n > c, "{key}: noisy slice scored {n}, clean {c}");
        }
    }
    // Each slice's z is the largest of the five one-sided robust z the shipped card judges by
    // (too little structure for its energy, a line standing out from its neighbours, a copy at
    // half the field of view, k-space line power jumping from line to line, noise — counted
    // only above the 3.5 threshold — and 0), recomputed here from the JSON's statistics and
    // typical ranges.
    for (json, clean) in [(&jc, true), (&jn, false)] {
        let v: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON");
        let num = |r: &serde_json::Value, k: &str| r[k].as_f64().expect(k);
        let (st, line, noise, ghost, jitter) = (
            &v["typical_structure"],
            &v["typical_line_contrast"],
            &v["typical_ln_noise"],
            &v["typical_ghost"],
            &v["typical_jitter"],
        );
        let robust =
            |x: f64, r: &serde_json::Value| (x - num(r, "median")) / (1.4826 * num(r, "mad"));
        for s in v["slices"].as_array().expect("slices") {
            let residual = num(s, "score_norm").ln()
                - num(st, "intercept")
                - num(st, "slope") * num(s, "energy");
            assert!((residual - num(s, "structure_residual")).abs() <= 1e-9);
            let others = [
                -robust(residual, st),
                robust(num(s, "line_contrast"), line),
                robust(num(s, "ghost"), ghost),
                Some(robust(num(s, "noise").max(1e-6).ln(), noise))
                    .filter(|&z| z > 3.5)
                    .unwrap_or(0.0),
            ]
            .into_iter()
            .fold(0.0, f64::max);
            let want = others.max(robust(num(s, "jitter"), jitter));
            let got = s["z"].as_f64().expect("z");
            assert!(
                (got - want).abs() <= 1e-9 * want.max(1.0),
                "z {got} vs {want}"
            );
            if clean {
                // The noise-free template slices are not flagged by any statistic but the
                // line-power jitter, whose range assumes the noise of an acquisition on the
                // outer k-space lines (here they hold only the ripple of the template's zeroed
                // background; one of these five reaches z 3.8 by it).
                assert!(others <= 3.5, "clean slice: z {others} without the jitter");
            }
        }
    }
    // The noisy copies (σ = 5 % of the p99, about SNR 10 in tissue) are flagged by the noise
    // statistic, each above its clean slice.
    for (c, n) in field(&jc, "z").iter().zip(field(&jn, "z")) {
        assert!(n > 3.5 && n > *c, "clean z {c}, noisy z {n}");
    }
    let chk = python(
        r#"
import sys, numpy as np, nibabel as nib
a, b = nib.load(sys.argv[1]), nib.load(sys.argv[2])
d = a.get_fdata()
print(a.shape == b.shape, np.allclose(a.affine, b.affine), bool(np.isfinite(d).all()), a.get_data_dtype())
"#,
        &[m, &clean],
    );
    assert_eq!(chk.trim(), "True True True float32");
    // The half-field-of-view echo, recomputed by numpy from the image file: along each axis,
    // the magnitude's circular forward difference g at background steps (both pixels below 0.1
    // of the p99 = 1 scale basin judges in) times g half the slice away (the mean of ⌊N/2⌋ and
    // ⌈N/2⌉ for odd N), summed and divided by the root of the summed squared products; the
    // larger over the two axes (float64; basin's sums are float64 over float32 pixels).
    let echo = python(
        r#"
import sys, numpy as np, nibabel as nib
v = np.abs(nib.load(sys.argv[1]).get_fdata())
f = np.sort(v.ravel())
v = v / f[int(round((f.size - 1) * 0.99))]  # basin's p99: the order statistic, whole volume
def along(m, a):
    n = m.shape[a]
    g = np.roll(m, -1, axis=a) - m
    bg = np.maximum(np.roll(m, -1, axis=a), m) < 0.1
    s = 0.5 * (np.roll(g, -(n // 2), axis=a) + np.roll(g, -(n - n // 2), axis=a))
    p = g * s * bg
    den = np.sqrt((p * p).sum())
    return p.sum() / den if den > 0 else 0.0
print(" ".join(repr(max(along(v[:, :, k], 0), along(v[:, :, k], 1))) for k in range(v.shape[2])))
"#,
        &[&clean],
    );
    assert_matches_numpy(&jc, "ghost", &echo, 1e-5);
    // The line-power jitter, recomputed by numpy (float64 FFTs; basin's are float32) from the
    // image file: per axis, the power of each line of the centred 2D DFT of the magnitude, ln
    // (floored at 1e-12 of the largest), minus its running median over 9 lines (indices
    // clamped), over the lines further than 0.15 N from the centre: the residuals' standard
    // deviation times √(samples per line); the larger over the two axes.
    let jitter = python(
        r#"
import sys, numpy as np, nibabel as nib
v = np.abs(nib.load(sys.argv[1]).get_fdata())
def along(m, a):
    n, ns = m.shape[a], m.shape[1 - a]
    p = (np.abs(np.fft.fftshift(np.fft.fft2(m))) ** 2).sum(axis=1 - a)
    if p.max() <= 0:
        return 0.0
    lp = np.log(p + 1e-12 * p.max())
    idx = np.clip(np.arange(n)[None, :] + np.arange(-4, 5)[:, None], 0, n - 1)
    r = (lp - np.median(lp[idx], axis=0))[np.abs(np.arange(n) - n // 2) > 0.15 * n]
    return r.std() * np.sqrt(ns) if r.size >= 2 else 0.0
print(" ".join(repr(max(along(v[:, :, k], 0), along(v[:, :, k], 1))) for k in range(v.shape[2])))
"#,
        &[&clean],
    );
    assert_matches_numpy(&jc, "jitter", &jitter, 1e-4);
    // Not overwritten without --force; bad inputs are clear errors.
    let e = basin(&["score", &clean, "-o", m]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("already exists"));
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "not an image").unwrap();
    for (input, want) in [
        (txt.to_str().unwrap(), "not recognised"),
        ("/nonexistent/x.nii.gz", "no such file"),
    ] {
        let e = basin(&["score", input]);
        assert_eq!(e.status.code(), Some(3));
        let s = String::from_utf8_lossy(&e.stderr);
        assert!(s.contains(want), "{input}: {s}");
        assert!(!s.contains("panicked"), "{s}");
    }
    let e = basin(&[
        "score",
        &clean,
        "-o",
        dir.path().join("m.png").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("NIfTI"));
}

#[test]
fn score_agrees_across_nifti_dicom_and_ismrmrd_images() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
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
        &p("k.h5"),
    ]);
    basin_ok(&[
        "recon",
        &p("k.h5"),
        "-o",
        &p("r.nii.gz"),
        "--also",
        &p("dcm"),
        "--also",
        &p("r.h5"),
        "-q",
    ]);
    // The energy map of `recon` (from the complex image) lies on the image's grid and equals
    // what `score` writes for the complex ISMRMRD images of the same reconstruction.
    basin_ok(&[
        "recon",
        &p("k.h5"),
        "-o",
        &p("c.h5"),
        "--complex",
        "--also",
        &p("c.nii.gz"),
        "--energy-map",
        &p("e.nii.gz"),
        "-q",
    ]);
    basin_ok(&["score", &p("c.h5"), "-o", &p("s.nii.gz"), "-q"]);
    let chk = python(
        r#"
import sys, numpy as np, nibabel as nib
e, r, s = (nib.load(f) for f in sys.argv[1:4])
a, b = e.get_fdata(), s.get_fdata()
print(e.shape == r.shape, np.allclose(e.affine, r.affine), bool(np.allclose(a, b, rtol=1e-4, atol=1e-3 * np.abs(b).max())))
"#,
        &[&p("e.nii.gz"), &p("c.nii.gz"), &p("s.nii.gz")],
    );
    assert_eq!(chk.trim(), "True True True");
    let nii = scores(&basin_ok(&["score", &p("r.nii.gz"), "--json"]));
    let h5 = scores(&basin_ok(&["score", &p("r.h5"), "--json"]));
    let dcm = scores(&basin_ok(&["score", &p("dcm"), "--json"]));
    assert_eq!(nii.len(), 1);
    assert_eq!(h5.len(), 1);
    assert_eq!(dcm.len(), 1);
    // The same float pixels: equal up to float32 rounding. DICOM stores them quantised to
    // 16 bits: within 2 %.
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-9);
    assert!(
        rel(h5[0], nii[0]) < 1e-3,
        "ISMRMRD {} vs NIfTI {}",
        h5[0],
        nii[0]
    );
    assert!(
        rel(dcm[0], nii[0]) < 2e-2,
        "DICOM {} vs NIfTI {}",
        dcm[0],
        nii[0]
    );
}

/// Colin27's 0.5 mm skull-stripped volume (mricron-data): other anatomy than the recipe's
/// [data] sources, for the [experts] stage's own `sources`.
const CH2BETTER: &str = "/usr/share/mricron/templates/ch2better.nii.gz";

/// `basin train --network` fits the recipe's expert field on a trained network (a small
/// [experts] stage so the test is quick): the output keeps the network's tensors bit for bit,
/// adds finite, non-negative expert weights fitted on the [experts] stage's own sources (recorded
/// in the card), and is a model `basin score` accepts. A recipe without [experts] is refused
/// with a clear message.
#[test]
fn train_network_fits_experts_on_a_trained_network() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = std::fs::read_to_string(RECIPE).unwrap();
    let head = recipe.split("\n[experts]").next().unwrap().to_string() + "\n";
    let small = dir.path().join("small.toml");
    std::fs::write(
        &small,
        format!(
            "{head}[experts]\nn_sigma = 2\nem_images = 2\nem_samples = 3000\nfit_images = 1\nwith_network = true\nseed = 3\nsources = [\"{CH2BETTER}\"]\n"
        ),
    )
    .unwrap();
    let net = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/basin-prior/model/default.safetensors"
    );
    let out = dir.path().join("fitted.safetensors");
    let o = out.to_str().unwrap();
    basin_ok(&[
        "train",
        "--config",
        small.to_str().unwrap(),
        "--network",
        net,
        "-o",
        o,
        "-q",
    ]);
    let report = python(
        r#"
import sys, json, struct
import numpy as np
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    return h, {k: b[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]] for k, v in h.items() if k != '__metadata__'}
h0, t0 = load(sys.argv[1]); h1, t1 = load(sys.argv[2])
same = all(t1[k] == t0[k] for k in t0 if k.startswith('level'))
w = np.frombuffer(t1['experts.weights'], dtype=np.float64).reshape(h1['experts.weights']['shape'])
names = h1['__metadata__']['experts_filters'].split(',')
print(same, w.shape[0], w.shape[1] == len(names) + 1, bool(np.all(np.isfinite(w)) and np.all(w >= 0) and w.max() > 0), 'ch2better' in h1['__metadata__']['experts_data'])
"#,
        &[net, o],
    );
    assert_eq!(
        report.split_whitespace().collect::<Vec<_>>(),
        ["True", "2", "True", "True", "True"],
        "{report}"
    );
    // Without [experts] --network has nothing to do (and the shipped recipe's residual training
    // has no field to complete: that is refused first, as clearly).
    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, &head).unwrap();
    let e = basin(&[
        "train",
        "--config",
        bare.to_str().unwrap(),
        "--network",
        net,
        "-o",
        &format!("{o}.2"),
    ]);
    assert!(!e.status.success());
    assert!(
        String::from_utf8_lossy(&e.stderr)
            .contains("residual_of_experts needs an [experts] section"),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );
    std::fs::write(
        &bare,
        head.replace("residual_of_experts = true", "residual_of_experts = false"),
    )
    .unwrap();
    let e = basin(&[
        "train",
        "--config",
        bare.to_str().unwrap(),
        "--network",
        net,
        "-o",
        &format!("{o}.2"),
    ]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("no [experts] section"));
}

/// `basin recon --samples N --uncertainty FILE`: the posterior mean is written as the image and
/// the per-pixel standard deviation beside it on the same grid (nibabel), finite, non-negative
/// and not all zero inside the object; the same seed gives the same image. Misuse is refused
/// before any work: --uncertainty without --samples ≥ 2, --samples with a non-EBM protocol, an
/// uncertainty map not named as NIfTI.
#[test]
fn recon_writes_posterior_mean_and_uncertainty() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    basin_ok(&[
        "phantom",
        "--kind",
        "brain",
        "--matrix",
        "48",
        "--coils",
        "4",
        "--noise",
        "0.002",
        "-o",
        &p("k.h5"),
    ]);
    let run = |img: &str, sd: &str| {
        basin_ok(&[
            "recon",
            &p("k.h5"),
            "-p",
            "brain-2d-ebm",
            "--backend",
            "cpu",
            "--samples",
            "3",
            "--seed",
            "4",
            "-o",
            &p(img),
            "--uncertainty",
            &p(sd),
            "-q",
        ])
    };
    run("m1.nii.gz", "u1.nii.gz");
    run("m2.nii.gz", "u2.nii.gz");
    let chk = python(
        r#"
import sys, numpy as np, nibabel as nib
m1, u1, m2, u2 = (nib.load(f) for f in sys.argv[1:5])
a, u = m1.get_fdata(), u1.get_fdata()
inside = a > 0.1 * a.max()
print(u.shape == a.shape, np.allclose(u1.affine, m1.affine), bool(np.isfinite(u).all() and (u >= 0).all()),
      bool(u[inside].mean() > 0), bool(np.array_equal(a, m2.get_fdata()) and np.array_equal(u, u2.get_fdata())))
"#,
        &[
            &p("m1.nii.gz"),
            &p("u1.nii.gz"),
            &p("m2.nii.gz"),
            &p("u2.nii.gz"),
        ],
    );
    assert_eq!(chk.trim(), "True True True True True");
    let (k, out) = (p("k.h5"), p("x.nii.gz"));
    let refused = |args: &[&str], needle: &str| {
        let mut all = vec!["recon", &k, "-o", &out];
        all.extend_from_slice(args);
        let o = basin(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(needle),
            "{args:?}: {err}"
        );
        assert!(!Path::new(&out).exists(), "{args:?} wrote an image");
    };
    let u = p("u.nii.gz");
    refused(&["-p", "brain-2d-ebm", "--uncertainty", &u], "--samples 2");
    refused(
        &["-p", "brain-2d-ebm", "--samples", "1", "--uncertainty", &u],
        "--samples 2",
    );
    refused(&["-p", "sense", "--samples", "3"], "EBM protocol");
    let png = p("u.png");
    refused(
        &[
            "-p",
            "brain-2d-ebm",
            "--samples",
            "3",
            "--uncertainty",
            &png,
        ],
        "NIfTI",
    );
}

/// Issue 19's fast check of the single-subject score on a real contrast of anatomy it was
/// neither trained nor calibrated on: nibabel's example BOLD EPI (T2*-weighted, 2 mm; DATA.md:
/// validation only), eight slices through the realistic simulator (8 birdcage coils, correlated
/// noise, SNR 50). Its clean CG-SENSE slices are not flagged, and each slice's 8× random
/// zero-filled reconstruction is judged less typical than its clean one (the old MNI152 ranges
/// flagged clean single-subject slices and ranked them below their aliased copies; the bench
/// `benches/score-contrasts.sh` measures the same on subject S1 in four contrasts).
#[test]
fn score_passes_clean_real_epi_and_ranks_its_aliased_copy_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    python(
        r#"
import sys, numpy as np, nibabel as nib, os
src = os.path.join(os.path.dirname(nib.__file__), 'tests', 'data', 'example4d.nii.gz')
i = nib.load(src)
nib.save(nib.Nifti1Image(np.asarray(i.dataobj)[..., 0].astype(np.float32), i.affine), sys.argv[1])
"#,
        &[&p("epi.nii.gz")],
    );
    let epi = p("epi.nii.gz");
    for (name, extra) in [
        ("full", vec![]),
        (
            "r8",
            vec![
                "--accel",
                "8",
                "--mask",
                "random",
                "--center-fraction",
                "0.04",
            ],
        ),
    ] {
        let out = p(&format!("{name}.h5"));
        let mut args = vec![
            "phantom", "--from", &epi, "--slices", "8:16", "--snr", "50", "--seed", "3", "-o", &out,
        ];
        args.extend(extra);
        basin_ok(&args);
    }
    basin_ok(&[
        "recon",
        &p("full.h5"),
        "-p",
        "sense",
        "-o",
        &p("clean.nii.gz"),
        "-q",
    ]);
    basin_ok(&[
        "recon",
        &p("r8.h5"),
        "-p",
        "zero-filled",
        "-o",
        &p("zf.nii.gz"),
        "-q",
    ]);
    let clean = field(
        &basin_ok(&["score", &p("clean.nii.gz"), "--json", "-q"]),
        "z",
    );
    let aliased = field(&basin_ok(&["score", &p("zf.nii.gz"), "--json", "-q"]), "z");
    eprintln!("clean z {clean:?}\naliased z {aliased:?}");
    assert_eq!(clean.len(), 8);
    // Measured: clean 0.6–2.1, aliased 3.0–4.8.
    for (c, a) in clean.iter().zip(&aliased) {
        assert!(*c <= 3.5, "a clean EPI slice flagged: z {c}");
        assert!(a > c, "aliased z {a} not above clean z {c}");
    }
}
