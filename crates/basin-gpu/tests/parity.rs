//! GPU kernels against the CPU path on random inputs (wgpu; lavapipe in CI). These tests fail,
//! not skip, when no adapter is found: `.ci/install-deps` installs Mesa's software Vulkan driver.

use basin_core::linop::{LinearOp, Sense};
use basin_core::rng::Rng;
use basin_core::C32;
use basin_gpu::prior::{ConvKind, GpuPrior};
use basin_gpu::sense::{interleave, slot, PerSlice, Reducer, SenseGpu};
use basin_gpu::{Backend, Gpu};
use basin_prior::Pyramid;
use ndarray::{Array3, Array4};

fn gpu() -> Gpu {
    Gpu::for_tests().expect("the parity tests need a Vulkan adapter (lavapipe in CI)")
}

fn random_c(rng: &mut Rng, n: usize) -> Vec<C32> {
    (0..n).map(|_| rng.complex_normal()).collect()
}

/// ‖a − b‖ / ‖b‖ over f32 values, accumulated in float64.
fn rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-300)).sqrt()
}

fn worst(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    a.iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs() as f64))
        / scale
}

#[test]
fn fft_matches_basin_core_for_every_size() {
    let g = gpu();
    let mut rng = Rng::new(7);
    for &(h, w) in &[
        (64, 64),
        (96, 96),
        (100, 100),
        (128, 128),
        (368, 368),
        (45, 34),
        (23, 1),
    ] {
        let batch = if h * w > 100_000 { 1 } else { 3 };
        let data = random_c(&mut rng, batch * h * w);
        for (max_radix, inverse) in [(4, false), (4, true), (16, false), (16, true)] {
            let fft = basin_gpu::fft::Fft2::with_max_radix(&g, batch, h, w, max_radix);
            let mut reference = Array3::from_shape_vec((batch, h, w), data.clone()).unwrap();
            if inverse {
                basin_core::fft::ifftc(reference.view_mut(), &[1, 2]);
            } else {
                basin_core::fft::fftc(reference.view_mut(), &[1, 2]);
            }
            let d = g.upload(&interleave(data.iter().copied()));
            fft.run(&g, &d, inverse);
            let got = g.download(&d);
            let want = interleave(reference.iter().copied());
            let (e, m) = (rel(&got, &want), worst(&got, &want));
            println!(
                "fft {h}x{w} batch {batch} inverse {inverse}, radices ≤ {max_radix} ({} passes): rel {e:.2e}, worst {m:.2e}",
                fft.passes
            );
            assert!(
                e < 1e-4 && m < 1e-4,
                "{h}x{w}, radices ≤ {max_radix}: rel {e}, worst {m}"
            );
        }
    }
}

fn sense_case(
    rng: &mut Rng,
    nc: usize,
    nz: usize,
    h: usize,
    w: usize,
) -> (Array4<C32>, Array3<bool>) {
    let maps = Array4::from_shape_fn((nc, nz, h, w), |_| rng.complex_normal() * 0.5);
    let mask = Array3::from_shape_fn((nz, h, w), |_| rng.uniform() < 0.4);
    (maps, mask)
}

#[test]
fn sense_forward_adjoint_normal_match_the_cpu_operator() {
    let g = gpu();
    let mut rng = Rng::new(11);
    let (nc, nz, h, w) = (4, 2, 48, 40);
    let (maps, mask) = sense_case(&mut rng, nc, nz, h, w);
    let cpu = Sense::new(maps.clone(), mask.clone(), false).unwrap();
    let dev = SenseGpu::new(&g, &maps, &mask).unwrap();
    let x = Array3::from_shape_vec((nz, h, w), random_c(&mut rng, nz * h * w)).unwrap();
    let y = Array4::from_shape_vec((nc, nz, h, w), random_c(&mut rng, nc * nz * h * w)).unwrap();
    let xd = g.upload(&interleave(x.iter().copied()));
    let yd = g.upload(&interleave(y.iter().copied()));
    let kd = g.zeros(2 * nc * nz * h * w);
    let od = g.zeros(2 * nz * h * w);

    dev.forward(&g, &xd, &kd);
    let want = cpu.forward(x.view().into_dyn());
    let e = rel(&g.download(&kd), &interleave(want.iter().copied()));
    println!("SENSE forward: rel {e:.2e}");
    assert!(e < 1e-4);

    dev.adjoint(&g, &yd, &od);
    let want = cpu.adjoint(y.view().into_dyn());
    let e = rel(&g.download(&od), &interleave(want.iter().copied()));
    println!("SENSE adjoint: rel {e:.2e}");
    assert!(e < 1e-4);

    // ρ per slice (a batch's slices each have their own), read from a table at an offset.
    let rho = [0.37f32, 1.25];
    let table = g.upload(&[9.0, rho[0], rho[1]]);
    let per_slice = PerSlice {
        buf: &table,
        off: 1,
    };
    dev.normal(&g, &xd, per_slice, &od);
    let mut want = cpu.normal(x.view().into_dyn());
    for (z, mut plane) in want.outer_iter_mut().enumerate() {
        plane.zip_mut_with(&x.index_axis(ndarray::Axis(0), z), |a, &b| *a += b * rho[z]);
    }
    let e = rel(&g.download(&od), &interleave(want.iter().copied()));
    println!("SENSE normal + ρ per slice: rel {e:.2e}");
    assert!(e < 1e-4);
}

