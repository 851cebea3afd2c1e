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

use crate::engine::jpeg::{Coefficients, IJG_LUMA_Q50, ZIGZAG, ijg_equivalent_quality};
use crate::engine::raster::{AreaAccumulator, Map, row_ranges, threads};

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
    /// Combined map: when at least this share of it leans tampered, its log-odds are referenced
    /// to this quantile (so that the rest, the blocks that lean hardest, stay flagged) instead of
    /// the median. 0: the median always (reports written before it existed). Chosen on CASIA v1
    /// val (docs/compression.md, "Weak traces and image edges"): a development figure.
    #[serde(default)]
    pub weak_trace_quantile: f64,
    /// Combined map: mean of `P(tampered)` within Felzenszwalb superpixels of the working image
    /// with this scale `k` (components of at least `SUPERPIXEL_MIN_PIXELS`), so that the 8x8-block
    /// evidence follows image edges. 0: off (reports written before it existed). Chosen on
    /// CASIA v1 val, as above.
    #[serde(default)]
    pub superpixel_k: f32,
}

/// Least size, in working-image pixels, of the superpixels of [`CompressionParams::superpixel_k`].
pub const SUPERPIXEL_MIN_PIXELS: u32 = 20;

impl Default for CompressionParams {
    fn default() -> Self {
        Self {
            adjpg_frequencies: 36,
            smooth_blocks: 5,
            adjpg_min_gain_per_block: 0.15,
            na_frequencies: 9,
            na_detection_blocks: 4096,
            na_robust_z: 8.0,
            weak_trace_quantile: 0.9,
            superpixel_k: 50.0,
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

    /// [`Self::to_pixels`] area-resampled to `dw x dh`, streamed row by row: the map at pixel
    /// resolution (4 bytes per pixel, 320 MB at 80 MP) is never built.
    pub fn to_pixels_resized(&self, width: usize, height: usize, dw: usize, dh: usize) -> Map {
        self.values_resized(&self.p, 0.5, (width, height), (dw, dh))
    }

    /// [`Self::log_odds_pixels`] area-resampled to `dw x dh`, like [`Self::to_pixels_resized`].
    pub fn log_odds_resized(&self, width: usize, height: usize, dw: usize, dh: usize) -> Map {
        self.values_resized(&self.log_odds, 0.0, (width, height), (dw, dh))
    }

    /// For each pixel column, the block column it lies in (the nearest block outside the grid).
    fn block_columns(&self, width: usize) -> Vec<usize> {
        (0..width)
            .map(|x| (x.saturating_sub(self.origin.0) / 8).min(self.blocks_x - 1))
            .collect()
    }

    /// The block row of pixel row `y` (the nearest block outside the grid).
    fn block_row(&self, y: usize) -> usize {
        (y.saturating_sub(self.origin.1) / 8).min(self.blocks_y - 1)
    }

    fn values_resized(
        &self,
        values: &[f32],
        empty: f32,
        (width, height): (usize, usize),
        (dw, dh): (usize, usize),
    ) -> Map {
        if (dw, dh) == (width, height) {
            return self.values_to_pixels(values, empty, width, height);
        }
        if self.blocks_x == 0
            || self.blocks_y == 0
            || values.len() != self.blocks_x * self.blocks_y
            || width == 0
            || height == 0
        {
            return Map::new(dw, dh, vec![empty; dw * dh]);
        }
        let col_of = self.block_columns(width);
        let mut acc = AreaAccumulator::new(1, width, height, dw, dh);
        let mut row = vec![0f32; width];
        let mut filled = usize::MAX;
        for y in 0..height {
            let by = self.block_row(y);
            if by != filled {
                let src = &values[by * self.blocks_x..(by + 1) * self.blocks_x];
                for (d, &bx) in row.iter_mut().zip(&col_of) {
                    *d = src[bx];
                }
                filled = by;
            }
            acc.add_row(y, &row);
        }
        Map::new(dw, dh, acc.out)
    }

    fn values_to_pixels(&self, values: &[f32], empty: f32, width: usize, height: usize) -> Map {
        let mut data = vec![empty; width * height];
        if self.blocks_x == 0 || self.blocks_y == 0 || values.len() != self.blocks_x * self.blocks_y
        {
            return Map::new(width, height, data);
        }
        let col_of = self.block_columns(width);
        for y in 0..height {
            let by = self.block_row(y);
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
        self.combined_log_odds_resized(self.width, self.height)
    }

    /// [`Self::combined_log_odds_pixels`] area-resampled to `dw x dh` (stored orientation)
    /// without building it at pixel resolution. Resampling is linear, so this is the sum of the
    /// resampled A-DJPG and NA-DJPG log-odds.
    pub fn combined_log_odds_resized(&self, dw: usize, dh: usize) -> Map {
        let mut a = self
            .adjpg
            .map
            .log_odds_resized(self.width, self.height, dw, dh);
        if let Some(na) = &self.na {
            let n = na.map.log_odds_resized(self.width, self.height, dw, dh);
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
// ------------------------------------------------------------------------- transforms, threads
//
// Speed without changing the numbers: every transform below adds the same products in the same
// order as the plain matrix form `X = C x C^T` / `x = C^T X C` (products that are exactly zero
// are skipped, which leaves an f64 sum unchanged), so the maps and fits are bit-identical to
// the straightforward implementation; only the work that is done changed (sparse inverse
// transforms, pixels decoded only where a statistic reads them, one pass over the blocks for
// all frequencies, a shared row transform for the 8 vertical grid shifts).

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

/// The DCT matrix and its transpose (`ct[n][k] = C[k][n]`), built once per analysis.
struct Dct {
    c: [[f64; 8]; 8],
    ct: [[f64; 8]; 8],
}

impl Dct {
    fn new() -> Self {
        let c = dct_matrix();
        let mut ct = [[0f64; 8]; 8];
        for (k, row) in c.iter().enumerate() {
            for (n, &v) in row.iter().enumerate() {
                ct[n][k] = v;
            }
        }
        Self { c, ct }
    }

    /// 2-D orthonormal DCT of the 8x8 pixels `rows[i][x0..x0 + 8]`, natural order.
    fn forward(&self, rows: &[&[f64]; 8], x0: usize, out: &mut [f64; 64]) {
        let mut tmp = [[0f64; 8]; 8];
        for (t, row) in tmp.iter_mut().zip(rows) {
            let px = &row[x0..x0 + 8];
            for (&x, ct) in px.iter().zip(&self.ct) {
                for (a, &cv) in t.iter_mut().zip(ct) {
                    *a += cv * x;
                }
            }
        }
        for (k, o) in out.chunks_exact_mut(8).enumerate() {
            let mut acc = [0f64; 8];
            for (&ck, t) in self.c[k].iter().zip(&tmp) {
                for (a, &tv) in acc.iter_mut().zip(t) {
                    *a += ck * tv;
                }
            }
            o.copy_from_slice(&acc);
        }
    }

    /// The frequencies `freqs` ((u, v) pairs) of the 2-D DCT of `rows[i][x0..x0 + 8]`, in order,
    /// each the same sum as in [`Self::forward`].
    fn forward_some(
        &self,
        rows: &[&[f64]; 8],
        x0: usize,
        freqs: &[(usize, usize)],
        out: &mut [f64],
    ) {
        let mut tmp = [[0f64; 8]; 8];
        for (t, row) in tmp.iter_mut().zip(rows) {
            let px = &row[x0..x0 + 8];
            for (&x, ct) in px.iter().zip(&self.ct) {
                for (a, &cv) in t.iter_mut().zip(ct) {
                    *a += cv * x;
                }
            }
        }
        for (o, &(u, v)) in out.iter_mut().zip(freqs) {
            let mut acc = 0f64;
            for (&cu, t) in self.c[u].iter().zip(&tmp) {
                acc += cu * t[v];
            }
            *o = acc;
        }
    }

    /// Unrounded decode of one block: the inverse DCT of the dequantised coefficients plus 128,
    /// row-major 8x8 pixels. Rows of zero coefficients (most of them in a JPEG) cost nothing.
    fn decode(&self, block: &[i16; 64], table: &[u16; 64], out: &mut [f64; 64]) {
        let mut tmp = [[0f64; 8]; 8];
        let mut live = [false; 8];
        for k in 0..8 {
            for l in 0..8 {
                let q = block[k * 8 + l];
                if q != 0 {
                    let a = q as f64 * table[k * 8 + l] as f64;
                    live[k] = true;
                    for (t, &cv) in tmp[k].iter_mut().zip(&self.c[l]) {
                        *t += a * cv;
                    }
                }
            }
        }
        for (m, o) in out.chunks_exact_mut(8).enumerate() {
            let mut acc = [0f64; 8];
            for k in 0..8 {
                if live[k] {
                    let ck = self.c[k][m];
                    for (a, &tv) in acc.iter_mut().zip(&tmp[k]) {
                        *a += ck * tv;
                    }
                }
            }
            for (d, a) in o.iter_mut().zip(acc) {
                *d = a + 128.0;
            }
        }
    }

    /// Decode block (`bx`, `by`) of `plane` into `out`, which holds 8 pixel rows of
    /// `blocks_x * 8`.
    fn decode_into_row(
        &self,
        plane: &crate::engine::jpeg::Plane,
        bx: usize,
        by: usize,
        out: &mut [f64],
    ) {
        let w = plane.blocks_x * 8;
        let mut px = [0f64; 64];
        self.decode(
            &plane.blocks[by * plane.blocks_x + bx],
            &plane.table,
            &mut px,
        );
        for (i, src) in px.chunks_exact(8).enumerate() {
            out[i * w + bx * 8..i * w + bx * 8 + 8].copy_from_slice(src);
        }
    }
}

/// Two consecutive block rows of a plane (16 pixel rows), whose blocks are decoded when first
/// needed: the pixels under 8x8 windows whose top row lies in the first of them.
struct RowPair<'a> {
    plane: &'a crate::engine::jpeg::Plane,
    rows: [Vec<f64>; 2],
    have: [Option<usize>; 2],
    /// Per slot, which blocks of its row are decoded.
    done: [Vec<bool>; 2],
}

impl<'a> RowPair<'a> {
    fn new(plane: &'a crate::engine::jpeg::Plane) -> Self {
        let n = plane.blocks_x * 8 * 8;
        Self {
            plane,
            rows: [vec![0f64; n], vec![0f64; n]],
            have: [None, None],
            done: [vec![false; plane.blocks_x], vec![false; plane.blocks_x]],
        }
    }

    /// Make block rows `by` (and `by + 1` when `next`) current, with the blocks of columns
    /// `cols` decoded.
    fn load(
        &mut self,
        dct: &Dct,
        by: usize,
        next: bool,
        cols: impl Iterator<Item = usize> + Clone,
    ) {
        if self.have[0] != Some(by) {
            if self.have[1] == Some(by) {
                self.rows.swap(0, 1);
                self.have.swap(0, 1);
                self.done.swap(0, 1);
            } else {
                self.have[0] = Some(by);
                self.done[0].iter_mut().for_each(|d| *d = false);
            }
        }
        if next && self.have[1] != Some(by + 1) {
            self.have[1] = Some(by + 1);
            self.done[1].iter_mut().for_each(|d| *d = false);
        }
        for slot in 0..1 + next as usize {
            for bx in cols.clone() {
                if !self.done[slot][bx] {
                    dct.decode_into_row(self.plane, bx, by + slot, &mut self.rows[slot]);
                    self.done[slot][bx] = true;
                }
            }
        }
    }

    /// The 8 pixel rows starting `dy` (0..8) rows below the top of the loaded pair.
    fn window(&self, dy: usize) -> [&[f64]; 8] {
        let w = self.plane.blocks_x * 8;
        std::array::from_fn(|i| {
            let y = dy + i;
            &self.rows[y / 8][(y % 8) * w..(y % 8 + 1) * w]
        })
    }
}

/// `f` on contiguous ranges of `0..n` (one per worker thread, ranges a multiple of `align`
/// long), results in range order.
fn par_ranges<T: Send>(
    n: usize,
    align: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    let parts = row_ranges(n, threads(), align);
    if parts.len() <= 1 {
        return parts.into_iter().map(f).collect();
    }
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = parts.into_iter().map(|r| s.spawn(move || f(r))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// `f(i)` for `i` in `0..n`, handed out one at a time to the worker threads (jobs of uneven
/// cost); results in index order.
fn par_jobs<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = threads().min(n).max(1);
    let work = || {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= n {
                break out;
            }
            out.push((i, f(i)));
        }
    };
    let mut all: Vec<(usize, T)> = if workers == 1 {
        work()
    } else {
        std::thread::scope(|s| {
            let work = &work;
            let handles: Vec<_> = (0..workers).map(|_| s.spawn(work)).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

/// About this many blocks (at least) estimate the rounding noise (an even subsample on large images).
const NOISE_BLOCKS: usize = 8192;

/// At most this many blocks make the calibrated histograms (an even subsample on large images).
const CALIBRATION_BLOCKS: usize = 65536;

/// Standard normal CDF.
fn ndtr(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// `x.round_ties_even()` without a library call on CPUs before SSE4.1 (the baseline x86-64
/// target): adding and subtracting 1.5 * 2^52 rounds to the nearest integer, ties to even,
/// exactly for |x| < 2^51 (only the sign of a zero result can differ, which no caller sees).
#[inline]
fn round_even(x: f64) -> f64 {
    const M: f64 = 6_755_399_441_055_744.0;
    if x.abs() < 2_251_799_813_685_248.0 {
        (x + M) - M
    } else {
        x.round_ties_even()
    }
}

/// `x.round()` (ties away from zero), the same way as [`round_even`].
#[inline]
fn round_away(x: f64) -> f64 {
    let r = round_even(x);
    if (x - r).abs() == 0.5 {
        x + 0.5f64.copysign(x)
    } else {
        r
    }
}

/// Rounding noise between the two compressions, estimated from the unrounded decode: the
/// 8-bit rounding and clipping of the RGB pixels, taken back to luminance and to the DCT domain
/// (prototype `rounding_noise`). Returns (standard deviation incl. the 1/12 of the second
/// rounding, mean of the DC error). Only the sampled blocks (and the chroma blocks under them)
/// are decoded.
fn rounding_noise(coefs: &Coefficients, dct: &Dct) -> (f64, f64) {
    let luma = coefs.luma();
    let (bw, bh) = (luma.blocks_x, luma.blocks_y);
    let (w, h) = (bw * 8, bh * 8);
    // Chroma planes at their own resolution, with the repeat factors that upsample them
    // (prototype: np.repeat, then edge padding): (plane, width, height, fx, fy).
    type ChromaPlane<'a> = (&'a crate::engine::jpeg::Plane, usize, usize, usize, usize);
    let chroma: Option<[ChromaPlane; 2]> = (coefs.first_is_luma
        && coefs.planes.len() == 3
        && coefs.planes[1..]
            .iter()
            .all(|p| p.blocks_x > 0 && p.blocks_y > 0))
    .then(|| {
        std::array::from_fn(|i| {
            let p = &coefs.planes[1 + i];
            let (cw, ch) = (p.blocks_x * 8, p.blocks_y * 8);
            (p, cw, ch, (w / cw).max(1), (h / ch).max(1))
        })
    });
    // A global statistic: every block on small images, an even subsample of large ones.
    let step = ((bw * bh) / NOISE_BLOCKS).max(1);
    let picked: Vec<usize> = (0..bw * bh).step_by(step).collect();
    let parts: Vec<Vec<[f64; 64]>> = par_ranges(picked.len(), 1, |range| {
        let mut out = Vec::with_capacity(range.len());
        let mut yb = [0f64; 64];
        let mut err = [[0f64; 8]; 8];
        // Per chroma plane: the decoded chroma blocks under the luma block (at most 2 x 2 when
        // chroma is subsampled), and per luma row / column the chroma block and offset.
        let mut cblocks = [[[0f64; 64]; 4]; 2];
        let mut crow = [[(0usize, 0usize); 8]; 2];
        let mut ccol = [[(0usize, 0usize); 8]; 2];
        for &bi in &picked[range] {
            let (by, bx) = (bi / bw, bi % bw);
            dct.decode(&luma.blocks[bi], &luma.table, &mut yb);
            if let Some(ch) = &chroma {
                for (pi, &(p, cw, chh, fx, fy)) in ch.iter().enumerate() {
                    let at_y = |i: usize| ((by * 8 + i) / fy).min(chh - 1);
                    let at_x = |j: usize| ((bx * 8 + j) / fx).min(cw - 1);
                    let (r0, c0) = (at_y(0) / 8, at_x(0) / 8);
                    let (nr, nc) = (at_y(7) / 8 - r0 + 1, at_x(7) / 8 - c0 + 1);
                    for i in 0..8 {
                        let (cy, cx) = (at_y(i), at_x(i));
                        crow[pi][i] = ((cy / 8 - r0) * nc, (cy % 8) * 8);
                        ccol[pi][i] = (cx / 8 - c0, cx % 8);
                    }
                    for r in 0..nr.min(2) {
                        for c in 0..nc.min(2) {
                            let b = (r0 + r) * p.blocks_x + c0 + c;
                            dct.decode(&p.blocks[b], &p.table, &mut cblocks[pi][r * nc + c]);
                        }
                    }
                }
            }
            for (i, erow) in err.iter_mut().enumerate() {
                for (j, e_out) in erow.iter_mut().enumerate() {
                    let yv = yb[i * 8 + j];
                    *e_out = match &chroma {
                        Some(_) => {
                            let at = |pi: usize| {
                                let ((rb, ro), (cb, co)) = (crow[pi][i], ccol[pi][j]);
                                cblocks[pi][rb + cb][ro + co]
                            };
                            let (cb, cr) = (at(0) - 128.0, at(1) - 128.0);
                            let rgb = [
                                yv + 1.402 * cr,
                                yv - 0.344136 * cb - 0.714136 * cr,
                                yv + 1.772 * cb,
                            ];
                            let e = rgb.map(|v| v - round_even(v).clamp(0.0, 255.0));
                            0.299 * e[0] + 0.587 * e[1] + 0.114 * e[2]
                        }
                        None => yv - round_even(yv).clamp(0.0, 255.0),
                    };
                }
            }
            let rows: [&[f64]; 8] = std::array::from_fn(|i| &err[i][..]);
            let mut o = [0f64; 64];
            dct.forward(&rows, 0, &mut o);
            out.push(o);
        }
        out
    });
    // Summed in block order on one thread (the same sums whatever the number of threads).
    let (mut sum, mut sum2, mut n, mut dc_sum, mut dc_n) = (0f64, 0f64, 0usize, 0f64, 0usize);
    for out in parts.iter().flatten() {
        for &v in out {
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
/// N(bias, sig^2) rounding noise, quantise with `q2`. Neighbouring bins share their edge, so
/// each edge's normal CDF is evaluated once.
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
        let kc = round_even(v / q2f) as i64;
        let (klo, khi) = ((kc - r).max(kmin), (kc + r).min(kmax));
        if klo > khi {
            continue;
        }
        // The upper edge of bin k, (k + 0.5) q2, is the lower edge of bin k + 1 (exactly: both
        // are half-integers times q2).
        let mut lower = ndtr(((klo as f64 - 0.5) * q2f - v) / sig);
        for k in klo..=khi {
            let upper = ndtr(((k as f64 + 0.5) * q2f - v) / sig);
            out[(k - kmin) as usize] += (upper - lower) * mass;
            lower = upper;
        }
    }
    out
}

/// EM for the mixture `alpha p0 + (1 - alpha) p1` on histogram counts `c` (Bianchi & Piva 2012,
/// eqs. 11-12); `nz` lists the bins with `c > 0` in order, `n` is the sum of `c`. Returns alpha
/// and the log-likelihood.
fn em_alpha(c: &[f64], nz: &[usize], n: f64, p0: &[f64], p1: &[f64]) -> (f64, f64) {
    let mut alpha = 0.5;
    for _ in 0..50 {
        let mut s = 0.0;
        for &i in nz {
            let (ci, a, b) = (c[i], p0[i], p1[i]);
            s += ci * alpha * a / (alpha * a + (1.0 - alpha) * b);
        }
        let next = s / n;
        let done = (next - alpha).abs() < 1e-4;
        alpha = next;
        if done {
            break;
        }
    }
    let ll = nz
        .iter()
        .map(|&i| c[i] * (alpha * p0[i] + (1.0 - alpha) * p1[i]).ln())
        .sum();
    (alpha, ll)
}

/// Histogram of one frequency's stored coefficients: `counts[x + max_abs]` blocks hold value `x`.
struct ValueHistogram {
    max_abs: i64,
    counts: Vec<u64>,
}

/// Per-block log-likelihood ratio of one used frequency, by stored value: `llr[x + max_abs]`.
struct LlrTable {
    /// Natural index of the frequency in the block.
    k: usize,
    max_abs: i64,
    llr: Vec<f64>,
}

/// Bound on the magnitude of dequantised coefficients the A-DJPG histograms resolve.
const COEFFICIENT_BOUND: f64 = 4096.0;

/// One frequency of the A-DJPG analysis: its fit and, when it carries a trace, the per-block LLR
/// `log p1(C[b]) / p0(C[b])` as a table by coefficient value.
fn adjpg_frequency(
    x: &ValueHistogram,
    cal: &[f64],
    u: usize,
    v: usize,
    q2: i64,
    sig: f64,
    bias: f64,
) -> (FrequencyFit, Option<LlrTable>) {
    let q50 = IJG_LUMA_Q50[u * 8 + v] as i64;
    let max_cal = cal.iter().fold(0f64, |m, &c| m.max(c.abs()));
    let max_x = x.max_abs;
    // Dequantised DCT coefficients of 8-bit samples lie within +-2^11 (ITU-T T.81, A.3.1); a
    // damaged or hostile file may claim far more, which would only widen the histograms (and
    // the EM's work) without adding evidence: values beyond the bound share the edge bins.
    let b = (max_cal.max((max_x * q2) as f64)).min(COEFFICIENT_BOUND) as i64 + 4 * q50 + 16;
    let mut h = vec![0f64; (2 * b + 1) as usize];
    for &c in cal {
        let i = (round_even(c) as i64 + b).clamp(0, 2 * b);
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
    let bin_of = |xi: i64| (xi - kmin).clamp(0, nk as i64 - 1) as usize;
    // Laplace correction, as Bianchi & Piva.
    let lap = |p: Vec<f64>| -> Vec<f64> {
        let s: f64 = p.iter().sum::<f64>().max(1e-300);
        p.into_iter()
            .map(|v| (v / s * ncal + 1.0) / (ncal + nk as f64))
            .collect()
    };
    let p0 = lap(qbin(&cs, &h, b, q2 as f64, kmin, kmax));
    let mut counts = vec![0f64; nk];
    for (i, &n) in x.counts.iter().enumerate() {
        if n > 0 {
            counts[bin_of(i as i64 - max_x)] += n as f64;
        }
    }
    let n_blocks: f64 = counts.iter().sum();
    let nz: Vec<usize> = (0..nk).filter(|&i| counts[i] > 0.0).collect();
    let mut best: Option<(i64, f64, f64, Vec<f64>)> = None;
    let mut base = f64::NEG_INFINITY;
    for q1 in 1..=q50 {
        let p1 = lap(dq_model(&cs, &h, b, q1, q2, kmin, kmax, sig, bias));
        let (a, l) = em_alpha(&counts, &nz, n_blocks, &p0, &p1);
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
    let llr = (q2 % q1 != 0).then(|| LlrTable {
        k: u * 8 + v,
        max_abs: max_x,
        llr: (-max_x..=max_x)
            .map(|xi| {
                let i = bin_of(xi);
                (p1[i] / p0[i]).ln()
            })
            .collect(),
    });
    (fit, llr)
}

/// Per-frequency histograms of the stored coefficients at the natural indices `ks`, in one
/// pass over the blocks per thread: values within +-`DENSE` are counted in place, the rare
/// larger ones collected aside.
fn value_histograms(plane: &crate::engine::jpeg::Plane, ks: &[usize]) -> Vec<ValueHistogram> {
    const DENSE: i64 = 1023;
    let width = (2 * DENSE + 1) as usize;
    let blocks = &plane.blocks;
    let parts = par_ranges(blocks.len(), 1, |range| {
        let mut dense = vec![0u32; ks.len() * width];
        let mut wide: Vec<Vec<i64>> = vec![Vec::new(); ks.len()];
        for b in &blocks[range] {
            for (fi, &k) in ks.iter().enumerate() {
                let x = b[k] as i64;
                if x.abs() <= DENSE {
                    dense[fi * width + (x + DENSE) as usize] += 1;
                } else {
                    wide[fi].push(x);
                }
            }
        }
        (dense, wide)
    });
    (0..ks.len())
        .map(|fi| {
            let mut dense = vec![0u64; width];
            for (part, _) in &parts {
                for (c, &p) in dense.iter_mut().zip(&part[fi * width..(fi + 1) * width]) {
                    *c += p as u64;
                }
            }
            let wide = parts.iter().flat_map(|(_, w)| w[fi].iter().copied());
            let max_wide = wide.clone().map(i64::abs).max().unwrap_or(0);
            let max_dense = (0..width)
                .filter(|&i| dense[i] > 0)
                .map(|i| (i as i64 - DENSE).abs())
                .max()
                .unwrap_or(0);
            let max_abs = max_wide.max(max_dense);
            let mut counts = vec![0u64; 2 * max_abs as usize + 1];
            for (i, &c) in dense.iter().enumerate() {
                let x = i as i64 - DENSE;
                if x.abs() <= max_abs {
                    counts[(x + max_abs) as usize] += c;
                }
            }
            for x in wide {
                counts[(x + max_abs) as usize] += 1;
            }
            ValueHistogram { max_abs, counts }
        })
        .collect()
}

/// Calibrated coefficients: the DCT on the grid shifted by (1, 1) of the unrounded decode, per
/// frequency (`freqs` as (u, v); the DC without its 8 * 128 offset). Only their histogram is
/// used, so large images use an even subsample of about `CALIBRATION_BLOCKS` blocks (every
/// block below): every row, every `step`-th column, the same columns in every row so that
/// consecutive rows share their decoded blocks. The luminance is decoded two block rows at a
/// time.
fn calibration(
    plane: &crate::engine::jpeg::Plane,
    freqs: &[(usize, usize)],
    dct: &Dct,
) -> Vec<Vec<f64>> {
    let (w, h) = (plane.blocks_x * 8, plane.blocks_y * 8);
    let (cbw, cbh) = ((w.saturating_sub(1)) / 8, (h.saturating_sub(1)) / 8);
    let step = (cbw * cbh).div_ceil(CALIBRATION_BLOCKS).max(1);
    // A strip narrower than the step: every `row_step`-th row instead.
    let (row_step, step) = if step > cbw.max(1) {
        (step.div_ceil(cbw.max(1)), 1)
    } else {
        (1, step)
    };
    let parts = par_ranges(cbh, 1, |rows| {
        let mut cal: Vec<Vec<f64>> = vec![Vec::new(); freqs.len()];
        let mut pair = RowPair::new(plane);
        let mut out = vec![0f64; freqs.len()];
        for cy in rows.filter(|cy| cy % row_step == 0) {
            let picked = (0..cbw).step_by(step);
            pair.load(dct, cy, true, picked.clone().flat_map(|c| [c, c + 1]));
            let win = pair.window(1);
            for cx in picked {
                dct.forward_some(&win, 1 + cx * 8, freqs, &mut out);
                for ((c, &(u, v)), &o) in cal.iter_mut().zip(freqs).zip(&out) {
                    let dc = if (u, v) == (0, 0) { 8.0 * 128.0 } else { 0.0 };
                    c.push(o - dc);
                }
            }
        }
        cal
    });
    let mut cal: Vec<Vec<f64>> = vec![Vec::new(); freqs.len()];
    for part in parts {
        for (dst, src) in cal.iter_mut().zip(part) {
            dst.extend(src);
        }
    }
    cal
}
/// Centred box mean over `s x s` blocks with edge replication (scipy `uniform_filter`,
/// mode `nearest`). Rows are smoothed in parallel; each output adds its `s` inputs in the same
/// order as the plain loop.
fn box_smooth(v: &[f64], w: usize, h: usize, s: usize) -> Vec<f64> {
    if s <= 1 || w == 0 || h == 0 {
        return v.to_vec();
    }
    let r = (s / 2) as i64;
    let lo = -r;
    let hi = s as i64 - 1 - r;
    let clampi = |i: i64, n: usize| i.clamp(0, n as i64 - 1) as usize;
    let sf = s as f64;
    let tmp: Vec<f64> = par_ranges(h, 1, |rows| {
        let mut out = vec![0f64; rows.len() * w];
        for (y, o) in rows.zip(out.chunks_exact_mut(w)) {
            let row = &v[y * w..(y + 1) * w];
            for (x, ox) in o.iter_mut().enumerate() {
                let mut acc = 0.0;
                if x as i64 + lo >= 0 && x as i64 + hi < w as i64 {
                    for &a in &row[(x as i64 + lo) as usize..=(x as i64 + hi) as usize] {
                        acc += a;
                    }
                } else {
                    for d in lo..=hi {
                        acc += row[clampi(x as i64 + d, w)];
                    }
                }
                *ox = acc / sf;
            }
        }
        out
    })
    .concat();
    par_ranges(h, 1, |rows| {
        let mut out = vec![0f64; rows.len() * w];
        let mut acc = vec![0f64; w];
        for (y, o) in rows.zip(out.chunks_exact_mut(w)) {
            acc.iter_mut().for_each(|a| *a = 0.0);
            for d in lo..=hi {
                let src = &tmp[clampi(y as i64 + d, h) * w..][..w];
                for (a, &t) in acc.iter_mut().zip(src) {
                    *a += t;
                }
            }
            for (ox, &a) in o.iter_mut().zip(&acc) {
                *ox = a / sf;
            }
        }
        out
    })
    .concat()
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
    let dct = Dct::new();
    let (sig, bias_dc) = rounding_noise(coefs, &dct);
    // The model's rounding noise is that of 8-bit samples: other precisions get no frequency.
    let nfreq = if coefs.precision == 8 {
        params.adjpg_frequencies.clamp(1, 64)
    } else {
        0
    };
    let freqs: Vec<(usize, usize)> = ZIGZAG[..nfreq].iter().map(|&k| (k / 8, k % 8)).collect();
    let cal = calibration(luma, &freqs, &dct);
    let ks: Vec<usize> = freqs.iter().map(|&(u, v)| u * 8 + v).collect();
    let hist = value_histograms(luma, &ks);
    let guard = ((bw * bh) as f64).ln();

    let results: Vec<(FrequencyFit, Option<LlrTable>)> = par_jobs(nfreq, |fi| {
        let (u, v) = freqs[fi];
        let q2 = luma.table[u * 8 + v] as i64;
        let bias = if (u, v) == (0, 0) { bias_dc } else { 0.0 };
        adjpg_frequency(&hist[fi], &cal[fi], u, v, q2, sig, bias)
    });
    drop(cal);
    let mut frequencies = Vec::with_capacity(nfreq);
    let mut tables = Vec::new();
    for (mut fit, llr) in results {
        if let Some(llr) = llr
            && fit.gain > guard
        {
            fit.used = true;
            tables.push(llr);
        }
        frequencies.push(fit);
    }
    let total_gain: f64 = frequencies.iter().filter(|f| f.used).map(|f| f.gain).sum();
    if total_gain < params.adjpg_min_gain_per_block * (bw * bh) as f64 {
        frequencies.iter_mut().for_each(|f| f.used = false);
        tables.clear();
    }
    // Per block, the used frequencies' LLRs summed in frequency order (f64).
    let blocks = &luma.blocks;
    let llr_sum: Vec<f64> = if tables.is_empty() {
        vec![0f64; bw * bh]
    } else {
        par_ranges(blocks.len(), 1, |range| {
            blocks[range]
                .iter()
                .map(|b| {
                    let mut s = 0f64;
                    for t in &tables {
                        s += t.llr[(b[t.k] as i64 + t.max_abs) as usize];
                    }
                    s
                })
                .collect::<Vec<f64>>()
        })
        .concat()
    };
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
// Every one of the 63 shifts is scored in full (the z-score needs the median and spread of all
// of them), on the same `na_detection_blocks` sampled blocks.

/// One frequency's fit on a shifted grid: (u, v, Q1, gain in nats, mixture weight of "no trace").
type NaFit = (usize, usize, u16, f64, f64);

/// `rho(d) = Q1 WN(d; s)`, the wrapped normal of phase `d` over the uniform phase density,
/// with the wrap truncated at m = -2..=2 as in the model. With `t = |d| / s` and `a = Q1 / s`,
/// the term m is `exp(-(t + m a)^2 / 2) = e0 * exp(-m a t - m^2 a^2 / 2)`; for |d| <= Q1 / 2 the
/// five terms are `e0 (1 + P + Q + c (P^2 + Q^2))` with `e0 = exp(-t^2 / 2)`,
/// `P = exp(-a (a / 2 - t))`, `c = exp(-a^2)`, `Q = c / P`: two exponentials instead of five
/// (the same values to rounding).
struct WrappedNormal {
    q1: f64,
    inv_s: f64,
    a: f64,
    c: f64,
    scale: f64,
}

impl WrappedNormal {
    fn new(q1: f64, s: f64) -> Self {
        let a = q1 / s;
        Self {
            q1,
            inv_s: 1.0 / s,
            a,
            c: (-a * a).exp(),
            scale: q1 / (s * (2.0 * std::f64::consts::PI).sqrt()),
        }
    }

    /// Ratio of the coefficient `v` (|v| >= q1 assumed by the callers' models: 1.0 below).
    #[inline]
    fn ratio(&self, v: f64) -> f64 {
        let d = v - self.q1 * round_away(v / self.q1);
        let t = (d * self.inv_s).abs();
        let e0 = (-0.5 * t * t).exp();
        let p = (-self.a * (0.5 * self.a - t)).exp();
        // P underflows only where a^2 / 2 > 708, where Q < exp(-a^2 / 2) is 0 as well.
        let q = if p > 0.0 { self.c / p } else { 0.0 };
        self.scale * e0 * (1.0 + p + q + self.c * (p * p + q * q))
    }
}

/// Ratio `rho = p1 / p0` of one coefficient `v` (1.0 where |v| < q1).
fn na_ratio(v: f64, wn: &WrappedNormal) -> f64 {
    if v.abs() < wn.q1 { 1.0 } else { wn.ratio(v) }
}

/// EM fit of the mixture weight of "no trace" and the log-likelihood gain, for step `q1`. Only
/// the informative coefficients (|y| >= q1) have a ratio other than 1: the others add nothing
/// to the gain but count in the mixture weight. `rho` is scratch space.
fn na_gain(y: &[f64], q1: f64, s: f64, rho: &mut Vec<f64>) -> (f64, f64) {
    rho.clear();
    let wn = WrappedNormal::new(q1, s);
    let mut n_rest = 0usize;
    for &v in y {
        if v.abs() < q1 {
            n_rest += 1;
        } else {
            rho.push(wn.ratio(v));
        }
    }
    // EM over all samples, where the n_rest uninformative ones have rho = 1.
    let n = (rho.len() + n_rest) as f64;
    let mut alpha = 0.5;
    for _ in 0..20 {
        let s = responsibility_sum(rho, alpha) + n_rest as f64 * alpha;
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

/// `sum_i alpha / (alpha + (1 - alpha) rho_i)`, the E-step of [`na_gain`], in four interleaved
/// partial sums so that the divisions run in SIMD lanes (a plain sequential sum cannot be
/// vectorised; the partial sums differ from it only by rounding).
fn responsibility_sum(rho: &[f64], alpha: f64) -> f64 {
    let b = 1.0 - alpha;
    let mut acc = [0f64; 4];
    let chunks = rho.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &r) in acc.iter_mut().zip(c) {
            *a += alpha / (alpha + b * r);
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for &r in rest {
        s += alpha / (alpha + b * r);
    }
    s
}

/// Rows of `c` needed for the frequencies `ks` (natural indices): (max u + 1, max v + 1).
fn needed_extent(ks: &[usize]) -> (usize, usize) {
    (
        ks.iter().map(|&k| k / 8).max().unwrap_or(0) + 1,
        ks.iter().map(|&k| k % 8).max().unwrap_or(0) + 1,
    )
}

/// Horizontal pass of the separable DCT, only the `nv` lowest column frequencies:
/// `out[l] = sum_n C[l][n] px[n]`.
fn row_dct(c: &[[f64; 8]; 8], px: &[f64], nv: usize, out: &mut [f64; 8]) {
    for (o, cl) in out.iter_mut().zip(c).take(nv) {
        *o = cl.iter().zip(px).map(|(&a, &x)| a * x).sum();
    }
}

/// Vertical pass for frequency (u, v) from the row transforms `rt` of the block's 8 rows.
fn col_dct(c: &[[f64; 8]; 8], rt: &[[f64; 8]], u: usize, v: usize) -> f64 {
    c[u].iter().zip(rt).map(|(&a, r)| a * r[v]).sum()
}

/// The coefficients `ks` (natural indices) of the sampled blocks `which` (indices on a grid of
/// `nbx` columns) on every one of the 63 shifted grids: `out[shift][f][i]`, shifts in the order
/// of `shifts`. Each sampled block needs the 16x16 pixels of its 2x2 aligned blocks; the row
/// transforms of one horizontal shift serve all 8 vertical shifts.
fn shifted_detection_coefficients(
    plane: &crate::engine::jpeg::Plane,
    dct: &Dct,
    nbx: usize,
    which: &[usize],
    ks: &[usize],
    shifts: &[(usize, usize)],
) -> Vec<Vec<Vec<f64>>> {
    let (_, nv) = needed_extent(ks);
    let bw = plane.blocks_x;
    let mut slot = [[usize::MAX; 8]; 8];
    for (i, &(dx, dy)) in shifts.iter().enumerate() {
        slot[dy][dx] = i;
    }
    let parts = par_ranges(which.len(), 1, |range| {
        let n = range.len();
        let mut out = vec![vec![vec![0f64; n]; ks.len()]; shifts.len()];
        let mut patch = [[0f64; 16]; 16];
        let mut px = [0f64; 64];
        // rt[dx][l][y]: row transform (column frequency l) of patch row y at horizontal shift dx.
        let mut rt = [[[0f64; 16]; 8]; 8];
        for (li, &bi) in which[range].iter().enumerate() {
            let (by, bx) = (bi / nbx, bi % nbx);
            for (qy, qx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                dct.decode(
                    &plane.blocks[(by + qy) * bw + bx + qx],
                    &plane.table,
                    &mut px,
                );
                for i in 0..8 {
                    patch[qy * 8 + i][qx * 8..qx * 8 + 8].copy_from_slice(&px[i * 8..i * 8 + 8]);
                }
            }
            // Horizontal pass, the 8 shifts dx side by side: sum_n C[l][n] patch[y][dx + n].
            for (y, row) in patch.iter().enumerate() {
                for (l, cl) in dct.c.iter().enumerate().take(nv) {
                    let mut acc = [0f64; 8];
                    for (n, &c) in cl.iter().enumerate() {
                        for (a, &x) in acc.iter_mut().zip(&row[n..n + 8]) {
                            *a += c * x;
                        }
                    }
                    for (dx, &a) in acc.iter().enumerate() {
                        rt[dx][l][y] = a;
                    }
                }
            }
            // Vertical pass, the 8 shifts dy side by side: sum_i C[u][i] rt[dx][v][dy + i].
            for (dx, rtx) in rt.iter().enumerate() {
                for (f, &k) in ks.iter().enumerate() {
                    let (u, v) = (k / 8, k % 8);
                    let mut acc = [0f64; 8];
                    for (i, &c) in dct.c[u].iter().enumerate() {
                        for (a, &t) in acc.iter_mut().zip(&rtx[v][i..i + 8]) {
                            *a += c * t;
                        }
                    }
                    for (dy, &a) in acc.iter().enumerate() {
                        let si = slot[dy][dx];
                        if si != usize::MAX {
                            out[si][f][li] = a;
                        }
                    }
                }
            }
        }
        out
    });
    (0..shifts.len())
        .map(|si| {
            (0..ks.len())
                .map(|f| {
                    parts
                        .iter()
                        .flat_map(|p| p[si][f].iter().copied())
                        .collect()
                })
                .collect()
        })
        .collect()
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
    if coefs.precision != 8 {
        return Err(format!(
            "a {}-bit JPEG: the double-compression models assume 8-bit samples",
            coefs.precision
        ));
    }
    let dct = Dct::new();
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
    let ys_all = shifted_detection_coefficients(luma, &dct, nbx, &which, &freqs, &shifts);

    // Each frequency's best step and gain on each shift; a shift's score is the sum over
    // frequencies. Most of the 63 shifts carry no trace, so their scores are the null
    // distribution: the best shift must stand out from their median by `na_robust_z` robust
    // standard deviations (1.4826 MAD), and by more than log(#blocks).
    let guard = (which.len() as f64).ln();
    let fit_shift = |ys: &[Vec<f64>]| -> (f64, Vec<NaFit>) {
        let mut total = 0.0;
        let mut fits = Vec::new();
        let mut rho = Vec::with_capacity(which.len());
        for (fi, &k) in freqs.iter().enumerate() {
            let qmax = IJG_LUMA_Q50[k] as i64;
            let mut best: Option<(i64, f64, f64)> = None;
            for q1 in qmin..=qmax.max(qmin) {
                let (alpha, gain) = na_gain(&ys[fi], q1 as f64, s, &mut rho);
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
    let scored: Vec<((usize, usize), f64, Vec<NaFit>)> = par_jobs(shifts.len(), |i| {
        let (e, u) = fit_shift(&ys_all[i]);
        (shifts[i], e, u)
    });
    drop(ys_all);
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

    // The map on the winning grid, every block: per block, the used frequencies' log-ratios
    // summed in order (f64), the luminance decoded two block rows at a time.
    let (dx, dy) = shift;
    let (mbx, mby) = ((w - dx) / 8, (h - dy) / 8);
    let ks: Vec<usize> = used.iter().map(|&(u, v, ..)| u * 8 + v).collect();
    let (_, nv) = needed_extent(&ks);
    let models: Vec<WrappedNormal> = used
        .iter()
        .map(|&(_, _, q1, ..)| WrappedNormal::new(q1 as f64, s))
        .collect();
    let llr: Vec<f64> = par_ranges(mby, 1, |rows| {
        let mut pair = RowPair::new(luma);
        let mut out = Vec::with_capacity(rows.len() * mbx);
        let mut rt = [[0f64; 8]; 8];
        for my in rows {
            // Columns under the map's blocks: dx + 8 mx .. dx + 8 mx + 8.
            pair.load(&dct, my, dy > 0, 0..(dx + mbx * 8).div_ceil(8));
            let win = pair.window(dy);
            for mx in 0..mbx {
                let x0 = dx + mx * 8;
                for (r, row) in rt.iter_mut().zip(&win) {
                    row_dct(&dct.c, &row[x0..x0 + 8], nv, r);
                }
                let mut l = 0f64;
                for (&(u, v, ..), wn) in used.iter().zip(&models) {
                    l += na_ratio(col_dct(&dct.c, &rt, u, v), wn).ln();
                }
                out.push(l);
            }
        }
        out
    })
    .concat();
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
