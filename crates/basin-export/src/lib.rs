#![warn(missing_docs)]
//! basin-export: where a reconstructed voxel sits in the patient, and the writers that carry
//! that geometry into files (and a NIfTI reader for images basin scores or learns from). Writes are atomic: a temporary sibling file, then a rename; an
//! existing output is refused unless the caller allows overwriting.

pub mod dicom;
pub mod dicom_in;
pub mod geometry;
pub mod image_in;
pub mod ismrmrd_out;
pub mod nifti_in;
pub mod nifti_out;
pub mod preview;

use std::path::{Path, PathBuf};

/// Errors of basin-export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The output exists and overwriting was not allowed.
    #[error("{0}: already exists (use --force to overwrite)")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("{file}: {message}")]
    Write {
        /// Output file.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// An input image that cannot be read.
    #[error("{file}: {message}")]
    Read {
        /// Input file.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// An output that must not be written: it would replace an input, is named twice, or its
    /// directory is missing or not writable.
    #[error("{file}: {message}")]
    Refused {
        /// Output.
        file: PathBuf,
        /// Why.
        message: String,
    },
    /// Nothing to write or inconsistent slices.
    #[error("{0}")]
    Invalid(String),
}

/// The finite values of an image, sorted ascending (for windowing and scaling).
pub(crate) fn sorted_finite<'a>(values: impl Iterator<Item = &'a f32>) -> Vec<f32> {
    let mut v: Vec<f32> = values.copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// The value at fraction `p` of a sorted list (nearest rank below), None when it is empty.
pub(crate) fn quantile(sorted: &[f32], p: f64) -> Option<f32> {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p) as usize)
        .copied()
}

/// Temporaries being written by this process (files or directories), removed by
/// [`remove_temporaries`] when the process is interrupted.
static TEMPORARIES: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Records a temporary (or a lock file) before it is created, so that an interrupt removes it.
pub fn track(p: &Path) {
    if let Ok(mut t) = TEMPORARIES.lock() {
        t.push(p.to_path_buf());
    }
}

/// Forgets a temporary once it has been renamed or removed.
pub fn untrack(p: &Path) {
    if let Ok(mut t) = TEMPORARIES.lock() {
        t.retain(|q| q != p);
    }
}

/// Removes every temporary this process is writing, then runs `then` (e.g. exits) while still
/// holding the registry, so that no writer can record a new temporary in between. For
/// SIGINT/SIGTERM handlers: an interrupted run leaves no `.tmp-*` file or directory behind.
pub fn remove_temporaries_then(then: impl FnOnce()) {
    let guard = TEMPORARIES.lock();
    if let Ok(t) = &guard {
        for p in t.iter() {
            remove_any(p);
        }
    }
    then();
    drop(guard);
}

/// Writes `path` atomically: `write` fills a temporary sibling (whose name ends like `path`, so
/// extension-driven writers behave the same), which is renamed over `path` on success and
/// removed on failure.
pub fn atomic_write<F>(path: &Path, overwrite: bool, write: F) -> Result<(), ExportError>
where
    F: FnOnce(&Path) -> Result<(), String>,
{
    if path.exists() && !overwrite {
        return Err(ExportError::Exists(path.to_path_buf()));
    }
    let tmp = sibling(path, "tmp");
    track(&tmp);
    let result = write(&tmp).and_then(|_| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    untrack(&tmp);
    if let Err(message) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ExportError::Write {
            file: path.to_path_buf(),
            message,
        });
    }
    Ok(())
}

/// Where `p` is or would be: its canonical path when it exists, else its directory's canonical
/// path joined with its name (the directory must exist).
fn resolved(p: &Path) -> Result<PathBuf, ExportError> {
    if let Ok(c) = p.canonicalize() {
        return Ok(c);
    }
    let refused = |m: String| ExportError::Refused {
        file: p.to_path_buf(),
        message: m,
    };
    let name = p
        .file_name()
        .ok_or_else(|| refused("not a file or directory name".into()))?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = parent
        .canonicalize()
        .map_err(|e| refused(format!("directory {}: {e}", parent.display())))?;
    if !dir.is_dir() {
        return Err(refused(format!("{} is not a directory", parent.display())));
    }
    Ok(dir.join(name))
}

/// Whether two existing paths are one file (same device and inode: hard links, bind mounts).
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

