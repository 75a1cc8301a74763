//! An estimate of the peak resident memory of a reconstruction, so that a run past a memory
//! budget (`basin recon --max-memory`) is refused before its work instead of being killed by
//! the kernel half way (a cluster node's limit, a workstation's swap).
//!
//! The model is empirical, fitted to peak resident sizes measured with `/usr/bin/time -f %M`
//! (benches/RESULTS.md, "Memory"), and checked against other cases by `tests/tests/memory.rs`:
//! a base (binary, allocator, HDF5, threads), what is held for the whole run (every bucket's
//! k-space, calibration data, coil maps and result) and the largest working set of one bucket
//! — coil-map estimation (ESPIRiT's per-pixel coil matrices grow as coils²) or the solver
//! (the EBM's pyramid activations, one chain per thread when sampling the posterior),
//! whichever is larger, since one is freed before the other starts — times a margin of 25 %.
//! Reading comes first and is bounded separately, from the file alone ([`read_estimate`]): a
//! file with many more acquisitions than its k-space holds (averages, repeated lines) peaks
//! while it is read.

use crate::protocol::{Protocol, Solver};
use crate::ReconOptions;
use basin_mrd::KSpace;

/// Resident memory of the process before any data (measured 27–30 MB for the smallest runs).
const BASE: u64 = 32 << 20;

/// The estimated peak resident bytes of reading the k-space file `path` (before reading it):
/// the base plus [`basin_mrd::read_memory_estimate`].
pub fn read_estimate(
    path: &std::path::Path,
    group: Option<&str>,
) -> Result<u64, basin_mrd::MrdError> {
    Ok(BASE.saturating_add(basin_mrd::read_memory_estimate(path, group)?))
}

/// The estimated peak resident bytes of reconstructing `kspace` under `protocol`.
pub fn estimate(protocol: &Protocol, kspace: &KSpace, options: &ReconOptions) -> u64 {
    let threads = rayon::current_num_threads() as u64;
    let mut held = 0u64;
    let mut work = 0u64;
    for b in &kspace.buckets {
        let (nc, nz, ny, nx) = b.data.dim();
        let (nc, n) = (nc as u64, (nz * ny * nx) as u64);
        // k-space, calibration data and maps (8 bytes a complex sample per coil), the image.
        held = held.saturating_add((24 * nc + 16) * n);
        let w = match &protocol.solver {
            Solver::ZeroFilled => 16 * nc * n,
            solver => {
                let maps = (8 * nc * nc + 82 * nc) * n;
                let solve = match solver {
                    Solver::Ebm(_) if options.samples > 0 => {
                        let chains = threads.min(options.samples as u64).max(1);
                        chains * ((16 << 20) + 3900 * n) + 16 * options.samples as u64 * n
                    }
                    Solver::Ebm(_) => (16 << 20) + 2600 * n + 24 * nc * n,
                    _ => 32 * nc * n,
                };
                maps.max(solve)
            }
        };
        work = work.max(w);
    }
    BASE.saturating_add(held).saturating_add(work) / 4 * 5
}

/// Parses a memory size: bytes, or a number with K, M, G or T (powers of 1024; "GiB", "GB"
/// and "g" read the same).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 8G, 512M, 1073741824)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.trim_end_matches("ib").trim_end_matches('b');
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown unit (K, M, G or T)")),
    };
    let bytes = v * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{s:?} is not a positive size"));
    }
    Ok(bytes as u64)
}

/// Bytes as "1.5 GiB" / "340 MiB".
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("8G").unwrap(), 8 << 30);
        assert_eq!(parse_size("8GiB").unwrap(), 8 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        for bad in ["", "G", "-1G", "8X", "0", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human(340 << 20), "340 MiB");
    }
}
