//! Two evaluations of the same dataset compared image by image (`tamperscope compare-evals`).
//!
//! Why paired: two models' per-image pixel AUCs move together (an easy splice is easy for both), so the
//! standard error of their per-image difference is much smaller than that of either mean. Differences
//! that two separate means cannot tell apart from noise can be, or be shown not to be, real.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::metrics::auc;
use crate::error::{EngineError, Result};
use crate::outputs::eval::{EvalReport, ImageRecord, standard_error};

/// One map scored by both evaluations on the same images.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairedPixel {
    pub map: String,
    /// Images with a pixel AUC in both evaluations.
    pub images: usize,
    pub auc_a: f64,
    pub auc_b: f64,
    /// Mean of the per-image differences, B minus A.
    pub diff: f64,
    /// Standard error of `diff` (None below two images).
    pub diff_se: Option<f64>,
    /// Images where B's AUC is higher / lower than A's.
    pub b_higher: usize,
    pub b_lower: usize,
    /// The same pairing for the per-image F1@0.5: mean difference B minus A and its standard error,
    /// over the images both evaluations kept an F1 for (None when either was written without them).
    #[serde(default)]
    pub f1_diff: Option<f64>,
    #[serde(default)]
    pub f1_diff_se: Option<f64>,
}

/// Image-level AUC of both on the images both analysed, with a paired bootstrap interval of B - A.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairedImageLevel {
    pub images: usize,
    pub auc_a: f64,
    pub auc_b: f64,
    pub diff: f64,
    /// 2.5 % and 97.5 % percentiles of B - A over `resamples` bootstrap resamples of the images.
    pub ci95: (f64, f64),
    pub resamples: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub schema: String,
    pub dataset: String,
    pub models_a: Vec<(String, String)>,
    pub models_b: Vec<(String, String)>,
    pub image_level: Option<PairedImageLevel>,
    pub pixel_level: Vec<PairedPixel>,
}

pub const BOOTSTRAP_RESAMPLES: usize = 2000;
pub const BOOTSTRAP_SEED: u64 = 0x7a3d_5c01;

/// Compares B against A. Both must have per-image records of the same dataset.
pub fn compare(a: &EvalReport, b: &EvalReport) -> Result<Comparison> {
    for (name, r) in [("A", a), ("B", b)] {
        if r.per_image.is_empty() {
            return Err(EngineError::NotComparable(format!(
                "evaluation {name} has no per-image records (it was written before `eval` kept them); run `tamperscope eval` again"
            )));
        }
    }
    let by_image_b: BTreeMap<&str, &ImageRecord> =
        b.per_image.iter().map(|r| (r.image.as_str(), r)).collect();
    let pairs: Vec<(&ImageRecord, &ImageRecord)> = a
        .per_image
        .iter()
        .filter_map(|ra| by_image_b.get(ra.image.as_str()).map(|rb| (ra, *rb)))
        .collect();
    if pairs.is_empty() {
        return Err(EngineError::NotComparable(format!(
            "no image is in both evaluations ({} and {}): they are of different datasets",
            a.dataset, b.dataset
        )));
    }
    if let Some((ra, rb)) = pairs
        .iter()
        .find(|(ra, rb)| ra.manipulated != rb.manipulated)
    {
        return Err(EngineError::NotComparable(format!(
            "{} is labelled {} in A and {} in B: the evaluations used different labels",
            ra.image,
            label(ra.manipulated),
            label(rb.manipulated)
        )));
    }

    let maps: Vec<&String> = pairs
        .iter()
        .flat_map(|(ra, _)| ra.pixel_auc.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let pixel_level = maps
        .into_iter()
        .filter_map(|map| paired_pixel(map, &pairs))
        .collect();

    Ok(Comparison {
        schema: "tamperscope.compare-evals/1".into(),
        dataset: a.dataset.clone(),
        models_a: a.models.clone(),
        models_b: b.models.clone(),
        image_level: paired_image_level(&pairs),
        pixel_level,
    })
}

fn label(manipulated: bool) -> &'static str {
    if manipulated {
        "manipulated"
    } else {
        "authentic"
    }
}

