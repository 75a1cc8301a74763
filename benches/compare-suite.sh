#!/usr/bin/env bash
# Issue 21's acceptance run: `basin compare` on a `basin phantom --suite` dataset of the validation
# anatomy (DATA.md: MNI152 axial z = 60…108, Gallant lab S1 axial slices 135…175 — S1's stored
# LIA planes j = 80…120, the slices of the realistic benchmark), with the shipped protocols and
# BART (`ecalib` + `pics -l1`, through --tool), at 4× (equispaced, 8 % ACS) and 8× (random, 4 %
# ACS). The lesion and phantom cases of the suite are left out (--cases) so that the means are
# those of the realistic benchmark's table in RESULTS.md. Writes target/compare-suite/.
#
# Usage: bash benches/compare-suite.sh   (after `bash .ci/install-deps`; builds basin in release)
set -euo pipefail
cd "$(dirname "$0")/.."
bash benches/fetch-s1.sh >/dev/null
cargo build --release -p basin-cli --quiet
BASIN="$PWD/target/release/basin"
OUT=target/compare-suite
rm -rf "$OUT" && mkdir -p "$OUT"
"$BASIN" phantom --suite "$OUT/suite" --seed 1 -q \
  --anatomy mni=target/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz:60-108/12 \
  --anatomy s1=target/data/S1_raw.nii.gz:135-175/10
for r in 4 8; do
  BASIN="$BASIN" "$BASIN" compare "$OUT/suite" --cases "mni-*_${r}x,s1-*_${r}x" --backend cpu \
    -p brain-2d-ebm,sense,cs-l1-wavelet,cs-tv \
    --tool bart="/usr/bin/python3 $PWD/benches/bart-pics.py {in} {out}" \
    -o "$OUT/report-${r}x"
done
