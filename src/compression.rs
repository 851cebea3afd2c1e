//! Compression-history evidence (METHOD.md section 9): where the file's untouched background
//! keeps the trace of an earlier JPEG compression and where it does not.
//!
//! - A-DJPG: Bianchi, De Rosa, Piva, "Improved DCT coefficient analysis for forgery
//!   localization in JPEG images", ICASSP 2011; Bianchi & Piva, "Image forgery localization via
//!   block-grained analysis of JPEG artifacts", IEEE TIFS 7(3), 2012, section III (eqs. 4-13).
//!   Per frequency, the histogram of the stored coefficients is fitted by EM as a mixture of a
//!   single-compression model and a double-compression model with primary step `Q1`; the
//!   per-block log-likelihood ratio is summed over the frequencies that carry a trace.
//!   Same algorithm and defaults as `../shared/tools/dq_prototype.py` (`K = 36`, `s = 5`, a
//!   `log(#blocks)` guard), whose numbers the Rust maps reproduce (`training/tests`).
//! - NA-DJPG: Bianchi & Piva, "Detection of nonaligned double JPEG compression based on
//!   integer periodicity maps", IEEE TIFS 7(2), 2012: a region that was JPEG-compressed on a grid
//!   shifted by `(r, c)` keeps, on that grid, DCT coefficients near multiples of its step `Q1`.
//!   Here the integer periodicity is scored per coefficient by a wrapped-Gaussian likelihood
//!   ratio against a uniform phase (section "NA-DJPG" below states the model).
//!
//! Everything runs on the luminance coefficients as stored; maps are at native resolution in
//! the stored orientation, then oriented and resampled by the caller like the other maps.

use serde::{Deserialize, Serialize};

use crate::jpeg::{Coefficients, IJG_LUMA_Q50, ZIGZAG, ijg_equivalent_quality};
use crate::raster::{Map, row_ranges, threads};

/// Settings of the evidence maps (recorded in every report).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompressionParams {
    /// A-DJPG: number of zig-zag frequencies examined, DC included (prototype `K`).
    pub adjpg_frequencies: usize,
    /// Box smoothing of the block log-likelihood ratios, in blocks (prototype `s`).
    pub smooth_blocks: usize,
    /// A-DJPG: the image carries a trace only when the gains of the frequencies that pass the
    /// `log(#blocks)` guard sum to at least this many nats per block. The per-frequency guard alone
    /// lets chance fits of the single-compression model through: their gain grows with the
    /// number of blocks. Chosen on generated images, not on CASIA: 80 single-compressed photos
    /// (q50-98) sum to at most 0.143, 48 double-compressed ones to a median of 7.7
    /// (docs/compression.md).
    pub adjpg_min_gain_per_block: f64,
    /// NA-DJPG: number of zig-zag AC frequencies examined on each shifted grid.
    pub na_frequencies: usize,
    /// NA-DJPG: at most this many blocks (evenly spaced) decide the grid shift and `Q1`.
    pub na_detection_blocks: usize,
    /// NA-DJPG: how far (in robust standard deviations over the 63 shifts) the best shift's
    /// summed gain must stand above the median shift. Chosen on generated images
    /// (docs/compression.md).
    pub na_robust_z: f64,
}

impl Default for CompressionParams {
    fn default() -> Self {
        Self {
            adjpg_frequencies: 36,
            smooth_blocks: 5,
            adjpg_min_gain_per_block: 0.15,
            na_frequencies: 9,
            na_detection_blocks: 4096,
            na_robust_z: 8.0,
        }
    }
}

/// The fit of one DCT frequency (A-DJPG).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrequencyFit {
    /// Row and column of the frequency in the 8x8 block.
    pub u: usize,
    pub v: usize,
    /// Step of the last compression (the stored table).
    pub q2: u16,
    /// Most likely primary step.
    pub q1: u16,
    /// EM weight of the single-compression component (fraction of blocks without the trace).
    pub alpha: f64,
    /// Log-likelihood gain of the best model over the best "no trace" model (`Q1` divides `Q2`), nats.
    pub gain: f64,
    /// Whether the frequency enters the map (`Q2 mod Q1 != 0` and `gain > log(#blocks)`).
    pub used: bool,
}

/// A map of `P(tampered)` per 8x8 block, with its grid origin in stored-image pixels.
#[derive(Debug, Clone)]
pub struct BlockMap {
    pub blocks_x: usize,
    pub blocks_y: usize,
    /// Pixel offset of block (0, 0): (0, 0) for A-DJPG, the grid shift for NA-DJPG.
    pub origin: (usize, usize),
    /// Row-major, `blocks_y * blocks_x`, each in [0, 1].
    pub p: Vec<f32>,
    /// The same as log-odds of "tampered" (the smoothed, unclipped `-LLR`), which keeps the
    /// ranking where `p` saturates at 0 or 1 in f32; the prior is combined from these.
    pub log_odds: Vec<f32>,
}

impl BlockMap {
    /// Nearest-block map at pixel resolution `width x height` (stored orientation); pixels outside
    /// the grid take the nearest block.
    pub fn to_pixels(&self, width: usize, height: usize) -> Map {
        self.values_to_pixels(&self.p, 0.5, width, height)
    }

    /// [`Self::log_odds`] at pixel resolution, like [`Self::to_pixels`].
    pub fn log_odds_pixels(&self, width: usize, height: usize) -> Map {
        self.values_to_pixels(&self.log_odds, 0.0, width, height)
    }

