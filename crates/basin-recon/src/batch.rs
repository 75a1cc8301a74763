//! Batch reconstruction of many files through one [`Pipeline`]: a manifest of rows (input,
//! output, protocol, backend) read from CSV or made from a glob, sharded over the tasks of a
//! Slurm job array or a Kubernetes indexed Job (row i belongs to shard i mod N), idempotent
//! and resumable.
//!
//! Each row is reconstructed exactly as `basin recon` would ([`Pipeline::run`]: same reading,
//! outputs checked first, atomic writes). Around it:
//! - a **completion record** `NAME.basin.json` next to the output says which input (size,
//!   modification time, SHA-256), which protocol (every parameter) and which basin made it; a
//!   rerun skips a row whose record matches and whose output exists, and redoes it when the
//!   input or the protocol changed. The record is written as `running` before the work, so an
//!   existing output with a record of any state is known to be basin's to replace; an output
//!   with no record is someone else's and is refused (`force` replaces it);
//! - an exclusive **lock** on `.NAME.basin-lock` (an advisory file lock the kernel releases
//!   when its holder dies, so a killed task never leaves a stale lock) is held while a row is
//!   worked on: two processes given the same rows (a requeued task still running, the same
//!   shard started twice) never both write one output — the second reports the row `busy`;
//! - under the lock, what a killed writer left next to the output is cleaned
//!   ([`basin_export::clean_stale`]).
//!
//! A failing row (missing or corrupt input, an output that cannot be written) is reported and
//! the others go on.

use crate::pipeline::{format_of, Event, Format, Job, Outputs, Pipeline};
use crate::{Backend, Protocol, ReconError, ReconOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One row of a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Position among the manifest's rows (0-based; the shard of a row is `index mod N`).
    pub index: usize,
    /// The k-space file.
    pub input: PathBuf,
    /// The image output (its format by its name, as `basin recon -o`).
    pub output: PathBuf,
    /// A built-in protocol name or a TOML file's path.
    pub protocol: String,
    /// Where the row's EBM iterations run.
    pub backend: Backend,
}

/// The rows of a batch and where they came from.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Every row, in order.
    pub rows: Vec<Row>,
    /// The manifest file, or the glob the rows were made from.
    pub source: String,
}

/// The columns a CSV manifest may have (`input` and `output` are required).
pub const COLUMNS: [&str; 4] = ["input", "output", "protocol", "backend"];

