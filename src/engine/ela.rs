//! Signed-value error levels (METHOD.md section 1): E = I - JPEG_q(I), per channel, in [-255, 255].
//!
//! E is computed at native resolution and streamed, row by row, into its two area-resampled
//! uses (the classifier tensor and the working-size map), so a 12 MP photo never exists as float
//! planes. The re-encoding runs in horizontal strips on all cores; each strip is encoded with a
//! 16-row margin on both sides and strip boundaries fall on 16-row MCU boundaries, so every kept
//! row sees exactly the blocks (and the decoder's chroma neighbours) of a whole-image round trip:
//! the result is bit-identical to encoding the whole image (tested below).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::engine::jpeg::roundtrip_rgb;
use crate::engine::raster::{AreaAccumulator, Map, resize_area, row_ranges, threads};
use crate::error::{EngineError, Result};

/// How a classifier wants its ELA input; read from the model's manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ElaParams {
    /// JPEG quality of the re-encoding.
    pub quality: u8,
    /// The tensor is `E / scale`.
    pub scale: f32,
    /// Classifier input size (square side in pixels).
    pub size: u32,
}

impl Default for ElaParams {
    fn default() -> Self {
        Self {
            quality: 90,
            scale: 16.0,
            size: 384,
        }
    }
}

/// The error levels of one image, already area-resampled to where they are used.
#[derive(Debug, Clone)]
pub struct SignedEla {
    pub quality: u8,
    /// Side of the square classifier input.
    pub size: usize,
    /// E area-resized to size x size, planar RGB, unscaled.
    pub resized: [Vec<f32>; 3],
    pub working_width: usize,
    pub working_height: usize,
    /// Mean |E| over channels, area-resized to the working size (not smoothed).
    pub abs_working: Vec<f32>,
}

/// Identity of the ELA's JPEG round trip: codec, version and settings. Every change that
/// alters E changes this string (training keys its cached tensors by it).
pub const ELA_CODEC: &str = "libjpeg-turbo-rs 0.9: encode jpeg_set_quality 4:2:0 islow; \
                             decode islow fancy-upsampling; input decode the same";

/// Margin (rows) encoded around each strip: one MCU of 4:2:0 JPEG.
const MARGIN: usize = 16;

/// Re-encode as JPEG at `quality` and decode again ([`crate::engine::jpeg::roundtrip_rgb`]).
pub fn jpeg_roundtrip(rgb: &RgbImage, quality: u8) -> Result<RgbImage> {
    let (w, h) = (rgb.width(), rgb.height());
    let out = roundtrip_rgb(rgb.as_raw(), w as usize, h as usize, quality).map_err(codec)?;
    RgbImage::from_raw(w, h, out)
        .ok_or_else(|| EngineError::Other("JPEG round trip returned a short image".into()))
}

fn codec(e: crate::engine::jpeg::JpegError) -> EngineError {
    EngineError::Other(format!("JPEG round trip for ELA failed: {e}"))
}

/// Round trip of rows `rows` (MCU-aligned start), through a margin-extended strip that borrows
/// the image's rows. Returns the recompressed rows `rows` only.
fn roundtrip_rows(rgb: &RgbImage, quality: u8, rows: std::ops::Range<usize>) -> Result<Vec<u8>> {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let a = rows.start.saturating_sub(MARGIN);
    let b = (rows.end + MARGIN).min(h);
    let mut j =
        roundtrip_rgb(&rgb.as_raw()[a * w * 3..b * w * 3], w, b - a, quality).map_err(codec)?;
    j.truncate((rows.end - a) * w * 3);
    j.drain(..(rows.start - a) * w * 3);
    Ok(j)
}

/// Largest strip re-encoded at once, in pixels. Each strip in flight holds the codec's planes,
/// coefficients and decoded rows (about 10 bytes per pixel), so this bounds the ELA's memory at
/// any image size: an 80 MP photo is cut into about 20 strips, not one per core.
const MAX_STRIP_PIXELS: usize = 4_000_000;

