#!/usr/bin/env bash
# The GPU measurement of issue 6, in two halves because the device machine reaches no network
# (no crates, no CUDA LLVM bundle):
#
#   bash benches/gpu/run.sh build   # here: release-build gpu-bench and the GPU parity tests into
#                                   # benches/gpu/bin/ (ignored by git; carry it to the device)
#   bash benches/gpu/run.sh run     # on the device: parity on the hardware adapter at full size,
#                                   # then copy bandwidth (the ceiling), prior gradient 256²/320²,
#                                   # batched FFTs 16×320²/16×368², EBM per slice and per
#                                   # 160-slice volume, with GB/s and the fraction of the ceiling
#
# The device runs the wgpu runtime on NVIDIA's Vulkan driver. The `cuda` feature of basin-gpu
# builds cubecl's CUDA runtime, whose build script downloads an LLVM bundle from the internet:
# build with `--features cuda` only where that is reachable.
# With the device tool: run(command="bash benches/gpu/run.sh run", carry=["benches/gpu/bin", ".gl"]);
# .gl holds the Vulkan loader packages as the device README describes.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=benches/gpu/bin
case "${1:-}" in
build)
  mkdir -p "$bin"
  cargo build --release -p basin-benches --bin gpu-bench
  cp target/release/gpu-bench "$bin/"
  for t in "basin-gpu parity" "basin-recon ebm_gpu"; do
    set -- $t
    exe=$(cargo test --release -p "$1" --test "$2" --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))/\1/p' | tail -1)
    cp "$exe" "$bin/$2"
  done
  # Line tables make each binary ~150 MB and the device carries at most 64 MiB in all:
  # stripped and gzipped they are ~8 MB each.
  strip "$bin"/gpu-bench "$bin"/parity "$bin"/ebm_gpu
  gzip -f "$bin"/gpu-bench "$bin"/parity "$bin"/ebm_gpu
  ls -l "$bin"
  ;;
run)
  out="${OUT:-target}"
  mkdir -p "$out"
  for f in "$bin"/*.gz; do [ -e "$f" ] && gunzip -f "$f" && chmod +x "${f%.gz}"; done
  if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
  nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv || true
  export BASIN_GPU_HARDWARE=1
  { "$bin/parity" --nocapture; "$bin/ebm_gpu" --nocapture; } 2>&1 | tee "$out/gpu.log" | grep -E "rel|NMSE|test result|device"
  "$bin/gpu-bench" 2>&1 | tee -a "$out/gpu.log" | tail -20
  ;;
*)
  echo "usage: bash benches/gpu/run.sh build|run" >&2
  exit 2
  ;;
esac
