//! `basin phantom`: writes a simulated acquisition as ISMRMRD HDF5 — an analytic ellipse
//! phantom, or (`--from IMAGE`) the realistic simulation of a real image with its ground truth
//! on basin's output grid, the true coil maps and a JSON record of what was simulated.

use anyhow::{bail, Context, Result};
use basin_core::C64;
use basin_phantom::realistic::{mean_abs_correlation, simulate, RealisticSpec, Simulation};
use basin_phantom::{generate, to_ismrmrd, Kind, MaskKind, PhantomSpec};
use clap::{Args, ValueEnum};
use ndarray::{Array2, Array3, Array4, Axis};
use std::path::{Path, PathBuf};

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
#[command(after_help = "\
With --from IMAGE (a NIfTI file or a DICOM series; one slice or a volume of axial slices), the \
image's magnitude is simulated as a real scanner would acquire it: upsampled 2x (cubic, off the \
grid by a random sub-pixel offset), a smooth random phase, birdcage coils, k-space cropped to the \
matrix, correlated coil noise at --snr with a noise scan, a fastMRI mask. Next to OUT.h5 it writes \
OUT_truth.nii.gz (the ground truth on the grid 'basin recon OUT.h5' writes, same affine), \
OUT_maps.nii.gz (true coil maps: volume 2c is coil c's real part, 2c+1 its imaginary part) and \
OUT.json (everything simulated: covariance, lines, lesions, seed). All four appear together or \
not at all.

Example:
  basin phantom --from brain.nii.gz --slices 80:83 --accel 4 --snr 50 --lesions 4 -o sim.h5
  basin recon sim.h5 -o recon.nii.gz      # compare with sim_truth.nii.gz")]
pub struct PhantomArgs {
    /// Simulate a realistic acquisition of this image (NIfTI, or a DICOM file or series
    /// directory) instead of an analytic phantom.
    #[arg(long, value_name = "IMAGE")]
    pub from: Option<PathBuf>,
    /// Axial slices of --from to simulate: N, or A:B (A to B−1); default all.
    #[arg(long, requires = "from")]
    pub slices: Option<String>,
    /// SNR of the fully sampled coil-combined image in tissue (mean tissue magnitude over the
    /// mean coil noise standard deviation), with --from; "inf" for noise-free data.
    #[arg(long, default_value_t = 50.0, requires = "from")]
    pub snr: f64,
    /// Relative coil noise covariance for --from: a JSON file with "real" and "imag" matrices
    /// (coils × coils), or the JSON a previous simulation wrote. Default: a generated one like a
    /// real receive array's (variances 0.5–1.4, neighbour correlations, mean |ρ| ≈ 0.2).
    #[arg(long, value_name = "FILE", requires = "from")]
    pub noise_cov: Option<PathBuf>,
    /// Small disks of ±20 % contrast (3–6 px across) per slice on flat tissue, with --from;
    /// recorded in the JSON.
    #[arg(long, default_value_t = 0, requires = "from")]
    pub lesions: usize,
    /// Voxel size in mm (x y z) of --from, overriding the NIfTI header (DICOM series: 1 mm
    /// unless given).
    #[arg(long, num_args = 3, value_names = ["X", "Y", "Z"], requires = "from")]
    pub voxel_mm: Option<Vec<f64>>,
    /// Phantom (without --from).
    #[arg(
        long,
        value_enum,
        default_value = "shepp-logan",
        conflicts_with = "from"
    )]
    pub kind: KindArg,
    /// Matrix size N (N×N, 16–1024; default 256, or with --from the image's size rounded up to
    /// even).
    #[arg(long)]
    pub matrix: Option<usize>,
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
    /// Noise standard deviation relative to the k-space peak (0 = none), without --from.
    #[arg(long, default_value_t = 0.0005, conflicts_with = "from")]
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
    if a.from.is_some() {
        return run_from(a);
    }
    let matrix = a.matrix.unwrap_or(256);
    let spec = PhantomSpec {
        kind: match a.kind {
            KindArg::SheppLogan => Kind::SheppLogan,
            KindArg::Brain => Kind::Brain,
        },
        matrix,
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
    basin_export::check_outputs(&[], &[a.output.as_path()], a.force)?;
    let p = generate(&spec)?;
    let (header, acqs) = to_ismrmrd(&p, &spec);
    basin_export::atomic_write(&a.output, a.force, |tmp| {
        basin_mrd::io::write_ismrmrd(tmp, "dataset", &header, &acqs).map_err(|e| e.to_string())
    })
    .with_context(|| format!("writing {}", a.output.display()))?;
    eprintln!(
        "wrote {} ({}×{}, {} coils, {} of {} lines)",
        a.output.display(),
        matrix,
        matrix,
        a.coils,
        p.lines.iter().filter(|&&l| l).count(),
        matrix
    );
    Ok(())
}

