//! Simulations written as files a user (or `basin compare`) reads: the ISMRMRD acquisition, its
//! ground truth as NIfTI on the grid `basin recon` writes (same affine), the true coil maps, and
//! a JSON record of everything simulated — all together or none. Behind `basin phantom --from`
//! and `basin phantom --suite`.

use crate::realistic::{mean_abs_correlation, simulate, RealisticSpec, Simulation};
use crate::{Description, PhantomError};
use basin_core::{C32, C64};
use basin_export::geometry::StackGeometry;
use basin_export::ExportError;
use basin_mrd::{Acquisition, IsmrmrdHeader, KSpace, MrdError};
use ndarray::{Array3, Array4, Axis};
use std::path::{Path, PathBuf};

/// Complex samples per coil in a simulated noise scan.
pub const NOISE_SAMPLES: usize = 2048;

/// Why a simulation could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A parameter is out of range.
    #[error(transparent)]
    Phantom(#[from] PhantomError),
    /// An output exists, would replace an input, or cannot be written; or the image could not be
    /// read.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The simulated acquisition does not assemble (a bug) or cannot be written.
    #[error(transparent)]
    Mrd(#[from] MrdError),
}

/// `OUT.h5` → `OUT` + `suffix` next to it (`.h5` or `.mrd` dropped).
pub fn sibling(output: &Path, suffix: &str) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".h5")
        .or_else(|| name.strip_suffix(".mrd"))
        .unwrap_or(&name);
    output.with_file_name(format!("{stem}{suffix}"))
}

/// The files of one simulation: `OUT.h5`, `OUT_truth.nii.gz`, `OUT_maps.nii.gz`, `OUT.json`.
#[derive(Clone, Debug)]
pub struct SimFiles {
    /// The ISMRMRD acquisition.
    pub acquisition: PathBuf,
    /// The ground truth on `basin recon`'s grid.
    pub truth: PathBuf,
    /// The true coil maps (volume 2c: coil c's real part, 2c+1: its imaginary part).
    pub maps: PathBuf,
    /// The JSON record.
    pub record: PathBuf,
}

impl SimFiles {
    /// The files of a simulation written to `output`.
    pub fn of(output: &Path) -> Self {
        SimFiles {
            acquisition: output.to_path_buf(),
            truth: sibling(output, "_truth.nii.gz"),
            maps: sibling(output, "_maps.nii.gz"),
            record: sibling(output, ".json"),
        }
    }

    /// All four paths.
    pub fn paths(&self) -> [&Path; 4] {
        [&self.acquisition, &self.truth, &self.maps, &self.record]
    }
}

/// Where the simulated image came from, for the record.
#[derive(Clone, Debug)]
pub struct Source {
    /// The image file (or a description of a built-in image).
    pub name: String,
    /// Its slices that were simulated (A to B−1).
    pub slices: std::ops::Range<usize>,
    /// Its voxel size (x, y, z) in mm.
    pub spacing: [f64; 3],
    /// The covariance file given, if any.
    pub noise_cov_given: Option<String>,
    /// The contrast synthesised from the image before the simulation ([`crate::contrast`]),
    /// if any.
    pub contrast: Option<crate::contrast::ContrastSpec>,
}

/// Simulates `image` (`[z, y, x]` axial slices) with `spec` and writes the four files of
/// `files` together (or none); `inputs` are files the outputs must not replace. Returns the
/// simulation.
pub fn simulate_to_files(
    image: &Array3<f32>,
    source: &Source,
    spec: &RealisticSpec,
    files: &SimFiles,
    inputs: &[&Path],
    force: bool,
) -> Result<Simulation, FilesError> {
    basin_export::check_outputs(inputs, &files.paths(), force)?;
    let sim = simulate(image, spec)?;
    let fov = [
        spec.matrix.1 as f64 * source.spacing[0],
        spec.matrix.0 as f64 * source.spacing[1],
        source.spacing[2],
    ];
    let d = Description {
        patient_name: "Simulation^basin".into(),
        patient_id: format!("basin-sim-{}", spec.seed),
        study: format!("basin realistic simulation of {}", source.name),
        protocol: format!(
            "simulation R{} {:?} SNR {} {} coils",
            spec.accel, spec.mask, spec.snr, spec.coils
        ),
        model: "realistic simulator".into(),
    };
    let (header, acqs) = crate::acquisition_to_ismrmrd(
        &d,
        sim.kspace.view(),
        &sim.lines,
        &sim.acs,
        spec.accel,
        fov,
        &sim.noise_scan,
    );
    // The truth's grid: the geometry basin recon derives from these very acquisitions.
    let kspace = basin_mrd::assemble(&files.acquisition, header.clone(), &acqs)?;
    let buckets = recon_order(&kspace);
    let order: Vec<usize> = buckets.iter().map(|b| b.key.slice as usize).collect();
    let truth = sim.truth.select(Axis(0), &order);
    let maps = interleaved_maps(&sim.maps, &order);
    let (_, _, ny, nx) = sim.maps.dim();
    let geom = recon_geometry(&buckets, nx, ny, fov);
    let json = record(source, spec, &sim, files);
    write_together(
        files,
        &header,
        &acqs,
        &truth,
        Some(&maps),
        &geom,
        json,
        force,
    )?;
    Ok(sim)
}

