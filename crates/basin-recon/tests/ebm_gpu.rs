//! The EBM solver on the GPU path (wgpu; lavapipe in CI) against the CPU path on a 64² phantom.
//! Fails, not skips, without an adapter: `.ci/install-deps` installs Mesa's Vulkan driver.
#![cfg(feature = "gpu")]

use basin_core::C32;
use basin_prior::fast::FastPyramid;
use basin_recon::ebm::{ebm, ebm_gpu, EbmParams};
use ndarray::Array3;

mod common;

fn nmse(a: &Array3<C32>, b: &Array3<C32>) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).norm_sqr() as f64)
        .sum();
    num / b.iter().map(|y| y.norm_sqr() as f64).sum::<f64>()
}

/// A short schedule for the device tests (3 levels × 2 steps, 4 CG iterations).
fn short() -> EbmParams {
    EbmParams {
        levels: 3,
        inner: 2,
        cg_iterations: 4,
        init_iterations: 6,
        ..EbmParams::default()
    }
}

/// The EBM of `k` on the device against the CPU solver: NMSE < 1e-4, the same iterations, the
/// energy within 1e-3, no host-device copy inside the loop. Returns the CPU image and the
/// device's report.
fn gpu_matches_cpu(
    gpu: &basin_gpu::Gpu,
    op: &basin_core::linop::Sense,
    k: &ndarray::Array4<C32>,
    what: &str,
) -> (Array3<C32>, basin_gpu::ebm::Report) {
    let (pyr, _) = basin_prior::default_model().unwrap();
    let p = short();
    let (cpu, cpu_rep) = ebm(op, k, &FastPyramid::new(&pyr), &p, None);
    let prior = basin_gpu::prior::GpuPrior::new(gpu, &pyr);
    let (dev, dev_rep, counts) = ebm_gpu(gpu, &prior, op, k, &p, None).unwrap();
    let e = nmse(&dev, &cpu);
    println!(
        "{what}: GPU vs CPU NMSE {e:.2e}; energy {} vs {}; copies before/after loop {}/{} on {}",
        dev_rep.energy,
        cpu_rep.energy,
        counts.copies_before_loop,
        counts.copies_after_loop,
        gpu.description()
    );
    assert_eq!(dev_rep.iterations, cpu_rep.iterations);
    assert!(
        e < 1e-4,
        "{what}: NMSE between the GPU and CPU reconstructions {e}"
    );
    assert!(
        (dev_rep.energy - cpu_rep.energy).abs() <= 1e-3 * cpu_rep.energy.abs().max(1.0),
        "{what}: energy {} vs {}",
        dev_rep.energy,
        cpu_rep.energy
    );
    assert!(
        counts.copies_before_loop > 0,
        "the counter sees the uploads"
    );
    assert_eq!(
        counts.copies_before_loop, counts.copies_after_loop,
        "{what}: no host-device copy inside the iteration loop"
    );
    (cpu, counts)
}

#[test]
fn gpu_ebm_matches_the_cpu_solver_without_copies_in_the_loop() {
    let gpu = basin_gpu::Gpu::for_tests().expect("the GPU tests need a Vulkan adapter (lavapipe)");
    let (truth, op) = common::exact_case(64, 3.0, 5);
    let k = common::noisy_kspace(&op, &truth, 0.01, 6);
    gpu_matches_cpu(&gpu, &op, &k, "EBM 64², 8 coils, 3×");
}

