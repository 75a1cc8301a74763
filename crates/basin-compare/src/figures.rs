//! The report's figures as 8-bit RGB PNGs, drawn without a plotting library: per case a grid
//! (reference and each method; |error| maps on one scale; the prior's energy maps), and box plots
//! of a metric per method. Labels use a built-in 5×7 pixel font (upper-case letters, digits and
//! a little punctuation; lower case is drawn upper case).

use ndarray::ArrayView2;
use std::path::Path;

/// An RGB canvas.
pub struct Canvas {
    w: usize,
    h: usize,
    px: Vec<[u8; 3]>,
}

/// Glyphs of the font, 7 rows of 5 columns ('#' = ink).
const GLYPHS: &[(char, [&str; 7])] = &[
    (
        'A',
        [
            ".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
        ],
    ),
    (
        'B',
        [
            "####.", "#...#", "#...#", "####.", "#...#", "#...#", "####.",
        ],
    ),
    (
        'C',
        [
            ".###.", "#...#", "#....", "#....", "#....", "#...#", ".###.",
        ],
    ),
    (
        'D',
        [
            "####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####.",
        ],
    ),
    (
        'E',
        [
            "#####", "#....", "#....", "####.", "#....", "#....", "#####",
        ],
    ),
    (
        'F',
        [
            "#####", "#....", "#....", "####.", "#....", "#....", "#....",
        ],
    ),
    (
        'G',
        [
            ".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####",
        ],
    ),
    (
        'H',
        [
            "#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#",
        ],
    ),
    (
        'I',
        [
            ".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
    ),
    (
        'J',
        [
            "..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##..",
        ],
    ),
    (
        'K',
        [
            "#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#",
        ],
    ),
    (
        'L',
        [
            "#....", "#....", "#....", "#....", "#....", "#....", "#####",
        ],
    ),
    (
        'M',
        [
            "#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#",
        ],
    ),
    (
        'N',
        [
            "#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#",
        ],
    ),
    (
        'O',
        [
            ".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###.",
        ],
    ),
    (
        'P',
        [
            "####.", "#...#", "#...#", "####.", "#....", "#....", "#....",
        ],
    ),
    (
        'Q',
        [
            ".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#",
        ],
    ),
    (
        'R',
        [
            "####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#",
        ],
    ),
    (
        'S',
        [
            ".####", "#....", "#....", ".###.", "....#", "....#", "####.",
        ],
    ),
    (
        'T',
        [
            "#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#..",
        ],
    ),
    (
        'U',
        [
            "#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###.",
        ],
    ),
    (
        'V',
        [
            "#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#..",
        ],
    ),
    (
        'W',
        [
            "#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#.",
        ],
    ),
    (
        'X',
        [
            "#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#",
        ],
    ),
    (
        'Y',
        [
            "#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#..",
        ],
    ),
    (
        'Z',
        [
            "#####", "....#", "...#.", "..#..", ".#...", "#....", "#####",
        ],
    ),
    (
        '0',
        [
            ".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###.",
        ],
    ),
    (
        '1',
        [
            "..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###.",
        ],
    ),
    (
        '2',
        [
            ".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####",
        ],
    ),
    (
        '3',
        [
            "#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###.",
        ],
    ),
    (
        '4',
        [
            "...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#.",
        ],
    ),
    (
        '5',
        [
            "#####", "#....", "####.", "....#", "....#", "#...#", ".###.",
        ],
    ),
    (
        '6',
        [
            "..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###.",
        ],
    ),
    (
        '7',
        [
            "#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#...",
        ],
    ),
    (
        '8',
        [
            ".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###.",
        ],
    ),
    (
        '9',
        [
            ".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##..",
        ],
    ),
    (
        '-',
        [
            ".....", ".....", ".....", "#####", ".....", ".....", ".....",
        ],
    ),
    (
        '+',
        [
            ".....", "..#..", "..#..", "#####", "..#..", "..#..", ".....",
        ],
    ),
    (
        '.',
        [
            ".....", ".....", ".....", ".....", ".....", ".##..", ".##..",
        ],
    ),
    (
        ',',
        [
            ".....", ".....", ".....", ".....", ".##..", "..#..", ".#...",
        ],
    ),
    (
        ':',
        [
            ".....", ".##..", ".##..", ".....", ".##..", ".##..", ".....",
        ],
    ),
    (
        '_',
        [
            ".....", ".....", ".....", ".....", ".....", ".....", "#####",
        ],
    ),
    (
        '/',
        [
            ".....", "....#", "...#.", "..#..", ".#...", "#....", ".....",
        ],
    ),
    (
        '(',
        [
            "...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#.",
        ],
    ),
    (
        ')',
        [
            ".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#...",
        ],
    ),
    (
        '=',
        [
            ".....", ".....", "#####", ".....", "#####", ".....", ".....",
        ],
    ),
    (
        '%',
        [
            "##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##",
        ],
    ),
    (
        '|',
        [
            "..#..", "..#..", "..#..", "..#..", "..#..", "..#..", "..#..",
        ],
    ),
    (
        '?',
        [
            ".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#..",
        ],
    ),
];

fn glyph(c: char) -> Option<&'static [&'static str; 7]> {
    let c = c.to_ascii_uppercase();
    GLYPHS.iter().find(|(g, _)| *g == c).map(|(_, rows)| rows)
}

