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
use ndarray::{Array2, Array3, Array4, ArrayD, ArrayView2, ArrayView3, Axis};

struct Slice {
    op: Sense,
    data: Array4<C32>,
    /// Unit phasors of the CG-SENSE image divided by the whitened maps' factor k: an image of
    /// magnitude m is m·phase in the operator's units.
    phase: Array3<C32>,
    sigma: f64,
    key: basin_mrd::BucketKey,
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
                key: b.key,
            });
        }
        Ok(DataCheck { slices })
    }

    /// Reads the acquisition `path` (ISMRMRD/MRD or fastMRI HDF5) and calibrates it as
    /// [`DataCheck::new`] does.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ReconError> {
        Self::new(&basin_mrd::read_kspace(path, None)?)
    }

    /// Slices of the volumes this check takes.
    pub fn slices(&self) -> usize {
        self.slices.len()
    }

    /// ‖A(a·m·e^{iφ}) − y‖ / (σ √M) over all slices of the magnitude volume `magnitude`
    /// `[z, y, x]` (see the module's documentation).
    pub fn residual_over_noise(&self, magnitude: ArrayView3<'_, f32>) -> Result<f64, ReconError> {
        self.check_shape(magnitude)?;
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for (z, s) in self.slices.iter().enumerate() {
            let r = s.residual(magnitude.index_axis(Axis(0), z));
            num += dot(r.view(), r.view()).re;
            den += s.sigma * s.sigma * s.measured() as f64;
        }
        Ok((num / den.max(1e-300)).sqrt())
    }

    /// Where the magnitude volume `magnitude` `[z, y, x]` disagrees with the data: per slice
    /// the residual over the noise and the signed misfit map (see [`Misfit`]).
    pub fn misfit(&self, magnitude: ArrayView3<'_, f32>) -> Result<Misfit, ReconError> {
        self.check_shape(magnitude)?;
        let (nz, ny, nx) = magnitude.dim();
        let mut map = Array3::<f32>::zeros((nz, ny, nx));
        let mut residual = Vec::with_capacity(nz);
        let kernel = gaussian_kernel(MISFIT_SMOOTHING);
        for (z, s) in self.slices.iter().enumerate() {
            let r = s.residual(magnitude.index_axis(Axis(0), z));
            residual.push(
                (dot(r.view(), r.view()).re / (s.sigma * s.sigma * s.measured() as f64)).sqrt(),
            );
            let g = s.op.adjoint(r.view());
            let g = g
                .index_axis(Axis(0), 0)
                .into_dimensionality::<ndarray::Ix2>()
                .expect("2D slices");
            let gs = smooth(g, &kernel);
            // Noise of the smoothed back-projection at p: σ² ‖s(p)‖² Σ_d (h⋆h)(d) Re P(d), P the
            // mask's point-spread function (coil maps taken constant over the kernel).
            let c = s.sigma * s.sigma * kernel_psf_sum(&kernel, s.op.mask());
            let maps = s.op.maps();
            let mut out = map.index_axis_mut(Axis(0), z);
            for ((y, x), o) in out.indexed_iter_mut() {
                let ss: f64 = (0..maps.dim().0)
                    .map(|ch| maps[[ch, 0, y, x]].norm_sqr() as f64)
                    .sum();
                let v = c * ss / 2.0;
                let ph = s.phase[[0, y, x]];
                let n = ph.norm();
                if v <= 0.0 || n == 0.0 {
                    continue;
                }
                let t = (ph.conj() * gs[[y, x]]).re as f64 / n as f64;
                *o = (t / v.sqrt()) as f32;
            }
        }
        let mut spread = Vec::with_capacity(nz);
        let mut worst = Vec::with_capacity(nz);
        for m in map.axis_iter(Axis(0)) {
            let mut a: Vec<f32> = m.iter().filter(|v| **v != 0.0).map(|v| v.abs()).collect();
            let sd = if a.is_empty() {
                1.0
            } else {
                let mid = a.len() / 2;
                *a.select_nth_unstable_by(mid, |p, q| p.total_cmp(q)).1 as f64 * 1.4826
            };
            spread.push(sd);
            let mut w = Worst::default();
            for ((y, x), &v) in m.indexed_iter() {
                if v.abs() > w.z.abs() {
                    w = Worst { z: v, y, x };
                }
            }
            worst.push(w);
        }
        Ok(Misfit {
            keys: self.slices.iter().map(|s| s.key).collect(),
            residual_over_noise: residual,
            map,
            spread,
            worst,
        })
    }

    fn check_shape(&self, magnitude: ArrayView3<'_, f32>) -> Result<(), ReconError> {
        let (nz, ny, nx) = magnitude.dim();
        if nz != self.slices.len() {
            return Err(ReconError::Usage(format!(
                "the image has {nz} slices, the acquisition {}",
                self.slices.len()
            )));
        }
        if let Some(s) = self.slices.first() {
            let (_, py, px) = s.phase.dim();
            if (py, px) != (ny, nx) {
                return Err(ReconError::Usage(format!(
                    "the image's slices are {ny}×{nx}, the acquisition's {py}×{px}"
                )));
            }
        }
        Ok(())
    }
}