#[test]
fn gpu_cg_matches_the_cpu_cg_iteration_for_iteration() {
    use basin_gpu::sense::{cg, interleave, CgBuffers, PerSlice, Reducer, SenseGpu};
    use basin_recon::solvers::cg_sense;
    let gpu = basin_gpu::Gpu::for_tests().expect("the GPU tests need a Vulkan adapter (lavapipe)");
    let (truth, op) = common::exact_case(48, 2.0, 8);
    let k = common::noisy_kspace(&op, &truth, 0.02, 9);
    let dev = SenseGpu::new(&gpu, op.maps(), op.mask()).unwrap();
    let red = Reducer::new(&gpu, 1);
    let bufs = CgBuffers::new(&gpu, dev.npix());
    let yd = gpu.upload(&interleave(k.iter().copied()));
    let b = gpu.zeros(2 * dev.npix());
    let x = gpu.zeros(2 * dev.npix());
    dev.adjoint(&gpu, &yd, &b);
    for (lambda, iters) in [(0.0f32, 3usize), (0.05, 8), (0.0, 25)] {
        let (want, _) = cg_sense(&op, &k, lambda, 1e-6, iters, None);
        let rho = gpu.upload(&[lambda]);
        let rho = PerSlice { buf: &rho, off: 0 };
        cg(&gpu, &dev, &red, &bufs, &b, &x, rho, 1e-6, iters);
        let got = gpu.download(&x);
        let got = Array3::from_shape_fn(want.raw_dim(), |(z, y, xx)| {
            let i = 2 * ((z * 48 + y) * 48 + xx);
            C32::new(got[i], got[i + 1])
        });
        let e = nmse(&got, &want);
        println!("CG λ = {lambda}, {iters} iterations: NMSE GPU vs CPU {e:.2e}");
        assert!(e < 1e-8, "λ = {lambda}, {iters} iterations: NMSE {e}");
    }
}

#[test]
fn batched_gpu_ebm_gives_each_slice_its_own_solve() {
    // Three slices in one launch sequence — different anatomy scales, masks (acceleration)
    // and noise levels, so different data scales, σ floors, ρ and CG stopping — against each
    // slice solved alone on the same device: the batch must not couple them.
    use basin_recon::ebm::{ebm_gpu_batch, GpuSlice};
    let gpu = basin_gpu::Gpu::for_tests().expect("the GPU tests need a Vulkan adapter (lavapipe)");
    let (pyr, _) = basin_prior::default_model().unwrap();
    let prior = basin_gpu::prior::GpuPrior::new(&gpu, &pyr);
    let p = short();
    let cases: Vec<_> = [
        (3.0, 0.002, 5u64, 1.0f32),
        (2.0, 0.05, 7, 40.0),
        (4.0, 0.01, 9, 0.3),
    ]
    .iter()
    .map(|&(accel, noise, seed, scale)| {
        let (truth, op) = common::exact_case(40, accel, seed);
        let truth = truth.mapv(|c| c * scale);
        let k = common::noisy_kspace(&op, &truth, noise * scale as f64, seed + 1);
        (op, k)
    })
    .collect();
    let slices: Vec<GpuSlice> = cases
        .iter()
        .map(|(op, k)| GpuSlice {
            op,
            kspace: k,
            noise_std: None,
        })
        .collect();
    let (batch, counts) = ebm_gpu_batch(&gpu, &prior, &slices, &p).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(
        counts.copies_before_loop, counts.copies_after_loop,
        "no host-device copy inside the batched loop"
    );
    let mut floors = Vec::new();
    for (i, (op, k)) in cases.iter().enumerate() {
        let (alone, rep, _) = ebm_gpu(&gpu, &prior, op, k, &p, None).unwrap();
        let (got, brep) = &batch[i];
        let e = nmse(got, &alone);
        println!(
            "slice {i}: batched vs alone NMSE {e:.2e}; energy {} vs {}; σ_final {}",
            brep.energy, rep.energy, rep.sigma_final
        );
        assert!(e < 1e-8, "slice {i}: NMSE batched vs alone {e}");
        assert!(
            (brep.energy - rep.energy).abs() <= 1e-6 * rep.energy.abs().max(1.0),
            "slice {i}: energy {} vs {}",
            brep.energy,
            rep.energy
        );
        assert_eq!(brep.iterations, rep.iterations);
        assert_eq!(brep.noise_std, rep.noise_std);
        floors.push(rep.sigma_final);
    }
    // The noisy slice's schedule stops at its own (higher) floor: the batch really carried
    // different σ per slice.
    assert!(
        floors[1] > 1.5 * floors[0],
        "σ_final per slice {floors:?}: the test needs slices at different noise levels"
    );
}

