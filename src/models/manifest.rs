//! The model manifest (METHOD.md section 8): what each model file is, how to feed it and what it
//! returns. Preprocessing parameters live here, not in code.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    #[serde(rename = "model", default)]
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Classifier,
    SemanticSegmenter,
    SamEncoder,
    SamDecoder,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelEntry {
    pub name: String,
    pub role: Role,
    /// Classifier: the block at which the cross-block attention fuses (2, 3 or 4).
    #[serde(default)]
    pub variant: Option<u32>,
    pub file: String,
    pub sha256: String,
    /// trained | untrained-stand-in | converted | official | test-stand-in
    pub status: String,
    pub licence: String,
    pub source: String,
    #[serde(default)]
    pub provenance: String,
    /// Download address for `models install` (official models).
    #[serde(default)]
    pub url: Option<String>,
    pub input: InputSpec,
    pub preprocess: Preprocess,
    pub outputs: std::collections::BTreeMap<String, String>,
    /// Class names of a semantic segmenter, index = class id.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Class ids never turned into masks (e.g. VOC background).
    #[serde(default)]
    pub ignore_labels: Vec<usize>,
    /// SAM decoders: the `[model.sam]` table (paired encoder, automatic mask generation parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sam: Option<SamManifest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub shape: Vec<i64>,
    pub layout: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Preprocess {
    /// Signed error levels (METHOD.md section 1).
    SignedEla {
        ela_quality: u8,
        ela_scale: f32,
        resize: String,
    },
    /// RGB in [0, 255] -> (x - mean) / std per channel, resized to the input shape.
    Normalize {
        mean: [f32; 3],
        std: [f32; 3],
        resize: String,
    },
}

impl ModelEntry {
    pub fn is_stand_in(&self) -> bool {
        self.status.contains("stand-in")
    }

    /// (height, width) of the input from its NCHW shape.
    pub fn input_hw(&self) -> Result<(usize, usize)> {
        match self.input.shape.as_slice() {
            [_, 3, h, w] if *h > 0 && *w > 0 => Ok((*h as usize, *w as usize)),
            _ => Err(self.contract("input shape must be [N, 3, H, W]")),
        }
    }

    pub fn output(&self, key: &str) -> Result<&str> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.contract(&format!("manifest entry names no '{key}' output")))
    }

    pub fn contract(&self, reason: &str) -> EngineError {
        EngineError::ModelContract {
            name: self.name.clone(),
            reason: reason.to_string(),
        }
    }
}

impl Manifest {
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let m: Manifest = toml::from_str(text).map_err(|e| EngineError::Manifest {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if m.schema != 1 {
            return Err(EngineError::Manifest {
                path: path.to_path_buf(),
                reason: format!("schema {} is not supported (expected 1)", m.schema),
            });
        }
        let mut names = std::collections::HashSet::new();
        for e in &m.models {
            if !names.insert(e.name.as_str()) {
                return Err(EngineError::Manifest {
                    path: path.to_path_buf(),
                    reason: format!("model name '{}' appears twice", e.name),
                });
            }
            if e.file.contains("..") || Path::new(&e.file).is_absolute() {
                return Err(EngineError::Manifest {
                    path: path.to_path_buf(),
                    reason: format!(
                        "model '{}': file must be a relative path inside a model folder",
                        e.name
                    ),
                });
            }
        }
        Ok(m)
    }

    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn get(&self, name: &str) -> Result<&ModelEntry> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| EngineError::UnknownModel(name.to_string()))
    }

    pub fn by_role(&self, role: Role) -> impl Iterator<Item = &ModelEntry> {
        self.models.iter().filter(move |m| m.role == role)
    }
}

/// Manifest value of a model whose publisher gives no sha256.
pub const UNVERIFIED: &str = "unverified";

/// Whether a manifest hash is a real pin.
pub fn is_pinned(sha256: &str) -> bool {
    sha256.len() == 64 && sha256.chars().all(|c| c.is_ascii_hexdigit())
}

// SAM decoders' `[model.sam]` table: plain data the manifest owns; `engine::segment::sam` uses it.

/// Parameters of automatic mask generation (SamAutomaticMaskGenerator's names and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamParams {
    /// Points per side of the prompt grid (points_per_side^2 prompts).
    pub points_per_side: u32,
    /// Prompts per decoder run (capped by a decoder whose batch dimension is fixed).
    pub points_per_batch: usize,
    /// Masks whose predicted IoU is not above this are dropped.
    pub pred_iou_thresh: f32,
    /// Masks whose stability score is below this are dropped.
    pub stability_score_thresh: f32,
    /// Logit offset of the stability score.
    pub stability_score_offset: f32,
    /// Box IoU above which the lower-scored mask is suppressed.
    pub box_nms_thresh: f32,
    /// Logit threshold of a mask.
    pub mask_threshold: f32,
}

impl Default for SamParams {
    fn default() -> Self {
        Self {
            points_per_side: 32,
            points_per_batch: 64,
            pred_iou_thresh: 0.88,
            stability_score_thresh: 0.95,
            stability_score_offset: 1.0,
            box_nms_thresh: 0.7,
            mask_threshold: 0.0,
        }
    }
}

impl SamParams {
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(EngineError::InvalidParameter(format!("SAM {what}")));
        if !(1..=256).contains(&self.points_per_side) {
            return bad("points_per_side must be in 1..=256");
        }
        if self.points_per_batch == 0 {
            return bad("points_per_batch must be at least 1");
        }
        if !(self.box_nms_thresh > 0.0 && self.box_nms_thresh <= 1.0) {
            return bad("box_nms_thresh must be in (0, 1]");
        }
        if !self.stability_score_offset.is_finite() || self.stability_score_offset < 0.0 {
            return bad("stability_score_offset must be >= 0");
        }
        Ok(())
    }
}

/// The `[model.sam]` table of a SAM decoder entry: which encoder it pairs with, and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamManifest {
    /// Manifest name of the image encoder.
    pub encoder: String,
    #[serde(default)]
    pub params: SamParams,
}
