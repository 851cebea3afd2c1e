//! Segment Anything (SAM family: SAM ViT-B/L/H, MobileSAM): automatic mask generation
//! (METHOD.md section 4), following `SamAutomaticMaskGenerator` of segment_anything without crops.
//!
//! Two sessions: the image encoder runs once per image, the prompt decoder once per batch of point
//! prompts. The decoder has the interface of the official ONNX export
//! (segment_anything/utils/onnx.py, scripts/export_onnx_model.py), which MobileSAM's shares:
//! inputs `image_embeddings` [1,256,64,64], `point_coords` [N,K,2] (in the 1024-resized frame),
//! `point_labels` [N,K], `mask_input` [N,1,256,256], `has_mask_input` [N], `orig_im_size` [2]
//! (float32 h, w); outputs `masks` [N,C,H,W] (logits at `orig_im_size`, threshold 0) and
//! `iou_predictions` [N,C]. Each prompt is one positive point plus the padding point (0, 0) with
//! label -1 that the export expects when there is no box. With C = 4 (the export without
//! `--return-single-mask`) channel 0 is the single-mask output and channels 1..3 the multimask
//! outputs that automatic mask generation uses.

use image::RgbImage;
use ndarray::{Array1, Array2, Array3, Array4};
use serde::Serialize;

use super::{MaskRule, Region, Segmentation};
use crate::engine::raster::{Mask, resize_bilinear};
use crate::error::{EngineError, Result};
use crate::models::manifest::{ModelEntry, Preprocess, Role};
pub use crate::models::manifest::{SamManifest, SamParams};
use crate::models::registry::ResolvedModel;
use crate::models::runtime::{
    ModelSession, ProviderChoice, check_contract, open_session, outlet_shape,
};

/// Side of the square the encoder sees (longest image side resized to it, padded bottom/right).
pub const SAM_INPUT: usize = 1024;
/// Decoder inputs besides the embeddings, by their names in the official export.
pub const DECODER_INPUTS: [&str; 5] = [
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
    "orig_im_size",
];

/// The prompt grid in [0, 1]^2, as (x, y), row by row (build_point_grid of segment_anything).
pub fn point_grid(n: u32) -> Vec<(f32, f32)> {
    let n = n.max(1) as usize;
    let offset = 1.0 / (2.0 * n as f64);
    let side: Vec<f64> = (0..n)
        .map(|i| {
            if n == 1 {
                0.5
            } else {
                offset + (1.0 - 2.0 * offset) * i as f64 / (n - 1) as f64
            }
        })
        .collect();
    let mut out = Vec::with_capacity(n * n);
    for &y in &side {
        for &x in &side {
            out.push((x as f32, y as f32));
        }
    }
    out
}

/// Stability score of one mask's logits: |logits > t + offset| / |logits > t - offset|
/// (calculate_stability_score); 0 when the union is empty.
pub fn stability_score(logits: &[f32], threshold: f32, offset: f32) -> f32 {
    let (mut inter, mut union) = (0usize, 0usize);
    for &v in logits {
        inter += (v > threshold + offset) as usize;
        union += (v > threshold - offset) as usize;
    }
    if union == 0 {
        0.0
    } else {
        inter as f32 / union as f32
    }
}

/// XYXY box of a mask with inclusive maxima (batched_mask_to_box); None when empty.
pub fn mask_box(mask: &[bool], width: usize) -> Option<[f32; 4]> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
        let (x, y) = (i % width, i / width);
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    (x0 != usize::MAX).then_some([x0 as f32, y0 as f32, x1 as f32, y1 as f32])
}

/// IoU of two XYXY boxes with torchvision's area (x1 - x0) * (y1 - y0).
pub fn box_iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy non-maximum suppression (torchvision.ops.nms): indices kept, highest score first; a box
/// is dropped when its IoU with a kept box is above `thresh`. Ties keep the earlier index.
pub fn nms(boxes: &[[f32; 4]], scores: &[f32], thresh: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len().min(scores.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep: Vec<usize> = Vec::new();
    for i in order {
        if keep
            .iter()
            .all(|&k| box_iou(&boxes[k], &boxes[i]) <= thresh)
        {
            keep.push(i);
        }
    }
    keep
}

/// One decoded mask that passed the IoU and stability filters.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub mask: Vec<bool>,
    pub bbox: [f32; 4],
    pub iou: f32,
    pub stability: f32,
    /// Index of the prompt (grid point) that produced it.
    pub point: usize,
}

/// Counts of what automatic mask generation dropped, for reports and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SamStats {
    pub decoded: usize,
    pub dropped_iou: usize,
    pub dropped_stability: usize,
    pub dropped_empty: usize,
    pub suppressed: usize,
}

