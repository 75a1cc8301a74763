//! `basin phantom --suite` and `basin compare` end to end: the metrics of every case and method
//! agree with an independent implementation (NumPy PSNR/NMSE, scikit-image SSIM, SciPy's LoG
//! filtering for HFEN, SciPy's Wilcoxon test) on real outputs; BART runs as an external tool;
//! precomputed images are scored; a failing tool fails only its cells (exit 1); a rerun reuses
//! every unchanged cell and recomputes a changed one; the report's index.html loads every figure
//! in a real headless browser (Debian's Chromium); and the Wilcoxon test matches SciPy on
//! synthetic differences with ties and zeros.

use basin_tests::{basin, basin_bin, basin_ok, python};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const BART_TOOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/bart-pics.py");

/// The independent check of metrics.csv: for every row with metrics, recomputes NMSE, PSNR,
/// SSIM, raw NMSE and HFEN from the NIfTI files; prints the largest deviations; asserts the
/// tolerances of the issue (0.01 dB, 0.001 SSIM) and 1e-4 relative for NMSE and HFEN.
const CHECK_METRICS: &str = r#"
import csv, sys, os
import numpy as np, nibabel as nib
from scipy import ndimage
from skimage.metrics import structural_similarity
suite, report, images = sys.argv[1], sys.argv[2], sys.argv[3]
def load(p):  # [z, y, x] as basin reads it: slices along the third NIfTI axis
    return np.abs(np.asarray(nib.load(p).dataobj, dtype=np.float64)).transpose(2, 1, 0)
def ref_of(case):
    return load(os.path.join(suite, case + "_truth.nii.gz"))
def log_kernel(n=15, s=1.5):  # MATLAB fspecial('log', n, s)
    c = (n - 1) / 2.0
    y, x = np.mgrid[0:n, 0:n] - c
    r2 = x * x + y * y
    g = np.exp(-r2 / (2 * s * s)); g /= g.sum()
    h = g * (r2 - 2 * s * s) / s ** 4
    return h - h.mean()
K = log_kernel()
worst = dict(psnr=0.0, ssim=0.0, nmse=0.0, nmse_raw=0.0, hfen=0.0)
rows = list(csv.DictReader(open(os.path.join(report, "metrics.csv"))))
checked = 0
for r in rows:
    if not r["psnr_db"]:
        continue
    if r["method"] == "vendor":
        img = load(os.path.join(images, r["case"] + ".nii.gz"))
    else:
        img = load(os.path.join(report, "images", r["case"], r["method"] + ".nii.gz"))
    ref = ref_of(r["case"])
    a = (img * ref).sum() / (img * img).sum()
    x = a * img
    mse = ((x - ref) ** 2).mean()
    psnr = 10 * np.log10(ref.max() ** 2 / mse)
    nmse = ((x - ref) ** 2).sum() / (ref ** 2).sum()
    nmse_raw = ((img - ref) ** 2).sum() / (ref ** 2).sum()
    ssim = np.mean([structural_similarity(ref[z], x[z], data_range=ref.max(), win_size=7) for z in range(ref.shape[0])])
    lx = np.stack([ndimage.correlate(x[z], K, mode="constant") for z in range(ref.shape[0])])
    lr = np.stack([ndimage.correlate(ref[z], K, mode="constant") for z in range(ref.shape[0])])
    hfen = np.sqrt(((lx - lr) ** 2).sum() / (lr ** 2).sum())
    d = dict(psnr=abs(psnr - float(r["psnr_db"])), ssim=abs(ssim - float(r["ssim"])),
             nmse=abs(nmse - float(r["nmse"])) / nmse, nmse_raw=abs(nmse_raw - float(r["nmse_raw"])) / nmse_raw,
             hfen=abs(hfen - float(r["hfen"])) / hfen)
    for k in worst:
        worst[k] = max(worst[k], d[k])
    checked += 1
print("checked", checked, "worst", worst)
assert checked > 0
assert worst["psnr"] < 0.01 and worst["ssim"] < 0.001, worst
assert worst["nmse"] < 1e-4 and worst["nmse_raw"] < 1e-4 and worst["hfen"] < 1e-4, worst
"#;

