//! Interoperability with the Python `ismrmrd` package (PyPI 1.15.0, installed by
//! `.ci/install-deps` into `target/pyenv`): it reads what basin writes (acquisitions and
//! images), and basin reads what it writes.

use basin_tests::{basin_ok, phantom, venv_python};
use std::process::Command;

fn run(script: &str, args: &[&str]) -> String {
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python ismrmrd failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn python_ismrmrd_reads_basin_acquisitions() {
    let dir = tempfile::tempdir().unwrap();
    let f = phantom(
        dir.path(),
        "p.h5",
        &[
            "--matrix",
            "64",
            "--coils",
            "4",
            "--accel",
            "2",
            "--center-fraction",
            "0.2",
            "--noise",
            "0.01",
        ],
    );
    let out = run(
        r#"
import sys, ismrmrd, numpy as np
d = ismrmrd.Dataset(sys.argv[1], 'dataset', create_if_needed=False)
hdr = ismrmrd.xsd.CreateFromDocument(d.read_xml_header())
print(hdr.encoding[0].encodedSpace.matrixSize.x, hdr.acquisitionSystemInformation.receiverChannels)
for i in range(d.number_of_acquisitions()):
    a = d.read_acquisition(i)
    x = a.data.astype(np.complex128)
    print(a.flags, a.idx.kspace_encode_step_1, a.center_sample, repr(float(x.real.sum())), repr(float(x.imag.sum())))
"#,
        &[f.to_str().unwrap()],
    );
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), "64 4");
    let (_, acqs) = basin_mrd::io::read_ismrmrd(&f, "dataset").unwrap();
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), acqs.len());
    for (l, a) in rest.iter().zip(&acqs) {
        let v: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(v[0].parse::<u64>().unwrap(), a.head.flags);
        assert_eq!(
            v[1].parse::<u16>().unwrap(),
            a.head.idx.kspace_encode_step_1
        );
        assert_eq!(v[2].parse::<u16>().unwrap(), a.head.center_sample);
        let re: f64 = a.data.iter().map(|z| z.re as f64).sum();
        let im: f64 = a.data.iter().map(|z| z.im as f64).sum();
        assert!((re - v[3].parse::<f64>().unwrap()).abs() < 1e-9 * (1.0 + re.abs()));
        assert!((im - v[4].parse::<f64>().unwrap()).abs() < 1e-9 * (1.0 + im.abs()));
    }
}

#[test]
fn basin_reads_and_reconstructs_python_ismrmrd_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("py.h5");
    // A 2-slice, 4-coil, 32×32 acquisition with 2× readout oversampling and a noise scan,
    // written by the Python package from numpy k-space of a known object.
    let out = run(
        r#"
import sys, ismrmrd, numpy as np
rng = np.random.default_rng(0)
nx, ny, nc = 32, 32, 4
def space(x):
    return f'<matrixSize><x>{x}</x><y>{ny}</y><z>1</z></matrixSize><fieldOfView_mm><x>{x * 4.0}</x><y>{ny * 4.0}</y><z>5.0</z></fieldOfView_mm>'
xml = ('<?xml version="1.0"?><ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">'
       f'<acquisitionSystemInformation><receiverChannels>{nc}</receiverChannels></acquisitionSystemInformation>'
       '<experimentalConditions><H1resonanceFrequency_Hz>63500000</H1resonanceFrequency_Hz></experimentalConditions>'
       f'<encoding><encodedSpace>{space(2 * nx)}</encodedSpace><reconSpace>{space(nx)}</reconSpace>'
       f'<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>{ny - 1}</maximum><center>{ny // 2}</center></kspace_encoding_step_1>'
       '<slice><minimum>0</minimum><maximum>1</maximum><center>0</center></slice></encodingLimits>'
       '<trajectory>cartesian</trajectory></encoding></ismrmrdHeader>')
# The package's own schema model must accept the header.
assert ismrmrd.xsd.CreateFromDocument(xml).encoding[0].reconSpace.matrixSize.x == nx
d = ismrmrd.Dataset(sys.argv[1], 'dataset', create_if_needed=True)
d.write_xml_header(xml)
y, x = np.mgrid[-ny // 2:ny // 2, -nx:nx]
obj = ((x / 12.0) ** 2 + (y / 13.0) ** 2 < 1) * 1.0
coils = np.stack([np.exp(1j * c + (x * np.cos(c) + y * np.sin(c)) / 40.0) for c in range(nc)])
noise = ismrmrd.Acquisition.from_array((rng.standard_normal((nc, 128)) + 1j * rng.standard_normal((nc, 128))).astype(np.complex64) * 0.01)
noise.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
noise.sample_time_us = 5.0
d.append_acquisition(noise)
for s in range(2):
    img = coils * obj * (1 + s)
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img, axes=(-2, -1)), norm='ortho'), axes=(-2, -1)).astype(np.complex64)
    for line in range(ny):
        a = ismrmrd.Acquisition.from_array(np.ascontiguousarray(k[:, line, :]))
        a.idx.kspace_encode_step_1 = line
        a.idx.slice = s
        a.center_sample = nx
        a.sample_time_us = 2.5
        a.read_dir[:] = [1, 0, 0]; a.phase_dir[:] = [0, 1, 0]; a.slice_dir[:] = [0, 0, 1]
        a.position[:] = [0, 0, 5.0 * s]
        d.append_acquisition(a)
