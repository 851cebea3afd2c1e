//! Scoring the method on a labelled dataset (METHOD.md section 7).
//! `DIR/labels.csv` has columns image,label,kind[,mask]; paths are relative to `DIR`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::metrics::{Counts, auc, centred_gaussian};
use crate::engine::pipeline::Analysis;
use crate::engine::raster::{Map, resize_nearest};
use crate::engine::similarity::SimilarityVariant;
use crate::error::{EngineError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    pub image: PathBuf,
    pub manipulated: bool,
    pub kind: String,
    pub mask: Option<PathBuf>,
}

pub fn read_labels(dir: &Path) -> Result<Vec<LabelRow>> {
    let path = dir.join("labels.csv");
    let text = std::fs::read_to_string(&path).map_err(|source| EngineError::Io {
        path: path.clone(),
        source,
    })?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (ci, cl) = match (col("image"), col("label")) {
        (Some(i), Some(l)) => (i, l),
        _ => {
            return Err(EngineError::Other(format!(
                "{}: needs columns image,label[,kind,mask]",
                path.display()
            )));
        }
    };
    let (ck, cm) = (col("kind"), col("mask"));
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad =
            || EngineError::Other(format!("{} line {}: malformed row", path.display(), n + 2));
        let manipulated = match *f.get(cl).ok_or_else(bad)? {
            "0" => false,
            "1" => true,
            _ => return Err(bad()),
        };
        rows.push(LabelRow {
            image: dir.join(f.get(ci).ok_or_else(bad)?),
            manipulated,
            kind: ck
                .and_then(|c| f.get(c))
                .map(|s| s.to_string())
                .unwrap_or_else(|| {
                    if manipulated {
                        "manipulated".into()
                    } else {
                        "authentic".into()
                    }
                }),
            mask: cm
                .and_then(|c| f.get(c))
                .filter(|s| !s.is_empty())
                .map(|s| dir.join(s)),
        });
    }
    Ok(rows)
}

