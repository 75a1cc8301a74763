#!/usr/bin/env bash
# Issue 22's throughput check: N 256² 8-coil slices (brain phantom, 4×) with the default protocol,
# as one `basin batch` process against N separate `basin recon` processes, same binary, same
# machine, one after the other (then once more in the other order). Prints wall times and the
# ratio. Usage: bash benches/batch-throughput.sh [N] [BACKEND] [JOBS] (default 20, auto, 1);
# needs a release build (cargo build --release -p basin-cli). With JOBS 1 the outputs must be
# byte-identical to `basin recon`'s; with more, each row runs on cores/JOBS threads and agrees to
# float rounding (nibabel: largest difference ≤ 1e-4 of the image's maximum, printed).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20}"
backend="${2:-auto}"
jobs="${3:-1}"
basin="$PWD/target/release/basin"
[ -x "$basin" ] || { echo "build first: cargo build --release -p basin-cli" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "input,output" > "$dir/m.csv"
for i in $(seq 1 "$n"); do
  "$basin" phantom --kind brain --matrix 256 --coils 8 --accel 4 --center-fraction 0.08 \
    --mask equispaced --noise 0.0005 --seed "$i" -o "$dir/s$i.h5" 2>/dev/null
  echo "s$i.h5,batch/s$i.nii.gz" >> "$dir/m.csv"
done
now() { date +%s.%N; }
run_batch() {
  rm -rf "$dir/batch"
  local t0; t0=$(now)
  "$basin" batch "$dir/m.csv" --backend "$backend" --jobs "$jobs" -q
  awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }' 
}
run_separate() {
  rm -rf "$dir/sep"; mkdir -p "$dir/sep"
  local t0; t0=$(now)
  for i in $(seq 1 "$n"); do
    "$basin" recon "$dir/s$i.h5" -o "$dir/sep/s$i.nii.gz" --backend "$backend" -q
  done
  awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }' 
}
b1=$(run_batch); s1=$(run_separate); s2=$(run_separate); b2=$(run_batch)
if [ "$jobs" = 1 ]; then
  for i in $(seq 1 "$n"); do
    cmp -s "$dir/batch/s$i.nii.gz" "$dir/sep/s$i.nii.gz" || { echo "s$i: batch and recon outputs differ" >&2; exit 1; }
  done
else
  /usr/bin/python3 - "$dir" "$n" <<'PY'
import sys, nibabel as nib, numpy as np
d, n = sys.argv[1], int(sys.argv[2])
worst = 0.0
for i in range(1, n + 1):
    a = np.asarray(nib.load(f"{d}/batch/s{i}.nii.gz").dataobj, dtype=np.float64)
    b = np.asarray(nib.load(f"{d}/sep/s{i}.nii.gz").dataobj, dtype=np.float64)
    worst = max(worst, float(np.abs(a - b).max() / np.abs(b).max()))
print(f"batch vs recon outputs: largest difference {worst:.1e} of the image maximum")
sys.exit(0 if worst <= 1e-4 else 1)
PY
fi
echo "N=$n backend=$backend jobs=$jobs device: $("$basin" recon "$dir/s1.h5" -o "$dir/probe.nii" --backend "$backend" 2>&1 | grep '^device' || true)"
echo "basin batch (1 process):   $b1 s, $b2 s"
echo "basin recon ($n processes): $s1 s, $s2 s"
awk -v s="$s1" -v t="$s2" -v b="$b1" -v c="$b2" 'BEGIN { printf "ratio separate / batch: %.3f\n", (s + t) / (b + c) }' 
