//! What `analyze` writes: a JSON record of every figure and parameter, and PNG maps
//! (colour-mapped overlays on the photo, plus raw 8-bit maps).

use std::path::Path;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::engine::imageio::{ImageInfo, png_gray, png_rgb, write_atomic};
use crate::engine::pipeline::{Analysis, AnalysisParams, StageTime, Unavailable};
use crate::engine::raster::{Map, Mask};
use crate::engine::refine::Likelihoods;
use crate::engine::similarity::SimilarityVariant;
use crate::error::Result;
use crate::outputs::colormap::{ColorMap, region_color};

pub const SCHEMA: &str = "tamperscope.analysis/1";
pub const STAND_IN_LABEL: &str = "untrained stand-in";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AnalysisRecord {
    pub schema: String,
    pub tool: ToolInfo,
    pub created_utc: String,
    pub input: InputRecord,
    pub working_size: [usize; 2],
    pub execution_provider: String,
    pub classifier: ClassifierRecord,
    pub segmenters: Vec<SegmenterRecord>,
    pub unavailable: Vec<Unavailable>,
    pub params: AnalysisParams,
    pub timings_ms: Vec<StageTime>,
    /// Files written beside this record, by map name.
    pub files: std::collections::BTreeMap<String, String>,
    /// Compression-history evidence (METHOD.md section 9); absent in records written before it.
    #[serde(default)]
    pub compression: Option<CompressionRecord>,
    /// The verdict of classifier and compression evidence together; absent in older records.
    #[serde(default)]
    pub verdict: Option<VerdictRecord>,
    /// Copy-move (clone) evidence; absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_move: Option<CopyMoveRecord>,
}

/// Figures behind the copy-move map (src/engine/copymove.rs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CopyMoveRecord {
    /// Why no search was made (image too small, flat).
    pub absent: Option<String>,
    /// Image-level clone score in [0, 1] ([`crate::engine::copymove::CopyMove::score`]).
    pub score: f32,
    /// Fraction of the image marked as source or copy.
    pub marked_fraction: f32,
    /// Each region's dominant offset `(dx, dy)` to its partner, px of the oriented file, in region
    /// order.
    pub offsets: Vec<[f32; 2]>,
    /// The regions, largest first; boxes and offsets in pixels of the oriented file.
    pub regions: Vec<crate::engine::copymove::CloneRegion>,
    /// The findings in words.
    pub summary: Vec<String>,
}

impl CopyMoveRecord {
    pub fn from_evidence(c: &crate::engine::copymove::CopyMove) -> Self {
        CopyMoveRecord {
            absent: c.absent.clone(),
            score: c.score,
            marked_fraction: c.marked_fraction(),
            offsets: c.regions.iter().map(|r| r.offset).collect(),
            regions: c.regions.clone(),
            summary: c.summary(),
        }
    }
}

/// The answer: was the image manipulated, and on what evidence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VerdictRecord {
    /// `1 - (1 - w classifier) (1 - compression) (1 - copy-move)`
    /// ([`crate::engine::pipeline::verdict_probability`]).
    pub probability: f32,
    pub classifier_probability: f32,
    /// 99th percentile of the compression posterior where a trace was found, else 0.
    pub compression_score: f32,
    /// The copy-move score as it joins the verdict (0 when the search did not run, and in
    /// reports written before it joined).
    #[serde(default)]
    pub copy_move_score: f32,
    /// Weight of the classifier's probability in the verdict (1 in reports written before it).
    #[serde(default = "crate::engine::pipeline::one")]
    pub classifier_weight: f32,
    pub verdict: String,
    /// The prior the segmenters were scored against.
    pub prior: String,
}

impl VerdictRecord {
    /// The verdict and what it came from, figures with `digits` decimals: "p = 0.912 (manipulated)
    /// from the classifier (mean p = 0.400, weight 0.5), the compression evidence (score 0.850) and
    /// the copy-move search (score 0.000)".
    pub fn sentence(&self, digits: usize) -> String {
        format!(
            "p = {:.d$} ({}) from the classifier (mean p = {:.d$}, weight {}), the compression evidence (score {:.d$}) and the copy-move search (score {:.d$})",
            self.probability,
            self.verdict,
            self.classifier_probability,
            self.classifier_weight,
            self.compression_score,
            self.copy_move_score,
            d = digits
        )
    }
}