/// Standard deviation, in pixels, of the Gaussian that smooths the misfit map: matched to
/// structures a few pixels across.
pub const MISFIT_SMOOTHING: f64 = 1.0;

/// A slice is flagged when somewhere its misfit exceeds this many times the slice's typical
/// misfit (its robust spread, at least the noise's): a local departure from the data that the
/// rest of the image does not share. Set on training anatomy (Colin27, DATA.md) so that no clean
/// reconstruction there was flagged (largest 9.7 at 4× and 8×, CG-SENSE, TV and the EBM), with
/// a 20 % margin; its detection rates on validation anatomy are in benches/RESULTS.md.
pub const MISFIT_OUTLIER: f64 = 12.0;

/// Where an image disagrees with the measured data, slice by slice.
///
/// The map is a signed z per pixel: the back-projected residual Aᴴ(A(a·m·e^{iφ}) − y),
/// smoothed by a Gaussian of [`MISFIT_SMOOTHING`] pixels and projected on the image's phase,
/// over its standard deviation under the measured noise alone (σ² ‖s(p)‖² Σ (h⋆h)·P, P the
/// sampling mask's point-spread function). Positive: the image is brighter there than the data
/// support (an inserted structure); negative: darker (an erased or weakened one). Pure noise in
/// the data gives standard normal values; an image that fits the data more closely than the
/// truth does (an unregularised solve) gives smaller ones, a smoothed or biased one larger ones
/// along edges and detail.
pub struct Misfit {
    /// ‖A(a·m·e^{iφ}) − y‖ / (σ √M) per slice.
    pub residual_over_noise: Vec<f64>,
    /// The signed misfit z `[z, y, x]` (0 outside the coil maps' support).
    pub map: Array3<f32>,
    /// Per slice, the robust spread of the map over the coils' support (1.4826 × the median
    /// of |z|; 1 for pure noise).
    pub spread: Vec<f64>,
    /// Per slice, the pixel of the largest |z|.
    pub worst: Vec<Worst>,
    /// Per slice, the acquisition's bucket it was judged against.
    pub keys: Vec<basin_mrd::BucketKey>,
}

/// A slice's largest misfit: its signed z and where (row, column).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Worst {
    /// The signed misfit z there.
    pub z: f32,
    /// Row.
    pub y: usize,
    /// Column.
    pub x: usize,
}

impl Misfit {
    /// The largest |z| of slice `z` over its typical misfit, max(spread, 1).
    pub fn outlier(&self, z: usize) -> f64 {
        self.worst[z].z.abs() as f64 / self.spread[z].max(1.0)
    }

    /// Whether slice `z` departs locally from the data: [`Misfit::outlier`] >
    /// [`MISFIT_OUTLIER`].
    pub fn flagged(&self, z: usize) -> bool {
        self.outlier(z) > MISFIT_OUTLIER
    }

    /// The slices [`Misfit::flagged`] flags, in order.
    pub fn flagged_slices(&self) -> Vec<usize> {
        (0..self.worst.len()).filter(|&z| self.flagged(z)).collect()
    }