#[test]
fn device_dot_matches_a_float64_loop() {
    let g = gpu();
    let mut rng = Rng::new(3);
    for n in [1usize, 255, 256, 1000, 70_001, 300_000] {
        let a: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        let b: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let norm: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
            * b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let red = Reducer::new(&g, 1);
        red.dot(&g, &g.upload(&a), &g.upload(&b), slot::OUT);
        let got = red.read(&g)[slot::OUT as usize] as f64;
        println!("dot n = {n}: {got} vs {want}");
        assert!(
            (got - want).abs() <= 1e-5 * norm.max(1.0),
            "n = {n}: {got} vs {want}"
        );
    }
}

#[test]
fn segmented_dot_matches_a_float64_loop_per_slice_and_a_batch_of_one_bit_for_bit() {
    let g = gpu();
    let mut rng = Rng::new(4);
    for (nseg, seg) in [(3usize, 1000usize), (5, 70_001), (2, 1)] {
        let a: Vec<f32> = (0..nseg * seg).map(|_| rng.normal() as f32).collect();
        let b: Vec<f32> = (0..nseg * seg).map(|_| rng.normal() as f32).collect();
        let red = Reducer::new(&g, nseg);
        red.dot(&g, &g.upload(&a), &g.upload(&b), slot::PAP);
        let got = red.per_slice(&red.read(&g), slot::PAP);
        for z in 0..nseg {
            let (sa, sb) = (&a[z * seg..][..seg], &b[z * seg..][..seg]);
            let want: f64 = sa.iter().zip(sb).map(|(x, y)| *x as f64 * *y as f64).sum();
            let norm = (sa.iter().map(|x| (*x as f64).powi(2)).sum::<f64>()
                * sb.iter().map(|x| (*x as f64).powi(2)).sum::<f64>())
            .sqrt();
            assert!(
                (got[z] as f64 - want).abs() <= 1e-5 * norm.max(1.0),
                "{nseg}×{seg}, slice {z}: {} vs {want}",
                got[z]
            );
            // The same slice alone: the same cubes, the same summation order.
            let one = Reducer::new(&g, 1);
            one.dot(&g, &g.upload(sa), &g.upload(sb), slot::PAP);
            let alone = one.read(&g)[slot::PAP as usize];
            assert_eq!(
                got[z].to_bits(),
                alone.to_bits(),
                "{nseg}×{seg}, slice {z}: batched {} vs alone {alone}",
                got[z]
            );
        }
        println!("segmented dot {nseg}×{seg}: per slice within 1e-5 of float64, bit-equal to a batch of one");
    }
}

/// Planar [nb, 2, h, w] f32 → the float64 reference's [2, h, w] per image; image b is judged
/// at its own noise level σ·1.7ᵇ (a batch of slices, each at its own σ).
fn prior_check(p: &Pyramid, nb: usize, h: usize, w: usize, sigma: f64, seed: u64) {
    let g = gpu();
    let mut rng = Rng::new(seed);
    let x: Vec<f32> = (0..nb * 2 * h * w)
        .map(|_| (rng.normal() * 0.5) as f32)
        .collect();
    for conv in [ConvKind::Tiled, ConvKind::Gather] {
        let dev = GpuPrior::new(&g, p).with_conv(conv);
        prior_check_with(&g, &dev, p, &x, nb, h, w, sigma, conv);
    }
}

