#!/usr/bin/env bash
# One run on a machine with an NVIDIA GPU (the device tool's H200): build with CUDA, check parity
# at full size against the CPU path, then time the kernels (benches/src/bin/gpu_bench.rs).
# Usage: bash benches/gpu/run.sh   (writes the log to $OUT/gpu.log when $OUT is set)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-target}"
mkdir -p "$out"
export CARGO_TERM_COLOR=never
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv || true
# Parity on the hardware adapter: the same tests CI runs on lavapipe, plus the full EBM.
BASIN_GPU_HARDWARE=1 cargo test --release -p basin-gpu -p basin-recon --features basin-gpu/cuda \
  --test parity --test ebm_gpu -- --nocapture 2>&1 | tee "$out/gpu.log" | grep -E "rel|NMSE|test result|device"
cargo run --release -p basin-benches --features cuda --bin gpu-bench 2>&1 | tee -a "$out/gpu.log" | tail -20
