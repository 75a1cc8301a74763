//! Assembly of ISMRMRD acquisitions (or a fastMRI array) into k-space buckets, one per
//! slice/contrast/repetition/set, with noise scans kept apart and calibration lines collected.
//!
//! Placement: readout samples go to `kx = Nx/2 − center_sample + i` (asymmetric echo), reversed
//! lines (flag 22) are flipped first, phase-encoding lines to `ky = e1 − center + Ny/2` using the
//! encoding limits' centre. Averages are combined by their mean. Readout oversampling (encoded
//! x larger than recon x) is removed by cropping in image space.

use crate::acquisition::{flags, Acquisition};
use crate::header::IsmrmrdHeader;
use crate::io::{FastMri, MAX_ELEMENTS};
use crate::MrdError;
use basin_core::fft::{fftc_axis, Direction};
use basin_core::C32;
use ndarray::{s, Array2, Array3, Array4, Axis};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Indices that identify one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketKey {
    /// Slice index.
    pub slice: u16,
    /// Contrast (echo).
    pub contrast: u16,
    /// Repetition.
    pub repetition: u16,
    /// Set.
    pub set: u16,
}

/// Slice position and orientation in patient coordinates (LPS, mm), from the acquisitions.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SliceGeometry {
    /// Centre of the slice / slab.
    pub position: [f32; 3],
    /// Readout direction (unit vector).
    pub read_dir: [f32; 3],
    /// Phase-encoding direction.
    pub phase_dir: [f32; 3],
    /// Slice normal.
    pub slice_dir: [f32; 3],
}

/// One bucket of Cartesian k-space.
#[derive(Clone, Debug)]
pub struct Bucket {
    /// Which slice/contrast/repetition/set.
    pub key: BucketKey,
    /// Imaging k-space `[coil, z, y, x]` (zero where not sampled).
    pub data: Array4<C32>,
    /// Sampled positions `[z, y, x]` of the imaging data.
    pub mask: Array3<bool>,
    /// Calibration (ACS) k-space `[coil, z, y, x]`.
    pub calib: Array4<C32>,
    /// Sampled positions of the calibration data.
    pub calib_mask: Array3<bool>,
    /// Geometry of the bucket.
    pub geometry: SliceGeometry,
}

/// Everything reconstruction needs from a file.
#[derive(Clone, Debug)]
pub struct KSpace {
    /// Where it came from.
    pub source: PathBuf,
    /// The ISMRMRD header (synthesised for fastMRI files without one).
    pub header: IsmrmrdHeader,
    /// The buckets, ordered by key.
    pub buckets: Vec<Bucket>,
    /// Noise-scan samples `[coil, sample]`, when the file has a noise scan.
    pub noise: Option<Array2<C32>>,
    /// Dwell time of the noise scan (µs).
    pub noise_dwell_us: f32,
    /// Dwell time of the imaging data (µs).
    pub data_dwell_us: f32,
    /// Number of acquisitions per 1-based flag that was seen (0 = no flag).
    pub flag_counts: BTreeMap<u32, usize>,
    /// Acquisitions skipped (navigators, phase correction, dummies, other encodings).
    pub skipped: usize,
    /// Whether the encoding is 3D (Fourier along z).
    pub three_d: bool,
    /// Non-fatal findings, also logged.
    pub warnings: Vec<String>,
}

impl KSpace {
    /// Number of receive coils.
    pub fn coils(&self) -> usize {
        self.buckets.first().map(|b| b.data.shape()[0]).unwrap_or(0)
    }
}

fn limit_center(l: &Option<crate::header::Limit>, n: usize) -> usize {
    l.map(|l| l.center as usize).unwrap_or(n / 2)
}