/// Apply `visit(y, e_row)` to every row of E = I - J (interleaved RGB floats). Worker `k` of
/// [`threads`] takes strips `k, k + workers, ...` (a fixed assignment, so that the float sums are
/// the same on every run) and folds their rows into its own state `S`; the states are returned
/// in worker order.
fn for_each_ela_row<S: Send>(
    rgb: &RgbImage,
    quality: u8,
    init: impl Fn() -> S + Sync,
    visit: impl Fn(&mut S, usize, &[f32]) + Sync,
) -> Result<Vec<S>> {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let workers = threads();
    // At least one strip per worker, more when a strip would exceed MAX_STRIP_PIXELS, and a
    // multiple of the workers so they finish together.
    let by_size = (w * h).div_ceil(MAX_STRIP_PIXELS);
    let strips = by_size.div_ceil(workers).max(1) * workers;
    let ranges = row_ranges(h, strips, MARGIN);
    let workers = workers.min(ranges.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|k| {
                let (init, visit, ranges) = (&init, &visit, &ranges);
                scope.spawn(move || -> Result<S> {
                    let mut state = init();
                    let mut e_row = vec![0f32; w * 3];
                    for rows in ranges.iter().skip(k).step_by(workers) {
                        let j = roundtrip_rows(rgb, quality, rows.clone())?;
                        for y in rows.clone() {
                            let src = &rgb.as_raw()[y * w * 3..(y + 1) * w * 3];
                            let rec = &j[(y - rows.start) * w * 3..(y - rows.start + 1) * w * 3];
                            for ((e, &a), &b) in e_row.iter_mut().zip(src).zip(rec) {
                                *e = a as f32 - b as f32;
                            }
                            visit(&mut state, y, &e_row);
                        }
                    }
                    Ok(state)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| EngineError::Other("ELA worker thread failed".into()))?
            })
            .collect()
    })
}

/// E for the classifier (`size` x `size`) and the working-size |E| map, in one pass.
pub fn signed_ela(
    rgb: &RgbImage,
    quality: u8,
    size: usize,
    working: (usize, usize),
) -> Result<SignedEla> {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let (ww, wh) = working;
    let parts = for_each_ela_row(
        rgb,
        quality,
        || {
            (
                AreaAccumulator::new(3, w, h, size, size),
                AreaAccumulator::new(1, w, h, ww, wh),
                vec![0f32; w],
            )
        },
        |(tensor, abs, mean_abs), y, e| {
            tensor.add_row(y, e);
            for (m, px) in mean_abs.iter_mut().zip(e.chunks_exact(3)) {
                *m = (px[0].abs() + px[1].abs() + px[2].abs()) / 3.0;
            }
            abs.add_row(y, mean_abs);
        },
    )?;
    let mut parts = parts.into_iter();
    let (mut tensor, mut abs, _) = parts
        .next()
        .ok_or_else(|| EngineError::Other("empty image".into()))?;
    for (t, a, _) in parts {
        tensor.merge(&t);
        abs.merge(&a);
    }
    Ok(SignedEla {
        quality,
        size,
        resized: [
            tensor.plane(0).to_vec(),
            tensor.plane(1).to_vec(),
            tensor.plane(2).to_vec(),
        ],
        working_width: ww,
        working_height: wh,
        abs_working: abs.out,
    })
}

/// E at native resolution, planar RGB (for viewing; the pipeline never needs it whole).
pub fn signed_ela_native(rgb: &RgbImage, quality: u8) -> Result<[Vec<f32>; 3]> {
    let w = rgb.width() as usize;
    let parts = for_each_ela_row(
        rgb,
        quality,
        Vec::new,
        |rows: &mut Vec<(usize, Vec<f32>)>, y, e| rows.push((y, e.to_vec())),
    )?;
    let n = w * rgb.height() as usize;
    let mut planes = [vec![0f32; n], vec![0f32; n], vec![0f32; n]];
    for (y, row) in parts.into_iter().flatten() {
        for (x, px) in row.chunks_exact(3).enumerate() {
            for c in 0..3 {
                planes[c][y * w + x] = px[c];
            }
        }
    }
    Ok(planes)
}

impl SignedEla {
    /// The classifier tensor: E / scale, NCHW with N = 1.
    pub fn to_tensor(&self, params: &ElaParams) -> Result<ndarray::Array4<f32>> {
        let s = self.size;
        if params.size as usize != s || params.quality != self.quality {
            return Err(EngineError::Other(format!(
                "ELA was computed at q{} / {s}px, the model wants q{} / {}px",
                self.quality, params.quality, params.size
            )));
        }
        let mut t = ndarray::Array4::<f32>::zeros((1, 3, s, s));
        for c in 0..3 {
            for (dst, v) in t
                .slice_mut(ndarray::s![0, c, .., ..])
                .iter_mut()
                .zip(&self.resized[c])
            {
                *dst = v / params.scale;
            }
        }
        Ok(t)
    }

