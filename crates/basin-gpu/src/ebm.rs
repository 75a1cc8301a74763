//! The EBM reconstruction on the device, step for step the CPU solver of `basin_recon::ebm`:
//! CG-SENSE initialisation, then for every (σ, ρ) of the schedule `inner` times a Tweedie prior
//! step z = supp·(x − λσ²∇ₓE(x; σ)) followed by data consistency (AᴴA + ρI) d = Aᴴy − AᴴA z by
//! CG, x = z + d. Everything the loop touches lives on the device; the host only launches.

use crate::device::{grid, Gpu, GpuError};
use crate::kernels;
use crate::prior::GpuPrior;
use crate::sense::{axpby, cg, interleave, slot, CgBuffers, Reducer, SenseGpu};
use basin_core::C32;
use ndarray::{Array3, Array4};

/// The solver's schedule, computed on the host by `basin_recon::ebm` (shared with the CPU).
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// (σ, ρ) of every level, σ in the p99 = 1 convention.
    pub levels: Vec<(f32, f32)>,
    /// Prior/DC alternations per level.
    pub inner: usize,
    /// CG iterations per DC step.
    pub cg_iterations: usize,
    /// CG-SENSE iterations of the initial image.
    pub init_iterations: usize,
    /// Relative-residual tolerance of every CG solve.
    pub tolerance: f64,
    /// Weight λ of the prior: the prior step is z = x − λσ²∇ₓE.
    pub prior_weight: f32,
}

/// What [`run`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    /// Prior steps taken.
    pub iterations: usize,
    /// Energy of the final image at the last σ.
    pub energy: f64,
    /// Host↔device copies made before the iteration loop started.
    pub copies_before_loop: usize,
    /// Host↔device copies made when the loop had ended (before reading the result).
    pub copies_after_loop: usize,
}

/// EBM reconstruction of `y` (k-space `[c, z, y, x]`, already scaled) with maps `[c, z, y, x]`,
/// mask `[z, y, x]` and support `[z, y, x]`. Returns the image in the scaled units.
pub fn run(
    gpu: &Gpu,
    prior: &GpuPrior,
    maps: &Array4<C32>,
    mask: &Array3<bool>,
    support: &Array3<bool>,
    y: &Array4<C32>,
    sched: &Schedule,
) -> Result<(Array3<C32>, Report), GpuError> {
    let (_, nz, h, w) = maps.dim();
    if y.dim() != maps.dim() || support.dim() != (nz, h, w) {
        return Err(GpuError::Shape(format!(
            "EBM: k-space {:?}, maps {:?} and support {:?} do not fit",
            y.shape(),
            maps.shape(),
            support.shape()
        )));
    }
    let op = SenseGpu::new(gpu, maps, mask)?;
    let npix = op.npix();
    let hw = h * w;
    let red = Reducer::new(gpu);
    let cgb = CgBuffers::new(gpu, npix);
    let ws = prior.workspace(gpu, nz, h, w);
    let yd = gpu.upload(&interleave(y.iter().copied()));
    let supp = gpu.upload(&support.iter().map(|&m| m as u8 as f32).collect::<Vec<_>>());
    let aty = gpu.zeros(2 * npix);
    let x = gpu.zeros(2 * npix);
    let z = gpu.zeros(2 * npix);
    let rhs = gpu.zeros(2 * npix);
    let d = gpu.zeros(2 * npix);
    let ones = gpu.upload(&vec![1.0f32; nz * hw]);
    op.adjoint(gpu, &yd, &aty);
    cg(
        gpu,
        &op,
        &red,
        &cgb,
        &aty,
        &x,
        0.0,
        sched.tolerance,
        sched.init_iterations,
    );

    let copies_before_loop = gpu.copies();
    let (cp, dp) = grid(npix);
    let planar = |x: &crate::DBuf<f32>| {
        kernels::to_planar::launch(
            gpu.client(),
            cp.clone(),
            dp,
            x.arg(),
            ws.input().arg(),
            hw as u32,
            nz as u32,
        );
    };
    let mut iterations = 0;
    for &(sigma, rho) in &sched.levels {
        for _ in 0..sched.inner {
            planar(&x);
            prior.energy_grad(gpu, &ws, sigma);
            kernels::prior_step::launch(
                gpu.client(),
                cp.clone(),
                dp,
                x.arg(),
                ws.grad().arg(),
                supp.arg(),
                z.arg(),
                sched.prior_weight * sigma * sigma,
                hw as u32,
                nz as u32,
            );
            // rhs = Aᴴy − AᴴA z; (AᴴA + ρI) d = rhs; x = z + d.
            op.normal(gpu, &z, 0.0, &rhs);
            axpby(gpu, 1.0, &aty, -1.0, &rhs);
            cg(
                gpu,
                &op,
                &red,
                &cgb,
                &rhs,
                &d,
                rho,
                sched.tolerance,
                sched.cg_iterations,
            );
            gpu.copy(&z, &x);
            axpby(gpu, 1.0, &d, 1.0, &x);
            iterations += 1;
        }
    }
    let sigma_final = sched.levels.last().map(|l| l.0).unwrap_or(1.0);
    planar(&x);
    prior.energy_grad(gpu, &ws, sigma_final);
    red.dot(gpu, ws.density(), &ones, slot::OUT);
    let copies_after_loop = gpu.copies();
    let xs = gpu.download(&x);
    let scal = red.read(gpu);
    let img = Array3::from_shape_fn((nz, h, w), |(a, b, c)| {
        let i = 2 * ((a * h + b) * w + c);
        C32::new(xs[i], xs[i + 1])
    });
    Ok((
        img,
        Report {
            iterations,
            energy: scal[slot::OUT as usize] as f64,
            copies_before_loop,
            copies_after_loop,
        },
    ))
}
