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
        "-q",
    ]);
    let e: f64 = python(COMPARE_RSS, &[nii.to_str().unwrap(), h5.to_str().unwrap()])
        .trim()
        .parse()
        .unwrap();
    assert!(e < 5e-2, "SENSE vs RSS NMSE {e}");
}