/// Figures behind the compression-history maps.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CompressionRecord {
    /// Why there is no evidence at all (not a JPEG, unreadable coefficients).
    pub absent: Option<String>,
    /// Stored luminance quantisation table, natural (row-major) order.
    pub table: Vec<u16>,
    /// IJG quality equivalent to the stored table.
    pub quality: Option<u8>,
    pub quality_exact: bool,
    /// IJG quality that best fits the estimated primary steps.
    pub primary_quality: Option<u8>,
    /// A-DJPG: frequencies examined and used, the fits, the rounding-noise deviation and guard.
    pub adjpg_frequencies_used: usize,
    pub adjpg_fits: Vec<crate::engine::compression::FrequencyFit>,
    pub rounding_sd: f64,
    pub guard_nats: f64,
    /// Fraction of blocks with A-DJPG P(tampered) > 0.5.
    pub adjpg_flagged_fraction: f64,
    /// NA-DJPG: the grid shift (x, y) found, its frequencies (u, v, Q1, gain), the fraction of
    /// blocks that carry it and whether the trace marks the region (else its absence does).
    pub na_shift: Option<(usize, usize)>,
    pub na_frequencies: Vec<(usize, usize, u16, f64)>,
    pub na_trace_fraction: Option<f64>,
    pub na_trace_marks_region: Option<bool>,
    pub na_absent: Option<String>,
    /// The findings in words.
    pub summary: Vec<String>,
}

