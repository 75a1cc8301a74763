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

/// One DICOM file basin writes (in a temporary directory kept alive by the first value).
fn dicom_seed() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = DicomOptions {
        series_description: "fuzz".into(),
        uid_root: None,
        anonymize: false,
        overwrite: false,
        three_d: false,
    };
    let files = write_dicom_series(
        &dir.path().join("series"),
        &volume(),
        &StackGeometry::unit(),
        &basin_mrd::IsmrmrdHeader::default(),
        &opts,
    )
    .unwrap();
    let seed = std::fs::read(&files[0]).unwrap();
    (dir, seed)
}

/// dicom-object allocates and zeroes a value's declared length before reading it: a file whose
/// PixelData declares 2³¹ − 1 bytes cost 2 GiB and seconds. basin refuses it first, naming the
/// element, in well under a second; cut inside a value, a file is refused the same way.
#[test]
fn a_declared_length_past_the_end_of_the_file_is_refused_before_parsing() {
    let (dir, seed) = dicom_seed();
    let mut bytes = seed.clone();
    let f = dir.path().join("case.dcm");
    std::fs::write(&f, &bytes).unwrap();
    basin_export::dicom_in::read_dicom_series(&f).unwrap();
    let p = bytes
        .windows(6)
        .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
        .expect("PixelData in explicit VR little endian");
    bytes[p + 8..p + 12].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    std::fs::write(&f, &bytes).unwrap();
    let t = std::time::Instant::now();
    let e = basin_export::dicom_in::read_dicom_series(&f)
        .unwrap_err()
        .to_string();
    assert!(e.contains("(7FE0,0010) declares 2147483647 bytes"), "{e}");
    assert!(t.elapsed().as_secs_f64() < 0.5, "{:?}", t.elapsed());
    std::fs::write(&f, &seed[..p + 20]).unwrap();
    let e = basin_export::dicom_in::read_dicom_series(&f)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(7FE0,0010) declares 240 bytes but the file has 8 left"),
        "{e}"
    );
}

#[test]
fn fuzz_dicom_reader() {
    let (dir, seed) = dicom_seed();
    let f = dir.path().join("case.dcm");
    run(
        "dicom reader",
        cases(20_000),
        6,
        |rng| mutate(&seed, rng),
        |bytes| {
            std::fs::write(&f, bytes).unwrap();
            let _ = basin_export::dicom_in::read_dicom_series(Path::new(&f));
        },
    );
}
