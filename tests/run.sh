#!/usr/bin/env bash
# Installs what the tests need, checks formatting and lints, and runs every test of the
# workspace (unit, integration and end-to-end against h5py, nibabel, the ISMRMRD generator and BART).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps
cargo fmt --all -- --check
# Clippy lints the workspace's crates inside the test build itself (clippy-driver compiles them,
# as `cargo clippy` does for a check): the dependencies are compiled once, for the tests, instead
# of once more in check mode for a separate `cargo clippy` (≈ 10 min of a 2-core CI machine).
# `-D warnings` reaches our crates only (cargo caps lints of registry dependencies).
# Same result as `cargo clippy --workspace --all-targets -- -D warnings`.
export RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"
# The library, the server and the binary also build CPU-only (no cubecl, no wgpu). First, so
# that the test build below leaves the full (GPU-enabled) `basin` in target/debug.
cargo build -p basin-recon -p basin-server -p basin-cli --no-default-features --quiet
cargo test --workspace --all-targets --no-run --quiet
cargo test --workspace --no-fail-fast 2>&1
