//! Fuzzing the protocol parser (issue 23): mutated shipped protocols (bytes, and huge, negative,
//! NaN or infinite numbers in every value) must parse to a valid protocol or give an error —
//! never panic, never pass validation with values the solvers cannot run. Cases:
//! `BASIN_FUZZ_CASES` (CI default below; the long run is in benches/RESULTS.md).

use basin_core::fuzz::{cases, mutate, run, CappedAlloc};
use basin_recon::protocol::{Protocol, BUILTIN};

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc::new(2 << 30);

const NUMBERS: [&str; 10] = [
    "0",
    "-1",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "18446744073709551615",
    "4294967296",
    "0.5",
];

#[test]
fn fuzz_protocol_toml() {
    run(
        "protocol toml",
        cases(30_000),
        4,
        |rng| {
            let (_, text) = BUILTIN[(rng.next_u64() % BUILTIN.len() as u64) as usize];
            if rng.next_u64() % 2 == 0 {
                String::from_utf8_lossy(&mutate(text.as_bytes(), rng)).to_string()
            } else {
                // Replace one value of a `key = value` line by an extreme number.
                let lines: Vec<&str> = text.lines().collect();
                let i = (rng.next_u64() % lines.len() as u64) as usize;
                let n = NUMBERS[(rng.next_u64() % NUMBERS.len() as u64) as usize];
                lines
                    .iter()
                    .enumerate()
                    .map(|(j, l)| match l.split_once('=') {
                        Some((k, _)) if j == i && !l.trim_start().starts_with('#') => {
                            format!("{k}= {n}")
                        }
                        _ => l.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        },
        |text| {
            if let Ok(p) = Protocol::from_toml(text, "fuzz") {
                // What validates must round-trip and validate again.
                let again = toml::to_string(&p).expect("a valid protocol serialises");
                Protocol::from_toml(&again, "fuzz again").expect("and parses again");
            }
        },
    );
}
