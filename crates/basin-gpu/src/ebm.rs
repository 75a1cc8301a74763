//! The EBM reconstruction on the device, step for step the CPU solver of `basin_recon::ebm`:
//! CG-SENSE initialisation, then for every (σ, ρ) of the schedule `inner` times a Tweedie prior
//! step z = supp·(x − λσ²∇ₓE(x; σ)) followed by data consistency (AᴴA + ρI) d = Aᴴy − AᴴA z by
//! CG, x = z + d. Everything the loop touches lives on the device; the host only launches.
//! A batch of slices runs as one launch sequence, each slice its own problem.

use crate::device::{grid, Gpu, GpuError};
use crate::kernels;
use crate::prior::GpuPrior;
use crate::sense::{axpby, cg, interleave, slot, CgBuffers, PerSlice, Reducer, SenseGpu};
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
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Prior steps taken (every slice takes the same number).
    pub iterations: usize,
    /// Energy of each slice's final image at its last σ.
    pub energies: Vec<f64>,
    /// Host↔device copies made before the iteration loop started.
    pub copies_before_loop: usize,
    /// Host↔device copies made when the loop had ended (before reading the result).
    pub copies_after_loop: usize,
}

/// Device memory [`run`] allocates per slice of `nc` coils and `h`×`w` pixels, in bytes: (all
/// its buffers, the largest single one).
pub fn bytes_per_slice(prior: &GpuPrior, nc: usize, h: usize, w: usize) -> (usize, usize) {
    let hw = h * w;
    let (pt, pl) = prior.floats_per_image(h, w);
    // Maps, k-space, the operator's k-space buffer and the FFT's scratch (2·nc planes each);
    // mask, support, ones; Aᴴy, x, z, rhs, d and CG's r, p, Ap (2 planes each).
    let solver = 8 * nc * hw + 3 * hw + 16 * hw;
    (4 * (pt + solver), 4 * pl.max(2 * nc * hw))
}

/// Slices per [`run`] for slices of `nc` coils and `h`×`w`: as many as fit in `budget` bytes
/// with no buffer past the device's largest allocation or 2³¹ values (the kernels index with
/// 32-bit integers, complex values as two), at least one.
pub fn batch_capacity(
    gpu: &Gpu,
    prior: &GpuPrior,
    nc: usize,
    h: usize,
    w: usize,
    budget: u64,
) -> usize {
    let (total, largest) = bytes_per_slice(prior, nc, h, w);
    let by_budget = budget / total.max(1) as u64;
    let by_buffer = gpu.max_buffer_bytes().min(1 << 33) / largest.max(1) as u64;
    by_budget.min(by_buffer).max(1) as usize
}

/// The schedules of a batch must agree in everything but the noise levels: the loop's shape
/// (levels, inner steps, CG iterations, tolerance) is one for all slices.
fn check_schedules(scheds: &[Schedule], nz: usize) -> Result<(), GpuError> {
    let Some(first) = scheds.first() else {
        return Err(GpuError::Shape("EBM: no schedule".into()));
    };
    if scheds.len() != nz {
        return Err(GpuError::Shape(format!(
            "EBM: {} schedules for {nz} slices",
            scheds.len()
        )));
    }
    let same = |s: &Schedule| {
        s.levels.len() == first.levels.len()
            && s.inner == first.inner
            && s.cg_iterations == first.cg_iterations
            && s.init_iterations == first.init_iterations
            && s.tolerance == first.tolerance
    };
    if !scheds.iter().all(same) {
        return Err(GpuError::Shape(
            "EBM: the slices of a batch need schedules of one shape (levels, inner steps, CG iterations, tolerance)"
                .into(),
        ));
    }
    Ok(())
}

/// EBM reconstruction of a batch of slices in one launch sequence: k-space `y` `[c, z, y, x]`
/// (each slice already scaled), maps `[c, z, y, x]`, mask `[z, y, x]` and support `[z, y, x]`,
/// slice z with its own schedule `scheds[z]` (its σ, ρ and λ; the loop's shape shared). Each
/// slice is its own problem — its own CG scalars and stopping rule, its own noise levels — so
/// slice z comes out as it would from a batch of one. With `three_d` (3D encoding) the volume
/// is one problem instead: the FFT runs along z too, one schedule (`scheds` of length 1), the
/// prior on every slice. Returns the images in the scaled units.
#[allow(clippy::too_many_arguments)]
pub fn run(
    gpu: &Gpu,
    prior: &GpuPrior,
    maps: &Array4<C32>,
    mask: &Array3<bool>,
    support: &Array3<bool>,
    y: &Array4<C32>,
    scheds: &[Schedule],
    three_d: bool,
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
    let op = if three_d {
        SenseGpu::new_3d(gpu, maps, mask)?
    } else {
        SenseGpu::new(gpu, maps, mask)?
    };
    // Problems (their CG scalars, ρ, energy) and images (the prior's σ, λσ²): slice z is
    // problem z with 2D encoding; with 3D every slice belongs to the one problem.
    let problems = op.slices();
    check_schedules(scheds, problems)?;
    let of_image = |z: usize| &scheds[if three_d { 0 } else { z }];
    let sched = &scheds[0];
    let nlev = sched.levels.len();
    let npix = op.npix();
    let hw = h * w;
    let red = Reducer::new(gpu, problems);
    let cgb = CgBuffers::new(gpu, npix);
    let ws = prior.workspace(gpu, nz, h, w);
    // Per level l and slice z: σ (the prior's conditioning), ρ and λσ² — tables uploaded once;
    // a step selects its row by offset. The last row of the conditioning is the final σ.
    let sigma_at = |l: usize| {
        (0..nz)
            .map(|z| of_image(z).levels[l].0)
            .collect::<Vec<f32>>()
    };
    let mut sigmas: Vec<Vec<f32>> = (0..nlev).map(sigma_at).collect();
    sigmas.push(
        (0..nz)
            .map(|z| of_image(z).levels.last().map_or(1.0, |l| l.0))
            .collect(),
    );
    let cond = prior.conditioning(gpu, &sigmas);
    let rho_tab = gpu.upload(
        &(0..nlev)
            .flat_map(|l| scheds.iter().map(move |s| s.levels[l].1))
            .collect::<Vec<f32>>(),
    );
    let s2_tab = gpu.upload(
        &(0..nlev)
            .flat_map(|l| {
                (0..nz).map(move |z| {
                    let s = of_image(z);
                    s.prior_weight * s.levels[l].0 * s.levels[l].0
                })
            })
            .collect::<Vec<f32>>(),
    );
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
        op.no_rho(),
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
    for l in 0..nlev {
        let off = (l * nz) as u32;
        let rho = PerSlice {
            buf: &rho_tab,
            off: (l * problems) as u32,
        };
        for _ in 0..sched.inner {
            planar(&x);
            prior.energy_grad(gpu, &ws, &cond, l);
            kernels::prior_step::launch(
                gpu.client(),
                cp.clone(),
                dp,
                x.arg(),
                ws.grad().arg(),
                supp.arg(),
                z.arg(),
                s2_tab.arg(),
                off,
                hw as u32,
                nz as u32,
            );
            // rhs = Aᴴy − AᴴA z; (AᴴA + ρI) d = rhs; x = z + d.
            op.normal(gpu, &z, op.no_rho(), &rhs);
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
    planar(&x);
    prior.energy_grad(gpu, &ws, &cond, nlev);
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
            energies: red
                .per_slice(&scal, slot::OUT)
                .into_iter()
                .map(f64::from)
                .collect(),
            copies_before_loop,
            copies_after_loop,
        },
    ))
}
