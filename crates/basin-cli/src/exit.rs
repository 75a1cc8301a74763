//! One contract for exit codes, shared by every subcommand (documented in `basin --help` and
//! the README):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | the run completed but flagged something (`score --fail-on-atypical`, `batch` rows not done) |
//! | 2 | usage: bad arguments, options that do not fit together, an invalid protocol |
//! | 3 | an input that cannot be read or is invalid (k-space, image, model, covariance) |
//! | 4 | an output that exists, replaces an input, or cannot be written |
//! | 5 | the device (GPU) failed or is missing |
//! | 130 / 143 | interrupted by SIGINT / SIGTERM (temporaries removed) |
//!
//! Errors of the libraries are classified by their type; the CLI's own checks say their class
//! with [`usage`], [`input`], [`output`] and [`flagged`].

use std::fmt;

/// The class of a failure, which is its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// 1: completed, but something was flagged.
    Flagged = 1,
    /// 2: bad usage.
    Usage = 2,
    /// 3: unreadable or invalid input.
    Input = 3,
    /// 4: output exists, would replace an input, or is not writable.
    Output = 4,
    /// 5: device failure.
    Device = 5,
}

/// An error the CLI raised itself, with its class.
#[derive(Debug)]
pub struct Failure {
    /// Exit code class.
    pub code: Code,
    /// What went wrong, for the user.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn failure(code: Code, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        code,
        message: message.into(),
    })
}

/// A usage error (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    failure(Code::Usage, message)
}

/// An unreadable or invalid input (exit 3).
pub fn input(message: impl Into<String>) -> anyhow::Error {
    failure(Code::Input, message)
}

/// An output that exists, replaces an input or cannot be written (exit 4).
pub fn output(message: impl Into<String>) -> anyhow::Error {
    failure(Code::Output, message)
}

/// A run that completed but flagged something (exit 1).
pub fn flagged(message: impl Into<String>) -> anyhow::Error {
    failure(Code::Flagged, message)
}

/// The exit code of an error: the first cause in its chain whose class is known; an error of
/// no known class is treated as bad input (3).
pub fn code_of(e: &anyhow::Error) -> Code {
    use basin_export::ExportError;
    use basin_recon::ReconError;
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.code;
        }
        if let Some(x) = cause.downcast_ref::<ExportError>() {
            return export_code(x);
        }
        if cause.downcast_ref::<basin_mrd::MrdError>().is_some()
            || cause.downcast_ref::<basin_prior::PriorError>().is_some()
        {
            return Code::Input;
        }
        #[cfg(feature = "gpu")]
        if cause.downcast_ref::<basin_gpu::GpuError>().is_some() {
            return Code::Device;
        }
        if let Some(f) = cause.downcast_ref::<basin_phantom::files::FilesError>() {
            return match f {
                basin_phantom::files::FilesError::Phantom(_) => Code::Usage,
                basin_phantom::files::FilesError::Export(x) => export_code(x),
                basin_phantom::files::FilesError::Mrd(_) => Code::Output,
            };
        }
        if cause
            .downcast_ref::<basin_phantom::PhantomError>()
            .is_some()
        {
            return Code::Usage;
        }
        if let Some(c) = cause.downcast_ref::<basin_compare::CompareError>() {
            return match c {
                basin_compare::CompareError::Usage(_) => Code::Usage,
                basin_compare::CompareError::Input(_) => Code::Input,
                basin_compare::CompareError::Output(x) => export_code(x),
                basin_compare::CompareError::Recon(_) => Code::Input,
            };
        }
        if let Some(r) = cause.downcast_ref::<ReconError>() {
            return match r {
                ReconError::Protocol { .. } | ReconError::Usage(_) => Code::Usage,
                ReconError::Write(x) => export_code(x),
                ReconError::Device(_) => Code::Device,
                _ => Code::Input,
            };
        }
    }
    Code::Input
}

fn export_code(x: &basin_export::ExportError) -> Code {
    match x {
        basin_export::ExportError::Read { .. } => Code::Input,
        _ => Code::Output,
    }
}
