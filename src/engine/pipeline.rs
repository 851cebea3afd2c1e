//! One image through the method, stage after stage. Each stage is a function a test (or the
//! app's worker) can call alone; [`Engine::analyze`] runs them in order with progress and
//! cancellation.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::engine::cam::{geometric_mean, grad_cam};
use crate::engine::classifier::{Classifier, VariantInfo};
use crate::engine::compression::{CompressionEvidence, CompressionParams};
use crate::engine::copymove::{CopyMove, CopyMoveParams};
use crate::engine::ela::{SignedEla, signed_ela};
use crate::engine::imageio::{ImageInfo, LoadedImage, load_image};
use crate::engine::raster::{AreaAccumulator, Map, row_ranges, threads, working_size};
use crate::engine::refine::{Likelihoods, refine};
use crate::engine::segment::felzenszwalb::{self, FelzenszwalbParams};
use crate::engine::segment::sam::{SamParams, SamSegmenter};
use crate::engine::segment::semantic::SemanticSegmenter;
use crate::engine::segment::{MaskRule, Segmentation};
use crate::engine::similarity::{SimilarityVariant, best_mask};
use crate::error::{EngineError, Result};
use crate::models::manifest::Role;
use crate::models::registry::Registry;
use crate::models::runtime::ProviderChoice;

/// Every parameter of an analysis; stored in each report so that it can be re-run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisParams {
    /// Classifier variants (manifest names); empty = every classifier in the manifest that is installed,
    /// trained models preferred over stand-ins.
    pub classifiers: Vec<String>,
    /// Segmenters: manifest names of segmentation models (semantic or SAM decoder), or "felzenszwalb";
    /// empty = all installed ones and felzenszwalb.
    pub segmenters: Vec<String>,
    /// Longest side of the working resolution at which maps and masks are computed.
    pub working_max_side: u32,
    pub mask_rule: MaskRule,
    pub similarity: SimilarityVariant,
    pub felzenszwalb: FelzenszwalbParams,
    /// Automatic mask generation of SAM segmenters; None = each decoder's manifest values.
    pub sam: Option<SamParams>,
    /// Box radius (working pixels) of the plain-ELA map.
    pub ela_box_radius: usize,
    pub provider: ProviderChoice,
    /// Threads per ONNX Runtime session (0 = ONNX Runtime's default).
    pub threads: usize,
    /// Compression-history evidence (METHOD.md section 9).
    pub compression: CompressionParams,
    /// The prior that the similarity and the refinement use (sections 5-6).
    pub prior: PriorRule,
    /// Copy-move (clone) detection (src/engine/copymove.rs); its map joins the prior (see
    /// [`PriorRule::LogOdds`]) and its score the verdict. `None`: not run.
    pub copy_move: Option<CopyMoveParams>,
    /// Whether the copy-move score joins the verdict ([`verdict_probability`]); false in reports
    /// written before it did (they re-run unchanged).
    #[serde(default)]
    pub copy_move_in_verdict: bool,
    /// Weight `w` of the classifier's mean probability in the verdict, in [0, 1]
    /// ([`AnalysisParams::verdict`]); 1 in reports written before it existed.
    #[serde(default = "one")]
    pub verdict_classifier_weight: f32,
}

/// Which map is the prior of the similarity `S` and the Bayesian refinement (METHOD.md sections
/// 5-6, 9).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum PriorRule {
    /// The paper's configuration: the fused CAM map `A` alone.
    Paper,
    /// `logit(P0) = cam_weight * logit(A) + dq_scale * L_dq + bias`, with `L_dq` the log-odds of
    /// the compression posterior (A-DJPG and NA-DJPG log-odds added, unclipped) and `bias` the
    /// prior log-odds that a pixel is manipulated (a flat region without evidence either way then
    /// leans authentic); then the copy-move map `C` (1 on a source or a copy, 0 elsewhere;
    /// src/engine/copymove.rs) joins as a noisy-OR, `P = 1 - (1 - P0) (1 - copy_move_strength C)`:
    /// a pixel the clone search marks is manipulated with probability at least
    /// `copy_move_strength`, whatever the other evidence says, and unmarked pixels keep `P0`.
    /// Where the file carries no compression evidence (not a JPEG, or no trace found) `P0` is `A`,
    /// as in the paper.
    LogOdds {
        cam_weight: f32,
        #[serde(default = "one")]
        dq_scale: f32,
        #[serde(default)]
        bias: f32,
        /// In [0, 1]; 0 in reports written before copy-move joined the prior (they re-run
        /// unchanged).
        #[serde(default)]
        copy_move_strength: f32,
    },
}

/// Serde default of weights that are 1 in records written before they existed.
pub(crate) fn one() -> f32 {
    1.0
}

impl Default for PriorRule {
    fn default() -> Self {
        PriorRule::LogOdds {
            cam_weight: DEFAULT_CAM_WEIGHT,
            dq_scale: DEFAULT_DQ_SCALE,
            bias: DEFAULT_PRIOR_BIAS,
            copy_move_strength: DEFAULT_COPY_MOVE_STRENGTH,
        }
    }
}

