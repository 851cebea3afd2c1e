//! Semantic segmenters (DeepLab, PSPNet): normalised NCHW input, class logits out; one mask per
//! connected component of each class (METHOD.md section 4).

use image::RgbImage;
use ndarray::Array4;

use super::{MaskRule, Segmentation, components_of_labels};
use crate::engine::raster::resize_bilinear;
use crate::error::{EngineError, Result};
use crate::models::manifest::{ModelEntry, Preprocess, Role};
use crate::models::registry::ResolvedModel;
use crate::models::runtime::{ModelSession, ProviderChoice, check_contract, open_session};

pub struct SemanticSegmenter {
    pub entry: ModelEntry,
    pub sha256: String,
    session: ModelSession,
}

impl SemanticSegmenter {
    pub fn open(model: &ResolvedModel, provider: ProviderChoice, threads: usize) -> Result<Self> {
        if model.entry.role != Role::SemanticSegmenter {
            return Err(model.entry.contract("it is not a semantic segmenter"));
        }
        if model.entry.labels.is_empty() {
            return Err(model
                .entry
                .contract("a semantic segmenter needs its label set in the manifest"));
        }
        model.entry.output("logits")?;
        model.entry.input_hw()?;
        let session = open_session(&model.path, provider, threads)?;
        check_contract(&model.entry, &session.session)?;
        Ok(Self {
            entry: model.entry.clone(),
            sha256: model.sha256.clone(),
            session,
        })
    }

    pub fn name(&self) -> &str {
        &self.entry.name
    }

    pub fn provider(&self) -> &str {
        &self.session.provider
    }

    /// The input tensor: RGB resized (bilinear) to the model's input, then (x - mean) / std.
    pub fn input_tensor(&self, rgb: &RgbImage) -> Result<Array4<f32>> {
        let (ih, iw) = self.entry.input_hw()?;
        let Preprocess::Normalize { mean, std, .. } = &self.entry.preprocess else {
            return Err(self
                .entry
                .contract("a semantic segmenter needs preprocess kind normalize"));
        };
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let mut t = Array4::<f32>::zeros((1, 3, ih, iw));
        for c in 0..3 {
            let plane: Vec<f32> = rgb.pixels().map(|p| p.0[c] as f32).collect();
            let resized = resize_bilinear(&plane, w, h, iw, ih);
            for (dst, v) in t
                .slice_mut(ndarray::s![0, c, .., ..])
                .iter_mut()
                .zip(resized)
            {
                *dst = (v - mean[c]) / std[c];
            }
        }
        Ok(t)
    }

    /// Per-pixel class at the working size: logits upsampled bilinearly, then argmax.
    pub fn label_map(&mut self, working_rgb: &RgbImage) -> Result<Vec<u32>> {
        let tensor = self.input_tensor(working_rgb)?;
        let input = ort::value::Tensor::from_array(tensor)
            .map_err(|e| EngineError::Runtime(e.to_string()))?;
        let out_name = self.entry.output("logits")?.to_string();
        let result = self
            .session
            .session
            .run(ort::inputs![self.entry.input.name.as_str() => input])
            .map_err(|e| {
                EngineError::Runtime(format!("{} inference failed: {e}", self.entry.name))
            })?;
        let value = result
            .get(&out_name)
            .ok_or_else(|| self.entry.contract(&format!("output '{out_name}' missing")))?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(|e| {
            self.entry
                .contract(&format!("logits are not a float tensor: {e}"))
        })?;
        let (classes, lh, lw) = match **shape {
            [1, c, h, w] if c > 0 && h > 0 && w > 0 => (c as usize, h as usize, w as usize),
            _ => {
                return Err(self
                    .entry
                    .contract(&format!("logits must be [1, classes, H, W], got {shape:?}")));
            }
        };
        if classes != self.entry.labels.len() {
            return Err(self.entry.contract(&format!(
                "the model has {classes} classes, the manifest lists {} labels",
                self.entry.labels.len()
            )));
        }
        let (w, h) = (working_rgb.width() as usize, working_rgb.height() as usize);
        let mut best = vec![f32::NEG_INFINITY; w * h];
        let mut labels = vec![0u32; w * h];
        for c in 0..classes {
            let up = resize_bilinear(&data[c * lh * lw..(c + 1) * lh * lw], lw, lh, w, h);
            for (i, v) in up.into_iter().enumerate() {
                if v > best[i] {
                    best[i] = v;
                    labels[i] = c as u32;
                }
            }
        }
        Ok(labels)
    }

    pub fn segment(&mut self, working_rgb: &RgbImage, rule: &MaskRule) -> Result<Segmentation> {
        let labels = self.label_map(working_rgb)?;
        let (w, h) = (working_rgb.width() as usize, working_rgb.height() as usize);
        let ignore: Vec<u32> = self.entry.ignore_labels.iter().map(|&l| l as u32).collect();
        let names = &self.entry.labels;
        let (regions, dropped_small) =
            components_of_labels(&labels, w, h, &ignore, rule.min_pixels(w, h), |l| {
                names
                    .get(l as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("class {l}"))
            });
        Ok(Segmentation {
            segmenter: self.entry.name.clone(),
            regions,
            dropped_small,
        })
    }
}
