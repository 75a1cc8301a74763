#![warn(missing_docs)]
//! basin-core: the array types, the centered orthonormal FFT, the linear operators that every
//! solver is written against, and the image-quality metrics (fastMRI definitions).
//!
//! Conventions: k-space arrays are `[coil, z, y, x]`, images `[z, y, x]`; x is the readout.
//! FFTs are centered (fftshift ∘ FFT ∘ ifftshift) and orthonormal.

pub mod backend;
pub mod fft;
pub mod fuzz;
pub mod linop;
pub mod metrics;
pub mod rng;

pub use backend::Backend;
pub use num_complex::Complex32;

/// Complex single-precision sample, the element type of every image and k-space array.
pub type C32 = Complex32;
/// Complex double-precision sample, used by references and tests.
pub type C64 = num_complex::Complex64;

/// Errors raised by basin-core.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Two arrays that must agree in shape do not.
    #[error("shape mismatch in {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Which operation found the mismatch.
        what: &'static str,
        /// The shape that was required.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },
}
