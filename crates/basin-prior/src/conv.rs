//! Same-size 2D cross-correlation with zero padding, its adjoint, and its weight gradient, on
//! `[channels, H, W]` float64 arrays. Plain loops: the reference the fast paths are tested against.

use ndarray::{Array3, Array4, ArrayView3, ArrayView4};

/// out[o, y, x] = Σ_{i, dy, dx} w[o, i, dy, dx] · inp[i, y + dy − r, x + dx − r], r = K/2.
pub fn conv(inp: ArrayView3<'_, f64>, w: ArrayView4<'_, f64>) -> Array3<f64> {
    let (ci, h, wd) = inp.dim();
    let (co, wci, k, _) = w.dim();
    assert_eq!(ci, wci, "conv: input channels");
    let r = (k / 2) as isize;
    let mut out = Array3::zeros((co, h, wd));
    for o in 0..co {
        for i in 0..ci {
            for dy in 0..k {
                for dx in 0..k {
                    let wv = w[[o, i, dy, dx]];
                    if wv == 0.0 {
                        continue;
                    }
                    for y in 0..h {
                        let yy = y as isize + dy as isize - r;
                        if yy < 0 || yy >= h as isize {
                            continue;
                        }
                        for x in 0..wd {
                            let xx = x as isize + dx as isize - r;
                            if xx < 0 || xx >= wd as isize {
                                continue;
                            }
                            out[[o, y, x]] += wv * inp[[i, yy as usize, xx as usize]];
                        }
                    }
                }
            }
        }
    }
    out
}

/// The adjoint of [`conv`] with respect to its input: inp_grad[i, yy, xx] = Σ w[o, i, dy, dx]·g[o, y, x].
pub fn conv_adjoint(g: ArrayView3<'_, f64>, w: ArrayView4<'_, f64>) -> Array3<f64> {
    let (co, h, wd) = g.dim();
    let (wco, ci, k, _) = w.dim();
    assert_eq!(co, wco, "conv_adjoint: output channels");
    let r = (k / 2) as isize;
    let mut out = Array3::zeros((ci, h, wd));
    for o in 0..co {
        for i in 0..ci {
            for dy in 0..k {
                for dx in 0..k {
                    let wv = w[[o, i, dy, dx]];
                    for y in 0..h {
                        let yy = y as isize + dy as isize - r;
                        if yy < 0 || yy >= h as isize {
                            continue;
                        }
                        for x in 0..wd {
                            let xx = x as isize + dx as isize - r;
                            if xx < 0 || xx >= wd as isize {
                                continue;
                            }
                            out[[i, yy as usize, xx as usize]] += wv * g[[o, y, x]];
                        }
                    }
                }
            }
        }
    }
    out
}

/// Gradient of Σ g ⊙ conv(inp, w) with respect to w (accumulated into `acc`).
pub fn conv_weight_grad(g: ArrayView3<'_, f64>, inp: ArrayView3<'_, f64>, acc: &mut Array4<f64>) {
    let (co, h, wd) = g.dim();
    let (_, ci, k, _) = acc.dim();
    let r = (k / 2) as isize;
    for o in 0..co {
        for i in 0..ci {
            for dy in 0..k {
                for dx in 0..k {
                    let mut s = 0.0;
                    for y in 0..h {
                        let yy = y as isize + dy as isize - r;
                        if yy < 0 || yy >= h as isize {
                            continue;
                        }
                        for x in 0..wd {
                            let xx = x as isize + dx as isize - r;
                            if xx < 0 || xx >= wd as isize {
                                continue;
                            }
                            s += g[[o, y, x]] * inp[[i, yy as usize, xx as usize]];
                        }
                    }
                    acc[[o, i, dy, dx]] += s;
                }
            }
        }
    }
}
