//! Options shared by the subcommands that run the models.

use std::path::PathBuf;

use anyhow::{Context, bail};

use tamperscope::engine::pipeline::AnalysisParams;
use tamperscope::engine::similarity::SimilarityVariant;
use tamperscope::models::registry::Registry;
use tamperscope::models::runtime::ProviderChoice;

#[derive(clap::Args, Clone, Debug)]
pub struct EngineArgs {
    /// Extra model folder searched first (also $TAMPERSCOPE_MODELS).
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Model manifest to use instead of the shipped models/manifest.toml.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// SAM automatic mask generation: points per side of the prompt grid (default: the manifest's).
    #[arg(long, value_name = "N")]
    pub sam_points_per_side: Option<u32>,
    /// Classifier variant to run (manifest name; repeat for several). Default: all installed.
    #[arg(long = "classifier", value_name = "NAME")]
    pub classifiers: Vec<String>,
    /// Segmenter to run (manifest name or "felzenszwalb"; repeat). Default: all installed.
    #[arg(long = "segmenter", value_name = "NAME")]
    pub segmenters: Vec<String>,
    /// Similarity of METHOD.md section 5: paper or normalized.
    #[arg(long, default_value = "paper")]
    pub similarity: SimilarityVariant,
    /// Regions smaller than this fraction of the image are dropped.
    #[arg(long, default_value_t = 0.01)]
    pub min_area: f32,
    /// Longest side of the working resolution.
    #[arg(long, default_value_t = 512)]
    pub working_size: u32,
    /// Execution provider: auto (CUDA if present, else CPU), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub provider: ProviderChoice,
    /// Threads per inference session (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Prior of the similarity and refinement: "dq" (A and the compression evidence, the
    /// default) or "paper" (A alone, the paper's configuration).
    #[arg(long, default_value = "dq", value_parser = ["dq", "paper"])]
    pub prior: String,
    /// Weight of logit(A) in the "dq" prior.
    #[arg(long, default_value_t = tamperscope::engine::pipeline::DEFAULT_CAM_WEIGHT)]
    pub cam_weight: f32,
    /// Scale of the compression log-odds in the "dq" prior.
    #[arg(long, default_value_t = tamperscope::engine::pipeline::DEFAULT_DQ_SCALE)]
    pub dq_scale: f32,
    /// Prior log-odds of "manipulated" in the "dq" prior (negative: a pixel without evidence
    /// leans authentic).
    #[arg(long, default_value_t = tamperscope::engine::pipeline::DEFAULT_PRIOR_BIAS, allow_hyphen_values = true)]
    pub prior_bias: f32,
    /// Least probability of the "dq" prior where the copy-move map marks a source or a copy
    /// (noisy-OR; 0 = copy-move stays out of the prior).
    #[arg(long, default_value_t = tamperscope::engine::pipeline::DEFAULT_COPY_MOVE_STRENGTH)]
    pub copy_move_strength: f32,
    /// A-DJPG: zig-zag frequencies examined (METHOD.md section 9, K).
    #[arg(long, default_value_t = 36)]
    pub dq_frequencies: usize,
    /// A-DJPG / NA-DJPG: box smoothing of the block log-likelihood ratios, in blocks (s).
    #[arg(long, default_value_t = 5)]
    pub dq_smooth: usize,
    /// A-DJPG: least summed gain, in nats per block, for the image to count as carrying a trace
    /// (0 = the prototype's per-frequency guard alone).
    #[arg(long, default_value_t = 0.15)]
    pub dq_min_gain: f64,
    /// Combined compression map: when at least this share leans tampered, reference its log-odds
    /// to this quantile instead of the median (0 = the median always).
    #[arg(long, default_value_t = 0.9)]
    pub dq_weak_quantile: f64,
    /// Combined compression map: average P(tampered) within Felzenszwalb superpixels of this
    /// scale k, so that it follows image edges (0 = off).
    #[arg(long, default_value_t = 50.0)]
    pub dq_superpixel_k: f32,
}

impl EngineArgs {
    pub fn registry(&self) -> anyhow::Result<Registry> {
        match &self.manifest {
            Some(m) => Ok(Registry::with_manifest(m, self.models.as_deref())?),
            None => Ok(Registry::open(self.models.as_deref())?),
        }
    }

    pub fn params(&self) -> anyhow::Result<AnalysisParams> {
        if !(0.0..1.0).contains(&self.min_area) {
            anyhow::bail!("--min-area must be in [0, 1)");
        }
        if !(16..=8192).contains(&self.working_size) {
            anyhow::bail!("--working-size must be in 16..=8192");
        }
        if !(0.0..=10.0).contains(&self.cam_weight) {
            anyhow::bail!("--cam-weight must be in [0, 10]");
        }
        if !(0.0..=10.0).contains(&self.dq_scale) {
            anyhow::bail!("--dq-scale must be in [0, 10]");
        }
        if !(-20.0..=20.0).contains(&self.prior_bias) {
            anyhow::bail!("--prior-bias must be in [-20, 20]");
        }
        if !(0.0..=1.0).contains(&self.copy_move_strength) {
            anyhow::bail!("--copy-move-strength must be in [0, 1]");
        }
        if !(1..=64).contains(&self.dq_frequencies) {
            anyhow::bail!("--dq-frequencies must be in 1..=64");
        }
        if !(1..=31).contains(&self.dq_smooth) {
            anyhow::bail!("--dq-smooth must be in 1..=31");
        }
        if !(0.0..=100.0).contains(&self.dq_min_gain) {
            anyhow::bail!("--dq-min-gain must be in [0, 100]");
        }
        if !(0.5..1.0).contains(&self.dq_weak_quantile) && self.dq_weak_quantile != 0.0 {
            anyhow::bail!("--dq-weak-quantile must be 0 (off) or in [0.5, 1)");
        }
        if !(0.0..=100_000.0).contains(&self.dq_superpixel_k) {
            anyhow::bail!("--dq-superpixel-k must be in [0, 100000]");
        }
        let prior = if self.prior == "paper" {
            tamperscope::engine::pipeline::PriorRule::Paper
        } else {
            tamperscope::engine::pipeline::PriorRule::LogOdds {
                cam_weight: self.cam_weight,
                dq_scale: self.dq_scale,
                bias: self.prior_bias,
                copy_move_strength: self.copy_move_strength,
            }
        };
        let compression = tamperscope::engine::compression::CompressionParams {
            adjpg_frequencies: self.dq_frequencies,
            smooth_blocks: self.dq_smooth,
            adjpg_min_gain_per_block: self.dq_min_gain,
            weak_trace_quantile: self.dq_weak_quantile,
            superpixel_k: self.dq_superpixel_k,
            ..Default::default()
        };
        let mut p = AnalysisParams {
            prior,
            compression,
            classifiers: self.classifiers.clone(),
            segmenters: self.segmenters.clone(),
            working_max_side: self.working_size,
            similarity: self.similarity,
            provider: self.provider,
            threads: self.threads,
            ..AnalysisParams::default()
        };
        p.mask_rule.min_area_fraction = self.min_area;
        if let Some(n) = self.sam_points_per_side {
            let sam = tamperscope::engine::segment::sam::SamParams {
                points_per_side: n,
                ..Default::default()
            };
            sam.validate()?;
            p.sam = Some(sam);
        }
        Ok(p)
    }
}

/// Creates `dir` (and its parents) unless it exists; refuses a path that is not a folder.
pub fn ensure_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{} exists and is not a directory", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
