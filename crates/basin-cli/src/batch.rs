//! `basin batch`: many reconstructions in one process, sharded over a job array; the library's
//! [`basin_recon::batch`] does the work, this parses and prints.

use crate::exit;
use anyhow::Result;
use basin_recon::batch::{self, BatchEvent, BatchOptions, Manifest, Shard, Status};
use basin_recon::protocol::DEFAULT_PROTOCOL;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `basin batch`.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  basin batch scans.csv --summary summary.json
  basin batch --inputs 'scans/*.h5' --output-pattern 'out/{stem}.nii.gz' -p sense
  sbatch --array=0-15 crates/basin-cli/deploy/slurm/basin-batch.sbatch scans.csv   (16 shards)

Exit codes: 0 every row of this shard done or skipped; 1 some rows failed or are held by another
process (listed in the summary); 2 usage (bad arguments, manifest naming one output twice,
unknown protocol); 3 unreadable manifest.")]
pub struct BatchArgs {
    /// CSV manifest: a header line `input,output[,protocol][,backend]` (any order; `#` starts a
    /// comment line), then one row per reconstruction. Relative paths are relative to the
    /// manifest's folder; an empty protocol or backend cell takes -p / --backend. Outputs are
    /// chosen by their names as with `basin recon -o` (.nii/.nii.gz, .h5, or a DICOM directory).
    #[arg(required_unless_present = "inputs", conflicts_with = "inputs")]
    pub manifest: Option<PathBuf>,
    /// Instead of a manifest: every file matching this glob (quote it), sorted by path.
    #[arg(long, value_name = "GLOB", requires = "output_pattern")]
    pub inputs: Option<String>,
    /// With --inputs: each input's output, with {stem} (file name without its last extension),
    /// {name} (file name) and {dir} (its folder) filled in, e.g. 'out/{stem}.nii.gz'.
    #[arg(long, value_name = "PATTERN", requires = "inputs")]
    pub output_pattern: Option<String>,
    /// Protocol of rows that do not name one (a built-in name or a TOML file's path).
    #[arg(short, long, default_value = DEFAULT_PROTOCOL)]
    pub protocol: String,
    /// Backend of rows that do not name one (auto, cpu, gpu; see `basin recon --help`).
    #[arg(long, default_value = "auto", value_name = "auto|cpu|gpu")]
    pub backend: basin_recon::Backend,
    /// This process's share of the rows: I/N (row r, counted from 0, belongs to shard r mod N),
    /// or `auto` — from a Slurm job array (SLURM_ARRAY_TASK_ID and the array's size; submit
    /// contiguous indices, e.g. --array=0-15) or a Kubernetes indexed Job (JOB_COMPLETION_INDEX
    /// with --shard-count). Shards running at once never write the same output.
    #[arg(long, default_value = "0/1", value_name = "I/N|auto")]
    pub shard: String,
    /// Number of shards with --shard auto in a Kubernetes indexed Job (its `completions`).
    #[arg(long, value_name = "N")]
    pub shard_count: Option<usize>,
    /// Rows reconstructed at once in this process, the cores split between them (each row on
    /// cores / K threads). On a CPU, K = the number of cores gives the most rows per hour (one
    /// reconstruction uses its cores only partly: 1.2–1.4× the rows of one recon at a time
    /// with K = 2 on 2 cores), at K times the memory of one row; 1 (the default) finishes each
    /// row soonest. On a GPU, 2 can keep the device busy while a row is read or written.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub jobs: usize,
    /// Write a JSON summary here (done / skipped / failed / busy rows with their errors and
    /// timings), replacing an earlier one.
    #[arg(long, value_name = "JSON")]
    pub summary: Option<PathBuf>,
    /// Redo every row, even those whose completion record matches, and replace outputs that
    /// basin batch did not write.
    #[arg(long)]
    pub force: bool,
    /// Refuse a row whose estimated peak memory is larger than this (e.g. 8G): that row fails,
    /// the others go on. Set it to the job's memory request; with --jobs K each row gets a
    /// K-th of it.
    #[arg(long, value_name = "SIZE", value_parser = basin_recon::memory::parse_size)]
    pub max_memory: Option<u64>,
    /// Remove patient identifiers from DICOM outputs (PS3.15 basic profile).
    #[arg(long)]
    pub anonymize: bool,
    /// Only errors and the final count on stderr (no line per row).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `basin batch`.
pub fn run(a: BatchArgs) -> Result<()> {
    if a.jobs == 0 {
        return Err(exit::usage("--jobs must be at least 1"));
    }
    let shard = Shard::parse(&a.shard, a.shard_count, &|k| std::env::var(k).ok())?;
    let manifest = match (&a.manifest, &a.inputs, &a.output_pattern) {
        (Some(m), _, _) => Manifest::read_csv(m, &a.protocol, a.backend)?,
        (None, Some(g), Some(o)) => Manifest::from_glob(g, o, &a.protocol, a.backend)?,
        _ => {
            return Err(exit::usage(
                "give a manifest, or --inputs with --output-pattern",
            ))
        }
    };
    if let Some(s) = &a.summary {
        if let Some(d) = s.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)
                .map_err(|e| exit::output(format!("cannot create {}: {e}", d.display())))?;
        }
        let inputs: Vec<&std::path::Path> = manifest
            .rows
            .iter()
            .map(|r| r.input.as_path())
            .chain(a.manifest.as_deref())
            .collect();
        basin_export::check_outputs(&inputs, &[s.as_path()], true)?;
    }
    let options = BatchOptions {
        shard,
        jobs: a.jobs,
        force: a.force,
        recon: basin_recon::ReconOptions {
            max_memory: a.max_memory,
            ..Default::default()
        },
        anonymize: a.anonymize,
    };
    let quiet = a.quiet;
    let mine = manifest.rows_of(shard).len();
    if !quiet {
        eprintln!(
            "basin batch: {mine} of {} rows (shard {}/{}) from {}",
            manifest.rows.len(),
            shard.index,
            shard.count,
            manifest.source
        );
    }
    let summary = batch::run(&manifest, &options, &|e| match e {
        BatchEvent::Started(..) => {}
        BatchEvent::Finished(r, k, n) => {
            if quiet && r.status != Status::Failed {
                return;
            }
            let what = match r.status {
                Status::Done => format!("done in {:.1} s", r.seconds),
                Status::Skipped => "skipped (up to date)".into(),
                Status::Failed => {
                    format!("FAILED: {}", r.error.as_deref().unwrap_or("unknown error"))
                }
                Status::Busy => format!("busy: {}", r.error.as_deref().unwrap_or("")),
            };
            eprintln!(
                "[{k}/{n}] row {} {} -> {}: {what}",
                r.row, r.input, r.output
            );
        }
        BatchEvent::Note(row, note) => {
            eprintln!(
                "warning: row {} ({}): {note}",
                row.index + 1,
                row.input.display()
            );
        }
    })?;
    if let Some(s) = &a.summary {
        let text = serde_json::to_string_pretty(&summary)?;
        basin_export::atomic_write(s, true, |tmp| {
            std::fs::write(tmp, text.as_bytes()).map_err(|e| e.to_string())
        })?;
    }
    eprintln!(
        "basin batch: {} done, {} skipped, {} failed, {} busy ({:.1} s)",
        summary.done, summary.skipped, summary.failed, summary.busy, summary.seconds
    );
    if summary.failed + summary.busy > 0 {
        return Err(exit::flagged(format!(
            "{} of {} rows not done{}",
            summary.failed + summary.busy,
            summary.rows.len(),
            a.summary
                .as_ref()
                .map(|s| format!(" (listed in {})", s.display()))
                .unwrap_or_default()
        )));
    }
    Ok(())
}
