#!/usr/bin/python3
"""Which per-pixel map ranks the default protocol's error, at issue 19's measure (Spearman
correlation over 8×8 patches of the mean map value against the mean |error|, patches at least
half inside the object, inside = truth > 10 % of its maximum; the bar is 0.5)?

Candidates, all computable from what a user has (no truth): the posterior SD of `basin recon
--samples 8 --uncertainty` (what basin ships), the mean image's intensity and gradient, and the
disagreement of the default's image with other reconstructions of the same data (CG-SENSE,
L1-wavelet, TV, the weak-prior EBM) — alone, as an ensemble SD, and combined with the SD.

Reads what the benches left in target/bench-study: `uncertainty` (the posterior mean and SD per
validation case) and `quality-4x|8x/images` (every method's image), and the suite's truths.
Run `target/release/uncertainty` and `target/release/quality` first. Every image is scaled to
the truth by least squares before differences are taken (as the benches do).
Usage: /usr/bin/python3 benches/uncertainty-proxies.py [STUDY_DIR]
"""
import glob
import os
import sys

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter, sobel
from scipy.stats import spearmanr

study = sys.argv[1] if len(sys.argv) > 1 else "target/bench-study"


def load(p):
    return np.asarray(nib.load(p).dataobj, dtype=np.float64).squeeze()


def scaled(x, t):
    return x * (x * t).sum() / (x * x).sum()


def patch_means(inside, *maps):
    ny, nx = inside.shape
    out = [[] for _ in maps]
    for y0 in range(0, ny - 7, 8):
        for x0 in range(0, nx - 7, 8):
            m = inside[y0:y0 + 8, x0:x0 + 8]
            if m.sum() >= 32:
                for o, a in zip(out, maps):
                    o.append(a[y0:y0 + 8, x0:x0 + 8][m].mean())
    return [np.array(o) for o in out]


for acc in ["4x", "8x"]:
    rho = {}
    for sd_path in sorted(glob.glob(f"{study}/uncertainty/*_{acc}.sd.nii.gz")):
        case = os.path.basename(sd_path).replace(".sd.nii.gz", "")
        if case.startswith("tune"):
            continue
        t = load(f"{study}/suite/{case}_truth.nii.gz")
        raw = load(f"{study}/uncertainty/{case}.nii.gz")
        a = (raw * t).sum() / (raw * raw).sum()
        m, sd = a * raw, a * load(sd_path)
        inside = t > 0.1 * t.max()
        err = np.abs(m - t)
        images = f"{study}/quality-{acc}/images/{case}"
        other = {k: scaled(load(f"{images}/{k}.nii.gz"), t)
                 for k in ["sense", "cs-l1-wavelet", "cs-tv", "brain-2d-ebm-weak-prior"]}
        ens = np.std([m, other["cs-l1-wavelet"], other["cs-tv"], other["brain-2d-ebm-weak-prior"]], axis=0)
        cands = {
            "posterior SD (shipped)": sd,
            "intensity of the mean": m,
            "gradient magnitude of the mean": np.hypot(sobel(m, 0), sobel(m, 1)),
            "|mean - CG-SENSE|, smoothed 2 px": gaussian_filter(np.abs(m - other["sense"]), 2),
            "|mean - L1-wavelet|": np.abs(m - other["cs-l1-wavelet"]),
            "|mean - weak-prior EBM|": np.abs(m - other["brain-2d-ebm-weak-prior"]),
            "SD of {mean, L1, TV, weak prior}": ens,
            "hypot(posterior SD, that SD)": np.hypot(sd, ens),
        }
        e, *cs = patch_means(inside, err, *cands.values())
        for name, c in zip(cands, cs):
            rho.setdefault(name, []).append(spearmanr(c, e)[0])
    print(f"| {acc} | candidate | patch Spearman, mean over slices | min … max | slices |")
    for name, v in rho.items():
        v = np.array(v)
        print(f"| {acc} | {name} | {v.mean():.3f} | {v.min():.2f} … {v.max():.2f} | {len(v)} |")
