//! The image-level classifier variants (METHOD.md section 2) behind the ONNX contract of
//! section 8: each variant yields a logit, its fused feature map `Fc_i` and Grad-CAM weights `alpha`.
//! Variants that share a model file share one session and one run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ndarray::Array4;
use serde::{Deserialize, Serialize};

use crate::engine::ela::{ElaParams, SignedEla};
use crate::error::{EngineError, Result};
use crate::models::manifest::{ModelEntry, Preprocess};
use crate::models::registry::ResolvedModel;
use crate::models::runtime::{ModelSession, ProviderChoice, check_contract, open_session};

/// One variant's raw outputs.
#[derive(Debug, Clone)]
pub struct VariantOutput {
    pub model: String,
    pub variant: u32,
    pub logit: f32,
    pub probability: f32,
    pub channels: usize,
    pub feature_h: usize,
    pub feature_w: usize,
    /// C x h x w, C-major.
    pub features: Vec<f32>,
    pub alpha: Vec<f32>,
}

/// What the report says about a variant's model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VariantInfo {
    pub model: String,
    pub variant: u32,
    pub file: String,
    pub sha256: String,
    pub status: String,
    pub ela: ElaParams,
}

pub struct Classifier {
    sessions: Vec<ModelSession>,
    /// (entry, sha256, index into `sessions`).
    variants: Vec<(ModelEntry, String, usize)>,
}

impl Classifier {
    /// Open the variants; models sharing a file share a session.
    pub fn open(
        models: &[ResolvedModel],
        provider: ProviderChoice,
        threads: usize,
    ) -> Result<Classifier> {
        if models.is_empty() {
            return Err(EngineError::InvalidParameter(
                "no classifier variant selected".into(),
            ));
        }
        let mut by_file: BTreeMap<PathBuf, usize> = BTreeMap::new();
        let mut sessions = Vec::new();
        let mut variants = Vec::new();
        for m in models {
            if m.entry.role != crate::models::manifest::Role::Classifier {
                return Err(m.entry.contract("it is not a classifier"));
            }
            ela_params(&m.entry)?;
            m.entry
                .variant
                .ok_or_else(|| m.entry.contract("a classifier entry needs `variant`"))?;
            let index = match by_file.get(&m.path) {
                Some(&i) => i,
                None => {
                    let s = open_session(&m.path, provider, threads)?;
                    sessions.push(s);
                    by_file.insert(m.path.clone(), sessions.len() - 1);
                    sessions.len() - 1
                }
            };
            check_contract(&m.entry, &sessions[index].session)?;
            variants.push((m.entry.clone(), m.sha256.clone(), index));
        }
        Ok(Classifier { sessions, variants })
    }

    pub fn provider(&self) -> String {
        self.sessions
            .first()
            .map(|s| s.provider.clone())
            .unwrap_or_default()
    }

    pub fn infos(&self) -> Vec<VariantInfo> {
        self.variants
            .iter()
            .map(|(e, sha, _)| VariantInfo {
                model: e.name.clone(),
                variant: e.variant.unwrap_or_default(),
                file: e.file.clone(),
                sha256: sha.clone(),
                status: e.status.clone(),
                ela: ela_params(e).unwrap_or_default(),
            })
            .collect()
    }

    /// ELA parameters wanted by the variants (one per distinct setting).
    pub fn ela_settings(&self) -> Vec<ElaParams> {
        let mut out: Vec<ElaParams> = Vec::new();
        for (e, _, _) in &self.variants {
            if let Ok(p) = ela_params(e)
                && !out.contains(&p)
            {
                out.push(p);
            }
        }
        out
    }