/// Filter the masks of one prompt (logits `[C][H*W]`, predicted IoUs `[C]`) as
/// SamAutomaticMaskGenerator._process_batch does, pushing the survivors.
pub fn filter_masks(
    logits: &[&[f32]],
    ious: &[f32],
    point: usize,
    width: usize,
    p: &SamParams,
    out: &mut Vec<Candidate>,
    stats: &mut SamStats,
) {
    for (l, &iou) in logits.iter().zip(ious) {
        stats.decoded += 1;
        if p.pred_iou_thresh > 0.0 && iou <= p.pred_iou_thresh {
            stats.dropped_iou += 1;
            continue;
        }
        let stability = stability_score(l, p.mask_threshold, p.stability_score_offset);
        if stability < p.stability_score_thresh {
            stats.dropped_stability += 1;
            continue;
        }
        let mask: Vec<bool> = l.iter().map(|&v| v > p.mask_threshold).collect();
        let Some(bbox) = mask_box(&mask, width) else {
            stats.dropped_empty += 1;
            continue;
        };
        out.push(Candidate {
            mask,
            bbox,
            iou,
            stability,
            point,
        });
    }
}

/// Box NMS over all candidates (scores = predicted IoU), then the minimum-area rule; regions are
/// returned in descending score order and may overlap.
pub fn select_regions(
    candidates: Vec<Candidate>,
    width: usize,
    height: usize,
    p: &SamParams,
    rule: &MaskRule,
    stats: &mut SamStats,
) -> (Vec<Region>, usize) {
    let boxes: Vec<[f32; 4]> = candidates.iter().map(|c| c.bbox).collect();
    let scores: Vec<f32> = candidates.iter().map(|c| c.iou).collect();
    let keep = nms(&boxes, &scores, p.box_nms_thresh);
    stats.suppressed = candidates.len() - keep.len();
    let min_pixels = rule.min_pixels(width, height);
    let mut slots: Vec<Option<Candidate>> = candidates.into_iter().map(Some).collect();
    let mut regions = Vec::new();
    let mut dropped = 0;
    for i in keep {
        let Some(c) = slots.get_mut(i).and_then(Option::take) else {
            continue;
        };
        if c.mask.iter().filter(|&&m| m).count() < min_pixels {
            dropped += 1;
            continue;
        }
        let label = format!("sam {} (iou {:.2})", regions.len() + 1, c.iou);
        if let Some(r) = Region::new(
            label,
            Mask {
                width,
                height,
                data: c.mask,
            },
        ) {
            regions.push(r);
        }
    }
    (regions, dropped)
}

/// An encoder + decoder pair ready to run.
pub struct SamSegmenter {
    /// The decoder's manifest name (the pair's name).
    pub name: String,
    pub encoder: ModelEntry,
    pub decoder: ModelEntry,
    pub encoder_sha256: String,
    pub decoder_sha256: String,
    pub params: SamParams,
    enc: ModelSession,
    dec: ModelSession,
    /// Prompts per decoder run the graph accepts (fixed batch dimension), if any.
    fixed_batch: Option<usize>,
    pub last_stats: SamStats,
}

fn rt(name: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Runtime(format!("{name}: {e}"))
}

impl SamSegmenter {
    /// `params` overrides the decoder entry's `[model.sam.params]`.
    pub fn open(
        encoder: &ResolvedModel,
        decoder: &ResolvedModel,
        params: Option<SamParams>,
        provider: ProviderChoice,
        threads: usize,
    ) -> Result<Self> {
        if encoder.entry.role != Role::SamEncoder {
            return Err(encoder.entry.contract("it is not a SAM image encoder"));
        }
        if decoder.entry.role != Role::SamDecoder {
            return Err(decoder.entry.contract("it is not a SAM mask decoder"));
        }
        let (h, w) = encoder.entry.input_hw()?;
        if (h, w) != (SAM_INPUT, SAM_INPUT) {
            return Err(encoder
                .entry
                .contract("a SAM encoder takes a [1, 3, 1024, 1024] image"));
        }
        if !matches!(encoder.entry.preprocess, Preprocess::Normalize { .. }) {
            return Err(encoder
                .entry
                .contract("a SAM encoder needs preprocess kind normalize"));
        }
        encoder.entry.output("embeddings")?;
        decoder.entry.output("masks")?;
        decoder.entry.output("iou")?;
        let params = params
            .or_else(|| decoder.entry.sam.as_ref().map(|s| s.params))
            .unwrap_or_default();
        params.validate()?;
        let enc = open_session(&encoder.path, provider, threads)?;
        check_contract(&encoder.entry, &enc.session)?;
        let dec = open_session(&decoder.path, provider, threads)?;
        check_contract(&decoder.entry, &dec.session)?;
        for name in DECODER_INPUTS {
            if outlet_shape(dec.session.inputs(), name).is_none() {
                return Err(decoder
                    .entry
                    .contract(&format!("the decoder has no input '{name}'")));
            }
        }
        let fixed_batch = outlet_shape(dec.session.inputs(), "point_coords")
            .and_then(|s| s.first().copied())
            .filter(|&n| n > 0)
            .map(|n| n as usize);
        Ok(Self {
            name: decoder.entry.name.clone(),
            encoder: encoder.entry.clone(),
            decoder: decoder.entry.clone(),
            encoder_sha256: encoder.sha256.clone(),
            decoder_sha256: decoder.sha256.clone(),
            params,
            enc,
            dec,
            fixed_batch,
            last_stats: SamStats::default(),
        })
    }