/// Weight of `logit(A)` in the default prior, chosen on CASIA v1 val (docs/compression.md): 0.25 with
/// the first classifier; 0.1 since the LSE-head classifier (issue 19), whose peaky CAMs pulled the prior
/// down at 0.25 (F1@0.5 of the default H 0.374 there, 0.417 at 0.1; the previous classifier scored the
/// same at both, training/results/eval_casia_val_*prior_grid.json). A development figure.
pub const DEFAULT_CAM_WEIGHT: f32 = 0.1;
/// Scale of the compression log-odds in the default prior (docs/compression.md).
pub const DEFAULT_DQ_SCALE: f32 = 1.0;
/// Prior log-odds of "manipulated" in the default prior (docs/compression.md).
pub const DEFAULT_PRIOR_BIAS: f32 = 0.0;
/// Least prior probability where the copy-move map marks a source or a copy (the noisy-OR of
/// [`PriorRule::LogOdds`]). Chosen on generated copy-moves (tests/copymove.rs `write_eval_set`,
/// seed 1, photo offset 3): the default H's pixel AUC and F1@0.5 plateau from 0.8 to 0.95
/// (docs/copy-move.md); checked on CASIA v1 val.
pub const DEFAULT_COPY_MOVE_STRENGTH: f32 = 0.9;

impl PriorRule {
    pub fn name(self) -> String {
        match self {
            PriorRule::Paper => "paper (A alone)".into(),
            PriorRule::LogOdds {
                cam_weight,
                dq_scale,
                bias,
                copy_move_strength,
            } => {
                let mut s = format!("log-odds: {cam_weight} logit(A) + {dq_scale} L_dq + ({bias})");
                if copy_move_strength != 0.0 {
                    s.push_str(&format!(", noisy-OR with {copy_move_strength} x copy-move"));
                }
                s
            }
        }
    }

    /// The prior map from `A`, the compression log-odds and the copy-move map (all the same
    /// size as `A`; a map of another size is ignored), per the rule.
    pub fn combine(
        self,
        fused: &Map,
        compression_log_odds: Option<&Map>,
        copy_move: Option<&Map>,
    ) -> Map {
        let PriorRule::LogOdds {
            cam_weight,
            dq_scale,
            bias,
            copy_move_strength,
        } = self
        else {
            return fused.clone();
        };
        let same = |m: &&Map| (m.width, m.height) == (fused.width, fused.height);
        let dq = compression_log_odds.filter(same);
        let cm = copy_move.filter(same).filter(|_| copy_move_strength > 0.0);
        if dq.is_none() && cm.is_none() {
            return fused.clone();
        }
        let logit = |p: f32| {
            let p = p.clamp(1e-4, 1.0 - 1e-4);
            (p / (1.0 - p)).ln()
        };
        let gamma = copy_move_strength.clamp(0.0, 1.0);
        let data = fused
            .data
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let p0 = match dq {
                    Some(dq) => {
                        let l = cam_weight * logit(a) + dq_scale * dq.data[i] + bias;
                        1.0 / (1.0 + (-l).exp())
                    }
                    None => a,
                };
                // Unmarked pixels keep P0 exactly.
                match cm.map(|cm| cm.data[i].clamp(0.0, 1.0)) {
                    Some(c) if c > 0.0 => 1.0 - (1.0 - p0) * (1.0 - gamma * c),
                    _ => p0,
                }
            })
            .collect();
        Map::new(fused.width, fused.height, data)
    }
}

/// Compression-history maps of one image at the working resolution (analysed orientation).
#[derive(Debug, Clone, Default)]
pub struct CompressionMaps {
    pub evidence: Option<CompressionEvidence>,
    /// Why there is no evidence (not a JPEG, unreadable coefficients), in words.
    pub absent: Option<String>,
    /// A-DJPG `P(tampered)`; present whenever the coefficients were read.
    pub adjpg: Option<Map>,
    /// NA-DJPG `P(tampered)`; present when a shifted grid was found.
    pub na: Option<Map>,
    /// The two combined; present when at least one frequency or grid carries a trace.
    pub combined: Option<Map>,
    /// `combined` as log-odds of "tampered" (unclipped: keeps the ranking where the
    /// probabilities saturate); the prior is built from it.
    pub combined_log_odds: Option<Map>,
    /// Share of the combined map (0-1) that leaned tampered when the weak-trace rule of
    /// [`reference_to_majority`] applied; `None` when it did not.
    pub weak_trace_share: Option<f64>,
}

impl CompressionMaps {
    /// The prior of S and H under `rule`, from `A`, this image's compression log-odds and the
    /// copy-move map (`A` itself when there are neither, or when their size differs from `A`'s).
    pub fn prior(&self, rule: PriorRule, fused: &Map, copy_move: Option<&Map>) -> Map {
        rule.combine(fused, self.combined_log_odds.as_ref(), copy_move)
    }

    /// The findings in words: the evidence's own ([`CompressionEvidence::summary`]), and a line
    /// when the combined map kept only its hardest-leaning part (weak trace).
    pub fn summary(&self) -> Vec<String> {
        let mut lines = self
            .evidence
            .as_ref()
            .map(|e| e.summary())
            .unwrap_or_default();
        if let Some(share) = self.weak_trace_share {
            lines.push(format!(
                "Weak trace: block by block, {:.0} % of the image lacks the earlier compression, too much \
                 to be the edit (strong textures often do this); the combined map keeps only the part \
                 that lacks it most. Read it as a ranking, not as the edit's outline.",
                100.0 * share
            ));
        }
        lines
    }

    /// Whether any map carries evidence (a trace was found).
    pub fn has_trace(&self) -> bool {
        self.evidence
            .as_ref()
            .is_some_and(|e| e.adjpg.used() > 0 || e.na.is_some())
    }

