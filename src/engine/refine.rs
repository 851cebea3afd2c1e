//! Bayesian refinement of the fused map with the evidence mask (METHOD.md section 6, eq. 7).

use serde::{Deserialize, Serialize};

use crate::engine::raster::{Map, Mask};

pub const REFINE_EPS: f64 = 1e-6;

/// The likelihoods the refinement used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Likelihoods {
    /// P(M = 1 | manipulated)
    pub r1: f64,
    /// P(M = 1 | authentic)
    pub r0: f64,
}

/// `H(x) = A r / (A r + (1 - A) r')` with r, r' the mask likelihoods of section 6.
pub fn refine(prior: &Map, mask: &Mask) -> (Map, Likelihoods) {
    assert_eq!(
        prior.data.len(),
        mask.data.len(),
        "prior and mask sizes differ"
    );
    let (mut sum_a, mut sum_am, mut sum_na, mut sum_nam) = (0f64, 0f64, 0f64, 0f64);
    for (&a, &m) in prior.data.iter().zip(&mask.data) {
        let a = a as f64;
        sum_a += a;
        sum_na += 1.0 - a;
        if m {
            sum_am += a;
            sum_nam += 1.0 - a;
        }
    }
    let clamp = |v: f64| v.clamp(REFINE_EPS, 1.0 - REFINE_EPS);
    let r1 = clamp(if sum_a > 0.0 { sum_am / sum_a } else { 0.0 });
    let r0 = clamp(if sum_na > 0.0 { sum_nam / sum_na } else { 0.0 });
    let data = prior
        .data
        .iter()
        .zip(&mask.data)
        .map(|(&a, &m)| {
            let a = a as f64;
            let (r, rp) = if m { (r1, r0) } else { (1.0 - r1, 1.0 - r0) };
            let num = a * r;
            let den = num + (1.0 - a) * rp;
            if den > 0.0 { (num / den) as f32 } else { 0.0 }
        })
        .collect();
    (
        Map::new(prior.width, prior.height, data),
        Likelihoods { r1, r0 },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreeing_mask_raises_inside_and_lowers_outside() {
        let prior = Map::new(4, 1, vec![0.8, 0.7, 0.2, 0.1]);
        let mask = Mask {
            width: 4,
            height: 1,
            data: vec![true, true, false, false],
        };
        let (h, l) = refine(&prior, &mask);
        assert!(l.r1 > l.r0);
        assert!(h.data[0] > 0.8 && h.data[1] > 0.7);
        assert!(h.data[2] < 0.2 && h.data[3] < 0.1);
    }

    #[test]
    fn certain_prior_stays_certain() {
        let prior = Map::new(2, 1, vec![1.0, 0.0]);
        let mask = Mask {
            width: 2,
            height: 1,
            data: vec![false, true],
        };
        let (h, _) = refine(&prior, &mask);
        assert_eq!(h.data, vec![1.0, 0.0]);
    }
}
