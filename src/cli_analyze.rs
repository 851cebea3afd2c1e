//! `tamperscope analyze`: images in, maps and figures out.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use tamperscope::colormap::ColorMap;
use tamperscope::output::{STAND_IN_LABEL, record, sanitize, write_maps};
use tamperscope::pipeline::{Engine, Progress};

use crate::cli_common::EngineArgs;

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// Images to analyse.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Output folder: one sub-folder per image with analysis.json and PNG maps.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Colour map of the PNG overlays.
    #[arg(long, default_value = "inferno")]
    pub colormap: ColorMap,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<bool> {
    let registry = args.engine.registry()?;
    let params = args.engine.params()?;
    let mut engine =
        Engine::open(&registry, params.clone()).context("cannot start the analysis engine")?;
    for u in &engine.unavailable {
        eprintln!("note: segmenter {} is not available: {}", u.name, u.reason);
    }
    crate::ensure_dir(&args.out)?;
    let cancel = AtomicBool::new(false);
    let n = args.images.len();
    let mut failures = 0;
    for (i, path) in args.images.iter().enumerate() {
        if n > 1 {
            eprintln!("[{}/{n}] {}", i + 1, path.display());
        }
        let mut progress = |p: Progress| {
            if let Progress::Started {
                stage,
                index,
                total,
            } = p
                && n == 1
            {
                eprintln!("  {index}/{total} {stage}");
            }
        };
        match analyze_one(
            &mut engine,
            path,
            &args.out,
            args.colormap,
            &cancel,
            &mut progress,
        ) {
            Ok(dir) => eprintln!("  -> {}", dir.display()),
            Err(e) => {
                failures += 1;
                eprintln!("error: {}: {e:#}", path.display());
            }
        }
    }
    if failures > 0 {
        eprintln!("{failures} of {n} images failed");
    }
    Ok(failures == 0)
}

fn analyze_one(
    engine: &mut Engine,
    path: &Path,
    out: &Path,
    cmap: ColorMap,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<PathBuf> {
    let analysis = engine.analyze(path, cancel, progress)?;
    let stem = sanitize(
        &path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into()),
    );
    let mut dir = out.join(&stem);
    if dir.exists() {
        // Same name from another folder: keep both, told apart by content hash.
        let existing = std::fs::read_to_string(dir.join("analysis.json")).unwrap_or_default();
        if !existing.contains(&analysis.image.sha256) {
            dir = out.join(format!("{stem}-{}", &analysis.image.sha256[..8]));
        }
    }
    // Build in a hidden folder and move it into place, so a failure leaves no partial result.
    let staging = out.join(format!(
        ".{}.partial-{}",
        dir.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let result = (|| -> anyhow::Result<()> {
        let mut rec = record(
            &analysis,
            &engine.params,
            &engine.segmenter_models,
            &engine.unavailable,
        );
        rec.files = write_maps(&analysis, &staging, cmap)?;
        let json = serde_json::to_vec_pretty(&rec)?;
        tamperscope::imageio::write_atomic(&staging.join("analysis.json"), &json)?;
        print_summary(&rec);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot replace {}", dir.display()))?;
        }
        std::fs::rename(&staging, &dir)
            .with_context(|| format!("cannot move results to {}", dir.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result.map(|_| dir)
}

fn print_summary(rec: &tamperscope::output::AnalysisRecord) {
    let tag = if rec.classifier.status == STAND_IN_LABEL {
        format!(" [{STAND_IN_LABEL}: not a real verdict]")
    } else {
        String::new()
    };
    println!(
        "{} ({}x{}, sha256 {}…){tag}",
        rec.input.info.file_name,
        rec.input.info.width,
        rec.input.info.height,
        &rec.input.info.sha256[..12]
    );
    for v in &rec.classifier.variants {
        println!(
            "  classifier b{}: p = {:.3} ({})",
            v.variant, v.probability, v.verdict
        );
    }
    for s in &rec.segmenters {
        match s.chosen {
            Some(c) => println!(
                "  {}: {} masks, chosen #{c} '{}' S = {:.3}",
                s.name, s.masks, s.regions[c].label, s.regions[c].s
            ),
            None => println!("  {}: no masks", s.name),
        }
    }
    println!("  provider: {}", rec.execution_provider);
}
