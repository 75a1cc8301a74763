//! Small synthetic lesions (issue 5, "pathology is kept"): disks 3 to 6 pixels across with
//! ±20 % contrast placed on flat brain tissue, and the relative contrast by which a
//! reconstruction is judged to keep them. Used by the realistic simulator (`--lesions`) and the
//! lesion benchmark.

use ndarray::ArrayView2;

/// One lesion, in the pixel coordinates of the image it was placed on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lesion {
    /// Centre row.
    pub y: f64,
    /// Centre column.
    pub x: f64,
    /// Radius in pixels (1 mm).
    pub r: f64,
    /// Intensity factor inside the disk (1.2 or 0.8).
    pub factor: f32,
}

/// Radii of successive lesions: disks 3, 4, 5 and 6 pixels across.
const RADII: [f64; 4] = [1.5, 2.0, 2.5, 3.0];

/// Up to `max` lesions on flat brain tissue of `truth` (a magnitude slice): centres inside the
/// brain (within 0.6 of the head's half extents from its centre) where the truth is at least 30 %
/// of its 99th percentile and varies by less than 8 % within r + 5 pixels, at least 13 pixels
/// apart; radii cycle through 1.5–3 px and the contrast alternates +20 % / −20 %.
pub fn place(truth: ArrayView2<'_, f32>, max: usize) -> Vec<Lesion> {
    let (h, w) = truth.dim();
    if h < 25 || w < 25 {
        return Vec::new();
    }
    let mut v: Vec<f32> = truth.iter().copied().collect();
    let k = (v.len() * 99) / 100;
    let (_, p99, _) = v.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    let p99 = *p99 as f64;
    // Inside the brain: within 0.6 of the half extents of the head (truth > 10 % of p99) from
    // its centre, away from scalp fat and the skull.
    let (mut y0, mut y1, mut x0, mut x1) = (h, 0, w, 0);
    for ((y, x), &v) in truth.indexed_iter() {
        if v as f64 > 0.1 * p99 {
            (y0, y1, x0, x1) = (y0.min(y), y1.max(y), x0.min(x), x1.max(x));
        }
    }
    let (cy, cx) = ((y0 + y1) as f64 / 2.0, (x0 + x1) as f64 / 2.0);
    let (hy, hx) = (
        ((y1.max(y0) - y0) as f64 / 2.0).max(1.0),
        ((x1.max(x0) - x0) as f64 / 2.0).max(1.0),
    );
    let mut out: Vec<Lesion> = Vec::new();
    for y in (12..h - 12).step_by(3) {
        for x in (12..w - 12).step_by(3) {
            if out.len() == max {
                return out;
            }
            let r = RADII[out.len() % RADII.len()];
            let reach = (r + 5.0) as isize;
            let c = truth[[y, x]] as f64;
            let inside = ((y as f64 - cy) / hy).powi(2) + ((x as f64 - cx) / hx).powi(2) <= 0.36;
            if c < 0.3 * p99 || !inside {
                continue;
            }
            let flat = (-reach..=reach).all(|dy| {
                (-reach..=reach).all(|dx| {
                    let v = truth[[(y as isize + dy) as usize, (x as isize + dx) as usize]] as f64;
                    (v - c).abs() <= 0.08 * c
                })
            });
            let apart = out
                .iter()
                .all(|l| ((l.y - y as f64).powi(2) + (l.x - x as f64).powi(2)).sqrt() > 13.0);
            if flat && apart {
                let factor = if out.len().is_multiple_of(2) {
                    1.2
                } else {
                    0.8
                };
                out.push(Lesion {
                    y: y as f64,
                    x: x as f64,
                    r,
                    factor,
                });
            }
        }
    }
    out
}

/// Relative contrast of a lesion in a magnitude image: (mean in the disk − mean in the ring
/// 2–5 px outside it) / mean in the ring. Relative, so a smooth intensity scale (coil-map
/// normalisation, a global factor) does not change it.
pub fn contrast(img: ArrayView2<'_, f32>, l: &Lesion) -> f64 {
    let (h, w) = img.dim();
    let (mut di, mut dn, mut ri, mut rn) = (0.0, 0usize, 0.0, 0usize);
    let reach = (l.r + 5.0).ceil() as isize;
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let (y, x) = (l.y as isize + dy, l.x as isize + dx);
            if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                continue;
            }
            let d = ((y as f64 - l.y).powi(2) + (x as f64 - l.x).powi(2)).sqrt();
            let v = img[[y as usize, x as usize]] as f64;
            if d <= l.r {
                di += v;
                dn += 1;
            } else if d >= l.r + 2.0 && d <= l.r + 5.0 {
                ri += v;
                rn += 1;
            }
        }
    }
    let ring = ri / rn.max(1) as f64;
    (di / dn.max(1) as f64 - ring) / ring.max(1e-30)
}