impl Manifest {
    /// Reads a CSV manifest with a header naming its columns (`input,output[,protocol][,backend]`,
    /// any order; lines starting with `#` are comments). Relative input, output and protocol
    /// paths are relative to the manifest's folder; an empty or missing protocol or backend cell
    /// takes `protocol` / `backend`.
    pub fn read_csv(path: &Path, protocol: &str, backend: Backend) -> Result<Self, ReconError> {
        let bad = |m: String| ReconError::Input(format!("manifest {}: {m}", path.display()));
        let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut reader = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_slice());
        let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
        let mut col = HashMap::new();
        for (i, h) in header.iter().enumerate() {
            if !COLUMNS.contains(&h) {
                return Err(bad(format!(
                    "unknown column {h:?} in the header (columns: {})",
                    COLUMNS.join(", ")
                )));
            }
            if col.insert(h.to_string(), i).is_some() {
                return Err(bad(format!("column {h:?} named twice in the header")));
            }
        }
        for need in ["input", "output"] {
            if !col.contains_key(need) {
                return Err(bad(format!(
                    "the header has no {need:?} column (a manifest starts with a header line such as input,output,protocol)"
                )));
            }
        }
        let rel = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut rows = Vec::new();
        for rec in reader.records() {
            let rec = rec.map_err(|e| bad(e.to_string()))?;
            let line = rec.position().map_or(0, |p| p.line());
            let cell = |name: &str| col.get(name).and_then(|&i| rec.get(i)).unwrap_or("");
            let (input, output) = (cell("input"), cell("output"));
            if input.is_empty() || output.is_empty() {
                return Err(bad(format!("line {line}: empty input or output")));
            }
            let protocol = match cell("protocol") {
                "" => protocol.to_string(),
                p if Protocol::is_builtin(p) => p.to_string(),
                p => rel(p).display().to_string(),
            };
            let backend = match cell("backend") {
                "" => backend,
                b => b
                    .parse()
                    .map_err(|e: String| bad(format!("line {line}: {e}")))?,
            };
            rows.push(Row {
                index: rows.len(),
                input: rel(input),
                output: rel(output),
                protocol,
                backend,
            });
        }
        let m = Manifest {
            rows,
            source: path.display().to_string(),
        };
        m.check()?;
        Ok(m)
    }

    /// Rows from the files matching `pattern` (sorted by path), each written to
    /// `output_pattern` with `{stem}` (the file name without its last extension), `{name}` (the
    /// file name) and `{dir}` (its folder) filled in.
    pub fn from_glob(
        pattern: &str,
        output_pattern: &str,
        protocol: &str,
        backend: Backend,
    ) -> Result<Self, ReconError> {
        if !["{stem}", "{name}"]
            .iter()
            .any(|t| output_pattern.contains(t))
        {
            return Err(ReconError::Usage(format!(
                "--output-pattern {output_pattern:?} names no {{stem}} or {{name}}: every input would write one output"
            )));
        }
        let paths = glob::glob(pattern)
            .map_err(|e| ReconError::Usage(format!("--inputs {pattern:?}: {e}")))?;
        let mut inputs = Vec::new();
        for p in paths {
            let p = p.map_err(|e| ReconError::Input(e.to_string()))?;
            if p.is_file() {
                inputs.push(p);
            }
        }
        inputs.sort();
        if inputs.is_empty() {
            return Err(ReconError::Input(format!(
                "--inputs {pattern:?} matches no file"
            )));
        }
        let rows = inputs
            .into_iter()
            .enumerate()
            .map(|(index, input)| {
                let name = input
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let stem = input
                    .file_stem()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let dir = input
                    .parent()
                    .map(|d| d.display().to_string())
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| ".".into());
                let output = output_pattern
                    .replace("{stem}", &stem)
                    .replace("{name}", &name)
                    .replace("{dir}", &dir);
                Row {
                    index,
                    input,
                    output: PathBuf::from(output),
                    protocol: protocol.to_string(),
                    backend,
                }
            })
            .collect();
        let m = Manifest {
            rows,
            source: pattern.to_string(),
        };
        m.check()?;
        Ok(m)
    }

    /// The rows `shard` owns, in order.
    pub fn rows_of(&self, shard: Shard) -> Vec<&Row> {
        self.rows.iter().filter(|r| shard.owns(r.index)).collect()
    }

    /// Refuses, before any work, a manifest with no rows, an output whose format its name does
    /// not say, an output named by two rows or an output that is some row's input (paths
    /// compared after resolving what exists of them).
    fn check(&self) -> Result<(), ReconError> {
        if self.rows.is_empty() {
            return Err(ReconError::Input(format!("{}: no rows", self.source)));
        }
        let inputs: HashMap<PathBuf, usize> = self
            .rows
            .iter()
            .map(|r| (normal(&r.input), r.index))
            .collect();
        let mut outputs: HashMap<PathBuf, usize> = HashMap::new();
        for r in &self.rows {
            format_of(&r.output)
                .map_err(|e| ReconError::Usage(format!("row {}: {e}", r.index + 1)))?;
            let o = normal(&r.output);
            if let Some(&i) = inputs.get(&o) {
                return Err(ReconError::Usage(format!(
                    "row {}: output {} is the input of row {} (raw data cannot be re-acquired)",
                    r.index + 1,
                    r.output.display(),
                    i + 1
                )));
            }
            if let Some(i) = outputs.insert(o, r.index) {
                return Err(ReconError::Usage(format!(
                    "rows {} and {} both write {}",
                    i + 1,
                    r.index + 1,
                    r.output.display()
                )));
            }
        }
        Ok(())
    }
}

/// `p` absolute, with its longest existing ancestor canonicalized (symbolic links, `..`).
fn normal(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut head = abs.clone();
    let mut tail = Vec::new();
    loop {
        if let Ok(c) = head.canonicalize() {
            return tail.iter().rev().fold(c, |acc: PathBuf, t| acc.join(t));
        }
        match (head.file_name().map(|n| n.to_os_string()), head.parent()) {
            (Some(n), Some(parent)) => {
                tail.push(n);
                head = parent.to_path_buf();
            }
            _ => return abs,
        }
    }
}

