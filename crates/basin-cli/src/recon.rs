//! `basin recon`: read, reconstruct with a protocol, write NIfTI.

use anyhow::Result;
use basin_recon::consistency::MISFIT_OUTLIER;
use basin_recon::pipeline::{format_of, Event, Format, Job, Outputs, Pipeline};
use basin_recon::{protocol::DEFAULT_PROTOCOL, Protocol};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::PathBuf;

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
    #[arg(long, value_name = "nifti|dicom|ismrmrd")]
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
    /// validation anatomy it correlates weakly with the actual error (Pearson 0.07–0.09 with 8
    /// samples on realistic acquisitions). Nominal 90 % per-pixel intervals, k calibrated on
    /// training anatomy (benches/uncertainty-k.sh): mean ± 3.32 SD at 4× (equispaced, 8 %
    /// centre; it covered 89 % of validation pixels, 83–95 % per slice) and mean ± 7.33 SD at
    /// 8× (random, 4 % centre; 91 %, 79–98 % per slice). Needs --samples 2 or more.
    #[arg(long, value_name = "NIFTI")]
    pub uncertainty: Option<PathBuf>,
    /// Judge the image against the data it came from, as `basin score IMAGE --kspace` does
    /// (CG-SENSE calibration of the same file; 2D acquisitions): per slice the residual over
    /// the noise and where the image departs locally from the data; a slice whose worst misfit
    /// exceeds 12× its typical misfit is reported (a warning, and `inconsistent` in --json) —
    /// the prior put in or took out a structure the data do not support. Costs about a
    /// CG-SENSE reconstruction more.
    #[arg(long)]
    pub check_data: bool,
    /// Also write the signed data-misfit map of the (first) image volume as NIfTI, in units of
    /// the noise's standard deviation: positive where the image is brighter than the data
    /// support, negative where darker (implies --check-data). With --energy-map it locates
    /// both terms of the posterior energy: the data's and the prior's.
    #[arg(long, value_name = "NIFTI")]
    pub misfit_map: Option<PathBuf>,
    /// Seed of the posterior samples (the same seed gives the same samples).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Refuse a run whose estimated peak resident memory is larger than this (e.g. 8G, 512M;
    /// a cluster job's memory request): reading, from the file's size before it is read;
    /// reconstruction, after reading and before any work. The larger estimate (within
    /// ~1.3–1.6× of measured peaks) is in --json as memory_estimate_bytes.
    #[arg(long, value_name = "SIZE", value_parser = basin_recon::memory::parse_size)]
    pub max_memory: Option<u64>,
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
    pub backend: basin_recon::Backend,
    /// Device memory one batched GPU solve may use (e.g. 16G; default 4G): with the EBM
    /// solver on a GPU, a 2D acquisition's slices are solved together, as many per launch
    /// sequence as fit (about 50 slices of 256² with 8 coils in 4G), each slice its own
    /// problem — the same images as one slice at a time, with less launch overhead. Raise it
    /// on a large GPU; lower it when the device runs out of memory.
    #[arg(long, value_name = "SIZE", value_parser = basin_recon::memory::parse_size)]
    pub gpu_memory: Option<u64>,
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
    /// The slice against its data (--check-data).
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<basin_recon::consistency::SliceMisfit>,
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
    /// The estimated peak resident memory (bytes) that --max-memory is compared with.
    memory_estimate_bytes: u64,
    /// Posterior samples per slice (0: none); with samples the image is their mean.
    samples: usize,
    shape_xyzt: [usize; 4],
    spacing_mm: [f64; 3],
    fallback_geometry: bool,
    slices: Vec<SliceSummary>,
    /// Slices (of the first volume, in output order) flagged by --check-data.
    #[serde(skip_serializing_if = "Option::is_none")]
    inconsistent: Option<Vec<usize>>,
    /// The outlier threshold of --check-data.
    #[serde(skip_serializing_if = "Option::is_none")]
    misfit_threshold: Option<f64>,
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

