#![warn(missing_docs)]
//! basin-mrd: everything between a file (or stream) and k-space. The ISMRMRD XML header, the
//! acquisition layout and flags, HDF5 reading and writing of ISMRMRD and fastMRI files, and the
//! assembly of acquisitions into k-space buckets. It never reconstructs.

pub mod acquisition;
pub mod assemble;
pub mod header;
pub mod image;
pub mod io;
pub mod stream;

pub use acquisition::{flags, Acquisition, AcquisitionHeader, EncodingCounters};
pub use assemble::{assemble, from_fastmri, Bucket, BucketKey, KSpace, SliceGeometry};
pub use header::IsmrmrdHeader;

use std::path::{Path, PathBuf};

/// Errors of basin-mrd; each names the file and the object or field that was wrong.
#[derive(Debug, thiserror::Error)]
pub enum MrdError {
    /// The file could not be read at all.
    #[error("{file}: {source}")]
    Io {
        /// File.
        file: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not an HDF5 file, or truncated or corrupt.
    #[error("{file}: not a readable HDF5 file (truncated or corrupt?): {source}")]
    NotHdf5 {
        /// File.
        file: PathBuf,
        /// Cause.
        source: hdf5::Error,
    },
    /// An HDF5 operation failed on an object.
    #[error("{file}: {object}: {source}")]
    Hdf5 {
        /// File.
        file: PathBuf,
        /// Dataset or group.
        object: String,
        /// Cause.
        source: hdf5::Error,
    },
    /// A required dataset or group is absent.
    #[error("{file}: missing {object}")]
    Missing {
        /// File.
        file: PathBuf,
        /// Dataset or group.
        object: String,
    },
    /// A dataset has the wrong type.
    #[error("{file}: {object} has type {found}, expected {expected}")]
    Type {
        /// File.
        file: PathBuf,
        /// Dataset.
        object: String,
        /// Expected type.
        expected: String,
        /// Found type.
        found: String,
    },
    /// The XML header does not parse.
    #[error("{file}: {object}: invalid ISMRMRD header: {message}")]
    Header {
        /// File.
        file: PathBuf,
        /// Dataset holding the header.
        object: String,
        /// Parser message.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{file}: {field}: {message}")]
    Invalid {
        /// File.
        file: PathBuf,
        /// Field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// The estimated peak bytes [`read_kspace`] holds for `path`, before reading it: ISMRMRD, three
/// times the file's size (the acquisition records HDF5 returns — variable-length data live in
/// the file's global heap, which filters never compress, so they are at most the file's size —
/// their decoded copy, and the assembled buckets, which are at most as large); fastMRI, three
/// times the k-space array's size in memory (its dataset may be compressed), or of the file when
/// that is larger. What `--max-memory` compares before any data are read.
pub fn read_memory_estimate(path: &Path, group: Option<&str>) -> Result<u64, MrdError> {
    let file_size = std::fs::metadata(path)
        .map_err(|source| MrdError::Io {
            file: path.to_path_buf(),
            source,
        })?
        .len();
    let array = match io::detect(path, group)? {
        io::FileKind::Ismrmrd { .. } => 0,
        io::FileKind::FastMri => io::fastmri_kspace_bytes(path)?,
    };
    Ok(file_size.max(array).saturating_mul(3))
}

/// Reads any supported k-space file (ISMRMRD group `group`, auto-detected when None, or fastMRI)
/// and assembles it.
pub fn read_kspace(path: &Path, group: Option<&str>) -> Result<KSpace, MrdError> {
    match io::detect(path, group)? {
        io::FileKind::Ismrmrd { group } => {
            let (header, acqs) = io::read_ismrmrd(path, &group)?;
            assemble(path, header, &acqs)
        }
        io::FileKind::FastMri => from_fastmri(path, io::read_fastmri(path)?),
    }
}
