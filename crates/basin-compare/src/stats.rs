//! Paired statistics between two methods over the cases both ran on: the mean difference with
//! its standard error, and the two-sided Wilcoxon signed-rank test as SciPy's
//! `scipy.stats.wilcoxon(d)` computes it with its defaults (zero_method "wilcox": zero
//! differences dropped; no continuity correction; the exact null distribution for up to 50
//! non-zero differences without zeros, else the normal approximation with the tie correction).

/// Mean and standard error (sample SD / √n) of `v`; the error is NaN for fewer than 2 values.
pub fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, f64::NAN);
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

/// Average ranks (1-based) of `v` (ties share the mean of their ranks), like SciPy's
/// `rankdata`; also the sizes of the tie groups.
fn ranks(v: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        if j > i {
            ties.push(j - i + 1);
        }
        i = j + 1;
    }
    (r, ties)
}

/// Spearman's rank correlation of two equally long series: the Pearson correlation of their
/// average ranks (SciPy's `spearmanr`); NaN when either is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    basin_core::metrics::pearson(&ranks(a).0, &ranks(b).0)
}

/// The number of subsets of {1..n} with each rank sum 0..=n(n+1)/2 (the exact null
/// distribution of the signed-rank statistic, times 2ⁿ).
fn signed_rank_counts(n: usize) -> Vec<f64> {
    let max = n * (n + 1) / 2;
    let mut c = vec![0.0f64; max + 1];
    c[0] = 1.0;
    for k in 1..=n {
        for s in (k..=max).rev() {
            c[s] += c[s - k];
        }
    }
    c
}

/// Complementary error function (W. J. Cody's rational Chebyshev approximation as in Numerical
/// Recipes' `erfcc`, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The two-sided Wilcoxon signed-rank test of the paired differences `d`: (statistic
/// min(R+, R−), p-value); None with no non-zero difference.
pub fn wilcoxon(d: &[f64]) -> Option<(f64, f64)> {
    let had_zeros = d.contains(&0.0);
    let nz: Vec<f64> = d
        .iter()
        .copied()
        .filter(|&x| x != 0.0 && x.is_finite())
        .collect();
    let n = nz.len();
    if n == 0 {
        return None;
    }
    let abs: Vec<f64> = nz.iter().map(|x| x.abs()).collect();
    let (r, ties) = ranks(&abs);
    let r_plus: f64 = nz
        .iter()
        .zip(&r)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| r)
        .sum();
    let r_minus: f64 = nz
        .iter()
        .zip(&r)
        .filter(|(x, _)| **x < 0.0)
        .map(|(_, r)| r)
        .sum();
    let t = r_plus.min(r_minus);
    if n <= 50 && !had_zeros {
        let cnt = signed_rank_counts(n);
        let total = 2f64.powi(n as i32);
        let rp = r_plus.floor() as usize;
        let p = if rp == (cnt.len() - 1) / 2 {
            1.0
        } else {
            let less: f64 = cnt[..=rp.min(cnt.len() - 1)].iter().sum::<f64>() / total;
            let greater: f64 = cnt[rp.min(cnt.len() - 1)..].iter().sum::<f64>() / total;
            (2.0 * less.min(greater)).min(1.0)
        };
        return Some((t, p));
    }
    let nf = n as f64;
    let mn = nf * (nf + 1.0) * 0.25;
    let mut se = nf * (nf + 1.0) * (2.0 * nf + 1.0);
    for &k in &ties {
        let k = k as f64;
        se -= 0.5 * k * (k * k - 1.0);
    }
    let se = (se / 24.0).sqrt();
    let z = (t - mn) / se;
    // Two-sided: 2·sf(|z|) = erfc(|z|/√2).
    Some((t, erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// b's ranks (1, 2, 3.5, 5, 3.5) against 1..5: cov 8, variances 10 and 9.5, ρ = 8/√95 by
    /// hand (SciPy's spearmanr gives 0.8207826816681233); monotone maps keep ρ.
    #[test]
    fn spearman_matches_the_hand_value_with_ties() {
        let (a, b) = ([1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 6.0, 7.0, 8.0, 7.0]);
        assert!((spearman(&a, &b) - 8.0 / 95f64.sqrt()).abs() < 1e-12);
        let e: Vec<f64> = b.iter().map(|v: &f64| v.exp()).collect();
        assert!((spearman(&a, &e) - spearman(&a, &b)).abs() < 1e-12);
        assert!((spearman(&a, &a) - 1.0).abs() < 1e-12);
    }

    /// Hand-checkable cases: n = 3 all positive → R− = 0, exact p = 2·(1/8) = 0.25; the exact
    /// distribution's counts for n = 4 (1,1,1,2,2,2,2,2,1,1,1 over sums 0..10, total 16).
    #[test]
    fn exact_distribution_and_small_cases() {
        assert_eq!(
            signed_rank_counts(4),
            vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0]
        );
        let (t, p) = wilcoxon(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(t, 0.0);
        assert!((p - 0.25).abs() < 1e-12, "{p}");
        assert!(wilcoxon(&[0.0, 0.0]).is_none());
        let (m, se) = mean_se(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-15);
        assert!((se - (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-12, "{se}");
    }

    /// erfc against values from tables: erfc(0) = 1, erfc(1) = 0.157299207, erfc(2) =
    /// 0.004677735, erfc(−1) = 1.842700793.
    #[test]
    fn erfc_matches_tables() {
        for (x, want) in [
            (0.0, 1.0),
            (1.0, 0.157299207),
            (2.0, 0.004677735),
            (-1.0, 1.842700793),
        ] {
            assert!(((erfc(x) - want) / want).abs() < 2e-7, "erfc({x})");
        }
    }
}
