//! Support for basin's fuzz tests (issue 23): a byte mutator for hostile inputs, a loop that
//! runs a target on many of them and reports the first panic with the case that caused it,
//! and a global allocator that refuses any single allocation past a budget, so a reader that
//! trusts a size from its input fails the test instead of exhausting the machine.
//!
//! The number of cases per target is `BASIN_FUZZ_CASES` (default: the test's own, sized for
//! CI); `BASIN_FUZZ_CASES=1000000 cargo test --release --test fuzz` is the long run.

use crate::rng::Rng;
use std::alloc::{GlobalAlloc, Layout, System};

/// A global allocator that returns null (an allocation error, which aborts the test binary)
/// for any single allocation larger than its budget.
pub struct CappedAlloc {
    budget: usize,
}

impl CappedAlloc {
    /// An allocator refusing single allocations of more than `budget` bytes.
    pub const fn new(budget: usize) -> Self {
        Self { budget }
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged, except that requests
// larger than the budget get null, which GlobalAlloc permits to signal failure.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > self.budget {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller upholds alloc's contract for `layout`, which is passed unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > self.budget {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from System with this layout (every allocation goes through it).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > self.budget {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` and `layout` come from this allocator (System underneath).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Cases to run: `BASIN_FUZZ_CASES` when set, else `default`.
pub fn cases(default: usize) -> usize {
    std::env::var("BASIN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mutates `seed` bytes: 1–8 edits, each a bit flip, a random byte, a deletion, a duplicated
/// run, a truncation, an interesting integer written over 1, 2, 4 or 8 bytes (0, −1, 2³¹,
/// 2³², …), or a run of random decimal digits (huge numbers in text formats).
pub fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    let edits = 1 + (rng.next_u64() % 8) as usize;
    for _ in 0..edits {
        let n = v.len();
        let at = if n == 0 {
            0
        } else {
            (rng.next_u64() % n as u64) as usize
        };
        match rng.next_u64() % 8 {
            0 if n > 0 => v[at] ^= 1 << (rng.next_u64() % 8),
            1 if n > 0 => v[at] = rng.next_u64() as u8,
            2 if n > 0 => {
                let len = (1 + rng.next_u64() % 16).min((n - at) as u64) as usize;
                v.drain(at..at + len);
            }
            3 if n > 0 => {
                let len = (1 + rng.next_u64() % 64).min((n - at) as u64) as usize;
                let run: Vec<u8> = v[at..at + len].to_vec();
                v.splice(at..at, run);
            }
            4 => v.truncate(at),
            5 => {
                const INTERESTING: [u64; 10] = [
                    0,
                    1,
                    u64::MAX,
                    0x7fff,
                    0xffff,
                    0x8000_0000,
                    0xffff_ffff,
                    1 << 32,
                    i64::MAX as u64,
                    1 << 31,
                ];
                let x = INTERESTING[(rng.next_u64() % INTERESTING.len() as u64) as usize];
                let w = [1usize, 2, 4, 8][(rng.next_u64() % 4) as usize].min(n - at.min(n));
                v[at..at + w].copy_from_slice(&x.to_le_bytes()[..w]);
            }
            _ => {
                let len = 1 + (rng.next_u64() % 20) as usize;
                let digits: Vec<u8> = (0..len)
                    .map(|_| b'0' + (rng.next_u64() % 10) as u8)
                    .collect();
                v.splice(at..at, digits);
            }
        }
    }
    v
}

/// Runs `target` on `n` inputs made by `make` from a seeded generator; panics (failing the
/// test) with the target's name, the case number and the input's first bytes at the first
/// case that panics. Returns the number of executions.
pub fn run<I: std::fmt::Debug>(
    name: &str,
    n: usize,
    seed: u64,
    mut make: impl FnMut(&mut Rng) -> I,
    target: impl Fn(&I),
) -> usize {
    let mut rng = Rng::new(seed);
    for i in 0..n {
        let input = make(&mut rng);
        let call = std::panic::AssertUnwindSafe(|| target(&input));
        let t0 = std::time::Instant::now();
        let panicked = std::panic::catch_unwind(call).is_err();
        if t0.elapsed().as_secs_f64() > 2.0 {
            let shown: String = format!("{input:?}").chars().take(400).collect();
            eprintln!(
                "fuzz target {name}: case {i} (seed {seed}) took {:.1} s; input: {shown}",
                t0.elapsed().as_secs_f64()
            );
        }
        if panicked {
            let shown: String = format!("{input:?}").chars().take(2000).collect();
            panic!("fuzz target {name}: case {i} (seed {seed}) panicked; input: {shown}");
        }
    }
    eprintln!("fuzz target {name}: {n} executions, no panic");
    n
}
