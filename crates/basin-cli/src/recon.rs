//! `basin recon`: read, reconstruct with a protocol, write NIfTI.

use crate::exit;
use anyhow::{Context, Result};
use basin_export::geometry::{slice_location, stack_geometry};
use basin_recon::{protocol::DEFAULT_PROTOCOL, reconstruct_on, Protocol};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array3, Array4, Axis};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Arguments of `basin recon`.
#[derive(Args, Debug)]
pub struct ReconArgs {
    /// ISMRMRD or fastMRI HDF5 k-space file.
    pub input: PathBuf,
    /// Output: `.nii`/`.nii.gz` (NIfTI, float32 magnitude with the scanner affine), `.h5`
    /// (ISMRMRD images), or a directory (DICOM MR series, one file per slice).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output format when the name does not say it (e.g. a DICOM directory named `x.h5`).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// More outputs in one run, each chosen by its name like `-o` (repeatable).
    #[arg(long, value_name = "PATH")]
    pub also: Vec<PathBuf>,
    /// Remove patient identifiers from every output (DICOM PS3.15 basic profile).
    #[arg(long)]
    pub anonymize: bool,
    /// Root for new DICOM UIDs (default 2.25, UUID-derived).
    #[arg(long, value_name = "ROOT")]
    pub uid_root: Option<String>,
    /// Write ISMRMRD images as complex values instead of magnitude.
    #[arg(long)]
    pub complex: bool,
    /// Also write a PNG montage of the slices for a quick look.
    #[arg(long, value_name = "PNG")]
    pub preview: Option<PathBuf>,
    /// Also write the embedded prior's per-pixel energy density (above that of an empty image)
    /// of the (first) image volume as NIfTI (σ = 0.02, images scaled to p99 = 1): where it is
    /// high the prior finds the image implausible (see `basin score`).
    #[arg(long, value_name = "NIFTI")]
    pub energy_map: Option<PathBuf>,
    /// Posterior samples per slice (EBM protocols): annealed Langevin chains started from the
    /// EBM image; the image written is their mean. Each sample costs about one more EBM
    /// reconstruction of CPU time (samples run in parallel on the CPU cores, also when a GPU is
    /// present). 0: no sampling.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub samples: usize,
    /// Also write the per-pixel standard deviation of the samples' magnitude (same scale as the
    /// image) as NIfTI: where it is high the data and the prior leave the image free. It is not
    /// an error bar: the prior's own bias (smoothed edges, small structures) is not in it, and on
    /// validation anatomy it correlates weakly with the actual error (Pearson 0.09–0.14 with 8
    /// samples; more samples help a little). Needs --samples 2 or more.
    #[arg(long, value_name = "NIFTI")]
    pub uncertainty: Option<PathBuf>,
    /// Seed of the posterior samples (the same seed gives the same samples).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Protocol: a built-in name — sense (CG-SENSE), zero-filled, cs-l1-wavelet, cs-tv,
    /// brain-2d-ebm (the learned energy prior), brain-2d-ebm-weak-prior (the prior at 0.15 of
    /// its weight, for noisy data or images unlike brain anatomy, where the full prior smooths
    /// small lesions) — or a TOML file's path (a built-in name always means the built-in
    /// protocol; name a local file by its path, e.g. -p ./protocols/sense.toml).
    #[arg(short, long, default_value = DEFAULT_PROTOCOL)]
    pub protocol: String,
    /// Where the EBM solver's iterations run: `auto` picks a hardware GPU when there is one
    /// (CUDA when built with the `cuda` feature, else a Vulkan/Metal adapter) and the CPU
    /// otherwise — never a software adapter; `gpu` insists on a GPU and falls back to a software
    /// adapter (lavapipe; slow) with a warning; `cpu` never touches a GPU. Other solvers run on
    /// the CPU.
    #[arg(long, default_value = "auto", value_name = "auto|cpu|gpu")]
    pub backend: basin_gpu::Backend,
    /// ISMRMRD group holding `xml` and `data`.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Print a JSON summary with per-slice diagnostics on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// NIfTI-1 (.nii, .nii.gz).
    Nifti,
    /// DICOM MR series in a directory.
    Dicom,
    /// ISMRMRD images (HDF5).
    Ismrmrd,
}

