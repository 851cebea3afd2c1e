//! Built-in classical segmenter: Felzenszwalb & Huttenlocher, "Efficient Graph-Based Image
//! Segmentation" (IJCV 2004). Needs no weights; works at the working resolution.

use serde::{Deserialize, Serialize};

use super::{MaskRule, Segmentation, components_of_labels};
use crate::engine::ela::box_blur;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FelzenszwalbParams {
    /// Scale of the threshold function k / |C|: larger k, larger regions.
    pub k: f32,
    /// Smoothing before building the graph (Gaussian sigma, approximated by three box passes).
    pub sigma: f32,
}

impl Default for FelzenszwalbParams {
    fn default() -> Self {
        Self {
            k: 800.0,
            sigma: 0.8,
        }
    }
}

pub const NAME: &str = "felzenszwalb";

struct DisjointSet {
    parent: Vec<u32>,
    size: Vec<u32>,
    internal: Vec<f32>,
}

impl DisjointSet {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
            internal: vec![0.0; n],
        }
    }
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }
    fn union(&mut self, a: u32, b: u32, w: f32) -> u32 {
        let (a, b) = if self.size[a as usize] < self.size[b as usize] {
            (b, a)
        } else {
            (a, b)
        };
        self.parent[b as usize] = a;
        self.size[a as usize] += self.size[b as usize];
        self.internal[a as usize] = w;
        a
    }
}

/// Sort edges by weight: a counting sort on weights quantised to 1/64 of a level (the weights are
/// colour distances, at most 255 * sqrt(3)), stable within a bucket. Linear time; the order
/// differs from an exact float sort only between edges closer than 1/64 of a level.
fn sort_by_weight(edges: &mut Vec<(f32, u32, u32)>) {
    const STEPS: f32 = 64.0;
    let buckets = (255.0 * 3f32.sqrt() * STEPS) as usize + 2;
    let key = |w: f32| ((w * STEPS) as usize).min(buckets - 1);
    let mut start = vec![0usize; buckets + 1];
    for e in edges.iter() {
        start[key(e.0) + 1] += 1;
    }
    for i in 0..buckets {
        start[i + 1] += start[i];
    }
    let mut sorted = vec![(0f32, 0u32, 0u32); edges.len()];
    for &e in edges.iter() {
        let k = key(e.0);
        sorted[start[k]] = e;
        start[k] += 1;
    }
    *edges = sorted;
}

