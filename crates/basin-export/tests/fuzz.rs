//! Fuzzing the image readers of `basin score` (issue 23): NIfTI and DICOM files mutated from
//! ones basin writes (bit flips, truncations, extreme integers over header fields) must read or
//! give an error — never panic, never make one allocation past 2 GiB (the capped allocator
//! aborts the binary). Cases: `BASIN_FUZZ_CASES` (CI default below; the long run is in
//! benches/RESULTS.md).

use basin_core::fuzz::{cases, mutate, run, CappedAlloc};
use basin_export::dicom::{write_dicom_series, DicomOptions};
use basin_export::geometry::StackGeometry;
use ndarray::Array3;
use std::path::Path;

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc::new(2 << 30);

fn volume() -> Array3<f32> {
    Array3::from_shape_fn((2, 12, 10), |(z, y, x)| (z * 100 + y * 10 + x) as f32)
}

#[test]
fn fuzz_nifti_reader() {
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("seed.nii");
    basin_export::nifti_out::write_nifti(
        &seed_path,
        &volume(),
        &StackGeometry::unit(),
        "fuzz",
        false,
    )
    .unwrap();
    let seed = std::fs::read(&seed_path).unwrap();
    let f = dir.path().join("case.nii");
    run(
        "nifti reader",
        cases(20_000),
        5,
        |rng| {
            // Most edits land in the 352-byte header, where the sizes and types are.
            let mut head = mutate(&seed[..352.min(seed.len())], rng);
            if head.len() == 352 && rng.next_u64() % 2 == 0 {
                head.extend_from_slice(&seed[352..]);
                head
            } else {
                mutate(&seed, rng)
            }
        },
        |bytes| {
            std::fs::write(&f, bytes).unwrap();
            let _ = basin_export::nifti_in::read_nifti(&f);
        },
    );
}

#[test]
fn fuzz_dicom_reader() {
    let dir = tempfile::tempdir().unwrap();
    let series = dir.path().join("series");
    let opts = DicomOptions {
        series_description: "fuzz".into(),
        uid_root: None,
        anonymize: false,
        overwrite: false,
        three_d: false,
    };
    let files = write_dicom_series(
        &series,
        &volume(),
        &StackGeometry::unit(),
        &basin_mrd::IsmrmrdHeader::default(),
        &opts,
    )
    .unwrap();
    let seed = std::fs::read(&files[0]).unwrap();
    let f = dir.path().join("case.dcm");
    run(
        "dicom reader",
        // Few in CI: about one mutated file in 27 takes 2–3 s inside dicom-object's parser
        // (benches/RESULTS.md, issue 23 fuzzing).
        cases(60),
        6,
        |rng| mutate(&seed, rng),
        |bytes| {
            std::fs::write(&f, bytes).unwrap();
            let _ = basin_export::dicom_in::read_dicom_series(Path::new(&f));
        },
    );
}