/// Checks a run's outputs before any work, so that nothing is computed for an output that
/// cannot be written and no output ever replaces an input: each output is compared with every
/// input and every other output by canonical path (and by device and inode where both exist),
/// must not be a directory holding an input, must not exist unless `overwrite`, and its
/// directory must exist and accept a new file (probed by creating and removing one).
pub fn check_outputs(
    inputs: &[&Path],
    outputs: &[&Path],
    overwrite: bool,
) -> Result<(), ExportError> {
    let inputs: Vec<(PathBuf, &Path)> = inputs
        .iter()
        .filter_map(|p| p.canonicalize().ok().map(|c| (c, *p)))
        .collect();
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for &o in outputs {
        let r = resolved(o)?;
        let refused = |m: String| ExportError::Refused {
            file: o.to_path_buf(),
            message: m,
        };
        for (c, i) in &inputs {
            if *c == r || same_file(c, o) {
                return Err(refused(format!(
                    "would replace the input {} (refused even with --force: raw data cannot be re-acquired)",
                    i.display()
                )));
            }
            if r.is_dir() && c.starts_with(&r) {
                return Err(refused(format!(
                    "is a directory holding the input {}",
                    i.display()
                )));
            }
        }
        if let Some((_, earlier)) = seen.iter().find(|(c, e)| *c == r || same_file(e, o)) {
            return Err(refused(format!(
                "named twice as an output (also as {})",
                earlier.display()
            )));
        }
        if r.exists() && !overwrite {
            return Err(ExportError::Exists(o.to_path_buf()));
        }
        let dir = r.parent().unwrap_or(Path::new("/"));
        // Unique per call: threads of one process (basin batch --jobs) probe the same directory.
        static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = dir.join(format!(".basin-probe-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) => return Err(refused(format!("cannot write in {}: {e}", dir.display()))),
        }
        seen.push((r, o));
    }
    Ok(())
}

/// One output of [`write_all`]: its path and the function that writes it to a given path (a
/// file, or a directory for a DICOM series).
pub type Output<'a> = (PathBuf, Writer<'a>);

/// Writes one output to the path it is given (a temporary sibling of the output).
pub type Writer<'a> = Box<dyn FnOnce(&Path) -> Result<(), String> + 'a>;

/// Removes a temporary file or directory.
fn remove_any(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

/// A sibling of `path` named `.{tag}-{pid}-{name}`.
fn sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{tag}-{}-{name}", std::process::id()))
}

/// Cleans what a killed writer of `path` left next to it (call only while no other process
/// writes `path`, e.g. holding its lock): temporaries `.tmp-<pid>-<name>` are removed, and a
/// previous output moved aside (`.old-<pid>-<name>`) is put back when `path` is missing (the
/// run died between moving it aside and moving the new one in), else removed. Returns one line
/// per action, for the log.
pub fn clean_stale(path: &Path) -> Vec<String> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = name.to_string_lossy().to_string();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut done = Vec::new();
    for e in entries.flatten() {
        let f = e.file_name().to_string_lossy().to_string();
        let Some((tag, rest)) = f
            .strip_prefix(".tmp-")
            .map(|r| ("tmp", r))
            .or_else(|| f.strip_prefix(".old-").map(|r| ("old", r)))
        else {
            continue;
        };
        // rest = "<pid>-<name>"
        let Some((pid, n)) = rest.split_once('-') else {
            continue;
        };
        if n != name || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let p = e.path();
        if tag == "old" && !path.exists() && std::fs::rename(&p, path).is_ok() {
            done.push(format!(
                "restored {} from {} (a run was killed while replacing it)",
                path.display(),
                p.display()
            ));
            continue;
        }
        remove_any(&p);
        done.push(format!("removed {} (left by a killed run)", p.display()));
    }
    done
}

/// Writes several outputs all together or not at all: every existing output is refused first
/// (unless `overwrite`), each writer fills a temporary sibling of its output, and only when all
/// have succeeded are they moved into place (an existing output, file or directory, is moved
/// aside first and removed once its replacement is in place); on any failure every temporary
/// is removed and the outputs moved so far are put back.
pub fn write_all(outputs: Vec<Output<'_>>, overwrite: bool) -> Result<(), ExportError> {
    for (path, _) in &outputs {
        if path.exists() && !overwrite {
            return Err(ExportError::Exists(path.clone()));
        }
    }
    let mut done: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut failure = None;
    for (path, write) in outputs {
        let tmp = sibling(&path, "tmp");
        remove_any(&tmp);
        track(&tmp);
        match write(&tmp) {
            Ok(()) => done.push((tmp, path)),
            Err(message) => {
                remove_any(&tmp);
                untrack(&tmp);
                failure = Some(ExportError::Write {
                    file: path,
                    message,
                });
                break;
            }
        }
    }
    if let Some(e) = failure {
        for (tmp, _) in &done {
            remove_any(tmp);
            untrack(tmp);
        }
        return Err(e);
    }
    // Move into place; remember what was replaced so that a failure can undo the moves.
    let mut placed: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    for (tmp, path) in &done {
        let old = path.exists().then(|| sibling(path, "old"));
        let moved = match &old {
            Some(o) => std::fs::rename(path, o).and_then(|_| {
                std::fs::rename(tmp, path).inspect_err(|_| {
                    let _ = std::fs::rename(o, path);
                })
            }),
            None => std::fs::rename(tmp, path),
        };
        if let Err(e) = moved {
            for (t, _) in &done {
                remove_any(t);
                untrack(t);
            }
            for (p, o) in placed.iter().rev() {
                remove_any(p);
                if let Some(o) = o {
                    let _ = std::fs::rename(o, p);
                }
            }
            return Err(ExportError::Write {
                file: path.clone(),
                message: e.to_string(),
            });
        }
        placed.push((path.clone(), old));
    }
    for (_, o) in placed {
        if let Some(o) = o {
            remove_any(&o);
        }
    }
    for (t, _) in &done {
        untrack(t);
    }
    Ok(())
}
