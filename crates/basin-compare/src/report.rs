//! The report's files: `metrics.csv` (tidy: one row per case × method), `summary.md` (means ±
//! standard errors, the paired table), `figures/` (a grid per case, box plots of PSNR and SSIM)
//! and `index.html` (the tables and figures; no network fetches). Written together.

use crate::figures::{box_plot, case_grid, quantile, Canvas, Column};
use crate::stats::{mean_se, wilcoxon};
use crate::{energy_path, image_path, middle_slice, Case, Cell, CompareError, Method, Spec};
use ndarray::Array3;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One row of the paired table: method `a` minus method `b` on the cases both scored.
#[derive(Clone, Debug, PartialEq)]
pub struct PairedRow {
    /// Metric name.
    pub metric: &'static str,
    /// First method.
    pub a: String,
    /// Second method.
    pub b: String,
    /// Cases both scored.
    pub n: usize,
    /// Mean of a − b.
    pub mean: f64,
    /// Its standard error.
    pub se: f64,
    /// Two-sided Wilcoxon signed-rank p-value (None when every difference is zero).
    pub p: Option<f64>,
}

/// A metric's value in a cell, if it has one.
type Getter = fn(&Cell) -> Option<f64>;

/// Per method: (n, mean, standard error) of each of [`METRICS`].
type Row = (String, Vec<(usize, f64, f64)>);

/// The metric values a table reports, by name.
const METRICS: [(&str, Getter); 8] = [
    ("PSNR dB", |c| c.metrics.map(|m| m.psnr)),
    ("SSIM", |c| c.metrics.map(|m| m.ssim)),
    ("NMSE", |c| c.metrics.map(|m| m.nmse)),
    ("HFEN", |c| c.metrics.map(|m| m.hfen)),
    ("data residual / noise", |c| c.dc_residual),
    ("prior z", |c| c.prior_z),
    ("lesion contrast kept", |c| c.lesion_kept),
    ("seconds", |c| c.seconds),
];

/// Paired rows for PSNR and SSIM over every pair of methods (in the methods' order).
pub fn paired(methods: &[String], cells: &[Cell]) -> Vec<PairedRow> {
    let mut out = Vec::new();
    for (metric, f) in &METRICS[..2] {
        for (i, a) in methods.iter().enumerate() {
            for b in &methods[i + 1..] {
                out.extend(paired_row(metric, f, a, b, cells));
            }
        }
    }
    out
}

/// The paired row of `metric` (read from a cell by `f`) for method `a` minus method `b` over the
/// cases where both have a value; None when there is no such case.
pub fn paired_row(
    metric: &'static str,
    f: impl Fn(&Cell) -> Option<f64>,
    a: &str,
    b: &str,
    cells: &[Cell],
) -> Option<PairedRow> {
    let d: Vec<f64> = cells
        .iter()
        .filter(|c| c.method == a)
        .filter_map(|ca| {
            let cb = cells.iter().find(|c| c.method == b && c.case == ca.case)?;
            Some(f(ca)? - f(cb)?)
        })
        .collect();
    if d.is_empty() {
        return None;
    }
    let (mean, se) = mean_se(&d);
    Some(PairedRow {
        metric,
        a: a.to_string(),
        b: b.to_string(),
        n: d.len(),
        mean,
        se,
        p: wilcoxon(&d).map(|w| w.1),
    })
}

fn fmt(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "–".into()
    }
}

fn decimals(metric: &str) -> usize {
    match metric {
        "PSNR dB" | "prior z" | "seconds" | "data residual / noise" => 2,
        "NMSE" => 5,
        _ => 4,
    }
}

/// Per method and metric: (n, mean, se).
fn table(methods: &[String], cells: &[Cell]) -> Vec<Row> {
    methods
        .iter()
        .map(|m| {
            let row = METRICS
                .iter()
                .map(|(_, f)| {
                    let v: Vec<f64> = cells
                        .iter()
                        .filter(|c| &c.method == m)
                        .filter_map(f)
                        .filter(|v| v.is_finite())
                        .collect();
                    let (mean, se) = mean_se(&v);
                    (v.len(), mean, se)
                })
                .collect();
            (m.clone(), row)
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn metrics_csv(cells: &[Cell]) -> String {
    let mut s = String::from(
        "case,method,psnr_db,ssim,nmse,nmse_raw,hfen,scale,prior_z,lesion_contrast_kept,seconds,dc_residual_over_noise,error\n",
    );
    let o = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x}"));
    for c in cells {
        let m = c.metrics;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&c.case),
            csv_field(&c.method),
            o(m.map(|m| m.psnr)),
            o(m.map(|m| m.ssim)),
            o(m.map(|m| m.nmse)),
            o(m.map(|m| m.nmse_raw)),
            o(m.map(|m| m.hfen)),
            o(m.map(|m| m.scale)),
            o(c.prior_z),
            o(c.lesion_kept),
            o(c.seconds),
            o(c.dc_residual),
            csv_field(c.error.as_deref().unwrap_or("")),
        );
    }
    s
}

