//! Patient geometry: the 4×4 affine from voxel indices (i = x/readout, j = y/phase, k = slice or
//! partition) to patient coordinates in LPS (DICOM) and RAS (NIfTI), built from the ISMRMRD
//! position and direction vectors, field of view and matrix. When the vectors are all zero (as
//! the ISMRMRD generator writes them) an axial fallback is used: read = +x (L), phase = +y (P),
//! slice = +z (S), centred at the isocentre.

use basin_mrd::SliceGeometry;

/// A 4×4 affine (row-major), voxel index → mm.
pub type Affine = [[f64; 4]; 4];

/// Voxel grid of one stack: per-slice geometry plus spacing.
#[derive(Clone, Debug)]
pub struct StackGeometry {
    /// Voxel → LPS affine.
    pub lps: Affine,
    /// Whether the fallback orientation was used.
    pub fallback: bool,
    /// Spacing (x, y, z) in mm.
    pub spacing: [f64; 3],
}

fn unit(v: [f32; 3]) -> Option<[f64; 3]> {
    let n = ((v[0] as f64).powi(2) + (v[1] as f64).powi(2) + (v[2] as f64).powi(2)).sqrt();
    if n < 1e-6 {
        None
    } else {
        Some([v[0] as f64 / n, v[1] as f64 / n, v[2] as f64 / n])
    }
}

/// Geometry of a stack of `positions.len()` 2D slices (or one 3D slab with `nz` partitions when
/// `three_d`), each `nx`×`ny` pixels over `fov` mm (x, y, z = slice thickness or slab).
pub fn stack_geometry(
    slices: &[SliceGeometry],
    nx: usize,
    ny: usize,
    nz: usize,
    fov: [f64; 3],
    three_d: bool,
) -> StackGeometry {
    let first = slices.first().copied().unwrap_or_default();
    let dirs = (
        unit(first.read_dir),
        unit(first.phase_dir),
        unit(first.slice_dir),
    );
    let (r, p, n, fallback) = match dirs {
        (Some(r), Some(p), Some(n), ..) => (r, p, n, false),
        (Some(r), Some(p), None) => (r, p, cross(r, p), false),
        _ => ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], true),
    };
    let dx = fov[0] / nx as f64;
    let dy = fov[1] / ny as f64;
    let centre = |g: &SliceGeometry| {
        [
            g.position[0] as f64,
            g.position[1] as f64,
            g.position[2] as f64,
        ]
    };
    let (dz, origin_slice) = if three_d {
        (fov[2] / nz as f64, centre(&first))
    } else if slices.len() > 1 {
        // Slices ordered along the normal by the caller; spacing from the first to the last.
        let a = centre(&slices[0]);
        let b = centre(&slices[slices.len() - 1]);
        let d = dot(sub(b, a), n) / (slices.len() - 1) as f64;
        (if d.abs() > 1e-6 { d } else { fov[2] }, a)
    } else {
        (fov[2], centre(&first))
    };
    // Voxel (i, j, k) centre: c + (i − nx/2)·dx·r + (j − ny/2)·dy·p + k-term.
    let k0 = if three_d { (nz / 2) as f64 } else { 0.0 };
    let mut lps = [[0.0; 4]; 4];
    for a in 0..3 {
        lps[a][0] = r[a] * dx;
        lps[a][1] = p[a] * dy;
        lps[a][2] = n[a] * dz;
        lps[a][3] = origin_slice[a]
            - (nx / 2) as f64 * dx * r[a]
            - (ny / 2) as f64 * dy * p[a]
            - k0 * dz * n[a];
    }
    lps[3][3] = 1.0;
    StackGeometry {
        lps,
        fallback,
        spacing: [dx, dy, dz.abs()],
    }
}

impl StackGeometry {
    /// 1 mm voxels on the identity LPS affine (flagged as a fallback): for derived maps of
    /// inputs whose geometry basin does not carry over.
    pub fn unit() -> Self {
        let mut lps = [[0.0; 4]; 4];
        for (i, row) in lps.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        StackGeometry {
            lps,
            fallback: true,
            spacing: [1.0, 1.0, 1.0],
        }
    }

    /// Unit vector (LPS) of voxel axis `c` (0 = rows' direction along x, 1 = y, 2 = slices).
    pub fn direction(&self, c: usize) -> [f64; 3] {
        let v = [self.lps[0][c], self.lps[1][c], self.lps[2][c]];
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt().max(1e-12);
        [v[0] / n, v[1] / n, v[2] / n]
    }
}