/// The format a path asks for by its name: `.nii`/`.nii.gz` NIfTI, `.h5`/`.mrd`/`.hdf5`
/// ISMRMRD, and a DICOM series directory for a name without an extension, ending in `/` or
/// `.dcm`, or an existing directory. Any other extension is refused (it used to become a DICOM
/// directory named `x.foo`).
fn format_of(p: &Path) -> Result<Format> {
    let s = p.to_string_lossy().to_lowercase();
    if s.ends_with(".nii") || s.ends_with(".nii.gz") {
        Ok(Format::Nifti)
    } else if s.ends_with(".h5") || s.ends_with(".mrd") || s.ends_with(".hdf5") {
        Ok(Format::Ismrmrd)
    } else if s.ends_with('/') || s.ends_with(".dcm") || p.is_dir() || p.extension().is_none() {
        Ok(Format::Dicom)
    } else {
        Err(exit::usage(format!(
            "{}: unknown output extension; use .nii or .nii.gz (NIfTI), .h5 (ISMRMRD images), a directory name without an extension (DICOM series), or --format",
            p.display()
        )))
    }
}

#[derive(Serialize)]
struct OutputSummary {
    path: String,
    format: Format,
}

#[derive(Serialize)]
struct SliceSummary {
    slice: u16,
    contrast: u16,
    repetition: u16,
    set: u16,
    #[serde(flatten)]
    diagnostics: basin_recon::Diagnostics,
}

/// The protocol as resolved: its name, where it came from and every parameter.
#[derive(Serialize)]
pub struct ProtocolSummary<'a> {
    name: &'a str,
    /// "built-in" or the TOML file's path.
    source: &'a str,
    parameters: &'a Protocol,
}

#[derive(Serialize)]
struct Summary<'a> {
    /// Version of this JSON's layout.
    schema: u32,
    basin_version: &'static str,
    input: String,
    outputs: Vec<OutputSummary>,
    protocol: ProtocolSummary<'a>,
    /// Where the EBM iterations ran ("cpu" or the GPU's description).
    device: String,
    /// Posterior samples per slice (0: none); with samples the image is their mean.
    samples: usize,
    shape_xyzt: [usize; 4],
    spacing_mm: [f64; 3],
    fallback_geometry: bool,
    slices: Vec<SliceSummary>,
    warnings: Vec<String>,
}

/// Progress on stderr: a bar on a terminal, a plain line per step otherwise (logs of batch
/// jobs), nothing with --quiet or --json.
pub fn progress_bar(total: usize, what: &str, hidden: bool) -> ProgressBar {
    use std::io::IsTerminal;
    if hidden || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(total as u64);
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {{elapsed_precise}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

/// A [`basin_export::write_all`] writer of one 3D NIfTI volume.
fn nifti_writer<'a>(
    volume: &'a Array3<f32>,
    geom: &'a basin_export::geometry::StackGeometry,
    descrip: String,
) -> basin_export::Writer<'a> {
    Box::new(move |t: &Path| {
        basin_export::nifti_out::write_nifti(t, volume, geom, &descrip, false)
            .map_err(|e| e.to_string())
    })
}