    /// Image-level compression score in [0, 1]: the 99th percentile of the combined map where a
    /// trace was found, else 0 (no evidence either way).
    pub fn image_score(&self) -> f32 {
        match (&self.combined, self.has_trace()) {
            (Some(m), true) => percentile(&m.data, 0.99),
            _ => 0.0,
        }
    }
}

fn percentile(v: &[f32], q: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    let k = ((s.len() - 1) as f64 * q).round() as usize;
    let (_, x, _) = s.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    *x
}

/// Verdict probability: the (weighted) classifier probability `p`, the compression image score `s`
/// and the copy-move score `c` (all in [0, 1]) combined as a noisy-OR, `1 - (1 - p)(1 - s)(1 - c)`:
/// each detector can raise the verdict, the other two lower nothing. With no compression evidence
/// and no clone (`s = c = 0`) it is `p`. The copy-move term: docs/copy-move.md; the classifier's
/// weight ([`AnalysisParams::verdict`]): docs/verdict.md.
pub fn verdict_probability(classifier_p: f32, compression_score: f32, copy_move_score: f32) -> f32 {
    1.0 - (1.0 - classifier_p) * (1.0 - compression_score) * (1.0 - copy_move_score)
}

/// Weight of the classifier in the default verdict: at 0.5 the classifier cannot call an image
/// manipulated by itself (`w p <= 0.5`) but strengthens the compression and copy-move evidence.
/// Chosen on table-neutral and generated data, not on CASIA (whose image labels follow the files'
/// quality, which is what the classifier reads): over the `twins_val` and `photos` selection sets
/// and the generated copy-moves of seed 1, w = 0, 0.25, 0.5, 0.75, 1 give a mean image AUC of
/// 0.765 / 0.794 / 0.798 / 0.803 / 0.801 and a mean false-alarm rate at 0.5 of 0.30 / 0.30 / 0.32 /
/// 0.59 / 0.72; 0.5 is the best AUC whose false-alarm rate stays within 0.05 of the lowest
/// (docs/verdict.md).
pub const DEFAULT_VERDICT_CLASSIFIER_WEIGHT: f32 = 0.5;

impl AnalysisParams {
    /// The verdict probability of one image: [`verdict_probability`] of the classifier's mean
    /// probability times `verdict_classifier_weight`, the compression score and (when
    /// `copy_move_in_verdict`) the copy-move score. All in [0, 1].
    pub fn verdict(
        &self,
        classifier_p: f32,
        compression_score: f32,
        copy_move: Option<&CopyMove>,
    ) -> f32 {
        verdict_probability(
            self.verdict_classifier_weight.clamp(0.0, 1.0) * classifier_p,
            compression_score,
            self.verdict_copy_move_score(copy_move),
        )
    }

    /// The copy-move score that joins the verdict: `c` of [`verdict_probability`] when
    /// `copy_move_in_verdict`, else 0.
    pub fn verdict_copy_move_score(&self, copy_move: Option<&CopyMove>) -> f32 {
        match copy_move {
            Some(c) if self.copy_move_in_verdict => c.score.clamp(0.0, 1.0),
            _ => 0.0,
        }
    }
}

/// Map in stored orientation -> analysed orientation (EXIF tag 1-8, as `image` applies it).
pub fn orient_map(map: &Map, exif_orientation: u8) -> Map {
    use image::metadata::Orientation;
    let Some(o) = Orientation::from_exif(exif_orientation) else {
        return map.clone();
    };
    let Some(buf) = image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_raw(
        map.width as u32,
        map.height as u32,
        map.data.clone(),
    ) else {
        return map.clone();
    };
    let mut img =
        image::DynamicImage::from(image::ImageBuffer::<image::Rgb<f32>, Vec<f32>>::from_fn(
            buf.width(),
            buf.height(),
            |x, y| {
                let v = buf.get_pixel(x, y).0[0];
                image::Rgb([v, v, v])
            },
        ));
    img.apply_orientation(o);
    let rgb = img.to_rgb32f();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Map::new(w, h, rgb.pixels().map(|p| p.0[0]).collect())
}

/// Re-references compression log-odds so that the image's median pixel is at most neutral:
/// `L' = L - max(median(L), 0)`. The manipulated region is a minority of the image (the rule
/// that also orients NA-DJPG, METHOD.md section 9), so when more than half the pixels lean
/// "tampered" the per-block likelihood ratios are miscalibrated for this file (textured
/// backgrounds whose double-compression trace is weak), not the image mostly pasted. Maps whose
/// median leans authentic are unchanged. Chosen on CASIA v1 val (development figure,
/// docs/compression.md): A-DJPG F1@0.5 +0.02; no change on the generated double-JPEG set.
///
/// `weak_quantile` (`q`, [`CompressionParams::weak_trace_quantile`]; 0 = off): when at least a
/// share `q` of the pixels leans tampered, `L' = L - quantile(L, q)` instead, so that only the
/// `1 - q` that lean hardest stay flagged. There the block evidence is too weak to draw a
/// boundary by its sign (the trace is in the histograms, but almost every block leans "no
/// trace"); its ranking still points at the region (docs/compression.md).
pub fn reference_to_majority(mut log_odds: Map, weak_quantile: f64) -> Map {
    let shift = if weak_trace_applies(&log_odds, weak_quantile).is_some() {
        percentile(&log_odds.data, weak_quantile)
    } else {
        percentile(&log_odds.data, 0.5)
    };
    if shift > 0.0 {
        for v in &mut log_odds.data {
            *v -= shift;
        }
    }
    log_odds
}