/// The paired PSNR/SSIM rows of summary.md against SciPy's Wilcoxon test on the metrics.csv
/// values (p printed to 4 decimals) and NumPy's mean.
const CHECK_PAIRED: &str = r#"
import csv, sys, os, re
import numpy as np
from scipy.stats import wilcoxon
report = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(report, "metrics.csv"))))
val = {(r["case"], r["method"], k): float(r[c]) for r in rows for k, c in (("PSNR dB", "psnr_db"), ("SSIM", "ssim")) if r[c]}
n = 0
for line in open(os.path.join(report, "summary.md")):
    m = re.match(r"\| (PSNR dB|SSIM) \| (\S+) \| (\S+) \| (\d+) \| ([+-][\d.]+) ± \S+ \| (\S+) \|", line)
    if not m:
        continue
    metric, a, b, cnt, mean, p = m.groups()
    cases = sorted({c for (c, meth, k) in val if meth == a and k == metric} & {c for (c, meth, k) in val if meth == b and k == metric})
    d = np.array([val[(c, a, metric)] - val[(c, b, metric)] for c in cases])
    assert len(d) == int(cnt), (line, len(d))
    assert abs(d.mean() - float(mean)) < (0.006 if metric == "PSNR dB" else 6e-5), (line, d.mean())
    if p != "–":
        ps = wilcoxon(d).pvalue
        assert abs(ps - float(p)) < 6e-5, (line, ps)
    n += 1