    fn values_to_pixels(&self, values: &[f32], empty: f32, width: usize, height: usize) -> Map {
        let mut data = vec![empty; width * height];
        if self.blocks_x == 0 || self.blocks_y == 0 || values.len() != self.blocks_x * self.blocks_y
        {
            return Map::new(width, height, data);
        }
        let col_of: Vec<usize> = (0..width)
            .map(|x| (x.saturating_sub(self.origin.0) / 8).min(self.blocks_x - 1))
            .collect();
        for y in 0..height {
            let by = (y.saturating_sub(self.origin.1) / 8).min(self.blocks_y - 1);
            let row = &values[by * self.blocks_x..(by + 1) * self.blocks_x];
            for (d, &bx) in data[y * width..(y + 1) * width].iter_mut().zip(&col_of) {
                *d = row[bx];
            }
        }
        Map::new(width, height, data)
    }

    /// Fraction of blocks with `P(tampered) > 0.5`.
    pub fn flagged_fraction(&self) -> f64 {
        if self.p.is_empty() {
            return 0.0;
        }
        self.p.iter().filter(|&&p| p > 0.5).count() as f64 / self.p.len() as f64
    }
}

/// A-DJPG result.
#[derive(Debug, Clone)]
pub struct Adjpg {
    pub map: BlockMap,
    pub frequencies: Vec<FrequencyFit>,
    /// Standard deviation of the decoding rounding noise, DCT units.
    pub rounding_sd: f64,
    /// `log(#blocks)`: the gain a frequency must beat to be used.
    pub guard: f64,
}

impl Adjpg {
    pub fn used(&self) -> usize {
        self.frequencies.iter().filter(|f| f.used).count()
    }
}

/// NA-DJPG result: the grid shift found (if any) and the map on it.
#[derive(Debug, Clone)]
pub struct NaDjpg {
    /// Grid shift (columns, rows) in pixels, 1..7 each, not both 0.
    pub shift: (usize, usize),
    /// Primary step per used frequency: (u, v, Q1, gain).
    pub frequencies: Vec<(usize, usize, u16, f64)>,
    /// Fraction of blocks that carry the shifted grid.
    pub trace_fraction: f64,
    /// True when the trace covers the minority of the image (a region pasted from another JPEG:
    /// the trace marks it); false when it covers the majority (the image was cropped or shifted
    /// before the edit: the missing trace marks the edit).
    pub trace_marks_region: bool,
    pub map: BlockMap,
}

/// Every finding of the compression-history analysis of one file.
#[derive(Debug, Clone)]
pub struct CompressionEvidence {
    pub width: usize,
    pub height: usize,
    /// The stored luminance table, natural order.
    pub table: [u16; 64],
    /// IJG quality equivalent to the stored table, and whether it matches exactly.
    pub quality: Option<(u8, bool)>,
    pub adjpg: Adjpg,
    /// IJG quality whose table best fits the estimated primary steps of the used frequencies.
    pub primary_quality: Option<u8>,
    pub na: Option<NaDjpg>,
    /// Why no NA-DJPG map: the test that failed, in words.
    pub na_absent: Option<String>,
}

impl CompressionEvidence {
    /// The combined compression evidence per pixel (stored orientation, native resolution), as
    /// log-odds of "tampered" (unclipped; the prior uses these): A-DJPG and NA-DJPG log-odds
    /// added as independent evidence; NA-DJPG enters only when a shifted grid was found.
    pub fn combined_log_odds_pixels(&self) -> Map {
        let mut a = self.adjpg.map.log_odds_pixels(self.width, self.height);
        if let Some(na) = &self.na {
            let n = na.map.log_odds_pixels(self.width, self.height);
            for (x, y) in a.data.iter_mut().zip(&n.data) {
                *x += y;
            }
        }
        a
    }

    /// Plain-words findings for the analyst.
    pub fn summary(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.quality {
            Some((q, true)) => out.push(format!(
                "The file was last saved with the standard (IJG) table of quality {q}."
            )),
            Some((q, false)) => out.push(format!(
                "The file was last saved with a custom quantisation table, closest to IJG quality {q}."
            )),
            None => {}
        }
        let used = self.adjpg.used();
        let k = self.adjpg.frequencies.len();
        if used == 0 {
            out.push(format!(
                "No aligned double-compression trace: none of the {k} frequencies examined shows an earlier compression (single-compressed, saved at a finer step than before, or resampled since). The A-DJPG map carries no evidence here."
            ));
        } else {
            let flagged = 100.0 * self.adjpg.map.flagged_fraction();
            let prim = self
                .primary_quality
                .map(|q| format!(" at about quality {q}"))
                .unwrap_or_default();
            out.push(format!(
                "The background was compressed before{prim} ({used} of {k} frequencies carry the trace); about {flagged:.0} % of the image shows no such trace (A-DJPG P(tampered) > 0.5): pasted, resampled or retouched there, or too smooth to tell."
            ));
        }
        match (&self.na, &self.na_absent) {
            (Some(na), _) => {
                let pct = 100.0 * na.trace_fraction;
                let side = if na.trace_marks_region {
                    "a region pasted from another JPEG"
                } else {
                    "the image was cropped or shifted after its first compression; the edit is where the trace is missing"
                };
                out.push(format!(
                    "A compression grid shifted by ({}, {}) px covers about {pct:.0} % of the image: {side}.",
                    na.shift.0, na.shift.1
                ));
            }
            (None, Some(why)) => out.push(format!("No misaligned (NA-DJPG) grid: {why}.")),
            (None, None) => {}
        }
        out
    }
}

