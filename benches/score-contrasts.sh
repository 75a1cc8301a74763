#!/usr/bin/env bash
# basin score on contrasts the prior never trained on (issue 19, the second validation set):
# subject S1 (validation only, DATA.md) as its real T1 and as T2, PD and FLAIR synthesised by
# `basin phantom --from --contrast`, axial slices 135…175 (41), realistic acquisitions (8
# birdcage coils, correlated noise, SNR 50). Per contrast: the fraction of noise-free truths
# and of clean slices (fully sampled, CG-SENSE, the acquisition's noise) flagged ATYPICAL, and
# for each slice whether the clean image is judged more typical (smaller |robust z|) than its
# 8× zero-filled reconstruction (aliased).
# Usage: bash benches/score-contrasts.sh [BASIN] (default target/release/basin); needs
# target/data/S1_raw.nii.gz (bash benches/fetch-s1.sh) and Debian's python3.
set -euo pipefail
BASIN=${1:-target/release/basin}
S1=target/data/S1_raw.nii.gz
[ -f "$S1" ] || { echo "run bash benches/fetch-s1.sh first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for c in t1 t2 pd flair; do
  extra=()
  [ "$c" = t1 ] || extra=(--contrast "$c")
  for accel in 1 8; do
    mask=(); [ "$accel" = 8 ] && mask=(--mask random --center-fraction 0.04)
    "$BASIN" phantom --from "$S1" --slices 135:176 "${extra[@]}" --accel "$accel" "${mask[@]}" \
      --snr 50 --seed 11 -o "$work/${c}_$accel.h5" 2>/dev/null
  done
  "$BASIN" recon "$work/${c}_1.h5" -p sense -o "$work/${c}_clean.nii.gz" -q
  "$BASIN" recon "$work/${c}_8.h5" -p zero-filled -o "$work/${c}_alias.nii.gz" -q
  "$BASIN" score "$work/${c}_1_truth.nii.gz" --json -q > "$work/${c}_truth.json"
  "$BASIN" score "$work/${c}_clean.nii.gz" --json -q > "$work/${c}_clean.json"
  "$BASIN" score "$work/${c}_alias.nii.gz" --json -q > "$work/${c}_alias.json"
done
/usr/bin/python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
print("| contrast | slices | noise-free truth flagged (|z| median) | clean flagged ATYPICAL | clean |z| (median, max) | clean more typical than 8× zero-filled | aliased flagged |")
print("|---|---|---|---|---|---|---|")
for c in ["t1", "t2", "pd", "flair"]:
    tr = json.load(open(f"{w}/{c}_truth.json"))["slices"]
    zt = sorted(abs(s["z"]) for s in tr)
    cl = json.load(open(f"{w}/{c}_clean.json"))["slices"]
    al = json.load(open(f"{w}/{c}_alias.json"))["slices"]
    zc = [abs(s["z"]) for s in cl]
    za = [abs(s["z"]) for s in al]
    better = sum(a > b for a, b in zip(za, zc))
    zs = sorted(zc)
    name = "T1 (real)" if c == "t1" else c.upper() + " (synthesised)"
    print(f"| {name} | {len(cl)} | {sum(s['implausible'] for s in tr)}/{len(tr)} ({zt[len(zt)//2]:.1f}) | {sum(s['implausible'] for s in cl)}/{len(cl)} | {zs[len(zs)//2]:.1f}, {zs[-1]:.1f} | {better}/{len(cl)} | {sum(s['implausible'] for s in al)}/{len(al)} |")
PY