const DEFINITIONS: &str = "Definitions: each image is fitted to the reference by one least-squares magnitude scale before NMSE, PSNR, SSIM and HFEN (NMSE raw: without it). PSNR and SSIM as fastMRI defines them: data range = the reference's maximum; SSIM with a 7×7 uniform window, K1 = 0.01, K2 = 0.03. HFEN: ‖LoG(image) − LoG(reference)‖/‖LoG(reference)‖, LoG 15×15 with σ = 1.5 px. Data residual / noise: ‖A(a·x) − y‖/(σ√M) over the M measured samples, A the acquisition's SENSE operator (ESPIRiT maps, prewhitened data, σ = 1 with a noise scan), the magnitude image given the phase of basin's CG-SENSE reconstruction and one least-squares scale a: about 1 when the image explains the data down to the noise, well above 1 when it does not (no reference needed). Prior z: the largest robust z of the image's slices under the embedded prior (> 3.5 is atypical). Lesion contrast kept: the lesions' relative contrast in the image over that in the reference (1 = kept). Seconds: wall time of the method (protocols in-process, tools as processes, with --jobs > 1 including contention). Paired: mean of A − B ± standard error over the cases both scored, two-sided Wilcoxon signed-rank p-value (SciPy's defaults).";

fn summary_md(spec: &Spec, cases: &[Case], methods: &[String], cells: &[Cell]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# basin compare: {}\n", spec.dataset.display());
    let _ = writeln!(
        s,
        "basin {}; {} cases; methods: {}.\n",
        env!("CARGO_PKG_VERSION"),
        cases.len(),
        methods.join(", ")
    );
    let _ = writeln!(s, "## Means ± standard error over cases\n");
    let _ = write!(s, "| method |");
    for (name, _) in &METRICS {
        let _ = write!(s, " {name} |");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|{}", "---|".repeat(METRICS.len()));
    for (m, row) in table(methods, cells) {
        let _ = write!(s, "| {m} |");
        for ((name, _), (n, mean, se)) in METRICS.iter().zip(row) {
            let d = decimals(name);
            if n == 0 {
                let _ = write!(s, " – |");
            } else {
                let _ = write!(s, " {} ± {} (n={n}) |", fmt(mean, d), fmt(se, d));
            }
        }
        let _ = writeln!(s);
    }
    let pr = paired(methods, cells);
    if !pr.is_empty() {
        let _ = writeln!(s, "\n## Paired differences (A − B)\n");
        let _ = writeln!(s, "| metric | A | B | n | mean ± SE | Wilcoxon p |");
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for r in &pr {
            let d = decimals(r.metric);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:+.d$} ± {} | {} |",
                r.metric,
                r.a,
                r.b,
                r.n,
                r.mean,
                fmt(r.se, d),
                r.p.map_or("–".into(), |p| format!("{p:.4}")),
            );
        }
    }
    let failed: Vec<&Cell> = cells.iter().filter(|c| c.error.is_some()).collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "\n## Failures\n");
        for c in failed {
            let _ = writeln!(
                s,
                "- {} on {}: {}",
                c.method,
                c.case,
                c.error.as_deref().unwrap_or("")
            );
        }
    }
    let _ = writeln!(s, "\n{DEFINITIONS}");
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn index_html(
    spec: &Spec,
    cases: &[Case],
    methods: &[String],
    cells: &[Cell],
    figures: &[(String, String)],
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>basin compare: {}</title>\n<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}th{{background:#eee}}td:first-child,th:first-child{{text-align:left}}figure{{display:inline-block;margin:1em}}img{{max-width:100%}}</style></head><body>\n",
        esc(&spec.dataset.display().to_string())
    );
    let _ = writeln!(
        s,
        "<h1>basin compare</h1><p>Dataset <code>{}</code>, {} cases, methods: {}. basin {}. Per case and method: <a href=\"metrics.csv\">metrics.csv</a>; the same tables in <a href=\"summary.md\">summary.md</a>.</p>",
        esc(&spec.dataset.display().to_string()),
        cases.len(),
        esc(&methods.join(", ")),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        s,
        "<h2>Means ± standard error over cases</h2><table id=\"means\"><tr><th>method</th>"
    );
    for (name, _) in &METRICS {
        let _ = write!(s, "<th>{}</th>", esc(name));
    }
    let _ = writeln!(s, "</tr>");
    for (m, row) in table(methods, cells) {
        let _ = write!(s, "<tr><td>{}</td>", esc(&m));
        for ((name, _), (n, mean, se)) in METRICS.iter().zip(row) {
            let d = decimals(name);
            if n == 0 {
                let _ = write!(s, "<td>–</td>");
            } else {
                let _ = write!(
                    s,
                    "<td>{} ± {} <small>(n={n})</small></td>",
                    fmt(mean, d),
                    fmt(se, d)
                );
            }
        }
        let _ = writeln!(s, "</tr>");
    }
    let _ = writeln!(s, "</table>");
    let pr = paired(methods, cells);
    if !pr.is_empty() {
        let _ = writeln!(s, "<h2>Paired differences (A − B)</h2><table id=\"paired\"><tr><th>metric</th><th>A</th><th>B</th><th>n</th><th>mean ± SE</th><th>Wilcoxon p</th></tr>");
        for r in &pr {
            let d = decimals(r.metric);
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:+.d$} ± {}</td><td>{}</td></tr>",
                esc(r.metric),
                esc(&r.a),
                esc(&r.b),
                r.n,
                r.mean,
                fmt(r.se, d),
                r.p.map_or("–".into(), |p| format!("{p:.4}"))
            );
        }
        let _ = writeln!(s, "</table>");
    }
    let _ = writeln!(s, "<h2>Figures</h2>");
    for (file, caption) in figures {
        let _ = writeln!(
            s,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            esc(file),
            esc(caption),
            esc(caption)
        );
    }
    let failed: Vec<&Cell> = cells.iter().filter(|c| c.error.is_some()).collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "<h2>Failures</h2><ul>");
        for c in failed {
            let _ = writeln!(
                s,
                "<li>{} on {}: {}</li>",
                esc(&c.method),
                esc(&c.case),
                esc(c.error.as_deref().unwrap_or(""))
            );
        }
        let _ = writeln!(s, "</ul>");
    }
    let _ = writeln!(
        s,
        "<p><small>{}</small></p></body></html>",
        esc(DEFINITIONS)
    );
    s
}

