//! The one reconstruction pipeline every driver uses: header + acquisitions (a file, or a
//! stream's buckets one at a time) → buckets → reconstruct → volumes with geometry → writers.
//!
//! A [`Pipeline`] holds what is expensive to set up — the device (opened once, when an EBM
//! protocol first needs it) and the prior in its CPU and device forms — so a process pays for
//! them once, not per file or per connection. It is `Sync`: a server shares one between its
//! connections (one solve at a time uses the device's buffers; CPU solves run side by side).

use crate::{reconstruct_bucket, reconstruct_with, Priors, Protocol, ReconError, ReconOptions};
use crate::{ReconResult, SliceResult, Solver};
use basin_core::{C32, C64};
use basin_export::geometry::{sort_for_stack, stack_geometry, StackGeometry};
use basin_mrd::{Bucket, IsmrmrdHeader, KSpace};
use ndarray::{Array2, Array3, Array4, Axis};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Output formats of images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// NIfTI-1 (.nii, .nii.gz).
    Nifti,
    /// DICOM MR series in a directory.
    Dicom,
    /// ISMRMRD images (HDF5).
    Ismrmrd,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "nifti" => Ok(Format::Nifti),
            "dicom" => Ok(Format::Dicom),
            "ismrmrd" | "mrd" => Ok(Format::Ismrmrd),
            _ => Err(format!("{s}: not a format (nifti, dicom, ismrmrd)")),
        }
    }
}

/// The format a path asks for by its name: `.nii`/`.nii.gz` NIfTI, `.h5`/`.mrd`/`.hdf5`
/// ISMRMRD, and a DICOM series directory for a name without an extension, ending in `/` or
/// `.dcm`, or an existing directory. Any other extension is refused (it used to become a DICOM
/// directory named `x.foo`).
pub fn format_of(p: &Path) -> Result<Format, ReconError> {
    let s = p.to_string_lossy().to_lowercase();
    if s.ends_with(".nii") || s.ends_with(".nii.gz") {
        Ok(Format::Nifti)
    } else if s.ends_with(".h5") || s.ends_with(".mrd") || s.ends_with(".hdf5") {
        Ok(Format::Ismrmrd)
    } else if s.ends_with('/') || s.ends_with(".dcm") || p.is_dir() || p.extension().is_none() {
        Ok(Format::Dicom)
    } else {
        Err(ReconError::Usage(format!(
            "{}: unknown output extension; use .nii or .nii.gz (NIfTI), .h5 (ISMRMRD images), a directory name without an extension (DICOM series), or --format",
            p.display()
        )))
    }
}

/// Everything one run writes.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Image outputs and their formats (all volumes; DICOM holds the first).
    pub images: Vec<(PathBuf, Format)>,
    /// A PNG montage of the first volume.
    pub preview: Option<PathBuf>,
    /// The prior's per-pixel energy density of the first volume (NIfTI).
    pub energy_map: Option<PathBuf>,
    /// The posterior standard deviation of the first volume (NIfTI; needs samples).
    pub uncertainty: Option<PathBuf>,
    /// Judge the first volume against the measured data ([`crate::consistency`]) and report
    /// it in [`Report::misfit`] (2D acquisitions).
    pub check_data: bool,
    /// The signed data-misfit map of the first volume (NIfTI; implies `check_data`).
    pub misfit_map: Option<PathBuf>,
    /// ISMRMRD images as complex values instead of magnitude.
    pub complex: bool,
    /// Remove patient identifiers (DICOM PS3.15 basic profile).
    pub anonymize: bool,
    /// Root of new DICOM UIDs.
    pub uid_root: Option<String>,
}

impl Outputs {
    /// Every path written.
    pub fn paths(&self) -> Vec<&Path> {
        let mut p: Vec<&Path> = self.images.iter().map(|(p, _)| p.as_path()).collect();
        p.extend(self.preview.as_deref());
        p.extend(self.energy_map.as_deref());
        p.extend(self.uncertainty.as_deref());
        p.extend(self.misfit_map.as_deref());
        p
    }

    /// Whether the run judges its image against the data.
    pub fn checks_data(&self) -> bool {
        self.check_data || self.misfit_map.is_some()
    }

