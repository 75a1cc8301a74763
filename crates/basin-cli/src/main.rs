//! The `basin` command-line tool: thin drivers around basin's libraries.
//!
//! - `basin info FILE`: what an ISMRMRD or fastMRI file holds.
//! - `basin recon INPUT -o OUTPUT`: reconstruct to NIfTI with a protocol.
//! - `basin batch MANIFEST`: many reconstructions, sharded over a Slurm or Kubernetes job array.
//! - `basin phantom … -o OUT.h5`: simulate an analytic phantom acquisition as ISMRMRD.
//! - `basin train --config FILE -o OUT.safetensors`: train an energy prior.
//! - `basin score INPUT [-o energy.nii.gz]`: per-pixel energy and per-slice plausibility.

mod batch;
mod compare;
mod exit;
mod info;
mod phantom;
mod recon;
mod score;
mod serve;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The exit-code contract (crate `exit`), shown by `basin --help`.
const EXIT_CODES: &str = "Exit codes: 0 done; 1 completed but flagged (score --fail-on-atypical, batch rows not done); \
2 usage (bad arguments, invalid protocol or recipe); 3 unreadable or invalid input; 4 output exists, would \
replace an input, or cannot be written; 5 device (GPU) failure; 130/143 interrupted (SIGINT/SIGTERM).";

/// basin — MRI reconstruction for the clinic.
#[derive(Parser, Debug)]
#[command(
    name = "basin",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = EXIT_CODES
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Summarise a k-space file: header, acquisition counts per flag, buckets, matrix,
    /// acceleration, calibration region and warnings.
    Info(info::InfoArgs),
    /// Reconstruct a k-space file (ISMRMRD or fastMRI HDF5) to images.
    Recon(recon::ReconArgs),
    /// Reconstruct many files in one process (a CSV manifest or a glob), each exactly as
    /// `basin recon` would, sharded over a Slurm job array or a Kubernetes indexed Job.
    ///
    /// Idempotent and resumable: each finished row leaves a completion record
    /// (OUTPUT.basin.json: input size, time and SHA-256, protocol with every parameter, basin
    /// version) and a rerun skips rows whose record matches, redoing those whose input or
    /// protocol changed. A row being worked on is locked (.OUTPUT.basin-lock, released by the
    /// kernel if the process dies), so shards or requeued tasks never both write one output;
    /// what a killed run left is cleaned. A failing row is reported and the others go on. The
    /// device and the prior are set up once for all rows.
    Batch(batch::BatchArgs),
    /// Simulate a phantom acquisition (analytic k-space, coils, mask, noise) as ISMRMRD HDF5,
    /// a realistic acquisition of a real image (--from), or a whole dataset (--suite).
    Phantom(phantom::PhantomArgs),
    /// Compare reconstruction methods on a dataset: every protocol, external tool and set of
    /// precomputed images on every case, scored against the references (NMSE, PSNR, SSIM,
    /// HFEN, the prior's z, lesion contrast, time), with paired statistics and a report
    /// (metrics.csv, summary.md, PNG figures, index.html). Resumable.
    Compare(compare::CompareArgs),
    /// Train an energy prior by denoising score matching (progress, checkpoints, resume).
    Train(train::TrainArgs),
    /// Score how plausible an image is under the prior: per-pixel energy-density map and
    /// per-slice scores, flagged against the model's clean-slice statistics.
    ///
    /// Images are scaled so that the 99th percentile of the magnitude is 1, then each slice gets
    /// statistics at σ = 0.02 from the embedded default prior (or --model): the learned
    /// network's energy and the whole prior's (network plus expert field, what reconstruction
    /// uses), each above that of an empty image per object pixel (magnitude > 0.1); the
    /// network's score norm ‖σ∇E‖² per object pixel; the worst line, the largest mean over a row
    /// or a column of the whole prior's energy density, and the line contrast, the largest excess
    /// of such a line over its two neighbours (zipper lines, spikes); and the noise σ̂ estimated
    /// from the image (median absolute finest diagonal wavelet detail / 0.6745, over the 2×2
    /// blocks with no exactly-zero pixel: a reconstruction's zeroed background is not noise);
    /// and the half-field-of-view echo, how strongly the background repeats the slice's edges at
    /// half the field of view (along each axis, the magnitude's derivative at background steps
    /// times the derivative N/2 away, as a t statistic: about standard normal on clean slices,
    /// large for Nyquist and motion ghosts; the larger over the two axes); and the line-power
    /// jitter, how unevenly the power of the magnitude's k-space lines jumps from line to line
    /// (ln power minus its running median over 9 lines, the outer 70 % of lines, standard
    /// deviation × √(samples per line): about 1 on any grid for a fully sampled scan; a
    /// reconstruction from undersampled lines that fits its measured ones keeps their noise and
    /// fills the others with less, so its lines alternate; the larger over the two axes).
    ///
    /// The default model judges a slice by five one-sided robust z-scores against clean
    /// single-subject slices of several contrasts (Colin27, the training subject, as real T1 and
    /// synthesised T2, PD and FLAIR, realistic 8-coil acquisitions at SNR 50,
    /// benches/score-calibrate.sh): too little fine structure for its energy (the residual of
    /// ln score norm from a line in the network's energy: aliasing, blurring, ghosting), a line
    /// contrast above the clean range, a half-field-of-view echo above the clean range, a
    /// line-power jitter above the clean range, and noise above it (the noise's z counts only once it passes 3.5 itself, so a quieter image
    /// is never the more typical for it). A slice whose
    /// largest z exceeds 3.5 is flagged ATYPICAL; slices with less than 5 % object are not judged. Being sharper,
    /// smoother, brighter or another contrast than the calibration set is not in itself
    /// atypical. The map (-o) is the whole prior's per-pixel energy density above that of an
    /// empty image: where it is high, the prior finds the image implausible.
    ///
    /// Measured on subject S1 (never trained or calibrated on; benches/RESULTS.md): 0 of 164
    /// clean slices flagged in four contrasts; zero-filled reconstructions rank below their
    /// clean slice in every pair (ROC AUC 1.000 at 4× and 8×) and all 164 are flagged; 8×
    /// cs-l1-wavelet reconstructions (NMSE 0.05) rank below their clean slice in every pair (AUC
    /// 0.981) and 123 of 164 are flagged: read z as a ranking between images of one scan as
    /// well as a verdict; the same slices acquired at SNR 15 are all flagged (noise), motion
    /// ghosting at half the field of view is flagged in 164 of 164 and a zipper line ranks below
    /// its clean slice in 163 of 164. Limits: the jitter detects undersampling's imprint, not
    /// error, so good reconstructions from undersampled data (the default protocol's at 4×) are
    /// often flagged too — the jitter column says when it is the reason — and noise-free images
    /// (a template) lack the noise its range assumes; ghosts at other distances than half
    /// the field of view are left to the structure statistic, and the noise range is that of
    /// the calibration set's acquisitions (SNR 50), so a clean scan at much lower SNR is
    /// flagged for its noise. --kspace judges an image against its raw data and catches what
    /// the image alone cannot.
    Score(score::ScoreArgs),
    /// Reconstruct inside a scanner's pipeline: an MRD streaming-protocol server (FIRE /
    /// OpenRecon, Gadgetron and python-ismrmrd-server clients).
    ///
    /// Each connection sends a config (a protocol name, built in or NAME.toml in --protocols,
    /// as CONFIG_FILE; or a protocol's TOML text as CONFIG_TEXT), the ISMRMRD XML header and the
    /// acquisitions, noise scans first. Each slice is reconstructed as soon as its last
    /// acquisition (LAST_IN_SLICE) arrives and its image (float32 magnitude, or 16-bit, with the
    /// energy map and posterior SD as extra series, as the protocol's [output] asks; full image
    /// header, MetaAttributes) is sent back during the scan; the rest at CLOSE. A malformed message gets
    /// a TEXT naming the problem and closes that connection only. SIGINT/SIGTERM: stop
    /// accepting, finish the slices being reconstructed, tell each client which incomplete
    /// slices are not reconstructed, close, exit 0 (a second signal exits at once).
    Serve(serve::ServeArgs),
    /// Stream an ISMRMRD file to an MRD server (`basin serve`, or another) and write the
    /// images it sends back as ISMRMRD.
    Send(serve::SendArgs),
}

