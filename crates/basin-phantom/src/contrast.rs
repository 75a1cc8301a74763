//! Other contrasts from a real T1-weighted head (`../shared/DATA.md`: no registry ships a
//! single-subject PD, T2 or FLAIR brain, so basin synthesises them with MR physics, as BrainWeb
//! does from Colin27).
//!
//! 1. **Tissues.** The head is the largest connected region above 10 % of the volume's 99th
//!    percentile, holes filled slice by slice; tissue is brighter than half the head's median
//!    (CSF, bone and air are darker on T1). The brain is the largest tissue region left by a
//!    5-voxel erosion (which cuts the bridges to the scalp), grown back inside the tissue by at
//!    most 10 voxels, its sulci closed (4 voxels) and widened by 2 voxels of surrounding CSF,
//!    smoothed by a 1-voxel Gaussian into a weight b ∈ [0, 1]. A three-class Gaussian mixture
//!    of the intensity (EM, one variance shared by the classes) inside the brain gives CSF, grey
//!    and white matter; outside it, bone (and the sinuses' air) is what is darker than tissue
//!    (a soft step at half the head's median) and a two-class mixture splits the rest into
//!    muscle/skin and fat; memberships are b·(inside) + (1 − b)·(outside). The
//!    position is what tells CSF (bright on T2) from bone (dark on every sequence): in a T1
//!    image both are dark. Sizes are in voxels (meant for about 1 mm).
//! 2. **Tissue parameters** (T1, T2, T2* in ms; proton density relative to CSF) at 1.5 T and 3 T,
//!    [`TISSUES_1_5T`] / [`TISSUES_3T`], from the literature named there, with a smooth per-voxel
//!    variation (log-normal, 5 % SD, correlation length 2 voxels).
//! 3. **Signal equations** ([`Sequence::signal`]): spin echo / fast spin echo
//!    PD (1 − e^(−TR/T1)) e^(−TE/T2); inversion recovery (FLAIR, STIR)
//!    PD |1 − 2e^(−TI/T1) + e^(−TR/T1)| e^(−TE/T2); spoiled gradient echo
//!    PD sin α (1 − E1)/(1 − cos α E1) e^(−TE/T2*), E1 = e^(−TR/T1).
//! 4. The image is Σ_k m_k(r) S(θ_k(r)) times a smooth receive bias (a random low-order field,
//!    ± `bias` at most), scaled to the input's 99th percentile. Seeded: the same seed gives the
//!    same image. Noise is the acquisition's business (`basin phantom --from`).
//!
//! What the synthesis cannot give: texture inside a tissue beyond partial volume and the
//! variation above, vessels, pathology, and tissues the T1 image does not separate (e.g. dura
//! and bone marrow). It is a contrast, not a scan.

use ndarray::{Array3, Array4, ArrayView3, Axis, Zip};
use rand::{Rng as _, SeedableRng};
use rand_distr::StandardNormal;

/// Relaxation and density of one tissue.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Tissue {
    /// Name.
    pub name: &'static str,
    /// Longitudinal relaxation time T1 (ms).
    pub t1: f64,
    /// Transverse relaxation time T2 (ms).
    pub t2: f64,
    /// Effective transverse relaxation time T2* (ms).
    pub t2s: f64,
    /// Proton density relative to CSF.
    pub pd: f64,
}

const fn tissue(name: &'static str, t1: f64, t2: f64, t2s: f64, pd: f64) -> Tissue {
    Tissue {
        name,
        t1,
        t2,
        t2s,
        pd,
    }
}

/// The tissue classes of [`Tissues`], in this order.
pub const CLASSES: [&str; 7] = ["air", "csf", "grey", "white", "bone", "muscle", "fat"];

