//! `tamperscope eval`: METHOD.md section 7 on a labelled dataset.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use tamperscope::engine::pipeline::Engine;
use tamperscope::outputs::eval::{
    EvalReport, ImageLevel, ImageRecord, PixelAccumulator, image_metrics, maps_to_score,
    read_labels, read_mask,
};
use tamperscope::outputs::output::STAND_IN_LABEL;

use crate::cli::common::EngineArgs;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Dataset folder with labels.csv (image,label,kind,mask).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Where to write the JSON results.
    #[arg(long)]
    pub out: PathBuf,
    /// Only the first N rows (for quick checks; the report records it).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Development sweep: also score the prior and its refined maps for every combination of
    /// these cam weights, compression scales, biases and (optionally) copy-move strengths
    /// ("w,w;s,s;b,b[;c,c]"), under keys grid:<w>:<s>:<b>[:<c>]:... (one pass: the models run
    /// once per image).
    #[arg(long, value_name = "W,..;S,..;B,..[;C,..]", allow_hyphen_values = true)]
    pub prior_grid: Option<String>,
    /// Accepted for older scripts: the copy-move search now runs by default (its map joins the
    /// default prior and its score the verdict).
    #[arg(long, hide = true)]
    pub copy_move: bool,
    /// Skip the copy-move search (about 0.3 s per image): its map ("copymove") and score
    /// ("copy-move") are then not scored, and the prior and verdict go without them.
    #[arg(long, conflicts_with = "copy_move")]
    pub no_copy_move: bool,
    /// How the dataset's masks mark a copy-move: "copy-only" (the pasted copy alone, as CASIA v1
    /// does) or "source-and-copy". Default: the first word of DATASET/mask_convention.txt, else
    /// unstated. Recorded in the JSON: with copy-only masks the copy-move map's correctly found
    /// sources count as false positives.
    #[arg(long, value_parser = ["copy-only", "source-and-copy"])]
    pub mask_convention: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: &EvalArgs) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut rows = read_labels(&args.dataset)?;
    let listed = rows.len();
    if let Some(n) = args.limit {
        rows.truncate(n);
    }
    let (grid, grid_has_copy_move) = match &args.prior_grid {
        Some(g) => parse_grid(g)?,
        None => (Vec::new(), false),
    };
    if grid_has_copy_move && args.no_copy_move {
        anyhow::bail!("--prior-grid with copy-move strengths needs the copy-move search");
    }
    let registry = args.engine.registry()?;
    let mut params = args.engine.params()?;
    if args.no_copy_move {
        params.copy_move = None;
    }
    let mask_convention = args.mask_convention.clone().or_else(|| {
        std::fs::read_to_string(args.dataset.join("mask_convention.txt"))
            .ok()
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
    });
    let mut engine =
        Engine::open(&registry, params.clone()).context("cannot start the analysis engine")?;
    let cancel = AtomicBool::new(false);

    let mut probs: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let mut mean_probs = Vec::new();
    let mut labels = Vec::new();
    let mut kinds = Vec::new();
    let mut pixel: BTreeMap<String, PixelAccumulator> = BTreeMap::new();
    let mut pixel_by_kind: BTreeMap<String, BTreeMap<String, PixelAccumulator>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut per_image = Vec::new();
    let mut stand_in = false;
    for (i, row) in rows.iter().enumerate() {
        let name = row
            .image
            .file_name()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default();
        if std::io::stderr().is_terminal() {
            eprint!("\r[{}/{}] {name}          ", i + 1, rows.len());
        } else if (i + 1) * 10 / rows.len() != i * 10 / rows.len() {
            // A log file gets one plain line per tenth of the work.
            eprintln!("[{}/{}] {name}", i + 1, rows.len());
        }
        let analysis = match engine.analyze(&row.image, &cancel, &mut |_| {}) {
            Ok(a) => a,
            Err(e) => {
                failures.push((row.image.display().to_string(), e.to_string()));
                continue;
            }
        };
        let mut mean = 0f32;
        for v in &analysis.variants {
            stand_in |= v.info.status.contains("stand-in");
            probs
                .entry(format!("b{}", v.info.variant))
                .or_default()
                .push(v.probability);
            mean += v.probability / analysis.variants.len() as f32;
        }
        // Image-level: the compression score alone and the verdict (noisy-OR with the classifier).
        let cscore = analysis.compression.image_score();
        let mut scores = BTreeMap::new();
        scores.insert("compression".to_string(), cscore);
        scores.insert(
            "verdict".to_string(),
            params.verdict(mean, cscore, analysis.copy_move.as_ref()),
        );
        if let Some(cm) = &analysis.copy_move {
            scores.insert("copy-move".to_string(), cm.score);
        }
        for (k, v) in &scores {
            probs.entry(k.clone()).or_default().push(*v);
        }
        mean_probs.push(mean);
        labels.push(row.manipulated);
        kinds.push(row.kind.clone());
        let mut record = ImageRecord {
            image: row
                .image
                .strip_prefix(&args.dataset)
                .unwrap_or(&row.image)
                .display()
                .to_string(),
            manipulated: row.manipulated,
            kind: row.kind.clone(),
            probability: mean,
            pixel_auc: BTreeMap::new(),
            pixel_f1: BTreeMap::new(),
            scores,
        };
        if let (true, Some(mask_path)) = (row.manipulated, &row.mask) {
            let (w, h) = (analysis.fused.width, analysis.fused.height);
            let truth = match read_mask(mask_path, w, h) {
                Ok(t) => t,
                Err(e) => {
                    failures.push((mask_path.display().to_string(), e.to_string()));
                    per_image.push(record);
                    continue;
                }
            };
            let mut maps = maps_to_score(&analysis);
            for rule in &grid {
                let prior = analysis.compression.prior(
                    *rule,
                    &analysis.fused,
                    analysis.copy_move.as_ref().map(|c| &c.map),
                );
                let tag = match rule {
                    tamperscope::engine::pipeline::PriorRule::LogOdds {
                        cam_weight,
                        dq_scale,
                        bias,
                        copy_move_strength,
                    } => {
                        let mut t = format!("grid:{cam_weight}:{dq_scale}:{bias}");
                        if grid_has_copy_move {
                            t.push_str(&format!(":{copy_move_strength}"));
                        }
                        t
                    }
                    _ => "grid:paper".into(),
                };
                for s in &analysis.segmenters {
                    let mut r = s.clone();
                    r.rescore(&prior, s.similarity, None);
                    let map = r.refined.unwrap_or_else(|| prior.clone());
                    maps.push((format!("{tag}:H:{}", s.segmentation.segmenter), map));
                }
                maps.push((format!("{tag}:prior"), prior));
            }
            for (name, map) in maps {
                let acc = pixel.entry(name.clone()).or_default();
                if let Some(a) = acc.add(&map, &truth) {
                    record.pixel_auc.insert(name.clone(), a);
                }
                if let Some(f) = acc.last_f1() {
                    record.pixel_f1.insert(name.clone(), f);
                }
                pixel_by_kind
                    .entry(row.kind.clone())
                    .or_default()
                    .entry(name)
                    .or_default()
                    .add(&map, &truth);
            }
        }
        per_image.push(record);
    }
    eprintln!();

    // Image level by kind: that kind's manipulated images against all authentic ones.
    let mut by_kind = BTreeMap::new();
    let kind_set: std::collections::BTreeSet<&String> = kinds
        .iter()
        .zip(&labels)
        .filter(|(_, l)| **l)
        .map(|(k, _)| k)
        .collect();
    for kind in kind_set {
        let (p, l): (Vec<f32>, Vec<bool>) = mean_probs
            .iter()
            .zip(&labels)
            .zip(&kinds)
            .filter(|((_, l), k)| !**l || *k == kind)
            .map(|((p, l), _)| (*p, *l))
            .unzip();
        by_kind.insert(kind.clone(), image_metrics(&p, &l));
    }
    let overall = image_metrics(&mean_probs, &labels);
    let report = EvalReport {
        schema: "tamperscope.eval/1".into(),
        dataset: args.dataset.display().to_string(),
        mask_convention,
        images_listed: listed,
        images_analysed: labels.len(),
        failures,
        image_level: ImageLevel {
            auc: overall.auc,
            accuracy: overall.accuracy,
            f1: overall.f1,
            images: overall.images,
            variants: probs
                .iter()
                .map(|(k, p)| (k.clone(), image_metrics(p, &labels)))
                .collect(),
            by_kind,
        },
        pixel_level: pixel.iter().map(|(k, a)| (k.clone(), a.finish())).collect(),
        pixel_level_by_kind: pixel_by_kind
            .iter()
            .map(|(kind, m)| {
                (
                    kind.clone(),
                    m.iter().map(|(k, a)| (k.clone(), a.finish())).collect(),
                )
            })
            .collect(),
        classifier_status: if stand_in {
            STAND_IN_LABEL.into()
        } else {
            "trained".into()
        },
        models: engine
            .classifier
            .infos()
            .into_iter()
            .map(|i| (i.model, i.sha256))
            .chain(engine.segmenter_models.iter().cloned())
            .collect(),
        params,
        tool: tamperscope::VERSION.into(),
        seconds: started.elapsed().as_secs_f64(),
        per_image,
    };
    print_table(&report);
    let json = serde_json::to_vec_pretty(&report)?;
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::cli::common::ensure_dir(parent)?;
    }
    tamperscope::engine::imageio::write_atomic(&args.out, &json)?;
    eprintln!("wrote {}", args.out.display());
    Ok(report.failures.is_empty())
}