/// 8-point orthonormal DCT-II matrix, `C[k][n]` (so `X = C x C^T`, `x = C^T X C`).
fn dct_matrix() -> [[f64; 8]; 8] {
    let mut c = [[0f64; 8]; 8];
    for (k, row) in c.iter_mut().enumerate() {
        let s = if k == 0 { (1.0f64 / 8.0).sqrt() } else { 0.5 };
        for (n, v) in row.iter_mut().enumerate() {
            *v = s * ((2 * n + 1) as f64 * k as f64 * std::f64::consts::PI / 16.0).cos();
        }
    }
    c
}

/// 2-D orthonormal DCT of the 8x8 block of `img` (row stride `stride`) at (x0, y0).
fn dct_block(
    c: &[[f64; 8]; 8],
    img: &[f64],
    stride: usize,
    x0: usize,
    y0: usize,
    out: &mut [f64; 64],
) {
    let mut tmp = [0f64; 64];
    for i in 0..8 {
        let row = &img[(y0 + i) * stride + x0..(y0 + i) * stride + x0 + 8];
        for k in 0..8 {
            let mut s = 0.0;
            for n in 0..8 {
                s += c[k][n] * row[n];
            }
            tmp[i * 8 + k] = s;
        }
    }
    for k in 0..8 {
        for l in 0..8 {
            let mut s = 0.0;
            for i in 0..8 {
                s += c[k][i] * tmp[i * 8 + l];
            }
            out[k * 8 + l] = s;
        }
    }
}

/// Inverse of [`dct_block`] for dequantised coefficients (natural order).
fn idct_block(c: &[[f64; 8]; 8], coef: &[f64; 64], out: &mut [f64; 64]) {
    let mut tmp = [0f64; 64];
    for k in 0..8 {
        for n in 0..8 {
            let mut s = 0.0;
            for l in 0..8 {
                s += coef[k * 8 + l] * c[l][n];
            }
            tmp[k * 8 + n] = s;
        }
    }
    for m in 0..8 {
        for n in 0..8 {
            let mut s = 0.0;
            for k in 0..8 {
                s += c[k][m] * tmp[k * 8 + n];
            }
            out[m * 8 + n] = s;
        }
    }
}

/// Unrounded decode of one plane: IDCT of the dequantised coefficients plus 128, at the plane's
/// block resolution (`blocks_x * 8` by `blocks_y * 8`), in parallel strips.
fn float_decode(plane: &crate::jpeg::Plane) -> Vec<f64> {
    let c = dct_matrix();
    let (bw, bh) = (plane.blocks_x, plane.blocks_y);
    let w = bw * 8;
    let mut img = vec![0f64; w * bh * 8];
    let rows_per = bh.div_ceil(threads().max(1)).max(1);
    std::thread::scope(|s| {
        for (chunk_i, chunk) in img.chunks_mut(rows_per * 8 * w).enumerate() {
            let c = &c;
            s.spawn(move || {
                let mut coef = [0f64; 64];
                let mut px = [0f64; 64];
                for (local_by, band) in chunk.chunks_mut(8 * w).enumerate() {
                    let by = chunk_i * rows_per + local_by;
                    for bx in 0..bw {
                        let b = &plane.blocks[by * bw + bx];
                        for k in 0..64 {
                            coef[k] = b[k] as f64 * plane.table[k] as f64;
                        }
                        idct_block(c, &coef, &mut px);
                        for i in 0..8 {
                            for j in 0..8 {
                                band[i * w + bx * 8 + j] = px[i * 8 + j] + 128.0;
                            }
                        }
                    }
                }
            });
        }
    });
    img
}

/// About this many blocks (at least) estimate the rounding noise (an even subsample on large images).
const NOISE_BLOCKS: usize = 16384;

/// At most this many blocks make the calibrated histograms (an even subsample on large images).
const CALIBRATION_BLOCKS: usize = 65536;