#[test]
fn a_batch_of_slices_that_do_not_stack_is_refused() {
    use basin_recon::ebm::{ebm_gpu_batch, GpuSlice};
    let gpu = basin_gpu::Gpu::for_tests().expect("the GPU tests need a Vulkan adapter (lavapipe)");
    let (pyr, _) = basin_prior::default_model().unwrap();
    let prior = basin_gpu::prior::GpuPrior::new(&gpu, &pyr);
    let (t1, op1) = common::exact_case(32, 2.0, 1);
    let (t2, op2) = common::exact_case(40, 2.0, 2);
    let (k1, k2) = (
        common::noisy_kspace(&op1, &t1, 0.01, 3),
        common::noisy_kspace(&op2, &t2, 0.01, 4),
    );
    let slices = [
        GpuSlice {
            op: &op1,
            kspace: &k1,
            noise_std: None,
        },
        GpuSlice {
            op: &op2,
            kspace: &k2,
            noise_std: None,
        },
    ];
    let err = ebm_gpu_batch(&gpu, &prior, &slices, &EbmParams::default())
        .expect_err("32² and 40² slices do not stack");
    assert!(err.to_string().contains("does not stack"), "{err}");
    assert!(ebm_gpu_batch(&gpu, &prior, &[], &EbmParams::default()).is_err());
}

#[test]
fn the_pipeline_solves_a_volume_in_batches_with_the_images_of_one_slice_at_a_time() {
    // A 3-slice realistic acquisition (8 birdcage coils, correlated noise with a noise scan:
    // prewhitened; slices of different anatomy and intensity, so each has its own data scale
    // and σ schedule) through the library pipeline on the GPU: batched (the default device
    // memory holds all three) against one slice per solve (a 1-byte budget) and the CPU.
    use basin_phantom::realistic::{simulate, RealisticSpec};
    use basin_phantom::{generate, Kind, MaskKind, PhantomSpec};
    use basin_recon::pipeline::Pipeline;
    use basin_recon::{Backend, Protocol, ReconOptions, Solver};
    let n = 48;
    let slice = |kind, seed| {
        generate(&PhantomSpec {
            kind,
            matrix: n,
            coils: 1,
            accel: 1.0,
            center_fraction: 0.08,
            mask: MaskKind::Equispaced,
            noise: 0.0,
            seed,
        })
        .unwrap()
        .truth
    };
    let (a, b) = (slice(Kind::Brain, 1), slice(Kind::SheppLogan, 2));
    let obj = ndarray::stack![
        ndarray::Axis(0),
        a.view(),
        b.mapv(|v| 0.4 * v).view(),
        (&a * 0.7 + &b * 0.5).view()
    ];
    let cov = ndarray::Array2::from_shape_fn((8, 8), |(i, j)| {
        let d = (i as i64 - j as i64).unsigned_abs() as i32;
        basin_core::C64::new(0.45f64.powi(d) * (1.0 + 0.1 * (i + j) as f64), 0.0)
    });
    let sim = simulate(
        &obj,
        &RealisticSpec {
            matrix: (n, n),
            coils: 8,
            accel: 3.0,
            center_fraction: 0.1,
            mask: MaskKind::Equispaced,
            snr: 30.0,
            noise_cov: Some(cov),
            lesions: 0,
            noise_samples: 2048,
            seed: 5,
        },
    )
    .unwrap();
    let k = common::assemble_simulation(&sim, 3.0);
    assert_eq!(k.buckets.len(), 3);
    let (mut protocol, _) = Protocol::locate("brain-2d-ebm", None).unwrap();
    if let Solver::Ebm(p) = &mut protocol.solver {
        p.levels = 3;
        p.inner = 2;
    }
    let run = |backend, gpu_memory| {
        let pipe = Pipeline::new(backend);
        let opts = ReconOptions {
            gpu_memory,
            ..Default::default()
        };
        let steps = std::sync::Mutex::new(Vec::new());
        let r = pipe
            .reconstruct(&protocol, &k, &opts, &|i, t| {
                steps.lock().unwrap().push((i, t))
            })
            .unwrap();
        assert_eq!(
            steps.into_inner().unwrap(),
            vec![(1, 3), (2, 3), (3, 3)],
            "progress per slice"
        );
        r
    };
    let batched = run(Backend::Gpu, None);
    let alone = run(Backend::Gpu, Some(1));
    // A budget for two slices: a batch of two, then one (prepared while the first solves).
    let (per_slice, _) = basin_gpu::ebm::bytes_per_slice(
        &basin_gpu::prior::GpuPrior::new(
            &basin_gpu::Gpu::for_tests().unwrap(),
            &basin_prior::default_model().unwrap().0,
        ),
        8,
        n,
        n,
    );
    let two = run(Backend::Gpu, Some(2 * per_slice as u64 + 1));
    let sizes: Vec<usize> = two.slices.iter().map(|s| s.diagnostics.batch).collect();
    assert_eq!(sizes, vec![2, 2, 1], "batches of the two-slice budget");
    let cpu = run(Backend::Cpu, None);
    assert!(batched.slices.iter().all(|s| s.diagnostics.prewhitened));
    let mut energies = Vec::new();
    for z in 0..3 {
        let (bt, al, cp) = (&batched.slices[z], &alone.slices[z], &cpu.slices[z]);
        assert_eq!(bt.key, al.key);
        let e_alone = nmse(&bt.image, &al.image);
        let e_cpu = nmse(&bt.image, &cp.image);
        println!(
            "slice {z}: batched vs one-slice solves NMSE {e_alone:.2e}, vs CPU {e_cpu:.2e}; energy {:?}",
            bt.diagnostics.energy
        );
        assert_eq!(
            (
                bt.diagnostics.batch,
                al.diagnostics.batch,
                cp.diagnostics.batch
            ),
            (3, 1, 1)
        );
        assert!(e_alone < 1e-8, "slice {z}: batched vs alone {e_alone}");
        let e_two = nmse(&two.slices[z].image, &al.image);
        assert!(e_two < 1e-8, "slice {z}: batches of two vs alone {e_two}");
        assert!(e_cpu < 1e-4, "slice {z}: batched GPU vs CPU {e_cpu}");
        assert_eq!(bt.diagnostics.energy, al.diagnostics.energy);
        assert_eq!(bt.diagnostics.residual, al.diagnostics.residual);
        energies.push(bt.diagnostics.energy.unwrap());
    }
    assert!(
        energies[0] != energies[1] && energies[1] != energies[2],
        "three different slices: {energies:?}"
    );
}