fn paired_pixel(map: &str, pairs: &[(&ImageRecord, &ImageRecord)]) -> Option<PairedPixel> {
    let both: Vec<(f64, f64)> = pairs
        .iter()
        .filter_map(|(ra, rb)| Some((*ra.pixel_auc.get(map)?, *rb.pixel_auc.get(map)?)))
        .collect();
    if both.is_empty() {
        return None;
    }
    let n = both.len() as f64;
    let diffs: Vec<f64> = both.iter().map(|(x, y)| y - x).collect();
    let f1_diffs: Vec<f64> = pairs
        .iter()
        .filter_map(|(ra, rb)| Some(rb.pixel_f1.get(map)? - ra.pixel_f1.get(map)?))
        .collect();
    Some(PairedPixel {
        map: map.to_string(),
        images: both.len(),
        auc_a: both.iter().map(|p| p.0).sum::<f64>() / n,
        auc_b: both.iter().map(|p| p.1).sum::<f64>() / n,
        diff: diffs.iter().sum::<f64>() / n,
        diff_se: standard_error(&diffs),
        b_higher: diffs.iter().filter(|&&d| d > 0.0).count(),
        b_lower: diffs.iter().filter(|&&d| d < 0.0).count(),
        f1_diff: (!f1_diffs.is_empty())
            .then(|| f1_diffs.iter().sum::<f64>() / f1_diffs.len() as f64),
        f1_diff_se: standard_error(&f1_diffs),
    })
}