impl CompressionRecord {
    pub fn from_maps(c: &crate::engine::pipeline::CompressionMaps) -> Self {
        let Some(e) = &c.evidence else {
            return CompressionRecord {
                absent: c.absent.clone(),
                summary: c
                    .absent
                    .iter()
                    .map(|a| format!("No compression evidence: {a}."))
                    .collect(),
                ..Default::default()
            };
        };
        CompressionRecord {
            absent: None,
            table: e.table.to_vec(),
            quality: e.quality.map(|q| q.0),
            quality_exact: e.quality.is_some_and(|q| q.1),
            primary_quality: e.primary_quality,
            adjpg_frequencies_used: e.adjpg.used(),
            adjpg_fits: e.adjpg.frequencies.clone(),
            rounding_sd: e.adjpg.rounding_sd,
            guard_nats: e.adjpg.guard,
            adjpg_flagged_fraction: e.adjpg.map.flagged_fraction(),
            na_shift: e.na.as_ref().map(|n| n.shift),
            na_frequencies: e
                .na
                .as_ref()
                .map(|n| n.frequencies.clone())
                .unwrap_or_default(),
            na_trace_fraction: e.na.as_ref().map(|n| n.trace_fraction),
            na_trace_marks_region: e.na.as_ref().map(|n| n.trace_marks_region),
            na_absent: e.na_absent.clone(),
            summary: c.summary(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputRecord {
    pub path: String,
    #[serde(flatten)]
    pub info: ImageInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassifierRecord {
    /// "trained" or "untrained stand-in": a stand-in's probabilities mean nothing.
    pub status: String,
    pub variants: Vec<VariantRecord>,
    /// Mean of the variants' probabilities.
    pub mean_probability: f32,
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VariantRecord {
    pub model: String,
    pub variant: u32,
    pub file: String,
    pub sha256: String,
    pub status: String,
    pub ela: crate::engine::ela::ElaParams,
    pub logit: f32,
    pub probability: f32,
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SegmenterRecord {
    pub name: String,
    /// sha256 of the model file; empty for built-in segmenters.
    pub model_sha256: String,
    pub masks: usize,
    pub dropped_small: usize,
    pub similarity: SimilarityVariant,
    /// Index into `regions` of the evidence mask.
    pub chosen: Option<usize>,
    pub likelihoods: Option<Likelihoods>,
    pub regions: Vec<RegionRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegionRecord {
    pub index: usize,
    pub label: String,
    pub area: usize,
    /// x0, y0, x1, y1 (exclusive) at the working resolution.
    pub bbox: [usize; 4],
    /// S under the variant used for the choice.
    pub s: f32,
    pub s_paper: f32,
    pub s_normalized: f32,
}

pub fn verdict(p: f32) -> &'static str {
    if p >= 0.5 { "manipulated" } else { "authentic" }
}

/// Current UTC time as RFC 3339 (no time-zone database needed).
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn record(
    analysis: &Analysis,
    params: &AnalysisParams,
    segmenter_models: &[(String, String)],
    unavailable: &[Unavailable],
) -> AnalysisRecord {
    let variants: Vec<VariantRecord> = analysis
        .variants
        .iter()
        .map(|v| VariantRecord {
            model: v.info.model.clone(),
            variant: v.info.variant,
            file: v.info.file.clone(),
            sha256: v.info.sha256.clone(),
            status: v.info.status.clone(),
            ela: v.info.ela,
            logit: v.logit,
            probability: v.probability,
            verdict: verdict(v.probability).to_string(),
        })
        .collect();
    let stand_in = variants.iter().any(|v| v.status.contains("stand-in"));
    let mean_probability =
        variants.iter().map(|v| v.probability).sum::<f32>() / variants.len().max(1) as f32;
    let segmenters = analysis
        .segmenters
        .iter()
        .map(|s| SegmenterRecord {
            name: s.segmentation.segmenter.clone(),
            model_sha256: segmenter_models
                .iter()
                .find(|(n, _)| *n == s.segmentation.segmenter)
                .map(|(_, h)| h.clone())
                .unwrap_or_default(),
            masks: s.segmentation.regions.len(),
            dropped_small: s.segmentation.dropped_small,
            similarity: s.similarity,
            chosen: s.chosen,
            likelihoods: s.likelihoods,
            regions: s
                .segmentation
                .regions
                .iter()
                .enumerate()
                .map(|(i, r)| RegionRecord {
                    index: i,
                    label: r.label.clone(),
                    area: r.area,
                    bbox: r.bbox,
                    s: s.scores[i],
                    s_paper: r.similarity(&analysis.prior, SimilarityVariant::Paper),
                    s_normalized: r.similarity(&analysis.prior, SimilarityVariant::Normalized),
                })
                .collect(),
        })
        .collect();
    let mut all_unavailable = unavailable.to_vec();
    all_unavailable.extend(analysis.segmenter_errors.iter().cloned());
    AnalysisRecord {
        schema: SCHEMA.to_string(),
        tool: ToolInfo {
            name: "tamperscope".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            commit: crate::COMMIT.into(),
        },
        created_utc: now_utc(),
        input: InputRecord {
            path: analysis.input_path.display().to_string(),
            info: analysis.image.clone(),
        },
        working_size: [
            analysis.working.width() as usize,
            analysis.working.height() as usize,
        ],
        execution_provider: analysis.provider.clone(),
        classifier: ClassifierRecord {
            status: if stand_in {
                STAND_IN_LABEL.to_string()
            } else {
                "trained".to_string()
            },
            variants,
            mean_probability,
            verdict: verdict(mean_probability).to_string(),
        },
        segmenters,
        unavailable: all_unavailable,
        params: params.clone(),
        timings_ms: analysis.timings.clone(),
        files: Default::default(),
        compression: Some(CompressionRecord::from_maps(&analysis.compression)),
        verdict: Some({
            let cs = analysis.compression.image_score();
            let cm = params.verdict_copy_move_score(analysis.copy_move.as_ref());
            let p = params.verdict(mean_probability, cs, analysis.copy_move.as_ref());
            VerdictRecord {
                probability: p,
                classifier_probability: mean_probability,
                compression_score: cs,
                copy_move_score: cm,
                classifier_weight: params.verdict_classifier_weight,
                verdict: verdict(p).to_string(),
                prior: params.prior.name(),
            }
        }),
        copy_move: analysis
            .copy_move
            .as_ref()
            .map(CopyMoveRecord::from_evidence),
    }
}

fn blend(dst: &mut [u8; 3], src: [u8; 3], alpha: f32) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = (*d as f32 * (1.0 - alpha) + s as f32 * alpha).round() as u8;
    }
}

/// Photo with a colour-mapped map blended over it.
pub fn heat_overlay(photo: &RgbImage, map: &Map, cmap: ColorMap, opacity: f32) -> RgbImage {
    let mut out = photo.clone();
    for (p, &v) in out.pixels_mut().zip(&map.data) {
        blend(&mut p.0, cmap.rgb8(v), opacity);
    }
    out
}

/// Alpha of heat value `v` over the photo in the app's view and its exports (the same rule as
/// `heat_layer` in `shaders/view.wgsl`): `opacity * v`, so value 0 leaves the photo untouched and
/// only high values hide it.
pub fn heat_alpha(v: f32, opacity: f32) -> f32 {
    (opacity * v.clamp(0.0, 1.0)).clamp(0.0, 1.0)
}

/// Photo with a colour-mapped map blended over it with [`heat_alpha`]; values below `threshold`
/// are not drawn (0 draws all).
pub fn heat_overlay_graded(
    photo: &RgbImage,
    map: &Map,
    cmap: ColorMap,
    opacity: f32,
    threshold: f32,
) -> RgbImage {
    let mut out = photo.clone();
    for (p, &v) in out.pixels_mut().zip(&map.data) {
        if v >= threshold {
            blend(&mut p.0, cmap.rgb8(v), heat_alpha(v, opacity));
        }
    }
    out
}

/// Colour-mapped map alone.
pub fn heat_image(map: &Map, cmap: ColorMap) -> RgbImage {
    let mut out = RgbImage::new(map.width as u32, map.height as u32);
    for (p, &v) in out.pixels_mut().zip(&map.data) {
        p.0 = cmap.rgb8(v);
    }
    out
}

fn is_edge(mask: &Mask, x: usize, y: usize) -> bool {
    let (w, h) = (mask.width, mask.height);
    let inside = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && mask.data[y as usize * w + x as usize]
    };
    let (xi, yi) = (x as isize, y as isize);
    mask.data[y * w + x]
        && !(inside(xi - 1, yi) && inside(xi + 1, yi) && inside(xi, yi - 1) && inside(xi, yi + 1))
}

/// Every region tinted and outlined in its own colour.
pub fn regions_overlay<'a>(photo: &RgbImage, masks: impl Iterator<Item = &'a Mask>) -> RgbImage {
    let mut out = photo.clone();
    for (i, m) in masks.enumerate() {
        let c = region_color(i);
        for y in 0..m.height {
            for x in 0..m.width {
                if !m.data[y * m.width + x] {
                    continue;
                }
                let p = out.get_pixel_mut(x as u32, y as u32);
                blend(&mut p.0, c, if is_edge(m, x, y) { 1.0 } else { 0.25 });
            }
        }
    }
    out
}

/// The chosen region outlined, the rest of the photo dimmed.
pub fn chosen_overlay(photo: &RgbImage, mask: &Mask) -> RgbImage {
    let mut out = photo.clone();
    for y in 0..mask.height {
        for x in 0..mask.width {
            let p = out.get_pixel_mut(x as u32, y as u32);
            if is_edge(mask, x, y) {
                p.0 = [0, 255, 255];
            } else if !mask.data[y * mask.width + x] {
                for k in 0..3 {
                    p.0[k] /= 3;
                }
            }
        }
    }
    out
}

/// Write the PNG maps of an analysis into `dir`; returns map name -> file name.
pub fn write_maps(
    analysis: &Analysis,
    dir: &Path,
    cmap: ColorMap,
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut files = std::collections::BTreeMap::new();
    let photo = &analysis.working;
    let (w, h) = (photo.width(), photo.height());
    let mut put = |key: String, file: String, bytes: Vec<u8>| -> Result<()> {
        write_atomic(&dir.join(&file), &bytes)?;
        files.insert(key, file);
        Ok(())
    };
    let heat = |key: &str,
                map: &Map,
                put: &mut dyn FnMut(String, String, Vec<u8>) -> Result<()>|
     -> Result<()> {
        let over = heat_overlay(photo, map, cmap, 0.6);
        put(
            key.to_string(),
            format!("{key}.png"),
            png_rgb(w, h, over.as_raw())?,
        )?;
        put(
            format!("{key}:raw"),
            format!("{key}_raw.png"),
            png_gray(w, h, &map.to_u8())?,
        )
    };
    put(
        "input".into(),
        "input.png".into(),
        png_rgb(w, h, photo.as_raw())?,
    )?;
    heat("ela", &analysis.ela_map, &mut put)?;
    for v in &analysis.variants {
        heat(&format!("cam{}", v.info.variant), &v.cam, &mut put)?;
    }
    heat("fused", &analysis.fused, &mut put)?;
    let c = &analysis.compression;
    for (key, map) in [
        ("adjpg", &c.adjpg),
        ("nadjpg", &c.na),
        ("compression", &c.combined),
    ] {
        if let Some(m) = map {
            heat(key, m, &mut put)?;
        }
    }
    heat("prior", &analysis.prior, &mut put)?;
    if let Some(cm) = &analysis.copy_move {
        heat("copymove", &cm.map, &mut put)?;
    }
    for s in &analysis.segmenters {
        let name = sanitize(&s.segmentation.segmenter);
        let masks = regions_overlay(photo, s.segmentation.regions.iter().map(|r| &r.mask));
        put(
            format!("masks:{}", s.segmentation.segmenter),
            format!("masks_{name}.png"),
            png_rgb(w, h, masks.as_raw())?,
        )?;
        // Raw mask map: region index + 1 per pixel (0 = no region), 8-bit.
        let mut index_map = vec![0u8; (w * h) as usize];
        for (i, r) in s.segmentation.regions.iter().enumerate() {
            for (dst, &m) in index_map.iter_mut().zip(&r.mask.data) {
                if m {
                    *dst = (i + 1).min(255) as u8;
                }
            }
        }
        put(
            format!("masks:{}:raw", s.segmentation.segmenter),
            format!("masks_{name}_raw.png"),
            png_gray(w, h, &index_map)?,
        )?;
        if let (Some(c), Some(refined)) = (s.chosen, &s.refined) {
            let chosen = chosen_overlay(photo, &s.segmentation.regions[c].mask);
            put(
                format!("chosen:{}", s.segmentation.segmenter),
                format!("chosen_{name}.png"),
                png_rgb(w, h, chosen.as_raw())?,
            )?;
            heat(&format!("refined_{name}"), refined, &mut put)?;
        }
    }
    Ok(files)
}

/// File-name-safe version of a model name.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graded_overlay_leaves_low_values_untouched() {
        let photo = RgbImage::from_pixel(3, 1, image::Rgb([200, 150, 100]));
        let map = Map {
            width: 3,
            height: 1,
            data: vec![0.0, 0.5, 1.0],
        };
        let out = heat_overlay_graded(&photo, &map, ColorMap::Gray, 1.0, 0.0);
        assert_eq!(out.get_pixel(0, 0).0, [200, 150, 100], "value 0: the photo");
        assert_eq!(
            out.get_pixel(2, 0).0,
            [255, 255, 255],
            "value 1: the colour"
        );
        let mid = out.get_pixel(1, 0).0;
        assert!(mid[0] > 150 && mid[0] < 200, "{mid:?}");
        let cut = heat_overlay_graded(&photo, &map, ColorMap::Gray, 1.0, 0.6);
        assert_eq!(
            cut.get_pixel(1, 0).0,
            [200, 150, 100],
            "below the threshold"
        );
        assert_eq!(heat_alpha(0.5, 0.5), 0.25);
    }
}