    /// Slice `z`'s numbers as `basin score --kspace` and `basin recon --check-data` report them.
    pub fn summary(&self, z: usize) -> SliceMisfit {
        let w = self.worst[z];
        SliceMisfit {
            residual_over_noise: self.residual_over_noise[z],
            misfit_spread: self.spread[z],
            worst_misfit: WorstMisfit {
                z: w.z,
                row: w.y,
                column: w.x,
            },
            misfit_outlier: self.outlier(z),
            inconsistent: self.flagged(z),
        }
    }
}

/// One slice against its data, as reported in JSON (see [`Misfit`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SliceMisfit {
    /// ‖A(a·m·e^{iφ}) − y‖ / (σ √M).
    pub residual_over_noise: f64,
    /// The robust spread of the misfit map.
    pub misfit_spread: f64,
    /// The largest |z| and where.
    pub worst_misfit: WorstMisfit,
    /// The largest |z| over max(spread, 1).
    pub misfit_outlier: f64,
    /// Whether the outlier exceeds [`MISFIT_OUTLIER`].
    pub inconsistent: bool,
}

/// Where a slice's largest misfit is, as reported in JSON.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct WorstMisfit {
    /// The signed misfit z.
    pub z: f32,
    /// Row.
    pub row: usize,
    /// Column.
    pub column: usize,
}

impl Slice {
    /// The residual A(a·m·e^{iφ}) − y `[c, 1, y, x]` of the magnitude slice `m`, a its
    /// least-squares scale.
    fn residual(&self, m: ArrayView2<'_, f32>) -> ArrayD<C32> {
        let (ny, nx) = m.dim();
        let u = Array3::from_shape_fn((1, ny, nx), |(_, y, x)| self.phase[[0, y, x]] * m[[y, x]]);
        let au = self.op.forward(u.view().into_dyn());
        let y = self.data.view().into_dyn();
        let uu = dot(au.view(), au.view()).re;
        let a = if uu > 0.0 {
            dot(au.view(), y.view()).re / uu
        } else {
            0.0
        };
        au.mapv(|v| v * a as f32) - &y
    }

    /// Measured samples over all coils.
    fn measured(&self) -> usize {
        self.op.mask().iter().filter(|&&v| v).count() * self.data.shape()[0]
    }
}

/// A normalised 2D Gaussian of standard deviation `sd` pixels, radius ⌈3 sd⌉.
fn gaussian_kernel(sd: f64) -> Array2<f64> {
    let r = (3.0 * sd).ceil() as usize;
    let n = 2 * r + 1;
    let mut k = Array2::from_shape_fn((n, n), |(i, j)| {
        let (dy, dx) = (i as f64 - r as f64, j as f64 - r as f64);
        (-(dy * dy + dx * dx) / (2.0 * sd * sd)).exp()
    });
    let s = k.sum();
    k.mapv_inplace(|v| v / s);
    k
}

/// `g` convolved with the centred `kernel` (zero outside the image).
fn smooth(g: ArrayView2<'_, C32>, kernel: &Array2<f64>) -> Array2<C32> {
    let (ny, nx) = g.dim();
    let r = (kernel.dim().0 / 2) as isize;
    Array2::from_shape_fn((ny, nx), |(y, x)| {
        let mut acc = C32::new(0.0, 0.0);
        for ((i, j), &w) in kernel.indexed_iter() {
            let (yy, xx) = (y as isize + i as isize - r, x as isize + j as isize - r);
            if yy >= 0 && xx >= 0 && (yy as usize) < ny && (xx as usize) < nx {
                acc += g[[yy as usize, xx as usize]] * w as f32;
            }
        }
        acc
    })
}