    /// Whether these outputs fit together and with `options` (checked before any work).
    pub fn check(&self, options: &ReconOptions) -> Result<(), ReconError> {
        for (what, p) in [
            ("energy map", &self.energy_map),
            ("uncertainty map", &self.uncertainty),
            ("misfit map", &self.misfit_map),
        ] {
            if let Some(e) = p {
                if format_of(e).ok() != Some(Format::Nifti) {
                    return Err(ReconError::Usage(format!(
                        "{}: the {what} is written as NIfTI (.nii or .nii.gz)",
                        e.display()
                    )));
                }
            }
        }
        if self.uncertainty.is_some() && options.samples < 2 {
            return Err(ReconError::Usage(
                "--uncertainty needs --samples 2 or more (it is the standard deviation over the samples)".into(),
            ));
        }
        if let Some(r) = &self.uid_root {
            basin_export::dicom::validate_uid_root(r)
                .map_err(|e| ReconError::Usage(e.to_string()))?;
        }
        Ok(())
    }
}

/// Reconstructed volumes with their geometry.
#[derive(Clone, Debug)]
pub struct Volumes {
    /// Complex volumes `[t, z, y, x]`, one per (contrast, repetition, set), slices ordered
    /// along the slice normal.
    pub complex: Array4<C32>,
    /// The posterior standard deviation of the first volume, when samples were drawn.
    pub sd: Option<Array3<f32>>,
    /// Where the voxels sit.
    pub geometry: StackGeometry,
    /// Whether the encoding was 3D.
    pub three_d: bool,
}

impl Volumes {
    /// Stacks the buckets of `result` into volumes: grouped by (contrast, repetition, set),
    /// within each ordered along the slice normal (2D) or the partitions of one slab (3D).
    pub fn stack(result: &ReconResult, kspace: &KSpace) -> Result<Volumes, ReconError> {
        let mut groups: std::collections::BTreeMap<(u16, u16, u16), Vec<&SliceResult>> =
            Default::default();
        for s in &result.slices {
            groups
                .entry((s.key.contrast, s.key.repetition, s.key.set))
                .or_default()
                .push(s);
        }
        let enc = kspace.header.first_encoding().cloned().unwrap_or_default();
        let fov = [
            enc.reconSpace.fieldOfView_mm.x,
            enc.reconSpace.fieldOfView_mm.y,
            enc.reconSpace.fieldOfView_mm.z,
        ];
        let mut vols: Vec<Array3<C32>> = Vec::new();
        let mut geometry = None;
        let mut sd = None;
        let stacking = |e: ndarray::ShapeError| {
            ReconError::Usage(format!(
                "volumes of different shapes cannot be stacked into one series: {e}"
            ))
        };
        for slices in groups.values_mut() {
            sort_for_stack(slices, |s| (&s.geometry, s.key.slice));
            let views: Vec<_> = slices.iter().map(|s| s.image.view()).collect();
            let cvol = ndarray::concatenate(Axis(0), &views).map_err(stacking)?;
            if geometry.is_none() {
                let (nz, ny, nx) = cvol.dim();
                let gs: Vec<_> = slices.iter().map(|s| s.geometry).collect();
                geometry = Some(stack_geometry(&gs, nx, ny, nz, fov, kspace.three_d));
                let sds: Option<Vec<_>> = slices
                    .iter()
                    .map(|s| s.uncertainty.as_ref().map(|u| u.view()))
                    .collect();
                if let Some(sds) = sds {
                    sd = Some(ndarray::concatenate(Axis(0), &sds).map_err(stacking)?);
                }
            }
            vols.push(cvol);
        }
        let geometry = geometry
            .ok_or_else(|| ReconError::Calibration("no slices were reconstructed".into()))?;
        let views: Vec<_> = vols.iter().map(|v| v.view().insert_axis(Axis(0))).collect();
        let complex = ndarray::concatenate(Axis(0), &views).map_err(stacking)?;
        Ok(Volumes {
            complex,
            sd,
            geometry,
            three_d: kspace.three_d,
        })
    }

    /// The magnitude volumes `[t, z, y, x]`.
    pub fn magnitude(&self) -> Array4<f32> {
        self.complex.mapv(|v| v.norm())
    }

    /// The shape as NIfTI orders it: x, y, z, volumes.
    pub fn shape_xyzt(&self) -> [usize; 4] {
        let (nt, nz, ny, nx) = self.complex.dim();
        [nx, ny, nz, nt]
    }
}

/// What happened in a [`Pipeline::run`], for the driver to print.
pub enum Event<'a> {
    /// The input was read; its warnings.
    Read(&'a KSpace),
    /// Where the EBM iterations run ("cpu" or the device's description).
    Device(&'a str),
    /// `done` of `total` buckets reconstructed.
    Slice(usize, usize),
}

/// One file's job: what to read, how to reconstruct it and what to write.
pub struct Job<'a> {
    /// The k-space file (ISMRMRD or fastMRI).
    pub input: &'a Path,
    /// ISMRMRD group holding `xml` and `data` (auto-detected when None).
    pub dataset: Option<&'a str>,
    /// The protocol.
    pub protocol: &'a Protocol,
    /// Samples and seed.
    pub options: ReconOptions,
    /// What to write.
    pub outputs: &'a Outputs,
    /// Replace existing outputs.
    pub force: bool,
}

