#!/usr/bin/env bash
# cs-l1-wavelet with and without the Tikhonov term μ/2‖x‖² (issue 18) on slices the choice of μ
# never saw: subject S1 (validation only, DATA.md) axial 135…175 (41 slices) as real T1 and as
# synthesised PD and FLAIR, realistic 8× random acquisitions (4 % centre, 8 birdcage coils,
# correlated noise with a noise scan, SNR 50, seed 11), prewhitening on and off. Prints, per
# contrast and variant, the mean PSNR of |x| after the least-squares scale (as the realistic
# bench) and the median NMSE without it, and the paired differences (± standard error).
# Usage: bash benches/l1-tikhonov-check.sh [MU] [BASIN] (MU default 0.005; BASIN default
# target/release/basin); needs target/data/S1_raw.nii.gz (bash benches/fetch-s1.sh) and
# Debian's python3 (nibabel, numpy). About 25 min on 2 cores.
set -euo pipefail
MU=${1:-0.005}
BASIN=${2:-target/release/basin}
S1=target/data/S1_raw.nii.gz
[ -f "$S1" ] || { echo "run bash benches/fetch-s1.sh first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The shipped protocol with tikhonov = 0 or MU, prewhitening on or off.
for mu in 0 "$MU"; do
  for pw in true false; do
    sed -e '/^tikhonov *=/d' -e "s/^prewhiten = .*/prewhiten = $pw/" \
      -e "s/^random_shift = true/random_shift = true\ntikhonov = $mu/" \
      protocols/cs-l1-wavelet.toml > "$work/l1_${mu}_$pw.toml"
    grep -qx "tikhonov = $mu" "$work/l1_${mu}_$pw.toml" \
      || { echo "protocols/cs-l1-wavelet.toml has no 'random_shift = true' line to set tikhonov after" >&2; exit 2; }
  done
done
for c in t1 pd flair; do
  extra=()
  [ "$c" = t1 ] || extra=(--contrast "$c")
  "$BASIN" phantom --from "$S1" --slices 135:176 "${extra[@]}" --accel 8 --mask random \
    --center-fraction 0.04 --snr 50 --seed 11 -o "$work/$c.h5" 2>/dev/null
  for mu in 0 "$MU"; do
    for pw in true false; do
      "$BASIN" recon "$work/$c.h5" -p "$work/l1_${mu}_$pw.toml" -o "$work/${c}_${mu}_$pw.nii.gz" -q
    done
  done
done
/usr/bin/python3 - "$work" "$MU" <<'PY'
import sys
import nibabel as nib, numpy as np
w, mu = sys.argv[1], sys.argv[2]
print("| contrast | μ | on: PSNR dB | off: PSNR dB | on − off dB | NMSE on (median) |")
print("|---|---|---|---|---|---|")
def se(x):
    return f"{x.mean():+.2f} ± {x.std(ddof=1) / np.sqrt(len(x)):.2f}"
for c in ["t1", "pd", "flair"]:
    t = np.asarray(nib.load(f"{w}/{c}_truth.nii.gz").dataobj, dtype=np.float64)
    ps = {}
    for m in ["0", mu]:
        for pw in ["true", "false"]:
            r = np.asarray(nib.load(f"{w}/{c}_{m}_{pw}.nii.gz").dataobj, dtype=np.float64)
            p, n = [], []
            for i in range(t.shape[2]):
                a, b = r[:, :, i], t[:, :, i]
                s = (a * b).sum() / max((a * a).sum(), 1e-30)
                p.append(10 * np.log10(b.max() ** 2 / ((s * a - b) ** 2).mean()))
                n.append(((a - b) ** 2).sum() / (b ** 2).sum())
            ps[m, pw] = (np.array(p), float(np.median(n)))
        on, off = ps[m, "true"][0], ps[m, "false"][0]
        print(f"| {c} | {m} | {on.mean():.2f} | {off.mean():.2f} | {se(on - off)} | {ps[m, 'true'][1]:.4f} |")
    print(f"| {c} | {mu} − 0, on | | | {se(ps[mu, 'true'][0] - ps['0', 'true'][0])} | |")
PY
