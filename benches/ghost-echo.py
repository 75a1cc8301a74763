"""The half-field-of-view echo (basin_prior::validate::half_fov_echo) on clean slices and on
their motion-ghosted copies, across anatomy, grids, noise levels and zeroed backgrounds: is its
clean range independent of them, as a range fitted on one subject must be?

Sets: Colin27 (the calibration subject, mricron-data), subject S1 axial 135...175
(target/data/S1_raw.nii.gz, bash benches/fetch-s1.sh) and MNI152 axial 60...108
(target/data/, .ci/install-deps), each slice scaled by its volume's p99, on its native grid
and centred on a 256² canvas, with complex white noise of SD sigma per channel, optionally
zeroed outside the object dilated by 8 pixels (as a reconstruction's ESPIRiT crop does). The
ghost is the benches' motion ghost: every other line of the second axis' k-space x e^{0.5i},
magnitude kept. Usage: /usr/bin/python3 benches/ghost-echo.py (about 15 s; numpy, scipy,
nibabel)."""
import numpy as np, nibabel as nib, os, sys
from scipy.ndimage import binary_dilation

rng = np.random.default_rng(3)
LEVEL = 0.1


def load(p):
    return np.asarray(nib.as_closest_canonical(nib.load(p)).dataobj, dtype=np.float64)


def echo(m):
    out = []
    for a in (0, 1):
        n = m.shape[a]
        g = np.roll(m, -1, axis=a) - m
        bg = np.maximum(np.roll(m, -1, axis=a), m) < LEVEL
        s = 0.5 * (np.roll(g, -(n // 2), axis=a) + np.roll(g, -(n - n // 2), axis=a))
        p = g * s * bg
        den = np.sqrt((p * p).sum())
        out.append(p.sum() / den if den > 0 else 0.0)
    return max(out)


def ghost(x):
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x)))
    k[:, 1::2] *= np.exp(0.5j)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k)))


def run(name, vol, zs, pad, sigma, zero_bg):
    p99 = np.percentile(vol[vol > 0], 99)
    rc, rg = [], []
    for z in zs:
        t = vol[:, :, z] / p99
        if pad:
            T = np.zeros((256, 256))
            h, w = t.shape
            T[(256 - h) // 2:(256 - h) // 2 + h, (256 - w) // 2:(256 - w) // 2 + w] = t[:256, :256]
        else:
            T = t
        c = T + rng.normal(0, sigma, T.shape) + 1j * rng.normal(0, sigma, T.shape)
        if zero_bg:
            c = c * binary_dilation(T > 0.05, iterations=8)
        c = np.abs(c)
        rc.append(echo(c))
        rg.append(echo(np.abs(ghost(c))))
    rc, rg = np.array(rc), np.array(rg)
    med = np.median(rc)
    mad = np.median(np.abs(rc - med))
    print(f"| {name} | {'256²' if pad else 'native'} | {sigma} | {'yes' if zero_bg else 'no'} | "
          f"{rc.min():.2f} … {rc.max():.2f} | {med:.2f} / {mad:.2f} | {rg.min():.1f} … {rg.max():.1f} |")


colin = load('/usr/share/mricron/templates/ch2.nii.gz')
s1 = load('target/data/S1_raw.nii.gz')
mni = load('target/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz')
print("| set | grid | σ | zeroed background | clean echo (min … max) | clean median / MAD | ghosted (min … max) |")
print("|---|---|---|---|---|---|---|")
for sigma in (0.005, 0.02, 0.05):
    for zb in (False, True):
        run('Colin27 axial 60…100', colin, range(60, 101), True, sigma, zb)
        run('Colin27 axial 60…100', colin, range(60, 101), False, sigma, zb)
        run('S1 axial 135…175', s1, range(135, 176), False, sigma, zb)
        run('MNI152 axial 60…108', mni, range(60, 110, 2), True, sigma, zb)
        run('MNI152 axial 60…108', mni, range(60, 110, 2), False, sigma, zb)
p = os.path.join(os.path.dirname(nib.__file__), 'tests', 'data', 'example4d.nii.gz')
e = np.asarray(nib.load(p).dataobj, dtype=np.float64)[..., 0]
ee = [echo(e[:, :, z] / np.percentile(e, 99)) for z in range(e.shape[2])]
print(f"\nnibabel's example4d (real EPI), {len(ee)} slices: echo {min(ee):.2f} … {max(ee):.2f}")