/// At 3 T. Brain T1/T2: Stanisz et al., MRM 54:507 (2005) (white 1084/69, grey 1820/99 ms); CSF:
/// T1 ≈ 4.2 s (Lu et al., MRM 53:808, 2005), T2 ≈ 2 s; T2*: Peters et al., MRI 25:748 (2007)
/// (white 53, grey 66 ms); muscle and subcutaneous fat: Gold et al., AJR 183:343 (2004) (muscle
/// 1420/32, fat 371/133 ms); proton densities as in BrainWeb's model (white 0.69, grey 0.8,
/// CSF 1); cortical bone: ultrashort T2 and little free water (PD 0.05). Values rounded.
pub const TISSUES_3T: [Tissue; 7] = [
    tissue("air", 1.0, 1.0, 1.0, 0.0),
    tissue("csf", 4200.0, 2000.0, 1000.0, 1.0),
    tissue("grey", 1820.0, 99.0, 66.0, 0.8),
    tissue("white", 1084.0, 69.0, 53.0, 0.69),
    tissue("bone", 250.0, 1.0, 0.5, 0.05),
    tissue("muscle", 1420.0, 32.0, 25.0, 0.75),
    tissue("fat", 371.0, 133.0, 70.0, 0.9),
];

/// At 1.5 T. Brain: Stanisz et al. (2005) (white 884/72, grey 1124/95 ms); CSF T1 ≈ 4 s, T2 ≈
/// 2 s; T2* (white 65, grey 84 ms) and muscle/fat (de Bazelaire et al., Radiology 230:652, 2004:
/// muscle 1008/44, fat 343/58 ms) rounded; densities as at 3 T.
pub const TISSUES_1_5T: [Tissue; 7] = [
    tissue("air", 1.0, 1.0, 1.0, 0.0),
    tissue("csf", 4000.0, 2000.0, 1200.0, 1.0),
    tissue("grey", 1124.0, 95.0, 84.0, 0.8),
    tissue("white", 884.0, 72.0, 65.0, 0.69),
    tissue("bone", 250.0, 1.0, 0.5, 0.05),
    tissue("muscle", 1008.0, 44.0, 30.0, 0.75),
    tissue("fat", 343.0, 58.0, 45.0, 0.9),
];

/// A pulse sequence's signal model (times in ms).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Sequence {
    /// Spin echo or fast spin echo (effective TE).
    SpinEcho {
        /// Repetition time.
        tr: f64,
        /// Echo time.
        te: f64,
    },
    /// Inversion recovery spin echo (FLAIR: TI nulls CSF; STIR: TI nulls fat).
    InversionRecovery {
        /// Repetition time.
        tr: f64,
        /// Inversion time.
        ti: f64,
        /// Echo time.
        te: f64,
    },
    /// Spoiled gradient echo.
    SpoiledGre {
        /// Repetition time.
        tr: f64,
        /// Echo time.
        te: f64,
        /// Flip angle (degrees).
        flip_deg: f64,
    },
}

impl Sequence {
    /// The magnitude signal of a tissue with these relaxation times and density.
    pub fn signal(&self, t: &Tissue) -> f64 {
        match *self {
            Sequence::SpinEcho { tr, te } => t.pd * (1.0 - (-tr / t.t1).exp()) * (-te / t.t2).exp(),
            Sequence::InversionRecovery { tr, ti, te } => {
                t.pd * (1.0 - 2.0 * (-ti / t.t1).exp() + (-tr / t.t1).exp()).abs()
                    * (-te / t.t2).exp()
            }
            Sequence::SpoiledGre { tr, te, flip_deg } => {
                let a = flip_deg.to_radians();
                let e1 = (-tr / t.t1).exp();
                t.pd * a.sin() * (1.0 - e1) / (1.0 - a.cos() * e1) * (-te / t.t2s).exp()
            }
        }
    }