#[allow(clippy::too_many_arguments)]
fn prior_check_with(
    g: &Gpu,
    dev: &GpuPrior,
    p: &Pyramid,
    x: &[f32],
    nb: usize,
    h: usize,
    w: usize,
    sigma: f64,
    conv: ConvKind,
) {
    let ws = dev.workspace(g, nb, h, w);
    let xd = g.upload(x);
    g.copy(&xd, ws.input());
    let sigmas: Vec<f64> = (0..nb).map(|b| sigma * 1.7f64.powi(b as i32)).collect();
    // Two steps: a decoy first row, the σs under test second.
    let cond = dev.conditioning(
        g,
        &[vec![0.3; nb], sigmas.iter().map(|&s| s as f32).collect()],
    );
    dev.energy_grad(g, &ws, &cond, 1);
    let grad = g.download(ws.grad());
    let dens = g.download(ws.density());
    let mut want_g = Vec::new();
    let mut want_d = Vec::new();
    for b in 0..nb {
        let xi = ndarray::Array3::from_shape_fn((2, h, w), |(c, y, xx)| {
            x[((b * 2 + c) * h + y) * w + xx] as f64
        });
        // The reference at the f32 σ the device is given.
        let s = sigmas[b] as f32 as f64;
        want_g.extend(p.grad_x(xi.view(), s).iter().map(|&v| v as f32));
        want_d.extend(p.energy_density(xi.view(), s).iter().map(|&v| v as f32));
    }
    let (eg, ed) = (rel(&grad, &want_g), rel(&dens, &want_d));
    println!(
        "prior {h}x{w} batch {nb}, {} levels, {conv:?} convolutions: grad rel {eg:.2e}, density rel {ed:.2e}",
        p.levels.len()
    );
    assert!(eg < 1e-4 && ed < 1e-4, "{conv:?}: grad {eg}, density {ed}");
}

#[test]
fn prior_energy_and_gradient_match_the_float64_reference() {
    // Odd sizes exercise the pooled levels' dropped last row/column.
    prior_check(&Pyramid::random(3, 6, 5, 5, 3, 21), 2, 37, 32, 0.07, 1);
    prior_check(&Pyramid::random(1, 4, 3, 3, 3, 5), 3, 33, 35, 0.02, 2);
}

#[test]
fn prior_with_expert_field_matches_the_float64_reference() {
    // The expert field (every filter of the bank, boxes up to 8×8 at the image borders) on top
    // of a network weighted by β(σ); σ between two rows of the weight table.
    let mut p = Pyramid::random(2, 4, 3, 4, 3, 31);
    p.experts = Some(basin_prior::experts::Experts::random(32));
    prior_check(&p, 2, 29, 34, 0.05, 4);
    prior_check(&p, 1, 40, 23, 0.012, 5);
}

#[test]
fn shipped_prior_matches_the_float64_reference() {
    let (p, _) = basin_prior::default_model().unwrap();
    prior_check(&p, 1, 64, 64, 0.03, 3);
}

#[test]
fn backend_choice_never_picks_a_software_adapter_automatically() {
    let hardware = Gpu::hardware();
    let auto = Gpu::open(Backend::Auto).unwrap();
    let forced = Gpu::open(Backend::Gpu)
        .unwrap()
        .expect("--backend gpu opens a device");
    assert!(Gpu::open(Backend::Cpu).unwrap().is_none());
    match hardware {
        Some(_) => {
            assert!(!auto.expect("auto picks the hardware GPU").is_software());
            assert!(!forced.is_software());
        }
        None => {
            assert!(
                auto.is_none(),
                "auto must fall back to the CPU, not to {}",
                forced.description()
            );
            assert!(forced.is_software());
        }
    }
    println!("device for --backend gpu: {}", forced.description());
}