print("paired rows", n)
assert n > 0
"#;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// "N cells (cases × methods), R reused" from basin compare's stderr.
fn reused(o: &std::process::Output) -> (usize, usize) {
    let e = stderr(o);
    let line = e
        .lines()
        .find(|l| l.contains("cells (cases × methods)"))
        .unwrap_or_else(|| panic!("no plan line in:\n{e}"));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn compare_on_a_suite_agrees_with_independent_metrics_resumes_and_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("suite");
    let s = suite.to_str().unwrap();
    basin_ok(&[
        "phantom",
        "--suite",
        s,
        "--matrix",
        "128",
        "--accelerations",
        "4",
        "-q",
    ]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(suite.join("suite.json")).unwrap()).unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4, "{manifest}");
    // A second system's images: basin's CG-SENSE written beforehand, one file per case.
    let vendor = tmp.path().join("vendor");
    std::fs::create_dir(&vendor).unwrap();
    // Its own data-consistency residual over the noise, per case (basin recon --json).
    let mut own_residual = std::collections::HashMap::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let json = basin_ok(&[
            "recon",
            suite.join(format!("{name}.h5")).to_str().unwrap(),
            "-o",
            vendor.join(format!("{name}.nii.gz")).to_str().unwrap(),
            "-p",
            "sense",
            "--quiet",
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let r = v["slices"][0]["residual_over_noise"]
            .as_f64()
            .unwrap_or_else(|| panic!("no residual_over_noise in {v}"));
        own_residual.insert(name.to_string(), r);
    }
    let report = tmp.path().join("report");
    let r = report.to_str().unwrap();
    let bart = format!("bart=/usr/bin/python3 {BART_TOOL} {{in}} {{out}}");
    let images = format!("vendor={}", vendor.display());
    let base = [
        "compare",
        s,
        "-p",
        "zero-filled,cs-tv",
        "--tool",
        bart.as_str(),
        "--images",
        images.as_str(),
        "-o",
        r,
    ];
    let run = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        let o = Command::new(basin_bin())
            .args(&a)
            .env("BASIN", basin_bin())
            .output()
            .expect("run basin compare");
        o
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(reused(&first), (16, 0));
    let csv = std::fs::read_to_string(report.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 17, "{csv}");
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        // Every cell has metrics, a prior z and a data residual; lesion cases have the lesion
        // contrast.
        assert!(
            f[2].parse::<f64>().is_ok() && f[8].parse::<f64>().is_ok(),
            "{line}"
        );
        assert_eq!(f[0].ends_with("_lesions"), !f[9].is_empty(), "{line}");
        let dc: f64 = f[11]
            .parse()
            .unwrap_or_else(|_| panic!("no residual: {line}"));
        assert!(dc > 0.5 && dc.is_finite(), "{line}");
        // The precomputed CG-SENSE magnitudes, given CG-SENSE's phase back, explain the data
        // exactly as basin recon's own solve reported.
        if f[1] == "vendor" {
            let own = own_residual[f[0]];
            assert!((dc - own).abs() < 1e-3 * own, "{line}: recon said {own}");
        }
    }
    // BART's pipeline beats zero filling on every case (its image is on basin's grid).
    let psnr = |case: &str, m: &str| -> f64 {
        csv.lines()
            .find(|l| l.starts_with(&format!("{case},{m},")))
            .and_then(|l| l.split(',').nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{case} {m} in {csv}"))
    };
    for c in cases {
        let n = c["name"].as_str().unwrap();
        assert!(psnr(n, "bart") > psnr(n, "zero-filled") + 1.5, "{n}: {csv}");
    }
    let out = python(CHECK_METRICS, &[s, r, vendor.to_str().unwrap()]);
    eprintln!("{out}");
    let out = python(CHECK_PAIRED, &[r]);
    eprintln!("{out}");

    // A rerun reuses every cell; a changed precomputed image recomputes its cell only.
    let again = run(&[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(reused(&again), (16, 16));
    let changed = vendor.join(format!("{}.nii.gz", cases[0]["name"].as_str().unwrap()));
    let copy = vendor.join("other.nii.gz");
    std::fs::copy(
        vendor.join(format!("{}.nii.gz", cases[1]["name"].as_str().unwrap())),
        &copy,
    )
    .unwrap();
    std::fs::rename(&copy, &changed).unwrap();
    let third = run(&[]);
    assert_eq!(reused(&third), (16, 15));
    // A cell made with other prior weights (a build with another embedded model: its EBM
    // images and prior z differ) is recomputed, not reused.
    let cell = report
        .join("cells")
        .join(cases[1]["name"].as_str().unwrap())
        .join("cs-tv.json");
    let text = std::fs::read_to_string(&cell).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sha = v["key"]["prior_sha256"]
        .as_str()
        .expect("the key names the prior");
    assert_eq!(sha.len(), 64, "{sha}");
    v["key"]["prior_sha256"] = "0".repeat(64).into();
    std::fs::write(&cell, v.to_string()).unwrap();
    let fourth = run(&[]);
    assert_eq!(reused(&fourth), (16, 15));

    // A failing tool fails its cells only: exit 1, the others reused, the failure listed.
    let o = Command::new(basin_bin())
        .args(base)
        .args(["--tool", "broken=false {in} {out}"])
        .env("BASIN", basin_bin())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(reused(&o), (20, 16));
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(
        md.contains("## Failures") && md.contains("broken on "),
        "{md}"
    );

    browser_check(&report);
}

/// Serves the report on 127.0.0.1 and opens a page holding index.html in an iframe in headless
/// Chromium: every image of index.html must have loaded and decoded (complete, natural width >
/// 0), both tables must be there, and the server must have answered every figure with 200.
fn browser_check(report: &Path) {
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    assert!(
        !index.contains("http://") && !index.contains("https://"),
        "network fetches"
    );
    let figures = index.matches("<img ").count();
    assert!(figures >= 6, "{figures} figures");
    std::fs::write(
        report.join("check.html"),
        r#"<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="f" src="index.html" width="1200" height="800"></iframe>
<script>
document.getElementById('f').addEventListener('load', function () {
  const d = this.contentDocument;
  const imgs = Array.from(d.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const tables = ['means', 'paired'].filter(id => d.getElementById(id) && d.getElementById(id).rows.length > 1);
  document.getElementById('result').textContent =
    'RESULT images=' + imgs.length + ' broken=' + bad.length + ' [' + bad.join(' ') + '] tables=' + tables.length;
});
</script></body></html>"#,
    )
    .unwrap();
    let mut server = Command::new("/usr/bin/python3")
        .args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 -m http.server");
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port: u16 = first
        .split_whitespace()
        .find_map(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    let profile = tempfile::tempdir().unwrap();
    let o = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("http://127.0.0.1:{port}/check.html"))
        .output()
        .expect("chromium (Debian's package, installed by .ci/install-deps)");
    let _ = server.kill();
    let log = {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut s);
        s
    };
    let _ = server.wait();
    let dom = String::from_utf8_lossy(&o.stdout);
    let result = dom
        .lines()
        .find(|l| l.contains("RESULT"))
        .unwrap_or_else(|| panic!("no result in the page:\n{dom}\n{}", stderr(&o)));
    assert!(
        result.contains(&format!("images={figures} broken=0 []")) && result.contains("tables=2"),
        "{result}"
    );
    // Every figure index.html names was served (200); the only miss allowed is the favicon
    // browsers ask for on their own.
    for src in index.split("<img src=\"").skip(1) {
        let src = &src[..src.find('"').unwrap()];
        assert!(
            log.contains(&format!("\"GET /{src} HTTP/1.1\" 200")),
            "{src} not served:\n{log}"
        );
    }
    let misses: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\" 404 ") && !l.contains("/favicon.ico"))
        .collect();
    assert!(misses.is_empty(), "{misses:?}");
}

