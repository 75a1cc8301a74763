//! Helpers for basin's end-to-end tests: locating the `basin` binary, running Debian's
//! `/usr/bin/python3` (with h5py, nibabel, numpy) and external tools, and BART's `.cfl/.hdr`
//! format as a bridge for comparisons.

use num_complex::Complex32;
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

/// Reads a BART `.cfl/.hdr` pair (`base` without extension): dims (first = fastest) and data.
pub fn read_cfl(base: &Path) -> (Vec<usize>, Vec<Complex32>) {
    let hdr = std::fs::read_to_string(base.with_extension("hdr")).expect("read .hdr");
    let line = hdr
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("dims line");
    let dims: Vec<usize> = line
        .split_whitespace()
        .map(|v| v.parse().expect("dim"))
        .collect();
    let bytes = std::fs::read(base.with_extension("cfl")).expect("read .cfl");
    let n: usize = dims.iter().product();
    assert_eq!(bytes.len(), n * 8, "cfl size");
    let data = bytes
        .chunks_exact(8)
        .map(|c| {
            Complex32::new(
                f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                f32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    (dims, data)
}

/// Writes a BART `.cfl/.hdr` pair.
pub fn write_cfl(base: &Path, dims: &[usize], data: &[Complex32]) {
    assert_eq!(dims.iter().product::<usize>(), data.len());
    let mut d = dims.to_vec();
    while d.len() < 16 {
        d.push(1);
    }
    let line: Vec<String> = d.iter().map(|v| v.to_string()).collect();
    std::fs::write(
        base.with_extension("hdr"),
        format!("# Dimensions\n{}\n", line.join(" ")),
    )
    .expect("write .hdr");
    let mut bytes = Vec::with_capacity(data.len() * 8);
    for c in data {
        bytes.extend_from_slice(&c.re.to_le_bytes());
        bytes.extend_from_slice(&c.im.to_le_bytes());
    }
    std::fs::write(base.with_extension("cfl"), bytes).expect("write .cfl");
}

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