/// The share of `log_odds` above 0 when it reaches `weak_quantile` (> 0), i.e. when
/// [`reference_to_majority`] references the map to that quantile; else `None`.
pub fn weak_trace_applies(log_odds: &Map, weak_quantile: f64) -> Option<f64> {
    let leaning = log_odds.data.iter().filter(|&&v| v > 0.0).count() as f64
        / log_odds.data.len().max(1) as f64;
    (weak_quantile > 0.0 && leaning >= weak_quantile).then_some(leaning)
}

/// `P(tampered)` of the log-odds map `l` averaged within Felzenszwalb superpixels of `working`
/// (same size), returned as log-odds (probabilities clamped to [1e-6, 1 - 1e-6]): the 8x8-block
/// evidence then follows image edges. `k` is the superpixels' scale.
pub fn superpixel_mean(l: &Map, working: &RgbImage, k: f32) -> Map {
    if (working.width() as usize, working.height() as usize) != (l.width, l.height) || k <= 0.0 {
        return l.clone();
    }
    let (labels, count) = crate::engine::segment::felzenszwalb::superpixels(
        working,
        k,
        crate::engine::compression::SUPERPIXEL_MIN_PIXELS,
    );
    let sigmoid = |v: f32| 1.0 / (1.0 + (-(v as f64)).exp());
    let mut sum = vec![0f64; count];
    let mut n = vec![0u32; count];
    for (&lab, &v) in labels.iter().zip(&l.data) {
        sum[lab as usize] += sigmoid(v);
        n[lab as usize] += 1;
    }
    let logit = |p: f64| {
        let p = p.clamp(1e-6, 1.0 - 1e-6);
        (p / (1.0 - p)).ln() as f32
    };
    let mean: Vec<f32> = sum
        .iter()
        .zip(&n)
        .map(|(&s, &c)| logit(s / c.max(1) as f64))
        .collect();
    Map::new(
        l.width,
        l.height,
        labels.iter().map(|&lab| mean[lab as usize]).collect(),
    )
}

/// Copy-move evidence of a prepared image: the detector runs on the working image (its map is at
/// the working resolution), and the regions' boxes and offsets are expressed in pixels of the
/// oriented file.
pub fn copy_move_evidence(prepared: &Prepared, params: &CopyMoveParams) -> CopyMove {
    copy_move_on_working(&prepared.working, prepared.image.info.width, params)
}

/// [`copy_move_evidence`] from the working image and the width (px) of the oriented file it was
/// downscaled from, for callers without a [`Prepared`] (the app's worker without a classifier).
pub fn copy_move_on_working(
    working: &RgbImage,
    file_width: u32,
    params: &CopyMoveParams,
) -> CopyMove {
    let cm = crate::engine::copymove::detect(working, params);
    let ww = working.width().max(1);
    cm.scaled(file_width as f32 / ww as f32)
}

/// Compression-history evidence of a loaded image, at the size of `working` (the working image,
/// whose edges the combined map follows when `params.superpixel_k > 0`).
pub fn compression_maps(
    image: &LoadedImage,
    params: &CompressionParams,
    working: &RgbImage,
) -> CompressionMaps {
    let (w, h) = (working.width() as usize, working.height() as usize);
    let Some(bytes) = &image.jpeg_bytes else {
        return CompressionMaps {
            absent: Some(format!(
                "the file is {}, not a JPEG: it has no JPEG compression history to read",
                image.info.format.to_uppercase()
            )),
            ..Default::default()
        };
    };
    let coefs = match crate::engine::jpeg::read_coefficients(bytes) {
        Ok(c) => c,
        Err(e) => {
            return CompressionMaps {
                absent: Some(e.to_string()),
                ..Default::default()
            };
        }
    };
    if coefs.precision != 8 {
        return CompressionMaps {
            absent: Some(format!(
                "the file is a {}-bit JPEG: the double-compression models (METHOD.md section 9) \
                 assume 8-bit samples, so its compression history is not read",
                coefs.precision
            )),
            ..Default::default()
        };
    }
    let ev = crate::engine::compression::analyze(&coefs, params);
    // Resample in the stored orientation to the working size (transposed for EXIF tags 5-8),
    // then orient the small map: orienting at native resolution cost gigabytes at 80 MP.
    let o = image.info.exif_orientation;
    let (sw, sh) = if (5..=8).contains(&o) { (h, w) } else { (w, h) };
    let to_working = |m: Map| orient_map(&m, o);
    let adjpg = to_working(ev.adjpg.map.to_pixels_resized(ev.width, ev.height, sw, sh));
    let na = ev
        .na
        .as_ref()
        .map(|n| to_working(n.map.to_pixels_resized(ev.width, ev.height, sw, sh)));
    let has_trace = ev.adjpg.used() > 0 || ev.na.is_some();
    let mut weak_trace_share = None;
    let combined_log_odds = has_trace.then(|| {
        let l = to_working(ev.combined_log_odds_resized(sw, sh));
        weak_trace_share = weak_trace_applies(&l, params.weak_trace_quantile);
        let l = reference_to_majority(l, params.weak_trace_quantile);
        superpixel_mean(&l, working, params.superpixel_k)
    });
    let combined = combined_log_odds.as_ref().map(|l| {
        Map::new(
            l.width,
            l.height,
            l.data.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect(),
        )
    });
    CompressionMaps {
        evidence: Some(ev),
        absent: None,
        adjpg: Some(adjpg),
        na,
        combined,
        combined_log_odds,
        weak_trace_share,
    }
}

