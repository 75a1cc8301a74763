//! `basin batch` end to end: shards started at once write each output exactly once, reruns skip
//! finished rows, a changed protocol redoes only its row, a bad row fails alone (exit 1), an
//! output basin batch did not write is refused, leftovers of a killed run are cleaned, and each
//! output equals `basin recon`'s.

use basin_tests::{basin, basin_bin, phantom};
use std::path::{Path, PathBuf};
use std::process::Command;

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("read JSON")).expect("parse JSON")
}

/// A small acquisition `dir/name` (32², 2 coils, fully sampled) with the noise of `seed`.
fn scan(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let seed = seed.to_string();
    phantom(
        dir,
        name,
        &["--matrix", "32", "--coils", "2", "--seed", &seed],
    )
}

/// 9 small acquisitions (32², 2 coils, fully sampled; distinct noise) and a manifest writing
/// out/sN.nii.gz with `sense`, except row 5 (zero-filled).
fn setup(dir: &Path) -> PathBuf {
    let mut csv = String::from("input,output,protocol\n");
    for i in 1..=9 {
        scan(dir, &format!("s{i}.h5"), i);
        let protocol = if i == 5 { "zero-filled" } else { "" };
        csv.push_str(&format!("s{i}.h5,out/s{i}.nii.gz,{protocol}\n"));
    }
    let m = dir.join("scans.csv");
    std::fs::write(&m, csv).expect("write the manifest");
    m
}

fn batch(args: &[&str]) -> std::process::Output {
    let mut all = vec!["batch"];
    all.extend_from_slice(args);
    basin(&all)
}

/// `basin batch MANIFEST -p sense --backend cpu --summary dir/NAME`, which must succeed; its
/// summary.
fn rerun(dir: &Path, m: &Path, name: &str) -> serde_json::Value {
    let summary = dir.join(name);
    let o = batch(&[
        m.to_str().unwrap(),
        "-p",
        "sense",
        "--backend",
        "cpu",
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    json(&summary)
}

fn statuses(summary: &serde_json::Value) -> Vec<(u64, String)> {
    summary["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().expect("row"),
                r["status"].as_str().expect("status").to_string(),
            )
        })
        .collect()
}

