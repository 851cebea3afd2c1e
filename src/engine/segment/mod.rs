//! Segmenters turn the image into candidate region masks at the working resolution
//! (METHOD.md section 4).

pub mod felzenszwalb;
pub mod sam;
pub mod semantic;

use serde::{Deserialize, Serialize};

use crate::engine::raster::{Map, Mask};
use crate::engine::similarity::{SimilarityVariant, distance_transform};

/// The rule that drops tiny regions; recorded in every report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MaskRule {
    /// Regions smaller than this fraction of the working image are dropped.
    pub min_area_fraction: f32,
}

impl Default for MaskRule {
    fn default() -> Self {
        Self {
            min_area_fraction: 0.01,
        }
    }
}

impl MaskRule {
    pub fn min_pixels(&self, width: usize, height: usize) -> usize {
        ((self.min_area_fraction as f64 * (width * height) as f64).ceil() as usize).max(1)
    }
}

/// One candidate region with its distance transform, cached because the map may change
/// (another similarity variant, another parameter) while the regions stay.
#[derive(Debug, Clone)]
pub struct Region {
    /// Class name for semantic segmenters, "segment N" otherwise.
    pub label: String,
    /// x0, y0, x1, y1 (exclusive) of the mask's pixels.
    pub bbox: [usize; 4],
    pub area: usize,
    pub mask: Mask,
    /// Distance transform inside `bbox` (row-major, bbox-sized).
    dist: Vec<f32>,
}

impl Region {
    pub fn new(label: String, mask: Mask) -> Option<Region> {
        let pixels: Vec<usize> = mask
            .data
            .iter()
            .enumerate()
            .filter(|(_, m)| **m)
            .map(|(i, _)| i)
            .collect();
        Self::with_pixels(label, mask, &pixels)
    }

    /// Build from a mask whose set pixels (row-major indices) are already known.
    pub fn with_pixels(label: String, mask: Mask, pixels: &[usize]) -> Option<Region> {
        let (w, h) = (mask.width, mask.height);
        let area = pixels.len();
        // An empty mask, or one covering the whole image, says nothing about where.
        if area == 0 || area == w * h {
            return None;
        }
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for &p in pixels {
            let (x, y) = (p % w, p / w);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
        }
        // The nearest outside pixel of any inside pixel lies within the box grown by one pixel
        // (clamping towards the box can only shorten a distance), so the transform is exact there.
        let (cx0, cy0) = (x0.saturating_sub(1), y0.saturating_sub(1));
        let (cx1, cy1) = ((x1 + 1).min(w), (y1 + 1).min(h));
        let (cw, ch) = (cx1 - cx0, cy1 - cy0);
        let mut crop = Vec::with_capacity(cw * ch);
        for y in cy0..cy1 {
            crop.extend_from_slice(&mask.data[y * w + cx0..y * w + cx1]);
        }
        let crop_dist = distance_transform(&Mask {
            width: cw,
            height: ch,
            data: crop,
        });
        let (bw, bh) = (x1 - x0, y1 - y0);
        let mut dist = Vec::with_capacity(bw * bh);
        for y in y0..y1 {
            let row = (y - cy0) * cw;
            dist.extend_from_slice(&crop_dist[row + (x0 - cx0)..row + (x1 - cx0)]);
        }
        Some(Region {
            label,
            bbox: [x0, y0, x1, y1],
            area,
            mask,
            dist,
        })
    }

    /// Distance transform over the whole image (0 outside the mask).
    pub fn distance_map(&self) -> Vec<f32> {
        let w = self.mask.width;
        let mut out = vec![0f32; w * self.mask.height];
        let [x0, y0, x1, y1] = self.bbox;
        let bw = x1 - x0;
        for y in y0..y1 {
            out[y * w + x0..y * w + x1]
                .copy_from_slice(&self.dist[(y - y0) * bw..(y - y0 + 1) * bw]);
        }
        out
    }

