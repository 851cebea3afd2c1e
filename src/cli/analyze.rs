//! `tamperscope analyze`: images (or folder trees of images) in, maps, figures and reports out.
//!
//! Batch behaviour: every finished image appends one line to `OUT/index.jsonl` (one `write` on a
//! file opened for appending, then fsync), so that an interrupted run resumes where it stopped:
//! an input whose sha256 already has a complete result listed there is skipped (`--force` redoes
//! it). `OUT/summary.csv` ranks every result by mean manipulation probability and lists the
//! inputs that failed, with their error.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tamperscope::engine::pipeline::{Engine, Progress};
use tamperscope::models::registry::Registry;
use tamperscope::outputs::colormap::ColorMap;
use tamperscope::outputs::output::{STAND_IN_LABEL, record, sanitize, write_maps};
use tamperscope::outputs::report::{
    Annotations, Bookmark, build_report, figures, render_html, render_pdf,
};

use crate::cli::common::EngineArgs;

/// Extensions of the images a folder is searched for (case-insensitive).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp"];
pub const INDEX_FILE: &str = "index.jsonl";
pub const SUMMARY_FILE: &str = "summary.csv";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Pdf,
    Html,
    Json,
}

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// Images to analyse, or folders of images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Output folder: one sub-folder per image with analysis.json, PNG maps and reports.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Search folders given as inputs recursively.
    #[arg(long, short)]
    pub recursive: bool,
    /// Reports to write beside each result: pdf, html, json (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub report: Vec<ReportFormat>,
    /// Analyst's notes to put in the reports.
    #[arg(long)]
    pub notes: Option<String>,
    /// A bookmarked view to render in the reports, as JSON:
    /// '{"caption":"…","layers":["fused","chosen:felzenszwalb"],"opacity":0.6,"zoom":2,"center":[0.5,0.5]}'.
    #[arg(long = "bookmark", value_name = "JSON")]
    pub bookmarks: Vec<String>,
    /// Redo inputs that already have a result, and overwrite existing reports.
    #[arg(long)]
    pub force: bool,
    /// Images analysed in parallel, each by its own engine (ONNX Runtime threads = cores / N).
    #[arg(long, short, default_value_t = 1)]
    pub jobs: usize,
    /// Colour map of the PNG overlays and report figures.
    #[arg(long, default_value = "inferno")]
    pub colormap: ColorMap,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// One line of `index.jsonl`: a finished image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexEntry {
    pub sha256: String,
    pub input: String,
    /// Result folder, relative to the output folder.
    pub dir: String,
    /// The classifier variants' mean probability.
    pub mean_probability: f32,
    /// The verdict of classifier and compression evidence together (the classifier's alone in
    /// index files written before the compression evidence).
    pub verdict: String,
    /// `1 - (1 - classifier)(1 - compression score)`; absent in older index files.
    #[serde(default)]
    pub verdict_probability: Option<f32>,
    pub classifier_status: String,
    /// Report files written in `dir`.
    pub reports: Vec<String>,
    pub finished_utc: String,
}

struct Input {
    path: PathBuf,
    /// Name of its result folder.
    name: String,
}

enum Outcome {
    Done(IndexEntry),
    Skipped(IndexEntry),
    Failed(String),
}

struct Message {
    input: PathBuf,
    outcome: Outcome,
}

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn walk(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recursive {
                walk(&p, recursive, out)?;
            }
        } else if is_image(&p) {
            out.push(p);
        }
    }
    Ok(())
}

fn expand_inputs(args: &AnalyzeArgs) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for arg in &args.images {
        if arg.is_dir() {
            let mut found = Vec::new();
            walk(arg, args.recursive, &mut found)?;
            for p in found {
                let rel = p.strip_prefix(arg).unwrap_or(&p).with_extension("");
                let name = rel
                    .components()
                    .map(|c| sanitize(&c.as_os_str().to_string_lossy()))
                    .collect::<Vec<_>>()
                    .join("__");
                inputs.push(Input { path: p, name });
            }
        } else {
            let name = sanitize(
                &arg.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "image".into()),
            );
            inputs.push(Input {
                path: arg.clone(),
                name,
            });
        }
    }
    Ok(inputs)
}

/// Entries of the index whose result folder is complete, by sha256 (the last one wins).
pub fn read_index(out: &Path) -> BTreeMap<String, IndexEntry> {
    let mut done = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(out.join(INDEX_FILE)) else {
        return done;
    };
    for line in text.lines() {
        // A line cut short by a crash does not parse and is ignored.
        let Ok(e) = serde_json::from_str::<IndexEntry>(line) else {
            continue;
        };
        let dir = out.join(&e.dir);
        let complete =
            dir.join("analysis.json").is_file() && e.reports.iter().all(|r| dir.join(r).is_file());
        if complete {
            done.insert(e.sha256.clone(), e);
        }
    }
    done
}