/// Assembles acquisitions read from `source` into buckets.
pub fn assemble(
    source: &Path,
    header: IsmrmrdHeader,
    acqs: &[Acquisition],
) -> Result<KSpace, MrdError> {
    let invalid = |field: String, message: String| MrdError::Invalid {
        file: source.to_path_buf(),
        field,
        message,
    };
    let enc = header
        .first_encoding()
        .ok_or_else(|| {
            invalid(
                "ismrmrdHeader.encoding".into(),
                "the header has no <encoding>".into(),
            )
        })?
        .clone();
    if !enc.trajectory.eq_ignore_ascii_case("cartesian") {
        return Err(invalid(
            "ismrmrdHeader.encoding.trajectory".into(),
            format!(
                "trajectory '{}' is not supported (basin reconstructs Cartesian data)",
                enc.trajectory
            ),
        ));
    }
    let em = enc.encodedSpace.matrixSize;
    let rm = enc.reconSpace.matrixSize;
    let (nx_enc, ny, nz) = (em.x as usize, em.y as usize, em.z.max(1) as usize);
    let nx = (rm.x as usize).min(nx_enc).max(1);
    if nx_enc == 0 || ny == 0 {
        return Err(invalid(
            "encodedSpace.matrixSize".into(),
            format!("matrix {}×{}×{} has a zero axis", em.x, em.y, em.z),
        ));
    }
    // Checked: a hostile header's product must not wrap (2³¹ × 2³¹ × 4 wrapped to 0).
    if nx_enc
        .checked_mul(ny)
        .and_then(|v| v.checked_mul(nz))
        .is_none_or(|v| v > MAX_ELEMENTS)
    {
        return Err(invalid(
            "ismrmrdHeader.encoding.encodedSpace.matrixSize".into(),
            format!(
                "matrix {}×{}×{} is larger than basin's limit of {MAX_ELEMENTS} samples per coil",
                em.x, em.y, em.z
            ),
        ));
    }
    let three_d = nz > 1;
    let cy = limit_center(&enc.encodingLimits.kspace_encoding_step_1, ny);
    let cz = limit_center(&enc.encodingLimits.kspace_encoding_step_2, nz);

    let mut flag_counts = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut noise: Vec<Array2<C32>> = Vec::new();
    let mut noise_dwell = 0.0f32;
    let mut data_dwell = 0.0f32;
    let mut skipped = 0usize;
    let mut coils: Option<usize> = None;
    let total_samples: usize = acqs.iter().map(|a| a.data.len()).sum();
    let budget = total_samples
        .saturating_mul(64)
        .saturating_add(1 << 24)
        .min(MAX_ELEMENTS);

    struct Acc {
        sum: Array4<C32>,
        count: Array3<u16>,
        csum: Array4<C32>,
        ccount: Array3<u16>,
        geometry: SliceGeometry,
    }
    let mut acc: BTreeMap<BucketKey, Acc> = BTreeMap::new();
    let mut allocated = 0usize;
    let skip_flags = [
        flags::IS_NAVIGATION_DATA,
        flags::IS_PHASECORR_DATA,
        flags::IS_HPFEEDBACK_DATA,
        flags::IS_DUMMYSCAN_DATA,
        flags::IS_RTFEEDBACK_DATA,
        flags::IS_SURFACECOILCORRECTIONSCAN_DATA,
        flags::IS_PHASE_STABILIZATION_REFERENCE,
        flags::IS_PHASE_STABILIZATION,
    ];

    for (i, a) in acqs.iter().enumerate() {
        let h = &a.head;
        let mut any = false;
        for f in 1..=64u32 {
            if flags::is_set(h.flags, f) {
                *flag_counts.entry(f).or_insert(0) += 1;
                any = true;
            }
        }
        if !any {
            *flag_counts.entry(0).or_insert(0) += 1;
        }
        if a.data
            .iter()
            .any(|v| !v.re.is_finite() || !v.im.is_finite())
        {
            return Err(invalid(
                format!("acquisition {i}: data"),
                "contains NaN or infinite samples".into(),
            ));
        }
        if h.is_flag_set(flags::IS_NOISE_MEASUREMENT) {
            noise_dwell = h.sample_time_us;
            noise.push(a.data.clone());
            continue;
        }
        if let Some(f) = skip_flags.iter().find(|&&f| h.is_flag_set(f)) {
            tracing::debug!(
                acquisition = i,
                flag = f,
                "skipping non-imaging acquisition"
            );
            skipped += 1;
            continue;
        }
        if h.encoding_space_ref != 0 {
            skipped += 1;
            continue;
        }
        let nc = a.data.shape()[0];
        match coils {
            None => coils = Some(nc),
            Some(c) if c != nc => {
                return Err(invalid(
                    format!("acquisition {i}: active_channels"),
                    format!("{nc} channels, but earlier acquisitions have {c}"),
                ))
            }
            _ => {}
        }
        data_dwell = h.sample_time_us;
        let key = BucketKey {
            slice: h.idx.slice,
            contrast: h.idx.contrast,
            repetition: h.idx.repetition,
            set: h.idx.set,
        };
        let ky = (h.idx.kspace_encode_step_1 as i64) - cy as i64 + (ny / 2) as i64;
        let kz = if three_d {
            (h.idx.kspace_encode_step_2 as i64) - cz as i64 + (nz / 2) as i64
        } else {
            0
        };
        if ky < 0 || ky >= ny as i64 {
            return Err(invalid(
                format!("acquisition {i}: idx.kspace_encode_step_1"),
                format!(
                    "line {} (centre {cy}) falls outside the encoded matrix of {ny} lines",
                    h.idx.kspace_encode_step_1
                ),
            ));
        }
        if kz < 0 || kz >= nz as i64 {
            return Err(invalid(
                format!("acquisition {i}: idx.kspace_encode_step_2"),
                format!("partition {} (centre {cz}) falls outside the encoded matrix of {nz} partitions", h.idx.kspace_encode_step_2),
            ));
        }
        let (ky, kz) = (ky as usize, kz as usize);
        let ns = a.data.shape()[1];
        let pre = h.discard_pre as usize;
        let post = h.discard_post as usize;
        if pre + post >= ns {
            return Err(invalid(
                format!("acquisition {i}: discard_pre/discard_post"),
                format!("discard {pre}+{post} of {ns} samples leaves none"),
            ));
        }
        // A partial echo keeps at least half of the readout; far fewer samples than the encoded
        // matrix means the header describes other data (zero-padding them would silently give
        // an image at the wrong resolution).
        if 2 * (ns - pre - post) < nx_enc {
            return Err(invalid(
                format!("acquisition {i}: number_of_samples"),
                format!(
                    "{} samples per line cover less than half of the encoded readout of {nx_enc} (encodedSpace.matrixSize.x): the header does not describe these data",
                    ns - pre - post
                ),
            ));
        }
        let center = (h.center_sample as i64) - pre as i64;
        let offset = (nx_enc / 2) as i64 - center;
        if offset < 0 || offset + (ns - pre - post) as i64 > nx_enc as i64 {
            return Err(invalid(
                format!("acquisition {i}: number_of_samples/center_sample"),
                format!(
                    "{ns} samples with centre {} do not fit the encoded readout of {nx_enc}",
                    h.center_sample
                ),
            ));
        }
        let entry = match acc.get_mut(&key) {
            Some(e) => e,
            None => {
                let size = [nz, ny, nx_enc]
                    .iter()
                    .try_fold(nc, |a, &b| a.checked_mul(b))
                    .unwrap_or(usize::MAX);
                allocated = allocated.saturating_add(size.saturating_mul(2));
                if allocated > budget {
                    return Err(invalid(
                        "ismrmrdHeader.encoding.encodedSpace.matrixSize".into(),
                        format!(
                            "buckets of {nc}×{nz}×{ny}×{nx_enc} samples need more memory than the {total_samples} samples in the file justify"
                        ),
                    ));
                }
                acc.insert(
                    key,
                    Acc {
                        sum: Array4::zeros((nc, nz, ny, nx_enc)),
                        count: Array3::zeros((nz, ny, nx_enc)),
                        csum: Array4::zeros((nc, nz, ny, nx_enc)),
                        ccount: Array3::zeros((nz, ny, nx_enc)),
                        geometry: SliceGeometry {
                            position: h.position,
                            read_dir: h.read_dir,
                            phase_dir: h.phase_dir,
                            slice_dir: h.slice_dir,
                        },
                    },
                );
                acc.get_mut(&key).expect("just inserted")
            }
        };
        let is_calib = h.is_flag_set(flags::IS_PARALLEL_CALIBRATION)
            || h.is_flag_set(flags::IS_PARALLEL_CALIBRATION_AND_IMAGING);
        let is_imaging = !h.is_flag_set(flags::IS_PARALLEL_CALIBRATION);
        let reverse = h.is_flag_set(flags::IS_REVERSE);
        let line = a.data.slice(s![.., pre..ns - post]);
        let len = line.shape()[1];
        for c in 0..nc {
            for j in 0..len {
                let src = if reverse {
                    line[[c, len - 1 - j]]
                } else {
                    line[[c, j]]
                };
                let x = (offset as usize) + j;
                if is_imaging {
                    entry.sum[[c, kz, ky, x]] += src;
                }
                if is_calib {
                    entry.csum[[c, kz, ky, x]] += src;
                }
            }
        }
        for j in 0..len {
            let x = offset as usize + j;
            if is_imaging {
                entry.count[[kz, ky, x]] = entry.count[[kz, ky, x]].saturating_add(1);
            }
            if is_calib {
                entry.ccount[[kz, ky, x]] = entry.ccount[[kz, ky, x]].saturating_add(1);
            }
        }
    }
    if acc.is_empty() {
        return Err(invalid(
            "/data".into(),
            "no imaging acquisitions (all were noise, navigators or other encodings)".into(),
        ));
    }
    let mean = |sum: Array4<C32>, count: &Array3<u16>| {
        let mut sum = sum;
        for mut coil in sum.axis_iter_mut(Axis(0)) {
            ndarray::Zip::from(&mut coil).and(count).for_each(|v, &n| {
                if n > 1 {
                    *v /= n as f32;
                }
            });
        }
        sum
    };
    let mut buckets: Vec<Bucket> = acc
        .into_iter()
        .map(|(key, a)| {
            let data = mean(a.sum, &a.count);
            let calib = mean(a.csum, &a.ccount);
            Bucket {
                key,
                data,
                mask: a.count.mapv(|n| n > 0),
                calib,
                calib_mask: a.ccount.mapv(|n| n > 0),
                geometry: a.geometry,
            }
        })
        .collect();

    // Calibration data: explicit ACS lines when the file has them; for interleaved calibration
    // the union of all repetitions of the same slice/contrast/set; otherwise the imaging data
    // itself (embedded: its fully sampled centre is found by the calibration step).
    let mode = enc
        .parallelImaging
        .as_ref()
        .and_then(|p| p.calibrationMode.clone())
        .unwrap_or_default();
    let has_calib = buckets.iter().any(|b| b.calib_mask.iter().any(|&m| m));
    if !has_calib {
        if mode.eq_ignore_ascii_case("interleaved") {
            // (slice, contrast, set) → (sum of k-space, count of samples)
            type Union = BTreeMap<(u16, u16, u16), (Array4<C32>, Array3<u16>)>;
            let mut union: Union = BTreeMap::new();
            for b in &buckets {
                let e = union
                    .entry((b.key.slice, b.key.contrast, b.key.set))
                    .or_insert_with(|| {
                        (
                            Array4::zeros(b.data.raw_dim()),
                            Array3::zeros(b.mask.raw_dim()),
                        )
                    });
                e.0 += &b.data;
                ndarray::Zip::from(&mut e.1)
                    .and(&b.mask)
                    .for_each(|n, &m| *n += m as u16);
            }
            for b in &mut buckets {
                let (sum, count) = &union[&(b.key.slice, b.key.contrast, b.key.set)];
                b.calib = mean(sum.clone(), count);
                b.calib_mask = count.mapv(|n| n > 0);
            }
        } else {
            for b in &mut buckets {
                b.calib = b.data.clone();
                b.calib_mask = b.mask.clone();
            }
        }
    }

    // Readout oversampling removal.
    if nx < nx_enc {
        let start = (nx_enc - nx) / 2 + (nx_enc % 2);
        let start = start.min(nx_enc - nx);
        for b in &mut buckets {
            b.data = crop_readout(&b.data, start, nx);
            b.calib = crop_readout(&b.calib, start, nx);
            b.mask = b.mask.slice(s![.., .., start..start + nx]).to_owned();
            b.calib_mask = b.calib_mask.slice(s![.., .., start..start + nx]).to_owned();
            // A line is sampled across the whole cropped readout when it was sampled at all.
            for mut row in b.mask.lanes_mut(Axis(2)) {
                let any = row.iter().any(|&m| m);
                row.fill(any);
            }
            for mut row in b.calib_mask.lanes_mut(Axis(2)) {
                let any = row.iter().any(|&m| m);
                row.fill(any);
            }
        }
    }

    let noise = if noise.is_empty() {
        None
    } else {
        let nc = noise[0].shape()[0];
        if let Some(c) = coils {
            if c != nc {
                warnings.push(format!(
                    "noise scan has {nc} channels but imaging data has {c}; noise scan ignored"
                ));
            }
        }
        if noise.iter().any(|n| n.shape()[0] != nc) || coils.is_some_and(|c| c != nc) {
            None
        } else {
            let views: Vec<_> = noise.iter().map(|n| n.view()).collect();
            ndarray::concatenate(Axis(1), &views).ok()
        }
    };
    if let (Some(c), Some(r)) = (
        coils,
        header
            .acquisitionSystemInformation
            .as_ref()
            .and_then(|a| a.receiverChannels),
    ) {
        if r as usize != c {
            warnings.push(format!(
                "the header says receiverChannels {r} but the data have {c} channels; using the data's {c}"
            ));
        }
    }
    if let Some(p) = enc.parallelImaging.as_ref() {
        if p.accelerationFactor.kspace_encoding_step_1 > 1
            && !has_calib
            && !mode.eq_ignore_ascii_case("interleaved")
        {
            warnings.push(format!(
                "accelerated ({}×) without calibration lines; coil maps come from the fully sampled centre of the data",
                p.accelerationFactor.kspace_encoding_step_1
            ));
        }
    }
    let zero_geometry = buckets
        .iter()
        .all(|b| b.geometry.read_dir == [0.0; 3] && b.geometry.phase_dir == [0.0; 3]);
    if zero_geometry {
        warnings.push("position and direction vectors are all zero; geometry falls back to axial orientation at the isocentre".into());
    }
    // The warnings are returned, not logged: the drivers print each once (one line on stderr).
    if skipped > 0 {
        tracing::info!(
            "{}: skipped {skipped} navigator/phase-correction/dummy/other-encoding acquisitions",
            source.display()
        );
    }
    Ok(KSpace {
        source: source.to_path_buf(),
        header,
        buckets,
        noise,
        noise_dwell_us: noise_dwell,
        data_dwell_us: data_dwell,
        flag_counts,
        skipped,
        three_d,
        warnings,
    })
}

