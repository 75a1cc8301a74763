#![warn(missing_docs)]
//! basin-export: where a reconstructed voxel sits in the patient, and the writers that carry
//! that geometry into files (and a NIfTI reader for images basin scores or learns from). Writes are atomic: a temporary sibling file, then a rename; an
//! existing output is refused unless the caller allows overwriting.

pub mod dicom;
pub mod dicom_in;
pub mod geometry;
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
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "output".into());
    let tmp = path.with_file_name(format!(".tmp-{}-{name}", std::process::id()));
    let result = write(&tmp).and_then(|_| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if let Err(message) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ExportError::Write {
            file: path.to_path_buf(),
            message,
        });
    }
    Ok(())
}

/// One output of [`write_all`]: its path and the function that writes it to a given file.
pub type Output<'a> = (PathBuf, Box<dyn FnOnce(&Path) -> Result<(), String> + 'a>);

/// Writes several outputs all together or not at all: every existing output is refused first
/// (unless `overwrite`), each writer fills a temporary sibling of its output, and only when all
/// have succeeded are they renamed into place; on any failure every temporary is removed.
pub fn write_all(outputs: Vec<Output<'_>>, overwrite: bool) -> Result<(), ExportError> {
    for (path, _) in &outputs {
        if path.exists() && !overwrite {
            return Err(ExportError::Exists(path.clone()));
        }
    }
    let mut done: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut failure = None;
    for (path, write) in outputs {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "output".into());
        let tmp = path.with_file_name(format!(".tmp-{}-{name}", std::process::id()));
        match write(&tmp) {
            Ok(()) => done.push((tmp, path)),
            Err(message) => {
                let _ = std::fs::remove_file(&tmp);
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
            let _ = std::fs::remove_file(tmp);
        }
        return Err(e);
    }
    for (i, (tmp, path)) in done.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            for (t, _) in &done[i..] {
                let _ = std::fs::remove_file(t);
            }
            return Err(ExportError::Write {
                file: path.clone(),
                message: e.to_string(),
            });
        }
    }
    Ok(())
}
