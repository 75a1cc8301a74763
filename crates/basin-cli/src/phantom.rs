//! `basin phantom`: writes a simulated acquisition as ISMRMRD HDF5.

use anyhow::{Context, Result};
use basin_phantom::{generate, to_ismrmrd, Kind, MaskKind, PhantomSpec};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Ellipse set.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KindArg {
    /// Modified Shepp–Logan.
    SheppLogan,
    /// Brain-like ellipses with small lesions.
    Brain,
}

/// Mask family.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MaskArg {
    /// Equispaced lines with a random offset.
    Equispaced,
    /// Random lines.
    Random,
}

/// Arguments of `basin phantom`.
#[derive(Args, Debug)]
pub struct PhantomArgs {
    /// Phantom.
    #[arg(long, value_enum, default_value = "shepp-logan")]
    pub kind: KindArg,
    /// Matrix size N (N×N, 16–1024).
    #[arg(long, default_value_t = 256)]
    pub matrix: usize,
    /// Receive coils (1–64).
    #[arg(long, default_value_t = 8)]
    pub coils: usize,
    /// Acceleration along phase encoding (1 = fully sampled).
    #[arg(long, default_value_t = 1.0)]
    pub accel: f64,
    /// Fraction of central lines always acquired (fastMRI: 0.08 at 4×, 0.04 at 8×).
    #[arg(long, default_value_t = 0.08)]
    pub center_fraction: f64,
    /// Sampling pattern.
    #[arg(long, value_enum, default_value = "equispaced")]
    pub mask: MaskArg,
    /// Noise standard deviation relative to the k-space peak (0 = none).
    #[arg(long, default_value_t = 0.0005)]
    pub noise: f64,
    /// Random seed for mask and noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output ISMRMRD file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
}

/// Runs `basin phantom`.
pub fn run(a: PhantomArgs) -> Result<()> {
    let spec = PhantomSpec {
        kind: match a.kind {
            KindArg::SheppLogan => Kind::SheppLogan,
            KindArg::Brain => Kind::Brain,
        },
        matrix: a.matrix,
        coils: a.coils,
        accel: a.accel,
        center_fraction: a.center_fraction,
        mask: match a.mask {
            MaskArg::Equispaced => MaskKind::Equispaced,
            MaskArg::Random => MaskKind::Random,
        },
        noise: a.noise,
        seed: a.seed,
    };
    let p = generate(&spec)?;
    let (header, acqs) = to_ismrmrd(&p, &spec);
    basin_export::atomic_write(&a.output, a.force, |tmp| {
        basin_mrd::io::write_ismrmrd(tmp, "dataset", &header, &acqs).map_err(|e| e.to_string())
    })
    .with_context(|| format!("writing {}", a.output.display()))?;
    eprintln!(
        "wrote {} ({}×{}, {} coils, {} of {} lines)",
        a.output.display(),
        a.matrix,
        a.matrix,
        a.coils,
        p.lines.iter().filter(|&&l| l).count(),
        a.matrix
    );
    Ok(())
}