    /// The sequences `basin phantom --contrast` names: `pd` (FSE TR 3000, TE 15), `t2` (FSE TR
    /// 5000, TE 100), `flair` (IR TR 9000, TI 2500, TE 120: CSF nulled at 3 T), `t1` (spoiled
    /// GRE TR 20, TE 4, 25°), `t2star` (GRE TR 800, TE 20, 20°).
    pub fn preset(name: &str) -> Option<Sequence> {
        Some(match name {
            "pd" => Sequence::SpinEcho {
                tr: 3000.0,
                te: 15.0,
            },
            "t2" => Sequence::SpinEcho {
                tr: 5000.0,
                te: 100.0,
            },
            "flair" => Sequence::InversionRecovery {
                tr: 9000.0,
                ti: 2500.0,
                te: 120.0,
            },
            "t1" => Sequence::SpoiledGre {
                tr: 20.0,
                te: 4.0,
                flip_deg: 25.0,
            },
            "t2star" => Sequence::SpoiledGre {
                tr: 800.0,
                te: 20.0,
                flip_deg: 20.0,
            },
            _ => return None,
        })
    }

    /// The names [`Sequence::preset`] knows.
    pub const PRESETS: [&'static str; 5] = ["pd", "t2", "flair", "t1", "t2star"];
}

/// What to synthesise.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ContrastSpec {
    /// The sequence.
    pub sequence: Sequence,
    /// Field strength (T): 1.5 or 3 (the nearer table is used).
    pub field_t: f64,
    /// Largest relative deviation of the receive bias field (0 = none).
    pub bias: f64,
    /// Relative SD of the per-voxel variation of T1, T2, T2* and PD (0 = none).
    pub variation: f64,
    /// Seed of the variation and the bias.
    pub seed: u64,
}

impl ContrastSpec {
    /// The preset sequence `name` ([`Sequence::PRESETS`]) at `field_t` with the variation and
    /// bias `basin phantom --contrast` simulates (5 % per-voxel SD, ±10 % receive bias); `None`
    /// for an unknown name.
    pub fn preset(name: &str, field_t: f64, seed: u64) -> Option<ContrastSpec> {
        Some(ContrastSpec {
            sequence: Sequence::preset(name)?,
            field_t,
            bias: 0.1,
            variation: 0.05,
            seed,
        })
    }
}

/// Soft tissue memberships of a head volume `[class, z, y, x]` (classes [`CLASSES`], summing to
/// 1 at every voxel).
pub struct Tissues {
    /// Memberships.
    pub membership: Array4<f32>,
}

impl Tissues {
    /// The most likely class of every voxel (an index into [`CLASSES`]).
    pub fn labels(&self) -> Array3<u8> {
        let (_, nz, ny, nx) = self.membership.dim();
        Array3::from_shape_fn((nz, ny, nx), |(z, y, x)| {
            let mut best = (0u8, f32::MIN);
            for k in 0..CLASSES.len() {
                let m = self.membership[[k, z, y, x]];
                if m > best.1 {
                    best = (k as u8, m);
                }
            }
            best.0
        })
    }
}

/// The 99th percentile of the positive voxels (1 when there are none).
fn p99(v: ArrayView3<'_, f32>) -> f32 {
    let mut s: Vec<f32> = v.iter().copied().filter(|&x| x > 0.0).collect();
    if s.is_empty() {
        return 1.0;
    }
    let i = ((s.len() - 1) as f64 * 0.99) as usize;
    *s.select_nth_unstable_by(i, f32::total_cmp).1
}

/// The median of `v` over the voxels where `mask` is set (0 when none is).
fn median_where(v: &Array3<f32>, mask: &Array3<bool>) -> f64 {
    let mut s: Vec<f32> = v
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m)
        .map(|(&x, _)| x)
        .collect();
    if s.is_empty() {
        return 0.0;
    }
    let mid = s.len() / 2;
    *s.select_nth_unstable_by(mid, f32::total_cmp).1 as f64
}