    /// Run every variant on an image's error levels (keyed by ELA quality and input size).
    pub fn run(
        &mut self,
        ela_by_setting: &BTreeMap<(u8, u32), SignedEla>,
    ) -> Result<Vec<VariantOutput>> {
        let mut outputs = Vec::with_capacity(self.variants.len());
        // Group by (session, preprocessing) so that a shared graph runs once.
        let mut groups: Vec<(usize, ElaParams, Vec<usize>)> = Vec::new();
        for (vi, (entry, _, si)) in self.variants.iter().enumerate() {
            let p = ela_params(entry)?;
            match groups.iter_mut().find(|(s, q, _)| s == si && *q == p) {
                Some(g) => g.2.push(vi),
                None => groups.push((*si, p, vec![vi])),
            }
        }
        for (si, params, members) in groups {
            let ela = ela_by_setting
                .get(&(params.quality, params.size))
                .ok_or_else(|| {
                    EngineError::Other(format!(
                        "no ELA at quality {} / {}px",
                        params.quality, params.size
                    ))
                })?;
            let tensor: Array4<f32> = ela.to_tensor(&params)?;
            let input_name = self.variants[members[0]].0.input.name.clone();
            let value = ort::value::Tensor::from_array(tensor)
                .map_err(|e| EngineError::Runtime(e.to_string()))?;
            let session = &mut self.sessions[si].session;
            let result = session
                .run(ort::inputs![input_name.as_str() => value])
                .map_err(|e| EngineError::Runtime(format!("classifier inference failed: {e}")))?;
            for vi in members {
                let (entry, _, _) = &self.variants[vi];
                outputs.push(extract_variant(entry, &result)?);
            }
        }
        outputs.sort_by_key(|o| o.variant);
        Ok(outputs)
    }
}

fn extract_variant(
    entry: &ModelEntry,
    result: &ort::session::SessionOutputs<'_>,
) -> Result<VariantOutput> {
    let get = |key: &str| -> Result<(Vec<i64>, Vec<f32>)> {
        let name = entry.output(key)?;
        let value = result
            .get(name)
            .ok_or_else(|| entry.contract(&format!("output '{name}' missing")))?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| entry.contract(&format!("output '{name}' is not a float tensor: {e}")))?;
        Ok((shape.iter().copied().collect(), data.to_vec()))
    };
    let (lshape, logit) = get("logit")?;
    let (fshape, features) = get("features")?;
    let (ashape, alpha) = get("alpha")?;
    let (c, h, w) = match fshape.as_slice() {
        [1, c, h, w] if *c > 0 && *h > 0 && *w > 0 => (*c as usize, *h as usize, *w as usize),
        _ => return Err(entry.contract(&format!("features must be [1, C, h, w], got {fshape:?}"))),
    };
    if lshape.iter().product::<i64>() != 1 {
        return Err(entry.contract(&format!("logit must be [1, 1], got {lshape:?}")));
    }
    if ashape.as_slice() != [1, c as i64] {
        return Err(entry.contract(&format!("alpha must be [1, {c}], got {ashape:?}")));
    }
    let z = logit[0];
    if !z.is_finite() || features.iter().any(|v| !v.is_finite()) {
        return Err(entry.contract("the model produced non-finite values"));
    }
    Ok(VariantOutput {
        model: entry.name.clone(),
        variant: entry.variant.unwrap_or_default(),
        logit: z,
        probability: 1.0 / (1.0 + (-z).exp()),
        channels: c,
        feature_h: h,
        feature_w: w,
        features,
        alpha,
    })
}

/// ELA parameters of a classifier: its manifest entry's `signed-ela` preprocessing and input size.
pub fn ela_params(entry: &ModelEntry) -> Result<ElaParams> {
    match &entry.preprocess {
        Preprocess::SignedEla {
            ela_quality,
            ela_scale,
            ..
        } => {
            let size = entry.input_hw()?.0 as u32;
            Ok(ElaParams {
                quality: *ela_quality,
                scale: *ela_scale,
                size,
            })
        }
        _ => Err(entry.contract("a classifier needs preprocess kind signed-ela")),
    }
}
