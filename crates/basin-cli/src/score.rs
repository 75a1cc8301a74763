//! `basin score`: the prior as a verification layer — a per-pixel energy-density map and a
//! per-slice score of any image (NIfTI, DICOM series, ISMRMRD images), flagged against the
//! model's validation statistics; with `--kspace`, also judged against the raw data it claims
//! to reconstruct (basin_recon::consistency).

use anyhow::{bail, Context, Result};
use basin_export::image_in::read_image;
use basin_export::nifti_out::{write_nifti, write_nifti_like};
use basin_prior::fast::FastPyramid;
use basin_prior::validate::{score_volume, ScoreTypicality, SCORE_SIGMA, Z_THRESHOLD};
use basin_recon::consistency::{DataCheck, MISFIT_OUTLIER};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array3;
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
    /// Judge the image against the raw data of the same acquisition as well (ISMRMRD/MRD or
    /// fastMRI HDF5): per slice the data residual over the noise and a signed misfit map — where
    /// the image is brighter (+) or darker (−) than the measured k-space supports, in standard
    /// deviations of the measured noise. A slice whose worst misfit stands out from the rest of
    /// it (more than 12× its typical misfit) is flagged DATA-MISFIT: a local structure the data
    /// do not contain, or one they contain that the image lacks. The image must be on basin's
    /// reconstruction grid of that file (as `basin recon` writes it); a magnitude image is given
    /// the phase of basin's CG-SENSE reconstruction.
    #[arg(long, value_name = "RAW.h5")]
    kspace: Option<PathBuf>,
    /// Write the signed misfit map here (NIfTI, on the image's grid; needs --kspace).
    #[arg(long, value_name = "FILE.nii")]
    misfit_map: Option<PathBuf>,
    /// Exit with 1 when any slice is flagged ATYPICAL or DATA-MISFIT (after printing and
    /// writing everything), so that a pipeline can stop on an implausible image. Without it,
    /// flagged slices exit 0.
    #[arg(long)]
    fail_on_atypical: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

/// Writes `v` as NIfTI on the input's grid (its header for NIfTI input).
fn map_writer<'a>(
    v: &'a Array3<f32>,
    grid: &'a Option<Box<nifti::NiftiHeader>>,
    descrip: String,
) -> basin_export::Writer<'a> {
    Box::new(move |t: &std::path::Path| {
        match grid {
            Some(h) => write_nifti_like(t, v, h, &descrip, false),
            None => write_nifti(
                t,
                v,
                &basin_export::geometry::StackGeometry::unit(),
                &descrip,
                false,
            ),
        }
        .map_err(|e| e.to_string())
    })
}

