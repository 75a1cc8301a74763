//! The validation cases of issue 5's first quality benchmark: MNI152 2009a axial slices (never used
//! to train the prior), simulated at twice the target resolution (bilinear 2× upsampling to
//! 0.5 mm on a 512² grid) with 8 smooth birdcage-like coils and a smooth phase, k-space cropped
//! to 256² (1 mm), complex Gaussian noise (1 % of the p99 image magnitude per sample), then
//! undersampled 4× equispaced (8 % centre) and 8× random (4 % centre). The lesion test
//! (`tests/tests/lesions.rs`) uses them; the benchmarks now run on realistic acquisitions
//! ([`crate::study`]).

use basin_core::fft::{fftc, ifftc};
use basin_core::linop::Sense;
use basin_core::C32;
use basin_phantom::mask::{sampling_mask, MaskKind};
use basin_phantom::{coil_coefficients, coil_value};
use basin_recon::coils::{espirit_2d, EspiritParams};
use ndarray::{s, Array2, Array3, Axis};

/// Matrix of the cases.
pub const N: usize = 256;
const HI: usize = 512;

/// One validation case.
pub struct Case {
    /// The fully sampled, noise-free 256² magnitude `[1, y, x]`.
    pub truth: Array3<f32>,
    /// Undersampled noisy k-space `[coil, 1, y, x]`.
    pub kspace: ndarray::Array4<C32>,
    /// Sampling mask `[y, x]`.
    pub mask: Array2<bool>,
    /// "4x" or "8x".
    pub label: String,
}

impl Case {
    /// The case's ESPIRiT maps `[coil, y, x]` (default parameters) and its SENSE operator.
    pub fn operator(&self) -> Result<(Array3<C32>, Sense), String> {
        let (maps, _) = espirit_2d(
            self.kspace.index_axis(Axis(1), 0),
            self.mask.view(),
            &EspiritParams::default(),
        )
        .map_err(|e| e.to_string())?;
        let op = Sense::new(
            maps.clone().insert_axis(Axis(1)),
            self.mask.clone().insert_axis(Axis(0)),
            false,
        )
        .map_err(|e| e.to_string())?;
        Ok((maps, op))
    }
}

/// The 8 coils on the 512² grid, computed once: every case shares them.
fn hi_coils() -> &'static [Array2<C32>] {
    static COILS: std::sync::OnceLock<Vec<Array2<C32>>> = std::sync::OnceLock::new();
    COILS.get_or_init(|| {
        let coord = |i: usize| (i as f64 - (HI / 2) as f64) * 2.0 / HI as f64;
        coil_coefficients(8)
            .iter()
            .map(|coef| {
                Array2::from_shape_fn((HI, HI), |(y, x)| {
                    let s = coil_value(coef, coord(x), -coord(y));
                    C32::new(s.re as f32, s.im as f32)
                })
            })
            .collect()
    })
}

/// One case from a 1 mm slice.
pub fn make_case(slice: &Array2<f32>, accel: f64, kind: MaskKind, seed: u64) -> Case {
    // Upsample the 1 mm slice 2× (bilinear) and place it on a 512² canvas (0.5 mm), p99 = 1.
    let (h0, w0) = slice.dim();
    let (h, w) = (2 * h0, 2 * w0);
    let at = |y: f64, x: f64| {
        let (y0, x0) = (y.floor().max(0.0) as usize, x.floor().max(0.0) as usize);
        let (y1, x1) = ((y0 + 1).min(h0 - 1), (x0 + 1).min(w0 - 1));
        let (fy, fx) = ((y - y0 as f64) as f32, (x - x0 as f64) as f32);
        let a = slice[[y0, x0]] * (1.0 - fx) + slice[[y0, x1]] * fx;
        let b = slice[[y1, x0]] * (1.0 - fx) + slice[[y1, x1]] * fx;
        a * (1.0 - fy) + b * fy
    };
    let up = Array2::from_shape_fn((h, w), |(y, x)| {
        at(
            ((y as f64 - 0.5) / 2.0).clamp(0.0, (h0 - 1) as f64),
            ((x as f64 - 0.5) / 2.0).clamp(0.0, (w0 - 1) as f64),
        )
    });
    let slice = &up;
    let mut hi = Array2::<f32>::zeros((HI, HI));
    let (oy, ox) = ((HI - h.min(HI)) / 2, (HI - w.min(HI)) / 2);
    for y in 0..h.min(HI) {
        for x in 0..w.min(HI) {
            hi[[oy + y, ox + x]] = slice[[y, x]];
        }
    }
    let scale = basin_prior::data::p99_scale(hi.iter());
    hi.mapv_inplace(|v| v * scale);
    let coord = |i: usize| (i as f64 - (HI / 2) as f64) * 2.0 / HI as f64;
    let phase = |y: usize, x: usize| {
        let (u, v) = (coord(x), coord(y));
        0.4 + 0.8 * u - 0.5 * v + 0.6 * (std::f64::consts::PI * u * v).cos()
    };
    let crop = |img: &Array2<C32>| -> Array2<C32> {
        let mut k = img.clone();
        fftc(k.view_mut(), &[0, 1]);
        let o = (HI - N) / 2;
        let mut c = k.slice(s![o..o + N, o..o + N]).to_owned();
        ifftc(c.view_mut(), &[0, 1]);
        // Orthonormal FFTs: the same object at half the matrix keeps its pixel values when the
        // cropped spectrum is scaled by N/HI.
        c.mapv_inplace(|v| v * (HI as f32 / N as f32));
        c
    };
    let obj = Array2::from_shape_fn((HI, HI), |(y, x)| {
        C32::from_polar(hi[[y, x]], phase(y, x) as f32)
    });
    let truth = crop(&obj).mapv(|c| c.norm()).insert_axis(Axis(0));
    let (lines, _) =
        sampling_mask(kind, N, accel, if accel > 5.0 { 0.04 } else { 0.08 }, seed).expect("mask");
    let sigma = 0.01f32;
    let mut rng = basin_core::rng::Rng::new(seed + 100);
    let mut k = ndarray::Array4::<C32>::zeros((8, 1, N, N));
    for c in 0..8 {
        let img = &obj * &hi_coils()[c];
        let mut kc = crop(&img);
        fftc(kc.view_mut(), &[0, 1]);
        for ((y, x), v) in kc.indexed_iter() {
            if lines[y] {
                k[[c, 0, y, x]] = *v + rng.complex_normal() * sigma;
            }
        }
    }
    let mask = Array2::from_shape_fn((N, N), |(y, _)| lines[y]);
    Case {
        truth,
        kspace: k,
        mask,
        label: format!("{accel}x"),
    }
}