/// "w,w;s,s;b,b[;c,c]" -> every LogOdds rule of the product, and whether copy-move strengths were
/// given (else they are 0).
fn parse_grid(g: &str) -> anyhow::Result<(Vec<tamperscope::engine::pipeline::PriorRule>, bool)> {
    let parts: Vec<Vec<f32>> = g
        .split(';')
        .map(|p| {
            p.split(',')
                .map(|v| v.trim().parse::<f32>())
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()
        .context(
            "--prior-grid: numbers separated by ',' in three or four groups separated by ';'",
        )?;
    let (w, s, b, c) = match parts.as_slice() {
        [w, s, b] => (w, s, b, None),
        [w, s, b, c] => (w, s, b, Some(c)),
        _ => anyhow::bail!(
            "--prior-grid needs three or four groups: cam weights; dq scales; biases[; copy-move strengths]"
        ),
    };
    let zero = vec![0.0];
    let mut out = Vec::new();
    for &cam_weight in w {
        for &dq_scale in s {
            for &bias in b {
                for &copy_move_strength in c.unwrap_or(&zero) {
                    out.push(tamperscope::engine::pipeline::PriorRule::LogOdds {
                        cam_weight,
                        dq_scale,
                        bias,
                        copy_move_strength,
                    });
                }
            }
        }
    }
    Ok((out, c.is_some()))
}

fn fmt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}"))
        .unwrap_or_else(|| "  -  ".into())
}