#[test]
fn shards_at_once_write_each_output_once_and_reruns_skip() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let m = setup(dir);
    // Three shards started at the same time.
    let running: Vec<_> = (0..3)
        .map(|i| {
            Command::new(basin_bin())
                .args([
                    "batch",
                    m.to_str().unwrap(),
                    "-p",
                    "sense",
                    "--backend",
                    "cpu",
                ])
                .args(["--shard", &format!("{i}/3"), "--summary"])
                .arg(dir.join(format!("shard{i}.json")))
                .spawn()
                .expect("start basin batch")
        })
        .collect();
    for mut c in running {
        assert!(c.wait().expect("wait").success());
    }
    let mut done_rows = Vec::new();
    for i in 0..3u64 {
        let s = json(&dir.join(format!("shard{i}.json")));
        assert_eq!(s["schema"], 1);
        assert_eq!(s["shard"]["index"], i);
        assert_eq!(s["shard"]["count"], 3);
        for (row, status) in statuses(&s) {
            assert_eq!(status, "done", "shard {i} row {row}");
            assert_eq!((row - 1) % 3, i, "row {row} ran in shard {i}");
            done_rows.push(row);
        }
    }
    done_rows.sort();
    assert_eq!(
        done_rows,
        (1..=9).collect::<Vec<u64>>(),
        "each row exactly once"
    );
    for i in 1..=9 {
        let out = dir.join(format!("out/s{i}.nii.gz"));
        assert!(out.is_file(), "{} missing", out.display());
        let rec = json(&dir.join(format!("out/s{i}.nii.gz.basin.json")));
        assert_eq!(rec["state"], "done");
        assert_eq!(rec["input_sha256"].as_str().map(str::len), Some(64));
        assert_eq!(
            rec["protocol_name"],
            if i == 5 { "zero-filled" } else { "sense" }
        );
    }
    // Nothing left behind: no locks, no temporaries.
    let leftovers: Vec<String> = basin_tests::dir_names(&dir.join("out"))
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The same output as `basin recon` of that row.
    let r = dir.join("recon_s4.nii.gz");
    let o = basin(&[
        "recon",
        dir.join("s4.h5").to_str().unwrap(),
        "-o",
        r.to_str().unwrap(),
        "-p",
        "sense",
        "--backend",
        "cpu",
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = std::fs::read(&r).expect("read recon output");
    let b = std::fs::read(dir.join("out/s4.nii.gz")).expect("read batch output");
    assert_eq!(a, b, "basin batch and basin recon wrote different files");

    // A rerun skips every row, each well under a second.
    let s = rerun(dir, &m, "rerun.json");
    assert_eq!(s["skipped"], 9, "{s}");
    for r in s["rows"].as_array().unwrap() {
        let secs = r["seconds"].as_f64().unwrap();
        assert!(secs < 0.5, "skipping row {} took {secs} s", r["row"]);
    }

    // Row 5's protocol changes (zero-filled → sense, through -p): only row 5 is redone.
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("zero-filled", "");
    std::fs::write(&m, text).unwrap();
    let before = std::fs::read(dir.join("out/s5.nii.gz")).unwrap();
    let s = rerun(dir, &m, "changed.json");
    for (row, status) in statuses(&s) {
        assert_eq!(
            status,
            if row == 5 { "done" } else { "skipped" },
            "row {row}"
        );
    }
    assert_ne!(before, std::fs::read(dir.join("out/s5.nii.gz")).unwrap());
    assert_eq!(
        json(&dir.join("out/s5.nii.gz.basin.json"))["protocol_name"],
        "sense"
    );

    // An input touched but unchanged is skipped (its checksum matches); one with new content
    // (another noise seed) is redone.
    let s1 = dir.join("s1.h5");
    let same = std::fs::read(&s1).unwrap();
    std::fs::write(&s1, &same).unwrap();
    scan(dir, "s1_new.h5", 42);
    assert_eq!(rerun(dir, &m, "touched.json")["skipped"], 9);
    std::fs::rename(dir.join("s1_new.h5"), &s1).unwrap();
    for (row, status) in statuses(&rerun(dir, &m, "new_input.json")) {
        assert_eq!(
            status,
            if row == 1 { "done" } else { "skipped" },
            "row {row}"
        );
    }
}

#[test]
fn a_bad_row_fails_alone_and_foreign_outputs_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    for i in 1..=2 {
        scan(dir, &format!("s{i}.h5"), i);
    }
    std::fs::write(dir.join("corrupt.h5"), b"not HDF5 at all").unwrap();
    std::fs::create_dir(dir.join("out")).unwrap();
    // An output someone else wrote, and what a killed run left next to another.
    std::fs::write(dir.join("out/s2.nii"), b"someone's image").unwrap();
    std::fs::write(dir.join("out/.tmp-999999-s1.nii"), b"half written").unwrap();
    let m = dir.join("m.csv");
    std::fs::write(
        &m,
        "input,output\ns1.h5,out/s1.nii\nmissing.h5,out/missing.nii\ncorrupt.h5,out/corrupt.nii\ns2.h5,out/s2.nii\n",
    )
    .unwrap();
    let summary = dir.join("summary.json");
    let o = batch(&[
        m.to_str().unwrap(),
        "-p",
        "sense",
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = json(&summary);
    assert_eq!(
        statuses(&s),
        vec![
            (1, "done".into()),
            (2, "failed".into()),
            (3, "failed".into()),
            (4, "failed".into())
        ]
    );
    let rows = s["rows"].as_array().unwrap();
    assert!(rows[1]["error"].as_str().unwrap().contains("no such file"));
    assert_eq!(rows[1]["error_class"], "input");
    assert_eq!(rows[2]["error_class"], "input");
    assert!(
        rows[3]["error"]
            .as_str()
            .unwrap()
            .contains("no completion record"),
        "{}",
        rows[3]
    );
    assert_eq!(rows[3]["error_class"], "output");
    assert!(dir.join("out/s1.nii").is_file());
    assert!(
        !dir.join("out/.tmp-999999-s1.nii").exists(),
        "stale temporary kept"
    );
    assert_eq!(
        std::fs::read(dir.join("out/s2.nii")).unwrap(),
        b"someone's image",
        "a foreign output was replaced"
    );
    // --force replaces it; the bad rows still fail.
    let o = batch(&[m.to_str().unwrap(), "-p", "sense", "--force", "-q"]);
    assert_eq!(o.status.code(), Some(1));
    assert_ne!(
        std::fs::read(dir.join("out/s2.nii")).unwrap(),
        b"someone's image"
    );
}

#[test]
fn glob_batches_and_usage_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    for i in 1..=2 {
        scan(dir, &format!("s{i}.h5"), i);
    }
    let pat = format!("{}/*.h5", dir.display());
    let out = format!("{}/nii/{{stem}}.nii.gz", dir.display());
    let o = batch(&[
        "--inputs",
        &pat,
        "--output-pattern",
        &out,
        "-p",
        "zero-filled",
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.join("nii/s1.nii.gz").is_file() && dir.join("nii/s2.nii.gz").is_file());
    // Usage errors: exit 2, nothing written.
    let m = dir.join("dup.csv");
    std::fs::write(&m, "input,output\ns1.h5,x.nii\ns2.h5,x.nii\n").unwrap();
    for args in [
        vec![m.to_str().unwrap()],
        vec![m.to_str().unwrap(), "--shard", "3/3"],
        vec!["--inputs", &pat, "--output-pattern", "same.nii"],
    ] {
        let o = batch(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(!dir.join("x.nii").exists());
    let o = batch(&[dir.join("none.csv").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
}

/// `--jobs 2`: rows reconstructed two at a time on split thread pools all finish, and each
/// output agrees with `basin recon`'s of the same file (the default EBM protocol) to float
/// rounding: nibabel reads both, largest difference ≤ 1e-4 of the image's maximum (on 256²
/// phantoms a row inside a one-thread pool differed from `basin recon` by 4e-6).
#[test]
fn rows_run_two_at_a_time_agree_with_recon() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("input,output\n");
    for i in 1..=4 {
        scan(d, &format!("s{i}.h5"), 20 + i);
        csv.push_str(&format!("s{i}.h5,out/s{i}.nii.gz\n"));
    }
    let m = d.join("m.csv");
    std::fs::write(&m, csv).unwrap();
    let summary = d.join("summary.json");
    let o = batch(&[
        m.to_str().unwrap(),
        "--jobs",
        "2",
        "--backend",
        "cpu",
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&summary)["done"], 4);
    let mut args = vec![d.to_str().unwrap().to_string()];
    for i in 1..=4 {
        let r = d.join(format!("r{i}.nii.gz"));
        let o = basin(&[
            "recon",
            d.join(format!("s{i}.h5")).to_str().unwrap(),
            "-o",
            r.to_str().unwrap(),
            "--backend",
            "cpu",
            "-q",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        args.push(i.to_string());
    }
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = basin_tests::python(
        r#"
import sys, nibabel as nib, numpy as np
d = sys.argv[1]
worst = 0.0
for i in sys.argv[2:]:
    a = np.asarray(nib.load(f"{d}/out/s{i}.nii.gz").dataobj, dtype=np.float64)
    b = np.asarray(nib.load(f"{d}/r{i}.nii.gz").dataobj, dtype=np.float64)
    assert a.shape == b.shape
    worst = max(worst, float(np.abs(a - b).max() / np.abs(b).max()))
print(worst)
"#,
        &args,
    );
    let worst: f64 = out.trim().parse().unwrap();
    println!("--jobs 2 vs recon: largest difference {worst:.2e} of the maximum");
    assert!(
        worst <= 1e-4,
        "--jobs 2 output differs from recon by {worst}"
    );
}
