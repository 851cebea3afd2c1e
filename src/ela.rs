//! Signed-value error levels (METHOD.md section 1): E = I - JPEG_q(I), per channel, in [-255, 255].

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::raster::{Map, resize_area};

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
        Self { quality: 90, scale: 16.0, size: 384 }
    }
}

/// Signed error levels at native resolution, planar RGB (3 x h x w).
#[derive(Debug, Clone)]
pub struct SignedEla {
    pub width: usize,
    pub height: usize,
    pub planes: [Vec<f32>; 3],
}

/// Re-encode as JPEG at `quality` with this crate's encoder and decode again.
pub fn jpeg_roundtrip(rgb: &RgbImage, quality: u8) -> Result<RgbImage> {
    let mut buf = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality);
    rgb.write_with_encoder(encoder)
        .map_err(|e| EngineError::Other(format!("JPEG re-encoding for ELA failed: {e}")))?;
    let decoded = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
        .map_err(|e| EngineError::Other(format!("JPEG decoding for ELA failed: {e}")))?;
    Ok(decoded.to_rgb8())
}

/// E = I - J, computed at native resolution (resizing first would destroy the 8x8 grid traces).
pub fn signed_ela(rgb: &RgbImage, quality: u8) -> Result<SignedEla> {
    let recompressed = jpeg_roundtrip(rgb, quality)?;
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut planes = [vec![0f32; w * h], vec![0f32; w * h], vec![0f32; w * h]];
    for (i, (a, b)) in rgb.pixels().zip(recompressed.pixels()).enumerate() {
        for c in 0..3 {
            planes[c][i] = a.0[c] as f32 - b.0[c] as f32;
        }
    }
    Ok(SignedEla { width: w, height: h, planes })
}

impl SignedEla {
    /// The classifier tensor: area-resized to `size x size`, divided by `scale`, NCHW with N = 1.
    pub fn to_tensor(&self, params: &ElaParams) -> ndarray::Array4<f32> {
        let s = params.size as usize;
        let mut t = ndarray::Array4::<f32>::zeros((1, 3, s, s));
        for c in 0..3 {
            let resized = resize_area(&self.planes[c], self.width, self.height, s, s);
            for (dst, v) in t.slice_mut(ndarray::s![0, c, .., ..]).iter_mut().zip(resized) {
                *dst = v / params.scale;
            }
        }
        t
    }

    /// Absolute ELA for display and for the plain-ELA baseline of METHOD.md section 7:
    /// mean |E| over channels, area-resized to the working size, box-smoothed, min-max normalised.
    pub fn abs_map(&self, width: usize, height: usize, box_radius: usize) -> Map {
        let n = self.width * self.height;
        let mut mean = vec![0f32; n];
        for plane in &self.planes {
            for (m, v) in mean.iter_mut().zip(plane) {
                *m += v.abs() / 3.0;
            }
        }
        let resized = resize_area(&mean, self.width, self.height, width, height);
        Map::new(width, height, box_blur(&resized, width, height, box_radius)).normalized()
    }
}

/// Box blur with a (2r+1)^2 window, edges use the pixels inside the image.
pub fn box_blur(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    if r == 0 {
        return src.to_vec();
    }
    let pass = |src: &[f32], len: usize, count: usize, stride: usize, step: usize| -> Vec<f32> {
        let mut out = vec![0f32; src.len()];
        for line in 0..count {
            let base = line * stride;
            let mut prefix = vec![0f64; len + 1];
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

    #[test]
    fn ela_of_flat_grey_image_is_small_and_signed() {
        let img = RgbImage::from_pixel(64, 48, image::Rgb([120, 64, 200]));
        let e = signed_ela(&img, 90).expect("ela");
        assert_eq!((e.width, e.height), (64, 48));
        for plane in &e.planes {
            assert!(plane.iter().all(|v| v.abs() <= 4.0));
        }
    }

    #[test]
    fn tensor_has_model_shape_and_scale() {
        let mut img = RgbImage::new(100, 60);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([(x * 2) as u8, (y * 4) as u8, ((x * y) % 256) as u8]);
        }
        let e = signed_ela(&img, 75).expect("ela");
        let t = e.to_tensor(&ElaParams { quality: 75, scale: 8.0, size: 32 });
        assert_eq!(t.shape(), &[1, 3, 32, 32]);
        assert!(t.iter().all(|v| v.abs() <= 255.0 / 8.0));
    }

    #[test]
    fn box_blur_of_constant_is_constant() {
        let out = box_blur(&[2.0; 20], 5, 4, 2);
        assert!(out.iter().all(|&v| (v - 2.0).abs() < 1e-6));
    }
}