/// Standard normal CDF.
fn ndtr(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Rounding noise between the two compressions, estimated from the unrounded decode: the
/// 8-bit rounding and clipping of the RGB pixels, taken back to luminance and to the DCT domain
/// (prototype `rounding_noise`). Returns (standard deviation incl. the 1/12 of the second
/// rounding, mean of the DC error).
fn rounding_noise(coefs: &Coefficients, yf: &[f64], w: usize, h: usize) -> (f64, f64) {
    // Chroma planes at their own resolution, with the repeat factors that upsample them
    // (prototype: np.repeat, then edge padding).
    type ChromaPlane = (Vec<f64>, usize, usize, usize, usize);
    let chroma: Option<Vec<ChromaPlane>> =
        (coefs.first_is_luma && coefs.planes.len() == 3).then(|| {
            coefs.planes[1..]
                .iter()
                .map(|p| {
                    let (cw, ch) = (p.blocks_x * 8, p.blocks_y * 8);
                    (float_decode(p), cw, ch, (w / cw).max(1), (h / ch).max(1))
                })
                .collect()
        });
    let chroma_at = |plane: &ChromaPlane, i: usize| -> f64 {
        let (img, cw, ch, fx, fy) = plane;
        let (y, x) = (i / w, i % w);
        img[(y / fy).min(ch - 1) * cw + (x / fx).min(cw - 1)]
    };
    let err = |i: usize| -> f64 {
        let yv = yf[i];
        match &chroma {
            Some(ch) => {
                let (cb, cr) = (chroma_at(&ch[0], i) - 128.0, chroma_at(&ch[1], i) - 128.0);
                let rgb = [
                    yv + 1.402 * cr,
                    yv - 0.344136 * cb - 0.714136 * cr,
                    yv + 1.772 * cb,
                ];
                let e = rgb.map(|v| v - v.round_ties_even().clamp(0.0, 255.0));
                0.299 * e[0] + 0.587 * e[1] + 0.114 * e[2]
            }
            None => yv - yv.round_ties_even().clamp(0.0, 255.0),
        }
    };
    let c = dct_matrix();
    let (bw, bh) = (w / 8, h / 8);
    // A global statistic: every block on small images, an even subsample of large ones.
    let step = ((bw * bh) / NOISE_BLOCKS).max(1);
    let mut block = vec![0f64; 64];
    let mut out = [0f64; 64];
    let (mut sum, mut sum2, mut n, mut dc_sum, mut dc_n) = (0f64, 0f64, 0usize, 0f64, 0usize);
    for bi in (0..bw * bh).step_by(step) {
        let (by, bx) = (bi / bw, bi % bw);
        for i in 0..8 {
            for j in 0..8 {
                block[i * 8 + j] = err((by * 8 + i) * w + bx * 8 + j);
            }
        }
        dct_block(&c, &block, 8, 0, 0, &mut out);
        for &v in &out {
            sum += v;
            sum2 += v * v;
        }
        n += 64;
        dc_sum += out[0];
        dc_n += 1;
    }
    let mean = sum / n.max(1) as f64;
    let var = (sum2 / n.max(1) as f64 - mean * mean).max(0.0);
    ((var + 1.0 / 12.0).sqrt(), dc_sum / dc_n.max(1) as f64)
}

/// Mass of the unit histogram `h` below index-space point `t` (half of the bin when `t` is an
/// integer); `cs` is the cumulative sum with a leading 0.
fn cdf_at(cs: &[f64], h: &[f64], t: f64) -> f64 {
    let n = h.len() as i64;
    let fl = t.floor();
    let fi = (fl as i64).clamp(-1, n - 1);
    if (t - fl).abs() < 1e-9 {
        let below = cs[fi.clamp(0, n) as usize];
        if fi >= 0 && fi < n {
            below + 0.5 * h[fi as usize]
        } else {
            below
        }
    } else {
        cs[(fi + 1).clamp(0, n) as usize]
    }
}

/// Mass of `h` (value v at index v + off) in the bins `round(v / q) = k`, k = kmin..=kmax.
fn qbin(cs: &[f64], h: &[f64], off: i64, q: f64, kmin: i64, kmax: i64) -> Vec<f64> {
    (kmin..=kmax)
        .map(|k| {
            let k = k as f64;
            cdf_at(cs, h, (k + 0.5) * q + off as f64) - cdf_at(cs, h, (k - 0.5) * q + off as f64)
        })
        .collect()
}

/// P(k) under A-DJPG (Bianchi & Piva 2012, eq. 9): quantise with `q1`, dequantise, add
/// N(bias, sig^2) rounding noise, quantise with `q2`.
#[allow(clippy::too_many_arguments)]
fn dq_model(
    cs: &[f64],
    h: &[f64],
    off: i64,
    q1: i64,
    q2: i64,
    kmin: i64,
    kmax: i64,
    sig: f64,
    bias: f64,
) -> Vec<f64> {
    let jmin = (-off as f64 / q1 as f64).floor() as i64 - 1;
    let jmax = ((h.len() as i64 - off) as f64 / q1 as f64).ceil() as i64 + 1;
    let m = qbin(cs, h, off, q1 as f64, jmin, jmax);
    let r = ((5.0 * sig + q2 as f64) / q2 as f64).ceil() as i64 + 1;
    let mut out = vec![0f64; (kmax - kmin + 1) as usize];
    let q2f = q2 as f64;
    for (ji, &mass) in m.iter().enumerate() {
        if mass <= 0.0 {
            continue;
        }
        let j = jmin + ji as i64;
        let v = j as f64 * q1 as f64 + bias;
        let kc = (v / q2f).round_ties_even() as i64;
        for k in kc - r..=kc + r {
            if k < kmin || k > kmax {
                continue;
            }
            let kf = k as f64;
            let p = ndtr(((kf + 0.5) * q2f - v) / sig) - ndtr(((kf - 0.5) * q2f - v) / sig);
            out[(k - kmin) as usize] += p * mass;
        }
    }
    out
}

/// EM for the mixture `alpha p0 + (1 - alpha) p1` on histogram counts `c` (Bianchi & Piva 2012,
/// eqs. 11-12); returns alpha and the log-likelihood.
fn em_alpha(c: &[f64], p0: &[f64], p1: &[f64]) -> (f64, f64) {
    let n: f64 = c.iter().sum();
    let mut alpha = 0.5;
    for _ in 0..50 {
        let mut s = 0.0;
        for ((&ci, &a), &b) in c.iter().zip(p0).zip(p1) {
            if ci > 0.0 {
                s += ci * alpha * a / (alpha * a + (1.0 - alpha) * b);
            }
        }
        let next = s / n;
        let done = (next - alpha).abs() < 1e-4;
        alpha = next;
        if done {
            break;
        }
    }
    let ll = c
        .iter()
        .zip(p0)
        .zip(p1)
        .filter(|((ci, _), _)| **ci > 0.0)
        .map(|((&ci, &a), &b)| ci * (alpha * a + (1.0 - alpha) * b).ln())
        .sum();
    (alpha, ll)
}

/// One frequency of the A-DJPG analysis: its fit and, when it carries a trace, the per-block LLR
/// `log p1(C[b]) / p0(C[b])`.
fn adjpg_frequency(
    x: &[i64],
    cal: &[f64],
    u: usize,
    v: usize,
    q2: i64,
    sig: f64,
    bias: f64,
) -> (FrequencyFit, Option<Vec<f64>>) {
    let q50 = IJG_LUMA_Q50[u * 8 + v] as i64;
    let max_cal = cal.iter().fold(0f64, |m, &c| m.max(c.abs()));
    let max_x = x.iter().fold(0i64, |m, &c| m.max(c.abs()));
    let b = (max_cal.max((max_x * q2) as f64)) as i64 + 4 * q50 + 16;
    let mut h = vec![0f64; (2 * b + 1) as usize];
    for &c in cal {
        let i = (c.round_ties_even() as i64 + b).clamp(0, 2 * b);
        h[i as usize] += 1.0;
    }
    let ncal: f64 = h.iter().sum();
    for v in h.iter_mut() {
        *v /= ncal.max(1.0);
    }
    let mut cs = Vec::with_capacity(h.len() + 1);
    cs.push(0.0);
    let mut acc = 0.0;
    for &v in &h {
        acc += v;
        cs.push(acc);
    }
    let kmin = (-b as f64 / q2 as f64).floor() as i64 - 1;
    let kmax = (b as f64 / q2 as f64).ceil() as i64 + 1;
    let nk = (kmax - kmin + 1) as usize;
    // Laplace correction, as Bianchi & Piva.
    let lap = |p: Vec<f64>| -> Vec<f64> {
        let s: f64 = p.iter().sum::<f64>().max(1e-300);
        p.into_iter()
            .map(|v| (v / s * ncal + 1.0) / (ncal + nk as f64))
            .collect()
    };
    let p0 = lap(qbin(&cs, &h, b, q2 as f64, kmin, kmax));
    let mut counts = vec![0f64; nk];
    for &xi in x {
        counts[(xi - kmin).clamp(0, nk as i64 - 1) as usize] += 1.0;
    }
    let mut best: Option<(i64, f64, f64, Vec<f64>)> = None;
    let mut base = f64::NEG_INFINITY;
    for q1 in 1..=q50 {
        let p1 = lap(dq_model(&cs, &h, b, q1, q2, kmin, kmax, sig, bias));
        let (a, l) = em_alpha(&counts, &p0, &p1);
        if q2 % q1 == 0 {
            base = base.max(l);
        }
        if best.as_ref().is_none_or(|bst| l > bst.1) {
            best = Some((q1, l, a, p1));
        }
    }
    let Some((q1, l, alpha, p1)) = best else {
        unreachable!("q50 >= 1, so the loop runs")
    };
    let fit = FrequencyFit {
        u,
        v,
        q2: q2 as u16,
        q1: q1 as u16,
        alpha,
        gain: l - base,
        used: false,
    };
    let llr = (q2 % q1 != 0).then(|| {
        let table: Vec<f64> = p1.iter().zip(&p0).map(|(a, b)| (a / b).ln()).collect();
        x.iter()
            .map(|&xi| table[(xi - kmin).clamp(0, nk as i64 - 1) as usize])
            .collect()
    });
    (fit, llr)
}

/// Centred box mean over `s x s` blocks with edge replication (scipy `uniform_filter`,
/// mode `nearest`).
fn box_smooth(v: &[f64], w: usize, h: usize, s: usize) -> Vec<f64> {
    if s <= 1 || w == 0 || h == 0 {
        return v.to_vec();
    }
    let r = (s / 2) as i64;
    let lo = -r;
    let hi = s as i64 - 1 - r;
    let clampi = |i: i64, n: usize| i.clamp(0, n as i64 - 1) as usize;
    let mut tmp = vec![0f64; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for d in lo..=hi {
                acc += v[y * w + clampi(x as i64 + d, w)];
            }
            tmp[y * w + x] = acc / s as f64;
        }
    }
    let mut out = vec![0f64; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for d in lo..=hi {
                acc += tmp[clampi(y as i64 + d, h) * w + x];
            }
            out[y * w + x] = acc / s as f64;
        }
    }
    out
}

