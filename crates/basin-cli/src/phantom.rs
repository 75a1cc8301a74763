//! `basin phantom`: writes a simulated acquisition as ISMRMRD HDF5 — an analytic ellipse
//! phantom, or (`--from IMAGE`) the realistic simulation of a real image with its ground truth
//! on basin's output grid, the true coil maps and a JSON record of what was simulated.

use anyhow::{bail, Context, Result};
use basin_core::C64;
use basin_export::nifti_in::read_axial;
use basin_phantom::contrast::{synthesize, ContrastSpec, Sequence};
use basin_phantom::files::{simulate_to_files, SimFiles, Source, NOISE_SAMPLES};
use basin_phantom::realistic::RealisticSpec;
use basin_phantom::suite::{Anatomy, Setting, SuiteSpec};
use basin_phantom::{generate, to_ismrmrd, Kind, MaskKind, PhantomSpec};
use clap::{Args, ValueEnum};
use ndarray::Array2;
use std::path::{Path, PathBuf};

/// Ellipse set.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KindArg {
    /// Modified Shepp–Logan.
    SheppLogan,
    /// Brain-like ellipses with small lesions.
    Brain,
}

/// Which suite slices get lesion copies.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LesionSlicesArg {
    /// The first slice of each anatomy.
    First,
    /// Every anatomy slice.
    All,
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
    /// mean coil noise standard deviation), with --from or --suite; "inf" for noise-free data.
    #[arg(long, default_value_t = 50.0)]
    pub snr: f64,
    /// Relative coil noise covariance for --from: a JSON file with "real" and "imag" matrices
    /// (coils × coils), or the JSON a previous simulation wrote. Default: a generated one like a
    /// real receive array's (variances 0.5–1.4, neighbour correlations, mean |ρ| ≈ 0.2).
    #[arg(long, value_name = "FILE", requires = "from")]
    pub noise_cov: Option<PathBuf>,
    /// Small disks of ±20 % contrast (3–6 px across) per slice on flat tissue, with --from
    /// (default 0) or in the lesion cases of --suite (default 4); recorded in the JSON.
    #[arg(long)]
    pub lesions: Option<usize>,
    /// Voxel size in mm (x y z) of --from, overriding the NIfTI header (DICOM series: 1 mm
    /// unless given).
    #[arg(long, num_args = 3, value_names = ["X", "Y", "Z"], requires = "from")]
    pub voxel_mm: Option<Vec<f64>>,
    /// Before simulating, turn the --from image (a T1-weighted head) into another contrast
    /// with MR physics: tissues classified (intensity mixture + a brain mask), literature T1,
    /// T2, T2* and proton density per tissue, the sequence's signal equation — pd (FSE TR 3000,
    /// TE 15), t2 (FSE TR 5000, TE 100), flair (IR TR 9000, TI 2500, TE 120), t1 (spoiled GRE
    /// TR 20, TE 4, 25°), t2star (GRE TR 800, TE 20, 20°) — with a smooth per-voxel variation
    /// (5 %) and receive bias (±10 %). The truth is the synthesised image; the JSON records it.
    /// A synthesised contrast, not a scan: no texture beyond the tissues' partial volumes.
    #[arg(long, value_name = "NAME", requires = "from", value_parser = Sequence::PRESETS)]
    pub contrast: Option<String>,
    /// Field strength (T) whose tissue table --contrast (or an --anatomy CONTRAST) uses: 1.5 or 3.
    #[arg(long, default_value_t = 3.0)]
    pub field: f64,
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
    #[arg(short, long, required_unless_present = "suite")]
    pub output: Option<PathBuf>,
    /// Write a standard dataset for `basin compare` into this new directory instead: the analytic
    /// phantoms, the brain-ellipse image through the realistic simulator (with and without
    /// --lesions), and each --anatomy slice through it, at 4× (equispaced, 8 % centre) and 8×
    /// (random, 4 % centre); seeded from --seed; suite.json describes every case.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["from", "output"])]
    pub suite: Option<PathBuf>,
    /// With --suite: axial slices of a real image to simulate, NAME=IMAGE:SLICES[:CONTRAST]
    /// (NIfTI or DICOM; slices as N,N,… or A-B/STEP), e.g. mni=mni152.nii.gz:60-108/12.
    /// CONTRAST (pd, t2, flair, t1, t2star) first turns the image, a T1-weighted head, into that
    /// contrast as --contrast does (at --field), e.g. s1-t2=S1.nii.gz:135-175/10:t2; the case
    /// JSON records it. Repeatable.
    #[arg(long, value_name = "NAME=IMAGE:SLICES[:CONTRAST]", requires = "suite")]
    pub anatomy: Vec<String>,
    /// With --suite: accelerations, comma-separated; 4 means equispaced lines with an 8 % centre,
    /// 8 random lines with a 4 % centre (fastMRI's settings), any other R equispaced with a
    /// 0.32/R centre.
    #[arg(long, value_delimiter = ',', default_value = "4,8", requires = "suite")]
    pub accelerations: Vec<f64>,
    /// With --suite: which --anatomy slices also get a copy with lesions: the first of each
    /// anatomy, or all (for lesion studies).
    #[arg(long, value_enum, default_value = "first", requires = "suite")]
    pub lesion_slices: LesionSlicesArg,
    /// With --suite: no line per case.
    #[arg(short, long)]
    pub quiet: bool,
    /// Overwrite an existing output.
    #[arg(long)]
    pub force: bool,
}

