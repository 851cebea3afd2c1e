//! Distance-transform similarity between a region mask and the activation map, and the choice of
//! the evidence mask (METHOD.md section 5).

use serde::{Deserialize, Serialize};

use crate::engine::raster::{Map, Mask};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SimilarityVariant {
    /// Paper eq. 5: `sum D A / sum M` (grows with the square root of the region's size).
    #[default]
    Paper,
    /// Size-neutral: D divided by its maximum inside the mask.
    Normalized,
}

impl SimilarityVariant {
    pub const ALL: [SimilarityVariant; 2] =
        [SimilarityVariant::Paper, SimilarityVariant::Normalized];

    pub fn name(self) -> &'static str {
        match self {
            SimilarityVariant::Paper => "paper",
            SimilarityVariant::Normalized => "normalized",
        }
    }
}

impl std::str::FromStr for SimilarityVariant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "paper" => Ok(Self::Paper),
            "normalized" | "normalised" => Ok(Self::Normalized),
            _ => Err(format!("unknown similarity '{s}' (paper or normalized)")),
        }
    }
}

/// Exact Euclidean distance from each mask pixel to the nearest pixel outside the mask
/// (0 outside). Pixels beyond the image border do not count as outside, as in
/// `scipy.ndimage.distance_transform_edt`. Felzenszwalb & Huttenlocher's separable algorithm,
/// O(pixels). A mask without any outside pixel gets +inf inside.
pub fn distance_transform(mask: &Mask) -> Vec<f32> {
    let (w, h) = (mask.width, mask.height);
    let inf = f64::INFINITY;
    // Squared distance to the nearest background pixel.
    let mut g: Vec<f64> = mask
        .data
        .iter()
        .map(|&m| if m { inf } else { 0.0 })
        .collect();
    let mut f = vec![0f64; w.max(h)];
    let mut d = vec![0f64; w.max(h)];
    let mut v = vec![0usize; w.max(h)];
    let mut z = vec![0f64; w.max(h) + 1];
    for x in 0..w {
        for y in 0..h {
            f[y] = g[y * w + x];
        }
        edt_1d(&f[..h], &mut d[..h], &mut v, &mut z);
        for y in 0..h {
            g[y * w + x] = d[y];
        }
    }
    for y in 0..h {
        f[..w].copy_from_slice(&g[y * w..(y + 1) * w]);
        edt_1d(&f[..w], &mut d[..w], &mut v, &mut z);
        g[y * w..(y + 1) * w].copy_from_slice(&d[..w]);
    }
    g.iter().map(|&s| s.sqrt() as f32).collect()
}

/// 1-D squared distance transform of a sampled function (lower envelope of parabolas).
fn edt_1d(f: &[f64], d: &mut [f64], v: &mut [usize], z: &mut [f64]) {
    let n = f.len();
    // Skip leading +inf samples: parabolas rooted at infinity never form the envelope.
    let Some(first) = f.iter().position(|x| x.is_finite()) else {
        d.fill(f64::INFINITY);
        return;
    };
    let mut k = 0usize;
    v[0] = first;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in first + 1..n {
        if !f[q].is_finite() {
            continue;
        }
        loop {
            let p = v[k];
            let s = ((f[q] + (q * q) as f64) - (f[p] + (p * p) as f64))
                / (2.0 * q as f64 - 2.0 * p as f64);
            if s <= z[k] {
                if k == 0 {
                    v[0] = q;
                    z[1] = f64::INFINITY;
                    break;
                }
                k -= 1;
                continue;
            }
            k += 1;
            v[k] = q;
            z[k] = s;
            z[k + 1] = f64::INFINITY;
            break;
        }
    }
    k = 0;
    for (q, out) in d.iter_mut().enumerate().take(n) {
        while z[k + 1] < q as f64 {
            k += 1;
        }
        let p = v[k];
        let dq = q as f64 - p as f64;
        *out = dq * dq + f[p];
    }
}

/// `S(M, A)` for one mask, given its distance transform.
pub fn similarity_with(dist: &[f32], area: usize, map: &Map, variant: SimilarityVariant) -> f32 {
    if area == 0 {
        return 0.0;
    }
    let scale = match variant {
        SimilarityVariant::Paper => 1.0,
        SimilarityVariant::Normalized => {
            let max = dist
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0f32, f32::max);
            if max > 0.0 { 1.0 / max } else { 0.0 }
        }
    };
    let sum: f64 = dist
        .iter()
        .zip(&map.data)
        .filter(|(d, _)| d.is_finite() && **d > 0.0)
        .map(|(&d, &a)| (d * scale * a) as f64)
        .sum();
    (sum / area as f64) as f32
}

pub fn similarity(mask: &Mask, map: &Map, variant: SimilarityVariant) -> f32 {
    similarity_with(&distance_transform(mask), mask.area(), map, variant)
}

/// Index of the mask with the highest score (first on ties); None when there are no masks.
pub fn best_mask(scores: &[f32]) -> Option<usize> {
    scores
        .iter()
        .enumerate()
        .fold(None, |best: Option<(usize, f32)>, (i, &s)| match best {
            Some((_, b)) if b >= s => best,
            _ => Some((i, s)),
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(w: usize, h: usize, bits: &[u8]) -> Mask {
        Mask {
            width: w,
            height: h,
            data: bits.iter().map(|&b| b == 1).collect(),
        }
    }

    #[test]
    fn square_centre_is_two_from_outside() {
        let mut bits = vec![0u8; 49];
        for y in 2..5 {
            for x in 2..5 {
                bits[y * 7 + x] = 1;
            }
        }
        let d = distance_transform(&mask(7, 7, &bits));
        assert_eq!(d[3 * 7 + 3], 2.0);
        assert_eq!(d[2 * 7 + 2], 1.0);
        assert_eq!(d[0], 0.0);
    }

    #[test]
    fn best_mask_takes_first_maximum() {
        assert_eq!(best_mask(&[0.1, 0.5, 0.5, 0.2]), Some(1));
        assert_eq!(best_mask(&[]), None);
    }
}