/// `P(tampered | block) = 1 / (1 + exp(LLR))` of the smoothed LLR (Bianchi & Piva 2012, eq. 13).
/// Returns (P(tampered), log-odds of tampered = -smoothed LLR) per block.
fn posterior(llr: &[f64], w: usize, h: usize, s: usize) -> (Vec<f32>, Vec<f32>) {
    let sm = box_smooth(llr, w, h, s);
    let p = sm
        .iter()
        .map(|l| (1.0 / (1.0 + l.clamp(-50.0, 50.0).exp())) as f32)
        .collect();
    let lo = sm.iter().map(|&l| (-l) as f32).collect();
    (p, lo)
}

/// A-DJPG evidence of one file's luminance (METHOD.md section 9).
///
/// Input: the stored coefficients. Output: per-block `P(tampered)` on the file's 8x8 grid
/// (`blocks_y x blocks_x` of the luminance plane), the fit of each of the first
/// `params.adjpg_frequencies` zig-zag frequencies, the rounding-noise deviation and the guard.
/// A file without any trace gives `P = 0.5` everywhere and no used frequency.
pub fn adjpg(coefs: &Coefficients, params: &CompressionParams) -> Adjpg {
    let luma = coefs.luma();
    let (bw, bh) = (luma.blocks_x, luma.blocks_y);
    let (w, h) = (bw * 8, bh * 8);
    let yf = float_decode(luma);
    let (sig, bias_dc) = rounding_noise(coefs, &yf, w, h);
    let nfreq = params.adjpg_frequencies.clamp(1, 64);
    let freqs: Vec<(usize, usize)> = ZIGZAG[..nfreq].iter().map(|&k| (k / 8, k % 8)).collect();

    // Calibrated coefficients: DCT on the grid shifted by (1, 1). Only their histogram is used, so
    // large images use an even subsample of at most `CALIBRATION_BLOCKS` blocks (every block below).
    let (cbw, cbh) = ((w.saturating_sub(1)) / 8, (h.saturating_sub(1)) / 8);
    let step = (cbw * cbh).div_ceil(CALIBRATION_BLOCKS).max(1);
    let picked: Vec<usize> = (0..cbw * cbh).step_by(step).collect();
    let parts = row_ranges(picked.len(), threads(), 1);
    let cal_parts: Vec<Vec<Vec<f64>>> = std::thread::scope(|sc| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|range| {
                let (picked, yf, freqs) = (&picked, &yf, &freqs);
                sc.spawn(move || {
                    let c = dct_matrix();
                    let mut out = [0f64; 64];
                    let mut cal: Vec<Vec<f64>> = vec![Vec::with_capacity(range.len()); nfreq];
                    for &bi in &picked[range] {
                        let (by, bx) = (bi / cbw, bi % cbw);
                        dct_block(&c, yf, w, 1 + bx * 8, 1 + by * 8, &mut out);
                        for (fi, &(u, v)) in freqs.iter().enumerate() {
                            let dc = if (u, v) == (0, 0) { 8.0 * 128.0 } else { 0.0 };
                            cal[fi].push(out[u * 8 + v] - dc);
                        }
                    }
                    cal
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut cal: Vec<Vec<f64>> = vec![Vec::with_capacity(picked.len()); nfreq];
    for part in cal_parts {
        for (dst, src) in cal.iter_mut().zip(part) {
            dst.extend(src);
        }
    }
    drop(yf);
    let guard = ((bw * bh) as f64).ln();

    let jobs: Vec<usize> = (0..nfreq).collect();
    let parts = row_ranges(jobs.len(), threads(), 1);
    let results: Vec<(usize, FrequencyFit, Option<Vec<f64>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|range| {
                let (freqs, cal) = (&freqs, &cal);
                s.spawn(move || {
                    range
                        .map(|fi| {
                            let (u, v) = freqs[fi];
                            let x: Vec<i64> =
                                luma.blocks.iter().map(|b| b[u * 8 + v] as i64).collect();
                            let q2 = luma.table[u * 8 + v] as i64;
                            let bias = if (u, v) == (0, 0) { bias_dc } else { 0.0 };
                            let (fit, llr) = adjpg_frequency(&x, &cal[fi], u, v, q2, sig, bias);
                            (fi, fit, llr)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut fits: Vec<Option<FrequencyFit>> = vec![None; nfreq];
    let mut llr_sum = vec![0f64; bw * bh];
    for (fi, mut fit, llr) in results {
        if let Some(llr) = llr
            && fit.gain > guard
        {
            fit.used = true;
            for (s, l) in llr_sum.iter_mut().zip(&llr) {
                *s += l;
            }
        }
        fits[fi] = Some(fit);
    }
    let mut frequencies: Vec<FrequencyFit> = fits.into_iter().flatten().collect();
    let total_gain: f64 = frequencies.iter().filter(|f| f.used).map(|f| f.gain).sum();
    if total_gain < params.adjpg_min_gain_per_block * (bw * bh) as f64 {
        frequencies.iter_mut().for_each(|f| f.used = false);
        llr_sum.iter_mut().for_each(|l| *l = 0.0);
    }
    let (p, log_odds) = posterior(&llr_sum, bw, bh, params.smooth_blocks);
    Adjpg {
        map: BlockMap {
            blocks_x: bw,
            blocks_y: bh,
            origin: (0, 0),
            p,
            log_odds,
        },
        frequencies,
        rounding_sd: sig,
        guard,
    }
}

// ------------------------------------------------------------------------------------ NA-DJPG
//
// Model (per DCT coefficient y of the unrounded decode, computed on the grid shifted by (c, r)):
// H1, the block was compressed on that grid with step Q1 before: y = Q1 k + e, e ~ N(0, s^2),
// s^2 = mean(Q2^2) / 12 + 1 / 12 (the last compression's quantisation noise spread evenly over
// the shifted basis, plus the decoder's rounding). The phase d = y - Q1 round(y / Q1) is then a
// wrapped Gaussian; H0 (no compression on that grid): the phase is uniform on [-Q1/2, Q1/2).
// LLR(y) = log(Q1 WN(d; s)) for |y| >= Q1 (smaller coefficients carry no phase information and
// count 0). Per frequency, the mixture weight is fitted by EM and the best Q1 kept; a shift's
// score is the sum of its frequencies' gains, and the best shift must stand out from the other
// 62 (robust z-score); on it, the frequencies whose gain beats log(#blocks) make the map.

/// One frequency's fit on a shifted grid: (u, v, Q1, gain in nats, mixture weight of "no trace").
type NaFit = (usize, usize, u16, f64, f64);

fn wrapped_normal_ratio(d: f64, q1: f64, s: f64) -> f64 {
    let mut acc = 0.0;
    for m in -2..=2 {
        let z = (d + m as f64 * q1) / s;
        acc += (-0.5 * z * z).exp();
    }
    q1 * acc / (s * (2.0 * std::f64::consts::PI).sqrt())
}

/// Ratios `rho = p1 / p0` of the coefficients `y` (1.0 where |y| < q1).
fn na_ratios(y: &[f64], q1: f64, s: f64) -> Vec<f64> {
    y.iter()
        .map(|&v| {
            if v.abs() < q1 {
                1.0
            } else {
                let d = v - q1 * (v / q1).round();
                wrapped_normal_ratio(d, q1, s)
            }
        })
        .collect()
}

/// Ratios of the informative coefficients only (|y| >= q1; the others have ratio 1 and add
/// nothing to the log-likelihood gain, but they count in the EM's mixture weight).
fn na_gain(y_abs_sorted: &[f64], y: &[f64], q1: f64, s: f64) -> (f64, f64) {
    // y_abs_sorted is ascending: the informative ones are the tail.
    let n_rest = y_abs_sorted.partition_point(|&a| a < q1);
    let rho: Vec<f64> = y
        .iter()
        .filter(|v| v.abs() >= q1)
        .map(|&v| wrapped_normal_ratio(v - q1 * (v / q1).round(), q1, s))
        .collect();
    // EM over all samples, where the n_rest uninformative ones have rho = 1.
    let n = (rho.len() + n_rest) as f64;
    let mut alpha = 0.5;
    for _ in 0..20 {
        let s: f64 = rho
            .iter()
            .map(|&r| alpha / (alpha + (1.0 - alpha) * r))
            .sum::<f64>()
            + n_rest as f64 * alpha;
        let next = s / n.max(1.0);
        let done = (next - alpha).abs() < 1e-4;
        alpha = next;
        if done {
            break;
        }
    }
    let ll = rho.iter().map(|&r| (alpha + (1.0 - alpha) * r).ln()).sum();
    (alpha, ll)
}

/// Selected coefficient of the blocks on the grid shifted by (dx, dy): for each block index in
/// `which`, the values of `freqs` (natural indices).
fn shifted_coefficients(
    yf: &[f64],
    w: usize,
    dx: usize,
    dy: usize,
    nbx: usize,
    which: &[usize],
    freqs: &[usize],
) -> Vec<Vec<f64>> {
    let c = dct_matrix();
    let mut out = vec![Vec::with_capacity(which.len()); freqs.len()];
    // Only the rows and columns of the DCT that the frequencies need (separable transform).
    let nu = freqs.iter().map(|&k| k / 8).max().unwrap_or(0) + 1;
    let nv = freqs.iter().map(|&k| k % 8).max().unwrap_or(0) + 1;
    let mut tmp = [0f64; 64];
    for &bi in which {
        let (by, bx) = (bi / nbx, bi % nbx);
        let (x0, y0) = (dx + bx * 8, dy + by * 8);
        for i in 0..8 {
            let row = &yf[(y0 + i) * w + x0..(y0 + i) * w + x0 + 8];
            for l in 0..nv {
                tmp[i * 8 + l] = (0..8).map(|n| c[l][n] * row[n]).sum();
            }
        }
        for (o, &k) in out.iter_mut().zip(freqs) {
            let (u, v) = (k / 8, k % 8);
            debug_assert!(u < nu);
            o.push((0..8).map(|i| c[u][i] * tmp[i * 8 + v]).sum());
        }
    }
    out
}

/// NA-DJPG evidence (METHOD.md section 9): the grid shift with the strongest integer
/// periodicity among the 63 non-zero shifts, its primary steps and the per-block map on that
/// grid. `Err` says in words why no map is given (no shift beats the guard).
pub fn na_djpg(coefs: &Coefficients, params: &CompressionParams) -> Result<NaDjpg, String> {
    let luma = coefs.luma();
    let (bw, bh) = (luma.blocks_x, luma.blocks_y);
    let (w, h) = (bw * 8, bh * 8);
    if bw < 3 || bh < 3 {
        return Err("the image is too small".into());
    }
    let yf = float_decode(luma);
    let s2 = luma
        .table
        .iter()
        .map(|&q| (q as f64).powi(2) / 12.0)
        .sum::<f64>()
        / 64.0
        + 1.0 / 12.0;
    let s = s2.sqrt();
    let freqs: Vec<usize> = ZIGZAG[1..=params.na_frequencies.clamp(1, 63)].to_vec();
    // Candidate steps: those whose lattice the noise does not blur away (Q1 > 3 s).
    let qmin = (3.0 * s).ceil().max(2.0) as i64;

    let shifts: Vec<(usize, usize)> = (0..8)
        .flat_map(|dy| (0..8).map(move |dx| (dx, dy)))
        .filter(|&(dx, dy)| (dx, dy) != (0, 0))
        .collect();
    let (nbx, nby) = (bw - 1, bh - 1);
    let total = nbx * nby;
    let step = total.div_ceil(params.na_detection_blocks.max(1)).max(1);
    let which: Vec<usize> = (0..total).step_by(step).collect();

    // Each frequency's best step and gain on each shift; a shift's score is the sum over
    // frequencies. Most of the 63 shifts carry no trace, so their scores are the null
    // distribution: the best shift must stand out from their median by `na_robust_z` robust
    // standard deviations (1.4826 MAD), and by more than log(#blocks).
    let guard = (which.len() as f64).ln();
    let fit_shift = |dx: usize, dy: usize| -> (f64, Vec<NaFit>) {
        let ys = shifted_coefficients(&yf, w, dx, dy, nbx, &which, &freqs);
        let mut total = 0.0;
        let mut fits = Vec::new();
        for (fi, &k) in freqs.iter().enumerate() {
            let qmax = IJG_LUMA_Q50[k] as i64;
            let mut sorted: Vec<f64> = ys[fi].iter().map(|v| v.abs()).collect();
            sorted.sort_by(f64::total_cmp);
            let mut best: Option<(i64, f64, f64)> = None;
            for q1 in qmin..=qmax.max(qmin) {
                let (alpha, gain) = na_gain(&sorted, &ys[fi], q1 as f64, s);
                if best.is_none_or(|b| gain > b.1) {
                    best = Some((q1, gain, alpha));
                }
            }
            if let Some((q1, gain, alpha)) = best {
                total += gain;
                fits.push((k / 8, k % 8, q1 as u16, gain, alpha));
            }
        }
        (total, fits)
    };

    let parts = row_ranges(shifts.len(), threads(), 1);
    let scored: Vec<((usize, usize), f64, Vec<NaFit>)> = std::thread::scope(|sc| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|range| {
                let shifts = &shifts;
                let fit_shift = &fit_shift;
                sc.spawn(move || {
                    range
                        .map(|i| {
                            let (dx, dy) = shifts[i];
                            let (e, u) = fit_shift(dx, dy);
                            ((dx, dy), e, u)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut totals: Vec<f64> = scored.iter().map(|(_, t, _)| *t).collect();
    totals.sort_by(f64::total_cmp);
    let median = totals.get(totals.len() / 2).copied().unwrap_or(0.0);
    let mut dev: Vec<f64> = totals.iter().map(|t| (t - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let sd = 1.4826 * dev.get(dev.len() / 2).copied().unwrap_or(0.0);
    let Some((shift, best_total, fits)) = scored.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))
    else {
        return Err("no shifted grid fits in the image".into());
    };
    let z = (best_total - median) / sd.max(1e-9);
    if z < params.na_robust_z || best_total - median < guard {
        return Err(format!(
            "no shifted grid stands out: the best, ({}, {}), scores {z:.1} robust standard deviations above the median of the 63 (needs {})",
            shift.0, shift.1, params.na_robust_z
        ));
    }
    // On the winning grid, the frequencies whose own gain beats log(#blocks).
    let used: Vec<NaFit> = fits.into_iter().filter(|f| f.3 > guard).collect();
    if used.is_empty() {
        return Err(format!(
            "the grid shifted by ({}, {}) stands out, but no single frequency beats the guard of {guard:.1} nats",
            shift.0, shift.1
        ));
    }

    // The map on the winning grid, every block.
    let (dx, dy) = shift;
    let (mbx, mby) = ((w - dx) / 8, (h - dy) / 8);
    let all: Vec<usize> = (0..mbx * mby).collect();
    let ks: Vec<usize> = used.iter().map(|&(u, v, ..)| u * 8 + v).collect();
    let ys = shifted_coefficients(&yf, w, dx, dy, mbx, &all, &ks);
    let mut llr = vec![0f64; all.len()];
    for (y, &(_, _, q1, _, _)) in ys.iter().zip(&used) {
        for (l, r) in llr.iter_mut().zip(na_ratios(y, q1 as f64, s)) {
            *l += r.ln();
        }
    }
    // P(trace | block), smoothed like A-DJPG (`posterior` gives 1 - P(trace) and -log-odds).
    let (p_none, lo_none) = posterior(&llr, mbx, mby, params.smooth_blocks);
    let trace_fraction =
        p_none.iter().filter(|&&p| p < 0.5).count() as f64 / p_none.len().max(1) as f64;
    let trace_marks_region = trace_fraction < 0.5;
    let (p, log_odds) = if trace_marks_region {
        (
            p_none.into_iter().map(|p| 1.0 - p).collect(),
            lo_none.into_iter().map(|l| -l).collect(),
        )
    } else {
        (p_none, lo_none)
    };
    Ok(NaDjpg {
        shift,
        frequencies: used.iter().map(|&(u, v, q, g, _)| (u, v, q, g)).collect(),
        trace_fraction,
        trace_marks_region,
        map: BlockMap {
            blocks_x: mbx,
            blocks_y: mby,
            origin: shift,
            p,
            log_odds,
        },
    })
}

/// The whole compression-history analysis of one JPEG's coefficients.
pub fn analyze(coefs: &Coefficients, params: &CompressionParams) -> CompressionEvidence {
    let luma = coefs.luma();
    let table = luma.table;
    let steps: Vec<(usize, f64)> = table
        .iter()
        .enumerate()
        .map(|(k, &q)| (k, q as f64))
        .collect();
    let quality = ijg_equivalent_quality(&steps);
    let adjpg = adjpg(coefs, params);
    let primary: Vec<(usize, f64)> = adjpg
        .frequencies
        .iter()
        .filter(|f| f.used)
        .map(|f| (f.u * 8 + f.v, f.q1 as f64))
        .collect();
    let primary_quality = ijg_equivalent_quality(&primary).map(|(q, _)| q);
    let (na, na_absent) = match na_djpg(coefs, params) {
        Ok(na) => (Some(na), None),
        Err(why) => (None, Some(why)),
    };
    CompressionEvidence {
        width: coefs.width,
        height: coefs.height,
        table,
        quality,
        adjpg,
        primary_quality,
        na,
        na_absent,
    }
}