fn crop_readout(k: &Array4<C32>, start: usize, nx: usize) -> Array4<C32> {
    let mut img = k.clone();
    fftc_axis(img.view_mut(), 3, Direction::Inverse);
    let mut out = img.slice(s![.., .., .., start..start + nx]).to_owned();
    // Orthonormal transforms on both sides: image intensities, and the noise variance per
    // k-space sample, are unchanged by the crop.
    fftc_axis(out.view_mut(), 3, Direction::Forward);
    out
}

/// Builds k-space buckets from a fastMRI file (one bucket per slice; the readout is the stored
/// row axis, the mask applies to the stored columns).
pub fn from_fastmri(source: &Path, f: FastMri) -> Result<KSpace, MrdError> {
    let (ns, nc, ny, nx) = f.kspace.dim();
    if f.kspace
        .iter()
        .any(|v| !v.re.is_finite() || !v.im.is_finite())
    {
        return Err(MrdError::Invalid {
            file: source.to_path_buf(),
            field: "/kspace".into(),
            message: "contains NaN or infinite samples".into(),
        });
    }
    let mut warnings = Vec::new();
    let cols: Vec<bool> = match &f.mask {
        Some(m) if m.len() != nx => {
            return Err(MrdError::Invalid {
                file: source.to_path_buf(),
                field: "/mask".into(),
                message: format!("{} entries, but /kspace has {nx} columns", m.len()),
            })
        }
        Some(m) => m.clone(),
        None => (0..nx)
            .map(|x| {
                f.kspace
                    .slice(s![.., .., .., x])
                    .iter()
                    .any(|v| v.norm_sqr() > 0.0)
            })
            .collect(),
    };
    let mask = Array3::from_shape_fn((1, ny, nx), |(_, _, x)| cols[x]);
    let header = f.header.clone().unwrap_or_else(|| {
        warnings.push("no /ismrmrd_header; a minimal header was synthesised: the geometry is unknown and the output has 1 mm pixels in an identity orientation".to_string());
        synth_header(nx, ny, nc)
    });
    let buckets = (0..ns)
        .map(|s| {
            let data = f
                .kspace
                .slice(s![s, .., .., ..])
                .to_owned()
                .insert_axis(Axis(1));
            let mut masked = data.clone();
            for mut coil in masked.axis_iter_mut(Axis(0)) {
                ndarray::Zip::from(&mut coil).and(&mask).for_each(|v, &m| {
                    if !m {
                        *v = C32::new(0.0, 0.0);
                    }
                });
            }
            Bucket {
                key: BucketKey {
                    slice: s as u16,
                    ..Default::default()
                },
                data: masked.clone(),
                mask: mask.clone(),
                calib: masked,
                calib_mask: mask.clone(),
                geometry: SliceGeometry::default(),
            }
        })
        .collect();
    let mut flag_counts = BTreeMap::new();
    flag_counts.insert(0, ns * cols.iter().filter(|&&c| c).count());
    Ok(KSpace {
        source: source.to_path_buf(),
        header,
        buckets,
        noise: None,
        noise_dwell_us: 0.0,
        data_dwell_us: 0.0,
        flag_counts,
        skipped: 0,
        three_d: false,
        warnings,
    })
}

fn synth_header(nx: usize, ny: usize, nc: usize) -> IsmrmrdHeader {
    use crate::header::*;
    let space = EncodingSpace {
        matrixSize: MatrixSize {
            x: ny as u32,
            y: nx as u32,
            z: 1,
        },
        fieldOfView_mm: FieldOfView {
            x: ny as f64,
            y: nx as f64,
            z: 1.0,
        },
    };
    IsmrmrdHeader {
        acquisitionSystemInformation: Some(AcquisitionSystemInformation {
            receiverChannels: Some(nc as u32),
            ..Default::default()
        }),
        encoding: vec![Encoding {
            encodedSpace: space,
            reconSpace: space,
            trajectory: "cartesian".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}