fn paired_image_level(pairs: &[(&ImageRecord, &ImageRecord)]) -> Option<PairedImageLevel> {
    let labels: Vec<bool> = pairs.iter().map(|(ra, _)| ra.manipulated).collect();
    let pa: Vec<f32> = pairs.iter().map(|(ra, _)| ra.probability).collect();
    let pb: Vec<f32> = pairs.iter().map(|(_, rb)| rb.probability).collect();
    let (auc_a, auc_b) = (auc(&pa, &labels)?, auc(&pb, &labels)?);
    let mut rng = crate::engine::rng::SplitMix64(BOOTSTRAP_SEED);
    let n = pairs.len();
    let mut diffs = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    let (mut sa, mut sb, mut sl) = (vec![0f32; n], vec![0f32; n], vec![false; n]);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for k in 0..n {
            let i = rng.below_mod(n);
            (sa[k], sb[k], sl[k]) = (pa[i], pb[i], labels[i]);
        }
        // a resample with one class only has no AUC; it is drawn again in effect by being skipped
        if let (Some(x), Some(y)) = (auc(&sa, &sl), auc(&sb, &sl)) {
            diffs.push(y - x);
        }
    }
    diffs.sort_by(f64::total_cmp);
    let pick = |q: f64| diffs[((diffs.len() - 1) as f64 * q).round() as usize];
    Some(PairedImageLevel {
        images: n,
        auc_a,
        auc_b,
        diff: auc_b - auc_a,
        ci95: if diffs.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (pick(0.025), pick(0.975))
        },
        resamples: diffs.len(),
        seed: BOOTSTRAP_SEED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(image: &str, manipulated: bool, probability: f32, fused: Option<f64>) -> ImageRecord {
        ImageRecord {
            image: image.into(),
            manipulated,
            kind: if manipulated { "splice" } else { "authentic" }.into(),
            probability,
            pixel_auc: fused
                .map(|a| [("fused".to_string(), a)].into())
                .unwrap_or_default(),
            // a stand-in F1 that moves with the AUC, so the pairing of F1 is checked too
            pixel_f1: fused
                .map(|a| [("fused".to_string(), a / 2.0)].into())
                .unwrap_or_default(),
            scores: Default::default(),
        }
    }

    fn report(per_image: Vec<ImageRecord>) -> EvalReport {
        serde_json::from_value(serde_json::json!({
            "schema": "tamperscope.eval/1", "dataset": "d", "images_listed": per_image.len(),
            "images_analysed": per_image.len(), "failures": [],
            "image_level": {"auc": null, "accuracy": 0.0, "f1": 0.0, "images": 0, "variants": {}, "by_kind": {}},
            "pixel_level": {}, "pixel_level_by_kind": {}, "classifier_status": "trained", "models": [],
            "params": crate::engine::pipeline::AnalysisParams::default(), "tool": "test", "seconds": 0.0,
            "per_image": per_image,
        }))
        .expect("a valid report")
    }

    #[test]
    fn paired_difference_of_the_pixel_aucs() {
        let a = report(vec![
            record("m1.jpg", true, 0.9, Some(0.60)),
            record("m2.jpg", true, 0.8, Some(0.70)),
            record("m3.jpg", true, 0.4, Some(0.50)),
            record("a1.jpg", false, 0.2, None),
        ]);
        let b = report(vec![
            record("a1.jpg", false, 0.1, None),
            record("m3.jpg", true, 0.7, Some(0.55)),
            record("m1.jpg", true, 0.9, Some(0.70)),
            record("m2.jpg", true, 0.8, Some(0.70)),
        ]);
        let c = compare(&a, &b).expect("same dataset");
        let p = &c.pixel_level[0];
        assert_eq!((p.map.as_str(), p.images), ("fused", 3));
        // differences 0.10, 0.00, 0.05: mean 0.05, sd 0.05, se 0.05 / sqrt 3
        assert!((p.diff - 0.05).abs() < 1e-12);
        assert!((p.diff_se.expect("three images") - 0.05 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!((p.b_higher, p.b_lower), (2, 0));
        assert!((p.auc_b - p.auc_a - p.diff).abs() < 1e-12);
        // F1 pairs the same way (the records' F1 is half their AUC)
        assert!((p.f1_diff.expect("F1 kept") - 0.025).abs() < 1e-12);
        assert!((p.f1_diff_se.expect("three images") - 0.025 / 3f64.sqrt()).abs() < 1e-12);
        let i = c.image_level.expect("both classes");
        assert_eq!(i.images, 4);
        assert_eq!((i.auc_a, i.auc_b), (1.0, 1.0));
        assert_eq!(i.ci95, (0.0, 0.0));
    }

    #[test]
    fn bootstrap_interval_covers_the_difference_and_is_reproducible() {
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        for i in 0..60 {
            let manipulated = i % 2 == 0;
            let noise = ((i * 37) % 11) as f32 / 11.0;
            let y = if manipulated { 0.6 } else { 0.4 };
            ra.push(record(
                &format!("{i}.jpg"),
                manipulated,
                0.5 * y + 0.5 * noise,
                None,
            ));
            rb.push(record(
                &format!("{i}.jpg"),
                manipulated,
                0.8 * y + 0.2 * noise,
                None,
            ));
        }
        let (a, b) = (report(ra), report(rb));
        let first = compare(&a, &b).expect("comparable");
        let i = first.image_level.clone().expect("both classes");
        assert!(i.diff > 0.0);
        assert!(i.ci95.0 <= i.diff && i.diff <= i.ci95.1, "{i:?}");
        assert_eq!(i.resamples, BOOTSTRAP_RESAMPLES);
        assert_eq!(compare(&a, &b).expect("comparable"), first);
    }

    #[test]
    fn refuses_what_cannot_be_compared() {
        let a = report(vec![record("m1.jpg", true, 0.9, Some(0.6))]);
        let old = report(vec![]);
        let msg = compare(&a, &old).expect_err("no records").to_string();
        assert!(
            msg.contains("evaluation B has no per-image records"),
            "{msg}"
        );
        let other = report(vec![record("x.jpg", true, 0.9, Some(0.6))]);
        let msg = compare(&a, &other).expect_err("disjoint").to_string();
        assert!(msg.contains("no image is in both"), "{msg}");
        let relabelled = report(vec![record("m1.jpg", false, 0.9, None)]);
        let msg = compare(&a, &relabelled).expect_err("labels").to_string();
        assert!(
            msg.contains("labelled manipulated in A and authentic in B"),
            "{msg}"
        );
    }
}