fn print_table(r: &EvalReport) {
    let tag = if r.classifier_status == STAND_IN_LABEL {
        format!("  [{STAND_IN_LABEL}]")
    } else {
        String::new()
    };
    println!(
        "dataset {} ({} of {} images analysed){tag}",
        r.dataset, r.images_analysed, r.images_listed
    );
    println!(
        "image level: AUC {}  accuracy {:.3}  F1 {:.3}",
        fmt(r.image_level.auc),
        r.image_level.accuracy,
        r.image_level.f1
    );
    for (k, m) in &r.image_level.variants {
        println!(
            "  {k:<10} AUC {}  accuracy {:.3}  F1 {:.3}",
            fmt(m.auc),
            m.accuracy,
            m.f1
        );
    }
    for (k, m) in &r.image_level.by_kind {
        println!("  {k:<10} AUC {}  (vs all authentic)", fmt(m.auc));
    }
    println!(
        "pixel level ({} manipulated images with masks):",
        r.pixel_level.get("fused").map(|m| m.images).unwrap_or(0)
    );
    println!(
        "  {:<44} {:>6} {:>6} {:>6} {:>8}",
        "map", "AUC", "±SE", "F1@.5", "pooledAUC"
    );
    for (k, m) in &r.pixel_level {
        println!(
            "  {k:<44} {:>6} {:>6} {:>6} {:>8}",
            fmt(m.auc),
            fmt(m.auc_se),
            fmt(m.f1),
            fmt(m.auc_pooled)
        );
    }
    if !r.failures.is_empty() {
        println!("{} failures:", r.failures.len());
        for (p, e) in &r.failures {
            println!("  {p}: {e}");
        }
    }
}