/// The buckets of `kspace` in the order `basin recon` stacks them.
fn recon_order(kspace: &KSpace) -> Vec<&basin_mrd::Bucket> {
    let mut order: Vec<&basin_mrd::Bucket> = kspace.buckets.iter().collect();
    basin_export::geometry::sort_for_stack(&mut order, |b| (&b.geometry, b.key.slice));
    order
}

/// The geometry of the stack `basin recon` writes from `order` (see [`recon_order`]).
fn recon_geometry(
    order: &[&basin_mrd::Bucket],
    nx: usize,
    ny: usize,
    fov: [f64; 3],
) -> StackGeometry {
    let gs: Vec<_> = order.iter().map(|b| b.geometry).collect();
    basin_export::geometry::stack_geometry(&gs, nx, ny, gs.len(), fov, false)
}

/// Coil maps `[c, z, y, x]` as the real `[2c, z, y, x]` volume written next to a simulation
/// (volume 2c: coil c's real part, 2c+1: its imaginary part), slices taken in `order`.
fn interleaved_maps(maps: &Array4<C32>, order: &[usize]) -> Array4<f32> {
    let (nc, _, ny, nx) = maps.dim();
    Array4::from_shape_fn((2 * nc, order.len(), ny, nx), |(t, z, y, x)| {
        let v = maps[[t / 2, order[z], y, x]];
        if t % 2 == 0 {
            v.re
        } else {
            v.im
        }
    })
}

/// Writes the acquisition, truth, maps (when given) and record together.
#[allow(clippy::too_many_arguments)]
fn write_together(
    files: &SimFiles,
    header: &IsmrmrdHeader,
    acqs: &[Acquisition],
    truth: &Array3<f32>,
    maps: Option<&Array4<f32>>,
    geom: &StackGeometry,
    json: String,
    force: bool,
) -> Result<(), FilesError> {
    let descrip = format!("basin {} simulation truth", env!("CARGO_PKG_VERSION"));
    let mut outputs: Vec<basin_export::Output<'_>> = vec![
        (
            files.acquisition.clone(),
            Box::new(|tmp: &Path| {
                basin_mrd::io::write_ismrmrd(tmp, "dataset", header, acqs)
                    .map_err(|e| e.to_string())
            }),
        ),
        (
            files.truth.clone(),
            Box::new(|tmp: &Path| {
                basin_export::nifti_out::write_nifti(tmp, truth, geom, &descrip, true)
                    .map_err(|e| e.to_string())
            }),
        ),
        (
            files.record.clone(),
            Box::new(move |tmp: &Path| std::fs::write(tmp, json).map_err(|e| e.to_string())),
        ),
    ];
    if let Some(maps) = maps {
        outputs.push((
            files.maps.clone(),
            Box::new(|tmp: &Path| {
                basin_export::nifti_out::write_nifti_4d(tmp, maps, geom, "coil maps", true)
                    .map_err(|e| e.to_string())
            }),
        ));
    }
    basin_export::write_all(outputs, force)?;
    Ok(())
}

