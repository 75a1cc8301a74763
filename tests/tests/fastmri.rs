//! fastMRI-style HDF5 written by h5py: multi- and single-coil k-space `{r, i}`, the ISMRMRD
//! header as variable-length UTF-8, variable-length ASCII or fixed-length string, and `mask`.
//! basin reads the same numbers h5py wrote and reconstructs them like numpy's FFT does.

use basin_tests::{basin_ok, python};

const WRITE: &str = r#"
import sys, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(3)
xml = '<?xml version="1.0"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding><encodedSpace><matrixSize><x>48</x><y>40</y><z>1</z></matrixSize><fieldOfView_mm><x>240</x><y>200</y><z>5</z></fieldOfView_mm></encodedSpace><reconSpace><matrixSize><x>48</x><y>40</y><z>1</z></matrixSize><fieldOfView_mm><x>240</x><y>200</y><z>5</z></fieldOfView_mm></reconSpace><trajectory>cartesian</trajectory></encoding></ismrmrdHeader>'
def cplx(shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
# A smooth object so coil calibration has something to find.
y, x = np.mgrid[-24:24, -20:20]
obj = ((x / 15.0) ** 2 + (y / 19.0) ** 2 < 1).astype(np.float64) * (1 + 0.3 * np.cos(x / 5.0))
coils = np.stack([np.exp(-((x - 25 * np.cos(a)) ** 2 + (y - 25 * np.sin(a)) ** 2) / 900.0) * np.exp(1j * a) for a in np.linspace(0, 2 * np.pi, 4, endpoint=False)])
def fft2c(im):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(im, axes=(-2, -1)), norm='ortho'), axes=(-2, -1))
kmc = np.stack([fft2c(coils * obj), fft2c(coils * obj * 0.5)]).astype(np.complex64)
with h5py.File(d + '/multi_utf8.h5', 'w') as f:
    f['kspace'] = kmc
    f['ismrmrd_header'] = xml
    f['mask'] = np.ones(40, np.float32)
with h5py.File(d + '/multi_ascii.h5', 'w') as f:
    f['kspace'] = cplx((2, 3, 48, 40))
    f.create_dataset('ismrmrd_header', data=xml.encode(), dtype=h5py.string_dtype('ascii'))
with h5py.File(d + '/single_fixed.h5', 'w') as f:
    f['kspace'] = fft2c(np.stack([obj, obj * 2])).astype(np.complex64)
    f['ismrmrd_header'] = np.bytes_(xml)
for name in ['multi_utf8', 'multi_ascii', 'single_fixed']:
    with h5py.File(d + '/' + name + '.h5', 'r') as f:
        k = f['kspace'][()].astype(np.complex128)
        print(name, k.shape, repr(k.real.sum()), repr(k.imag.sum()), repr(np.abs(k).sum()))
"#;

#[test]
fn reads_what_h5py_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let out = python(WRITE, &[dir.path().to_str().unwrap()]);
    for line in out.lines() {
        let name = line.split_whitespace().next().unwrap();
        let nums: Vec<f64> = line
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        let f = basin_mrd::io::read_fastmri(&dir.path().join(format!("{name}.h5"))).unwrap();
        let h = f.header.as_ref().expect("header parsed");
        assert_eq!(h.encoding[0].encodedSpace.matrixSize.x, 48, "{name}");
        assert_eq!(f.single_coil, name.starts_with("single"));
        let re: f64 = f.kspace.iter().map(|z| z.re as f64).sum();
        let im: f64 = f.kspace.iter().map(|z| z.im as f64).sum();
        let ab: f64 = f.kspace.iter().map(|z| z.norm() as f64).sum();
        for (got, want) in [(re, nums[0]), (im, nums[1]), (ab, nums[2])] {
            assert!(
                (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{name}: {got} vs h5py {want}"
            );
        }
        if name == "multi_utf8" {
            assert_eq!(f.mask.as_ref().map(|m| m.len()), Some(40));
        }
    }
}

/// NMSE (LS-scaled) between basin's NIfTI and numpy's root-sum-of-squares of the same k-space.
const COMPARE_RSS: &str = r#"
import sys, h5py, nibabel as nib, numpy as np
k = h5py.File(sys.argv[2], 'r')['kspace'][()]
if k.ndim == 3:
    k = k[:, None]
img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm='ortho'), axes=(-2, -1))
rss = np.sqrt((np.abs(img) ** 2).sum(1))          # [slices, rows, cols]
b = nib.load(sys.argv[1]).get_fdata()             # [cols, rows, slices]
b = np.transpose(b, (2, 1, 0))
s = (b * rss).sum() / (b * b).sum()
print(((s * b - rss) ** 2).sum() / (rss ** 2).sum())
"#;