#[test]
fn gpu_ebm_with_3d_encoding_matches_the_cpu_solver() {
    // A 4-partition slab with 3D encoding (undersampled along z and y, the FFT along z too):
    // one problem on the device, the prior on every partition, against the CPU solver.
    use basin_core::linop::Sense;
    let gpu = basin_gpu::Gpu::for_tests().expect("the GPU tests need a Vulkan adapter (lavapipe)");
    let (truth2, op2) = common::exact_case(32, 1.0, 3);
    let (nc, _, h, w) = op2.maps().dim();
    let nz = 4;
    let maps = ndarray::Array4::from_shape_fn((nc, nz, h, w), |(c, z, y, x)| {
        op2.maps()[[c, 0, y, x]] * C32::from_polar(1.0, 0.3 * z as f32 * (c as f32 - 3.5) / 4.0)
    });
    let mut rng = basin_core::rng::Rng::new(4);
    let mask = ndarray::Array3::from_shape_fn((nz, h, w), |(z, y, _)| {
        let centre = (z as i64 - 2).abs() <= 1 && (y as i64 - 16).abs() <= 3;
        centre || rng.uniform() < 0.45
    });
    // The readout (x) is fully sampled: the mask is constant along it.
    let mask = ndarray::Array3::from_shape_fn((nz, h, w), |(z, y, _)| mask[[z, y, 0]]);
    let op = Sense::new(maps, mask, true).unwrap();
    let truth = Array3::from_shape_fn((nz, h, w), |(z, y, x)| {
        truth2[[0, y, x]] * (1.0 - 0.15 * z as f32)
    });
    let k = common::noisy_kspace(&op, &truth, 0.01, 6);
    let (cpu, counts) = gpu_matches_cpu(&gpu, &op, &k, "3D encoding, 4×32², 8 coils");
    assert_eq!(counts.energies.len(), 1, "one problem");
    // Not a 2D solve in disguise: slice by slice the same data give another image.
    let (pyr, _) = basin_prior::default_model().unwrap();
    let prior = basin_gpu::prior::GpuPrior::new(&gpu, &pyr);
    let op2d = Sense::new(op.maps().clone(), op.mask().clone(), false).unwrap();
    let (flat, _, _) = ebm_gpu(&gpu, &prior, &op2d, &k, &short(), None).unwrap();
    assert!(nmse(&flat, &cpu) > 1e-2, "2D and 3D encodings must differ");
}