/// Classifies a T1-weighted head volume `[z, y, x]` (axial slices) into [`CLASSES`] (see the
/// module's documentation).
pub fn classify(t1w: ArrayView3<'_, f32>) -> Tissues {
    let (nz, ny, nx) = t1w.dim();
    let scale = p99(t1w);
    let v = t1w.mapv(|x| (x / scale).max(0.0));
    let head = fill_holes(&largest_component(&v.mapv(|x| x > 0.1)));
    // Tissue: brighter than half the head's median (brain, and the scalp's muscle and fat; CSF,
    // bone and air are darker in a T1 image).
    let median = median_where(&v, &head);
    let tissue = Zip::from(&v)
        .and(&head)
        .map_collect(|&val, &h| h && val as f64 > 0.5 * median);
    // The brain: the largest region after a 5-voxel erosion (which cuts the scalp off through
    // the bridges the skull leaves; 3 did not on Colin27, 6 split S1's hemispheres), grown back
    // inside the tissue by at most 10 voxels (the gyri the erosion removed; the scalp lies
    // farther, beyond CSF and bone), sulci closed, and 2 voxels of the CSF around the brain.
    let core = largest_component(&erode(&tissue, 5));
    let near = dilate(&core, 10);
    // Grown only into voxels as bright as brain tissue: above 0.65 of the core's median (the
    // skull of an averaged template such as Colin27 is grey, not black).
    let brain_level = median_where(&v, &core);
    let grown = largest_component(
        &Zip::from(&v)
            .and(&near)
            .map_collect(|&x, &n| n && x as f64 > 0.65 * brain_level),
    );
    let brain = dilate(&erode(&fill_holes(&dilate(&grown, 4)), 4), 2);
    let b = gaussian3(&brain.mapv(|x| x as u8 as f32), 1.0);
    // Three classes inside the brain (CSF, grey, white) from their own intensity mixture;
    // outside it, bone (and the sinuses' air) is what is darker than tissue (a soft step at half
    // the head's median), the rest is muscle or fat by a two-class mixture.
    let dark_level = 0.5 * median;
    let pick = |inside: bool| -> Vec<f64> {
        v.iter()
            .zip(&head)
            .zip(&brain)
            .filter(|((&x, &h), &br)| h && br == inside && (inside || x as f64 > dark_level))
            .map(|((&x, _), _)| x as f64)
            .collect()
    };
    let g_in = Gmm::fit(&pick(true), 3);
    let g_out = Gmm::fit(&pick(false), 2);
    let mut m = Array4::<f32>::zeros((CLASSES.len(), nz, ny, nx));
    for ((z, y, x), &val) in v.indexed_iter() {
        if !head[[z, y, x]] {
            m[[0, z, y, x]] = 1.0;
            continue;
        }
        let w = b[[z, y, x]].clamp(0.0, 1.0);
        let pi = g_in.sharp_posterior(val as f64);
        let po = g_out.sharp_posterior(val as f64);
        let bone = 1.0 / (1.0 + ((val as f64 - dark_level) / 0.02).exp());
        for k in 0..3 {
            m[[1 + k, z, y, x]] = (pi[k] as f32) * w;
        }
        m[[4, z, y, x]] = (bone as f32) * (1.0 - w);
        m[[5, z, y, x]] = ((1.0 - bone) * po[0]) as f32 * (1.0 - w);
        m[[6, z, y, x]] = ((1.0 - bone) * po[1]) as f32 * (1.0 - w);
    }
    Tissues { membership: m }
}

/// The contrast `spec` of the T1-weighted head `t1w` `[z, y, x]` (see the module's
/// documentation), scaled to the input's 99th percentile.
pub fn synthesize(t1w: ArrayView3<'_, f32>, spec: &ContrastSpec) -> Array3<f32> {
    let tissues = classify(t1w);
    synthesize_from(&tissues, spec, p99(t1w))
}

