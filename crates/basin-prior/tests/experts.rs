//! The expert field: the fast box-filter path against plain dense correlation in float64, the
//! gradient against central finite differences, the one-expert Tweedie step against the
//! closed-form posterior mean of a Gaussian mixture, the EM and NNLS fits against known answers,
//! and the weights' round trip.

use basin_core::rng::Rng;
use basin_prior::experts::{
    component_sds, filter_bank, fit_mixtures, nnls_normal, Experts, Filter,
};
use basin_prior::weights::{from_safetensors, to_safetensors};
use basin_prior::Pyramid;
use ndarray::{Array2, Array3};
use std::collections::HashMap;

fn random_experts(seed: u64) -> Experts {
    Experts::random(seed)
}

fn random_image(h: usize, w: usize, seed: u64) -> Array3<f64> {
    let mut rng = Rng::new(seed);
    Array3::from_shape_fn((2, h, w), |_| 0.3 * rng.normal())
}

#[test]
fn fast_path_matches_dense_float64_reference() {
    let e = random_experts(1);
    let (h, w) = (13, 17);
    let x = random_image(h, w, 2);
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    // Round-trip through f32 so both paths see the same input.
    let x64 = Array3::from_shape_vec((2, h, w), xf.iter().map(|&v| v as f64).collect()).unwrap();
    for sigma in [0.013, 0.07, 0.3] {
        let mut ws = e.workspace(h, w);
        let mut g = vec![0.0f32; 2 * h * w];
        let mut d = vec![0.0f32; h * w];
        let en = e.energy_grad_add(&mut ws, &xf, sigma, &mut g, Some(&mut d));
        let dref = e.density_reference(x64.view(), sigma);
        let gref = e.grad_reference(x64.view(), sigma);
        let scale = dref.iter().map(|v| v.abs()).sum::<f64>();
        assert!(
            (en - dref.sum()).abs() < 2e-7 * scale.max(1.0), // f32 mixture terms
            "σ {sigma}: energy {en} vs {}",
            dref.sum()
        );
        let dmax = dref.iter().map(|v| v.abs()).fold(0.0, f64::max);
        for (a, b) in d.iter().zip(dref.iter()) {
            assert!(
                (*a as f64 - b).abs() < 1e-5 * dmax.max(1.0),
                "density {a} vs {b}"
            );
        }
        let gmax = gref.iter().map(|v| v.abs()).fold(0.0, f64::max);
        for (a, b) in g.iter().zip(gref.iter()) {
            assert!((*a as f64 - b).abs() < 1e-5 * gmax, "gradient {a} vs {b}");
        }
    }
}

#[test]
fn gradient_matches_central_differences() {
    let e = random_experts(3);
    let (h, w) = (9, 11);
    let x = random_image(h, w, 4);
    let sigma = 0.05;
    let g = e.grad_reference(x.view(), sigma);
    let energy = |x: &Array3<f64>| e.density_reference(x.view(), sigma).sum();
    let mut rng = Rng::new(5);
    let mut worst = 0.0f64;
    for _ in 0..40 {
        let i = ((2 * h * w) as f64 * rng.uniform()) as usize;
        let idx = (i / (h * w), (i / w) % h, i % w);
        let step = 1e-6;
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[[idx.0, idx.1, idx.2]] += step;
        xm[[idx.0, idx.1, idx.2]] -= step;
        let fd = (energy(&xp) - energy(&xm)) / (2.0 * step);
        let an = g[[idx.0, idx.1, idx.2]];
        worst = worst.max((fd - an).abs() / an.abs().max(1e-3));
    }
    assert!(worst < 1e-4, "relative error {worst}");
}

/// One expert on the pixel itself with weight 1: the Tweedie step x̃ − σ²∇E must be the
/// posterior mean of a complex Gaussian-mixture prior under complex Gaussian noise,
/// Σⱼ P(j | x̃) · sⱼ²/(sⱼ² + σ²) · x̃, computed here directly from Bayes' rule.
#[test]
fn single_expert_tweedie_is_the_mixture_posterior_mean() {
    let var = vec![1e-4, 0.01, 0.25];
    let pi = [0.5f64, 0.3, 0.2];
    let id = Filter {
        name: "id".into(),
        scale: 1,
        taps: vec![(0, 0, 1.0)],
    };
    let e = Experts {
        filters: vec![id],
        var: var.clone(),
        log_pi: Array2::from_shape_fn((1, 3), |(_, j)| pi[j].ln()),
        log_sigma: vec![0.0],
        weights: Array2::from_shape_vec((1, 2), vec![1.0, 0.0]).unwrap(),
    };
    let sigma = 0.1f64;
    let vals = [
        (0.0, 0.0),
        (0.05, -0.02),
        (0.2, 0.1),
        (0.7, -0.4),
        (-1.2, 0.3),
    ];
    let x: Vec<f32> = vals
        .iter()
        .map(|v| v.0 as f32)
        .chain(vals.iter().map(|v| v.1 as f32))
        .collect();
    let mut ws = e.workspace(1, vals.len());
    let mut g = vec![0.0f32; x.len()];
    e.energy_grad_add(&mut ws, &x, sigma, &mut g, None);
    for (i, &(re, im)) in vals.iter().enumerate() {
        let t = re * re + im * im;
        // Marginal of component j: complex Gaussian of variance (sⱼ² + σ²) per real part.
        let lik: Vec<f64> = (0..3)
            .map(|j| {
                let v = var[j] + sigma * sigma;
                pi[j] / (2.0 * std::f64::consts::PI * v) * (-t / (2.0 * v)).exp()
            })
            .collect();
        let z: f64 = lik.iter().sum();
        let shrink: f64 = (0..3)
            .map(|j| lik[j] / z * var[j] / (var[j] + sigma * sigma))
            .sum();
        let tw_re = re - sigma * sigma * g[i] as f64;
        let tw_im = im - sigma * sigma * g[vals.len() + i] as f64;
        assert!(
            (tw_re - shrink * re).abs() < 1e-6 && (tw_im - shrink * im).abs() < 1e-6,
            "pixel {i}: Tweedie ({tw_re}, {tw_im}) vs posterior mean ({}, {})",
            shrink * re,
            shrink * im
        );
    }
}

