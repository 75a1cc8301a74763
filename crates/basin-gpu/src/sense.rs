//! SENSE on the device (the operator of `basin_core::linop::Sense` for 2D encoding), device
//! reductions and the CG solver of `basin_recon::solvers::Cg`, step for step.
//!
//! A batch of slices is one operator whose slices (the z axis) are independent problems: the
//! operator is block diagonal, every reduction is per slice ([`Reducer`] keeps one set of
//! scalar slots per slice) and [`cg`] runs one CG per slice with its own α, β, ρ and stopping
//! rule — the iterates of solving each slice alone.

use crate::device::{grid, DBuf, Gpu, GpuError};
use crate::fft::Fft2;
use crate::kernels;
use basin_core::C32;
use ndarray::{Array3, Array4};

/// Slots of the device scalar buffer used by CG (see `kernels::cg_start`).
pub mod slot {
    /// ‖r‖² of the current residual.
    pub const RR: u32 = 0;
    /// ‖b‖².
    pub const RR0: u32 = 1;
    /// pᴴ(AᴴA + ρ)p.
    pub const PAP: u32 = 2;
    /// pᴴp.
    pub const PP: u32 = 3;
    /// α.
    pub const ALPHA: u32 = 4;
    /// ‖r‖² after the step.
    pub const RR_NEW: u32 = 5;
    /// β.
    pub const BETA: u32 = 6;
    /// 1 while CG runs.
    pub const RUNNING: u32 = 7;
    /// A free slot for results (energies).
    pub const OUT: u32 = 8;
    /// Number of slots.
    pub const N: usize = 9;
}

/// Cubes of the first reduction pass.
const PARTS: usize = 256;

/// Device reductions over the slices of a batch: partial sums per cube, then one cube per
/// slice. Slice z's scalars are `scal[z · slot::N ..][..slot::N]`.
pub struct Reducer {
    partial: DBuf<f32>,
    nseg: usize,
    /// The scalar slots (see [`slot`]), [`slot::N`] per slice.
    pub scal: DBuf<f32>,
}

impl Reducer {
    /// Buffers for the partial sums and the scalar slots of `nseg` slices.
    pub fn new(gpu: &Gpu, nseg: usize) -> Self {
        let nseg = nseg.max(1);
        Reducer {
            partial: gpu.zeros(PARTS * nseg),
            nseg,
            scal: gpu.zeros(slot::N * nseg),
        }
    }

    /// Slices reduced separately.
    pub fn segments(&self) -> usize {
        self.nseg
    }

    /// For every slice z, scal[z, slot] = Σ a·b over slice z's f32 values (Re⟨a, b⟩ for complex
    /// arrays); the arrays are the slices one after the other, equally long. A slice's sum is
    /// taken in the same order whatever the batch (the same cubes, the same tree).
    pub fn dot(&self, gpu: &Gpu, a: &DBuf<f32>, b: &DBuf<f32>, slot: u32) {
        let seg = a.len() / self.nseg;
        debug_assert_eq!(seg * self.nseg, a.len());
        let cubes = seg.div_ceil(kernels::BLOCK as usize).clamp(1, PARTS) as u32;
        kernels::dot_partial::launch(
            gpu.client(),
            cubecl::prelude::CubeCount::Static(cubes, self.nseg as u32, 1),
            cubecl::prelude::CubeDim::new_1d(kernels::BLOCK),
            a.arg(),
            b.arg(),
            self.partial.arg(),
            seg as u32,
            kernels::BLOCK,
        );
        kernels::sum_partials::launch(
            gpu.client(),
            cubecl::prelude::CubeCount::Static(1, self.nseg as u32, 1),
            cubecl::prelude::CubeDim::new_1d(kernels::BLOCK),
            self.partial.arg(),
            self.scal.arg(),
            cubes,
            slot,
            slot::N as u32,
            kernels::BLOCK,
        );
    }

    /// Reads the scalar slots (one copy).
    pub fn read(&self, gpu: &Gpu) -> Vec<f32> {
        gpu.download(&self.scal)
    }

    /// Slot `slot` of every slice, from what [`Reducer::read`] returned.
    pub fn per_slice(&self, scal: &[f32], slot: u32) -> Vec<f32> {
        (0..self.nseg)
            .map(|z| scal[z * slot::N + slot as usize])
            .collect()
    }
}

/// One value per slice on the device: slice z's is `buf[off + z]` (a row of a table built
/// before the iteration, so choosing it costs no copy).
#[derive(Clone, Copy)]
pub struct PerSlice<'a> {
    /// The table.
    pub buf: &'a DBuf<f32>,
    /// Where this row starts.
    pub off: u32,
}