/// [`synthesize`] from memberships already classified; the result has its 99th percentile at
/// `peak`.
pub fn synthesize_from(tissues: &Tissues, spec: &ContrastSpec, peak: f32) -> Array3<f32> {
    let table = if spec.field_t < 2.25 {
        &TISSUES_1_5T
    } else {
        &TISSUES_3T
    };
    let (nc, nz, ny, nx) = tissues.membership.dim();
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
    // Smooth log-normal variation: one field per parameter (T1, T2, T2*, PD).
    let mut field = || -> Array3<f32> {
        if spec.variation <= 0.0 {
            return Array3::ones((nz, ny, nx));
        }
        let white = Array3::from_shape_fn((nz, ny, nx), |_| rng.sample::<f32, _>(StandardNormal));
        let smooth = gaussian3(&white, 2.0);
        // Unit variance after smoothing: a 3D Gaussian of SD s keeps 1/(2√π s)³ of it.
        let keep = (1.0 / (2.0 * std::f64::consts::PI.sqrt() * 2.0)).powi(3);
        let k = (spec.variation / keep.sqrt()) as f32;
        smooth.mapv(|g| (g * k).exp())
    };
    let (vt1, vt2, vt2s, vpd) = (field(), field(), field(), field());
    let bias = bias_field(&mut rng, (nz, ny, nx), spec.bias);
    let mut out = Array3::<f32>::zeros((nz, ny, nx));
    for ((z, y, x), o) in out.indexed_iter_mut() {
        let mut s = 0.0f64;
        for (k, t) in table.iter().enumerate().take(nc) {
            let m = tissues.membership[[k, z, y, x]];
            if m <= 0.0 {
                continue;
            }
            let tv = Tissue {
                t1: t.t1 * vt1[[z, y, x]] as f64,
                t2: t.t2 * vt2[[z, y, x]] as f64,
                t2s: t.t2s * vt2s[[z, y, x]] as f64,
                pd: t.pd * vpd[[z, y, x]] as f64,
                ..*t
            };
            s += m as f64 * spec.sequence.signal(&tv);
        }
        *o = (s * bias[[z, y, x]] as f64) as f32;
    }
    let p = p99(out.view());
    out.mapv_inplace(|v| v / p * peak);
    out
}

/// A smooth multiplicative field 1 + Σ c·(products of low-order Legendre-like terms in z, y, x),
/// scaled so that its largest deviation from 1 is `amp`.
fn bias_field(rng: &mut rand::rngs::StdRng, dim: (usize, usize, usize), amp: f64) -> Array3<f32> {
    let (nz, ny, nx) = dim;
    if amp <= 0.0 {
        return Array3::ones(dim);
    }
    let c: Vec<f64> = (0..9)
        .map(|_| rng.sample::<f64, _>(StandardNormal))
        .collect();
    let u = |i: usize, n: usize| 2.0 * i as f64 / (n.max(2) - 1) as f64 - 1.0;
    let raw = Array3::from_shape_fn(dim, |(z, y, x)| {
        let (a, b, d) = (u(z, nz), u(y, ny), u(x, nx));
        c[0] * a
            + c[1] * b
            + c[2] * d
            + c[3] * a * b
            + c[4] * b * d
            + c[5] * a * d
            + c[6] * (a * a - 1.0 / 3.0)
            + c[7] * (b * b - 1.0 / 3.0)
            + c[8] * (d * d - 1.0 / 3.0)
    });
    let peak = raw.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    raw.mapv(|v| (1.0 + amp * v / peak) as f32)
}

/// A one-dimensional Gaussian mixture with one shared variance, fitted by EM.
struct Gmm {
    w: Vec<f64>,
    mu: Vec<f64>,
    var: Vec<f64>,
}