/// Ground-truth mask at the working size (255 = manipulated; anything > 127 counts).
pub fn read_mask(path: &Path, width: usize, height: usize) -> Result<Vec<bool>> {
    let img = crate::engine::imageio::load_image(path)?;
    let (w, h) = (img.rgb.width() as usize, img.rgb.height() as usize);
    let bits: Vec<bool> = img
        .rgb
        .pixels()
        .map(|p| p.0[0] as u32 + p.0[1] as u32 + p.0[2] as u32 > 381)
        .collect();
    Ok(if (w, h) == (width, height) {
        bits
    } else {
        resize_nearest(&bits, w, h, width, height)
    })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PixelMetrics {
    /// Mean over images of the per-image AUC (images whose mask is empty or full are skipped).
    pub auc: Option<f64>,
    /// Mean over images of F1 at the fixed threshold 0.5.
    pub f1: Option<f64>,
    /// AUC over all pixels of all images together.
    pub auc_pooled: Option<f64>,
    /// Standard error of `auc` (sample standard deviation of the per-image AUCs over the square root of
    /// their count): the scale on which two maps' figures differ or not. Absent in files written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auc_se: Option<f64>,
    pub images: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageMetrics {
    pub auc: Option<f64>,
    pub accuracy: f64,
    pub f1: f64,
    pub images: usize,
}

/// Accumulates per-image scores and pixels per named map.
#[derive(Default)]
pub struct PixelAccumulator {
    aucs: Vec<f64>,
    f1s: Vec<f64>,
    /// Pooled pixels, quantised to 16 bits to keep memory flat: (score, label).
    pooled: Vec<(u16, bool)>,
    images: usize,
}

impl PixelAccumulator {
    /// Adds one image; returns its AUC (None when its mask is empty or full).
    pub fn add(&mut self, map: &Map, truth: &[bool]) -> Option<f64> {
        self.images += 1;
        let image_auc = auc(&map.data, truth);
        if let Some(a) = image_auc {
            self.aucs.push(a);
        }
        self.f1s.push(Counts::at(&map.data, truth, 0.5).f1());
        self.pooled.extend(
            map.data
                .iter()
                .zip(truth)
                .map(|(&v, &t)| ((v.clamp(0.0, 1.0) * 65535.0).round() as u16, t)),
        );
        image_auc
    }

    /// The pixel F1@0.5 of the image added last (None before the first).
    pub fn last_f1(&self) -> Option<f64> {
        self.f1s.last().copied()
    }

    pub fn finish(&self) -> PixelMetrics {
        let mean = |v: &[f64]| {
            if v.is_empty() {
                None
            } else {
                Some(v.iter().sum::<f64>() / v.len() as f64)
            }
        };
        PixelMetrics {
            auc: mean(&self.aucs),
            f1: mean(&self.f1s),
            auc_pooled: pooled_auc(&self.pooled),
            auc_se: standard_error(&self.aucs),
            images: self.images,
        }
    }
}

/// Sample standard deviation over the square root of the count; None below two values.
pub fn standard_error(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((var / n).sqrt())
}

/// AUC of quantised scores by counting (linear time, exact for the quantised values).
fn pooled_auc(pooled: &[(u16, bool)]) -> Option<f64> {
    let mut pos = vec![0u64; 65536];
    let mut neg = vec![0u64; 65536];
    for &(s, t) in pooled {
        if t {
            pos[s as usize] += 1
        } else {
            neg[s as usize] += 1
        }
    }
    let (p, n): (u64, u64) = (pos.iter().sum(), neg.iter().sum());
    if p == 0 || n == 0 {
        return None;
    }
    let mut neg_below = 0f64;
    let mut acc = 0f64;
    for s in 0..65536 {
        acc += pos[s] as f64 * (neg_below + neg[s] as f64 / 2.0);
        neg_below += neg[s] as f64;
    }
    Some(acc / (p as f64 * n as f64))
}

pub fn image_metrics(probs: &[f32], labels: &[bool]) -> ImageMetrics {
    let c = Counts::at(probs, labels, 0.5);
    ImageMetrics {
        auc: auc(probs, labels),
        accuracy: c.accuracy(),
        f1: c.f1(),
        images: probs.len(),
    }
}

/// The maps of one analysis that are scored, by name: the paper's configuration (fused, cam<i>,
/// refined:<segmenter>:<variant>, all with `A` as the prior), the compression-history maps
/// (adjpg, nadjpg, compression), the default prior and its refined maps
/// (prior, refined_dq:<segmenter>:<variant>), the copy-move map when the search ran (copymove),
/// and the two baselines. A compression map that is
/// absent (not a JPEG, no misaligned grid) is scored as a flat 0.5: no evidence either way.
pub fn maps_to_score(analysis: &Analysis) -> Vec<(String, Map)> {
    let (w, h) = (analysis.fused.width, analysis.fused.height);
    let mut out = vec![("fused".to_string(), analysis.fused.clone())];
    for v in &analysis.variants {
        out.push((format!("cam{}", v.info.variant), v.cam.clone()));
    }
    let flat = || Map::filled(w, h, 0.5);
    let c = &analysis.compression;
    out.push(("adjpg".into(), c.adjpg.clone().unwrap_or_else(flat)));
    out.push(("nadjpg".into(), c.na.clone().unwrap_or_else(flat)));
    out.push((
        "compression".into(),
        c.combined
            .clone()
            .or_else(|| c.adjpg.clone())
            .unwrap_or_else(flat),
    ));
    out.push(("prior".into(), analysis.prior.clone()));
    if let Some(cm) = &analysis.copy_move
        && (cm.map.width, cm.map.height) == (w, h)
    {
        out.push(("copymove".into(), cm.map.clone()));
    }
    for s in &analysis.segmenters {
        for variant in SimilarityVariant::ALL {
            for (key, prior) in [
                ("refined", &analysis.fused),
                ("refined_dq", &analysis.prior),
            ] {
                let mut r = s.clone();
                r.rescore(prior, variant, None);
                // No region: the refined map is the prior itself.
                let map = r.refined.unwrap_or_else(|| prior.clone());
                out.push((
                    format!("{key}:{}:{}", s.segmentation.segmenter, variant.name()),
                    map,
                ));
            }
        }
    }
    out.push(("baseline:ela".to_string(), analysis.ela_map.clone()));
    out.push(("baseline:centre".to_string(), centred_gaussian(w, h)));
    out
}

/// One analysed image's scores, kept so that two evaluations of the same dataset can be compared image by
/// image (`tamperscope compare-evals`): a paired difference is far less noisy than two separate means.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// The image's path as labels.csv gives it (relative to the dataset folder).
    pub image: String,
    pub manipulated: bool,
    pub kind: String,
    /// Mean probability of the variants.
    pub probability: f32,
    /// Per-image pixel AUC of each scored map (manipulated images whose mask has both classes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pixel_auc: BTreeMap<String, f64>,
    /// Per-image pixel F1 at threshold 0.5 of each scored map (every manipulated image with a mask);
    /// absent in evaluations written before it was kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pixel_f1: BTreeMap<String, f64>,
    /// Image-level scores besides the classifier's (keys as in `image_level.variants`:
    /// "compression", "copy-move", "verdict"); absent in evaluations written before they were kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, f32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub schema: String,
    pub dataset: String,
    /// How the masks mark a copy-move ("copy-only", "source-and-copy"); `None` when unstated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_convention: Option<String>,
    pub images_listed: usize,
    pub images_analysed: usize,
    pub failures: Vec<(String, String)>,
    pub image_level: ImageLevel,
    pub pixel_level: BTreeMap<String, PixelMetrics>,
    pub pixel_level_by_kind: BTreeMap<String, BTreeMap<String, PixelMetrics>>,
    pub classifier_status: String,
    pub models: Vec<(String, String)>,
    pub params: crate::engine::pipeline::AnalysisParams,
    pub tool: String,
    pub seconds: f64,
    /// Absent in files written before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_image: Vec<ImageRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageLevel {
    /// From the mean probability of the variants.
    pub auc: Option<f64>,
    pub accuracy: f64,
    pub f1: f64,
    pub images: usize,
    pub variants: BTreeMap<String, ImageMetrics>,
    pub by_kind: BTreeMap<String, ImageMetrics>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_error_is_the_sample_sd_over_root_n() {
        // sd of 0.5, 0.7, 0.9 is 0.2 (n - 1 in the denominator)
        let se = standard_error(&[0.5, 0.7, 0.9]).expect("three values");
        assert!((se - 0.2 / 3f64.sqrt()).abs() < 1e-12, "{se}");
        assert_eq!(standard_error(&[0.5]), None);
    }

    #[test]
    fn pixel_metrics_carry_the_standard_error_and_read_old_files() {
        let mut acc = PixelAccumulator::default();
        let truth = [true, true, false, false];
        for scores in [[0.9, 0.8, 0.1, 0.2], [0.4, 0.8, 0.6, 0.2]] {
            let map = Map::new(2, 2, scores.to_vec());
            acc.add(&map, &truth);
        }
        let m = acc.finish();
        // per-image AUCs 1.0 and 0.75
        assert_eq!(m.auc, Some(0.875));
        assert!((m.auc_se.expect("two images") - 0.125).abs() < 1e-12);
        let old: PixelMetrics =
            serde_json::from_str(r#"{"auc": 0.8, "f1": 0.4, "auc_pooled": 0.79, "images": 120}"#)
                .expect("a file written before auc_se");
        assert_eq!(old.auc_se, None);
    }
}