/// Where the method's image of the case is.
fn image_of(spec: &Spec, case: &Case, method: &str) -> Option<PathBuf> {
    match spec.methods.iter().find(|m| m.name() == method)? {
        Method::Images { dir, .. } => crate::image_in(dir, &case.name),
        _ => Some(image_path(&spec.report, &case.name, method)),
    }
}

/// The case's grid figure (middle slice), or None when no method produced an image.
fn case_figure(spec: &Spec, case: &Case, methods: &[String], cells: &[Cell]) -> Option<Canvas> {
    let full_reference = case.reference.as_ref().and_then(|r| r.load().ok());
    let reference = full_reference.as_ref().and_then(middle_slice);
    // A method's volume on the reference's grid (fastMRI references crop), then its middle.
    let on_grid = |v: Array3<f32>| match (&case.reference, &full_reference) {
        (Some(r), Some(f)) => r.fit(v, f.dim()).ok(),
        _ => Some(v),
    };
    let mut imgs = Vec::new();
    for m in methods {
        let Some(cell) = cells
            .iter()
            .find(|c| &c.method == m && c.case == case.name && c.error.is_none())
        else {
            continue;
        };
        let Some(img) = image_of(spec, case, m)
            .and_then(|p| crate::read_image(&p).ok())
            .and_then(on_grid)
            .as_ref()
            .and_then(middle_slice)
        else {
            continue;
        };
        let scale = cell.metrics.map_or(1.0, |x| x.scale) as f32;
        let img = img.mapv(|v| v * scale);
        if reference.as_ref().is_some_and(|r| r.dim() != img.dim()) {
            continue;
        }
        let energy = crate::read_image(&energy_path(&spec.report, &case.name, m))
            .ok()
            .and_then(on_grid)
            .as_ref()
            .and_then(middle_slice)
            .filter(|e| e.dim() == img.dim());
        let error = reference.as_ref().map(|r| (&img - r).mapv(f32::abs));
        imgs.push((m.clone(), img, error, energy));
    }
    if imgs.is_empty() {
        return None;
    }
    let ref_energy = None;
    let error_top = imgs
        .iter()
        .filter_map(|(_, _, e, _)| e.as_ref().map(|e| quantile(e.iter().copied(), 0.99)))
        .fold(0.0f32, f32::max);
    let mut cols = Vec::new();
    if let Some(r) = &reference {
        cols.push(Column {
            label: "reference",
            image: r.view(),
            error: None,
            energy: ref_energy,
        });
    }
    for (m, img, err, en) in &imgs {
        cols.push(Column {
            label: m,
            image: img.view(),
            error: err.as_ref().map(|e| e.view()),
            energy: en.as_ref().map(|e| e.view()),
        });
    }
    Some(case_grid(&case.name, &cols, error_top))
}