/// Σ_d (h⋆h)(d) Re P(d) for the kernel h and the point-spread function of the sampling mask
/// `[1, y, x]` (centred k-space), P(d) = (1/N) Σ_k M(k) e^{2πi k·d/N} (P(0) is the sampled
/// fraction).
fn kernel_psf_sum(kernel: &Array2<f64>, mask: &Array3<bool>) -> f64 {
    let (_, ny, nx) = mask.dim();
    let n = kernel.dim().0;
    let r = (n / 2) as isize;
    // (h⋆h)(d) for |d| ≤ 2r.
    let w = 4 * r as usize + 1;
    let mut hh = Array2::<f64>::zeros((w, w));
    for ((i, j), &a) in kernel.indexed_iter() {
        for ((k, l), &b) in kernel.indexed_iter() {
            hh[[i + (n - 1) - k, j + (n - 1) - l]] += a * b;
        }
    }
    let sampled: Vec<(f64, f64)> = mask
        .index_axis(Axis(0), 0)
        .indexed_iter()
        .filter(|(_, &m)| m)
        // Centred k-space: index i is the frequency i − n/2.
        .map(|((y, x), _)| {
            (
                (y as f64 - (ny / 2) as f64) / ny as f64,
                (x as f64 - (nx / 2) as f64) / nx as f64,
            )
        })
        .collect();
    let total = (ny * nx) as f64;
    let mut sum = 0.0;
    for ((i, j), &h) in hh.indexed_iter() {
        if h == 0.0 {
            continue;
        }
        let (dy, dx) = (i as f64 - 2.0 * r as f64, j as f64 - 2.0 * r as f64);
        let p: f64 = sampled
            .iter()
            .map(|&(ky, kx)| (std::f64::consts::TAU * (ky * dy + kx * dx)).cos())
            .sum::<f64>()
            / total;
        sum += h * p;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use basin_core::rng::Rng;

    /// The misfit map's noise normalisation: data of pure complex white noise (σ 0.7) against an
    /// empty image give a map of mean 0 and variance 1 over the coils' support (4 smooth coils
    /// of unequal norm, random lines with a fully sampled centre, 6 draws; the variance's
    /// standard error is about 3 %), with normal tails (|z| > 3 in 0.27 %, here < 0.6 %).
    #[test]
    fn the_misfit_map_is_standard_normal_on_pure_noise() {
        let (ny, nx, nc) = (64usize, 64usize, 4usize);
        let maps = Array4::from_shape_fn((nc, 1, ny, nx), |(c, _, y, x)| {
            let a = std::f32::consts::TAU * c as f32 / nc as f32;
            let (cy, cx) = (32.0 + 30.0 * a.sin(), 32.0 + 30.0 * a.cos());
            let d2 = (y as f32 - cy).powi(2) + (x as f32 - cx).powi(2);
            let m = (-d2 / 2000.0).exp();
            C32::from_polar(m, 0.02 * (x as f32 + y as f32) + a)
        });
        let mut rng = Rng::new(3);
        let lines: Vec<bool> = (0..ny)
            .map(|y| (28..36).contains(&y) || rng.uniform() < 0.25)
            .collect();
        let mask = Array3::from_shape_fn((1, ny, nx), |(_, y, _)| lines[y]);
        let op = Sense::new(maps, mask.clone(), false).unwrap();
        let phase = Array3::from_shape_fn((1, ny, nx), |_| {
            C32::from_polar(1.0, (rng.uniform() * std::f64::consts::TAU) as f32)
        });
        let sigma = 0.7f64;
        let (mut n, mut s1, mut s2, mut tail) = (0usize, 0.0f64, 0.0f64, 0usize);
        for _ in 0..6 {
            let data = Array4::from_shape_fn((nc, 1, ny, nx), |(_, _, y, _)| {
                if lines[y] {
                    rng.complex_normal() * (sigma / 2f64.sqrt()) as f32
                } else {
                    C32::new(0.0, 0.0)
                }
            });
            let check = DataCheck {
                slices: vec![Slice {
                    op: Sense::new(op.maps().clone(), mask.clone(), false).unwrap(),
                    data,
                    phase: phase.clone(),
                    sigma,
                    key: Default::default(),
                }],
            };
            let m = check.misfit(Array3::zeros((1, ny, nx)).view()).unwrap();
            for &v in m.map.iter().filter(|v| **v != 0.0) {
                n += 1;
                s1 += v as f64;
                s2 += (v as f64).powi(2);
                tail += (v.abs() > 3.0) as usize;
            }
        }
        let mean = s1 / n as f64;
        let var = s2 / n as f64 - mean * mean;
        let frac = tail as f64 / n as f64;
        eprintln!("pure noise: mean {mean:.4}, variance {var:.4}, |z| > 3 in {frac:.4}");
        assert!(mean.abs() < 0.1, "mean {mean}");
        assert!((0.9..=1.1).contains(&var), "variance {var}");
        assert!(frac < 0.006, "|z| > 3 in {frac}");
    }
}