/// Runs `basin recon`: the library pipeline does the work; this prints.
pub fn run(a: ReconArgs) -> Result<()> {
    let mut images = vec![(
        a.output.clone(),
        match a.format {
            Some(f) => f,
            None => format_of(&a.output)?,
        },
    )];
    for p in &a.also {
        images.push((p.clone(), format_of(p)?));
    }
    let outputs = Outputs {
        images,
        preview: a.preview.clone(),
        energy_map: a.energy_map.clone(),
        uncertainty: a.uncertainty.clone(),
        check_data: a.check_data,
        misfit_map: a.misfit_map.clone(),
        complex: a.complex,
        anonymize: a.anonymize,
        uid_root: a.uid_root.clone(),
    };
    let (protocol, protocol_source) = Protocol::locate(&a.protocol, None)?;
    let options = basin_recon::ReconOptions {
        samples: a.samples,
        seed: a.seed,
        max_memory: a.max_memory,
        gpu_memory: a.gpu_memory,
    };
    let hidden = a.quiet || a.json;
    let bar = progress_bar(0, "reconstructing slices", hidden);
    let lines = !hidden && bar.is_hidden();
    let pipeline = Pipeline::new(a.backend);
    let job = Job {
        input: &a.input,
        dataset: a.dataset.as_deref(),
        protocol: &protocol,
        options,
        outputs: &outputs,
        force: a.force,
    };
    let report = pipeline.run(&job, &|e| match e {
        Event::Read(k) => {
            for w in &k.warnings {
                eprintln!("warning: {}: {w}", a.input.display());
            }
            bar.set_length(k.buckets.len() as u64);
        }
        Event::Device(d) => {
            if !hidden {
                eprintln!("device: {d}");
            }
        }
        Event::Slice(done, n) => {
            bar.set_position(done as u64);
            if lines {
                eprintln!("reconstructed slice {done}/{n}");
            }
        }
    });
    bar.finish_and_clear();
    let report = report?;
    for w in &report.warnings[report.input_warnings..] {
        eprintln!("warning: {w}");
    }
    let inconsistent = report.misfit.as_ref().map(|m| m.flagged_slices());
    if let (Some(m), Some(bad)) = (&report.misfit, &inconsistent) {
        if !a.json {
            for &z in bad {
                let w = m.worst[z];
                eprintln!(
                    "warning: output slice {z} (acquisition slice {}) departs from the data at row {}, column {} (misfit {:+.1}, {:.1}× the slice's typical misfit > {MISFIT_OUTLIER}): {} there than the data support",
                    m.keys[z].slice,
                    w.y,
                    w.x,
                    w.z,
                    m.outlier(z),
                    if w.z > 0.0 { "brighter" } else { "darker" }
                );
            }
            if !a.quiet {
                eprintln!(
                    "data check: {} of {} slices depart locally from the data",
                    bad.len(),
                    m.spread.len()
                );
            }
        }
    }
    let shape = report.shape_xyzt;
    let summary = Summary {
        input: a.input.display().to_string(),
        outputs: outputs
            .images
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
        device: report.device,
        memory_estimate_bytes: report.memory_estimate,
        samples: a.samples,
        shape_xyzt: shape,
        spacing_mm: report.spacing_mm,
        fallback_geometry: report.fallback_geometry,
        slices: report
            .result
            .slices
            .iter()
            .map(|s| SliceSummary {
                slice: s.key.slice,
                contrast: s.key.contrast,
                repetition: s.key.repetition,
                set: s.key.set,
                diagnostics: s.diagnostics.clone(),
                data: report.misfit.as_ref().and_then(|m| {
                    let z = m.keys.iter().position(|k| *k == s.key)?;
                    Some(m.summary(z))
                }),
            })
            .collect(),
        inconsistent,
        misfit_threshold: report.misfit.as_ref().map(|_| MISFIT_OUTLIER),
        warnings: report.warnings,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if !a.quiet {
        let secs: f64 = summary.slices.iter().map(|s| s.diagnostics.seconds).sum();
        let names: Vec<String> = outputs
            .images
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
