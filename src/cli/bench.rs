//! `tamperscope bench`: per-stage median times over N runs, and peak memory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use tamperscope::engine::cam::{geometric_mean, grad_cam};
use tamperscope::engine::pipeline::{Engine, score_and_refine};

use crate::cli::common::EngineArgs;

#[derive(clap::Args)]
pub struct BenchArgs {
    pub image: PathBuf,
    /// Timed runs (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Also write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Time only the load and the compression-history stages (no model, ELA or segmenter).
    #[arg(long)]
    pub compression_only: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Median wall time of libjpeg-turbo's command-line round trip (decode, encode at quality 90,
/// decode; one thread each, piped), or `None` when the tools are absent or fail on the file.
fn cli_round_trip_ms(image: &std::path::Path, runs: usize) -> Option<f64> {
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let status = std::process::Command::new("sh")
            .args([
                "-c",
                "djpeg -ppm \"$1\" | cjpeg -quality 90 | djpeg -ppm > /dev/null",
                "sh",
            ])
            .arg(image)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Some(times[times.len() / 2])
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn run(args: &BenchArgs) -> anyhow::Result<bool> {
    let registry = args.engine.registry()?;
    let params = args.engine.params()?;
    let mut engine = Engine::open(&registry, params).context("cannot start the analysis engine")?;
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut record = |name: &str, ms: f64, samples: &mut BTreeMap<String, Vec<f64>>| {
        if !order.iter().any(|o| o == name) {
            order.push(name.to_string());
        }
        samples.entry(name.to_string()).or_default().push(ms);
    };
    let mut info = None;
    for run in 0..=args.runs {
        let mut times: Vec<(String, f64)> = Vec::new();
        let mut clock = |name: &str, t: Instant| {
            times.push((name.to_string(), t.elapsed().as_secs_f64() * 1e3))
        };
        let t = Instant::now();
        let image = engine.load(&args.image)?;
        clock("load+decode", t);
        info.get_or_insert_with(|| image.info.clone());
        // Compression-history evidence, stage by stage (the pipeline runs them as one).
        if let Some(bytes) = &image.jpeg_bytes {
            let t = Instant::now();
            let coefs = tamperscope::engine::jpeg::read_coefficients(bytes);
            clock("compression: read coefficients", t);
            if let Ok(coefs) = coefs {
                let p = &engine.params.compression;
                let t = Instant::now();
                let _ = tamperscope::engine::compression::adjpg(&coefs, p);
                clock("compression: A-DJPG", t);
                let t = Instant::now();
                let _ = tamperscope::engine::compression::na_djpg(&coefs, p);
                clock("compression: NA-DJPG", t);
            }
        }
        if args.compression_only {
            if run > 0 {
                for (n, ms) in times {
                    record(&n, ms, &mut samples);
                }
            }
            continue;
        }
        let t = Instant::now();
        let prepared = engine.prepare(image)?;
        clock("working image + ELA", t);
        // The combined compression map's edge step runs at the working size (docs/compression.md).
        let k = engine.params.compression.superpixel_k;
        if prepared.image.jpeg_bytes.is_some() && k > 0.0 {
            let t = Instant::now();
            let _ = tamperscope::engine::segment::felzenszwalb::superpixels(
                &prepared.working,
                k,
                tamperscope::engine::compression::SUPERPIXEL_MIN_PIXELS,
            );
            clock("compression: superpixels (working size)", t);
        }
        let (w, h) = (
            prepared.working.width() as usize,
            prepared.working.height() as usize,
        );
        let t = Instant::now();
        let outputs = engine.classifier.run(&prepared.ela)?;
        clock("classifier inference", t);
        let t = Instant::now();
        let cams: Vec<_> = outputs
            .iter()
            .map(|o| {
                grad_cam(
                    &o.features,
                    o.channels,
                    o.feature_h,
                    o.feature_w,
                    &o.alpha,
                    w,
                    h,
                )
            })
            .collect();
        let fused = geometric_mean(&cams.iter().collect::<Vec<_>>()).context("CAM sizes differ")?;
        clock("CAM + fusion", t);
        let rule = engine.params.mask_rule;
        let similarity = engine.params.similarity;
        for s in &mut engine.segmenters {
            let name = s.name().to_string();
            let t = Instant::now();
            let seg = s.segment(&prepared.working, &rule)?;
            clock(&format!("segment: {name}"), t);
            let t = Instant::now();
            let r = score_and_refine(seg, &fused, similarity, None);
            clock(
                &format!("similarity+refine: {name} ({} masks)", r.scores.len()),
                t,
            );
        }
        // The copy-move search (issue 15) runs on the working image, as in `analyze`.
        if let Some(p) = &engine.params.copy_move {
            let t = Instant::now();
            let cm = tamperscope::engine::pipeline::copy_move_evidence(&prepared, p);
            clock(&format!("copy-move ({} regions)", cm.regions.len()), t);
        }
        if run > 0 {
            for (n, ms) in times {
                record(&n, ms, &mut samples);
            }
        }
    }
    let median = |v: &Vec<f64>| {
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let info = info.context("no run")?;
    println!(
        "bench {} ({}x{}, {:.1} MP), working size max {}, {} runs, provider {}",
        args.image.display(),
        info.width,
        info.height,
        (info.width as f64 * info.height as f64) / 1e6,
        engine.params.working_max_side,
        args.runs,
        engine.classifier.provider()
    );
    let mut total = 0.0;
    let mut non_model = 0.0;
    let mut rows = Vec::new();
    for name in &order {
        let m = median(&samples[name]);
        total += m;
        // Model inference: the classifier and model-based segmenters.
        let is_model = name == "classifier inference"
            || (name.starts_with("segment: ") && !name.ends_with("felzenszwalb"));
        if !is_model {
            non_model += m;
        }
        println!(
            "  {name:<52} {m:>9.1} ms{}",
            if is_model { "  (model)" } else { "" }
        );
        rows.push(serde_json::json!({"stage": name, "median_ms": m, "model_inference": is_model}));
    }
    let peak = peak_rss_mib();
    println!("  {:<52} {total:>9.1} ms", "total");
    println!(
        "  {:<52} {non_model:>9.1} ms",
        "total without model inference"
    );
    // The yardstick of issue 14: what the JPEG codec itself costs for the ELA's work, in the
    // same run on the same file, when libjpeg-turbo's command-line tools are installed.
    let yardstick = if args.compression_only {
        None
    } else {
        cli_round_trip_ms(&args.image, args.runs)
    };
    let jpeg_layer: f64 = ["load+decode", "working image + ELA"]
        .iter()
        .filter_map(|n| samples.get(*n).map(median))
        .sum();
    match yardstick {
        Some(y) => {
            println!(
                "  {:<52} {y:>9.1} ms",
                "yardstick: djpeg | cjpeg -quality 90 | djpeg"
            );
            println!(
                "  {:<52} {:>9.2} x",
                "load+decode + ELA / yardstick",
                jpeg_layer / y
            );
            println!(
                "  {:<52} {:>9.2} x",
                "total without model inference / yardstick",
                non_model / y
            );
        }
        None if !args.compression_only => println!(
            "  yardstick: libjpeg-turbo's djpeg/cjpeg not found (apt install libjpeg-turbo-progs)"
        ),
        None => {}
    }
    if let Some(p) = peak {
        println!("  peak resident memory {p:.0} MiB");
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "image": args.image.display().to_string(), "width": info.width, "height": info.height,
            "runs": args.runs, "provider": engine.classifier.provider(), "stages": rows,
            "total_ms": total, "total_without_models_ms": non_model, "peak_rss_mib": peak,
            "tool": tamperscope::VERSION, "threads": engine.params.threads,
            "yardstick_cli_round_trip_ms": yardstick, "load_decode_ela_ms": jpeg_layer,
        });
        tamperscope::engine::imageio::write_atomic(path, &serde_json::to_vec_pretty(&doc)?)?;
    }
    Ok(true)
}
