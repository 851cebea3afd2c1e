//! Options shared by the subcommands that run the models.

use std::path::PathBuf;

use tamperscope::pipeline::AnalysisParams;
use tamperscope::registry::Registry;
use tamperscope::runtime::ProviderChoice;
use tamperscope::similarity::SimilarityVariant;

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
        let mut p = AnalysisParams {
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
            let sam = tamperscope::segment::sam::SamParams {
                points_per_side: n,
                ..Default::default()
            };
            sam.validate()?;
            p.sam = Some(sam);
        }
        Ok(p)
    }
}
