#!/usr/bin/python3
"""BART as a method of `basin compare` (`--tool bart='/usr/bin/python3 benches/bart-pics.py {in} {out}'`).

Reads a Cartesian 2D ISMRMRD file with h5py (no basin code), runs BART's own pipeline on each
slice — `bart ecalib -m1 -r 24:<ACS lines>` then `bart pics -S -l1 -r <lambda> -i 100` on the raw
(unwhitened) k-space, as in the realistic benchmark — and writes the magnitude as NIfTI on the
grid `basin recon` writes (its affine and slice order are taken from `basin recon -p zero-filled`
of the same file; the BART image's rows and columns are the k-space's phase-encoding lines and
readout samples, as basin's). lambda: --lambda, else 0.005 at R < 6 and 0.1 above (the values
tuned for BART on a separate MNI152 slice in benches/RESULTS.md, issue 18).

Usage: bart-pics.py IN.h5 OUT.nii.gz [--lambda L]   (BASIN: the basin binary, default `basin`)
"""
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import h5py
import nibabel as nib
import numpy as np

NOISE = 1 << 18  # ACQ_IS_NOISE_MEASUREMENT (bit 19)
CALIB = 1 << 19  # ACQ_IS_PARALLEL_CALIBRATION (bit 20)
CALIB_IMG = 1 << 20  # ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING (bit 21)


def write_cfl(base, arr):
    """arr in numpy C order [.., y, x] -> BART dims [x, y, ..] (first fastest)."""
    dims = list(arr.shape[::-1]) + [1] * (16 - arr.ndim)
    with open(base + ".hdr", "w") as f:
        f.write("# Dimensions\n" + " ".join(str(d) for d in dims) + "\n")
    np.ascontiguousarray(arr, dtype=np.complex64).tofile(base + ".cfl")


def read_cfl(base, shape):
    return np.fromfile(base + ".cfl", dtype=np.complex64).reshape(shape)


def main():
    args = sys.argv[1:]
    lam = None
    if "--lambda" in args:
        i = args.index("--lambda")
        lam = float(args[i + 1])
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    src, out = args
    if not out.endswith((".nii", ".nii.gz")):
        sys.exit(f"{out}: the output must be NIfTI (.nii or .nii.gz)")
    with h5py.File(src, "r") as f:
        group = "dataset" if "dataset" in f else next(iter(f.keys()))
        xml = f[group]["xml"][0]
        acqs = f[group]["data"][:]
    xml = xml.decode() if isinstance(xml, bytes) else str(xml)
    root = ET.fromstring(xml)
    ns = {"m": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {"m": ""}
    q = (lambda p: "m:" + p) if ns["m"] else (lambda p: p)
    enc = root.find(q("encoding"), ns)
    ms = enc.find(q("encodedSpace"), ns).find(q("matrixSize"), ns)
    nx, ny = int(ms.find(q("x"), ns).text), int(ms.find(q("y"), ns).text)
    accel = 1.0
    pi = enc.find(q("parallelImaging"), ns)
    if pi is not None:
        af = pi.find(q("accelerationFactor"), ns)
        if af is not None:
            accel = float(af.find(q("kspace_encoding_step_1"), ns).text)
    if lam is None:
        lam = 0.005 if accel < 6 else 0.1
    slices = {}
    acs = {}
    for a in acqs:
        h = a["head"]
        flags = int(h["flags"])
        if flags & NOISE:
            continue
        nc, ns_ = int(h["active_channels"]), int(h["number_of_samples"])
        if ns_ != nx:
            sys.exit(f"{src}: {ns_} samples per line but a matrix of {nx} (oversampling not handled)")
        z = int(h["idx"]["slice"])
        y = int(h["idx"]["kspace_encode_step_1"])
        d = np.asarray(a["data"], dtype=np.float32).reshape(nc, ns_, 2)
        k = slices.setdefault(z, np.zeros((nc, ny, nx), np.complex64))
        k[:, y, :] = d[..., 0] + 1j * d[..., 1]
        if flags & (CALIB | CALIB_IMG):
            acs.setdefault(z, set()).add(y)
    basin = os.environ.get("BASIN", "basin")
    with tempfile.TemporaryDirectory() as tmp:
        grid = os.path.join(tmp, "grid.nii.gz")
        subprocess.run([basin, "recon", src, "-o", grid, "-p", "zero-filled", "--quiet"], check=True)
        g = nib.load(grid)
        vol = np.zeros(g.shape[:3], np.float32)
        if vol.shape[0] != nx or vol.shape[1] != ny or vol.shape[2] != len(slices):
            sys.exit(f"{src}: basin's grid {vol.shape} is not {nx}x{ny}x{len(slices)}")
        # basin stacks slices by position; the zero-filled grid's order is the slices' order
        # when they are written in position order (as basin's simulators do).
        for i, z in enumerate(sorted(slices)):
            k = slices[z]
            nacs = len(acs.get(z, ())) or 24
            kb, mb, ob = (os.path.join(tmp, n) for n in ("k", "m", "o"))
            write_cfl(kb, k[:, None, :, :])  # [c, 1, y, x] -> BART [x, y, 1, c]
            run = lambda *c: subprocess.run(["bart", *c], check=True, capture_output=True)
            run("ecalib", "-m1", "-r", f"24:{nacs}", kb, mb)
            run("pics", "-S", "-l1", "-r", str(lam), "-i", "100", kb, mb, ob)
            img = np.abs(read_cfl(ob, (ny, nx)))
            vol[:, :, i] = img.T  # NIfTI (i = x, j = y) as basin writes [z, y, x]
        nib.save(nib.Nifti1Image(vol, g.affine, g.header), out)


if __name__ == "__main__":
    main()