impl Default for AnalysisParams {
    fn default() -> Self {
        Self {
            classifiers: Vec::new(),
            segmenters: Vec::new(),
            working_max_side: 512,
            mask_rule: MaskRule::default(),
            similarity: SimilarityVariant::default(),
            felzenszwalb: FelzenszwalbParams::default(),
            sam: None,
            ela_box_radius: 2,
            provider: ProviderChoice::Auto,
            threads: 0,
            compression: CompressionParams::default(),
            prior: PriorRule::default(),
            copy_move: Some(CopyMoveParams::default()),
            copy_move_in_verdict: true,
            verdict_classifier_weight: DEFAULT_VERDICT_CLASSIFIER_WEIGHT,
        }
    }
}

/// A segmenter ready to run.
pub enum SegmenterHandle {
    Felzenszwalb(FelzenszwalbParams),
    Semantic(Box<SemanticSegmenter>),
    /// Segment Anything: encoder + decoder, named by the decoder entry.
    Sam(Box<SamSegmenter>),
}

impl SegmenterHandle {
    pub fn name(&self) -> &str {
        match self {
            SegmenterHandle::Felzenszwalb(_) => felzenszwalb::NAME,
            SegmenterHandle::Semantic(s) => s.name(),
            SegmenterHandle::Sam(s) => &s.name,
        }
    }

    pub fn segment(&mut self, working_rgb: &RgbImage, rule: &MaskRule) -> Result<Segmentation> {
        match self {
            SegmenterHandle::Felzenszwalb(p) => Ok(felzenszwalb::segment(
                working_rgb.as_raw(),
                working_rgb.width() as usize,
                working_rgb.height() as usize,
                p,
                rule,
            )),
            SegmenterHandle::Semantic(s) => s.segment(working_rgb, rule),
            SegmenterHandle::Sam(s) => s.segment(working_rgb, rule),
        }
    }
}

/// A model the engine could not open; the rest still works.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Unavailable {
    pub name: String,
    pub reason: String,
}

/// Everything loaded once and reused across images.
pub struct Engine {
    pub params: AnalysisParams,
    pub classifier: Classifier,
    pub segmenters: Vec<SegmenterHandle>,
    /// Segmenters that were asked for (or found in the manifest) but could not be opened.
    pub unavailable: Vec<Unavailable>,
    /// sha256 of every segmentation model opened.
    pub segmenter_models: Vec<(String, String)>,
}

/// The image at the working resolution and its error levels.
pub struct Prepared {
    pub image: LoadedImage,
    pub working: RgbImage,
    /// Error levels per (JPEG quality, classifier input size).
    pub ela: BTreeMap<(u8, u32), SignedEla>,
}

impl Prepared {
    /// The plain |ELA| map at the working resolution (display and the section 7 baseline).
    pub fn ela_map(&self, box_radius: usize) -> Map {
        let (w, h) = (
            self.working.width() as usize,
            self.working.height() as usize,
        );
        self.ela
            .values()
            .next()
            .map(|e| e.abs_map(w, h, box_radius))
            .unwrap_or_else(|| Map::filled(w, h, 0.0))
    }
}

#[derive(Debug, Clone)]
pub struct VariantResult {
    pub info: VariantInfo,
    pub logit: f32,
    pub probability: f32,
    /// `A_i` at the working resolution.
    pub cam: Map,
}

/// A segmenter's regions scored against the fused map, and the refinement by the chosen one.
#[derive(Debug, Clone)]
pub struct SegmenterResult {
    pub segmentation: Segmentation,
    pub similarity: SimilarityVariant,
    /// `S` per region, in region order.
    pub scores: Vec<f32>,
    /// The evidence mask: argmax of `scores` unless the analyst picked another.
    pub chosen: Option<usize>,
    pub refined: Option<Map>,
    pub likelihoods: Option<Likelihoods>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageTime {
    pub stage: String,
    pub ms: f64,
}

pub struct Analysis {
    pub image: ImageInfo,
    pub input_path: std::path::PathBuf,
    pub working: RgbImage,
    /// Plain |ELA| map (box-smoothed, normalised) at the working resolution.
    pub ela_map: Map,
    pub variants: Vec<VariantResult>,
    /// `A`, the geometric mean of the `A_i`.
    pub fused: Map,
    /// Compression-history evidence (METHOD.md section 9).
    pub compression: CompressionMaps,
    /// The prior the segmenters were scored against (`params.prior` applied to `A` and the
    /// compression posterior; equals `A` under the paper's configuration).
    pub prior: Map,
    /// Copy-move evidence at the working resolution, offsets and boxes in pixels of the (oriented)
    /// file; None where it was not computed (analyses assembled by the app).
    pub copy_move: Option<CopyMove>,
    pub segmenters: Vec<SegmenterResult>,
    pub segmenter_errors: Vec<Unavailable>,
    pub timings: Vec<StageTime>,
    pub provider: String,
}

/// Progress of an analysis, for the CLI's stderr and the app's stage list.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Started {
        stage: String,
        index: usize,
        total: usize,
    },
    Finished {
        stage: String,
        ms: f64,
    },
}