/// This process's share of the rows: row i belongs to shard `i mod count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shard {
    /// 0-based shard index.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// `I/N` (0 ≤ I < N), or `auto`: from a Slurm job array (`SLURM_ARRAY_TASK_ID` with
    /// `SLURM_ARRAY_TASK_COUNT`, or `SLURM_ARRAY_TASK_MIN`/`MAX`; the array's indices must be
    /// contiguous) or a Kubernetes indexed Job (`JOB_COMPLETION_INDEX` with `count`, the Job's
    /// `completions`). `env` reads the environment (a parameter for tests).
    pub fn parse(
        spec: &str,
        count: Option<usize>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Shard, ReconError> {
        let usage = |m: String| ReconError::Usage(format!("--shard {spec}: {m}"));
        let num = |name: &str, v: &str| -> Result<usize, ReconError> {
            v.trim()
                .parse()
                .map_err(|_| usage(format!("{name}={v:?} is not a non-negative integer")))
        };
        let shard = if spec == "auto" {
            if let Some(id) = env("SLURM_ARRAY_TASK_ID") {
                let id = num("SLURM_ARRAY_TASK_ID", &id)?;
                let var = |n: &str| env(n).map(|v| num(n, &v)).transpose();
                let (min, max, n) = (
                    var("SLURM_ARRAY_TASK_MIN")?,
                    var("SLURM_ARRAY_TASK_MAX")?,
                    var("SLURM_ARRAY_TASK_COUNT")?,
                );
                if let Some(step) = var("SLURM_ARRAY_TASK_STEP")? {
                    if step != 1 {
                        return Err(usage(format!(
                            "the job array steps by {step}: submit contiguous indices (e.g. --array=0-{})",
                            n.unwrap_or(2).saturating_sub(1)
                        )));
                    }
                }
                let min = min.unwrap_or(0);
                let n = match (n, max) {
                    (Some(n), Some(max)) if max + 1 - min.min(max + 1) != n => {
                        return Err(usage(format!(
                            "the job array's indices {min}..{max} are not contiguous ({n} tasks): submit e.g. --array=0-{}",
                            n.saturating_sub(1)
                        )))
                    }
                    (Some(n), _) => n,
                    (None, Some(max)) => max + 1 - min.min(max + 1),
                    (None, None) => {
                        return Err(usage(
                            "SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX".into(),
                        ))
                    }
                };
                if let Some(c) = count.filter(|&c| c != n) {
                    return Err(usage(format!(
                        "--shard-count {c} disagrees with the job array's {n} tasks"
                    )));
                }
                Shard {
                    index: id.checked_sub(min).ok_or_else(|| {
                        usage(format!(
                            "SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
                        ))
                    })?,
                    count: n,
                }
            } else if let Some(i) = env("JOB_COMPLETION_INDEX") {
                let index = num("JOB_COMPLETION_INDEX", &i)?;
                let count = count.ok_or_else(|| {
                    usage("JOB_COMPLETION_INDEX (Kubernetes indexed Job) needs --shard-count N, the Job's completions".into())
                })?;
                Shard { index, count }
            } else {
                return Err(usage(
                    "neither SLURM_ARRAY_TASK_ID (Slurm job array) nor JOB_COMPLETION_INDEX (Kubernetes indexed Job) is set".into(),
                ));
            }
        } else {
            let (i, n) = spec
                .split_once('/')
                .ok_or_else(|| usage("expected I/N (e.g. 0/4) or auto".into()))?;
            let s = Shard {
                index: num("I", i)?,
                count: num("N", n)?,
            };
            if let Some(c) = count.filter(|&c| c != s.count) {
                return Err(usage(format!(
                    "--shard-count {c} disagrees with N = {}",
                    s.count
                )));
            }
            s
        };
        if shard.count == 0 || shard.index >= shard.count {
            return Err(usage(format!(
                "shard {} of {} does not exist (0 ≤ I < N)",
                shard.index, shard.count
            )));
        }
        Ok(shard)
    }

    /// Whether row `index` belongs to this shard.
    pub fn owns(&self, index: usize) -> bool {
        index % self.count == self.index
    }
}

/// What became of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Reconstructed and written by this run.
    Done,
    /// Its completion record matched: nothing to do.
    Skipped,
    /// It failed (the error is given); the other rows went on.
    Failed,
    /// Another process holds its lock (it is being reconstructed elsewhere).
    Busy,
}