#[test]
fn reconstructs_like_numpy() {
    let dir = tempfile::tempdir().unwrap();
    python(WRITE, &[dir.path().to_str().unwrap()]);
    for name in ["multi_utf8", "single_fixed"] {
        let h5 = dir.path().join(format!("{name}.h5"));
        let nii = dir.path().join(format!("{name}.nii"));
        basin_ok(&[
            "recon",
            h5.to_str().unwrap(),
            "-o",
            nii.to_str().unwrap(),
            "-p",
            "zero-filled",
            "-q",
        ]);
        let e: f64 = python(COMPARE_RSS, &[nii.to_str().unwrap(), h5.to_str().unwrap()])
            .trim()
            .parse()
            .unwrap();
        assert!(e < 1e-8, "{name}: NMSE vs numpy RSS {e}");
    }
    // SENSE on the multi-coil file also runs and returns the object (vs RSS, same support).
    let h5 = dir.path().join("multi_utf8.h5");
    let nii = dir.path().join("sense.nii");
    basin_ok(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        nii.to_str().unwrap(),
        "-p",
        "sense",
        "-q",
    ]);
    let e: f64 = python(COMPARE_RSS, &[nii.to_str().unwrap(), h5.to_str().unwrap()])
        .trim()
        .parse()
        .unwrap();
    assert!(e < 5e-2, "SENSE vs RSS NMSE {e}");
}

/// An undersampled single-coil fastMRI file (64², 4× random columns with a 6-column centre and
/// `/mask`, complex noise of known σ) of a real, band-limited object: the EBM protocol
/// reconstructs it through the single-coil path (a map of ones — no calibration lines needed —
/// and data consistency on the measured columns, which the fastMRI layout puts along x).
/// Checked with numpy on basin's complex image: the measured samples are kept to within the
/// noise (‖Fx − y‖ on them ≤ 1.2 σ√M), and the image is closer to the object than the
/// zero-filled one.
const SINGLE_UNDERSAMPLED: &str = r#"
import sys, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(8)
y, x = np.mgrid[-32:32, -32:32] + 0.5
head = ((x / 26.0) ** 2 + (y / 29.0) ** 2 < 1).astype(float)
brain = ((x / 22.0) ** 2 + (y / 25.0) ** 2 < 1).astype(float)
blobs = sum(((x - cx) ** 2 + (y - cy) ** 2 < r * r).astype(float) * v
            for cx, cy, r, v in [(-8, -6, 5, 0.3), (9, 4, 6, -0.25), (0, 14, 3, 0.4)])
obj = 0.4 * head + 0.6 * brain + blobs * brain
def fft2c(im):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(im, axes=(-2, -1)), norm='ortho'), axes=(-2, -1))
# Band-limited like an acquired image (Gaussian k-space apodisation), then complex noise.
ky, kx = np.mgrid[-32:32, -32:32]
obj = np.real(np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(obj)) * np.exp(-(kx ** 2 + ky ** 2) / (2 * 16.0 ** 2)))))
mask = rng.random(64) < 0.2
mask[29:35] = True
sigma = 0.01
clean = fft2c(np.stack([obj, 0.8 * obj]))
noise = sigma / np.sqrt(2) * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))
k = (clean + noise) * mask
with h5py.File(d + '/single_4x.h5', 'w') as f:
    f['kspace'] = k.astype(np.complex64)
    f['mask'] = mask.astype(np.float32)
np.save(d + '/truth.npy', obj)
np.save(d + '/sigma.npy', sigma)
"#;

const CHECK_SINGLE: &str = r#"
import sys, h5py, numpy as np
def fft2c(im):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(im, axes=(-2, -1)), norm='ortho'), axes=(-2, -1))
def ifft2c(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm='ortho'), axes=(-2, -1))
f = h5py.File(sys.argv[1], 'r')
k = f['kspace'][()]; m = f['mask'][()] > 0
c = h5py.File(sys.argv[2], 'r')['dataset/image_0/data'][()]
x = (c['real'] + 1j * c['imag'])[:, 0, 0]
truth = np.load(sys.argv[3])
kx = fft2c(x)
sigma = float(np.load(sys.argv[4]))
dc = np.linalg.norm(kx[..., m] - k[..., m]) / (sigma * np.sqrt(k[..., m].size))
def nmse(img, t):
    a = np.abs(img); s = (a * t).sum() / (a * a).sum()
    return ((s * a - t) ** 2).sum() / (t * t).sum()
zf = ifft2c(k)
print(dc, nmse(x[0], truth), nmse(zf[0], truth), nmse(x[1], 0.8 * truth), nmse(zf[1], 0.8 * truth))
"#;

#[test]
fn ebm_reconstructs_an_undersampled_single_coil_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    python(SINGLE_UNDERSAMPLED, &[d]);
    let h5 = dir.path().join("single_4x.h5");
    let out = dir.path().join("ebm.h5");
    basin_ok(&[
        "recon",
        h5.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-p",
        "brain-2d-ebm",
        "--complex",
        "-q",
    ]);
    let r = python(
        CHECK_SINGLE,
        &[
            h5.to_str().unwrap(),
            out.to_str().unwrap(),
            dir.path().join("truth.npy").to_str().unwrap(),
            dir.path().join("sigma.npy").to_str().unwrap(),
        ],
    );
    let v: Vec<f64> = r.split_whitespace().map(|s| s.parse().unwrap()).collect();
    eprintln!(
        "measured samples: residual / noise {:.3}; NMSE EBM {:.4} / {:.4} vs zero-filled {:.4} / {:.4}",
        v[0], v[1], v[3], v[2], v[4]
    );
    assert!(v[0] < 1.2, "measured samples moved by {} × the noise", v[0]);
    assert!(
        v[1] < v[2] && v[3] < v[4],
        "EBM no better than zero-filled: {r}"
    );
}