/// Score every region and refine with the best one (or `chosen`, when the analyst picked it).
pub fn score_and_refine(
    segmentation: Segmentation,
    fused: &Map,
    similarity: SimilarityVariant,
    chosen: Option<usize>,
) -> SegmenterResult {
    let scores: Vec<f32> = segmentation
        .regions
        .iter()
        .map(|r| r.similarity(fused, similarity))
        .collect();
    let chosen = chosen
        .filter(|&i| i < scores.len())
        .or_else(|| best_mask(&scores));
    let (refined, likelihoods) = match chosen {
        Some(i) => {
            let (h, l) = refine(fused, &segmentation.regions[i].mask);
            (Some(h), Some(l))
        }
        None => (None, None),
    };
    SegmenterResult {
        segmentation,
        similarity,
        scores,
        chosen,
        refined,
        likelihoods,
    }
}

impl SegmenterResult {
    /// Re-score with another similarity variant, or another evidence mask, without re-running models.
    pub fn rescore(&mut self, fused: &Map, similarity: SimilarityVariant, chosen: Option<usize>) {
        let seg = std::mem::replace(
            &mut self.segmentation,
            Segmentation {
                segmenter: String::new(),
                regions: Vec::new(),
                dropped_small: 0,
            },
        );
        *self = score_and_refine(seg, fused, similarity, chosen);
    }
}