/// Runs `basin phantom`.
pub fn run(a: PhantomArgs) -> Result<()> {
    if let Some(dir) = a.suite.clone() {
        return run_suite(a, dir);
    }
    let Some(output) = a.output.clone() else {
        return Err(crate::exit::usage(
            "give -o OUT.h5 (or --suite DIR for a dataset)",
        ));
    };
    if a.from.is_some() {
        return run_from(a, output);
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
    basin_export::check_outputs(&[], &[output.as_path()], a.force)?;
    let p = generate(&spec)?;
    let (header, acqs) = to_ismrmrd(&p, &spec);
    basin_export::atomic_write(&output, a.force, |tmp| {
        basin_mrd::io::write_ismrmrd(tmp, "dataset", &header, &acqs).map_err(|e| e.to_string())
    })
    .with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "wrote {} ({}×{}, {} coils, {} of {} lines)",
        output.display(),
        matrix,
        matrix,
        a.coils,
        p.lines.iter().filter(|&&l| l).count(),
        matrix
    );
    Ok(())
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

/// The contrast `name` as `--contrast` and an `--anatomy` CONTRAST simulate it (`seed`: --seed).
fn contrast_spec(name: &str, field: f64, seed: u64) -> Option<ContrastSpec> {
    ContrastSpec::preset(name, field, seed ^ 0xC0_17A5)
}

/// `--field`: the contrast synthesis has tissue tables for 1.5 and 3 T.
fn check_field(field: f64) -> Result<()> {
    if field == 1.5 || field == 3.0 {
        Ok(())
    } else {
        Err(crate::exit::usage(format!(
            "--field {field}: the tissue tables are for 1.5 and 3 T"
        )))
    }
}

/// Runs `basin phantom --from`.
fn run_from(a: PhantomArgs, output: PathBuf) -> Result<()> {
    let from = a.from.clone().context("--from")?;
    check_field(a.field)?;
    let files = SimFiles::of(&output);
    let inputs: Vec<&Path> = std::iter::once(from.as_path())
        .chain(a.noise_cov.as_deref())
        .collect();
    basin_export::check_outputs(&inputs, &files.paths(), a.force)?;
    let (image, header_spacing) = read_axial(&from)?;
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
    // The whole volume is classified (the brain mask is a 3D region), then sliced.
    let contrast = a
        .contrast
        .as_deref()
        .map(|name| contrast_spec(name, a.field, a.seed).expect("clap checked the name"));
    let image = match &contrast {
        Some(c) => synthesize(image.view(), c),
        None => image,
    };
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
        mask: mask_kind(a.mask),
        snr: a.snr,
        noise_cov,
        lesions: a.lesions.unwrap_or(0),
        noise_samples: NOISE_SAMPLES,
        seed: a.seed,
    };
    let source = Source {
        name: from.display().to_string(),
        slices: range,
        spacing,
        noise_cov_given: a.noise_cov.as_ref().map(|p| p.display().to_string()),
        contrast,
    };
    let sim = simulate_to_files(&image, &source, &spec, &files, &inputs, a.force)?;
    for (z, ls) in sim.lesions.iter().enumerate() {
        if ls.len() < spec.lesions {
            eprintln!(
                "warning: slice {}: {} of {} lesions placed (a lesion needs flat tissue: within 8 % over its radius + 5 px); the JSON lists those placed",
                z,
                ls.len(),
                spec.lesions
            );
        }
    }
    eprintln!(
        "wrote {} ({} slices of {}×{}, {} coils, {} of {} lines, SNR {}), {}, {}, {}",
        output.display(),
        sim.truth.dim().0,
        matrix.0,
        matrix.1,
        a.coils,
        sim.lines.iter().filter(|&&l| l).count(),
        matrix.0,
        a.snr,
        files.truth.display(),
        files.maps.display(),
        files.record.display()
    );
    Ok(())
}

fn mask_kind(m: MaskArg) -> MaskKind {
    match m {
        MaskArg::Equispaced => MaskKind::Equispaced,
        MaskArg::Random => MaskKind::Random,
    }
}

