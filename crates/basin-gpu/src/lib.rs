#![warn(missing_docs)]
//! basin-gpu: the GPU backend, written with cubecl. It mirrors, kernel by kernel, the CPU
//! operators it replaces — the centered orthonormal 2D and 3D FFT of `basin-core` (mixed radix,
//! any size), SENSE coil expansion/combination and masking, the CG recurrences of
//! `basin-recon`, and the multi-scale energy of `basin-prior` (same architecture and weights,
//! uploaded once) — and runs the whole EBM iteration on the device ([`ebm::run`]: a batch of 2D
//! slices, each its own problem, or a 3D slab) with no host round trip inside the loop
//! ([`Gpu::copies`] counts every host↔device copy).
//!
//! The wgpu runtime is always built (it runs on Mesa's software Vulkan driver lavapipe in CI,
//! which is for correctness, not speed); the `cuda` feature adds NVIDIA's runtime.

pub mod device;
pub mod ebm;
pub mod fft;
pub mod kernels;
pub mod prior;
pub mod sense;

pub use device::{Backend, DBuf, Gpu, GpuError};