fn append_index(out: &Path, e: &IndexEntry) -> anyhow::Result<()> {
    let path = out.join(INDEX_FILE);
    let mut line = serde_json::to_vec(e)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // One write of a whole line on an O_APPEND file: lines never interleave.
    f.write_all(&line)
        .and_then(|_| f.sync_data())
        .with_context(|| format!("cannot append to {}", path.display()))
}

/// Staging folders left by a run that was killed (its process is gone) are removed; those of a
/// run still going (another process writing to the same folder) are left alone.
fn remove_stale_staging(out: &Path) {
    let proc_fs = Path::new("/proc/self").exists();
    let Ok(rd) = std::fs::read_dir(out) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .split(".partial-")
            .nth(1)
            .filter(|_| name.starts_with('.'))
        else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        let alive = !proc_fs || Path::new("/proc").join(pid).exists();
        if !alive && pid.chars().all(|c| c.is_ascii_digit()) {
            let _ = if e.path().is_dir() {
                std::fs::remove_dir_all(e.path())
            } else {
                std::fs::remove_file(e.path())
            };
        }
    }
}

/// One CSV field; line breaks (in error messages) become spaces, so that one row is one line.
fn csv_field(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let s = s.trim();
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_summary(
    out: &Path,
    done: &BTreeMap<String, IndexEntry>,
    failed: &[(String, String)],
) -> anyhow::Result<()> {
    let mut rows: Vec<&IndexEntry> = done.values().collect();
    let key = |e: &IndexEntry| e.verdict_probability.unwrap_or(e.mean_probability);
    rows.sort_by(|a, b| key(b).total_cmp(&key(a)));
    let mut s = String::from(
        "rank,input,sha256,verdict_probability,mean_probability,verdict,classifier_status,result,reports,error\n",
    );
    for (i, e) in rows.iter().enumerate() {
        s.push_str(&format!(
            "{},{},{},{},{:.6},{},{},{},{},\n",
            i + 1,
            csv_field(&e.input),
            e.sha256,
            e.verdict_probability
                .map(|p| format!("{p:.6}"))
                .unwrap_or_default(),
            e.mean_probability,
            csv_field(&e.verdict),
            csv_field(&e.classifier_status),
            csv_field(&e.dir),
            csv_field(
                &e.reports
                    .iter()
                    .map(|r| format!("{}/{r}", e.dir))
                    .collect::<Vec<_>>()
                    .join(";")
            ),
        ));
    }
    for (input, err) in failed {
        s.push_str(&format!(
            ",{},,,,failed,,,,{}\n",
            csv_field(input),
            csv_field(err)
        ));
    }
    tamperscope::engine::imageio::write_atomic(&out.join(SUMMARY_FILE), s.as_bytes())?;
    Ok(())
}

fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn progress_bar(done: usize, total: usize, name: &str, started: Instant, worked: usize) {
    const W: usize = 24;
    let filled = (done * W).checked_div(total).unwrap_or(W);
    let eta = if worked > 0 {
        let per = started.elapsed().as_secs_f64() / worked as f64;
        format!("eta {}", fmt_secs(per * (total - done) as f64))
    } else {
        "eta -".into()
    };
    let name: String = name
        .chars()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if std::io::stderr().is_terminal() {
        eprint!(
            "\r[{}{}] {done}/{total} {name} {eta}\x1b[K",
            "#".repeat(filled),
            "-".repeat(W - filled)
        );
        let _ = std::io::stderr().flush();
    } else if done == total || (done * 10 / total.max(1)) != ((done.max(1) - 1) * 10 / total.max(1))
    {
        // A log file gets one plain line per tenth of the work, not a carriage-return stream.
        eprintln!("{done}/{total} {name} {eta}");
    }
}

fn parse_annotations(args: &AnalyzeArgs) -> anyhow::Result<Annotations> {
    let bookmarks = args
        .bookmarks
        .iter()
        .map(|b| serde_json::from_str::<Bookmark>(b).with_context(|| format!("bad --bookmark {b}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Annotations {
        notes: args.notes.clone().unwrap_or_default(),
        bookmarks,
    })
}

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<bool> {
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let annotations = parse_annotations(args)?;
    let registry = args.engine.registry()?;
    let mut params = args.engine.params()?;
    if params.threads == 0 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        params.threads = (cores / args.jobs).max(1);
    }
    let inputs = expand_inputs(args)?;
    if inputs.is_empty() {
        bail!(
            "no images found (extensions: {})",
            IMAGE_EXTENSIONS.join(", ")
        );
    }
    crate::cli::common::ensure_dir(&args.out)?;
    remove_stale_staging(&args.out);
    let previous = read_index(&args.out);
    let mut finished: BTreeMap<String, IndexEntry> = BTreeMap::new();
    let total = inputs.len();
    let jobs = args.jobs.min(total);
    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let claimed = Mutex::new(HashSet::<PathBuf>::new());
    let (tx, rx) = mpsc::channel::<Message>();
    let started = Instant::now();
    let bar = total > 1;
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut engine_error: Option<anyhow::Error> = None;
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for _ in 0..jobs {
            let tx = tx.clone();
            let (registry, params, inputs, next, cancel, claimed, done, annotations) = (
                &registry,
                params.clone(),
                &inputs,
                &next,
                &cancel,
                &claimed,
                &previous,
                &annotations,
            );
            handles.push(scope.spawn(move || -> anyhow::Result<()> {
                let mut engine =
                    Engine::open(registry, params).context("cannot start the analysis engine")?;
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(input) = inputs.get(i) else {
                        return Ok(());
                    };
                    let outcome = match process(
                        &mut engine,
                        registry,
                        input,
                        args,
                        done,
                        claimed,
                        annotations,
                        cancel,
                        total == 1,
                    ) {
                        Ok(o) => o,
                        Err(e) => Outcome::Failed(format!("{e:#}")),
                    };
                    if tx
                        .send(Message {
                            input: input.path.clone(),
                            outcome,
                        })
                        .is_err()
                    {
                        return Ok(());
                    }
                }
            }));
        }
        drop(tx);
        let mut count = 0;
        let mut worked = 0;
        let mut warned = false;
        for msg in rx {
            count += 1;
            let shown = msg.input.display().to_string();
            match msg.outcome {
                Outcome::Done(e) => {
                    worked += 1;
                    if let Err(err) = append_index(&args.out, &e) {
                        failed.push((shown.clone(), format!("{err:#}")));
                    }
                    if !bar {
                        eprintln!("  -> {}", args.out.join(&e.dir).display());
                    }
                    finished.insert(e.sha256.clone(), e);
                }
                Outcome::Skipped(e) => {
                    if !bar {
                        eprintln!("{shown}: already analysed in {} (--force to redo)", e.dir);
                    }
                }
                Outcome::Failed(err) => {
                    // Most engine errors already name the file; do not name it twice.
                    let line = if err.contains(&shown) {
                        format!("error: {err}")
                    } else {
                        format!("error: {shown}: {err}")
                    };
                    if bar && std::io::stderr().is_terminal() {
                        eprintln!("\r{line}\x1b[K");
                    } else {
                        eprintln!("{line}");
                    }
                    failed.push((shown.clone(), err));
                }
            }
            if bar {
                progress_bar(count, total, &shown, started, worked);
                warned = true;
            }
        }
        if warned {
            eprintln!();
        }
        for h in handles {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    engine_error.get_or_insert(e);
                }
                Err(_) => {
                    engine_error.get_or_insert(anyhow::anyhow!("an analysis thread panicked"));
                }
            }
        }
    });
    if let Some(e) = engine_error {
        return Err(e);
    }
    let mut done = previous;
    done.extend(finished);
    if total > 1 || !done.is_empty() {
        write_summary(&args.out, &done, &failed)?;
    }
    if !failed.is_empty() {
        eprintln!("{} of {total} images failed", failed.len());
    }
    Ok(failed.is_empty())
}