/// The same affine in RAS (NIfTI): negate the first two rows.
pub fn lps_to_ras(a: &Affine) -> Affine {
    let mut r = *a;
    for row in r.iter_mut().take(2) {
        for v in row.iter_mut() {
            *v = -*v;
        }
    }
    r
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Projection of a slice's centre on the normal, for ordering slices anatomically.
pub fn slice_location(g: &SliceGeometry) -> f64 {
    let n = unit(g.slice_dir).unwrap_or([0.0, 0.0, 1.0]);
    dot(
        [
            g.position[0] as f64,
            g.position[1] as f64,
            g.position[2] as f64,
        ],
        n,
    )
}

/// The order `basin recon` stacks 2D slices in: by position along the slice normal, then by
/// slice index. Sorts `items` whose geometry and slice index `key` gives.
pub fn sort_for_stack<T>(items: &mut [T], key: impl Fn(&T) -> (&SliceGeometry, u16)) {
    items.sort_by(|a, b| {
        let ((ga, sa), (gb, sb)) = (key(a), key(b));
        slice_location(ga)
            .total_cmp(&slice_location(gb))
            .then(sa.cmp(&sb))
    });
}

/// NIfTI quaternion parameters (b, c, d, qfac) of the rotation part of an affine (as
/// nifti1_io's mat44_to_quatern).
pub fn quaternion(a: &Affine) -> (f64, f64, f64, f64) {
    let mut m = [[0.0f64; 3]; 3];
    for col in 0..3 {
        let n = (a[0][col].powi(2) + a[1][col].powi(2) + a[2][col].powi(2))
            .sqrt()
            .max(1e-12);
        for row in 0..3 {
            m[row][col] = a[row][col] / n;
        }
    }
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let qfac = if det < 0.0 {
        for row in m.iter_mut() {
            row[2] = -row[2];
        }
        -1.0
    } else {
        1.0
    };
    let trace = m[0][0] + m[1][1] + m[2][2];
    let (aq, b, c, d);
    if trace > 0.5 {
        let s = (1.0 + trace).sqrt() * 2.0;
        aq = 0.25 * s;
        b = (m[2][1] - m[1][2]) / s;
        c = (m[0][2] - m[2][0]) / s;
        d = (m[1][0] - m[0][1]) / s;
    } else if m[0][0] > m[1][1] && m[0][0] > m[2][2] {
        let s = (1.0 + m[0][0] - m[1][1] - m[2][2]).sqrt() * 2.0;
        aq = (m[2][1] - m[1][2]) / s;
        b = 0.25 * s;
        c = (m[0][1] + m[1][0]) / s;
        d = (m[0][2] + m[2][0]) / s;
    } else if m[1][1] > m[2][2] {
        let s = (1.0 + m[1][1] - m[0][0] - m[2][2]).sqrt() * 2.0;
        aq = (m[0][2] - m[2][0]) / s;
        b = (m[0][1] + m[1][0]) / s;
        c = 0.25 * s;
        d = (m[1][2] + m[2][1]) / s;
    } else {
        let s = (1.0 + m[2][2] - m[0][0] - m[1][1]).sqrt() * 2.0;
        aq = (m[1][0] - m[0][1]) / s;
        b = (m[0][2] + m[2][0]) / s;
        c = (m[1][2] + m[2][1]) / s;
        d = 0.25 * s;
    }
    // NIfTI stores b, c, d with a ≥ 0; readers recompute a = √(1 − b² − c² − d²).
    let (b, c, d) = if aq < 0.0 { (-b, -c, -d) } else { (b, c, d) };
    (b, c, d, qfac)
}

/// The quaternion (b, c, d) as NIfTI stores it, in f32. For rotations near 180° (a ≈ 0) the
/// f32 rounding of b, c, d decides a = √(1 − b² − c² − d²) and can tilt the axes by 1e-3; there
/// the largest component is nudged up until b² + c² + d² ≥ 1 in the readers' f64, so that they
/// recover a = 0 (nibabel and nifti1_io clamp a tiny negative 1 − |q|² to zero).
pub fn quaternion_f32(b: f64, c: f64, d: f64) -> [f32; 3] {
    let mut q = [b as f32, c as f32, d as f32];
    let a2 = 1.0 - (b * b + c * c + d * d);
    if a2 < 1e-6 {
        let k = (0..3)
            .max_by(|&i, &j| q[i].abs().total_cmp(&q[j].abs()))
            .unwrap_or(0);
        for _ in 0..8 {
            let s: f64 = q.iter().map(|&v| (v as f64) * (v as f64)).sum();
            if s >= 1.0 {
                break;
            }
            // One ULP away from zero (for either sign the magnitude grows with the bits).
            q[k] = f32::from_bits(q[k].to_bits() + 1);
        }
    }
    q
}