impl Canvas {
    /// A canvas filled with `bg`.
    pub fn new(w: usize, h: usize, bg: [u8; 3]) -> Self {
        Canvas {
            w,
            h,
            px: vec![bg; w * h],
        }
    }

    /// Sets one pixel (outside the canvas: ignored).
    pub fn set(&mut self, x: isize, y: isize, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            self.px[y as usize * self.w + x as usize] = c;
        }
    }

    /// The pixel at (x, y).
    pub fn get(&self, x: usize, y: usize) -> [u8; 3] {
        self.px[y * self.w + x]
    }

    /// Width and height.
    pub fn size(&self) -> (usize, usize) {
        (self.w, self.h)
    }

    /// A filled rectangle.
    pub fn rect(&mut self, x0: isize, y0: isize, w: isize, h: isize, c: [u8; 3]) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.set(x, y, c);
            }
        }
    }

    /// `text` at (x, y) (top left), each font pixel `scale`² screen pixels; unknown characters
    /// leave a space. Returns the width drawn.
    pub fn text(&mut self, x: isize, y: isize, text: &str, scale: isize, c: [u8; 3]) -> isize {
        let mut cx = x;
        for ch in text.chars() {
            if let Some(rows) = glyph(ch) {
                for (r, row) in rows.iter().enumerate() {
                    for (col, b) in row.bytes().enumerate() {
                        if b == b'#' {
                            self.rect(
                                cx + col as isize * scale,
                                y + r as isize * scale,
                                scale,
                                scale,
                                c,
                            );
                        }
                    }
                }
            }
            cx += 6 * scale;
        }
        cx - x
    }

    /// A greyscale image `[y, x]` at (x0, y0), `v / top` mapped to 0–255 (clamped).
    pub fn grey(&mut self, x0: isize, y0: isize, img: ArrayView2<'_, f32>, top: f32) {
        let top = if top > 0.0 && top.is_finite() {
            top
        } else {
            1.0
        };
        for ((y, x), &v) in img.indexed_iter() {
            let g = (v / top * 255.0).clamp(0.0, 255.0) as u8;
            self.set(x0 + x as isize, y0 + y as isize, [g, g, g]);
        }
    }

    /// An image `[y, x]` in the "hot" colour map (black, red, yellow, white), `v / top` clamped
    /// to 0–1.
    pub fn hot(&mut self, x0: isize, y0: isize, img: ArrayView2<'_, f32>, top: f32) {
        let top = if top > 0.0 && top.is_finite() {
            top
        } else {
            1.0
        };
        for ((y, x), &v) in img.indexed_iter() {
            let t = (v / top).clamp(0.0, 1.0);
            let ch = |s: f32| ((t * 3.0 - s).clamp(0.0, 1.0) * 255.0) as u8;
            self.set(
                x0 + x as isize,
                y0 + y as isize,
                [ch(0.0), ch(1.0), ch(2.0)],
            );
        }
    }

    /// Writes the canvas as an 8-bit RGB PNG (atomically).
    pub fn write_png(&self, path: &Path) -> Result<(), basin_export::ExportError> {
        basin_export::atomic_write(path, true, |tmp| self.write_to(tmp))
    }

    /// Writes the canvas as an 8-bit RGB PNG at `path` (no temporary).
    pub fn write_to(&self, path: &Path) -> Result<(), String> {
        let f = std::fs::File::create(path).map_err(|e| e.to_string())?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(f), self.w as u32, self.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(|e| e.to_string())?;
        let bytes: Vec<u8> = self.px.iter().flatten().copied().collect();
        wr.write_image_data(&bytes).map_err(|e| e.to_string())
    }
}

