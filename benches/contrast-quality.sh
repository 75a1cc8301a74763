#!/usr/bin/env bash
# Reconstruction quality on the second validation set of issue 19: subject S1 (DATA.md:
# validation only) as T2-weighted FSE, PD-weighted FSE and FLAIR synthesised from its real T1 by
# `basin phantom --suite --anatomy NAME=IMAGE:SLICES:CONTRAST` (basin_phantom::contrast, 3 T),
# axial slices 135…175 (5 per contrast, the slices of the realistic benchmark), through the
# realistic simulator (8 birdcage coils, correlated coil noise with a noise scan, SNR 50) at 4×
# (equispaced, 8 % ACS) and 8× (random, 4 % ACS); the shipped protocols and BART (`ecalib` +
# `pics -l1`, λ tuned on MNI152 in benches/RESULTS.md) through `basin compare`. The lesion
# copies of the suite are left out (--cases). Writes $OUT (default target/contrast-quality/):
# the suite and a report per acceleration (summary.md holds the table and the paired tests).
#
# Usage: bash benches/contrast-quality.sh   (after `bash .ci/install-deps`; builds basin in release;
# about 10 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash benches/fetch-s1.sh >/dev/null
cargo build --release -p basin-cli --quiet
BASIN="$PWD/target/release/basin"
OUT=${OUT:-target/contrast-quality}
S1=target/data/S1_raw.nii.gz
rm -rf "$OUT" && mkdir -p "$OUT"
"$BASIN" phantom --suite "$OUT/suite" --seed 1 -q \
  --anatomy "s1t2=$S1:135-175/10:t2" \
  --anatomy "s1pd=$S1:135-175/10:pd" \
  --anatomy "s1flair=$S1:135-175/10:flair"
for r in 4 8; do
  BASIN="$BASIN" "$BASIN" compare "$OUT/suite" --cases "s1*-*_${r}x" --backend cpu -q \
    -p brain-2d-ebm,sense,cs-l1-wavelet,cs-tv \
    --tool bart="/usr/bin/python3 $PWD/benches/bart-pics.py {in} {out}" \
    -o "$OUT/report-${r}x"
done