/// Felzenszwalb-Huttenlocher labels of an RGB image (interleaved, `width x height`): one label
/// per pixel (the root of its component, not compact), components under `min_pixels` merged into
/// their cheapest neighbour (paper, s.4.1).
fn forest(
    rgb: &[u8],
    width: usize,
    height: usize,
    params: &FelzenszwalbParams,
    min_pixels: u32,
) -> Vec<u32> {
    let n = width * height;
    // Smooth each channel; three box passes approximate a Gaussian of the given sigma.
    let radius = ((params.sigma * params.sigma * 4.0 / 3.0 + 1.0).sqrt() - 1.0)
        .round()
        .max(0.0) as usize;
    let channels: Vec<Vec<f32>> = (0..3)
        .map(|c| {
            let mut plane: Vec<f32> = (0..n).map(|i| rgb[i * 3 + c] as f32).collect();
            for _ in 0..3 {
                plane = box_blur(
                    &plane,
                    width,
                    height,
                    radius.max(if params.sigma > 0.0 { 1 } else { 0 }),
                );
            }
            plane
        })
        .collect();
    let diff = |a: usize, b: usize| -> f32 {
        let mut s = 0f32;
        for ch in &channels {
            let d = ch[a] - ch[b];
            s += d * d;
        }
        s.sqrt()
    };
    let mut edges: Vec<(f32, u32, u32)> = Vec::with_capacity(n * 4);
    for y in 0..height {
        for x in 0..width {
            let p = y * width + x;
            if x + 1 < width {
                edges.push((diff(p, p + 1), p as u32, (p + 1) as u32));
            }
            if y + 1 < height {
                edges.push((diff(p, p + width), p as u32, (p + width) as u32));
                if x + 1 < width {
                    edges.push((diff(p, p + width + 1), p as u32, (p + width + 1) as u32));
                }
                if x > 0 {
                    edges.push((diff(p, p + width - 1), p as u32, (p + width - 1) as u32));
                }
            }
        }
    }
    sort_by_weight(&mut edges);
    let mut set = DisjointSet::new(n);
    let tau = |size: u32| params.k / size as f32;
    for &(w, a, b) in &edges {
        let (ra, rb) = (set.find(a), set.find(b));
        if ra != rb
            && w <= set.internal[ra as usize] + tau(set.size[ra as usize])
            && w <= set.internal[rb as usize] + tau(set.size[rb as usize])
        {
            set.union(ra, rb, w);
        }
    }
    // Merge components below the minimum area into their cheapest neighbour (paper, s.4.1).
    for &(_, a, b) in &edges {
        let (ra, rb) = (set.find(a), set.find(b));
        if ra != rb && (set.size[ra as usize] < min_pixels || set.size[rb as usize] < min_pixels) {
            let w = set.internal[ra as usize].max(set.internal[rb as usize]);
            set.union(ra, rb, w);
        }
    }
    (0..n as u32).map(|p| set.find(p)).collect()
}

/// Segment an RGB image (interleaved, `width x height`) into regions.
pub fn segment(
    rgb: &[u8],
    width: usize,
    height: usize,
    params: &FelzenszwalbParams,
    rule: &MaskRule,
) -> Segmentation {
    let min_pixels = rule.min_pixels(width, height) as u32;
    let labels = forest(rgb, width, height, params, min_pixels);
    let mut numbering = std::collections::HashMap::new();
    let (regions, dropped_small) =
        components_of_labels(&labels, width, height, &[], min_pixels as usize, |root| {
            let next = numbering.len() + 1;
            format!("segment {}", *numbering.entry(root).or_insert(next))
        });
    Segmentation {
        segmenter: NAME.to_string(),
        regions,
        dropped_small,
    }
}

/// Fine Felzenszwalb-Huttenlocher superpixels of `rgb` (`sigma` 0.8, components of at least
/// `min_pixels`): `labels[y * width + x]` in `0..count`. Returns (labels, count). Used to make the
/// 8x8-block compression evidence follow image edges (docs/compression.md).
pub fn superpixels(rgb: &image::RgbImage, k: f32, min_pixels: u32) -> (Vec<u32>, usize) {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let params = FelzenszwalbParams { k, sigma: 0.8 };
    let roots = forest(rgb.as_raw(), w, h, &params, min_pixels);
    let mut compact = std::collections::HashMap::new();
    let labels = roots
        .iter()
        .map(|r| {
            let next = compact.len() as u32;
            *compact.entry(*r).or_insert(next)
        })
        .collect();
    (labels, compact.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_flat_halves_give_two_regions() {
        let (w, h) = (40, 30);
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let v = if x < 20 { [200, 30, 30] } else { [20, 40, 220] };
                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&v);
            }
        }
        // No smoothing: blurred seams would form thin strips of their own.
        let params = FelzenszwalbParams {
            sigma: 0.0,
            ..FelzenszwalbParams::default()
        };
        let seg = segment(&rgb, w, h, &params, &MaskRule::default());
        assert_eq!(
            seg.regions.len(),
            2,
            "{:?}",
            seg.regions.iter().map(|r| r.area).collect::<Vec<_>>()
        );
        let left = seg
            .regions
            .iter()
            .find(|r| r.bbox[0] == 0)
            .expect("left region");
        assert_eq!(left.bbox, [0, 0, 20, 30]);
    }
}