/// The JSON record of a realistic simulation.
fn record(source: &Source, spec: &RealisticSpec, sim: &Simulation, files: &SimFiles) -> String {
    let n = sim.noise_cov.shape()[0];
    let rel = sim
        .noise_cov
        .mapv(|v| v / (sim.sigma * sim.sigma).max(1e-300));
    let cov = if sim.sigma > 0.0 {
        &rel
    } else {
        &sim.noise_cov
    };
    let part = |f: fn(&C64) -> f64| -> Vec<Vec<f64>> {
        (0..n)
            .map(|i| (0..n).map(|j| f(&cov[[i, j]])).collect())
            .collect()
    };
    let v = serde_json::json!({
        "schema": 1,
        "basin": env!("CARGO_PKG_VERSION"),
        "kind": "realistic",
        "source": source.name,
        "source_slices": [source.slices.start, source.slices.end],
        "voxel_mm": source.spacing,
        "matrix": [spec.matrix.0, spec.matrix.1],
        "coils": spec.coils,
        "coil_model": "birdcage (SigPy birdcage_maps: loops on a circle of radius 1.5, unit root sum of squares), ring rotated at random",
        "upsampling": "2x Keys cubic convolution (a = -0.5) with a random sub-pixel offset; k-space cropped to the matrix",
        "accel": spec.accel,
        "mask": format!("{:?}", spec.mask).to_lowercase(),
        "center_fraction": spec.center_fraction,
        "lines": sim.lines.iter().enumerate().filter(|(_, &l)| l).map(|(i, _)| i).collect::<Vec<_>>(),
        "acs_lines": sim.acs.iter().filter(|&&l| l).count(),
        "snr": spec.snr.is_finite().then_some(spec.snr),
        "snr_definition": "mean truth magnitude in tissue (> 20 % of its p99) over the mean coil noise standard deviation per complex k-space sample",
        "sigma": sim.sigma,
        "tissue_mean": sim.tissue_mean,
        "noise_cov": {"real": part(|v| v.re), "imag": part(|v| v.im), "scale": "relative: multiply by sigma^2 for the absolute covariance per sample"},
        "noise_mean_abs_correlation": mean_abs_correlation(&sim.noise_cov),
        "noise_samples": if sim.noise_scan.iter().any(|v| v.norm_sqr() > 0.0) { sim.noise_scan.shape()[1] } else { 0 },
        "noise_cov_given": source.noise_cov_given,
        "contrast": source.contrast,
        "seed": spec.seed,
        "offsets_px": sim.offsets.iter().map(|o| [o.0, o.1]).collect::<Vec<_>>(),
        "lesions": sim.lesions.iter().enumerate().flat_map(|(z, ls)| ls.iter().map(move |l| serde_json::json!({
            "slice": z, "y": l.y, "x": l.x, "radius_px": l.r, "factor": l.factor,
        }))).collect::<Vec<_>>(),
        "truth": file_name(&files.truth),
        "truth_definition": "magnitude of the high-resolution object low-passed to the matrix (p99 of the input = 1); slices in the order basin recon writes them",
        "maps": file_name(&files.maps),
        "maps_layout": "4D: volume 2c is coil c's real part, 2c+1 its imaginary part",
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

fn file_name(p: &Path) -> Option<String> {
    p.file_name().map(|n| n.to_string_lossy().to_string())
}

/// One analytic phantom ([`crate::generate`]) written as an acquisition, its truth on the recon
/// grid, its true maps and a record (analytic k-space: the truth is the ellipses' values at the
/// pixel centres).
pub fn phantom_to_files(
    spec: &crate::PhantomSpec,
    files: &SimFiles,
    force: bool,
) -> Result<crate::Phantom, FilesError> {
    basin_export::check_outputs(&[], &files.paths(), force)?;
    let p = crate::generate(spec)?;
    let (header, acqs) = crate::to_ismrmrd(&p, spec);
    let kspace = basin_mrd::assemble(&files.acquisition, header.clone(), &acqs)?;
    let n = spec.matrix;
    let truth = p.truth.clone().insert_axis(Axis(0));
    let maps = interleaved_maps(&p.maps.clone().insert_axis(Axis(1)), &[0]);
    let fov = [crate::FOV_MM, crate::FOV_MM, 5.0];
    let geom = recon_geometry(&recon_order(&kspace), n, n, fov);
    let v = serde_json::json!({
        "schema": 1,
        "basin": env!("CARGO_PKG_VERSION"),
        "kind": "analytic",
        "phantom": match spec.kind { crate::Kind::SheppLogan => "shepp-logan", crate::Kind::Brain => "brain-ellipses" },
        "matrix": [n, n],
        "coils": spec.coils,
        "accel": spec.accel,
        "mask": format!("{:?}", spec.mask).to_lowercase(),
        "center_fraction": spec.center_fraction,
        "lines": p.lines.iter().enumerate().filter(|(_, &l)| l).map(|(i, _)| i).collect::<Vec<_>>(),
        "acs_lines": p.acs.iter().filter(|&&l| l).count(),
        "noise": spec.noise,
        "seed": spec.seed,
        "lesions": [],
        "truth": file_name(&files.truth),
        "truth_definition": "the ellipses' values at the pixel centres (analytic k-space)",
        "maps": file_name(&files.maps),
    });
    let json = serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    write_together(
        files,
        &header,
        &acqs,
        &truth,
        Some(&maps),
        &geom,
        json,
        force,
    )?;
    Ok(p)
}