#[test]
fn em_recovers_known_mixture_weights() {
    // Complex samples of the pixel filter from two grid components with weights 0.3 / 0.7.
    let sds = component_sds();
    let (a, b) = (3usize, 10usize);
    let mut rng = Rng::new(9);
    let (h, w) = (200, 200);
    let img = Array3::from_shape_fn((2, h, w), |_| 0.0f32);
    let mut img = img;
    for y in 0..h {
        for x in 0..w {
            let s = if rng.uniform() < 0.3 { sds[a] } else { sds[b] };
            img[[0, y, x]] = (s * rng.normal()) as f32;
            img[[1, y, x]] = (s * rng.normal()) as f32;
        }
    }
    let id = filter_bank().into_iter().find(|f| f.name == "id").unwrap();
    let log_pi = fit_mixtures(&[id], &[img], 40_000, &mut Rng::new(1));
    let pa = log_pi[[0, a]].exp();
    let pb = log_pi[[0, b]].exp();
    assert!(
        (pa - 0.3).abs() < 0.03 && (pb - 0.7).abs() < 0.03,
        "π {pa} {pb}"
    );
}

#[test]
fn nnls_satisfies_kkt_and_matches_enumeration() {
    let mut rng = Rng::new(11);
    for trial in 0..20 {
        let (m, n) = (30, 5);
        let a: Vec<f64> = (0..m * n).map(|_| rng.normal()).collect();
        let bv: Vec<f64> = (0..m).map(|_| rng.normal()).collect();
        let mut ata = vec![0.0; n * n];
        let mut atb = vec![0.0; n];
        for r in 0..m {
            for i in 0..n {
                atb[i] += a[r * n + i] * bv[r];
                for j in 0..n {
                    ata[i * n + j] += a[r * n + i] * a[r * n + j];
                }
            }
        }
        let x = nnls_normal(&ata, &atb, n);
        let obj = |x: &[f64]| -> f64 {
            (0..m)
                .map(|r| {
                    let p: f64 = (0..n).map(|i| a[r * n + i] * x[i]).sum();
                    (p - bv[r]).powi(2)
                })
                .sum()
        };
        // Independent answer: the best of the unconstrained solutions on every support whose
        // solution is non-negative (plain Gauss elimination).
        let mut best = obj(&vec![0.0; n]);
        for mask in 1u32..(1 << n) {
            let set: Vec<usize> = (0..n).filter(|i| mask >> i & 1 == 1).collect();
            let k = set.len();
            let mut mat: Vec<Vec<f64>> = set
                .iter()
                .map(|&p| {
                    let mut row: Vec<f64> = set.iter().map(|&q| ata[p * n + q]).collect();
                    row.push(atb[p]);
                    row
                })
                .collect();
            for c in 0..k {
                let piv = (c..k)
                    .max_by(|&i, &j| mat[i][c].abs().total_cmp(&mat[j][c].abs()))
                    .unwrap();
                mat.swap(c, piv);
                for r in 0..k {
                    if r != c {
                        let f = mat[r][c] / mat[c][c];
                        let pivot_row = mat[c].clone();
                        for (v, p) in mat[r].iter_mut().zip(&pivot_row).skip(c) {
                            *v -= f * p;
                        }
                    }
                }
            }
            let sol: Vec<f64> = (0..k).map(|i| mat[i][k] / mat[i][i]).collect();
            if sol.iter().all(|&v| v >= 0.0) {
                let mut full = vec![0.0; n];
                for (&p, &v) in set.iter().zip(&sol) {
                    full[p] = v;
                }
                best = best.min(obj(&full));
            }
        }
        assert!(
            x.iter().all(|&v| v >= 0.0),
            "trial {trial}: negative weight"
        );
        assert!(
            obj(&x) <= best * (1.0 + 1e-9) + 1e-12,
            "trial {trial}: NNLS {} vs best {best}",
            obj(&x)
        );
    }
}

#[test]
fn weights_round_trip_with_experts() {
    let mut p = Pyramid::random(2, 4, 3, 4, 3, 7);
    p.experts = Some(random_experts(8));
    let card = HashMap::from([("note".to_string(), "test".to_string())]);
    let bytes = to_safetensors(&p, &card).unwrap();
    let (q, card2) = from_safetensors(&bytes).unwrap();
    assert_eq!(
        q.experts, p.experts,
        "experts are stored in float64 exactly"
    );
    assert_eq!(card2.get("note").map(String::as_str), Some("test"));
    // The network's weights are float32 on disk.
    for (a, b) in q.levels[0].w1.iter().zip(p.levels[0].w1.iter()) {
        assert_eq!(*a, *b as f32 as f64);
    }
}
