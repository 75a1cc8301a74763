//! Centered orthonormal 2D FFT of a batch of complex images on the device — the same transform
//! as `basin_core::fft::fftc` over the last two axes (fftshift ∘ FFT ∘ ifftshift, scaled by
//! 1/√N) for every size: each axis is factored into radices 4, 2, 3, 5, 7 and any remaining
//! primes (or, with [`Fft2::with_max_radix`], 16 and 8 first: fewer passes over the data, more
//! arithmetic per pass), and each factor is one Stockham stage ([`crate::kernels::fft_stage`])
//! with the first stage's ifftshift, the last one's fftshift and 1/√n folded in.

use crate::device::{grid, DBuf, Gpu};
use crate::kernels;

/// The radices of a length-n transform (4s first, then 2, 3, 5, 7, then other primes).
pub fn radices(n: usize) -> Vec<usize> {
    radices_up_to(n, 4)
}

/// The radices of a length-n transform with power-of-two stages of at most `max` points
/// (16, 8, 4, 2 as far as allowed, largest first), then 3, 5, 7, then other primes.
pub fn radices_up_to(mut n: usize, max: usize) -> Vec<usize> {
    let mut f = Vec::new();
    let twos = [16usize, 8, 4, 2]
        .into_iter()
        .filter(move |&p| p <= max.max(2));
    for p in twos.chain([3, 5, 7]) {
        while n.is_multiple_of(p) {
            f.push(p);
            n /= p;
        }
    }
    let mut q = 11;
    while n > 1 {
        while n.is_multiple_of(q) {
            f.push(q);
            n /= q;
        }
        q += 2;
    }
    f
}

/// exp(−2πi t/n) for t in 0..n, interleaved, computed in float64.
fn twiddles(n: usize) -> Vec<f32> {
    (0..n)
        .flat_map(|t| {
            let a = -2.0 * std::f64::consts::PI * t as f64 / n as f64;
            [a.cos() as f32, a.sin() as f32]
        })
        .collect()
}

struct Stage {
    geom: DBuf<u32>,
    shift_in: u32,
    shift_out: u32,
    scale: f32,
    tw: usize,
    threads: usize,
}

/// A planned 2D transform of `batch` images of `h`×`w` (interleaved complex, row-major).
pub struct Fft2 {
    /// Rows of each image.
    pub h: usize,
    /// Columns of each image.
    pub w: usize,
    /// Images (slices) per call.
    pub batch: usize,
    stages: Vec<Stage>,
    /// Passes over the data of one transform (stages along both axes).
    pub passes: usize,
    tables: Vec<DBuf<f32>>,
    scratch: DBuf<f32>,
}

impl Fft2 {
    /// Plans the transform: radices, twiddle tables and stage geometry are uploaded once.
    pub fn new(gpu: &Gpu, batch: usize, h: usize, w: usize) -> Self {
        Self::with_max_radix(gpu, batch, h, w, 4)
    }

    /// [`Fft2::new`] with power-of-two stages of up to `max_radix` points (16: a 256-point
    /// line in two passes instead of four). Radix 4 stays the default until the device bench
    /// measures the larger radices faster.
    pub fn with_max_radix(gpu: &Gpu, batch: usize, h: usize, w: usize, max_radix: usize) -> Self {
        Self::plan(gpu, batch, 1, h, w, max_radix)
    }

    /// A centered orthonormal 3D transform over (z, y, x) of `batch` volumes of `nz` slices of
    /// `h`×`w` (3D encoding): the 2D transform of every slice, then the lines along z.
    pub fn new_3d(gpu: &Gpu, batch: usize, nz: usize, h: usize, w: usize) -> Self {
        Self::plan(gpu, batch, nz, h, w, 4)
    }

    /// `batch` volumes of `nz` slices; with nz = 1 the 2D transform of `batch` images.
    fn plan(gpu: &Gpu, batch: usize, nz: usize, h: usize, w: usize, max_radix: usize) -> Self {
        let planes = batch * nz;
        let mut tables = vec![gpu.upload(&twiddles(w)), gpu.upload(&twiddles(h))];
        let mut stages = Vec::new();
        // (n, lines, lines_inner, line_stride, batch_stride, elem_stride, line_fast, table)
        let mut axes = vec![
            (w, planes * h, planes * h, w, 0, 1, 0, 0usize),
            (h, planes * w, w, 1, h * w, w, 1, 1usize),
        ];
        if nz > 1 {
            // Line (v, p) of volume v at pixel p: elements h·w apart from v·nz·h·w + p.
            tables.push(gpu.upload(&twiddles(nz)));
            axes.push((nz, batch * h * w, h * w, 1, nz * h * w, h * w, 1, 2usize));
        }
        for &(n, lines, inner, ls, bs, es, fast, tw) in &axes {
            let rs = radices_up_to(n, max_radix);
            let mut ns = 1;
            for (i, &p) in rs.iter().enumerate() {
                let first = i == 0;
                let last = i + 1 == rs.len();
                let geom = [n, p, ns, lines, inner, ls, bs, es, fast].map(|v| v as u32);
                stages.push(Stage {
                    geom: gpu.upload(&geom),
                    shift_in: if first { (n / 2) as u32 } else { 0 },
                    shift_out: if last { (n / 2) as u32 } else { 0 },
                    scale: if last {
                        (1.0 / (n as f64).sqrt()) as f32
                    } else {
                        1.0
                    },
                    tw,
                    threads: lines * n,
                });
                ns *= p;
            }
        }
        Fft2 {
            h,
            w,
            batch: planes,
            passes: stages.len(),
            stages,
            tables,
            scratch: gpu.zeros(2 * planes * h * w),
        }
    }

    /// In place: `data` ← fftc (or ifftc when `inverse`) of each image.
    pub fn run(&self, gpu: &Gpu, data: &DBuf<f32>, inverse: bool) {
        assert_eq!(
            data.len(),
            2 * self.batch * self.h * self.w,
            "Fft2::run: buffer size"
        );
        let mut in_data = true;
        for st in &self.stages {
            let (src, dst) = if in_data {
                (data, &self.scratch)
            } else {
                (&self.scratch, data)
            };
            let (c, d) = grid(st.threads);
            kernels::fft_stage::launch(
                gpu.client(),
                c,
                d,
                src.arg(),
                dst.arg(),
                self.tables[st.tw].arg(),
                st.geom.arg(),
                st.shift_in,
                st.shift_out,
                inverse as u32,
                st.scale,
            );
            in_data = !in_data;
        }
        if !in_data {
            gpu.copy(&self.scratch, data);
        }
    }
}