/// One row's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct RowSummary {
    /// 1-based row number in the manifest (after its header).
    pub row: usize,
    /// The input as given.
    pub input: String,
    /// The output as given.
    pub output: String,
    /// The protocol (name or path).
    pub protocol: String,
    /// What became of it.
    pub status: Status,
    /// Wall time spent on the row (s).
    pub seconds: f64,
    /// Why it failed (or who holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The class of the failure: usage, input, output or device (the exit code `basin recon`
    /// would have given: 2, 3, 4, 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<&'static str>,
}

/// The outcome of a batch run (the `--summary` JSON).
#[derive(Clone, Debug, Serialize)]
pub struct BatchSummary {
    /// Version of this JSON's layout.
    pub schema: u32,
    /// The basin that ran it.
    pub basin_version: &'static str,
    /// The manifest file or glob.
    pub manifest: String,
    /// This process's shard.
    pub shard: Shard,
    /// Rows in the whole manifest.
    pub rows_in_manifest: usize,
    /// Rows of this shard reconstructed now.
    pub done: usize,
    /// Rows of this shard whose completion record matched.
    pub skipped: usize,
    /// Rows of this shard that failed.
    pub failed: usize,
    /// Rows of this shard held by another process.
    pub busy: usize,
    /// Wall time of the run (s).
    pub seconds: f64,
    /// This shard's rows, in manifest order.
    pub rows: Vec<RowSummary>,
}

/// Where a row's reconstruction stands in its completion record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    /// Being reconstructed (or killed while it was).
    Running,
    /// Written: the record describes the output.
    Done,
    /// The reconstruction failed.
    Failed,
}

/// The completion record next to an output (`NAME.basin.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Version of this record's layout.
    pub schema: u32,
    /// Whether the output it describes is finished.
    pub state: RecordState,
    /// The basin that wrote it.
    pub basin_version: String,
    /// The input's path as the manifest gave it.
    pub input: String,
    /// The input's size (bytes).
    pub input_bytes: u64,
    /// The input's modification time (ns since the Unix epoch).
    pub input_modified_ns: u64,
    /// SHA-256 of the input (hex).
    pub input_sha256: String,
    /// The protocol's name.
    pub protocol_name: String,
    /// Every parameter of the protocol.
    pub protocol: serde_json::Value,
    /// The output's format.
    pub format: Format,
    /// When the state was written (s since the Unix epoch).
    pub written_unix: u64,
    /// Wall time of the reconstruction (s; 0 while running).
    pub seconds: f64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The completion record of `output`.
pub fn record_path(output: &Path) -> PathBuf {
    with_name(output, |n| format!("{n}.basin.json"))
}

/// The lock file of `output`.
pub fn lock_path(output: &Path) -> PathBuf {
    with_name(output, |n| format!(".{n}.basin-lock"))
}

fn with_name(p: &Path, f: impl Fn(&str) -> String) -> PathBuf {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "output".into());
    p.with_file_name(f(&n))
}