    pub fn provider(&self) -> &str {
        &self.enc.provider
    }

    /// Encoder input: longest side resized (bilinear) to 1024, (x - mean) / std, zero padding
    /// bottom/right. Returns the tensor and the resized size (w, h).
    pub fn input_tensor(&self, rgb: &RgbImage) -> Result<(Array4<f32>, (usize, usize))> {
        let Preprocess::Normalize { mean, std, .. } = &self.encoder.preprocess else {
            return Err(self
                .encoder
                .contract("a SAM encoder needs preprocess kind normalize"));
        };
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let (nw, nh) = resized_size(w, h);
        let mut t = Array4::<f32>::zeros((1, 3, SAM_INPUT, SAM_INPUT));
        for c in 0..3 {
            let plane: Vec<f32> = rgb.pixels().map(|p| p.0[c] as f32).collect();
            let resized = resize_bilinear(&plane, w, h, nw, nh);
            for y in 0..nh {
                for x in 0..nw {
                    t[[0, c, y, x]] = (resized[y * nw + x] - mean[c]) / std[c];
                }
            }
        }
        Ok((t, (nw, nh)))
    }

    fn encode(&mut self, rgb: &RgbImage) -> Result<(Array4<f32>, (usize, usize))> {
        let (tensor, resized) = self.input_tensor(rgb)?;
        let name = self.encoder.name.clone();
        let input = ort::value::Tensor::from_array(tensor).map_err(|e| rt(&name, e))?;
        let out_name = self.encoder.output("embeddings")?.to_string();
        let result = self
            .enc
            .session
            .run(ort::inputs![self.encoder.input.name.as_str() => input])
            .map_err(|e| rt(&name, format!("inference failed: {e}")))?;
        let value = result.get(&out_name).ok_or_else(|| {
            self.encoder
                .contract(&format!("output '{out_name}' missing"))
        })?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| self.encoder.contract(&format!("embeddings: {e}")))?;
        let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        if dims != [1, 256, 64, 64] {
            return Err(self.encoder.contract(&format!(
                "image embeddings must be [1, 256, 64, 64], got {dims:?}"
            )));
        }
        let emb = Array4::from_shape_vec((1, 256, 64, 64), data.to_vec())
            .map_err(|e| self.encoder.contract(&e.to_string()))?;
        Ok((emb, resized))
    }

    /// Decode one batch of prompts (points in the 1024 frame); pushes the filtered candidates.
    fn decode_batch(
        &mut self,
        embeddings: &Array4<f32>,
        points: &[(usize, (f32, f32))],
        (w, h): (usize, usize),
        out: &mut Vec<Candidate>,
        stats: &mut SamStats,
    ) -> Result<()> {
        let n = points.len();
        let mut coords = Array3::<f32>::zeros((n, 2, 2));
        let mut labels = Array2::<f32>::zeros((n, 2));
        for (i, &(_, (x, y))) in points.iter().enumerate() {
            coords[[i, 0, 0]] = x;
            coords[[i, 0, 1]] = y;
            labels[[i, 0]] = 1.0;
            labels[[i, 1]] = -1.0;
        }
        let name = self.decoder.name.clone();
        let tensor = |r: std::result::Result<ort::value::Tensor<f32>, ort::Error>| {
            r.map_err(|e| rt(&name, e))
        };
        let emb = tensor(ort::value::Tensor::from_array(embeddings.clone()))?;
        let coords = tensor(ort::value::Tensor::from_array(coords))?;
        let labels = tensor(ort::value::Tensor::from_array(labels))?;
        let mask_input = tensor(ort::value::Tensor::from_array(Array4::<f32>::zeros((
            n, 1, 256, 256,
        ))))?;
        let has_mask = tensor(ort::value::Tensor::from_array(Array1::<f32>::zeros(n)))?;
        let size = tensor(ort::value::Tensor::from_array(Array1::from_vec(vec![
            h as f32, w as f32,
        ])))?;
        let masks_name = self.decoder.output("masks")?.to_string();
        let iou_name = self.decoder.output("iou")?.to_string();
        let result = self
            .dec
            .session
            .run(ort::inputs![
                self.decoder.input.name.as_str() => emb,
                "point_coords" => coords,
                "point_labels" => labels,
                "mask_input" => mask_input,
                "has_mask_input" => has_mask,
                "orig_im_size" => size,
            ])
            .map_err(|e| rt(&name, format!("inference failed: {e}")))?;
        let masks = result.get(&masks_name).ok_or_else(|| {
            self.decoder
                .contract(&format!("output '{masks_name}' missing"))
        })?;
        let (mshape, mdata) = masks
            .try_extract_tensor::<f32>()
            .map_err(|e| self.decoder.contract(&format!("masks: {e}")))?;
        let ious = result.get(&iou_name).ok_or_else(|| {
            self.decoder
                .contract(&format!("output '{iou_name}' missing"))
        })?;
        let (ishape, idata) = ious
            .try_extract_tensor::<f32>()
            .map_err(|e| self.decoder.contract(&format!("iou_predictions: {e}")))?;
        let c = match (&**mshape, &**ishape) {
            ([mn, mc, mh, mw], [inn, ic])
                if *mn as usize == n
                    && *inn as usize == n
                    && mc == ic
                    && *mc > 0
                    && (*mh as usize, *mw as usize) == (h, w) =>
            {
                *mc as usize
            }
            _ => {
                return Err(self.decoder.contract(&format!(
                    "masks {mshape:?} / iou_predictions {ishape:?} do not match {n} prompts at {w}x{h}"
                )));
            }
        };
        // Multimask output: channel 0 is the single-mask token, 1.. the three multimask outputs.
        let first = if c > 1 { 1 } else { 0 };
        let plane = w * h;
        for (i, &(point, _)) in points.iter().enumerate() {
            let logits: Vec<&[f32]> = (first..c)
                .map(|k| &mdata[(i * c + k) * plane..(i * c + k + 1) * plane])
                .collect();
            let iou = &idata[i * c + first..i * c + c];
            filter_masks(&logits, iou, point, w, &self.params, out, stats);
        }
        Ok(())
    }

    /// Automatic mask generation on the working image.
    pub fn segment(&mut self, working_rgb: &RgbImage, rule: &MaskRule) -> Result<Segmentation> {
        let (w, h) = (working_rgb.width() as usize, working_rgb.height() as usize);
        let (embeddings, (nw, nh)) = self.encode(working_rgb)?;
        let points: Vec<(usize, (f32, f32))> = point_grid(self.params.points_per_side)
            .into_iter()
            .map(|(x, y)| {
                // Grid in the working frame, then apply_coords to the resized frame.
                let (px, py) = (x * w as f32, y * h as f32);
                (px * nw as f32 / w as f32, py * nh as f32 / h as f32)
            })
            .enumerate()
            .collect();
        let batch = self
            .fixed_batch
            .map_or(self.params.points_per_batch, |b| {
                b.min(self.params.points_per_batch)
            })
            .max(1);
        let mut stats = SamStats::default();
        let mut candidates = Vec::new();
        for chunk in points.chunks(batch) {
            self.decode_batch(&embeddings, chunk, (w, h), &mut candidates, &mut stats)?;
        }
        let (regions, dropped_small) =
            select_regions(candidates, w, h, &self.params, rule, &mut stats);
        self.last_stats = stats;
        Ok(Segmentation {
            segmenter: self.name.clone(),
            regions,
            dropped_small,
        })
    }
}

