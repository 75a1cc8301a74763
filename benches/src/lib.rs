//! Shared set-up for basin's benchmarks: the 256², 8-coil analytic brain phantom at 4×
//! (fastMRI equispaced, 8 % centre), its ESPIRiT maps, and BART `.cfl` I/O for comparisons.

pub mod cases;
pub mod lesions;
pub mod prior_validation;
pub mod study;

use basin_core::C32;
use basin_phantom::{generate, Kind, MaskKind, Phantom, PhantomSpec};
use basin_recon::coils::{espirit_2d, EspiritParams};
use ndarray::{Array2, Array3};
use std::path::Path;

/// The benchmark case: 256², 8 coils, 4× equispaced, small noise.
pub fn case() -> (Phantom, Array2<bool>) {
    let spec = PhantomSpec {
        kind: Kind::Brain,
        matrix: 256,
        coils: 8,
        accel: 4.0,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        noise: 0.0005,
        seed: 1,
    };
    let p = generate(&spec).expect("benchmark phantom");
    let mask = Array2::from_shape_fn((256, 256), |(y, _)| p.lines[y]);
    (p, mask)
}

/// ESPIRiT maps of the case with the default parameters.
pub fn maps(p: &Phantom, mask: &Array2<bool>) -> Array3<C32> {
    espirit_2d(p.sampled.view(), mask.view(), &EspiritParams::default())
        .expect("ESPIRiT")
        .0
}

/// Writes a BART `.cfl/.hdr` pair (dims first = fastest).
pub fn write_cfl(base: &Path, dims: &[usize], data: &[C32]) -> std::io::Result<()> {
    if dims.iter().product::<usize>() != data.len() {
        return Err(std::io::Error::other(format!(
            "dims {dims:?} do not hold {} values",
            data.len()
        )));
    }
    let mut d = dims.to_vec();
    d.resize(16, 1);
    let line: Vec<String> = d.iter().map(|v| v.to_string()).collect();
    std::fs::write(
        base.with_extension("hdr"),
        format!("# Dimensions\n{}\n", line.join(" ")),
    )?;
    let mut bytes = Vec::with_capacity(data.len() * 8);
    for c in data {
        bytes.extend_from_slice(&c.re.to_le_bytes());
        bytes.extend_from_slice(&c.im.to_le_bytes());
    }
    std::fs::write(base.with_extension("cfl"), bytes)
}

/// Reads a BART `.cfl/.hdr` pair: (dims, values with the first dim fastest).
pub fn read_cfl(base: &Path) -> std::io::Result<(Vec<usize>, Vec<C32>)> {
    let hdr = std::fs::read_to_string(base.with_extension("hdr"))?;
    let bad = |m: &str| std::io::Error::other(format!("{}: {m}", base.display()));
    let line = hdr
        .lines()
        .find(|l| !l.starts_with('#'))
        .ok_or_else(|| bad("no dimensions line"))?;
    let dims = line
        .split_whitespace()
        .map(|v| v.parse::<usize>().map_err(|_| bad("bad dimension")))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = std::fs::read(base.with_extension("cfl"))?;
    if bytes.len() != dims.iter().product::<usize>() * 8 {
        return Err(bad("size does not match the dimensions"));
    }
    let data = bytes
        .chunks_exact(8)
        .map(|c| {
            C32::new(
                f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                f32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    Ok((dims, data))
}
