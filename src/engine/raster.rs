//! Plain row-major float rasters and the resampling rules the method names (area, bilinear, nearest).

/// A single-channel float image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Map {
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            width * height,
            "map data does not match its size"
        );
        Self {
            width,
            height,
            data,
        }
    }

    pub fn filled(width: usize, height: usize, value: f32) -> Self {
        Self {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    #[inline]
    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    /// Min-max normalisation to [0, 1]; a constant map becomes all zeros.
    pub fn normalized(&self) -> Map {
        let (lo, hi) = self
            .data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let range = hi - lo;
        let data = if range > 0.0 && range.is_finite() {
            self.data.iter().map(|&v| (v - lo) / range).collect()
        } else {
            vec![0.0; self.data.len()]
        };
        Map {
            width: self.width,
            height: self.height,
            data,
        }
    }

    /// Quantise a [0, 1] map to 8 bits (round half up).
    pub fn to_u8(&self) -> Vec<u8> {
        self.data
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8)
            .collect()
    }
}

/// A binary mask at the working resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    pub data: Vec<bool>,
}

impl Mask {
    pub fn area(&self) -> usize {
        self.data.iter().filter(|&&b| b).count()
    }
}

/// Area (box) resampling of one channel: every output pixel is the overlap-weighted mean of the
/// source pixels it covers. Separable, exact for any ratio; for upscaling it degrades gracefully to
/// nearest with blended seams. This is the rule METHOD.md section 1.4 names for ELA.
pub fn resize_area(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let horiz = area_weights(sw, dw);
    let vert = area_weights(sh, dh);
    // Horizontal pass: sh x dw.
    let mut tmp = vec![0f32; sh * dw];
    for y in 0..sh {
        let row = &src[y * sw..(y + 1) * sw];
        let out = &mut tmp[y * dw..(y + 1) * dw];
        for (o, taps) in horiz.iter().enumerate() {
            out[o] = taps.iter().map(|&(i, w)| row[i] * w).sum();
        }
    }
    let mut dst = vec![0f32; dh * dw];
    for (o, taps) in vert.iter().enumerate() {
        let out = &mut dst[o * dw..(o + 1) * dw];
        for &(i, w) in taps {
            let row = &tmp[i * dw..(i + 1) * dw];
            for (d, s) in out.iter_mut().zip(row) {
                *d += s * w;
            }
        }
    }
    dst
}

/// Area resampling fed one source row at a time (interleaved channels), so that a large image
/// never has to exist as float planes; partial accumulators from several threads add up.
#[derive(Debug, Clone)]
pub struct AreaAccumulator {
    pub channels: usize,
    pub width: usize,
    pub height: usize,
    horiz: Vec<Vec<(usize, f32)>>,
    /// For each source row: the output rows it contributes to, with weights.
    vert: Vec<Vec<(usize, f32)>>,
    /// channels x height x width, planar.
    pub out: Vec<f32>,
    row: Vec<f32>,
}

impl AreaAccumulator {
    pub fn new(channels: usize, sw: usize, sh: usize, dw: usize, dh: usize) -> Self {
        let mut vert = vec![Vec::new(); sh];
        for (o, taps) in area_weights(sh, dh).into_iter().enumerate() {
            for (i, w) in taps {
                vert[i].push((o, w));
            }
        }
        Self {
            channels,
            width: dw,
            height: dh,
            horiz: area_weights(sw, dw),
            vert,
            out: vec![0.0; channels * dw * dh],
            row: vec![0.0; dw],
        }
    }

    /// Add source row `y`, `channels` values per pixel, interleaved.
    pub fn add_row(&mut self, y: usize, src: &[f32]) {
        let (c, dw, dh) = (self.channels, self.width, self.height);
        for ch in 0..c {
            for (o, taps) in self.horiz.iter().enumerate() {
                self.row[o] = taps.iter().map(|&(i, w)| src[i * c + ch] * w).sum();
            }
            for &(o, w) in &self.vert[y] {
                let dst = &mut self.out[(ch * dh + o) * dw..(ch * dh + o + 1) * dw];
                for (d, s) in dst.iter_mut().zip(&self.row) {
                    *d += s * w;
                }
            }
        }
    }

    /// Add another accumulator's sums (same geometry), e.g. from another thread's rows.
    pub fn merge(&mut self, other: &AreaAccumulator) {
        for (a, b) in self.out.iter_mut().zip(&other.out) {
            *a += b;
        }
    }

    pub fn plane(&self, ch: usize) -> &[f32] {
        &self.out[ch * self.width * self.height..(ch + 1) * self.width * self.height]
    }
}

/// Rows `0..height` split into `parts` ranges whose boundaries are multiples of `align`.
pub fn row_ranges(height: usize, parts: usize, align: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    let step = height.div_ceil(parts).div_ceil(align).max(1) * align;
    (0..height)
        .step_by(step)
        .map(|y| y..(y + step).min(height))
        .collect()
}

/// Worker threads for the per-pixel stages.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8)
}