/// Runs `basin recon`.
pub fn run(a: ReconArgs) -> Result<()> {
    let mut outputs = vec![(
        a.output.clone(),
        match a.format {
            Some(f) => f,
            None => format_of(&a.output)?,
        },
    )];
    for p in &a.also {
        outputs.push((p.clone(), format_of(p)?));
    }
    let mut paths: Vec<&Path> = outputs.iter().map(|(p, _)| p.as_path()).collect();
    paths.extend(a.preview.as_deref());
    paths.extend(a.energy_map.as_deref());
    paths.extend(a.uncertainty.as_deref());
    for (what, p) in [
        ("energy map", &a.energy_map),
        ("uncertainty map", &a.uncertainty),
    ] {
        if let Some(e) = p {
            if format_of(e).ok() != Some(Format::Nifti) {
                return Err(exit::usage(format!(
                    "{}: the {what} is written as NIfTI (.nii or .nii.gz)",
                    e.display()
                )));
            }
        }
    }
    if a.uncertainty.is_some() && a.samples < 2 {
        return Err(exit::usage(
            "--uncertainty needs --samples 2 or more (it is the standard deviation over the samples)",
        ));
    }
    if let Some(r) = &a.uid_root {
        basin_export::dicom::validate_uid_root(r).map_err(|e| exit::usage(e.to_string()))?;
    }
    let (protocol, protocol_source) = Protocol::locate(&a.protocol, None)?;
    let options = basin_recon::ReconOptions {
        samples: a.samples,
        seed: a.seed,
    };
    // Before reading the data: --samples with a protocol that cannot sample.
    options
        .check(&protocol)
        .map_err(|e| exit::usage(e.to_string()))?;
    // Before any work: no output replaces the input or another output, every directory takes
    // new files, and existing outputs need --force.
    if !a.input.is_file() {
        return Err(exit::input(format!("{}: no such file", a.input.display())));
    }
    basin_export::check_outputs(&[a.input.as_path()], &paths, a.force)?;
    let kspace = basin_mrd::read_kspace(&a.input, a.dataset.as_deref())?;
    for w in &kspace.warnings {
        eprintln!("warning: {}: {w}", a.input.display());
    }
    let total = kspace.buckets.len();
    let hidden = a.quiet || a.json;
    let bar = progress_bar(total, "reconstructing slices", hidden);
    let lines = !hidden && bar.is_hidden();
    // Only the EBM solver runs on a GPU: other protocols do not open (or probe for) a device.
    let device = if matches!(protocol.solver, basin_recon::Solver::Ebm(_)) {
        basin_gpu::Gpu::open(a.backend)?
    } else {
        if a.backend == basin_gpu::Backend::Gpu {
            tracing::warn!(
                "protocol {} runs on the CPU: --backend gpu applies to the EBM solver",
                protocol.name
            );
        }
        None
    };
    let device_name = device
        .as_ref()
        .map_or_else(|| "cpu".to_string(), |g| g.description().to_string());
    if !hidden {
        eprintln!("device: {device_name}");
    }
    let result = reconstruct_on(&protocol, &kspace, device.as_ref(), &options, &|done, n| {
        bar.set_position(done as u64);
        if lines {
            eprintln!("reconstructed slice {done}/{n}");
        }
    })
    .context("reconstruction failed")?;
    bar.finish_and_clear();

    // Stack: volumes grouped by (contrast, repetition, set); within each, slices ordered along
    // the slice normal (2D) or the partitions of one slab (3D).
    let mut groups: std::collections::BTreeMap<(u16, u16, u16), Vec<&basin_recon::SliceResult>> =
        Default::default();
    for s in &result.slices {
        groups
            .entry((s.key.contrast, s.key.repetition, s.key.set))
            .or_default()
            .push(s);
    }
    let enc = kspace.header.first_encoding().cloned().unwrap_or_default();
    let fov = [
        enc.reconSpace.fieldOfView_mm.x,
        enc.reconSpace.fieldOfView_mm.y,
        enc.reconSpace.fieldOfView_mm.z,
    ];
    let mut vols: Vec<Array3<f32>> = Vec::new();
    let mut cvols: Vec<Array3<basin_core::C32>> = Vec::new();
    let mut geom = None;
    let mut first_cvol: Option<Array3<basin_core::C32>> = None;
    let mut first_sd: Option<Array3<f32>> = None;
    for slices in groups.values_mut() {
        slices.sort_by(|a, b| {
            slice_location(&a.geometry)
                .total_cmp(&slice_location(&b.geometry))
                .then(a.key.slice.cmp(&b.key.slice))
        });
        let views: Vec<_> = slices.iter().map(|s| s.image.view()).collect();
        let cvol = ndarray::concatenate(Axis(0), &views)?;
        let vol = cvol.mapv(|v| v.norm());
        if first_cvol.is_none() && a.energy_map.is_some() {
            first_cvol = Some(cvol.clone());
        }
        if first_sd.is_none() && a.uncertainty.is_some() {
            let sds = slices
                .iter()
                .map(|s| s.uncertainty.as_ref().map(|u| u.view()))
                .collect::<Option<Vec<_>>>()
                .context("a slice has no uncertainty map")?;
            first_sd = Some(ndarray::concatenate(Axis(0), &sds)?);
        }
        if a.complex {
            cvols.push(cvol);
        }
        if geom.is_none() {
            let (nz, ny, nx) = vol.dim();
            let gs: Vec<_> = slices.iter().map(|s| s.geometry).collect();
            geom = Some(stack_geometry(&gs, nx, ny, nz, fov, kspace.three_d));
        }
        vols.push(vol);
    }
    let geom = geom.context("no slices were reconstructed")?;
    let mut warnings = kspace.warnings.clone();
    if geom.fallback && !warnings.iter().any(|w| w.contains("fall")) {
        warnings.push("geometry fell back to axial orientation".into());
    }
    let descrip = format!(
        "basin {} protocol {}",
        env!("CARGO_PKG_VERSION"),
        protocol.name
    );
    let shape = {
        let (nz, ny, nx) = vols[0].dim();
        [nx, ny, nz, vols.len()]
    };
    if vols.iter().any(|v| v.dim() != vols[0].dim()) {
        return Err(exit::input(
            "volumes of different shapes cannot be stacked into one NIfTI",
        ));
    }
    let views: Vec<_> = vols.iter().map(|v| v.view().insert_axis(Axis(0))).collect();
    let v4: Array4<f32> = ndarray::concatenate(Axis(0), &views)?;
    let c4 = if a.complex {
        let cv: Vec<_> = cvols
            .iter()
            .map(|v| v.view().insert_axis(Axis(0)))
            .collect();
        Some(ndarray::concatenate(Axis(0), &cv)?)
    } else {
        None
    };
    for (path, format) in &outputs {
        if *format == Format::Dicom && vols.len() > 1 {
            warnings.push(format!("{}: DICOM holds the first of {} volumes (contrast/repetition); use NIfTI or ISMRMRD for all", path.display(), vols.len()));
        }
    }
    let energy = match (&a.energy_map, &first_cvol) {
        (Some(_), Some(cv)) => {
            let (model, _) = basin_prior::default_model().context("the embedded prior")?;
            Some(basin_prior::validate::energy_density_volume(
                &basin_prior::fast::FastPyramid::new(&model),
                cv,
            ))
        }
        _ => None,
    };
    let dicom_opts = basin_export::dicom::DicomOptions {
        series_description: format!("basin {}: {}", protocol.name, protocol.description),
        uid_root: a.uid_root.clone(),
        anonymize: a.anonymize,
        overwrite: false,
        three_d: kspace.three_d,
    };
    // Every output is written to a temporary sibling; they are moved into place together,
    // or, when any fails, none is.
    let (geom, descrip, v4, vols, c4) = (&geom, &descrip, &v4, &vols, &c4);
    let mut writes: Vec<basin_export::Output<'_>> = Vec::new();
    for (path, format) in &outputs {
        let dicom_opts = &dicom_opts;
        let header = &kspace.header;
        let w: basin_export::Writer<'_> = match format {
            Format::Nifti if vols.len() == 1 => nifti_writer(&vols[0], geom, descrip.clone()),
            Format::Nifti => Box::new(move |t: &Path| {
                basin_export::nifti_out::write_nifti_4d(t, v4, geom, descrip, false)
                    .map_err(|e| e.to_string())
            }),
            Format::Ismrmrd => Box::new(move |t: &Path| {
                basin_export::ismrmrd_out::write_ismrmrd_images(
                    t,
                    v4,
                    c4.as_ref(),
                    geom,
                    descrip,
                    false,
                )
                .map_err(|e| e.to_string())
            }),
            Format::Dicom => Box::new(move |t: &Path| {
                basin_export::dicom::write_dicom_series(t, &vols[0], geom, header, dicom_opts)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        };
        writes.push((path.clone(), w));
    }
    if let Some(p) = &a.preview {
        writes.push((
            p.clone(),
            Box::new(move |t: &Path| {
                basin_export::preview::write_preview(t, &vols[0], false).map_err(|e| e.to_string())
            }),
        ));
    }
    if let (Some(p), Some(map)) = (&a.energy_map, &energy) {
        let d = format!(
            "basin energy density, sigma {}",
            basin_prior::validate::SCORE_SIGMA
        );
        writes.push((p.clone(), nifti_writer(map, geom, d)));
    }
    if let (Some(p), Some(sd)) = (&a.uncertainty, &first_sd) {
        let d = format!("basin posterior sd, {} samples", a.samples);
        writes.push((p.clone(), nifti_writer(sd, geom, d)));
    }
    basin_export::write_all(writes, a.force)?;
    for w in &warnings[kspace.warnings.len()..] {
        eprintln!("warning: {w}");
    }
    let summary = Summary {
        input: a.input.display().to_string(),
        outputs: outputs
            .iter()
            .map(|(p, f)| OutputSummary {
                path: p.display().to_string(),
                format: *f,
            })
            .collect(),
        schema: 1,
        basin_version: env!("CARGO_PKG_VERSION"),
        protocol: ProtocolSummary {
            name: &protocol.name,
            source: &protocol_source,
            parameters: &protocol,
        },
        device: device_name,
        samples: a.samples,
        shape_xyzt: shape,
        spacing_mm: geom.spacing,
        fallback_geometry: geom.fallback,
        slices: result
            .slices
            .iter()
            .map(|s| SliceSummary {
                slice: s.key.slice,
                contrast: s.key.contrast,
                repetition: s.key.repetition,
                set: s.key.set,
                diagnostics: s.diagnostics.clone(),
            })
            .collect(),
        warnings,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !a.quiet {
        let secs: f64 = summary.slices.iter().map(|s| s.diagnostics.seconds).sum();
        let names: Vec<String> = outputs
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        eprintln!(
            "wrote {} ({}×{}×{}×{}, protocol {}, {:.2} s)",
            names.join(", "),
            shape[0],
            shape[1],
            shape[2],
            shape[3],
            protocol.name,
            secs
        );
    }
    Ok(())
}