/// `OUT.h5` → `OUT` + `suffix` next to it.
fn sibling(output: &Path, suffix: &str) -> PathBuf {
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

/// The image of `--from` as `[z, y, x]` axial slices (anterior up) and its voxel size (x, y, z).
fn read_image(path: &Path) -> Result<(Array3<f32>, [f64; 3])> {
    let is_nifti = {
        let n = path.to_string_lossy().to_lowercase();
        n.ends_with(".nii") || n.ends_with(".nii.gz")
    };
    if is_nifti {
        let (vol, h) = basin_export::nifti_in::read_nifti(path)?;
        let pix = [h.pixdim[1], h.pixdim[2], h.pixdim[3]].map(|d| {
            if d.is_finite() && d > 0.0 {
                d as f64
            } else {
                1.0
            }
        });
        // Voxel axes to R, A, S by the header's orientation (a stored LIA or LPS volume gives
        // axial slices too); without one, the voxel axes are taken as R, A, S.
        let axes = ras_axes(&h).unwrap_or([(0, false), (1, false), (2, false)]);
        let mut v = vol.permuted_axes([axes[0].0, axes[1].0, axes[2].0]);
        for (d, &(_, flip)) in axes.iter().enumerate() {
            if flip {
                v.invert_axis(Axis(d));
            }
        }
        let spacing = [pix[axes[0].0], pix[axes[1].0], pix[axes[2].0]];
        // [R, A, S] → axial slices [S, A, R] with anterior up.
        let mut v = v.permuted_axes([2, 1, 0]);
        v.invert_axis(Axis(1));
        Ok((v.as_standard_layout().to_owned(), spacing))
    } else {
        let v = basin_export::dicom_in::read_dicom_series(path)?;
        Ok((v, [1.0, 1.0, 1.0]))
    }
}

/// For the world axes R, A, S: the voxel axis nearest to each and whether it runs the other
/// way, from the sform (or else the qform) of a NIfTI header; `None` without a usable one.
fn ras_axes(h: &nifti::NiftiHeader) -> Option<[(usize, bool); 3]> {
    // m[w][j]: world component w of voxel axis j.
    let m: [[f64; 3]; 3] = if h.sform_code > 0 {
        let r = [h.srow_x, h.srow_y, h.srow_z];
        std::array::from_fn(|w| std::array::from_fn(|j| r[w][j] as f64))
    } else if h.qform_code > 0 {
        let (b, c, d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let r = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        std::array::from_fn(|w| {
            std::array::from_fn(|j| if j == 2 { r[w][j] * qfac } else { r[w][j] })
        })
    } else {
        return None;
    };
    let mut out = [(0usize, false); 3];
    let mut used = [false; 3];
    for (w, row) in m.iter().enumerate() {
        let j = (0..3).max_by(|&x, &y| row[x].abs().total_cmp(&row[y].abs()))?;
        if used[j] || row[j] == 0.0 || !row[j].is_finite() {
            return None;
        }
        used[j] = true;
        out[w] = (j, row[j] < 0.0);
    }
    Some(out)
}

/// `--slices`: N or A:B, within `n` slices.
fn slice_range(arg: Option<&str>, n: usize) -> Result<std::ops::Range<usize>> {
    let Some(s) = arg else { return Ok(0..n) };
    let parse = |t: &str| -> Result<usize> {
        t.trim()
            .parse::<usize>()
            .with_context(|| format!("--slices {s}: '{t}' is not a slice index"))
    };
    let r = match s.split_once(':') {
        Some((a, b)) => parse(a)?..parse(b)?,
        None => {
            let a = parse(s)?;
            a..a + 1
        }
    };
    if r.start >= r.end || r.end > n {
        return Err(crate::exit::usage(format!(
            "--slices {s}: the image has slices 0 to {} (A:B means A to B−1)",
            n - 1
        )));
    }
    Ok(r)
}

/// A relative noise covariance from JSON: {"real": [[..]], "imag": [[..]]}, or such an object
/// under the key "noise_cov" (the JSON a simulation writes).
fn read_covariance(path: &Path) -> Result<Array2<C64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let m = v.get("noise_cov").unwrap_or(&v);
    let part = |key: &str| -> Result<Vec<Vec<f64>>> {
        serde_json::from_value(m.get(key).cloned().unwrap_or(serde_json::Value::Null)).with_context(
            || {
                format!(
                    "{}: \"{key}\" must be a square matrix of numbers",
                    path.display()
                )
            },
        )
    };
    let (re, im) = (part("real")?, part("imag")?);
    let n = re.len();
    if n == 0 || im.len() != n || re.iter().chain(&im).any(|r| r.len() != n) {
        bail!(
            "{}: \"real\" and \"imag\" must both be n × n (n coils)",
            path.display()
        );
    }
    if re.iter().chain(&im).flatten().any(|v| !v.is_finite()) {
        bail!("{}: the covariance has non-finite entries", path.display());
    }
    Ok(Array2::from_shape_fn((n, n), |(i, j)| {
        C64::new(re[i][j], im[i][j])
    }))
}

/// Runs `basin phantom --from`.
fn run_from(a: PhantomArgs) -> Result<()> {
    let from = a.from.clone().context("--from")?;
    let truth_path = sibling(&a.output, "_truth.nii.gz");
    let maps_path = sibling(&a.output, "_maps.nii.gz");
    let json_path = sibling(&a.output, ".json");
    let inputs: Vec<&Path> = std::iter::once(from.as_path())
        .chain(a.noise_cov.as_deref())
        .collect();
    basin_export::check_outputs(
        &inputs,
        &[&a.output, &truth_path, &maps_path, &json_path],
        a.force,
    )?;
    let (image, header_spacing) = read_image(&from)?;
    let spacing = match &a.voxel_mm {
        Some(v) if v.iter().all(|d| d.is_finite() && *d > 0.0) => [v[0], v[1], v[2]],
        Some(v) => {
            return Err(crate::exit::usage(format!(
                "--voxel-mm {v:?}: sizes must be > 0"
            )))
        }
        None => header_spacing,
    };
    let range = slice_range(a.slices.as_deref(), image.dim().0)?;
    let image = image.slice(ndarray::s![range.clone(), .., ..]).to_owned();
    let (_, h, w) = image.dim();
    let matrix = match a.matrix {
        Some(n) => (n, n),
        None => (h + h % 2, w + w % 2),
    };
    let noise_cov = a.noise_cov.as_deref().map(read_covariance).transpose()?;
    let spec = RealisticSpec {
        matrix,
        coils: a.coils,
        accel: a.accel,
        center_fraction: a.center_fraction,
        mask: match a.mask {
            MaskArg::Equispaced => MaskKind::Equispaced,
            MaskArg::Random => MaskKind::Random,
        },
        snr: a.snr,
        noise_cov,
        lesions: a.lesions,
        noise_samples: NOISE_SAMPLES,
        seed: a.seed,
    };
    let sim = simulate(&image, &spec)?;
    let fov = [
        matrix.1 as f64 * spacing[0],
        matrix.0 as f64 * spacing[1],
        spacing[2],
    ];
    let d = basin_phantom::Description {
        patient_name: "Simulation^basin".into(),
        patient_id: format!("basin-sim-{}", a.seed),
        study: format!("basin realistic simulation of {}", from.display()),
        protocol: format!(
            "simulation R{} {:?} SNR {} {} coils",
            a.accel, spec.mask, a.snr, a.coils
        ),
        model: "realistic simulator".into(),
    };
    let (header, acqs) = basin_phantom::acquisition_to_ismrmrd(
        &d,
        sim.kspace.view(),
        &sim.lines,
        &sim.acs,
        a.accel,
        fov,
        &sim.noise_scan,
    );
    // The truth's grid: the geometry basin recon derives from these very acquisitions.
    let kspace = basin_mrd::assemble(&a.output, header.clone(), &acqs)?;
    let (truth, maps, geom) = on_recon_grid(&sim, &kspace, fov);
    let json = record(
        &a,
        &from,
        range,
        spacing,
        &spec,
        &sim,
        [&truth_path, &maps_path],
    )?;
    let descrip = format!("basin {} simulation truth", env!("CARGO_PKG_VERSION"));
    let output = a.output.clone();
    basin_export::write_all(
        vec![
            (
                output,
                Box::new(|tmp: &Path| {
                    basin_mrd::io::write_ismrmrd(tmp, "dataset", &header, &acqs)
                        .map_err(|e| e.to_string())
                }),
            ),
            (
                truth_path.clone(),
                Box::new(|tmp: &Path| {
                    basin_export::nifti_out::write_nifti(tmp, &truth, &geom, &descrip, true)
                        .map_err(|e| e.to_string())
                }),
            ),
            (
                maps_path.clone(),
                Box::new(|tmp: &Path| {
                    basin_export::nifti_out::write_nifti_4d(tmp, &maps, &geom, "coil maps", true)
                        .map_err(|e| e.to_string())
                }),
            ),
            (
                json_path.clone(),
                Box::new(move |tmp: &Path| std::fs::write(tmp, json).map_err(|e| e.to_string())),
            ),
        ],
        a.force,
    )?;
    eprintln!(
        "wrote {} ({} slices of {}×{}, {} coils, {} of {} lines, SNR {}), {}, {}, {}",
        a.output.display(),
        sim.truth.dim().0,
        matrix.0,
        matrix.1,
        a.coils,
        sim.lines.iter().filter(|&&l| l).count(),
        matrix.0,
        a.snr,
        truth_path.display(),
        maps_path.display(),
        json_path.display()
    );
    Ok(())
}

/// Complex samples per coil in the simulated noise scan.
const NOISE_SAMPLES: usize = 2048;

/// The truth `[z, y, x]` and maps `[2c, z, y, x]` (real, imaginary) stacked in the slice order
/// `basin recon` stacks the buckets of `kspace`, and that stack's geometry.
fn on_recon_grid(
    sim: &Simulation,
    kspace: &basin_mrd::KSpace,
    fov: [f64; 3],
) -> (
    Array3<f32>,
    Array4<f32>,
    basin_export::geometry::StackGeometry,
) {
    let mut order: Vec<&basin_mrd::Bucket> = kspace.buckets.iter().collect();
    order.sort_by(|a, b| {
        basin_export::geometry::slice_location(&a.geometry)
            .total_cmp(&basin_export::geometry::slice_location(&b.geometry))
            .then(a.key.slice.cmp(&b.key.slice))
    });
    let zs: Vec<usize> = order.iter().map(|b| b.key.slice as usize).collect();
    let truth = sim.truth.select(Axis(0), &zs);
    let (nc, _, ny, nx) = sim.maps.dim();
    let maps = Array4::from_shape_fn((2 * nc, zs.len(), ny, nx), |(t, z, y, x)| {
        let v = sim.maps[[t / 2, zs[z], y, x]];
        if t % 2 == 0 {
            v.re
        } else {
            v.im
        }
    });
    let gs: Vec<_> = order.iter().map(|b| b.geometry).collect();
    let geom = basin_export::geometry::stack_geometry(&gs, nx, ny, zs.len(), fov, false);
    (truth, maps, geom)
}

/// The JSON record of a simulation.
fn record(
    a: &PhantomArgs,
    from: &Path,
    range: std::ops::Range<usize>,
    spacing: [f64; 3],
    spec: &RealisticSpec,
    sim: &Simulation,
    files: [&Path; 2],
) -> Result<String> {
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
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string());
    let v = serde_json::json!({
        "schema": 1,
        "basin": env!("CARGO_PKG_VERSION"),
        "source": from.display().to_string(),
        "source_slices": [range.start, range.end],
        "voxel_mm": spacing,
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
        "noise_cov_given": a.noise_cov.as_ref().map(|p| p.display().to_string()),
        "seed": spec.seed,
        "offsets_px": sim.offsets.iter().map(|o| [o.0, o.1]).collect::<Vec<_>>(),
        "lesions": sim.lesions.iter().enumerate().flat_map(|(z, ls)| ls.iter().map(move |l| serde_json::json!({
            "slice": z, "y": l.y, "x": l.x, "radius_px": l.r, "factor": l.factor,
        }))).collect::<Vec<_>>(),
        "truth": name(files[0]),
        "truth_definition": "magnitude of the high-resolution object low-passed to the matrix (p99 of the input = 1); slices in the order basin recon writes them",
        "maps": name(files[1]),
        "maps_layout": "4D: volume 2c is coil c's real part, 2c+1 its imaginary part",
    });
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}