/// For each output index, the (source index, weight) pairs of an area resampling; weights sum to 1.
fn area_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let start = o as f64 * scale;
            let end = (o + 1) as f64 * scale;
            let mut taps = Vec::new();
            let mut i = start.floor() as usize;
            while (i as f64) < end && i < src {
                let lo = (i as f64).max(start);
                let hi = ((i + 1) as f64).min(end);
                if hi > lo {
                    taps.push((i, ((hi - lo) / scale) as f32));
                }
                i += 1;
            }
            taps
        })
        .collect()
}

/// Bilinear resampling with half-pixel centres (align_corners = false), as in PyTorch
/// `F.interpolate(mode="bilinear", align_corners=False)` and OpenCV INTER_LINEAR.
pub fn resize_bilinear(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let coords = |s: usize, d: usize| -> Vec<(usize, usize, f32)> {
        let scale = s as f32 / d as f32;
        (0..d)
            .map(|o| {
                let c = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (c.floor() as usize).min(s - 1);
                let i1 = (i0 + 1).min(s - 1);
                (i0, i1, c - i0 as f32)
            })
            .collect()
    };
    let xs = coords(sw, dw);
    let ys = coords(sh, dh);
    let mut dst = Vec::with_capacity(dw * dh);
    for &(y0, y1, fy) in &ys {
        let r0 = &src[y0 * sw..(y0 + 1) * sw];
        let r1 = &src[y1 * sw..(y1 + 1) * sw];
        for &(x0, x1, fx) in &xs {
            let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
            let bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
            dst.push(top + (bot - top) * fy);
        }
    }
    dst
}

/// Nearest-neighbour resampling of labels (pixel centres).
pub fn resize_nearest<T: Copy>(src: &[T], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<T> {
    let xs: Vec<usize> = (0..dw)
        .map(|o| (((o as f64 + 0.5) * sw as f64 / dw as f64) as usize).min(sw - 1))
        .collect();
    let mut dst = Vec::with_capacity(dw * dh);
    for o in 0..dh {
        let y = (((o as f64 + 0.5) * sh as f64 / dh as f64) as usize).min(sh - 1);
        let row = &src[y * sw..(y + 1) * sw];
        dst.extend(xs.iter().map(|&x| row[x]));
    }
    dst
}

/// Working size: the image scaled so that its longest side is at most `max_side` (never upscaled).
pub fn working_size(width: u32, height: u32, max_side: u32) -> (usize, usize) {
    let longest = width.max(height);
    if longest <= max_side {
        return (width as usize, height as usize);
    }
    let s = max_side as f64 / longest as f64;
    let w = ((width as f64 * s).round() as usize).max(1);
    let h = ((height as f64 * s).round() as usize).max(1);
    (w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_downscale_by_two_averages_blocks() {
        let src = vec![1.0, 3.0, 5.0, 7.0, 1.0, 3.0, 5.0, 7.0];
        let out = resize_area(&src, 4, 2, 2, 1);
        assert_eq!(out, vec![2.0, 6.0]);
    }

    #[test]
    fn area_non_integer_ratio_preserves_mean() {
        let src: Vec<f32> = (0..7 * 5).map(|v| v as f32).collect();
        let out = resize_area(&src, 7, 5, 3, 2);
        let mean_in: f32 = src.iter().sum::<f32>() / src.len() as f32;
        let mean_out: f32 = out.iter().sum::<f32>() / out.len() as f32;
        assert!((mean_in - mean_out).abs() < 1e-4);
    }

    #[test]
    fn streamed_area_equals_planar_area() {
        let (sw, sh, dw, dh) = (13, 11, 5, 4);
        let src: Vec<f32> = (0..sw * sh * 2).map(|v| ((v * 37) % 101) as f32).collect();
        let mut acc = AreaAccumulator::new(2, sw, sh, dw, dh);
        let mut other = AreaAccumulator::new(2, sw, sh, dw, dh);
        for y in 0..sh {
            let row = &src[y * sw * 2..(y + 1) * sw * 2];
            if y < 6 {
                acc.add_row(y, row)
            } else {
                other.add_row(y, row)
            }
        }
        acc.merge(&other);
        for ch in 0..2 {
            let plane: Vec<f32> = (0..sw * sh).map(|i| src[i * 2 + ch]).collect();
            let want = resize_area(&plane, sw, sh, dw, dh);
            for (a, b) in acc.plane(ch).iter().zip(&want) {
                assert!((a - b).abs() < 1e-3, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn row_ranges_are_aligned_and_cover() {
        let r = row_ranges(100, 3, 16);
        assert_eq!(r, vec![0..48, 48..96, 96..100]);
        assert_eq!(row_ranges(10, 4, 16), vec![0..10]);
    }

    #[test]
    fn bilinear_identity_and_known_values() {
        let src = vec![0.0, 1.0, 2.0, 3.0];
        assert_eq!(resize_bilinear(&src, 2, 2, 2, 2), src);
        // 2x1 -> 4x1 with half-pixel centres: 0, 0.25, 0.75, 1
        let out = resize_bilinear(&[0.0, 1.0], 2, 1, 4, 1);
        assert_eq!(out, vec![0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn working_size_caps_longest_side() {
        assert_eq!(working_size(384, 256, 512), (384, 256));
        assert_eq!(working_size(4000, 3000, 512), (512, 384));
    }
}
