//! How well any image — basin's, another tool's, a scanner's — explains the measured data:
//! ‖A(a·x) − y‖ / (σ √M) over the M measured samples, the quantity [`crate::Diagnostics`]
//! reports for basin's own solves (≈ 1: explained down to the noise; ≫ 1: the image ignores
//! the data), computed for a magnitude image on basin's output grid.
//!
//! A is the SENSE operator of the acquisition with the built-in `sense` protocol's calibration
//! (ESPIRiT maps, unit norm in the original coil space) on prewhitened data when there is a noise
//! scan (σ = 1), else σ is estimated from the outer k-space. A magnitude image carries no phase:
//! it is given the phase of basin's CG-SENSE reconstruction of the same data, and one real
//! least-squares factor a fits its intensity scale to the data, so neither a tool's scale
//! convention nor the missing phase count as inconsistency. Volumes are 2D multi-slice stacks
//! in the order `basin recon` writes them (the first contrast, repetition and set).

use crate::{ReconError, ReconOptions};
use basin_core::linop::{dot, LinearOp, Sense};
use basin_core::C32;
use basin_mrd::KSpace;
use ndarray::{Array3, Array4, ArrayView3, Axis};

struct Slice {
    op: Sense,
    data: Array4<C32>,
    /// Unit phasors of the CG-SENSE image divided by the whitened maps' factor k: an image of
    /// magnitude m is m·phase in the operator's units.
    phase: Array3<C32>,
    sigma: f64,
}

/// The measured data of an acquisition, ready to judge images against.
pub struct DataCheck {
    slices: Vec<Slice>,
}

impl DataCheck {
    /// Calibrates and reconstructs (CG-SENSE, for the phase) every slice of `kspace`.
    pub fn new(kspace: &KSpace) -> Result<Self, ReconError> {
        if kspace.three_d {
            return Err(ReconError::Usage(
                "the data-consistency check handles 2D multi-slice acquisitions".into(),
            ));
        }
        let protocol = crate::Protocol::resolve("sense", None)?;
        let whitening = crate::whitening_for(&protocol, kspace)?;
        let first = kspace
            .buckets
            .iter()
            .map(|b| (b.key.contrast, b.key.repetition, b.key.set))
            .min()
            .ok_or_else(|| ReconError::Calibration("no slices in the acquisition".into()))?;
        let mut buckets: Vec<&basin_mrd::Bucket> = kspace
            .buckets
            .iter()
            .filter(|b| (b.key.contrast, b.key.repetition, b.key.set) == first)
            .collect();
        basin_export::geometry::sort_for_stack(&mut buckets, |b| (&b.geometry, b.key.slice));
        let priors = crate::Priors::default();
        let mut slices = Vec::new();
        for b in buckets {
            let cg = crate::reconstruct_bucket(
                &protocol,
                b,
                false,
                whitening.as_ref(),
                None,
                &priors,
                &ReconOptions::default(),
            )?;
            let mut data = b.data.clone();
            if let Some(w) = &whitening {
                crate::prewhiten::apply(w, &mut data);
            }
            let (op_maps, k) = match &whitening {
                Some(w) => crate::prewhiten::whiten_maps(&cg.maps, w),
                None => (cg.maps.clone(), 1.0),
            };
            let op = Sense::new(op_maps, b.mask.clone(), false)?;
            let sigma = if whitening.is_some() {
                1.0
            } else {
                crate::ebm::estimate_noise(&data, op.mask())
            };
            let phase = cg.image.mapv(|v| {
                let n = v.norm();
                if n > 0.0 {
                    v / (n * k)
                } else {
                    C32::new(1.0 / k, 0.0)
                }
            });
            slices.push(Slice {
                op,
                data,
                phase,
                sigma,
            });
        }
        Ok(DataCheck { slices })
    }

    /// Slices of the volumes this check takes.
    pub fn slices(&self) -> usize {
        self.slices.len()
    }

    /// ‖A(a·m·e^{iφ}) − y‖ / (σ √M) over all slices of the magnitude volume `magnitude`
    /// `[z, y, x]` (see the module's documentation).
    pub fn residual_over_noise(&self, magnitude: ArrayView3<'_, f32>) -> Result<f64, ReconError> {
        let (nz, ny, nx) = magnitude.dim();
        if nz != self.slices.len() {
            return Err(ReconError::Usage(format!(
                "the image has {nz} slices, the acquisition {}",
                self.slices.len()
            )));
        }
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for (z, s) in self.slices.iter().enumerate() {
            let (_, py, px) = s.phase.dim();
            if (py, px) != (ny, nx) {
                return Err(ReconError::Usage(format!(
                    "the image's slices are {ny}×{nx}, the acquisition's {py}×{px}"
                )));
            }
            let m = magnitude.index_axis(Axis(0), z);
            let u = Array3::from_shape_fn((1, ny, nx), |(_, y, x)| s.phase[[0, y, x]] * m[[y, x]]);
            let au = s.op.forward(u.view().into_dyn());
            let y = s.data.view().into_dyn();
            let uu = dot(au.view(), au.view()).re;
            let a = if uu > 0.0 {
                dot(au.view(), y.view()).re / uu
            } else {
                0.0
            };
            let r = au.mapv(|v| v * a as f32) - &y;
            let measured = s.op.mask().iter().filter(|&&v| v).count() * s.data.shape()[0];
            num += dot(r.view(), r.view()).re;
            den += s.sigma * s.sigma * measured as f64;
        }
        Ok((num / den.max(1e-300)).sqrt())
    }
}
