//! Helpers for basin's end-to-end tests: locating the `basin` binary, running Debian's
//! `/usr/bin/python3` (with h5py, nibabel, numpy) and external tools, and BART's `.cfl/.hdr`
//! format as a bridge for comparisons.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of the `basin` binary built alongside the tests (`target/<profile>/basin`).
pub fn basin_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = dir.join("basin");
    assert!(
        bin.is_file(),
        "{} not found: build it with `cargo build -p basin-cli` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// Runs `basin` with `args`.
pub fn basin(args: &[&str]) -> Output {
    Command::new(basin_bin())
        .args(args)
        .output()
        .expect("run basin")
}

/// A phantom acquisition written by `basin phantom ARGS -o dir/name`.
pub fn phantom(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let f = dir.join(name);
    let mut all = vec!["phantom"];
    all.extend_from_slice(args);
    all.extend(["-o", f.to_str().expect("UTF-8 path")]);
    basin_ok(&all);
    f
}

/// A small phantom acquisition (32², 2 coils) written by `basin phantom` as `dir/name`.
pub fn small_phantom(dir: &Path, name: &str) -> PathBuf {
    phantom(dir, name, &["--matrix", "32", "--coils", "2"])
}

/// The names in a directory, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    v.sort();
    v
}

/// Runs `basin` and panics with its stderr unless it succeeds.
pub fn basin_ok(args: &[&str]) -> String {
    let out = basin(args);
    assert!(
        out.status.success(),
        "basin {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The interpreter of the virtual environment `.ci/install-deps` makes under `target/pyenv`,
/// which has the Python `ismrmrd` package (PyPI 1.15.0).
pub fn venv_python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pyenv/bin/python");
    assert!(
        p.is_file(),
        "{} missing: run `bash .ci/install-deps`",
        p.display()
    );
    p
}

/// Debian's interpreter, which sees python3-h5py, python3-nibabel and python3-numpy.
pub const PYTHON: &str = "/usr/bin/python3";

/// Runs a Python script with arguments; returns stdout, panics with stderr on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{PYTHON}: {e} (the test scripts install python3-h5py, python3-nibabel)")
        });
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs an external tool, panicking with a clear message when it is missing or fails.
pub fn tool(name: &str, args: &[&str]) -> Output {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e} (installed by the test script)"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// BART's `.cfl/.hdr` format, shared with the benchmarks.
pub use basin_benches::{read_cfl, write_cfl};

/// Generates an ISMRMRD file with Debian's `ismrmrd_generate_cartesian_shepp_logan`.
pub fn generate_shepp_logan(out: &Path, matrix: usize, coils: usize, accel: usize, noise: f64) {
    let _ = std::fs::remove_file(out);
    tool(
        "ismrmrd_generate_cartesian_shepp_logan",
        &[
            "-m",
            &matrix.to_string(),
            "-c",
            &coils.to_string(),
            "-a",
            &accel.to_string(),
            "-O",
            "2",
            "-n",
            &noise.to_string(),
            "-C",
            "-o",
            out.to_str().expect("utf-8 path"),
        ],
    );
}