/// y = a·x + b·y.
pub fn axpby(gpu: &Gpu, a: f32, x: &DBuf<f32>, b: f32, y: &DBuf<f32>) {
    let (c, d) = grid(x.len());
    kernels::axpby::launch(gpu.client(), c, d, x.arg(), y.arg(), a, b, x.len() as u32);
}

/// SENSE on the device: maps `[c, z, y, x]`, a mask `[z, y, x]` shared by the coils. With 2D
/// encoding ([`SenseGpu::new`]) each z is its own slice, so a batch of slices is one operator
/// of as many independent problems; with 3D encoding ([`SenseGpu::new_3d`]) the FFT runs along
/// z too and the volume is one problem.
pub struct SenseGpu {
    maps: DBuf<f32>,
    mask: DBuf<f32>,
    ncoil: usize,
    problems: usize,
    per_problem: usize,
    npix: usize,
    fft: Fft2,
    k: DBuf<f32>,
    zero: DBuf<f32>,
}

/// Interleaved f32 values of complex data.
pub fn interleave(a: impl IntoIterator<Item = C32>) -> Vec<f32> {
    a.into_iter().flat_map(|c| [c.re, c.im]).collect()
}

impl SenseGpu {
    /// Uploads the maps and the mask and plans the FFT (2D encoding: slice by slice).
    pub fn new(gpu: &Gpu, maps: &Array4<C32>, mask: &Array3<bool>) -> Result<Self, GpuError> {
        Self::build(gpu, maps, mask, false)
    }

    /// As [`SenseGpu::new`] for 3D encoding: the FFT over (z, y, x), one problem.
    pub fn new_3d(gpu: &Gpu, maps: &Array4<C32>, mask: &Array3<bool>) -> Result<Self, GpuError> {
        Self::build(gpu, maps, mask, true)
    }

    fn build(
        gpu: &Gpu,
        maps: &Array4<C32>,
        mask: &Array3<bool>,
        three_d: bool,
    ) -> Result<Self, GpuError> {
        let (nc, nz, h, w) = maps.dim();
        if mask.dim() != (nz, h, w) {
            return Err(GpuError::Shape(format!(
                "SENSE mask {:?} does not fit maps {:?}",
                mask.shape(),
                maps.shape()
            )));
        }
        let npix = nz * h * w;
        Ok(SenseGpu {
            maps: gpu.upload(&interleave(maps.iter().copied())),
            mask: gpu.upload(&mask.iter().map(|&m| m as u8 as f32).collect::<Vec<_>>()),
            ncoil: nc,
            problems: if three_d { 1 } else { nz },
            per_problem: if three_d { npix } else { h * w },
            npix,
            fft: if three_d {
                Fft2::new_3d(gpu, nc, nz, h, w)
            } else {
                Fft2::new(gpu, nc * nz, h, w)
            },
            k: gpu.zeros(2 * nc * npix),
            // ρ = 0 per problem; also the ignored ρ·v term's v.
            zero: gpu.zeros(if three_d { 1 } else { nz }),
        })
    }

    /// Independent problems of the operator: its slices with 2D encoding, 1 with 3D.
    pub fn slices(&self) -> usize {
        self.problems
    }

    /// ρ = 0 for every slice.
    pub fn no_rho(&self) -> PerSlice<'_> {
        PerSlice {
            buf: &self.zero,
            off: 0,
        }
    }

    /// Pixels of the image domain.
    pub fn npix(&self) -> usize {
        self.npix
    }

    /// Samples of the k-space domain.
    pub fn nsamples(&self) -> usize {
        self.npix * self.ncoil
    }

    /// k = M F S x into `out` (`[c, z, y, x]`).
    pub fn forward(&self, gpu: &Gpu, x: &DBuf<f32>, out: &DBuf<f32>) {
        let (c, d) = grid(self.nsamples());
        kernels::coil_expand::launch(
            gpu.client(),
            c.clone(),
            d,
            x.arg(),
            self.maps.arg(),
            out.arg(),
            self.npix as u32,
            self.ncoil as u32,
        );
        self.fft.run(gpu, out, false);
        kernels::apply_mask::launch(
            gpu.client(),
            c,
            d,
            out.arg(),
            self.mask.arg(),
            self.npix as u32,
            self.ncoil as u32,
        );
    }

    /// out = Sᴴ Fᴴ M y + ρ v, ρ per slice (`v` ignored where ρ = 0). Uses an internal k-space
    /// buffer.
    fn adjoint_into(&self, gpu: &Gpu, rho: PerSlice<'_>, v: &DBuf<f32>, out: &DBuf<f32>) {
        let (c, d) = grid(self.nsamples());
        kernels::apply_mask::launch(
            gpu.client(),
            c,
            d,
            self.k.arg(),
            self.mask.arg(),
            self.npix as u32,
            self.ncoil as u32,
        );
        self.fft.run(gpu, &self.k, true);
        let (c, d) = grid(self.npix);
        kernels::coil_combine::launch(
            gpu.client(),
            c,
            d,
            self.k.arg(),
            self.maps.arg(),
            v.arg(),
            out.arg(),
            self.npix as u32,
            self.ncoil as u32,
            rho.buf.arg(),
            rho.off,
            self.per_problem as u32,
        );
    }

    /// out = Aᴴ y.
    pub fn adjoint(&self, gpu: &Gpu, y: &DBuf<f32>, out: &DBuf<f32>) {
        gpu.copy(y, &self.k);
        self.adjoint_into(gpu, self.no_rho(), &self.zero, out);
    }

    /// out = (AᴴA + ρI) x, slice z with its own ρ.
    pub fn normal(&self, gpu: &Gpu, x: &DBuf<f32>, rho: PerSlice<'_>, out: &DBuf<f32>) {
        self.forward(gpu, x, &self.k);
        self.adjoint_into(gpu, rho, x, out);
    }
}