impl Gmm {
    /// `k` components on `x`, started at its quantiles, 50 EM iterations; components sorted by
    /// mean.
    fn fit(x: &[f64], k: usize) -> Gmm {
        let mut s: Vec<f64> = x.to_vec();
        s.sort_by(f64::total_cmp);
        let q = |f: f64| s[((s.len().max(1) - 1) as f64 * f) as usize];
        let mut g = Gmm {
            w: vec![1.0 / k as f64; k],
            mu: (0..k).map(|i| q((i as f64 + 0.5) / k as f64)).collect(),
            var: vec![(q(0.9) - q(0.1)).powi(2).max(1e-6) / (k * k) as f64; k],
        };
        if s.is_empty() {
            return g;
        }
        // Every 7th value is plenty for four parameters per component.
        let sub: Vec<f64> = s
            .iter()
            .step_by(7.max(s.len() / 200_000))
            .copied()
            .collect();
        for _ in 0..50 {
            let mut acc = vec![(0.0f64, 0.0f64, 0.0f64); k];
            for &v in &sub {
                let p = g.posterior(v);
                for (a, &pj) in acc.iter_mut().zip(&p) {
                    a.0 += pj;
                    a.1 += pj * v;
                    a.2 += pj * v * v;
                }
            }
            for (j, &(a, b, _)) in acc.iter().enumerate() {
                if a < 1e-9 {
                    continue;
                }
                g.w[j] = a / sub.len() as f64;
                g.mu[j] = b / a;
            }
            // One variance for all components (a tied mixture): a broad component cannot
            // swallow its neighbours, and boundaries fall between the means.
            let ss: f64 = (0..k)
                .map(|j| acc[j].2 - 2.0 * g.mu[j] * acc[j].1 + g.mu[j] * g.mu[j] * acc[j].0)
                .sum();
            let tied = (ss / sub.len() as f64).max(1e-6);
            g.var = vec![tied; k];
        }
        let mut idx: Vec<usize> = (0..k).collect();
        idx.sort_by(|&a, &b| g.mu[a].total_cmp(&g.mu[b]));
        Gmm {
            w: idx.iter().map(|&i| g.w[i]).collect(),
            mu: idx.iter().map(|&i| g.mu[i]).collect(),
            var: idx.iter().map(|&i| g.var[i]).collect(),
        }
    }

    /// Memberships at `v`: the posterior with the variance quartered. The shared variance also
    /// holds the classes' spread from partial volumes and noise, so the plain posterior mixes
    /// neighbouring classes (grey and white on Colin27: half and half over most of the brain);
    /// the sharpened one keeps mixtures for the voxels between two means.
    fn sharp_posterior(&self, v: f64) -> Vec<f64> {
        Gmm {
            w: self.w.clone(),
            mu: self.mu.clone(),
            var: self.var.iter().map(|x| x / 4.0).collect(),
        }
        .posterior(v)
    }