    /// `S(M, A)` (METHOD.md section 5), computed inside the bounding box only.
    pub fn similarity(&self, map: &Map, variant: SimilarityVariant) -> f32 {
        let [x0, y0, x1, y1] = self.bbox;
        let bw = x1 - x0;
        let scale = match variant {
            SimilarityVariant::Paper => 1.0,
            SimilarityVariant::Normalized => {
                let max = self.dist.iter().copied().fold(0f32, f32::max);
                if max > 0.0 { 1.0 / max } else { 0.0 }
            }
        };
        let mut sum = 0f64;
        for y in y0..y1 {
            let d = &self.dist[(y - y0) * bw..(y - y0 + 1) * bw];
            let a = &map.data[y * map.width + x0..y * map.width + x1];
            sum += d.iter().zip(a).map(|(&d, &a)| (d * a) as f64).sum::<f64>();
        }
        (sum * scale as f64 / self.area as f64) as f32
    }
}

/// What a segmenter produced for one image.
#[derive(Debug, Clone)]
pub struct Segmentation {
    pub segmenter: String,
    pub regions: Vec<Region>,
    /// Regions dropped by the minimum-area rule.
    pub dropped_small: usize,
}

/// One mask per 8-connected component of each label, except `ignore`d labels; components
/// below `min_pixels` are dropped (and counted).
pub fn components_of_labels(
    labels: &[u32],
    width: usize,
    height: usize,
    ignore: &[u32],
    min_pixels: usize,
    mut name_of: impl FnMut(u32) -> String,
) -> (Vec<Region>, usize) {
    let mut comp = vec![u32::MAX; labels.len()];
    let mut regions = Vec::new();
    let mut dropped = 0;
    let mut stack = Vec::new();
    let mut next = 0u32;
    for start in 0..labels.len() {
        if comp[start] != u32::MAX || ignore.contains(&labels[start]) {
            continue;
        }
        let label = labels[start];
        let id = next;
        next += 1;
        comp[start] = id;
        stack.push(start);
        let mut pixels = Vec::new();
        while let Some(p) = stack.pop() {
            pixels.push(p);
            let (x, y) = ((p % width) as isize, (p / width) as isize);
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (nx, ny) = (x + dx, y + dy);
                    if (dx, dy) == (0, 0)
                        || nx < 0
                        || ny < 0
                        || nx >= width as isize
                        || ny >= height as isize
                    {
                        continue;
                    }
                    let q = ny as usize * width + nx as usize;
                    if comp[q] == u32::MAX && labels[q] == label {
                        comp[q] = id;
                        stack.push(q);
                    }
                }
            }
        }
        if pixels.len() < min_pixels {
            dropped += 1;
            continue;
        }
        let mut data = vec![false; labels.len()];
        for p in pixels {
            data[p] = true;
        }
        if let Some(r) = Region::new(
            name_of(label),
            Mask {
                width,
                height,
                data,
            },
        ) {
            regions.push(r);
        }
    }
    (regions, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_split_same_label_and_drop_small() {
        // Two blobs of label 1, one pixel of label 2, background 0 ignored.
        #[rustfmt::skip]
        let labels = [
            1, 1, 0, 0, 1,
            1, 1, 0, 0, 0,
            0, 0, 0, 2, 0,
        ];
        let (regions, dropped) = components_of_labels(&labels, 5, 3, &[0], 2, |l| format!("c{l}"));
        assert_eq!(regions.len(), 1);
        assert_eq!(regions[0].area, 4);
        assert_eq!(regions[0].bbox, [0, 0, 2, 2]);
        assert_eq!(dropped, 2);
    }

    #[test]
    fn cropped_distance_equals_full_transform() {
        let (w, h) = (12, 9);
        let data: Vec<bool> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                (2..9).contains(&x) && (1..8).contains(&y) && !(x == 5 && y == 4)
            })
            .collect();
        let mask = Mask {
            width: w,
            height: h,
            data,
        };
        let region = Region::new("r".into(), mask.clone()).expect("non-empty");
        assert_eq!(region.distance_map(), distance_transform(&mask));
        let map = Map::new(w, h, (0..w * h).map(|i| (i % 7) as f32 / 7.0).collect());
        for v in SimilarityVariant::ALL {
            let full = crate::engine::similarity::similarity(&mask, &map, v);
            assert!((region.similarity(&map, v) - full).abs() < 1e-5);
        }
    }
}