/// The least-squares factor a minimising ‖a|x| − truth‖ (metrics compare magnitudes on the
/// truth's scale): `basin compare`'s scale fit.
pub fn ls_factor(x: &Array3<C32>, truth: &Array3<f32>) -> f32 {
    basin_compare::metrics::ls_scale(x.mapv(|c| c.norm()).view(), truth.view()) as f32
}

/// `basin compare`'s metrics of the magnitude of `x` against `truth` (after its least-squares
/// scale fit): the benchmarks and the compare command share one implementation.
pub fn metrics(x: &Array3<C32>, truth: &Array3<f32>) -> basin_compare::metrics::ImageMetrics {
    basin_compare::metrics::image_metrics(x.mapv(|c| c.norm()).view(), truth.view())
}

/// |x| scaled by [`ls_factor`] to the truth.
pub fn scaled_mag(x: &Array3<C32>, truth: &Array3<f32>) -> Array3<f32> {
    let a = ls_factor(x, truth);
    x.mapv(|c| c.norm() * a)
}

/// Axial slices `zs` of the MNI152 volume at `path` (1 mm, `[y, x]`, anterior up).
pub fn mni_slices(path: &std::path::Path, zs: &[usize]) -> Result<Vec<Array2<f32>>, String> {
    let vol = basin_export::nifti_in::read_nifti_volume(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for &z in zs {
        if z >= vol.dim().2 {
            return Err(format!(
                "{}: fewer than {} axial slices",
                path.display(),
                z + 1
            ));
        }
        // Axial slices (third NIfTI axis), transposed to [y, x] with anterior up.
        let mut s = vol.index_axis(Axis(2), z).t().to_owned();
        s.invert_axis(Axis(0));
        out.push(s);
    }
    Ok(out)
}

/// The case of `slice` (an [`mni_slices`] slice, index `i`) at `accel` 4 (equispaced) or 8
/// (random): the masks and noise seeds of the benchmark.
pub fn mni_case(slice: &Array2<f32>, i: usize, accel: f64) -> Case {
    if accel > 5.0 {
        make_case(slice, accel, MaskKind::Random, 20 + i as u64)
    } else {
        make_case(slice, accel, MaskKind::Equispaced, 10 + i as u64)
    }
}

/// Axial slices of S1 as `[y, x]`, anterior up and the subject's right on the right of the
/// matrix as in [`mni_slices`].
pub fn s1_slices(path: &std::path::Path, ys: &[usize]) -> Result<Vec<Array2<f32>>, String> {
    let vol = basin_export::nifti_in::read_nifti_volume(path).map_err(|e| e.to_string())?;
    Ok(ys
        .iter()
        .map(|&j| {
            // [x (towards L), z (towards A)] → [A, L]; anterior up, right on the right.
            let mut s = vol.index_axis(Axis(1), j).t().to_owned();
            s.invert_axis(Axis(0));
            s.invert_axis(Axis(1));
            s
        })
        .collect())
}

/// A realistic acquisition of `slice` as `basin phantom --from` makes it (8 birdcage coils, a
/// generated receive-array noise covariance with a 2048-sample noise scan, SNR 50, `lesions`
/// lesions) at `accel` (above 5: random lines with a 4 % centre, else equispaced with 8 %),
/// assembled as `basin recon` assembles its file: the simulation and the k-space.
pub fn realistic_acquisition(
    slice: &Array2<f32>,
    accel: f64,
    lesions: usize,
    seed: u64,
) -> (basin_phantom::realistic::Simulation, basin_mrd::KSpace) {
    let (h, w) = slice.dim();
    let (mask, cf) = if accel > 5.0 {
        (MaskKind::Random, 0.04)
    } else {
        (MaskKind::Equispaced, 0.08)
    };
    let spec = basin_phantom::realistic::RealisticSpec {
        matrix: (h + h % 2, w + w % 2),
        coils: 8,
        accel,
        center_fraction: cf,
        mask,
        snr: 50.0,
        noise_cov: None,
        lesions,
        noise_samples: 2048,
        seed,
    };
    let sim = basin_phantom::realistic::simulate(&slice.clone().insert_axis(Axis(0)), &spec)
        .expect("simulate");
    let d = basin_phantom::Description {
        patient_name: "Bench^Realistic".into(),
        patient_id: "bench".into(),
        study: "realistic".into(),
        protocol: "realistic".into(),
        model: "realistic simulator".into(),
    };
    let (hdr, acqs) = basin_phantom::acquisition_to_ismrmrd(
        &d,
        sim.kspace.view(),
        &sim.lines,
        &sim.acs,
        accel,
        [w as f64, h as f64, 1.0],
        &sim.noise_scan,
    );
    let kspace =
        basin_mrd::assemble(std::path::Path::new("bench.h5"), hdr, &acqs).expect("assemble");
    (sim, kspace)
}