/// What a [`Pipeline::run`] produced.
pub struct Report {
    /// The reconstruction of every bucket, with diagnostics.
    pub result: ReconResult,
    /// The volumes' shape (x, y, z, t).
    pub shape_xyzt: [usize; 4],
    /// Voxel spacing (mm).
    pub spacing_mm: [f64; 3],
    /// Whether the geometry fell back to axial.
    pub fallback_geometry: bool,
    /// Where the EBM iterations ran.
    pub device: String,
    /// Every warning: the input's, then the run's.
    pub warnings: Vec<String>,
    /// How many of `warnings` came from reading the input.
    pub input_warnings: usize,
    /// The estimated peak resident memory of the reconstruction ([`crate::memory::estimate`]).
    pub memory_estimate: u64,
    /// The first volume judged against the data, when [`Outputs::checks_data`].
    pub misfit: Option<crate::consistency::Misfit>,
}

/// The reconstruction pipeline with its device and prior, set up once per process.
pub struct Pipeline {
    backend: crate::Backend,
    device: OnceLock<Option<crate::Device>>,
    priors: Priors,
}

impl Pipeline {
    /// A pipeline whose EBM solves run where `backend` says (the device is opened when an EBM
    /// protocol first needs it, once).
    pub fn new(backend: crate::Backend) -> Self {
        Pipeline {
            backend,
            device: OnceLock::new(),
            priors: Priors::default(),
        }
    }

    /// The device for `protocol`: only the EBM solver runs on one; other protocols never open
    /// (or probe for) a device.
    pub fn device_for(&self, protocol: &Protocol) -> Result<Option<&crate::Device>, ReconError> {
        if !matches!(protocol.solver, Solver::Ebm(_)) {
            if self.backend == crate::Backend::Gpu {
                tracing::warn!(
                    "protocol {} runs on the CPU: --backend gpu applies to the EBM solver",
                    protocol.name
                );
            }
            return Ok(None);
        }
        if let Some(d) = self.device.get() {
            return Ok(d.as_ref());
        }
        #[cfg(feature = "gpu")]
        let d = basin_gpu::Gpu::open(self.backend)?;
        #[cfg(not(feature = "gpu"))]
        let d = match self.backend {
            crate::Backend::Gpu => {
                return Err(ReconError::Device(
                    "this build of basin has no GPU support (built without the `gpu` feature)"
                        .into(),
                ))
            }
            _ => None,
        };
        Ok(self.device.get_or_init(|| d).as_ref())
    }

    /// "cpu" or the description of the device `protocol` runs on.
    pub fn device_name(&self, protocol: &Protocol) -> Result<String, ReconError> {
        Ok(self
            .device_for(protocol)?
            .map_or_else(|| "cpu".to_string(), |g| g.description().to_string()))
    }