/// Reads a completion record (None when absent or unreadable: the row is redone).
pub fn read_record(output: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(record_path(output)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_record(output: &Path, r: &Record) -> Result<(), ReconError> {
    let text = serde_json::to_string_pretty(r)
        .map_err(|e| ReconError::Usage(format!("completion record: {e}")))?;
    basin_export::atomic_write(&record_path(output), true, |tmp| {
        std::fs::write(tmp, text.as_bytes()).map_err(|e| e.to_string())
    })
    .map_err(ReconError::Write)
}

fn input_meta(p: &Path) -> std::io::Result<(u64, u64)> {
    let m = std::fs::metadata(p)?;
    let t = m
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Ok((m.len(), t))
}

/// The SHA-256 of a file's bytes, in hexadecimal.
pub fn sha256_of(p: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(p)?, &mut h)?;
    Ok(format!("{:x}", h.finalize()))
}

/// What a record says about the protocol (`origin`: its name or path): every parameter, and for
/// an EBM protocol the embedded prior's SHA-256 — its output depends on the weights too, so a
/// build with other weights redoes it.
fn protocol_record(p: &Protocol, origin: &str) -> Result<serde_json::Value, ReconError> {
    let mut v = serde_json::to_value(p).map_err(|e| ReconError::Protocol {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    if let (crate::protocol::Solver::Ebm(_), Some(o)) = (&p.solver, v.as_object_mut()) {
        o.insert(
            "prior_sha256".into(),
            basin_prior::default_model_sha256().into(),
        );
    }
    Ok(v)
}

/// Whether `rec` says `output` was made from this input with this protocol. The checksum is
/// computed only when the size or modification time differ from the record's (a file touched
/// but unchanged still matches).
fn matches(rec: &Record, input: &Path, protocol: &serde_json::Value, format: Format) -> bool {
    if rec.state != RecordState::Done || rec.protocol != *protocol || rec.format != format {
        return false;
    }
    match input_meta(input) {
        Ok((bytes, t)) if bytes == rec.input_bytes && t == rec.input_modified_ns => true,
        Ok((bytes, _)) if bytes == rec.input_bytes => {
            sha256_of(input).is_ok_and(|h| h == rec.input_sha256)
        }
        _ => false,
    }
}

/// An exclusive advisory lock on a row's lock file, released (and the file removed) on drop.
#[derive(Debug)]
struct RowLock {
    path: PathBuf,
    file: std::fs::File,
}

impl RowLock {
    /// Takes the lock, or says who holds it. The file is re-checked after locking (the holder
    /// before us may have removed it, leaving us a lock on a file no longer in the folder).
    fn acquire(path: &Path) -> Result<Result<RowLock, String>, std::io::Error> {
        loop {
            basin_export::track(path);
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .inspect_err(|_| basin_export::untrack(path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    basin_export::untrack(path);
                    let holder = std::fs::read_to_string(path).unwrap_or_default();
                    return Ok(Err(holder.trim().to_string()));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    basin_export::untrack(path);
                    return Err(e);
                }
            }
            if same_inode(&file, path) {
                use std::io::Write;
                let mut f = &file;
                let _ = f.set_len(0);
                let _ = writeln!(
                    f,
                    "pid {} on {} since {}",
                    std::process::id(),
                    hostname(),
                    unix_now()
                );
                return Ok(Ok(RowLock {
                    path: path.to_path_buf(),
                    file,
                }));
            }
        }
    }
}

impl Drop for RowLock {
    fn drop(&mut self) {
        // Remove first, then unlock: a process that opened the file meanwhile finds it gone
        // after locking and retries on a new file.
        let _ = std::fs::remove_file(&self.path);
        basin_export::untrack(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(unix)]
fn same_inode(f: &std::fs::File, p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(p)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::File, p: &Path) -> bool {
    p.exists()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown host".into())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How a batch runs.
#[derive(Clone, Debug, Default)]
pub struct BatchOptions {
    /// This process's rows.
    pub shard: Shard,
    /// Rows reconstructed at once in this process. With more than one, the cores are split
    /// between them: each row's work runs on its own thread pool of cores / jobs threads (at
    /// least one), since a single reconstruction uses two cores only ~1.25× as well as one.
    pub jobs: usize,
    /// Redo rows whose record matches, and replace outputs that have no record.
    pub force: bool,
    /// Options of every reconstruction (memory limit).
    pub recon: ReconOptions,
    /// Remove patient identifiers from DICOM outputs.
    pub anonymize: bool,
}

/// What a batch run reports while it works, for the driver to print.
pub enum BatchEvent<'a> {
    /// A row was started (`k`-th of this shard's `n`).
    Started(&'a Row, usize, usize),
    /// A row finished (`k`-th of `n`).
    Finished(&'a RowSummary, usize, usize),
    /// A warning of a row's input or run, or a note on something cleaned up.
    Note(&'a Row, &'a str),
}

/// Runs this shard's rows of `manifest` (see the module's description). Protocols are resolved
/// before any work (a bad one is a usage error for the whole batch); each row's failure is
/// reported in its summary and the other rows go on.
pub fn run(
    manifest: &Manifest,
    options: &BatchOptions,
    events: &(dyn Fn(BatchEvent<'_>) + Sync),
) -> Result<BatchSummary, ReconError> {
    let start = Instant::now();
    let mine = manifest.rows_of(options.shard);
    // Protocols and backends once, before any work.
    let mut protocols: HashMap<&str, (Protocol, serde_json::Value)> = HashMap::new();
    for r in &mine {
        if !protocols.contains_key(r.protocol.as_str()) {
            let (p, _) = Protocol::locate(&r.protocol, None)?;
            let v = protocol_record(&p, &r.protocol)?;
            protocols.insert(&r.protocol, (p, v));
        }
        options.recon.check(&protocols[r.protocol.as_str()].0)?;
    }
    let mut backends: Vec<Backend> = Vec::new();
    for r in &mine {
        if !backends.contains(&r.backend) {
            backends.push(r.backend);
        }
    }
    let pipelines: Vec<(Backend, Pipeline)> = backends
        .into_iter()
        .map(|b| (b, Pipeline::new(b)))
        .collect();
    let n = mine.len();
    let jobs = options.jobs.clamp(1, n.max(1));
    // K rows at once share the memory limit: each row is checked against limit / K.
    let mut row_options = options.clone();
    row_options.recon.max_memory = options.recon.max_memory.map(|m| m / jobs as u64);
    let options = &row_options;
    let results: Mutex<Vec<Option<RowSummary>>> = Mutex::new(vec![None; n]);
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let worker = || loop {
        let k = next.fetch_add(1, Ordering::SeqCst);
        let Some(row) = mine.get(k) else { break };
        events(BatchEvent::Started(row, k + 1, n));
        let pipeline = &pipelines
            .iter()
            .find(|(b, _)| *b == row.backend)
            .expect("a pipeline per backend")
            .1;
        let (protocol, pjson) = &protocols[row.protocol.as_str()];
        let t = Instant::now();
        let outcome = run_row(row, protocol, pjson, pipeline, options, events);
        let (status, error, class) = match outcome {
            Ok(RowStatus::Done) => (Status::Done, None, None),
            Ok(RowStatus::Skipped) => (Status::Skipped, None, None),
            Ok(RowStatus::Busy(holder)) => (Status::Busy, Some(holder), None),
            Err(e) => (Status::Failed, Some(e.to_string()), Some(class_of(&e))),
        };
        let summary = RowSummary {
            row: row.index + 1,
            input: row.input.display().to_string(),
            output: row.output.display().to_string(),
            protocol: row.protocol.clone(),
            status,
            seconds: t.elapsed().as_secs_f64(),
            error,
            error_class: class,
        };
        let done = finished.fetch_add(1, Ordering::SeqCst) + 1;
        events(BatchEvent::Finished(&summary, done, n));
        if let Ok(mut r) = results.lock() {
            r[k] = Some(summary);
        }
    };
    if jobs == 1 {
        worker();
    } else {
        // The global pool's size: the cores, or RAYON_NUM_THREADS where a scheduler sets it.
        let cores = rayon::current_num_threads();
        let threads = (cores / jobs).max(1);
        // Each worker's rows on its own pool: rayon's global pool would serialise the
        // workers' parallel loops on the same threads.
        let run_on_own_pool = || match rayon::ThreadPoolBuilder::new().num_threads(threads).build()
        {
            Ok(pool) => pool.install(worker),
            Err(_) => worker(),
        };
        std::thread::scope(|s| {
            for _ in 1..jobs {
                s.spawn(run_on_own_pool);
            }
            run_on_own_pool();
        });
    }
    let rows: Vec<RowSummary> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect();
    let count = |s: Status| rows.iter().filter(|r| r.status == s).count();
    Ok(BatchSummary {
        schema: 1,
        basin_version: env!("CARGO_PKG_VERSION"),
        manifest: manifest.source.clone(),
        shard: options.shard,
        rows_in_manifest: manifest.rows.len(),
        done: count(Status::Done),
        skipped: count(Status::Skipped),
        failed: count(Status::Failed),
        busy: count(Status::Busy),
        seconds: start.elapsed().as_secs_f64(),
        rows,
    })
}

/// A row's outcome before it is summarised.
enum RowStatus {
    Done,
    Skipped,
    Busy(String),
}

/// The exit-code class of a row's error.
fn class_of(e: &ReconError) -> &'static str {
    match e {
        ReconError::Protocol { .. } | ReconError::Usage(_) => "usage",
        ReconError::Write(basin_export::ExportError::Read { .. }) => "input",
        ReconError::Write(_) => "output",
        ReconError::Device(_) => "device",
        _ => "input",
    }
}

fn run_row(
    row: &Row,
    protocol: &Protocol,
    pjson: &serde_json::Value,
    pipeline: &Pipeline,
    options: &BatchOptions,
    events: &(dyn Fn(BatchEvent<'_>) + Sync),
) -> Result<RowStatus, ReconError> {
    let format = format_of(&row.output)?;
    let skip = |rec: Option<&Record>| {
        !options.force
            && row.output.exists()
            && rec.is_some_and(|r| matches(r, &row.input, pjson, format))
    };
    if skip(read_record(&row.output).as_ref()) {
        return Ok(RowStatus::Skipped);
    }
    if !row.input.is_file() {
        return Err(ReconError::Input(format!(
            "{}: no such file",
            row.input.display()
        )));
    }
    if let Some(dir) = row.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            ReconError::Write(basin_export::ExportError::Refused {
                file: row.output.clone(),
                message: format!("cannot create {}: {e}", dir.display()),
            })
        })?;
    }
    let lock = match RowLock::acquire(&lock_path(&row.output)) {
        Ok(Ok(l)) => l,
        Ok(Err(holder)) => {
            return Ok(RowStatus::Busy(format!(
                "{} is being written by another process ({holder})",
                row.output.display()
            )))
        }
        Err(e) => {
            return Err(ReconError::Write(basin_export::ExportError::Refused {
                file: row.output.clone(),
                message: format!("cannot lock {}: {e}", lock_path(&row.output).display()),
            }))
        }
    };
    for note in basin_export::clean_stale(&row.output) {
        events(BatchEvent::Note(row, &note));
    }
    // Another process may have finished the row just before we took the lock: look again.
    let previous = read_record(&row.output);
    if skip(previous.as_ref()) {
        return Ok(RowStatus::Skipped);
    }
    if row.output.exists() && previous.is_none() && !options.force {
        return Err(ReconError::Write(basin_export::ExportError::Refused {
            file: row.output.clone(),
            message: format!(
                "exists and has no completion record ({}): it was not written by basin batch; remove it or use --force",
                record_path(&row.output).display()
            ),
        }));
    }
    let (bytes, modified_ns) = input_meta(&row.input)
        .map_err(|e| ReconError::Input(format!("{}: {e}", row.input.display())))?;
    let sha = sha256_of(&row.input)
        .map_err(|e| ReconError::Input(format!("{}: {e}", row.input.display())))?;
    let mut record = Record {
        schema: 1,
        state: RecordState::Running,
        basin_version: env!("CARGO_PKG_VERSION").into(),
        input: row.input.display().to_string(),
        input_bytes: bytes,
        input_modified_ns: modified_ns,
        input_sha256: sha,
        protocol_name: protocol.name.clone(),
        protocol: pjson.clone(),
        format,
        written_unix: unix_now(),
        seconds: 0.0,
        error: None,
    };
    write_record(&row.output, &record)?;
    let outputs = Outputs {
        images: vec![(row.output.clone(), format)],
        anonymize: options.anonymize,
        ..Outputs::default()
    };
    let job = Job {
        input: &row.input,
        dataset: None,
        protocol,
        options: options.recon,
        outputs: &outputs,
        force: true,
    };
    let t = Instant::now();
    let result = pipeline.run(&job, &|e| {
        if let Event::Read(k) = e {
            for w in &k.warnings {
                events(BatchEvent::Note(row, w));
            }
        }
    });
    record.seconds = t.elapsed().as_secs_f64();
    record.written_unix = unix_now();
    match result {
        Ok(report) => {
            for w in &report.warnings[report.input_warnings..] {
                events(BatchEvent::Note(row, w));
            }
            record.state = RecordState::Done;
            write_record(&row.output, &record)?;
            drop(lock);
            Ok(RowStatus::Done)
        }
        Err(e) => {
            record.state = RecordState::Failed;
            record.error = Some(e.to_string());
            let _ = write_record(&row.output, &record);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An EBM protocol's record names the embedded prior (a build with other weights redoes its
    /// outputs); one without the prior does not depend on it.
    #[test]
    fn an_ebm_record_names_the_prior() {
        let sha = basin_prior::default_model_sha256();
        assert_eq!(sha.len(), 64);
        for (name, with_prior) in [("brain-2d-ebm", true), ("sense", false)] {
            let (p, _) = Protocol::locate(name, None).unwrap();
            let v = protocol_record(&p, name).unwrap();
            assert_eq!(
                v.get("prior_sha256").and_then(|s| s.as_str()),
                with_prior.then_some(sha),
                "{name}"
            );
        }
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shards_from_arguments_and_schedulers() {
        let none = env(&[]);
        assert_eq!(
            Shard::parse("2/3", None, &none).unwrap(),
            Shard { index: 2, count: 3 }
        );
        for bad in ["3/3", "1/0", "x/2", "1", "-1/2"] {
            assert!(
                matches!(Shard::parse(bad, None, &none), Err(ReconError::Usage(_))),
                "{bad}"
            );
        }
        assert!(Shard::parse("auto", None, &none).is_err());
        // Slurm --array=1-9: ids 1..9.
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "9"),
            ("SLURM_ARRAY_TASK_COUNT", "9"),
        ]);
        assert_eq!(
            Shard::parse("auto", None, &slurm).unwrap(),
            Shard { index: 3, count: 9 }
        );
        assert!(Shard::parse("auto", Some(4), &slurm).is_err());
        // --array=0,4,7: not contiguous.
        let gaps = env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert!(Shard::parse("auto", None, &gaps).is_err());
        let k8s = env(&[("JOB_COMPLETION_INDEX", "5")]);
        assert_eq!(
            Shard::parse("auto", Some(6), &k8s).unwrap(),
            Shard { index: 5, count: 6 }
        );
        assert!(Shard::parse("auto", None, &k8s).is_err());
        assert!(Shard::parse("auto", Some(5), &k8s).is_err());
        let s = Shard { index: 1, count: 3 };
        let owned: Vec<usize> = (0..9).filter(|&i| s.owns(i)).collect();
        assert_eq!(owned, vec![1, 4, 7]);
    }

    #[test]
    fn csv_manifests_resolve_paths_and_refuse_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.csv");
        std::fs::write(
            &m,
            "# scans of 2026-12\ninput, output ,protocol,backend\n\
             a.h5,out/a.nii.gz,,\n\
             \"b c.h5\",/abs/b.nii,sense,cpu\n\
             c.h5,out/c.nii,my.toml,gpu\n",
        )
        .unwrap();
        let man = Manifest::read_csv(&m, "brain-2d-ebm", Backend::Auto).unwrap();
        assert_eq!(man.rows.len(), 3);
        assert_eq!(man.rows[0].input, dir.path().join("a.h5"));
        assert_eq!(man.rows[0].output, dir.path().join("out/a.nii.gz"));
        assert_eq!(man.rows[0].protocol, "brain-2d-ebm");
        assert_eq!(man.rows[0].backend, Backend::Auto);
        assert_eq!(man.rows[1].input, dir.path().join("b c.h5"));
        assert_eq!(man.rows[1].output, PathBuf::from("/abs/b.nii"));
        assert_eq!(man.rows[1].protocol, "sense");
        assert_eq!(man.rows[1].backend, Backend::Cpu);
        assert_eq!(
            man.rows[2].protocol,
            dir.path().join("my.toml").display().to_string()
        );
        assert_eq!(man.rows[2].backend, Backend::Gpu);
        for (text, what) in [
            ("input,out\na,b\n", "unknown column"),
            ("input\na\n", "no \"output\" column"),
            ("input,output\na.h5,x.nii\nb.h5,./x.nii\n", "both write"),
            (
                "input,output\na.h5,b.h5\nb.h5,c.nii\n",
                "is the input of row 2",
            ),
            ("input,output\n", "no rows"),
            ("input,output,backend\na,b.nii,tpu\n", "unknown backend"),
            ("input,output\na.h5,b.foo\n", "row 1"),
        ] {
            std::fs::write(&m, text).unwrap();
            let e = Manifest::read_csv(&m, "sense", Backend::Auto)
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn glob_rows_fill_the_output_pattern() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.h5", "a.h5", "notes.txt"] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        let pat = format!("{}/*.h5", dir.path().display());
        let out = format!("{}/out/{{stem}}.nii.gz", dir.path().display());
        let m = Manifest::from_glob(&pat, &out, "sense", Backend::Cpu).unwrap();
        let outs: Vec<PathBuf> = m.rows.iter().map(|r| r.output.clone()).collect();
        assert_eq!(
            outs,
            vec![
                dir.path().join("out/a.nii.gz"),
                dir.path().join("out/b.nii.gz")
            ]
        );
        assert!(Manifest::from_glob(&pat, "out/x.nii", "sense", Backend::Cpu).is_err());
        let none = format!("{}/*.mrd", dir.path().display());
        assert!(Manifest::from_glob(&none, &out, "sense", Backend::Cpu).is_err());
    }

    #[test]
    fn a_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".x.nii.basin-lock");
        let a = RowLock::acquire(&p).unwrap().unwrap();
        let holder = RowLock::acquire(&p).unwrap().unwrap_err();
        assert!(
            holder.contains(&format!("pid {}", std::process::id())),
            "{holder}"
        );
        drop(a);
        assert!(!p.exists());
        let b = RowLock::acquire(&p).unwrap().unwrap();
        drop(b);
    }
}