/// Where no Wayland session can be found (XDG_RUNTIME_DIR unset or relative and WAYLAND_DISPLAY
/// not an absolute socket path), points WAYLAND_DISPLAY at a socket that does not exist.
/// Looking for a GPU loads the Vulkan drivers, and Mesa's ask libwayland for a display, which on
/// a headless machine prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment."
/// once per probe — an alarming line about nothing basin uses. With an absolute WAYLAND_DISPLAY
/// libwayland tries that socket and fails quietly; a real session (either variable usable) is
/// left untouched. Runs first in `main`, before any thread exists.
fn quiet_headless_wayland() {
    let absolute =
        |k: &str| std::env::var_os(k).is_some_and(|v| v.to_string_lossy().starts_with('/'));
    if !absolute("XDG_RUNTIME_DIR") && !absolute("WAYLAND_DISPLAY") {
        std::env::set_var("WAYLAND_DISPLAY", "/nonexistent/basin-headless/wayland-0");
    }
}

/// SIGINT and SIGTERM: remove the temporaries being written (no `.tmp-*` file or DICOM
/// directory survives an interrupt) and exit with 128 + the signal (130, 143).
fn exit_cleanly_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    // A server finishes the slices in flight, then exits; a second signal
                    // exits at once.
                    if serve::request_stop() {
                        eprintln!("stopping: finishing the slices in flight");
                        if signals.forever().next().is_none() {
                            return;
                        }
                    }
                    basin_export::remove_temporaries_then(|| {
                        eprintln!("interrupted: temporaries removed, no output written");
                        std::process::exit(128 + sig);
                    });
                }
            });
        }
        Err(e) => tracing::warn!("cannot handle SIGINT/SIGTERM: {e}"),
    }
}

fn main() -> ExitCode {
    quiet_headless_wayland();
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BASIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    exit_cleanly_on_signals();
    let result = match cli.command {
        Command::Info(a) => info::run(a),
        Command::Recon(a) => recon::run(a),
        Command::Batch(a) => batch::run(a),
        Command::Phantom(a) => phantom::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Train(a) => train::run(a),
        Command::Score(a) => score::run(a),
        Command::Serve(a) => serve::run_serve(a),
        Command::Send(a) => serve::run_send(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit::code_of(&e);
            if code == exit::Code::Flagged {
                eprintln!("{e:#}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(code as u8)
        }
    }
}
