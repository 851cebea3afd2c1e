//! Evaluation measures (METHOD.md section 7).

/// Area under the ROC curve as the Mann-Whitney statistic, ties counting one half.
/// None when one class is absent.
pub fn auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len());
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks over tied groups (1-based).
    let mut rank_sum_pos = 0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        let pos_in_group = order[i..=j].iter().filter(|&&k| labels[k]).count();
        rank_sum_pos += avg_rank * pos_in_group as f64;
        i = j + 1;
    }
    let p = positives as f64;
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Confusion counts at a fixed threshold (score >= threshold is positive).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub fn_: u64,
}

impl Counts {
    pub fn at(scores: &[f32], labels: &[bool], threshold: f32) -> Counts {
        let mut c = Counts::default();
        for (&s, &l) in scores.iter().zip(labels) {
            match (s >= threshold, l) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }

    /// F1; 0 when there is no true positive.
    pub fn f1(&self) -> f64 {
        if self.tp == 0 {
            return 0.0;
        }
        2.0 * self.tp as f64 / (2 * self.tp + self.fp + self.fn_) as f64
    }

    pub fn accuracy(&self) -> f64 {
        let n = self.tp + self.fp + self.tn + self.fn_;
        if n == 0 {
            0.0
        } else {
            (self.tp + self.tn) as f64 / n as f64
        }
    }
}

pub fn f1_at(scores: &[f32], labels: &[bool], threshold: f32) -> f64 {
    Counts::at(scores, labels, threshold).f1()
}

/// Centred Gaussian prior that ignores the image (METHOD.md section 7 baseline): sigma is a
/// quarter of each side, peak 1.
pub fn centred_gaussian(width: usize, height: usize) -> crate::engine::raster::Map {
    let (cx, cy) = ((width as f32 - 1.0) / 2.0, (height as f32 - 1.0) / 2.0);
    let (sx, sy) = (width as f32 / 4.0, height as f32 / 4.0);
    let data = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| {
            let dx = (x as f32 - cx) / sx;
            let dy = (y as f32 - cy) / sy;
            (-(dx * dx + dy * dy) / 2.0).exp()
        })
        .collect();
    crate::engine::raster::Map::new(width, height, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_known_cases() {
        assert_eq!(
            auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auc(&[0.9, 0.1], &[false, true]), Some(0.0));
        assert_eq!(auc(&[0.3], &[true]), None);
    }

    #[test]
    fn f1_counts() {
        let c = Counts::at(&[0.9, 0.6, 0.4, 0.1], &[true, false, true, false], 0.5);
        assert_eq!(
            c,
            Counts {
                tp: 1,
                fp: 1,
                tn: 1,
                fn_: 1
            }
        );
        assert!((c.f1() - 0.5).abs() < 1e-12);
    }
}