    /// Absolute ELA for display and for the plain-ELA baseline of METHOD.md section 7:
    /// mean |E| over channels at the working size, box-smoothed, min-max normalised.
    pub fn abs_map(&self, width: usize, height: usize, box_radius: usize) -> Map {
        let (ww, wh) = (self.working_width, self.working_height);
        let base = if (width, height) == (ww, wh) {
            self.abs_working.clone()
        } else {
            resize_area(&self.abs_working, ww, wh, width, height)
        };
        Map::new(width, height, box_blur(&base, width, height, box_radius)).normalized()
    }
}

/// Box blur with a (2r+1)^2 window, edges use the pixels inside the image.
pub fn box_blur(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    if r == 0 {
        return src.to_vec();
    }
    let pass = |src: &[f32], len: usize, count: usize, stride: usize, step: usize| -> Vec<f32> {
        let mut out = vec![0f32; src.len()];
        let mut prefix = vec![0f64; len + 1];
        for line in 0..count {
            let base = line * stride;
            for i in 0..len {
                prefix[i + 1] = prefix[i] + src[base + i * step] as f64;
            }
            for i in 0..len {
                let lo = i.saturating_sub(r);
                let hi = (i + r + 1).min(len);
                out[base + i * step] = ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32;
            }
        }
        out
    };
    let horiz = pass(src, w, h, w, 1);
    pass(&horiz, h, w, 1, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn textured(w: u32, h: u32) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([
                (x * 7 + y * 3) as u8,
                ((x * y) % 251) as u8,
                ((x ^ y) * 5) as u8,
            ]);
        }
        img
    }

    #[test]
    fn ela_of_flat_grey_image_is_small() {
        let img = RgbImage::from_pixel(64, 48, image::Rgb([120, 64, 200]));
        let e = signed_ela(&img, 90, 32, (64, 48)).expect("ela");
        assert!(e.resized.iter().flatten().all(|v| v.abs() <= 4.0));
    }

    #[test]
    fn strips_equal_whole_image_round_trip() {
        // Tall enough for several strips on any core count, odd sizes for partial MCUs.
        let img = textured(101, 243);
        let whole = jpeg_roundtrip(&img, 85).expect("roundtrip");
        let native = signed_ela_native(&img, 85).expect("ela");
        let (w, h) = (101usize, 243usize);
        for y in 0..h {
            for x in 0..w {
                for (c, plane) in native.iter().enumerate() {
                    let want = img.get_pixel(x as u32, y as u32).0[c] as f32
                        - whole.get_pixel(x as u32, y as u32).0[c] as f32;
                    assert_eq!(plane[y * w + x], want, "pixel {x},{y} channel {c}");
                }
            }
        }
        // And with explicit small strips.
        for rows in row_ranges(h, 7, MARGIN) {
            let part = roundtrip_rows(&img, 85, rows.clone()).expect("strip");
            assert_eq!(
                part,
                whole.as_raw()[rows.start * w * 3..rows.end * w * 3].to_vec(),
                "rows {rows:?}"
            );
        }
    }

    #[test]
    fn tensor_has_model_shape_and_scale() {
        let img = textured(100, 60);
        let e = signed_ela(&img, 75, 32, (100, 60)).expect("ela");
        let t = e
            .to_tensor(&ElaParams {
                quality: 75,
                scale: 8.0,
                size: 32,
            })
            .expect("tensor");
        assert_eq!(t.shape(), &[1, 3, 32, 32]);
        assert!(t.iter().all(|v| v.abs() <= 255.0 / 8.0));
        // The streamed resize equals resizing the native planes.
        let native = signed_ela_native(&img, 75).expect("native");
        let want = resize_area(&native[1], 100, 60, 32, 32);
        for (a, b) in e.resized[1].iter().zip(&want) {
            assert!((a - b).abs() < 1e-3);
        }
        assert!(
            e.to_tensor(&ElaParams {
                quality: 90,
                scale: 8.0,
                size: 32
            })
            .is_err()
        );
    }

    #[test]
    fn box_blur_of_constant_is_constant() {
        let out = box_blur(&[2.0; 20], 5, 4, 2);
        assert!(out.iter().all(|&v| (v - 2.0).abs() < 1e-6));
    }
}
