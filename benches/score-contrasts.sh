#!/usr/bin/env bash
# basin score on contrasts the prior never trained on (issue 19, the second validation set):
# subject S1 (validation only, DATA.md) as its real T1 and as T2, PD and FLAIR synthesised by
# `basin phantom --from --contrast`, axial slices 135…175 (41), realistic acquisitions (8
# birdcage coils, correlated noise, SNR 50). Per contrast: the fraction of noise-free truths
# and of clean slices (fully sampled, CG-SENSE, the acquisition's noise) flagged ATYPICAL; for
# each corrupted reconstruction of the same slices — a noisier acquisition (SNR 15, CG-SENSE),
# 4× equispaced (8 % centre) and 8× random (4 % centre) zero-filled, 8× cs-l1-wavelet and the
# default protocol (brain-2d-ebm) at 8×, and the
# clean image with motion ghosting (every other line of its second axis' k-space × e^{0.5i},
# magnitude kept) or a zipper (one line along the second axis at a random position, ±0.25 of
# the volume's p99 alternating, magnitude kept), as prior-validate corrupts MNI152 — its
# NMSE against the truth, the fraction flagged, the ROC AUC of robust z (clean vs it) and the
# fraction of slices whose clean image is judged more typical (smaller z) than it.
# Usage: bash benches/score-contrasts.sh [BASIN] (default target/release/basin); needs
# target/data/S1_raw.nii.gz (bash benches/fetch-s1.sh) and Debian's python3 (nibabel, numpy).
set -euo pipefail
BASIN=${1:-target/release/basin}
S1=target/data/S1_raw.nii.gz
[ -f "$S1" ] || { echo "run bash benches/fetch-s1.sh first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for c in t1 t2 pd flair; do
  extra=()
  [ "$c" = t1 ] || extra=(--contrast "$c")
  for v in 1 n15 4 8; do
    case $v in
      1) a=(--snr 50);; n15) a=(--snr 15);;
      4) a=(--accel 4 --mask equispaced --center-fraction 0.08 --snr 50);;
      8) a=(--accel 8 --mask random --center-fraction 0.04 --snr 50);;
    esac
    "$BASIN" phantom --from "$S1" --slices 135:176 "${extra[@]}" "${a[@]}" --seed 11 \
      -o "$work/${c}_$v.h5" 2>/dev/null
  done
  "$BASIN" recon "$work/${c}_1.h5" -p sense -o "$work/${c}_clean.nii.gz" -q
  "$BASIN" recon "$work/${c}_n15.h5" -p sense -o "$work/${c}_noisy.nii.gz" -q
  "$BASIN" recon "$work/${c}_4.h5" -p zero-filled -o "$work/${c}_zf4.nii.gz" -q
  "$BASIN" recon "$work/${c}_8.h5" -p zero-filled -o "$work/${c}_zf8.nii.gz" -q
  "$BASIN" recon "$work/${c}_8.h5" -p cs-l1-wavelet -o "$work/${c}_l18.nii.gz" -q
  "$BASIN" recon "$work/${c}_8.h5" -p brain-2d-ebm -o "$work/${c}_ebm8.nii.gz" -q
  /usr/bin/python3 - "$work/${c}_clean.nii.gz" "$work/${c}_ghost.nii.gz" "$work/${c}_zipper.nii.gz" <<'PY'
import sys
import nibabel as nib, numpy as np
src = nib.load(sys.argv[1])
x = np.asarray(src.dataobj, dtype=np.float64)
def save(a, path):
    nib.save(nib.Nifti1Image(np.abs(a).astype(np.float32), src.affine, src.header), path)
k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(0, 1)), axes=(0, 1)), axes=(0, 1))
k[:, 1::2, :] *= np.exp(0.5j)
save(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(0, 1)), axes=(0, 1)), axes=(0, 1)), sys.argv[2])
rng = np.random.default_rng(11)
p99 = np.percentile(np.abs(x), 99)
z = x.copy()
alt = np.where(np.arange(x.shape[1]) % 2 == 0, 0.25, -0.25) * p99
for s in range(x.shape[2]):
    col = x.shape[0] // 4 + int(rng.uniform() * (x.shape[0] // 2))
    z[col, :, s] += alt
save(z, sys.argv[3])
PY
  for k in 1_truth clean noisy zf4 zf8 l18 ebm8 ghost zipper; do
    "$BASIN" score "$work/${c}_$k.nii.gz" --json -q > "$work/${c}_$k.json"
  done
done
/usr/bin/python3 - "$work" <<'PY'
import json, sys
import nibabel as nib, numpy as np
w = sys.argv[1]
cons = ["t1", "t2", "pd", "flair"]
corr = [("noisy", "SNR 15, CG-SENSE"), ("zf4", "4× equispaced zero-filled"), ("zf8", "8× random zero-filled"), ("l18", "8× random cs-l1-wavelet"), ("ebm8", "8× random brain-2d-ebm (the default)"), ("ghost", "clean with motion ghosting"), ("zipper", "clean with a zipper line")]
def auc(neg, pos):
    return sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(neg) * len(pos))
def zs(c, k):
    return [s["z"] for s in json.load(open(f"{w}/{c}_{k}.json"))["slices"]]
print("| contrast | noise-free truth flagged | clean flagged | clean z (median, max) |")
print("|---|---|---|---|")
allc = {}
for c in cons:
    zt, zc = zs(c, "1_truth"), zs(c, "clean")
    keep = [i for i, v in enumerate(zc) if v is not None]
    allc[c] = keep
    zc = [zc[i] for i in keep]; zt = [zt[i] for i in keep if zt[i] is not None]
    name = "T1 (real)" if c == "t1" else c.upper() + " (synthesised)"
    print(f"| {name} | {sum(v > 3.5 for v in zt)}/{len(zt)} | {sum(v > 3.5 for v in zc)}/{len(zc)} | {sorted(zc)[len(zc)//2]:.2f}, {max(zc):.2f} |")
print()
print("| corrupted copy | NMSE vs truth (median) | flagged | ROC AUC clean vs it | clean more typical |")
print("|---|---|---|---|---|")
for k, name in corr:
    clean, bad, nm, pairs = [], [], [], []
    for c in cons:
        truth = np.asarray(nib.load(f"{w}/{c}_1_truth.nii.gz").dataobj, dtype=np.float64)
        rec = np.asarray(nib.load(f"{w}/{c}_{k}.nii.gz").dataobj, dtype=np.float64)
        zc, zb = zs(c, "clean"), zs(c, k)
        for i in allc[c]:
            if zb[i] is None:
                continue
            t, r = truth[:, :, i], rec[:, :, i]
            nm.append(float(((r - t) ** 2).sum() / (t ** 2).sum()))
            clean.append(zc[i]); bad.append(zb[i]); pairs.append(zc[i] < zb[i])
    print(f"| {name} | {sorted(nm)[len(nm)//2]:.4f} | {sum(v > 3.5 for v in bad)}/{len(bad)} | {auc(clean, bad):.3f} | {sum(pairs)}/{len(pairs)} |")
PY