/// Size after ResizeLongestSide(1024): (w, h) scaled so the longest side is 1024, rounded.
pub fn resized_size(w: usize, h: usize) -> (usize, usize) {
    let scale = SAM_INPUT as f64 / w.max(h).max(1) as f64;
    let r = |v: usize| ((v as f64 * scale + 0.5) as usize).clamp(1, SAM_INPUT);
    (r(w), r(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_matches_build_point_grid() {
        // build_point_grid(2): offset 0.25 -> (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)
        assert_eq!(
            point_grid(2),
            vec![(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]
        );
        assert_eq!(point_grid(1), vec![(0.5, 0.5)]);
        assert_eq!(resized_size(512, 384), (1024, 768));
        assert_eq!(resized_size(300, 500), (614, 1024));
    }

    #[test]
    fn stability_by_hand() {
        // threshold 0, offset 1: > 1 -> {3, 2}; > -1 -> {3, 2, 0.5, 0, -0.5}
        let l = [3.0, 2.0, 0.5, 0.0, -0.5, -2.0];
        assert!((stability_score(&l, 0.0, 1.0) - 2.0 / 5.0).abs() < 1e-6);
        // offset 0: intersection == union
        assert_eq!(stability_score(&l, 0.0, 0.0), 1.0);
        assert_eq!(stability_score(&[-5.0, -3.0], 0.0, 1.0), 0.0);
    }

    #[test]
    fn boxes_and_iou_by_hand() {
        #[rustfmt::skip]
        let m = [
            false, false, false, false,
            false, true,  true,  false,
            false, true,  false, false,
        ];
        assert_eq!(mask_box(&m, 4), Some([1.0, 1.0, 2.0, 2.0]));
        assert_eq!(mask_box(&[false; 4], 2), None);
        // [0,0,4,4] vs [2,0,6,4]: inter 2*4 = 8, union 16 + 16 - 8 = 24
        let iou = box_iou(&[0.0, 0.0, 4.0, 4.0], &[2.0, 0.0, 6.0, 4.0]);
        assert!((iou - 8.0 / 24.0).abs() < 1e-6);
        assert_eq!(box_iou(&[0.0, 0.0, 1.0, 1.0], &[5.0, 5.0, 6.0, 6.0]), 0.0);
    }

    #[test]
    fn nms_by_hand() {
        let boxes = [
            [0.0, 0.0, 10.0, 10.0],   // 0: score 0.9
            [1.0, 0.0, 11.0, 10.0],   // 1: IoU with 0 = 90/110 = 0.818 -> suppressed at 0.7
            [0.0, 0.0, 10.0, 5.0],    // 2: IoU with 0 = 0.5 -> kept
            [20.0, 20.0, 30.0, 30.0], // 3: disjoint -> kept
        ];
        let scores = [0.9, 0.95, 0.8, 0.5];
        // 1 has the highest score, so it is kept and suppresses 0 (IoU 0.818); 2 vs 1: inter 9*5 = 45,
        // union 100 + 50 - 45 = 105 -> 0.43 kept.
        assert_eq!(nms(&boxes, &scores, 0.7), vec![1, 2, 3]);
        // A looser threshold keeps everything, in score order.
        assert_eq!(nms(&boxes, &scores, 0.9), vec![1, 0, 2, 3]);
    }

    #[test]
    fn filtering_and_selection_by_hand() {
        let p = SamParams {
            pred_iou_thresh: 0.88,
            stability_score_thresh: 0.9,
            stability_score_offset: 1.0,
            box_nms_thresh: 0.7,
            ..SamParams::default()
        };
        let (w, h) = (4, 4);
        // A 2x2 square with sharp logits: stability 1.
        let sharp: Vec<f32> = (0..16)
            .map(|i| {
                if (i % 4) < 2 && (i / 4) < 2 {
                    5.0
                } else {
                    -5.0
                }
            })
            .collect();
        // Same square, flat logits: > 1 nowhere, > -1 at 4 -> stability 0.
        let flat: Vec<f32> = sharp.iter().map(|v| v / 10.0).collect();
        let mut out = Vec::new();
        let mut stats = SamStats::default();
        filter_masks(
            &[&sharp, &flat, &sharp],
            &[0.95, 0.95, 0.5],
            0,
            w,
            &p,
            &mut out,
            &mut stats,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            (stats.decoded, stats.dropped_iou, stats.dropped_stability),
            (3, 1, 1)
        );
        assert_eq!(out[0].bbox, [0.0, 0.0, 1.0, 1.0]);
        // A second prompt yields the same square (suppressed) and a one-pixel mask (too small).
        let mut dot = vec![-5.0f32; 16];
        dot[15] = 5.0;
        filter_masks(
            &[&sharp, &dot],
            &[0.9, 0.99],
            1,
            w,
            &p,
            &mut out,
            &mut stats,
        );
        assert_eq!(out.len(), 3);
        let rule = MaskRule {
            min_area_fraction: 2.0 / 16.0,
        };
        let (regions, dropped) = select_regions(out, w, h, &p, &rule, &mut stats);
        assert_eq!(stats.suppressed, 1);
        assert_eq!(dropped, 1);
        assert_eq!(regions.len(), 1);
        assert_eq!(regions[0].area, 4);
    }
}