/// Runs `basin score`.
pub fn run(a: ScoreArgs) -> Result<()> {
    if a.misfit_map.is_some() && a.kspace.is_none() {
        return Err(crate::exit::usage(
            "--misfit-map needs --kspace RAW.h5 (the data to judge the image against)",
        ));
    }
    let outputs: Vec<&std::path::Path> = a
        .out
        .iter()
        .chain(&a.misfit_map)
        .map(|p| p.as_path())
        .collect();
    for o in &outputs {
        let n = o.to_string_lossy();
        if !(n.ends_with(".nii") || n.ends_with(".nii.gz")) {
            return Err(crate::exit::usage(format!(
                "{}: the maps are written as NIfTI (.nii or .nii.gz)",
                o.display()
            )));
        }
    }
    if !outputs.is_empty() {
        let mut inputs = vec![a.input.as_path()];
        inputs.extend(a.kspace.as_deref());
        basin_export::check_outputs(&inputs, &outputs, a.force)?;
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
    let basin_export::image_in::Image {
        slices: img,
        nifti: grid,
    } = read_image(&a.input, a.series.as_deref())?;
    let (nz, ny, nx) = img.dim();
    if ny < 8 || nx < 8 {
        bail!(
            "{}: slices of {ny}×{nx} pixels are too small to score (at least 8×8)",
            a.input.display()
        );
    }
    // The data check first: a file that cannot be read or does not match fails before the
    // prior's work.
    let misfit = match &a.kspace {
        Some(k) => {
            let check = DataCheck::from_file(k).with_context(|| k.display().to_string())?;
            let mag = img.mapv(|c| c.norm());
            Some(check.misfit(mag.view()).map_err(|e| {
                crate::exit::usage(format!(
                    "{} against {}: {e}",
                    a.input.display(),
                    k.display()
                ))
            })?)
        }
        None => None,
    };
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
    // Both maps appear together or not at all.
    let mut writes: Vec<basin_export::Output<'_>> = Vec::new();
    if let Some(o) = &a.out {
        writes.push((
            o.clone(),
            map_writer(
                &map,
                &grid,
                format!("basin energy density, sigma {SCORE_SIGMA}"),
            ),
        ));
    }
    if let (Some(o), Some(m)) = (&a.misfit_map, &misfit) {
        writes.push((
            o.clone(),
            map_writer(
                &m.map,
                &grid,
                "basin data misfit z (+ brighter than the data)".into(),
            ),
        ));
    }
    basin_export::write_all(writes, a.force)?;
    let flagged: Vec<usize> = rows.iter().filter(|r| r.3).map(|r| r.0).collect();
    let misfit_flagged: Vec<usize> = misfit
        .as_ref()
        .map(|m| m.flagged_slices())
        .unwrap_or_default();
    let data_json = |z: usize| misfit.as_ref().map(|m| m.summary(z));
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
                    "line_contrast": s.line_contrast,
                    "object_fraction": s.object_fraction,
                    "noise": s.noise,
                    "ghost": s.ghost,
                    "jitter": s.jitter,
                    "structure_residual": typ.and_then(|t| t.structure).map(|st| st.residual_of(s)),
                    "z": zs,
                    "implausible": f,
                    "data": data_json(*z),
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
                "typical_structure": typ.and_then(|t| t.structure).map(|st| serde_json::json!({
                    "intercept": st.intercept, "slope": st.slope,
                    "median": st.residual.median, "mad": st.residual.mad,
                })),
                "typical_line_contrast": typ.and_then(|t| t.line_contrast).map(|p| range(&p)),
                "typical_ln_noise": typ.and_then(|t| t.noise).map(|p| range(&p)),
                "typical_ghost": typ.and_then(|t| t.ghost).map(|p| range(&p)),
                "typical_jitter": typ.and_then(|t| t.jitter).map(|p| range(&p)),
                "rule": typ.map(|t| t.rule()),
                "z_threshold": Z_THRESHOLD,
                "schema": 1,
                "basin_version": env!("CARGO_PKG_VERSION"),
                "slices": slices,
                "implausible": flagged,
                "energy_map": a.out,
                "kspace": a.kspace,
                "misfit_threshold": misfit.as_ref().map(|_| MISFIT_OUTLIER),
                "inconsistent": misfit.as_ref().map(|_| &misfit_flagged),
                "misfit_map": a.misfit_map,
            })
        );
    } else {
        println!("slice  energy/object pixel  (whole prior)  score norm  worst line  line contrast   noise   ghost  jitter  object   robust z  flag");
        for (z, s, zs, f) in &rows {
            let zt = zs.map_or("        -".to_string(), |v| format!("{v:9.2}"));
            println!(
                "{z:5}  {:18.4}  {:13.4}  {:10.4}  {:10.4}  {:13.4}  {:6.4}  {:6.3}  {:6.3}  {:5.1}%  {zt}  {}",
                s.energy,
                s.prior_energy,
                s.score_norm,
                s.line_energy,
                s.line_contrast,
                s.noise,
                s.ghost,
                s.jitter,
                s.object_fraction * 100.0,
                if *f { "ATYPICAL" } else { "" }
            );
        }
        match typ {
            Some(t) => {
                // The ranges the rule judges by (the JSON has all).
                let ranges: Vec<String> = t
                    .judged_ranges()
                    .iter()
                    .map(|(name, _, r)| format!("{name} median {:.4}, MAD {:.4}", r.median, r.mad))
                    .collect();
                println!(
                    "{} of {nz} slices atypical (the largest robust z of {} > {Z_THRESHOLD} against the model's clean slices: {}){}",
                    flagged.len(),
                    t.rule(),
                    ranges.join("; "),
                    if flagged.is_empty() { String::new() } else { format!(": {flagged:?}") }
                );
                if let Some(st) = t.structure {
                    println!(
                        "structure: ln(score norm) against {:.4} + {:.4} × energy",
                        st.intercept, st.slope
                    );
                }
            }
            None => println!("the model card has no validation statistics: slices are not flagged"),
        }
        if let Some(m) = &misfit {
            println!(
                "\nagainst the data of {}:",
                a.kspace
                    .as_ref()
                    .map_or(String::new(), |k| k.display().to_string())
            );
            println!(
                "slice  residual/noise  typical misfit  worst misfit (row, column)  outlier  flag"
            );
            for z in 0..nz {
                let w = m.worst[z];
                println!(
                    "{z:5}  {:14.3}  {:14.2}  {:>12.1} ({:4}, {:4})  {:7.1}  {}",
                    m.residual_over_noise[z],
                    m.spread[z],
                    w.z,
                    w.y,
                    w.x,
                    m.outlier(z),
                    if m.flagged(z) { "DATA-MISFIT" } else { "" }
                );
            }
            println!(
                "{} of {nz} slices depart locally from the data (worst |misfit| > {MISFIT_OUTLIER} × the slice's typical misfit; + brighter, − darker than the data support){}",
                misfit_flagged.len(),
                if misfit_flagged.is_empty() { String::new() } else { format!(": {misfit_flagged:?}") }
            );
        }
        if let Some(o) = &a.out {
            println!("energy map: {}", o.display());
        }
        if let Some(o) = &a.misfit_map {
            println!("misfit map: {}", o.display());
        }
    }
    if a.fail_on_atypical && !(flagged.is_empty() && misfit_flagged.is_empty()) {
        return Err(crate::exit::flagged(format!(
            "{}: {} of {nz} slices atypical ({flagged:?}), {} departing from the data ({misfit_flagged:?}); --fail-on-atypical",
            a.input.display(),
            flagged.len(),
            misfit_flagged.len()
        )));
    }
    Ok(())
}
