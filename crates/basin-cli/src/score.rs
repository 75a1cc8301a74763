//! `basin score`: the prior as a verification layer — a per-pixel energy-density map and a
//! per-slice score of any image (NIfTI, DICOM series, ISMRMRD images), flagged against the
//! model's validation statistics.

use anyhow::{bail, Context, Result};
use basin_core::C32;
use basin_export::dicom_in::read_dicom_series;
use basin_export::nifti_in::read_nifti;
use basin_export::nifti_out::{write_nifti, write_nifti_like};
use basin_prior::fast::FastPyramid;
use basin_prior::validate::{score_volume, ScoreTypicality, SCORE_SIGMA, Z_THRESHOLD};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array3, Axis};
use std::path::PathBuf;

/// Arguments of `basin score`.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Image to score: a NIfTI file (.nii, .nii.gz; slices along its third axis), a DICOM
    /// series (a directory of files, or one file), or an ISMRMRD/MRD HDF5 file with images
    /// (.h5, .mrd; the first image series unless --series).
    input: PathBuf,
    /// Write the energy-density map here (NIfTI; on the input's grid for NIfTI input).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Image series inside an ISMRMRD file, e.g. /dataset/image_0.
    #[arg(long)]
    series: Option<String>,
    /// Weights to use instead of the embedded default model (safetensors from `basin train`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Print the per-slice scores as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Overwrite the output.
    #[arg(long)]
    force: bool,
    /// Exit with 1 when any slice is flagged ATYPICAL (after printing and writing everything),
    /// so that a pipeline can stop on an implausible image. Without it, flagged slices exit 0.
    #[arg(long)]
    fail_on_atypical: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

enum Source {
    Nifti(Box<nifti::NiftiHeader>),
    Other,
}

/// Reads the input as complex slices `[z, y, x]`.
fn read_input(a: &ScoreArgs) -> Result<(Array3<C32>, Source)> {
    let p = &a.input;
    if !p.exists() {
        bail!("{}: no such file or directory", p.display());
    }
    let name = p.to_string_lossy().to_lowercase();
    if p.is_dir() || name.ends_with(".dcm") || name.ends_with(".ima") {
        let v = read_dicom_series(p)?;
        return Ok((v.mapv(|x| C32::new(x, 0.0)), Source::Other));
    }
    if name.ends_with(".nii") || name.ends_with(".nii.gz") {
        let (v, h) = read_nifti(p)?;
        // [i, j, k] → slices along k, each [j, i] (rows = j, columns = i).
        let z = v
            .reversed_axes()
            .as_standard_layout()
            .mapv(|x| C32::new(x, 0.0));
        return Ok((z, Source::Nifti(Box::new(h))));
    }
    if name.ends_with(".h5") || name.ends_with(".mrd") || name.ends_with(".hdf5") {
        let all = basin_mrd::image::read_images(p)?;
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        let s = match &a.series {
            Some(want) => all
                .iter()
                .find(|s| s.name == *want || s.name.ends_with(&format!("/{want}")))
                .with_context(|| {
                    format!("{}: no image series {want} (has {names:?})", p.display())
                })?,
            None => all.first().with_context(|| {
                format!(
                    "{}: no image series (no /<group>/<series>/data)",
                    p.display()
                )
            })?,
        };
        let px = &s.pixels; // [image, channel, z, y, x]
        let (n, c, nz, ny, nx) = px.dim();
        // Channels combined by root sum of squares when there are several.
        let mut out = Array3::<C32>::zeros((n * nz, ny, nx));
        for i in 0..n {
            for z in 0..nz {
                let mut sl = out.index_axis_mut(Axis(0), i * nz + z);
                if c == 1 {
                    sl.assign(&px.slice(ndarray::s![i, 0, z, .., ..]));
                } else {
                    for ((y, x), v) in sl.indexed_iter_mut() {
                        let rss: f32 = (0..c).map(|ch| px[[i, ch, z, y, x]].norm_sqr()).sum();
                        *v = C32::new(rss.sqrt(), 0.0);
                    }
                }
            }
        }
        return Ok((out, Source::Other));
    }
    // Anything else: try DICOM.
    let v = read_dicom_series(p).with_context(|| {
        format!(
            "{}: not recognised as NIfTI (.nii, .nii.gz), ISMRMRD (.h5, .mrd) or DICOM",
            p.display()
        )
    })?;
    Ok((v.mapv(|x| C32::new(x, 0.0)), Source::Other))
}