/// Writes every report file together; returns their paths.
pub(crate) fn write(
    spec: &Spec,
    cases: &[Case],
    methods: &[String],
    cells: &[Cell],
) -> Result<Vec<PathBuf>, CompareError> {
    let dir = &spec.report;
    let mut canvases: Vec<(String, String, Canvas)> = Vec::new();
    for case in cases {
        if let Some(c) = case_figure(spec, case, methods, cells) {
            let caption = format!(
                "{}: middle slice; rows: images (grey, to the reference's 99.5th percentile), |error| (one scale for all methods: 0 to the largest 99th percentile), the prior's energy density; columns: {}{}",
                case.name,
                if case.reference.is_some() { "reference, " } else { "" },
                methods.join(", ")
            );
            canvases.push((format!("figures/case-{}.png", case.name), caption, c));
        }
    }
    for (metric, title) in [("PSNR dB", "PSNR (DB)"), ("SSIM", "SSIM")] {
        let f = METRICS.iter().find(|(n, _)| *n == metric).map(|x| x.1);
        let Some(f) = f else { continue };
        let data: Vec<(String, Vec<f64>)> = methods
            .iter()
            .map(|m| {
                (
                    m.clone(),
                    cells
                        .iter()
                        .filter(|c| &c.method == m)
                        .filter_map(f)
                        .collect(),
                )
            })
            .collect();
        if data.iter().all(|(_, v)| v.is_empty()) {
            continue;
        }
        let file = if metric == "SSIM" { "ssim" } else { "psnr" };
        canvases.push((
            format!("figures/box-{file}.png"),
            format!("{metric} per method over the cases (box: quartiles and median; whiskers: 1.5 IQR; dots: cases)"),
            box_plot(title, &data),
        ));
    }
    std::fs::create_dir_all(dir.join("figures")).map_err(|e| {
        CompareError::Output(basin_export::ExportError::Refused {
            file: dir.join("figures"),
            message: e.to_string(),
        })
    })?;
    let figures: Vec<(String, String)> = canvases
        .iter()
        .map(|(f, c, _)| (f.clone(), c.clone()))
        .collect();
    let csv = metrics_csv(cells);
    let md = summary_md(spec, cases, methods, cells);
    let html = index_html(spec, cases, methods, cells, &figures);
    let text = |p: &str, body: String| -> (PathBuf, basin_export::Writer<'static>) {
        (
            dir.join(p),
            Box::new(move |tmp: &Path| std::fs::write(tmp, body).map_err(|e| e.to_string())),
        )
    };
    let mut outputs: Vec<basin_export::Output<'_>> = vec![
        text("metrics.csv", csv),
        text("summary.md", md),
        text("index.html", html),
    ];
    for (f, _, c) in &canvases {
        outputs.push((dir.join(f), Box::new(move |tmp: &Path| c.write_to(tmp))));
    }
    let paths: Vec<PathBuf> = outputs.iter().map(|(p, _)| p.clone()).collect();
    basin_export::write_all(outputs, true)?;
    Ok(paths)
}
