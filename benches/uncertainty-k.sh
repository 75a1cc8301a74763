#!/usr/bin/env bash
# k of a nominal 90 % per-pixel interval (mean ± k·SD of `basin recon --samples 8 --uncertainty`)
# calibrated on training anatomy, as issue 19 item 4 asks: Colin27 (DATA.md: train) axial z 60,
# 75, 90, 105 through the realistic simulator (4× equispaced 8 % / 8× random 4 %, SNR 50, seeds
# z + accel), k = the pooled 90th percentile of |error|/SD over object pixels (truth > 10 % of its
# maximum, after the least-squares scale of the mean). Then the coverage at that k of the
# validation outputs `target/release/uncertainty` keeps in target/bench-study/uncertainty (run it
# first). Usage: bash benches/uncertainty-k.sh [BASIN]; needs Debian's python3 (nibabel).
set -euo pipefail
BASIN=${1:-target/release/basin}
STUDY=target/bench-study
[ -d "$STUDY/uncertainty" ] || { echo "run target/release/uncertainty first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for z in 60 75 90 105; do
  for acc in 4 8; do
    if [ "$acc" = 4 ]; then m=(--mask equispaced --center-fraction 0.08); else m=(--mask random --center-fraction 0.04); fi
    "$BASIN" phantom --from /usr/share/mricron/templates/ch2.nii.gz --slices "$z:$((z + 1))" \
      --accel "$acc" "${m[@]}" --snr 50 --seed $((z + acc)) -o "$work/c${z}_${acc}x.h5" 2>/dev/null
    "$BASIN" recon "$work/c${z}_${acc}x.h5" -o "$work/c${z}_${acc}x.nii.gz" --samples 8 \
      --uncertainty "$work/c${z}_${acc}x.sd.nii.gz" --seed 7 -q
  done
done
/usr/bin/python3 - "$work" "$STUDY" <<'PY'
import glob, os, sys
import nibabel as nib, numpy as np
work, study = sys.argv[1], sys.argv[2]
load = lambda p: np.asarray(nib.load(p).dataobj, dtype=np.float64).squeeze()
def ratio(t, m, sd):
    a = (m * t).sum() / (m * m).sum()
    inside = t > 0.1 * t.max()
    return (np.abs(a * m - t) / np.maximum(a * sd, 1e-12))[inside]
for acc in ["4x", "8x"]:
    per = [ratio(load(f"{work}/c{z}_{acc}_truth.nii.gz"), load(f"{work}/c{z}_{acc}.nii.gz"),
                 load(f"{work}/c{z}_{acc}.sd.nii.gz")) for z in [60, 75, 90, 105]]
    k = np.quantile(np.concatenate(per), 0.9)
    cov, sets = [], {}
    for p in sorted(glob.glob(f"{study}/uncertainty/*_{acc}.sd.nii.gz")):
        c = os.path.basename(p).replace(".sd.nii.gz", "")
        if c.startswith("tune"):
            continue
        r = ratio(load(f"{study}/suite/{c}_truth.nii.gz"), load(f"{study}/uncertainty/{c}.nii.gz"), load(p))
        cov.append((r <= k).mean())
        sets.setdefault(c.split("-")[0], []).append(cov[-1])
    cov = np.array(cov)
    for name, v in sorted(sets.items()):
        print(f"{acc}: {name} coverage at k {k:.2f}: {np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f}, {len(v)} slices)")
    print(f"{acc}: Colin27 k = {k:.2f} (per slice {[round(float(np.quantile(r, 0.9)), 2) for r in per]}); "
          f"validation coverage {cov.mean():.3f} ± {cov.std() / np.sqrt(len(cov)):.3f} "
          f"(min {cov.min():.3f}, max {cov.max():.3f}, {len(cov)} slices)")
PY