/// Work buffers of [`cg`] for one image size.
pub struct CgBuffers {
    r: DBuf<f32>,
    p: DBuf<f32>,
    ap: DBuf<f32>,
}

impl CgBuffers {
    /// Buffers for images of `npix` complex pixels.
    pub fn new(gpu: &Gpu, npix: usize) -> Self {
        CgBuffers {
            r: gpu.zeros(2 * npix),
            p: gpu.zeros(2 * npix),
            ap: gpu.zeros(2 * npix),
        }
    }
}

/// (AᴴA + ρI) x = b by CG from x = 0 for every slice at once, each with its own ρ, scalars
/// and stopping rule: at most `iters` iterations, stopping as `basin_recon::solvers::Cg` does
/// (relative residual ≤ `tol`, non-positive curvature, null-space directions) — decided on the
/// device, so nothing is read back. A slice that has stopped takes steps of zero.
#[allow(clippy::too_many_arguments)]
pub fn cg(
    gpu: &Gpu,
    op: &SenseGpu,
    red: &Reducer,
    buf: &CgBuffers,
    b: &DBuf<f32>,
    x: &DBuf<f32>,
    rho: PerSlice<'_>,
    tol: f64,
    iters: usize,
) {
    debug_assert_eq!(red.segments(), op.slices());
    let n = x.len();
    let seg = (n / op.slices()) as u32;
    let nseg = op.slices() as u32;
    let ns = slot::N as u32;
    let (c, d) = grid(n);
    let (cs, ds) = grid(op.slices());
    gpu.fill_zero(x);
    gpu.copy(b, &buf.r);
    gpu.copy(b, &buf.p);
    red.dot(gpu, &buf.r, &buf.r, slot::RR_NEW);
    kernels::cg_start::launch(gpu.client(), cs.clone(), ds, red.scal.arg(), nseg, ns);
    let tol2 = (tol * tol) as f32;
    for _ in 0..iters {
        op.normal(gpu, &buf.p, rho, &buf.ap);
        red.dot(gpu, &buf.p, &buf.ap, slot::PAP);
        red.dot(gpu, &buf.p, &buf.p, slot::PP);
        kernels::cg_alpha::launch(gpu.client(), cs.clone(), ds, red.scal.arg(), nseg, ns);
        kernels::axpy_slot::launch(
            gpu.client(),
            c.clone(),
            d,
            buf.p.arg(),
            x.arg(),
            red.scal.arg(),
            slot::ALPHA,
            1.0,
            n as u32,
            seg,
            ns,
        );
        kernels::axpy_slot::launch(
            gpu.client(),
            c.clone(),
            d,
            buf.ap.arg(),
            buf.r.arg(),
            red.scal.arg(),
            slot::ALPHA,
            -1.0,
            n as u32,
            seg,
            ns,
        );
        red.dot(gpu, &buf.r, &buf.r, slot::RR_NEW);
        kernels::cg_beta::launch(gpu.client(), cs.clone(), ds, red.scal.arg(), tol2, nseg, ns);
        kernels::xpby_slot::launch(
            gpu.client(),
            c.clone(),
            d,
            buf.r.arg(),
            buf.p.arg(),
            red.scal.arg(),
            slot::BETA,
            n as u32,
            seg,
            ns,
        );
    }
}
