#!/usr/bin/env bash
# Installs what the tests need, checks formatting and lints, and runs every test of the
# workspace (unit, integration and end-to-end against h5py, nibabel, the ISMRMRD generator and BART).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The library, the server and the binary also build CPU-only (no cubecl, no wgpu).
cargo clippy -p basin-recon -p basin-server -p basin-cli --no-default-features --all-targets --quiet -- -D warnings
cargo test --workspace --no-fail-fast 2>&1