/// Runs `basin score`.
pub fn run(a: ScoreArgs) -> Result<()> {
    if let Some(o) = &a.out {
        let n = o.to_string_lossy();
        if !(n.ends_with(".nii") || n.ends_with(".nii.gz")) {
            return Err(crate::exit::usage(format!(
                "{}: the energy map is written as NIfTI (.nii or .nii.gz)",
                o.display()
            )));
        }
        basin_export::check_outputs(&[a.input.as_path()], &[o.as_path()], a.force)?;
    }
    let (model, card) = match &a.model {
        Some(m) => {
            let bytes =
                std::fs::read(m).with_context(|| format!("{}: cannot read", m.display()))?;
            basin_prior::weights::from_safetensors(&bytes)
                .with_context(|| m.display().to_string())?
        }
        None => basin_prior::default_model().context("the embedded default model")?,
    };
    let (img, source) = read_input(&a)?;
    let (nz, ny, nx) = img.dim();
    if ny < 8 || nx < 8 {
        bail!(
            "{}: slices of {ny}×{nx} pixels are too small to score (at least 8×8)",
            a.input.display()
        );
    }
    let typ = ScoreTypicality::from_card(&card);
    let fast = FastPyramid::new(&model);
    let bar = if a.quiet || nz < 4 {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(nz as u64);
        b.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} slices {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let (map, judged) = score_volume(&fast, typ.as_ref(), &img, &|done| {
        bar.set_position(done as u64)
    });
    let rows: Vec<_> = judged
        .iter()
        .enumerate()
        .map(|(z, j)| (z, j.score, j.z, j.flagged))
        .collect();
    bar.finish_and_clear();
    if let Some(o) = &a.out {
        let descrip = format!("basin energy density, sigma {SCORE_SIGMA}");
        match &source {
            Source::Nifti(h) => write_nifti_like(o, &map, h, &descrip, a.force)?,
            Source::Other => write_nifti(
                o,
                &map,
                &basin_export::geometry::StackGeometry::unit(),
                &descrip,
                a.force,
            )?,
        }
    }
    let flagged: Vec<usize> = rows.iter().filter(|r| r.3).map(|r| r.0).collect();
    let range = |t: &basin_prior::validate::Typicality| serde_json::json!({"median": t.median, "mad": t.mad});
    if a.json {
        let slices: Vec<_> = rows
            .iter()
            .map(|(z, s, zs, f)| {
                serde_json::json!({
                    "slice": z,
                    "energy": s.energy,
                    "prior_energy": s.prior_energy,
                    "score_norm": s.score_norm,
                    "line_energy": s.line_energy,
                    "object_fraction": s.object_fraction,
                    "z": zs,
                    "implausible": f,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "input": a.input,
                "sigma": SCORE_SIGMA as f64,
                "typical": typ.map(|t| range(&t.network)),
                "typical_prior": typ.and_then(|t| t.prior).map(|p| range(&p)),
                "typical_score_norm": typ.and_then(|t| t.score_norm).map(|p| range(&p)),
                "typical_line": typ.and_then(|t| t.line).map(|p| range(&p)),
                "z_threshold": Z_THRESHOLD,
                "schema": 1,
                "basin_version": env!("CARGO_PKG_VERSION"),
                "slices": slices,
                "implausible": flagged,
                "energy_map": a.out,
            })
        );
    } else {
        println!("slice  energy/object pixel  (whole prior)  score norm  worst line  object   robust z  flag");
        for (z, s, zs, f) in &rows {
            let zt = zs.map_or("        -".to_string(), |v| format!("{v:9.2}"));
            println!(
                "{z:5}  {:18.4}  {:13.4}  {:10.4}  {:10.4}  {:5.1}%  {zt}  {}",
                s.energy,
                s.prior_energy,
                s.score_norm,
                s.line_energy,
                s.object_fraction * 100.0,
                if *f { "ATYPICAL" } else { "" }
            );
        }
        match typ {
            Some(t) => {
                let ranges: Vec<String> = t
                    .ranges()
                    .iter()
                    .map(|(name, _, r)| format!("{name} median {:.4}, MAD {:.4}", r.median, r.mad))
                    .collect();
                println!(
                    "{} of {nz} slices atypical (the largest robust z of {} > {Z_THRESHOLD} against the model's clean validation slices: {}){}",
                    flagged.len(),
                    t.rule(),
                    ranges.join("; "),
                    if flagged.is_empty() { String::new() } else { format!(": {flagged:?}") }
                )
            }
            None => println!("the model card has no validation statistics: slices are not flagged"),
        }
        if let Some(o) = &a.out {
            println!("energy map: {}", o.display());
        }
    }
    if a.fail_on_atypical && !flagged.is_empty() {
        return Err(crate::exit::flagged(format!(
            "{}: {} of {nz} slices atypical ({flagged:?}); --fail-on-atypical",
            a.input.display(),
            flagged.len()
        )));
    }
    Ok(())
}