    /// Posterior probabilities of the components at `v`.
    fn posterior(&self, v: f64) -> Vec<f64> {
        let l: Vec<f64> = (0..self.w.len())
            .map(|j| {
                -(v - self.mu[j]).powi(2) / (2.0 * self.var[j]) - 0.5 * self.var[j].ln()
                    + self.w[j].max(1e-300).ln()
            })
            .collect();
        let m = l.iter().copied().fold(f64::MIN, f64::max);
        let e: Vec<f64> = l.iter().map(|x| (x - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|x| x / s).collect()
    }
}

/// The largest 6-connected region of `m`.
fn largest_component(m: &Array3<bool>) -> Array3<bool> {
    let (nz, ny, nx) = m.dim();
    let mut label = Array3::<u32>::zeros((nz, ny, nx));
    let mut best = (0u32, 0usize);
    let mut next = 0u32;
    let mut stack = Vec::new();
    for start in 0..m.len() {
        let (z, y, x) = (start / (ny * nx), (start / nx) % ny, start % nx);
        if !m[[z, y, x]] || label[[z, y, x]] != 0 {
            continue;
        }
        next += 1;
        let mut size = 0usize;
        label[[z, y, x]] = next;
        stack.push((z, y, x));
        while let Some((z, y, x)) = stack.pop() {
            size += 1;
            let mut visit = |z: usize, y: usize, x: usize| {
                if m[[z, y, x]] && label[[z, y, x]] == 0 {
                    label[[z, y, x]] = next;
                    stack.push((z, y, x));
                }
            };
            if z > 0 {
                visit(z - 1, y, x);
            }
            if z + 1 < nz {
                visit(z + 1, y, x);
            }
            if y > 0 {
                visit(z, y - 1, x);
            }
            if y + 1 < ny {
                visit(z, y + 1, x);
            }
            if x > 0 {
                visit(z, y, x - 1);
            }
            if x + 1 < nx {
                visit(z, y, x + 1);
            }
        }
        if size > best.1 {
            best = (next, size);
        }
    }
    label.mapv(|l| l != 0 && l == best.0)
}

/// `m` with every region not connected (4-connected, within its axial slice) to the slice's
/// border filled.
fn fill_holes(m: &Array3<bool>) -> Array3<bool> {
    let (nz, ny, nx) = m.dim();
    let mut out = Array3::from_elem((nz, ny, nx), true);
    let mut stack = Vec::new();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                if (y == 0 || x == 0 || y + 1 == ny || x + 1 == nx) && !m[[z, y, x]] {
                    stack.push((y, x));
                    out[[z, y, x]] = false;
                }
            }
        }
        while let Some((y, x)) = stack.pop() {
            let n = [
                (y.wrapping_sub(1), x),
                (y + 1, x),
                (y, x.wrapping_sub(1)),
                (y, x + 1),
            ];
            for (yy, xx) in n {
                if yy < ny && xx < nx && !m[[z, yy, xx]] && out[[z, yy, xx]] {
                    out[[z, yy, xx]] = false;
                    stack.push((yy, xx));
                }
            }
        }
    }
    out
}

/// Binary erosion (`grow` false) or dilation by a cube of radius `r`, separably.
fn morph(m: &Array3<bool>, r: usize, grow: bool) -> Array3<bool> {
    let mut cur = m.clone();
    for axis in 0..3 {
        let mut next = cur.clone();
        let n = cur.len_of(Axis(axis));
        for (mut dst, src) in next
            .lanes_mut(Axis(axis))
            .into_iter()
            .zip(cur.lanes(Axis(axis)))
        {
            for i in 0..n {
                let (a, b) = (i.saturating_sub(r), (i + r).min(n - 1));
                let window = (a..=b).map(|j| src[j]);
                dst[i] = if grow {
                    window.into_iter().any(|v| v)
                } else {
                    // Outside the volume counts as empty.
                    i >= r && i + r < n && window.into_iter().all(|v| v)
                };
            }
        }
        cur = next;
    }
    cur
}

fn erode(m: &Array3<bool>, r: usize) -> Array3<bool> {
    morph(m, r, false)
}

fn dilate(m: &Array3<bool>, r: usize) -> Array3<bool> {
    morph(m, r, true)
}

/// Separable Gaussian smoothing of standard deviation `sd` voxels (edges clamped).
fn gaussian3(v: &Array3<f32>, sd: f64) -> Array3<f32> {
    let r = (3.0 * sd).ceil() as isize;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sd * sd)).exp() as f32)
        .collect();
    let s: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|x| x / s).collect();
    let mut cur = v.clone();
    for axis in 0..3 {
        let mut next = cur.clone();
        let n = cur.len_of(Axis(axis)) as isize;
        for (mut dst, src) in next
            .lanes_mut(Axis(axis))
            .into_iter()
            .zip(cur.lanes(Axis(axis)))
        {
            for i in 0..n {
                let mut acc = 0.0f32;
                for (j, w) in k.iter().enumerate() {
                    let p = (i + j as isize - r).clamp(0, n - 1);
                    acc += w * src[p as usize];
                }
                dst[i as usize] = acc;
            }
        }
        cur = next;
    }
    cur
}