/// `--anatomy NAME=IMAGE:SLICES[:CONTRAST]` → an anatomy of the suite (`field`: --field, the
/// tissue table of a contrast; `seed`: --seed, of its variation and bias).
fn anatomy(arg: &str, field: f64, seed: u64) -> Result<Anatomy> {
    let (name, rest) = arg.split_once('=').ok_or_else(|| {
        crate::exit::usage(format!(
            "--anatomy {arg}: expected NAME=IMAGE:SLICES, e.g. mni=brain.nii.gz:60,72,84"
        ))
    })?;
    // A last field of letters is the contrast (slice lists are digits, ',', '-' and '/').
    let (rest, contrast) = match rest.rsplit_once(':') {
        Some((r, c))
            if !c.is_empty()
                && c.chars().all(|ch| ch.is_ascii_alphanumeric())
                && c.chars().any(|ch| ch.is_ascii_alphabetic()) =>
        {
            let spec = contrast_spec(c, field, seed).ok_or_else(|| {
                crate::exit::usage(format!(
                    "--anatomy {arg}: '{c}' is not a contrast ({})",
                    Sequence::PRESETS.join(", ")
                ))
            })?;
            (r, Some(spec))
        }
        _ => (rest, None),
    };
    let (path, slices) = rest.rsplit_once(':').ok_or_else(|| {
        crate::exit::usage(format!(
            "--anatomy {arg}: give the axial slices after a ':' (e.g. :60,72,84 or :60-100/10)"
        ))
    })?;
    let (image, spacing) = read_axial(Path::new(path))?;
    let n = image.dim().0;
    let bad = |t: &str| {
        crate::exit::usage(format!(
            "--anatomy {arg}: '{t}' is not a slice list (N,N,… or A-B/STEP; the image has slices 0 to {})",
            n.saturating_sub(1)
        ))
    };
    let mut list = Vec::new();
    for t in slices.split(',') {
        let t = t.trim();
        if let Some((range, step)) = t.split_once('/') {
            let (a0, b0) = range.split_once('-').ok_or_else(|| bad(t))?;
            let (a0, b0, st): (usize, usize, usize) = (
                a0.parse().map_err(|_| bad(t))?,
                b0.parse().map_err(|_| bad(t))?,
                step.parse().map_err(|_| bad(t))?,
            );
            if st == 0 || b0 < a0 {
                return Err(bad(t));
            }
            list.extend((a0..=b0).step_by(st));
        } else {
            list.push(t.parse().map_err(|_| bad(t))?);
        }
    }
    if list.iter().any(|&z| z >= n) {
        return Err(bad(slices));
    }
    // The whole volume is classified (the brain mask is a 3D region), as with --from.
    let image = match &contrast {
        Some(c) => synthesize(image.view(), c),
        None => image,
    };
    Ok(Anatomy {
        name: name.to_string(),
        source: path.to_string(),
        image,
        contrast,
        spacing,
        slices: list,
    })
}

/// Runs `basin phantom --suite`.
fn run_suite(a: PhantomArgs, dir: PathBuf) -> Result<()> {
    check_field(a.field)?;
    let anatomy = a
        .anatomy
        .iter()
        .map(|s| anatomy(s, a.field, a.seed))
        .collect::<Result<Vec<_>>>()?;
    let mut settings = Vec::new();
    for &r in &a.accelerations {
        if !(r.is_finite() && (1.0..=64.0).contains(&r)) {
            return Err(crate::exit::usage(format!(
                "--accelerations: {r} is outside 1 to 64"
            )));
        }
        settings.push(match r {
            4.0 => Setting::fastmri()[0],
            8.0 => Setting::fastmri()[1],
            _ => Setting {
                accel: r,
                mask: MaskKind::Equispaced,
                center_fraction: (0.32 / r).min(1.0),
            },
        });
    }
    let spec = SuiteSpec {
        settings,
        matrix: a.matrix.unwrap_or(256),
        coils: a.coils,
        snr: a.snr,
        lesions: a.lesions.unwrap_or(4),
        lesion_slices: match a.lesion_slices {
            LesionSlicesArg::First => basin_phantom::suite::LesionSlices::First,
            LesionSlicesArg::All => basin_phantom::suite::LesionSlices::All,
        },
        anatomy,
        seed: a.seed,
    };
    basin_phantom::suite::check(&spec)?;
    let n = basin_phantom::suite::plan(&spec).len();
    let quiet = a.quiet;
    let cases = basin_phantom::suite::write_suite(&dir, &spec, a.force, &|done, total, name| {
        if !quiet {
            eprintln!("[{done}/{total}] {name}");
        }
    })?;
    eprintln!(
        "wrote {} ({} of {n} cases; each NAME.h5 with NAME_truth.nii.gz, NAME_maps.nii.gz, NAME.json; suite.json lists them)",
        dir.display(),
        cases.len()
    );
    Ok(())
}