#[test]
fn fft_3d_and_sense_3d_match_basin_core() {
    // 3D encoding: the centered orthonormal FFT over (z, y, x) of each coil's volume, odd and
    // even depths, and SENSE with it against basin-core's 3D operator.
    let g = gpu();
    let mut rng = Rng::new(12);
    for &(nc, nz, h, w) in &[(2usize, 6usize, 10usize, 12usize), (3, 5, 16, 9)] {
        let data = random_c(&mut rng, nc * nz * h * w);
        let fft = basin_gpu::fft::Fft2::new_3d(&g, nc, nz, h, w);
        for inverse in [false, true] {
            let mut reference = Array4::from_shape_vec((nc, nz, h, w), data.clone()).unwrap();
            if inverse {
                basin_core::fft::ifftc(reference.view_mut(), &[1, 2, 3]);
            } else {
                basin_core::fft::fftc(reference.view_mut(), &[1, 2, 3]);
            }
            let d = g.upload(&interleave(data.iter().copied()));
            fft.run(&g, &d, inverse);
            let e = rel(&g.download(&d), &interleave(reference.iter().copied()));
            println!("fft 3D {nc}×{nz}×{h}×{w} inverse {inverse}: rel {e:.2e}");
            assert!(e < 1e-5, "3D FFT {nc}×{nz}×{h}×{w}: rel {e}");
        }
        let (maps, mask) = sense_case(&mut rng, nc, nz, h, w);
        let cpu = Sense::new(maps.clone(), mask.clone(), true).unwrap();
        let dev = SenseGpu::new_3d(&g, &maps, &mask).unwrap();
        assert_eq!(dev.slices(), 1, "a 3D volume is one problem");
        let x = Array3::from_shape_vec((nz, h, w), random_c(&mut rng, nz * h * w)).unwrap();
        let xd = g.upload(&interleave(x.iter().copied()));
        let kd = g.zeros(2 * nc * nz * h * w);
        dev.forward(&g, &xd, &kd);
        let want = cpu.forward(x.view().into_dyn());
        let e = rel(&g.download(&kd), &interleave(want.iter().copied()));
        let od = g.zeros(2 * nz * h * w);
        let table = g.upload(&[0.6f32]);
        dev.normal(
            &g,
            &xd,
            PerSlice {
                buf: &table,
                off: 0,
            },
            &od,
        );
        let mut want_n = cpu.normal(x.view().into_dyn());
        want_n.zip_mut_with(&x.view().into_dyn(), |a, &b| *a += b * 0.6);
        let en = rel(&g.download(&od), &interleave(want_n.iter().copied()));
        println!("SENSE 3D forward rel {e:.2e}, normal + ρ rel {en:.2e}");
        assert!(e < 1e-4 && en < 1e-4, "3D SENSE: forward {e}, normal {en}");
    }
}

#[test]
fn profiling_the_gradient_runs_the_same_launches_and_names_every_stage() {
    let g = gpu();
    let mut p = Pyramid::random(2, 4, 3, 4, 3, 8);
    p.experts = Some(basin_prior::experts::Experts::random(9));
    let mut rng = Rng::new(10);
    let (nb, h, w) = (2, 24, 20);
    let x: Vec<f32> = (0..nb * 2 * h * w).map(|_| rng.normal() as f32).collect();
    for conv in [ConvKind::Gather, ConvKind::Tiled] {
        let dev = GpuPrior::new(&g, &p).with_conv(conv);
        let ws = dev.workspace(&g, nb, h, w);
        let cond = dev.conditioning(&g, &[vec![0.04, 0.02]]);
        g.copy(&g.upload(&x), ws.input());
        dev.energy_grad(&g, &ws, &cond, 0);
        let plain = g.download(ws.grad());
        let stages = dev.profile(&g, &ws, &cond, 0);
        let profiled = g.download(ws.grad());
        assert_eq!(plain, profiled, "{conv:?}: profiling changes nothing");
        let names: Vec<&str> = stages.iter().map(|s| s.0).collect();
        println!("{conv:?}: {names:?}");
        for want in [
            "pooling",
            "conv 2",
            "head",
            "conv 2 adjoint (gated)",
            "conv 1 adjoint",
        ] {
            assert!(
                names.contains(&want),
                "{conv:?}: no stage {want} in {names:?}"
            );
        }
        assert!(stages.iter().all(|s| s.1 >= 0.0));
        // Every convolution stage has its FLOP count under the name the profile uses.
        for (name, flops) in dev.conv_flops(nb, h, w) {
            assert!(names.contains(&name), "{conv:?}: {name} not profiled");
            assert!(flops > 0.0);
        }
    }
}
