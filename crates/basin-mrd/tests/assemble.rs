//! Assembly of acquisitions into buckets, on acquisitions built from a known k-space: reversed
//! lines, asymmetric echoes, averages, 3D partitions, multiple slices, readout oversampling,
//! skipped navigators, and a write → read round trip through HDF5.

use basin_core::fft::{fftc_axis, Direction};
use basin_core::rng::Rng;
use basin_core::C32;
use basin_mrd::header::*;
use basin_mrd::{assemble, flags, Acquisition, AcquisitionHeader};
use ndarray::{s, Array4};
use std::path::Path;

fn header(nx_enc: usize, nx: usize, ny: usize, nz: usize) -> IsmrmrdHeader {
    let space = |x: usize| EncodingSpace {
        matrixSize: MatrixSize {
            x: x as u32,
            y: ny as u32,
            z: nz as u32,
        },
        fieldOfView_mm: FieldOfView {
            x: 2.0 * x as f64,
            y: 2.0 * ny as f64,
            z: 5.0,
        },
    };
    IsmrmrdHeader {
        encoding: vec![Encoding {
            encodedSpace: space(nx_enc),
            reconSpace: space(nx),
            encodingLimits: EncodingLimits {
                kspace_encoding_step_1: Some(Limit {
                    minimum: 0,
                    maximum: ny as u32 - 1,
                    center: ny as u32 / 2,
                }),
                kspace_encoding_step_2: Some(Limit {
                    minimum: 0,
                    maximum: nz as u32 - 1,
                    center: nz as u32 / 2,
                }),
                ..Default::default()
            },
            trajectory: "cartesian".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn random_kspace(c: usize, z: usize, y: usize, x: usize, seed: u64) -> Array4<C32> {
    let mut rng = Rng::new(seed);
    Array4::from_shape_simple_fn((c, z, y, x), || rng.complex_normal())
}

/// One acquisition per (z, y) line of `k` for bucket `slice`, flags `extra`.
fn lines(k: &Array4<C32>, slice: u16, extra: u64) -> Vec<Acquisition> {
    let (_, nz, ny, nx) = k.dim();
    let mut v = Vec::new();
    for z in 0..nz {
        for y in 0..ny {
            let mut h = AcquisitionHeader {
                center_sample: (nx / 2) as u16,
                flags: extra,
                ..Default::default()
            };
            h.idx.kspace_encode_step_1 = y as u16;
            h.idx.kspace_encode_step_2 = z as u16;
            h.idx.slice = slice;
            h.read_dir = [1.0, 0.0, 0.0];
            h.phase_dir = [0.0, 1.0, 0.0];
            h.slice_dir = [0.0, 0.0, 1.0];
            h.position = [0.0, 0.0, 5.0 * slice as f32];
            v.push(Acquisition {
                head: h,
                traj: vec![],
                data: k.slice(s![.., z, y, ..]).to_owned(),
            });
        }
    }
    v
}

fn max_diff(a: &Array4<C32>, b: &Array4<C32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).norm())
        .fold(0.0, f32::max)
}

#[test]
fn plain_reversed_and_averaged_lines() {
    let k = random_kspace(3, 1, 16, 20, 1);
    let mut acqs = lines(&k, 0, 0);
    // Reverse every other line and flag it.
    for a in acqs.iter_mut().step_by(2) {
        a.data.invert_axis(ndarray::Axis(1));
        a.head.set_flag(flags::IS_REVERSE);
    }
    // Line 5 twice more as averages 1 and 2 with other values: the mean is kept.
    let mut extra = acqs[5].clone();
    extra.head.flags = 0;
    extra.data = k.slice(s![.., 0, 5, ..]).mapv(|v| v * 3.0);
    extra.head.idx.average = 1;
    let mut extra2 = extra.clone();
    extra2.data = k.slice(s![.., 0, 5, ..]).mapv(|v| v * -1.0);
    extra2.head.idx.average = 2;
    acqs.push(extra);
    acqs.push(extra2);
    // A navigator that must be skipped, and a noise scan kept apart.
    let mut nav = acqs[0].clone();
    nav.head.flags = flags::bit(flags::IS_NAVIGATION_DATA);
    nav.data.fill(C32::new(1e6, 0.0));
    acqs.push(nav);
    let mut noise = acqs[1].clone();
    noise.head.flags = flags::bit(flags::IS_NOISE_MEASUREMENT);
    acqs.push(noise);
    let ks = assemble(Path::new("mem"), header(20, 20, 16, 1), &acqs).unwrap();
    assert_eq!(ks.buckets.len(), 1);
    assert_eq!(ks.skipped, 1);
    assert_eq!(ks.noise.as_ref().unwrap().shape(), &[3, 20]);
    let mut want = k.clone();
    let line5 = want
        .slice(s![.., 0, 5, ..])
        .mapv(|v| v * (1.0 + 3.0 - 1.0) / 3.0);
    want.slice_mut(s![.., 0, 5, ..]).assign(&line5);
    assert!(max_diff(&ks.buckets[0].data, &want) < 1e-5);
    assert!(ks.buckets[0].mask.iter().all(|&m| m));
}

#[test]
fn asymmetric_echo_is_placed_by_center_sample() {
    let k = random_kspace(2, 1, 8, 32, 2);
    let mut acqs = lines(&k, 0, 0);
    // Keep samples 10.. (partial echo); the centre (16) is then sample 6.
    for a in acqs.iter_mut() {
        a.data = a.data.slice(s![.., 10..]).to_owned();
        a.head.center_sample = 6;
    }
    let ks = assemble(Path::new("mem"), header(32, 32, 8, 1), &acqs).unwrap();
    let b = &ks.buckets[0];
    assert!(b
        .data
        .slice(s![.., .., .., ..10])
        .iter()
        .all(|v| v.norm() == 0.0));
    let got = b.data.slice(s![.., .., .., 10..]).to_owned();
    let want = k.slice(s![.., .., .., 10..]).to_owned();
    assert!(max_diff(&got, &want) < 1e-6);
    assert!(!b.mask[[0, 0, 5]] && b.mask[[0, 0, 10]]);
}

#[test]
fn three_d_partitions_and_multiple_slices() {
    let k3 = random_kspace(2, 4, 8, 8, 3);
    let ks = assemble(Path::new("mem"), header(8, 8, 8, 4), &lines(&k3, 0, 0)).unwrap();
    assert!(ks.three_d);
    assert!(max_diff(&ks.buckets[0].data, &k3) < 1e-6);
    let mut acqs = Vec::new();
    let slices: Vec<Array4<C32>> = (0..3).map(|s| random_kspace(2, 1, 8, 8, 10 + s)).collect();
    for (i, k) in slices.iter().enumerate() {
        acqs.extend(lines(k, i as u16, 0));
    }
    let ks = assemble(Path::new("mem"), header(8, 8, 8, 1), &acqs).unwrap();
    assert_eq!(ks.buckets.len(), 3);
    for (b, k) in ks.buckets.iter().zip(&slices) {
        assert!(max_diff(&b.data, k) < 1e-6);
    }
    assert_eq!(ks.buckets[2].geometry.position, [0.0, 0.0, 10.0]);
}

#[test]
fn readout_oversampling_is_removed_in_image_space() {
    // An image of width 64 whose central 32 columns hold the object; its k-space is acquired,
    // the reconstruction matrix is 32 wide.
    let mut rng = Rng::new(4);
    let mut img = Array4::<C32>::zeros((2, 1, 8, 64));
    for v in img.slice_mut(s![.., .., .., 16..48]).iter_mut() {
        *v = rng.complex_normal();
    }
    let mut k = img.clone();
    fftc_axis(k.view_mut(), 3, Direction::Forward);
    fftc_axis(k.view_mut(), 2, Direction::Forward);
    let ks = assemble(Path::new("mem"), header(64, 32, 8, 1), &lines(&k, 0, 0)).unwrap();
    let mut back = ks.buckets[0].data.clone();
    assert_eq!(back.dim(), (2, 1, 8, 32));
    fftc_axis(back.view_mut(), 2, Direction::Inverse);
    fftc_axis(back.view_mut(), 3, Direction::Inverse);
    let want = img.slice(s![.., .., .., 16..48]).to_owned();
    assert!(
        max_diff(&back, &want) < 1e-4,
        "cropped image differs by {}",
        max_diff(&back, &want)
    );
}

#[test]
fn write_then_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rt.h5");
    let k = random_kspace(4, 1, 8, 16, 5);
    let mut acqs = lines(&k, 0, flags::bit(flags::FIRST_IN_SLICE));
    acqs[0].traj = vec![0.5; 16];
    acqs[0].head.trajectory_dimensions = 1;
    let mut h = header(16, 16, 8, 1);
    h.subjectInformation = Some(SubjectInformation {
        patientName: Some("Doe^Jane".into()),
        ..Default::default()
    });
    h.sequenceParameters = Some(SequenceParameters {
        TR: vec![500.0],
        TE: vec![10.0, 20.0],
        ..Default::default()
    });
    basin_mrd::io::write_ismrmrd(&f, "dataset", &h, &acqs).unwrap();
    let (h2, back) = basin_mrd::io::read_ismrmrd(&f, "dataset").unwrap();
    let mut want = h.clone();
    want.xmlns = Some(ISMRMRD_NS.into());
    assert_eq!(h2, want);
    assert_eq!(back.len(), acqs.len());
    for (a, b) in acqs.iter().zip(&back) {
        let mut ha = a.head;
        ha.number_of_samples = 16;
        ha.active_channels = 4;
        assert_eq!(ha, b.head);
        assert_eq!(a.traj, b.traj);
        assert_eq!(a.data, b.data);
    }
}

/// Issue 23: sizes computed from a hostile header are checked, never wrapped. An encoded matrix
/// of 2³¹ × 2³¹ × 4 with 2 coils is 2⁶⁵ samples: the product wrapped to 0, passed the memory
/// budget and ndarray panicked ("Shape too large").
#[test]
fn a_matrix_past_the_address_space_is_an_error_not_a_panic() {
    let n = 1usize << 31;
    let k = random_kspace(2, 1, 1, 64, 4);
    let mut acqs = lines(&k, 0, 0);
    for a in acqs.iter_mut() {
        a.head.center_sample = 32;
    }
    let mut h = header(n, n, n, 4);
    h.encoding[0].encodingLimits.kspace_encoding_step_1 = None;
    h.encoding[0].encodingLimits.kspace_encoding_step_2 = None;
    let e = assemble(Path::new("mem"), h, &acqs)
        .unwrap_err()
        .to_string();
    assert!(e.contains("matrixSize"), "{e}");
}

/// Issue 23: a header whose encoded readout (1400) is far longer than the acquired lines (64
/// samples) describes other data; zero-padding the lines into it gave a 64×1400 image at
/// 0.17 mm without a word. Partial echoes (≥ half the readout) stay accepted.
#[test]
fn a_readout_that_covers_little_of_the_encoded_matrix_is_refused() {
    let k = random_kspace(2, 1, 16, 64, 5);
    let acqs: Vec<_> = lines(&k, 0, 0)
        .into_iter()
        .map(|mut a| {
            a.head.center_sample = 32;
            a
        })
        .collect();
    let e = assemble(Path::new("mem"), header(1400, 1400, 16, 1), &acqs)
        .unwrap_err()
        .to_string();
    assert!(e.contains("64") && e.contains("1400"), "{e}");
    // 40 of 64 samples (a 5/8 partial echo) is fine.
    let partial: Vec<_> = lines(&k, 0, 0)
        .into_iter()
        .map(|mut a| {
            a.data = a.data.slice(s![.., 24..]).to_owned();
            a.head.center_sample = 8;
            a
        })
        .collect();
    assert!(assemble(Path::new("mem"), header(64, 64, 16, 1), &partial).is_ok());
}

/// Issue 23: `receiverChannels` that disagrees with the data (0 or 100000 for 2 channels) is
/// reported as a warning; the data's channel count is used.
#[test]
fn receiver_channels_that_disagree_with_the_data_are_a_warning() {
    let k = random_kspace(2, 1, 8, 16, 6);
    for claimed in [0u32, 100_000, 2] {
        let mut h = header(16, 16, 8, 1);
        h.acquisitionSystemInformation = Some(AcquisitionSystemInformation {
            receiverChannels: Some(claimed),
            ..Default::default()
        });
        let ks = assemble(Path::new("mem"), h, &lines(&k, 0, 0)).unwrap();
        let warned = ks.warnings.iter().any(|w| w.contains("receiverChannels"));
        assert_eq!(warned, claimed != 2, "{claimed}: {:?}", ks.warnings);
        assert_eq!(ks.coils(), 2);
    }
}
