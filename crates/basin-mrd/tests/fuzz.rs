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
