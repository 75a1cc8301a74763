//! Fuzzing the readers of hostile k-space files (issue 23): the ISMRMRD XML header parser,
//! acquisition assembly (headers, counters, sizes and flags from the file), and the fastMRI
//! conversion (shapes, masks and headers). No target may panic or make one allocation past
//! 2 GiB (the capped allocator aborts the binary). Cases per target: `BASIN_FUZZ_CASES`
//! (CI default below; the long run is recorded in benches/RESULTS.md).

use basin_core::fuzz::{cases, mutate, run, CappedAlloc};
use basin_core::rng::Rng;
use basin_core::C32;
use basin_mrd::header::*;
use basin_mrd::io::FastMri;
use basin_mrd::{assemble, from_fastmri, Acquisition, AcquisitionHeader};
use ndarray::{Array2, Array4};
use std::path::Path;

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc::new(2 << 30);

fn header(nx: u32, ny: u32, nz: u32) -> IsmrmrdHeader {
    let space = EncodingSpace {
        matrixSize: MatrixSize {
            x: nx,
            y: ny,
            z: nz,
        },
        fieldOfView_mm: FieldOfView {
            x: 220.0,
            y: 220.0,
            z: 5.0,
        },
    };
    IsmrmrdHeader {
        encoding: vec![Encoding {
            encodedSpace: space,
            reconSpace: space,
            encodingLimits: EncodingLimits {
                kspace_encoding_step_1: Some(Limit {
                    minimum: 0,
                    maximum: ny.saturating_sub(1),
                    center: ny / 2,
                }),
                ..Default::default()
            },
            trajectory: "cartesian".into(),
            ..Default::default()
        }],
        acquisitionSystemInformation: Some(AcquisitionSystemInformation {
            receiverChannels: Some(4),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pick(rng: &mut Rng, small: u64) -> u64 {
    // Mostly small plausible values, sometimes the extremes of the field.
    match rng.next_u64() % 8 {
        0 => 0,
        1 => u64::MAX,
        2 => rng.next_u64(),
        _ => rng.next_u64() % small,
    }
}

#[test]
fn fuzz_ismrmrd_header_xml() {
    let seed = header(64, 48, 1).to_xml().unwrap().into_bytes();
    run(
        "ismrmrd header xml",
        cases(30_000),
        1,
        |rng| String::from_utf8_lossy(&mutate(&seed, rng)).to_string(),
        |xml| {
            if let Ok(h) = IsmrmrdHeader::from_xml(xml) {
                // A header that parses goes on to assembly with a few small lines.
                let k = Array2::from_elem((2, 16), C32::new(1.0, 0.0));
                let acqs: Vec<Acquisition> = (0..4)
                    .map(|y| {
                        let mut head = AcquisitionHeader {
                            number_of_samples: 16,
                            active_channels: 2,
                            center_sample: 8,
                            ..Default::default()
                        };
                        head.idx.kspace_encode_step_1 = y;
                        Acquisition {
                            head,
                            traj: vec![],
                            data: k.clone(),
                        }
                    })
                    .collect();
                let _ = assemble(Path::new("fuzz"), h, &acqs);
            }
        },
    );
}

#[test]
fn fuzz_acquisition_assembly() {
    run(
        "acquisition assembly",
        cases(30_000),
        2,
        |rng| {
            let dim = |rng: &mut Rng| pick(rng, 96).min(u32::MAX as u64) as u32;
            let h = header(dim(rng), dim(rng), dim(rng));
            let nacq = 1 + (rng.next_u64() % 12) as usize;
            let acqs: Vec<Acquisition> = (0..nacq)
                .map(|_| {
                    let ns = 1 + (rng.next_u64() % 80) as usize;
                    let nc = 1 + (rng.next_u64() % 4) as usize;
                    let mut head = AcquisitionHeader {
                        flags: if rng.next_u64() % 4 == 0 {
                            rng.next_u64()
                        } else {
                            0
                        },
                        number_of_samples: ns as u16,
                        active_channels: nc as u16,
                        discard_pre: pick(rng, 8) as u16,
                        discard_post: pick(rng, 8) as u16,
                        center_sample: pick(rng, 96) as u16,
                        encoding_space_ref: (rng.next_u64() % 16 == 0) as u16,
                        sample_time_us: rng.uniform() as f32 * 10.0,
                        ..Default::default()
                    };
                    head.idx.kspace_encode_step_1 = pick(rng, 96) as u16;
                    head.idx.kspace_encode_step_2 = pick(rng, 4) as u16;
                    head.idx.slice = pick(rng, 3) as u16;
                    head.idx.average = pick(rng, 3) as u16;
                    head.idx.repetition = pick(rng, 2) as u16;
                    let data = Array2::from_shape_fn((nc, ns), |_| {
                        if rng.next_u64() % 500 == 0 {
                            C32::new(f32::NAN, 0.0)
                        } else {
                            rng.complex_normal()
                        }
                    });
                    Acquisition {
                        head,
                        traj: vec![],
                        data,
                    }
                })
                .collect();
            (h, acqs)
        },
        |(h, acqs)| {
            let _ = assemble(Path::new("fuzz"), h.clone(), acqs);
        },
    );
}

#[test]
fn fuzz_fastmri_conversion() {
    run(
        "fastmri conversion",
        cases(20_000),
        3,
        |rng| {
            let d = |rng: &mut Rng, m: u64| 1 + (rng.next_u64() % m) as usize;
            let (s, c, y, x) = (d(rng, 3), d(rng, 4), d(rng, 40), d(rng, 40));
            let kspace = Array4::from_shape_fn((s, c, y, x), |_| rng.complex_normal());
            let mask = match rng.next_u64() % 3 {
                0 => None,
                _ => Some(
                    (0..d(rng, 48))
                        .map(|_| rng.next_u64() % 2 == 0)
                        .collect::<Vec<bool>>(),
                ),
            };
            let header = match rng.next_u64() % 3 {
                0 => None,
                _ => {
                    let dim = |rng: &mut Rng| pick(rng, 64).min(u32::MAX as u64) as u32;
                    Some(header(dim(rng), dim(rng), dim(rng)))
                }
            };
            FastMri {
                kspace,
                header,
                mask,
                single_coil: c == 1 && rng.next_u64() % 2 == 0,
            }
        },
        |f| {
            let _ = from_fastmri(
                Path::new("fuzz"),
                FastMri {
                    kspace: f.kspace.clone(),
                    header: f.header.clone(),
                    mask: f.mask.clone(),
                    single_coil: f.single_coil,
                },
            );
        },
    );
}

/// A valid MRD stream as `basin serve` receives and sends it: config name and text, XML header,
/// a text, acquisitions (one with a trajectory), a float and a 16-bit image, close.
fn stream_seed() -> Vec<u8> {
    use basin_mrd::image::ImageHeader;
    use basin_mrd::stream::{write_message, ImagePixels, Message, StreamImage};
    let mut v = Vec::new();
    let mut msgs = vec![
        Message::ConfigFile("brain-2d-ebm".into()),
        Message::ConfigText("name = \"x\"\n[solver]\nkind = \"cg-sense\"\n".into()),
        Message::Header(header(16, 4, 1).to_xml().unwrap()),
        Message::Text("hello".into()),
    ];
    for y in 0..4u16 {
        let mut head = AcquisitionHeader {
            number_of_samples: 16,
            active_channels: 2,
            available_channels: 2,
            center_sample: 8,
            ..Default::default()
        };
        head.idx.kspace_encode_step_1 = y;
        let traj = if y == 1 {
            head.trajectory_dimensions = 2;
            vec![0.5; 32]
        } else {
            Vec::new()
        };
        msgs.push(Message::Acquisition(Box::new(Acquisition {
            head,
            traj,
            data: Array2::from_shape_fn((2, 16), |(c, x)| C32::new(c as f32, x as f32)),
        })));
    }
    for pixels in [
        ImagePixels::Float((0..16).map(|i| i as f32).collect()),
        ImagePixels::UShort((0..16).collect()),
    ] {
        msgs.push(Message::Image(Box::new(StreamImage {
            head: ImageHeader {
                version: 1,
                matrix_size: [4, 4, 1],
                channels: 1,
                image_series_index: 1,
                ..Default::default()
            },
            attributes:
                "<ismrmrdMeta><meta><name>DataRole</name><value>Image</value></meta></ismrmrdMeta>"
                    .into(),
            pixels,
        })));
    }
    msgs.push(Message::Close);
    for m in &msgs {
        write_message(&mut v, m).unwrap();
    }
    v
}

/// The MRD stream decoder of `basin serve` (issue 20) on mutated streams: no panic, no huge
/// allocation (declared lengths are checked against the limits before reading), and every
/// message it decodes re-encodes to bytes that decode to the same encoding.
#[test]
fn fuzz_mrd_stream() {
    use basin_mrd::stream::{read_message, write_message, Limits, Message};
    let seed = stream_seed();
    let limits = Limits {
        max_text: 1 << 20,
        max_payload: 64 << 20,
    };
    // The seed itself decodes to its 11 messages.
    let mut r = seed.as_slice();
    let mut n = 0;
    while let Ok(m) = read_message(&mut r, &limits) {
        n += 1;
        if matches!(m, Message::Close) {
            break;
        }
    }
    assert_eq!(n, 11, "the seed stream decodes to its messages");
    run(
        "mrd stream",
        cases(20_000),
        4,
        |rng| mutate(&seed, rng),
        |bytes| {
            let mut r = bytes.as_slice();
            for _ in 0..64 {
                let Ok(m) = read_message(&mut r, &limits) else {
                    return;
                };
                if matches!(m, Message::Close) {
                    return;
                }
                let mut once = Vec::new();
                if write_message(&mut once, &m).is_err() {
                    continue; // waveforms and over-long config names are not written
                }
                let again = read_message(&mut once.as_slice(), &limits)
                    .expect("a re-encoded message decodes");
                let mut twice = Vec::new();
                write_message(&mut twice, &again).unwrap();
                assert_eq!(once, twice, "re-encoding is not stable: {m:?}");
            }
        },
    );
}