impl Engine {
    /// Open the classifier variants and segmenters named by `params` (or all that are installed).
    /// A classifier is required; a segmenter that cannot be opened is listed in `unavailable`.
    pub fn open(registry: &Registry, params: AnalysisParams) -> Result<Engine> {
        let classifier_names: Vec<String> = if params.classifiers.is_empty() {
            default_classifiers(registry)?
        } else {
            params.classifiers.clone()
        };
        let resolved = classifier_names
            .iter()
            .map(|n| registry.resolve(n))
            .collect::<Result<Vec<_>>>()?;
        let classifier = Classifier::open(&resolved, params.provider, params.threads)?;

        let segmenter_names: Vec<String> = if params.segmenters.is_empty() {
            registry
                .manifest
                .models
                .iter()
                .filter(|e| matches!(e.role, Role::SemanticSegmenter | Role::SamDecoder))
                .filter(|e| !e.status.contains("test") && is_installed(registry, e))
                .map(|e| e.name.clone())
                .chain(std::iter::once(felzenszwalb::NAME.to_string()))
                .collect()
        } else {
            params.segmenters.clone()
        };
        let mut segmenters = Vec::new();
        let mut unavailable = Vec::new();
        let mut segmenter_models = Vec::new();
        for name in &segmenter_names {
            if name == felzenszwalb::NAME {
                segmenters.push(SegmenterHandle::Felzenszwalb(params.felzenszwalb));
                continue;
            }
            let opened = open_segmenter(registry, name, &params);
            match opened {
                Ok((handle, models)) => {
                    segmenter_models.extend(models);
                    segmenters.push(handle);
                }
                // Explicitly requested segmenters must work; defaults may be absent.
                Err(e) if !params.segmenters.is_empty() => return Err(e),
                Err(e) => unavailable.push(Unavailable {
                    name: name.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        Ok(Engine {
            params,
            classifier,
            segmenters,
            unavailable,
            segmenter_models,
        })
    }

    pub fn load(&self, path: &Path) -> Result<LoadedImage> {
        load_image(path)
    }

    /// Working-resolution image and the error levels each classifier setting needs.
    pub fn prepare(&self, image: LoadedImage) -> Result<Prepared> {
        let (w, h) = working_size(
            image.info.width,
            image.info.height,
            self.params.working_max_side,
        );
        let working = downscale_rgb(&image.rgb, w, h);
        let mut ela = BTreeMap::new();
        for p in self.classifier.ela_settings() {
            if let std::collections::btree_map::Entry::Vacant(slot) = ela.entry((p.quality, p.size))
            {
                slot.insert(signed_ela(&image.rgb, p.quality, p.size as usize, (w, h))?);
            }
        }
        Ok(Prepared {
            image,
            working,
            ela,
        })
    }

    /// Probabilities and `A_i` per variant, and the fused `A`.
    pub fn classify(&mut self, prepared: &Prepared) -> Result<(Vec<VariantResult>, Map)> {
        let (w, h) = (
            prepared.working.width() as usize,
            prepared.working.height() as usize,
        );
        let infos = self.classifier.infos();
        let outputs = self.classifier.run(&prepared.ela)?;
        let variants: Vec<VariantResult> = outputs
            .into_iter()
            .map(|o| {
                let info = infos
                    .iter()
                    .find(|i| i.model == o.model)
                    .cloned()
                    .ok_or_else(|| EngineError::Other(format!("no info for {}", o.model)))?;
                let cam = grad_cam(
                    &o.features,
                    o.channels,
                    o.feature_h,
                    o.feature_w,
                    &o.alpha,
                    w,
                    h,
                );
                Ok(VariantResult {
                    info,
                    logit: o.logit,
                    probability: o.probability,
                    cam,
                })
            })
            .collect::<Result<_>>()?;
        let maps: Vec<&Map> = variants.iter().map(|v| &v.cam).collect();
        let fused =
            geometric_mean(&maps).ok_or_else(|| EngineError::Other("CAM sizes differ".into()))?;
        Ok((variants, fused))
    }

    /// The whole method on one image.
    pub fn analyze(
        &mut self,
        path: &Path,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Analysis> {
        let total = 6 + self.segmenters.len();
        let mut timings = Vec::new();
        let mut index = 0;
        let mut stage = |name: &str, progress: &mut dyn FnMut(Progress)| -> Result<Instant> {
            if cancel.load(Ordering::Relaxed) {
                return Err(EngineError::Cancelled);
            }
            index += 1;
            progress(Progress::Started {
                stage: name.to_string(),
                index,
                total,
            });
            Ok(Instant::now())
        };
        let done = |name: &str,
                    t0: Instant,
                    timings: &mut Vec<StageTime>,
                    progress: &mut dyn FnMut(Progress)| {
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            timings.push(StageTime {
                stage: name.to_string(),
                ms,
            });
            progress(Progress::Finished {
                stage: name.to_string(),
                ms,
            });
        };

        let t = stage("load", progress)?;
        let image = self.load(path)?;
        done("load", t, &mut timings, progress);

        let t = stage("ela", progress)?;
        let prepared = self.prepare(image)?;
        let ela_map = prepared.ela_map(self.params.ela_box_radius);
        done("ela", t, &mut timings, progress);

        let t = stage("compression", progress)?;
        let compression =
            compression_maps(&prepared.image, &self.params.compression, &prepared.working);
        done("compression", t, &mut timings, progress);

        let copy_move = match &self.params.copy_move {
            Some(p) => {
                let t = stage("copy-move", progress)?;
                let c = copy_move_evidence(&prepared, p);
                done("copy-move", t, &mut timings, progress);
                Some(c)
            }
            None => None,
        };

        let t = stage("classify", progress)?;
        let (variants, fused) = self.classify(&prepared)?;
        done("classify", t, &mut timings, progress);
        let prior = compression.prior(
            self.params.prior,
            &fused,
            copy_move.as_ref().map(|c| &c.map),
        );

        let mut segmenters = Vec::new();
        let mut segmenter_errors = Vec::new();
        let rule = self.params.mask_rule;
        let similarity = self.params.similarity;
        for s in &mut self.segmenters {
            let name = format!("segment:{}", s.name());
            let t = stage(&name, progress)?;
            match s.segment(&prepared.working, &rule) {
                Ok(seg) => {
                    done(&name, t, &mut timings, progress);
                    let name = format!("similarity+refine:{}", s.name());
                    let t = Instant::now();
                    segmenters.push(score_and_refine(seg, &prior, similarity, None));
                    done(&name, t, &mut timings, progress);
                }
                Err(e) => segmenter_errors.push(Unavailable {
                    name: s.name().to_string(),
                    reason: e.to_string(),
                }),
            }
        }
        let _ = stage("done", progress)?;
        let Prepared { image, working, .. } = prepared;
        Ok(Analysis {
            image: image.info,
            input_path: image.path,
            working,
            ela_map,
            variants,
            fused,
            compression,
            prior,
            copy_move,
            segmenters,
            segmenter_errors,
            timings,
            provider: self.classifier.provider(),
        })
    }
}

/// Whether a segmenter's files are present (for SAM: the decoder and its encoder); models that are
/// not installed are left out of the default segmenter set (the app lists them with install actions).
pub fn is_installed(registry: &Registry, entry: &crate::models::manifest::ModelEntry) -> bool {
    let encoder_ok = match (&entry.role, &entry.sam) {
        (Role::SamDecoder, Some(sam)) => registry
            .manifest
            .get(&sam.encoder)
            .is_ok_and(|enc| registry.locate(enc).is_some()),
        (Role::SamDecoder, None) => false,
        _ => true,
    };
    encoder_ok && registry.locate(entry).is_some()
}

/// Open one model segmenter by manifest name: a semantic segmenter, or a SAM decoder with the
/// encoder its `[model.sam]` table names. Returns the handle and the (name, sha256) of its files.
pub fn open_segmenter(
    registry: &Registry,
    name: &str,
    params: &AnalysisParams,
) -> Result<(SegmenterHandle, Vec<(String, String)>)> {
    let entry = registry.manifest.get(name)?;
    match entry.role {
        Role::SamDecoder => {
            let sam = entry
                .sam
                .as_ref()
                .ok_or_else(|| entry.contract("a SAM decoder needs a [model.sam] table"))?;
            let encoder = registry.resolve(&sam.encoder)?;
            let decoder = registry.resolve(name)?;
            let s = SamSegmenter::open(
                &encoder,
                &decoder,
                params.sam,
                params.provider,
                params.threads,
            )?;
            let models = vec![
                (s.encoder.name.clone(), s.encoder_sha256.clone()),
                (s.name.clone(), s.decoder_sha256.clone()),
            ];
            Ok((SegmenterHandle::Sam(Box::new(s)), models))
        }
        Role::SamEncoder => {
            Err(entry
                .contract("a SAM encoder is not a segmenter by itself: name its decoder entry"))
        }
        _ => {
            let m = registry.resolve(name)?;
            let s = SemanticSegmenter::open(&m, params.provider, params.threads)?;
            let models = vec![(s.name().to_string(), s.sha256.clone())];
            Ok((SegmenterHandle::Semantic(Box::new(s)), models))
        }
    }
}

/// The installed classifier variants: trained ones if any are installed, else the stand-in.
pub fn default_classifiers(registry: &Registry) -> Result<Vec<String>> {
    let all: Vec<_> = registry
        .manifest
        .by_role(Role::Classifier)
        .filter(|e| !e.status.contains("test"))
        .collect();
    let installed = |trained: bool| -> Vec<String> {
        all.iter()
            .filter(|e| e.is_stand_in() != trained && registry.locate(e).is_some())
            .map(|e| e.name.clone())
            .collect()
    };
    let trained = installed(true);
    if !trained.is_empty() {
        return Ok(trained);
    }
    let standin = installed(false);
    if !standin.is_empty() {
        return Ok(standin);
    }
    let first = all
        .first()
        .ok_or_else(|| EngineError::Other("the manifest lists no classifier".into()))?;
    // Resolving reports which file is missing and how to install it.
    registry
        .resolve(&first.name)
        .map(|_| vec![first.name.clone()])
}

/// Area-downscale an RGB image (no-op when the size already matches); rows in parallel strips.
pub fn downscale_rgb(rgb: &RgbImage, w: usize, h: usize) -> RgbImage {
    let (sw, sh) = (rgb.width() as usize, rgb.height() as usize);
    if (sw, sh) == (w, h) {
        return rgb.clone();
    }
    let ranges = row_ranges(sh, threads(), 1);
    let parts: Vec<AreaAccumulator> = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .into_iter()
            .map(|rows| {
                scope.spawn(move || {
                    let mut acc = AreaAccumulator::new(3, sw, sh, w, h);
                    let mut row = vec![0f32; sw * 3];
                    for y in rows {
                        for (d, &s) in row
                            .iter_mut()
                            .zip(&rgb.as_raw()[y * sw * 3..(y + 1) * sw * 3])
                        {
                            *d = s as f32;
                        }
                        acc.add_row(y, &row);
                    }
                    acc
                })
            })
            .collect();
        // A panicking worker would be a bug in the resampler; fall back to an empty part.
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| AreaAccumulator::new(3, sw, sh, w, h))
            })
            .collect()
    });
    let mut parts = parts.into_iter();
    let mut acc = parts
        .next()
        .unwrap_or_else(|| AreaAccumulator::new(3, sw, sh, w, h));
    for p in parts {
        acc.merge(&p);
    }
    let mut out = RgbImage::new(w as u32, h as u32);
    for c in 0..3 {
        for (p, v) in out.pixels_mut().zip(acc.plane(c)) {
            p.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_trace_keeps_only_the_hardest_leaning_tenth_flagged() {
        // All 20 pixels lean tampered (>= 0.9): referenced to the 0.9 quantile (18), so the two
        // that lean hardest stay flagged; the order is kept.
        let m = reference_to_majority(Map::new(20, 1, (1..=20).map(|v| v as f32).collect()), 0.9);
        assert_eq!(m.data.iter().filter(|&&v| v > 0.0).count(), 2);
        assert_eq!(m.data[19], 2.0);
        // 60 % leaning tampered (< 0.9): the median rule as before.
        let mut v: Vec<f32> = vec![-1.0; 4];
        v.extend([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let m = reference_to_majority(Map::new(10, 1, v), 0.9);
        assert_eq!(m.data.iter().filter(|&&v| v > 0.0).count(), 4);
    }

    #[test]
    fn weak_trace_is_said_in_the_summary() {
        let all_leaning = Map::new(10, 1, vec![1.0; 10]);
        assert_eq!(weak_trace_applies(&all_leaning, 0.9), Some(1.0));
        assert_eq!(weak_trace_applies(&all_leaning, 0.0), None);
        let mut half = vec![1.0f32; 5];
        half.extend([-1.0; 5]);
        assert_eq!(weak_trace_applies(&Map::new(10, 1, half), 0.9), None);
        let maps = CompressionMaps {
            weak_trace_share: Some(0.974),
            ..Default::default()
        };
        let lines = maps.summary();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("Weak trace: block by block, 97 %"),
            "{lines:?}"
        );
        assert!(CompressionMaps::default().summary().is_empty());
    }

    #[test]
    fn superpixel_mean_moves_block_evidence_onto_the_image_edge() {
        // Two flat colours split at x = 16; the block evidence's boundary is at x = 12.
        let (w, h) = (32u32, 16u32);
        let img = RgbImage::from_fn(w, h, |x, _| {
            if x < 16 {
                image::Rgb([200, 40, 40])
            } else {
                image::Rgb([30, 60, 210])
            }
        });
        let l = Map::new(
            w as usize,
            h as usize,
            (0..w * h)
                .map(|i| if i % w < 12 { 4.0 } else { -4.0 })
                .collect(),
        );
        let m = superpixel_mean(&l, &img, 50.0);
        let at = |x: u32, y: u32| m.data[(y * w + x) as usize];
        // Every pixel of a colour gets the same value, and the left colour leans tampered.
        assert!((0..16).all(|x| (at(x, 3) - at(0, 0)).abs() < 1e-5));
        assert!((16..32).all(|x| (at(x, 9) - at(31, 15)).abs() < 1e-5));
        assert!(
            at(0, 0) > 0.0 && at(31, 0) < 0.0,
            "{} {}",
            at(0, 0),
            at(31, 0)
        );
        // A map of another size, or k = 0, is returned as it is.
        assert_eq!(superpixel_mean(&l, &img, 0.0).data, l.data);
        let small = Map::new(4, 4, vec![1.0; 16]);
        assert_eq!(superpixel_mean(&small, &img, 50.0).data, small.data);
    }

    #[test]
    fn reference_to_majority_shifts_only_maps_leaning_tampered() {
        // Median 2 (leans tampered): shifted down by 2, order kept.
        let m = reference_to_majority(Map::new(5, 1, vec![1.0, 2.0, 3.0, 2.0, 9.0]), 0.0);
        assert_eq!(m.data, vec![-1.0, 0.0, 1.0, 0.0, 7.0]);
        // Median -1 (leans authentic): unchanged.
        let m = reference_to_majority(Map::new(3, 1, vec![-3.0, -1.0, 4.0]), 0.0);
        assert_eq!(m.data, vec![-3.0, -1.0, 4.0]);
    }
}