d.close()
# The expected fully sampled root-sum-of-squares image of slice 1, cropped to the recon FOV.
img = coils * obj * 2
print(repr(float(np.sqrt((np.abs(img[:, :, nx // 2: nx // 2 + nx]) ** 2).sum(0)).sum())))
"#,
        &[f.to_str().unwrap()],
    );
    let want_sum: f64 = out.trim().parse().unwrap();
    let k = basin_mrd::read_kspace(&f, None).unwrap();
    assert_eq!(k.buckets.len(), 2);
    assert_eq!(
        k.buckets[0].data.dim(),
        (4, 1, 32, 32),
        "oversampling removed"
    );
    assert_eq!(k.noise.as_ref().unwrap().shape(), &[4, 128]);
    let info = basin_ok(&["info", f.to_str().unwrap(), "--json"]);
    assert!(info.contains("\"coils\": 4"));
    // Zero-filled RSS without prewhitening reproduces numpy's image exactly.
    let proto = dir.path().join("rss.toml");
    std::fs::write(
        &proto,
        "name = \"rss\"\nprewhiten = false\n[solver]\nkind = \"zero-filled\"\n",
    )
    .unwrap();
    let p = basin_recon::Protocol::resolve(proto.to_str().unwrap(), None).unwrap();
    let r = basin_recon::reconstruct(&p, &k).unwrap();
    let got: f64 = r.slices[1].image.iter().map(|v| v.norm() as f64).sum();
    assert!(
        (got - want_sum).abs() < 1e-4 * want_sum,
        "RSS sum {got} vs numpy {want_sum}"
    );
}

#[test]
fn python_ismrmrd_reads_basin_images() {
    use basin_mrd::image::{write_images, ImageHeader, Pixels, IMTYPE_MAGNITUDE};
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("img.h5");
    let px = ndarray::Array5::from_shape_fn((3, 1, 1, 6, 8), |(i, _, _, y, x)| {
        (i * 100 + y * 8 + x) as f32
    });
    let heads: Vec<ImageHeader> = (0..3u16)
        .map(|i| ImageHeader {
            version: 1,
            matrix_size: [8, 6, 1],
            field_of_view: [16.0, 12.0, 5.0],
            channels: 1,
            slice: i,
            image_type: IMTYPE_MAGNITUDE,
            image_index: i + 1,
            read_dir: [1.0, 0.0, 0.0],
            phase_dir: [0.0, 1.0, 0.0],
            slice_dir: [0.0, 0.0, 1.0],
            position: [0.0, 0.0, i as f32 * 5.0],
            ..Default::default()
        })
        .collect();
    let attrs = vec!["".to_string(); 3];
    write_images(
        &f,
        "dataset",
        "image_0",
        &heads,
        &Pixels::Magnitude(px.clone()),
        &attrs,
    )
    .unwrap();
    let out = run(
        r#"
import sys, ismrmrd
d = ismrmrd.Dataset(sys.argv[1], 'dataset', create_if_needed=False)
print(d.number_of_images('image_0'))
for i in range(3):
    im = d.read_image('image_0', i)
    print(im.slice, im.image_type, tuple(im.matrix_size), im.position[2], im.data.shape, float(im.data[0, 0, 2, 3]))
"#,
        &[f.to_str().unwrap()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "3");
    for i in 0..3 {
        let want = format!(
            "{i} 1 (8, 6, 1) {}.0 (1, 1, 6, 8) {}.0",
            i * 5,
            i * 100 + 2 * 8 + 3
        );
        assert_eq!(lines[i + 1], want);
    }
}