/// The value at quantile `q` of the finite values (nearest rank below); 0 when there are none.
pub fn quantile(values: impl Iterator<Item = f32>, q: f64) -> f32 {
    let mut v: Vec<f32> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q) as usize]
}

const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const GREY: [u8; 3] = [128, 128, 128];

/// One column of a case grid: a label, the image, its |error| (None for the reference) and its
/// energy map (None when it could not be scored).
pub struct Column<'a> {
    /// Label above the column.
    pub label: &'a str,
    /// The image (scaled to the reference) `[y, x]`.
    pub image: ArrayView2<'a, f32>,
    /// |image − reference|.
    pub error: Option<ArrayView2<'a, f32>>,
    /// The prior's energy density.
    pub energy: Option<ArrayView2<'a, f32>>,
}

/// A case grid: row 1 the images (grey, 0 to the reference's 99.5th percentile), row 2 the
/// |error| maps (hot, 0 to `error_top`, one scale for all methods), row 3 the prior's energy
/// maps (hot, 0 to the largest 99th percentile of the maps); labels above and at the left.
pub fn case_grid(title: &str, cols: &[Column<'_>], error_top: f32) -> Canvas {
    let (ny, nx) = cols[0].image.dim();
    let (pad, head, left) = (6usize, 34usize, 22usize);
    let w = left + cols.len() * (nx + pad) + pad;
    let h = head + 3 * (ny + pad) + pad;
    let mut c = Canvas::new(w, h, BLACK);
    c.text(pad as isize, 4, title, 2, WHITE);
    let top = quantile(cols[0].image.iter().copied(), 0.995);
    let energy_top = cols
        .iter()
        .filter_map(|k| k.energy.map(|e| quantile(e.iter().copied(), 0.99)))
        .fold(0.0f32, f32::max);
    for (r, label) in ["IMAGE", "ERROR", "ENERGY"].iter().enumerate() {
        let y = (head + r * (ny + pad) + ny / 2) as isize;
        // Vertical label: one character per line.
        for (i, ch) in label.chars().enumerate() {
            c.text(6, y - 28 + i as isize * 10, &ch.to_string(), 1, GREY);
        }
    }
    for (i, col) in cols.iter().enumerate() {
        let x0 = (left + pad + i * (nx + pad)) as isize;
        let max_chars = (nx / 6).max(1);
        let label: String = col.label.chars().take(max_chars).collect();
        c.text(x0, (head - 12) as isize, &label, 1, WHITE);
        c.grey(x0, head as isize, col.image, top);
        if let Some(e) = col.error {
            c.hot(x0, (head + ny + pad) as isize, e, error_top);
        }
        if let Some(e) = col.energy {
            c.hot(x0, (head + 2 * (ny + pad)) as isize, e, energy_top);
        }
    }
    c
}

/// A box plot of `values` per method (median, quartiles, whiskers to the furthest point within
/// 1.5 IQR, every point drawn), with the y axis labelled at five ticks.
pub fn box_plot(title: &str, methods: &[(String, Vec<f64>)]) -> Canvas {
    let all: Vec<f64> = methods
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let m = (hi - lo) * 0.08;
        (lo - m, hi + m)
    } else if lo.is_finite() {
        (lo - 1.0, lo + 1.0)
    } else {
        (0.0, 1.0)
    };
    let slot = 110usize;
    let (left, top, plot_h, bottom) = (70usize, 40usize, 300usize, 40usize);
    let w = left + methods.len().max(1) * slot + 20;
    let h = top + plot_h + bottom;
    let mut c = Canvas::new(w, h, WHITE);
    c.text(10, 10, title, 2, BLACK);
    let y_of = |v: f64| (top as f64 + (hi - v) / (hi - lo) * plot_h as f64).round() as isize;
    // Axis and ticks.
    c.rect(left as isize - 2, top as isize, 1, plot_h as isize, BLACK);
    for k in 0..5 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        let y = y_of(v);
        c.rect(left as isize - 6, y, 4, 1, BLACK);
        c.rect(
            left as isize,
            y,
            (w - left - 10) as isize,
            1,
            [225, 225, 225],
        );
        c.text(4, y - 3, &format_tick(v, hi - lo), 1, BLACK);
    }
    let colours = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
    ];
    for (i, (name, vals)) in methods.iter().enumerate() {
        let col = colours[i % colours.len()];
        let x0 = (left + i * slot + 20) as isize;
        let bw = (slot - 40) as isize;
        let mut v: Vec<f64> = vals.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        if !v.is_empty() {
            let q = |p: f64| {
                let pos = (v.len() - 1) as f64 * p;
                let (a, b) = (pos.floor() as usize, pos.ceil() as usize);
                v[a] + (v[b] - v[a]) * (pos - a as f64)
            };
            let (q1, med, q3) = (q(0.25), q(0.5), q(0.75));
            let iqr = q3 - q1;
            let wlo = v
                .iter()
                .copied()
                .find(|&x| x >= q1 - 1.5 * iqr)
                .unwrap_or(q1);
            let whi = v
                .iter()
                .rev()
                .copied()
                .find(|&x| x <= q3 + 1.5 * iqr)
                .unwrap_or(q3);
            let xm = x0 + bw / 2;
            c.rect(xm, y_of(whi), 1, (y_of(wlo) - y_of(whi)).max(1), BLACK);
            c.rect(xm - bw / 4, y_of(whi), bw / 2, 1, BLACK);
            c.rect(xm - bw / 4, y_of(wlo), bw / 2, 1, BLACK);
            let (yt, yb) = (y_of(q3), y_of(q1));
            c.rect(x0, yt, bw, (yb - yt).max(1), col);
            c.rect(x0, y_of(med) - 1, bw, 3, BLACK);
            for (j, &x) in v.iter().enumerate() {
                let jitter = (j as isize * 7) % (bw / 2).max(1) - bw / 4;
                c.rect(xm + jitter - 1, y_of(x) - 1, 3, 3, [40, 40, 40]);
            }
        }
        let max_chars = (slot / 6).max(1);
        let label: String = name.chars().take(max_chars).collect();
        c.text(x0 - 10, (top + plot_h + 12) as isize, &label, 1, BLACK);
    }
    c
}

/// A tick label with as many decimals as the axis span needs.
fn format_tick(v: f64, span: f64) -> String {
    let decimals = if span >= 20.0 {
        0
    } else if span >= 2.0 {
        1
    } else if span >= 0.2 {
        2
    } else {
        3
    };
    format!("{v:.decimals$}")
}