#[allow(clippy::too_many_arguments)]
fn process(
    engine: &mut Engine,
    registry: &Registry,
    input: &Input,
    args: &AnalyzeArgs,
    done: &BTreeMap<String, IndexEntry>,
    claimed: &Mutex<HashSet<PathBuf>>,
    annotations: &Annotations,
    cancel: &AtomicBool,
    verbose: bool,
) -> anyhow::Result<Outcome> {
    let sha = tamperscope::digest::sha256_file(&input.path)?;
    if !args.force
        && let Some(e) = done.get(&sha)
    {
        return Ok(Outcome::Skipped(e.clone()));
    }
    let mut progress = |p: Progress| {
        if let Progress::Started {
            stage,
            index,
            total,
        } = p
            && verbose
        {
            eprintln!("  {index}/{total} {stage}");
        }
    };
    let analysis = engine.analyze(&input.path, cancel, &mut progress)?;
    let out = &args.out;
    // Choose the result folder; the same name from another folder or run gets the content hash.
    let dir = {
        let mut claimed = claimed
            .lock()
            .map_err(|_| anyhow::anyhow!("result-folder lock poisoned"))?;
        let mut dir = out.join(&input.name);
        let same_input = || {
            std::fs::read_to_string(dir.join("analysis.json"))
                .is_ok_and(|s| s.contains(&analysis.image.sha256))
        };
        if claimed.contains(&dir) || (dir.exists() && !same_input()) {
            dir = out.join(format!("{}-{}", input.name, &analysis.image.sha256[..8]));
        }
        claimed.insert(dir.clone());
        dir
    };
    if dir.exists() && !args.force {
        for f in ["report.pdf", "report.html", "report.json"] {
            if dir.join(f).exists() {
                bail!(
                    "{} exists; not overwritten (use --force to replace it)",
                    dir.join(f).display()
                );
            }
        }
    }
    let dir_name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Build in a hidden folder and move it into place, so a failure (unwritable folder, full
    // disk) leaves no partial result: every file goes through write_atomic, and the staging folder
    // is removed on any error.
    let staging = out.join(format!(
        ".{dir_name}.partial-{}-{}",
        std::process::id(),
        format!("{:?}", std::thread::current().id())
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let result = (|| -> anyhow::Result<IndexEntry> {
        let mut rec = record(
            &analysis,
            &engine.params,
            &engine.segmenter_models,
            &engine.unavailable,
        );
        rec.files = write_maps(&analysis, &staging, args.colormap)?;
        let json = serde_json::to_vec_pretty(&rec)?;
        tamperscope::engine::imageio::write_atomic(&staging.join("analysis.json"), &json)?;
        let mut reports = Vec::new();
        if !args.report.is_empty() {
            let doc = build_report(
                &analysis,
                &engine.params,
                &engine.segmenter_models,
                &engine.unavailable,
                registry,
                annotations,
            );
            let figs = (args.report.iter().any(|f| *f != ReportFormat::Json))
                .then(|| figures(&analysis, &annotations.bookmarks, args.colormap))
                .transpose()?;
            for f in &args.report {
                let (name, bytes) = match (f, &figs) {
                    (ReportFormat::Json, _) => ("report.json", serde_json::to_vec_pretty(&doc)?),
                    (ReportFormat::Html, Some(figs)) => {
                        ("report.html", render_html(&doc, figs).into_bytes())
                    }
                    (ReportFormat::Pdf, Some(figs)) => {
                        ("report.pdf", render_pdf(&doc, figs)?.bytes)
                    }
                    _ => continue,
                };
                if reports.iter().any(|r| r == name) {
                    continue;
                }
                tamperscope::engine::imageio::write_atomic(&staging.join(name), &bytes)?;
                reports.push(name.to_string());
            }
        }
        if verbose {
            print_summary(&rec);
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot replace {}", dir.display()))?;
        }
        std::fs::rename(&staging, &dir)
            .with_context(|| format!("cannot move results to {}", dir.display()))?;
        Ok(IndexEntry {
            sha256: rec.input.info.sha256.clone(),
            input: input.path.display().to_string(),
            dir: dir_name.clone(),
            mean_probability: rec.classifier.mean_probability,
            verdict: rec
                .verdict
                .as_ref()
                .map_or_else(|| rec.classifier.verdict.clone(), |v| v.verdict.clone()),
            verdict_probability: rec.verdict.as_ref().map(|v| v.probability),
            classifier_status: rec.classifier.status.clone(),
            reports,
            finished_utc: tamperscope::outputs::output::now_utc(),
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result.map(Outcome::Done)
}

fn print_summary(rec: &tamperscope::outputs::output::AnalysisRecord) {
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
    for note in &rec.input.info.decode_notes {
        println!("  decoding: {note}");
    }
    for v in &rec.classifier.variants {
        println!(
            "  classifier b{}: p = {:.3} ({})",
            v.variant, v.probability, v.verdict
        );
    }
    if let Some(v) = &rec.verdict {
        println!("  verdict: {}", v.sentence(3));
    }
    if let Some(c) = &rec.compression {
        for line in &c.summary {
            println!("  compression: {line}");
        }
    }
    if let Some(c) = &rec.copy_move {
        for line in &c.summary {
            println!("  copy-move (score {:.2}): {line}", c.score);
        }
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