    /// Reconstructs every bucket of `kspace`.
    pub fn reconstruct(
        &self,
        protocol: &Protocol,
        kspace: &KSpace,
        options: &ReconOptions,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<ReconResult, ReconError> {
        let device = self.device_for(protocol)?;
        reconstruct_with(protocol, kspace, device, &self.priors, options, progress)
    }

    /// Reconstructs one bucket (a stream's slice as soon as its data are complete), with the
    /// whitening matrix of [`crate::whitening_for`] computed once for the acquisition.
    pub fn reconstruct_bucket(
        &self,
        protocol: &Protocol,
        bucket: &Bucket,
        three_d: bool,
        whitening: Option<&Array2<C64>>,
        options: &ReconOptions,
    ) -> Result<SliceResult, ReconError> {
        options.check(protocol)?;
        let device = self.device_for(protocol)?;
        reconstruct_bucket(
            protocol,
            bucket,
            three_d,
            whitening,
            device,
            &self.priors,
            options,
        )
    }

    /// The embedded prior's per-pixel energy density of a complex volume `[z, y, x]` (images
    /// scaled to p99 = 1, σ = [`basin_prior::validate::SCORE_SIGMA`]).
    pub fn energy_map(&self, volume: &Array3<C32>) -> Result<Array3<f32>, ReconError> {
        Ok(basin_prior::validate::energy_density_volume(
            self.priors.cpu()?,
            volume,
        ))
    }

    /// The whole job of `basin recon`: checks the outputs before any work (none replaces the
    /// input or another, every directory takes new files, existing ones need `force`), reads,
    /// reconstructs, stacks and writes every output together (or none).
    pub fn run(
        &self,
        job: &Job<'_>,
        events: &(dyn Fn(Event<'_>) + Sync),
    ) -> Result<Report, ReconError> {
        job.outputs.check(&job.options)?;
        job.options.check(job.protocol)?;
        if !job.input.is_file() {
            return Err(ReconError::Input(format!(
                "{}: no such file",
                job.input.display()
            )));
        }
        basin_export::check_outputs(&[job.input], &job.outputs.paths(), job.force)?;
        let read_memory = job.options.check_read_memory(job.input, job.dataset)?;
        let kspace = basin_mrd::read_kspace(job.input, job.dataset)?;
        events(Event::Read(&kspace));
        // Calibrated before the reconstruction: an acquisition the check cannot take fails
        // before the work.
        let check = if job.outputs.checks_data() {
            Some(crate::consistency::DataCheck::new(&kspace)?)
        } else {
            None
        };
        let device = self.device_name(job.protocol)?;
        events(Event::Device(&device));
        let result = self.reconstruct(job.protocol, &kspace, &job.options, &|done, n| {
            events(Event::Slice(done, n))
        })?;
        let volumes = Volumes::stack(&result, &kspace)?;
        let misfit = match &check {
            // The check takes the first volume: its magnitude only, not all volumes'.
            Some(c) => Some(
                c.misfit(
                    volumes
                        .complex
                        .index_axis(Axis(0), 0)
                        .mapv(|v| v.norm())
                        .view(),
                )?,
            ),
            None => None,
        };
        let mut warnings = kspace.warnings.clone();
        if volumes.geometry.fallback && !warnings.iter().any(|w| w.contains("fall")) {
            warnings.push("geometry fell back to axial orientation".into());
        }
        warnings.extend(self.write(
            &volumes,
            job.protocol,
            &kspace.header,
            job.outputs,
            job.options.samples,
            misfit.as_ref(),
            job.force,
        )?);
        Ok(Report {
            memory_estimate: crate::memory::estimate(job.protocol, &kspace, &job.options)
                .max(read_memory),
            shape_xyzt: volumes.shape_xyzt(),
            spacing_mm: volumes.geometry.spacing,
            fallback_geometry: volumes.geometry.fallback,
            result,
            device,
            input_warnings: kspace.warnings.len(),
            warnings,
            misfit,
        })
    }

    /// Writes `volumes` to every output of `outputs`: each to a temporary sibling, moved into
    /// place together, or, when any fails, none is. `misfit` is the first volume's
    /// [`crate::consistency::Misfit`], needed when `outputs` has a misfit map. Returns the
    /// warnings of the writing.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &self,
        volumes: &Volumes,
        protocol: &Protocol,
        header: &IsmrmrdHeader,
        outputs: &Outputs,
        samples: usize,
        misfit: Option<&crate::consistency::Misfit>,
        force: bool,
    ) -> Result<Vec<String>, ReconError> {
        let mut warnings = Vec::new();
        let nt = volumes.complex.dim().0;
        for (path, format) in &outputs.images {
            if *format == Format::Dicom && nt > 1 {
                warnings.push(format!("{}: DICOM holds the first of {nt} volumes (contrast/repetition); use NIfTI or ISMRMRD for all", path.display()));
            }
        }
        let v4 = volumes.magnitude();
        let first = v4.index_axis(Axis(0), 0).to_owned();
        let energy = match &outputs.energy_map {
            Some(_) => Some(self.energy_map(&volumes.complex.index_axis(Axis(0), 0).to_owned())?),
            None => None,
        };
        let descrip = format!(
            "basin {} protocol {}",
            env!("CARGO_PKG_VERSION"),
            protocol.name
        );
        let meta = basin_mrd::image::meta_xml(&image_meta(protocol, "Image", &first));
        let dicom_opts = basin_export::dicom::DicomOptions {
            series_description: format!("basin {}: {}", protocol.name, protocol.description),
            uid_root: outputs.uid_root.clone(),
            anonymize: outputs.anonymize,
            overwrite: false,
            three_d: volumes.three_d,
        };
        let geom = &volumes.geometry;
        let (v4, first, descrip, meta, dicom_opts) = (&v4, &first, &descrip, &meta, &dicom_opts);
        let complex = outputs.complex.then_some(&volumes.complex);
        let mut writes: Vec<basin_export::Output<'_>> = Vec::new();
        for (path, format) in &outputs.images {
            let w: basin_export::Writer<'_> = match format {
                Format::Nifti if nt == 1 => nifti_writer(first, geom, descrip.clone()),
                Format::Nifti => Box::new(move |t: &Path| {
                    basin_export::nifti_out::write_nifti_4d(t, v4, geom, descrip, false)
                        .map_err(|e| e.to_string())
                }),
                Format::Ismrmrd => Box::new(move |t: &Path| {
                    basin_export::ismrmrd_out::write_ismrmrd_images(
                        t, v4, complex, geom, meta, false,
                    )
                    .map_err(|e| e.to_string())
                }),
                Format::Dicom => Box::new(move |t: &Path| {
                    basin_export::dicom::write_dicom_series(t, first, geom, header, dicom_opts)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }),
            };
            writes.push((path.clone(), w));
        }
        if let Some(p) = &outputs.preview {
            writes.push((
                p.clone(),
                Box::new(move |t: &Path| {
                    basin_export::preview::write_preview(t, first, false).map_err(|e| e.to_string())
                }),
            ));
        }
        if let (Some(p), Some(map)) = (&outputs.energy_map, &energy) {
            let d = format!(
                "basin energy density, sigma {}",
                basin_prior::validate::SCORE_SIGMA
            );
            writes.push((p.clone(), nifti_writer(map, geom, d)));
        }
        if let Some(p) = &outputs.uncertainty {
            let sd = volumes.sd.as_ref().ok_or_else(|| {
                ReconError::Usage("a slice has no uncertainty map (--samples 2 or more)".into())
            })?;
            let d = format!("basin posterior sd, {samples} samples");
            writes.push((p.clone(), nifti_writer(sd, geom, d)));
        }
        if let Some(p) = &outputs.misfit_map {
            let m = misfit.ok_or_else(|| {
                ReconError::Usage("the misfit map needs the data check of the image".into())
            })?;
            let d = "basin data misfit z (+ brighter than the data)".to_string();
            writes.push((p.clone(), nifti_writer(&m.map, geom, d)));
        }
        basin_export::write_all(writes, force)?;
        Ok(warnings)
    }
}

/// The MetaAttributes basin puts on its images (ISMRMRD files and streamed images): the data
/// role, the processing history with basin's version and the protocol, a display window from
/// the image's 1st and 99th percentiles, and the series description.
pub fn image_meta(protocol: &Protocol, role: &str, image: &Array3<f32>) -> Vec<(String, String)> {
    let mut v: Vec<f32> = image.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        v.get(((v.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let (lo, hi) = (q(0.01), q(0.99));
    vec![
        ("DataRole".into(), role.into()),
        (
            "ImageProcessingHistory".into(),
            format!("basin {}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "ImageProcessingHistory".into(),
            format!("protocol {}", protocol.name),
        ),
        ("WindowCenter".into(), format!("{}", (lo + hi) / 2.0)),
        (
            "WindowWidth".into(),
            format!("{}", (hi - lo).max(f32::MIN_POSITIVE)),
        ),
        (
            "SequenceDescription".into(),
            format!("basin {}", protocol.name),
        ),
        ("ImageComments".into(), protocol.description.clone()),
    ]
}

/// A [`basin_export::write_all`] writer of one 3D NIfTI volume.
fn nifti_writer<'a>(
    volume: &'a Array3<f32>,
    geom: &'a StackGeometry,
    descrip: String,
) -> basin_export::Writer<'a> {
    Box::new(move |t: &Path| {
        basin_export::nifti_out::write_nifti(t, volume, geom, &descrip, false)
            .map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the EBM solver asks for a device; without the `gpu` feature `--backend gpu` is an
    /// error naming the missing support, and `auto` runs on the CPU.
    #[test]
    fn device_choice_follows_the_backend_and_the_build() {
        let ebm = Protocol::resolve("brain-2d-ebm", None).unwrap();
        let sense = Protocol::resolve("sense", None).unwrap();
        let cpu = Pipeline::new(crate::Backend::Cpu);
        assert!(cpu.device_for(&ebm).unwrap().is_none());
        assert_eq!(cpu.device_name(&ebm).unwrap(), "cpu");
        let gpu = Pipeline::new(crate::Backend::Gpu);
        assert!(gpu.device_for(&sense).unwrap().is_none());
        #[cfg(not(feature = "gpu"))]
        {
            let e = gpu.device_for(&ebm).unwrap_err();
            assert!(matches!(e, ReconError::Device(_)));
            assert!(e.to_string().contains("no GPU support"), "{e}");
            assert!(Pipeline::new(crate::Backend::Auto)
                .device_for(&ebm)
                .unwrap()
                .is_none());
        }
    }
}