/// Rust's Wilcoxon p-values against SciPy's on synthetic differences: small n (exact), ties,
/// zeros (normal approximation) and n = 60.
#[test]
fn wilcoxon_matches_scipy() {
    let mut rng = basin_core::rng::Rng::new(7);
    let mut sets: Vec<Vec<f64>> = Vec::new();
    for n in [5usize, 9, 20, 60] {
        sets.push((0..n).map(|_| rng.normal() + 0.4).collect());
    }
    // Ties and a zero: the normal approximation with the tie correction.
    sets.push(vec![1.0, 2.0, 2.0, -1.0, 3.0, 0.0, 4.0, -2.0, 2.0, 5.0]);
    // Ties without zeros (exact distribution, as SciPy does).
    sets.push(vec![0.5, 0.5, -0.25, 1.0, 1.0, 1.5, -0.5]);
    let text: Vec<String> = sets
        .iter()
        .map(|s| {
            s.iter()
                .map(|v| format!("{v:.17e}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let out = python(
        "import sys\nfrom scipy.stats import wilcoxon\nfor a in sys.argv[1:]:\n    print(repr(wilcoxon([float(v) for v in a.split(',')]).pvalue))",
        &text.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    );
    let want: Vec<f64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(want.len(), sets.len());
    for (s, w) in sets.iter().zip(&want) {
        let (_, p) = basin_compare::stats::wilcoxon(s).expect("non-zero differences");
        assert!(
            (p - w).abs() < 1e-6 * w.max(1e-3),
            "n={}: {p} vs SciPy {w}",
            s.len()
        );
    }
}

/// Usage errors refuse before any work: a report directory that is the dataset, a directory
/// that is not a report, no method, a tool template without {in}/{out}.
#[test]
fn compare_refuses_bad_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    std::fs::create_dir(&d).unwrap();
    basin_tests::small_phantom(&d, "a.h5");
    let ds = d.to_str().unwrap();
    let other = tmp.path().join("notes");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "mine").unwrap();
    let rep = tmp.path().join("rep");
    for (args, what) in [
        (
            vec!["compare", ds, "-p", "sense", "-o", ds],
            "is an input directory",
        ),
        (
            vec!["compare", ds, "-p", "sense", "-o", other.to_str().unwrap()],
            "not a basin compare report",
        ),
        (
            vec!["compare", ds, "-o", rep.to_str().unwrap()],
            "no method",
        ),
        (
            vec![
                "compare",
                ds,
                "--tool",
                "x=cp a b",
                "-o",
                rep.to_str().unwrap(),
            ],
            "must contain {in} and {out}",
        ),
    ] {
        let o = basin(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(what), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        std::fs::read_to_string(other.join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(!rep.exists());
}

/// A fastMRI-style dataset written by h5py: k-space with a 2× oversampled readout, and the
/// file's `reconstruction_rss` computed the way the fastMRI dataset defines it (orthonormal
/// centred 2D IFFT, root-sum-of-squares over coils, `center_crop` to the reconstruction
/// matrix). One fully sampled case, one with every other phase-encoding column kept.
const WRITE_FASTMRI: &str = r#"
import sys, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(11)
ny, nx, crop = 96, 48, 40   # stored [rows = readout (2x oversampled), columns = phase encoding]
xml = ('<?xml version="1.0"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>'
       '<encodedSpace><matrixSize><x>96</x><y>48</y><z>1</z></matrixSize><fieldOfView_mm><x>240</x><y>120</y><z>4</z></fieldOfView_mm></encodedSpace>'
       '<reconSpace><matrixSize><x>40</x><y>40</y><z>1</z></matrixSize><fieldOfView_mm><x>100</x><y>100</y><z>4</z></fieldOfView_mm></reconSpace>'
       '<trajectory>cartesian</trajectory></encoding></ismrmrdHeader>')
y, x = np.mgrid[-ny // 2:ny // 2, -nx // 2:nx // 2]
def obj(s):
    o = ((x / 17.0) ** 2 + (y / 19.0) ** 2 < 1) * (1.0 + 0.4 * np.cos(x / (3.0 + s)) * np.sin(y / 4.0))
    o += 0.6 * (((x - 5) / 4.0) ** 2 + ((y + 6) / 5.0) ** 2 < 1)
    return o * np.exp(1j * (x + y) / 40.0)
coils = np.stack([np.exp(-((x - 30 * np.cos(a)) ** 2 + (y - 30 * np.sin(a)) ** 2) / 1500.0) * np.exp(1j * a)
                  for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)])
def fft2c(im):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(im, axes=(-2, -1)), norm='ortho'), axes=(-2, -1))
def ifft2c(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm='ortho'), axes=(-2, -1))
def center_crop(a, shape):  # fastMRI's transforms.center_crop
    w0 = (a.shape[-2] - shape[0]) // 2
    h0 = (a.shape[-1] - shape[1]) // 2
    return a[..., w0:w0 + shape[0], h0:h0 + shape[1]]
# The finite resolution of a real acquisition: a smooth k-space window, so that the outer
# k-space holds noise (what basin's noise estimate without a noise scan assumes).
u = np.fft.fftshift(np.fft.fftfreq(ny))[:, None]; v = np.fft.fftshift(np.fft.fftfreq(nx))[None, :]
win = np.exp(-(u ** 2 + v ** 2) / (2 * 0.15 ** 2))
k = np.stack([fft2c(coils * obj(s)) * win for s in range(2)])
k += 0.002 * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))
k = k.astype(np.complex64)
rss = center_crop(np.sqrt((np.abs(ifft2c(k.astype(np.complex128))) ** 2).sum(1)), (crop, crop)).astype(np.float32)
mask = np.zeros(nx, np.float32); mask[::2] = 1; mask[nx // 2 - 5:nx // 2 + 5] = 1
for name, m in [('full', np.ones(nx, np.float32)), ('r2', mask)]:
    with h5py.File(d + '/' + name + '.h5', 'w') as f:
        f['kspace'] = k * m[None, None, None, :]
        f['mask'] = m
        f['ismrmrd_header'] = xml
        f['reconstruction_rss'] = rss
"#;

/// basin's images in the report (NIfTI, or a DICOM directory for the `dicom` method) cropped
/// as fastMRI crops, against the file's own reconstruction_rss: PSNR (NumPy) and SSIM
/// (scikit-image) after the least-squares scale; prints the largest deviations.
const CHECK_FASTMRI: &str = r#"
import csv, sys, os, glob
import numpy as np, nibabel as nib, h5py, pydicom
from skimage.metrics import structural_similarity
data, report, dcm = sys.argv[1], sys.argv[2], sys.argv[3]
def center_crop(a, shape):
    w0 = (a.shape[-2] - shape[0]) // 2
    h0 = (a.shape[-1] - shape[1]) // 2
    return a[..., w0:w0 + shape[0], h0:h0 + shape[1]]
worst = [0.0, 0.0]
rows = list(csv.DictReader(open(os.path.join(report, "metrics.csv"))))
for r in rows:
    ref = h5py.File(os.path.join(data, r["case"] + ".h5"), "r")["reconstruction_rss"][()].astype(np.float64)
    if r["method"] == "dicom":
        ds = [pydicom.dcmread(p) for p in glob.glob(os.path.join(dcm, r["case"], "*"))]
        ds.sort(key=lambda d: float(np.dot(d.ImagePositionPatient, np.cross(d.ImageOrientationPatient[:3], d.ImageOrientationPatient[3:]))))
        img = np.stack([d.pixel_array * float(d.get("RescaleSlope", 1)) + float(d.get("RescaleIntercept", 0)) for d in ds])
    else:
        img = np.abs(np.asarray(nib.load(os.path.join(report, "images", r["case"], r["method"] + ".nii.gz")).dataobj, dtype=np.float64)).transpose(2, 1, 0)
    img = center_crop(img, ref.shape[-2:])
    a = (img * ref).sum() / (img * img).sum()
    x = a * img
    psnr = 10 * np.log10(ref.max() ** 2 / ((x - ref) ** 2).mean())
    ssim = np.mean([structural_similarity(ref[z], x[z], data_range=ref.max(), win_size=7) for z in range(ref.shape[0])])
    if psnr < 100:  # above, both sides measure float32 rounding
        worst[0] = max(worst[0], abs(psnr - float(r["psnr_db"])))
    worst[1] = max(worst[1], abs(ssim - float(r["ssim"])))
    print(r["case"], r["method"], psnr, ssim)
print("worst", worst)
assert worst[0] < 0.01 and worst[1] < 0.001, worst
"#;

#[test]
fn fastmri_reconstruction_rss_is_the_reference_and_dicom_images_are_scored() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    python(WRITE_FASTMRI, &[data.to_str().unwrap()]);
    // Another system's images as DICOM series directories: basin's own CG-SENSE.
    let dcm = tmp.path().join("dcm");
    std::fs::create_dir(&dcm).unwrap();
    for case in ["full", "r2"] {
        basin_ok(&[
            "recon",
            data.join(format!("{case}.h5")).to_str().unwrap(),
            "-o",
            &format!("{}/{case}/", dcm.display()),
            "-p",
            "sense",
            "--quiet",
        ]);
    }
    let report = tmp.path().join("report");
    let images = format!("dicom={}", dcm.display());
    let o = basin(&[
        "compare",
        data.to_str().unwrap(),
        "-p",
        "zero-filled,sense",
        "--images",
        &images,
        "--no-prior-score",
        "-o",
        report.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(report.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    let psnr = |case: &str, m: &str| -> f64 {
        csv.lines()
            .find(|l| l.starts_with(&format!("{case},{m},")))
            .and_then(|l| l.split(',').nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{case} {m} in {csv}"))
    };
    // Fully sampled: basin's zero-filled RSS is the reference up to float32 rounding (the
    // orientation and the crop agree with fastMRI's).
    assert!(psnr("full", "zero-filled") > 80.0, "{csv}");
    // Twofold undersampled: SENSE undoes the aliasing that zero filling keeps.
    assert!(
        psnr("r2", "sense") > psnr("r2", "zero-filled") + 5.0,
        "{csv}"
    );
    // The DICOM series scores as the NIfTI of the same reconstruction does, up to DICOM's
    // 16-bit quantisation.
    for case in ["full", "r2"] {
        let (a, b) = (psnr(case, "dicom"), psnr(case, "sense"));
        assert!((a - b).abs() < 0.1, "{case}: DICOM {a} vs NIfTI {b}\n{csv}");
    }
    let out = python(
        CHECK_FASTMRI,
        &[
            data.to_str().unwrap(),
            report.to_str().unwrap(),
            dcm.to_str().unwrap(),
        ],
    );
    eprintln!("{out}");
    // The case figures were drawn on the reference's grid.
    assert!(report.join("figures/case-r2.png").is_file());
}
