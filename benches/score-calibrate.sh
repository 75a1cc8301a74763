#!/usr/bin/env bash
# The calibration of `basin score` (issue 19 item 2): the single-subject rule's ranges fitted on
# clean reconstructions of realistic acquisitions of the training subject, Colin27 (DATA.md:
# train), as its real T1 and as T2, PD and FLAIR synthesised by `basin phantom --from
# --contrast`: axial slices 60…100 (41 per contrast), 8 birdcage coils, correlated coil noise
# with a noise scan, SNR 50, fully sampled, CG-SENSE. prior-validate fits the ranges on those
# 164 slices, validates them on MNI152 (AUCs against noise, aliasing, a zipper and ghosting)
# and, with --write, writes them into the shipped model's card
# (crates/basin-prior/model/default.safetensors; the weights are unchanged).
# Usage: bash benches/score-calibrate.sh [--write] [WEIGHTS] (after cargo build --release -p
# basin-cli -p basin-benches; about 7 min on 2 cores; BASIN_BIN=target/debug takes the test
# profile's binaries, whose numbers equal release's). WEIGHTS (default: the shipped model) is
# the model judged and, with --write, the one written as the shipped model with its validation
# and the ranges: after `basin train` of the shipped recipe, `bash benches/score-calibrate.sh
# --write NEW.safetensors` makes the shipped file. The clean slices are reconstructed by
# CG-SENSE, which does not use the prior. Needs Debian's mricron-data (.ci/install-deps).
set -euo pipefail
write=
if [ "${1:-}" = --write ]; then write=1; shift; fi
WEIGHTS=${1:-crates/basin-prior/model/default.safetensors}
[ -f "$WEIGHTS" ] || { echo "$WEIGHTS: no such weights" >&2; exit 2; }
BIN=${BASIN_BIN:-target/release}  # where basin and prior-validate were built
BASIN=$BIN/basin
COLIN=/usr/share/mricron/templates/ch2.nii.gz
[ -f "$COLIN" ] || { echo "needs $COLIN (Debian mricron-data; bash .ci/install-deps)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
vols=()
for c in t1 t2 pd flair; do
  extra=()
  [ "$c" = t1 ] || extra=(--contrast "$c")
  "$BASIN" phantom --from "$COLIN" --slices 60:101 "${extra[@]}" --snr 50 --seed 11 \
    -o "$work/$c.h5" 2>/dev/null
  "$BASIN" recon "$work/$c.h5" -p sense -o "$work/${c}_clean.nii.gz" -q
  vols+=(--calibrate "$work/${c}_clean.nii.gz")
done
out=()
if [ -n "$write" ]; then
  out=(--out crates/basin-prior/model/default.safetensors
       --set "score_calibration=single-subject rule fitted by benches/score-calibrate.sh on 164 clean CG-SENSE slices of Colin27 (training anatomy) as real T1 and synthesised T2, PD, FLAIR, realistic acquisitions at SNR 50; MNI152 validates")
fi
"$BIN"/prior-validate "$WEIGHTS" "${vols[@]}" "${out[@]}"
