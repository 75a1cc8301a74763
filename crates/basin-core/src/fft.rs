//! Centered, orthonormal FFTs over any set of axes of an n-dimensional complex array.
//!
//! `fftc` computes fftshift ∘ FFT ∘ ifftshift along each requested axis and scales by 1/√N, so
//! the transform is unitary and the DC sample sits at index N/2. Plans come from one shared
//! rustfft planner (planned once per size, reused); lanes are processed in parallel with rayon.

use crate::C32;
use ndarray::{ArrayViewMut, Axis, Dimension, Zip};
use rustfft::{Fft, FftPlanner};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Transform direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Image → k-space (negative exponent).
    Forward,
    /// k-space → image (positive exponent).
    Inverse,
}

type Plan = Arc<dyn Fft<f32>>;
type PlanCache = Mutex<(FftPlanner<f32>, HashMap<(usize, Direction), Plan>)>;

fn plan(n: usize, dir: Direction) -> Plan {
    static PLANS: OnceLock<PlanCache> = OnceLock::new();
    let cell = PLANS.get_or_init(|| Mutex::new((FftPlanner::new(), HashMap::new())));
    let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
    let (planner, cache) = &mut *guard;
    cache
        .entry((n, dir))
        .or_insert_with(|| match dir {
            Direction::Forward => planner.plan_fft_forward(n),
            Direction::Inverse => planner.plan_fft_inverse(n),
        })
        .clone()
}

thread_local! {
    static SCRATCH: RefCell<(Vec<C32>, Vec<C32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Centered orthonormal transform of `a` along `axis` in direction `dir`.
pub fn fftc_axis<D: Dimension>(mut a: ArrayViewMut<'_, C32, D>, axis: usize, dir: Direction) {
    let n = a.len_of(Axis(axis));
    if n <= 1 || a.is_empty() {
        return;
    }
    let p = plan(n, dir);
    let scale = 1.0 / (n as f32).sqrt();
    let half = n / 2;
    let lanes = a.lanes_mut(Axis(axis));
    Zip::from(lanes).par_for_each(|mut lane| {
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (buf, scratch) = &mut *guard;
            buf.resize(n, C32::new(0.0, 0.0));
            let need = p.get_inplace_scratch_len();
            if scratch.len() < need {
                scratch.resize(need, C32::new(0.0, 0.0));
            }
            // ifftshift: buf[i] = lane[(i + half) % n]
            for i in 0..n {
                buf[i] = lane[(i + half) % n];
            }
            p.process_with_scratch(buf, &mut scratch[..need]);
            // fftshift: lane[(i + half) % n] = buf[i]... for odd n fftshift shifts by n/2 the
            // other way: lane[j] = buf[(j + n - half) % n] with the ceil shift (n - half).
            let shift = n - half;
            for j in 0..n {
                lane[j] = buf[(j + shift) % n] * scale;
            }
        });
    });
}

/// Centered orthonormal forward FFT along each of `axes`.
pub fn fftc<D: Dimension>(mut a: ArrayViewMut<'_, C32, D>, axes: &[usize]) {
    for &ax in axes {
        fftc_axis(a.view_mut(), ax, Direction::Forward);
    }
}

/// Centered orthonormal inverse FFT along each of `axes`.
pub fn ifftc<D: Dimension>(mut a: ArrayViewMut<'_, C32, D>, axes: &[usize]) {
    for &ax in axes {
        fftc_axis(a.view_mut(), ax, Direction::Inverse);
    }
}

/// The last `k` axes of an array with `ndim` axes (e.g. the 2 in-plane axes of `[c, z, y, x]`).
pub fn last_axes(ndim: usize, k: usize) -> Vec<usize> {
    (ndim.saturating_sub(k)..ndim).collect()
}
