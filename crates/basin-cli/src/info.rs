//! `basin info`: a summary of a k-space file for a human (or `--json` for a script).

use anyhow::Result;
use basin_mrd::KSpace;
use basin_recon::coils::{acs_lines, acs_region};
use clap::Args;
use ndarray::Axis;
use serde::Serialize;
use std::path::PathBuf;

/// Arguments of `basin info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// ISMRMRD or fastMRI HDF5 file.
    pub file: PathBuf,
    /// ISMRMRD group holding `xml` and `data` (default: the only such group, or `dataset`).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct BucketInfo {
    slice: u16,
    contrast: u16,
    repetition: u16,
    set: u16,
    sampled_lines: usize,
    acceleration: f64,
    calibration_lines: usize,
}

#[derive(Serialize)]
struct Info {
    file: String,
    trajectory: String,
    encoded_matrix: [u32; 3],
    recon_matrix: [u32; 3],
    encoded_fov_mm: [f64; 3],
    recon_fov_mm: [f64; 3],
    coils: usize,
    three_d: bool,
    nominal_acceleration: Option<[u32; 2]>,
    calibration_mode: Option<String>,
    noise_samples: usize,
    acquisitions_per_flag: std::collections::BTreeMap<String, usize>,
    skipped: usize,
    buckets: Vec<BucketInfo>,
    vendor: Option<String>,
    protocol_name: Option<String>,
    warnings: Vec<String>,
}

fn summarise(k: &KSpace) -> Info {
    let enc = k.header.first_encoding().cloned().unwrap_or_default();
    let m = |s: &basin_mrd::header::EncodingSpace| [s.matrixSize.x, s.matrixSize.y, s.matrixSize.z];
    let f = |s: &basin_mrd::header::EncodingSpace| {
        [s.fieldOfView_mm.x, s.fieldOfView_mm.y, s.fieldOfView_mm.z]
    };
    let buckets = k
        .buckets
        .iter()
        .map(|b| {
            // Phase-encoding lines: rows (ISMRMRD) or columns (fastMRI), whichever axis is
            // undersampled.
            let rows = b.mask.map_axis(Axis(2), |r| r.iter().any(|&v| v));
            let cols = b.mask.map_axis(Axis(1), |r| r.iter().any(|&v| v));
            let count = |l: &ndarray::Array2<bool>| l.iter().filter(|&&v| v).count();
            let frac = |l: &ndarray::Array2<bool>| count(l) as f64 / l.len().max(1) as f64;
            let lines = if frac(&cols) < frac(&rows) {
                cols
            } else {
                rows
            };
            let sampled = count(&lines);
            let cal2 = b.calib_mask.map_axis(Axis(0), |v| v.iter().any(|&m| m));
            let calibration_lines = acs_lines(acs_region(cal2.view()));
            BucketInfo {
                slice: b.key.slice,
                contrast: b.key.contrast,
                repetition: b.key.repetition,
                set: b.key.set,
                sampled_lines: sampled,
                acceleration: lines.len() as f64 / sampled.max(1) as f64,
                calibration_lines,
            }
        })
        .collect();
    let flag_name = |f: u32| -> String {
        use basin_mrd::flags::*;
        let n = match f {
            0 => "none (imaging)",
            FIRST_IN_SLICE => "first_in_slice",
            LAST_IN_SLICE => "last_in_slice",
            IS_NOISE_MEASUREMENT => "noise",
            IS_PARALLEL_CALIBRATION => "calibration",
            IS_PARALLEL_CALIBRATION_AND_IMAGING => "calibration_and_imaging",
            IS_REVERSE => "reverse",
            IS_NAVIGATION_DATA => "navigation",
            IS_PHASECORR_DATA => "phase_correction",
            LAST_IN_MEASUREMENT => "last_in_measurement",
            IS_DUMMYSCAN_DATA => "dummy_scan",
            _ => "",
        };
        if n.is_empty() {
            format!("flag {f}")
        } else {
            format!("{f} {n}")
        }
    };
    Info {
        file: k.source.display().to_string(),
        trajectory: enc.trajectory.clone(),
        encoded_matrix: m(&enc.encodedSpace),
        recon_matrix: m(&enc.reconSpace),
        encoded_fov_mm: f(&enc.encodedSpace),
        recon_fov_mm: f(&enc.reconSpace),
        coils: k.coils(),
        three_d: k.three_d,
        nominal_acceleration: enc.parallelImaging.as_ref().map(|p| {
            [
                p.accelerationFactor.kspace_encoding_step_1,
                p.accelerationFactor.kspace_encoding_step_2,
            ]
        }),
        calibration_mode: enc
            .parallelImaging
            .as_ref()
            .and_then(|p| p.calibrationMode.clone()),
        noise_samples: k.noise.as_ref().map(|n| n.shape()[1]).unwrap_or(0),
        acquisitions_per_flag: k
            .flag_counts
            .iter()
            .map(|(f, n)| (flag_name(*f), *n))
            .collect(),
        skipped: k.skipped,
        buckets,
        vendor: k
            .header
            .acquisitionSystemInformation
            .as_ref()
            .and_then(|a| a.systemVendor.clone()),
        protocol_name: k
            .header
            .measurementInformation
            .as_ref()
            .and_then(|m| m.protocolName.clone()),
        warnings: k.warnings.clone(),
    }
}

/// Runs `basin info`.
pub fn run(a: InfoArgs) -> Result<()> {
    let k = basin_mrd::read_kspace(&a.file, a.dataset.as_deref())?;
    let info = summarise(&k);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("file            {}", info.file);
    println!("trajectory      {}", info.trajectory);
    println!(
        "encoded matrix  {}×{}×{}  FOV {:.1}×{:.1}×{:.1} mm",
        info.encoded_matrix[0],
        info.encoded_matrix[1],
        info.encoded_matrix[2],
        info.encoded_fov_mm[0],
        info.encoded_fov_mm[1],
        info.encoded_fov_mm[2]
    );
    println!(
        "recon matrix    {}×{}×{}  FOV {:.1}×{:.1}×{:.1} mm",
        info.recon_matrix[0],
        info.recon_matrix[1],
        info.recon_matrix[2],
        info.recon_fov_mm[0],
        info.recon_fov_mm[1],
        info.recon_fov_mm[2]
    );
    println!("coils           {}", info.coils);
    println!("encoding        {}", if info.three_d { "3D" } else { "2D" });
    if let Some(r) = info.nominal_acceleration {
        println!(
            "acceleration    {}×{} (nominal), calibration {}",
            r[0],
            r[1],
            info.calibration_mode.as_deref().unwrap_or("unspecified")
        );
    }
    println!("noise samples   {}", info.noise_samples);
    println!("acquisitions per flag:");
    for (f, n) in &info.acquisitions_per_flag {
        println!("  {f:<28} {n}");
    }
    if info.skipped > 0 {
        println!(
            "skipped         {} (navigators, phase correction, dummies, other encodings)",
            info.skipped
        );
    }
    println!("buckets         {}", info.buckets.len());
    for b in &info.buckets {
        println!(
            "  slice {:>3} contrast {} repetition {} set {}: {} lines, R = {:.2}, {} calibration lines",
            b.slice, b.contrast, b.repetition, b.set, b.sampled_lines, b.acceleration, b.calibration_lines
        );
    }
    for w in &info.warnings {
        println!("warning: {w}");
    }
    Ok(())
}
