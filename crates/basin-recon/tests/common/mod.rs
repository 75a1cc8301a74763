#![allow(dead_code)] // each test file uses a part
//! Shared by the solver tests: an undersampled phantom with its SENSE operator, and the NMSE
//! of a magnitude image against the phantom's truth.

use basin_core::linop::Sense;
use basin_core::C32;
use basin_phantom::{generate, Kind, MaskKind, Phantom, PhantomSpec};
use basin_recon::coils::{espirit_2d, EspiritParams};
use ndarray::{Array3, Array4, Axis};

/// NMSE of |x| against `truth` after the least-squares scale a = ⟨m, t⟩/⟨m, m⟩.
pub fn nmse_vs_truth(x: &Array3<C32>, truth: &ndarray::Array2<f32>) -> f64 {
    let m: Vec<f64> = x.iter().map(|c| c.norm() as f64).collect();
    let t: Vec<f64> = truth.iter().map(|&v| v as f64).collect();
    let a = m.iter().zip(&t).map(|(p, q)| p * q).sum::<f64>()
        / m.iter().map(|p| p * p).sum::<f64>().max(1e-30);
    let num: f64 = m.iter().zip(&t).map(|(p, q)| (a * p - q).powi(2)).sum();
    num / t.iter().map(|q| q * q).sum::<f64>()
}

/// The 128², 8-coil brain phantom at 4× equispaced (8 % centre, noise 0.002) with ESPIRiT maps.
pub fn phantom_4x() -> (Phantom, Sense, Array4<C32>) {
    let spec = PhantomSpec {
        kind: Kind::Brain,
        matrix: 128,
        coils: 8,
        accel: 4.0,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        noise: 0.002,
        seed: 3,
    };
    let p = generate(&spec).unwrap();
    let mask2 = ndarray::Array2::from_shape_fn((128, 128), |(y, _)| p.lines[y]);
    let (maps, _) = espirit_2d(p.sampled.view(), mask2.view(), &EspiritParams::default()).unwrap();
    let op = Sense::new(maps.insert_axis(Axis(1)), mask2.insert_axis(Axis(0)), false).unwrap();
    let k = p.sampled.clone().insert_axis(Axis(1));
    (p, op, k)
}

/// A single-coil Shepp–Logan phantom of `n`² with random lines at 4× and its SENSE operator
/// (one map of ones).
pub fn single_coil(n: usize, noise: f64, seed: u64) -> (Phantom, Sense, Array4<C32>, Array3<bool>) {
    let spec = PhantomSpec {
        kind: Kind::SheppLogan,
        matrix: n,
        coils: 1,
        accel: 4.0,
        center_fraction: 0.08,
        mask: MaskKind::Random,
        noise,
        seed,
    };
    let p = generate(&spec).unwrap();
    let mask = Array3::from_shape_fn((1, n, n), |(_, y, _)| p.lines[y]);
    let maps = Array4::from_elem((1, 1, n, n), C32::new(1.0, 0.0));
    let op = Sense::new(maps, mask.clone(), false).unwrap();
    let k = p.sampled.clone().insert_axis(Axis(1));
    (p, op, k, mask)
}

/// A case without model error: the brain phantom's image times the norm of its true coil maps
/// (so the coil images are the phantom's), its unit-norm true maps (8 coils, `matrix`²,
/// equispaced `accel`, 8 % centre). Returns the truth and the operator; see [`noisy_kspace`].
pub fn exact_case(matrix: usize, accel: f64, seed: u64) -> (Array3<C32>, Sense) {
    let spec = PhantomSpec {
        kind: Kind::Brain,
        matrix,
        coils: 8,
        accel,
        center_fraction: 0.08,
        mask: MaskKind::Equispaced,
        noise: 0.0,
        seed,
    };
    let p = generate(&spec).unwrap();
    let norm = p.maps.map_axis(Axis(0), |v| {
        v.iter().map(|c| c.norm_sqr()).sum::<f32>().sqrt()
    });
    let maps = Array4::from_shape_fn((8, 1, matrix, matrix), |(c, _, y, x)| {
        p.maps[[c, y, x]] / norm[[y, x]].max(1e-12)
    });
    let truth = Array3::from_shape_fn((1, matrix, matrix), |(_, y, x)| {
        C32::new(p.truth[[y, x]] * norm[[y, x]], 0.0)
    });
    let mask = Array3::from_shape_fn((1, matrix, matrix), |(_, y, _)| p.lines[y]);
    (truth, Sense::new(maps, mask, false).unwrap())
}

/// k-space = A x on the sampled samples + complex Gaussian noise of std `sigma` per sample.
pub fn noisy_kspace(op: &Sense, x: &Array3<C32>, sigma: f64, seed: u64) -> Array4<C32> {
    use basin_core::linop::LinearOp;
    let mut rng = basin_core::rng::Rng::new(seed);
    let clean = op.forward(x.view().into_dyn());
    let mask = op.mask();
    let dims = (
        clean.shape()[0],
        clean.shape()[1],
        clean.shape()[2],
        clean.shape()[3],
    );
    Array4::from_shape_fn(dims, |(c, z, y, xx)| {
        if mask[[z, y, xx]] {
            clean[[c, z, y, xx]] + rng.complex_normal() * (sigma as f32 / std::f32::consts::SQRT_2)
        } else {
            C32::new(0.0, 0.0)
        }
    })
}

/// A realistic simulation (`basin_phantom::realistic::simulate`) as `basin recon` reads it: its
/// ISMRMRD acquisitions (noise scan included) assembled into k-space.
pub fn assemble_simulation(
    sim: &basin_phantom::realistic::Simulation,
    accel: f64,
) -> basin_mrd::KSpace {
    let d = basin_phantom::Description {
        patient_name: "T^T".into(),
        patient_id: "t".into(),
        study: "t".into(),
        protocol: "t".into(),
        model: "t".into(),
    };
    let (h, acqs) = basin_phantom::acquisition_to_ismrmrd(
        &d,
        sim.kspace.view(),
        &sim.lines,
        &sim.acs,
        accel,
        [240.0, 240.0, 5.0],
        &sim.noise_scan,
    );
    basin_mrd::assemble(std::path::Path::new("sim.h5"), h, &acqs).unwrap()
}
