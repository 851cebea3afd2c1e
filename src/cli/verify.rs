//! `tamperscope verify-report FILE.json`: re-run the analysis a report describes and compare every
//! figure (probabilities, S per mask, chosen masks, r1 / r0).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use tamperscope::engine::pipeline::Engine;
use tamperscope::models::registry::Registry;
use tamperscope::outputs::output::{AnalysisRecord, record};
use tamperscope::outputs::report::{REPORT_SCHEMA, ReportDoc};

/// Two figures match when equal or within this absolute difference.
pub const TOLERANCE: f64 = 1e-5;

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// report.json written by `analyze --report json` (or the app).
    pub report: PathBuf,
    /// Read the input from here instead of the path in the report (its sha256 is still checked).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Extra model folder searched first (also $TAMPERSCOPE_MODELS).
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
}

pub fn run(args: &VerifyArgs) -> anyhow::Result<bool> {
    let bytes = std::fs::read(&args.report)
        .with_context(|| format!("cannot read {}", args.report.display()))?;
    let doc: ReportDoc = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a tamperscope report", args.report.display()))?;
    if doc.schema != REPORT_SCHEMA {
        bail!(
            "unsupported report schema {} (expected {REPORT_SCHEMA})",
            doc.schema
        );
    }
    let stored = &doc.analysis;
    let input = args
        .input
        .clone()
        .unwrap_or_else(|| PathBuf::from(&stored.input.path));
    let sha = tamperscope::digest::sha256_file(&input)?;
    if sha != stored.input.info.sha256 {
        println!(
            "MISMATCH input {}: sha256 {sha}, the report says {}",
            input.display(),
            stored.input.info.sha256
        );
        return Ok(false);
    }
    println!("ok       input sha256 {sha}");
    let registry = Registry::open(args.models.as_deref())?;
    let fresh = rerun(&registry, stored, &input)?;
    let lines = compare(stored, &fresh);
    let bad = lines.iter().filter(|l| l.starts_with("MISMATCH")).count();
    for l in &lines {
        println!("{l}");
    }
    if bad == 0 {
        println!("all {} figures match", lines.len());
    } else {
        println!("{bad} of {} figures differ", lines.len());
    }
    Ok(bad == 0)
}

/// Run the analysis again with the report's parameters and exactly its models.
pub fn rerun(
    registry: &Registry,
    stored: &AnalysisRecord,
    input: &Path,
) -> anyhow::Result<AnalysisRecord> {
    let mut params = stored.params.clone();
    params.classifiers = stored
        .classifier
        .variants
        .iter()
        .map(|v| v.model.clone())
        .collect();
    params.segmenters = stored.segmenters.iter().map(|s| s.name.clone()).collect();
    let mut engine =
        Engine::open(registry, params.clone()).context("cannot start the analysis engine")?;
    if let Some(u) = engine.unavailable.first() {
        bail!("segmenter {} is not available: {}", u.name, u.reason);
    }
    let analysis = engine.analyze(input, &AtomicBool::new(false), &mut |_| {})?;
    Ok(record(
        &analysis,
        &engine.params,
        &engine.segmenter_models,
        &engine.unavailable,
    ))
}

fn figure(lines: &mut Vec<String>, what: String, stored: f64, fresh: f64) {
    let ok = stored == fresh || (stored - fresh).abs() <= TOLERANCE;
    lines.push(format!(
        "{} {what}: report {stored}, re-run {fresh}",
        if ok { "ok      " } else { "MISMATCH" }
    ));
}

fn exact(lines: &mut Vec<String>, what: String, stored: String, fresh: String) {
    lines.push(format!(
        "{} {what}: report {stored}, re-run {fresh}",
        if stored == fresh {
            "ok      "
        } else {
            "MISMATCH"
        }
    ));
}

/// One line per figure, starting with "ok" or "MISMATCH".
pub fn compare(stored: &AnalysisRecord, fresh: &AnalysisRecord) -> Vec<String> {
    let mut l = Vec::new();
    let sv = &stored.classifier.variants;
    let fv = &fresh.classifier.variants;
    exact(
        &mut l,
        "classifier variants".into(),
        format!("{}", sv.len()),
        format!("{}", fv.len()),
    );
    for (s, f) in sv.iter().zip(fv) {
        exact(
            &mut l,
            format!("{} sha256", s.model),
            s.sha256.clone(),
            f.sha256.clone(),
        );
        figure(
            &mut l,
            format!("{} logit", s.model),
            s.logit.into(),
            f.logit.into(),
        );
        figure(
            &mut l,
            format!("{} probability", s.model),
            s.probability.into(),
            f.probability.into(),
        );
    }
    figure(
        &mut l,
        "mean probability".into(),
        stored.classifier.mean_probability.into(),
        fresh.classifier.mean_probability.into(),
    );
    exact(
        &mut l,
        "segmenters".into(),
        format!("{}", stored.segmenters.len()),
        format!("{}", fresh.segmenters.len()),
    );
    for (s, f) in stored.segmenters.iter().zip(&fresh.segmenters) {
        exact(
            &mut l,
            format!("{} masks", s.name),
            s.regions.len().to_string(),
            f.regions.len().to_string(),
        );
        exact(
            &mut l,
            format!("{} chosen mask", s.name),
            format!("{:?}", s.chosen),
            format!("{:?}", f.chosen),
        );
        for (rs, rf) in s.regions.iter().zip(&f.regions) {
            exact(
                &mut l,
                format!("{} mask #{} area", s.name, rs.index),
                rs.area.to_string(),
                rf.area.to_string(),
            );
            figure(
                &mut l,
                format!("{} mask #{} S", s.name, rs.index),
                rs.s.into(),
                rf.s.into(),
            );
            figure(
                &mut l,
                format!("{} mask #{} S paper", s.name, rs.index),
                rs.s_paper.into(),
                rf.s_paper.into(),
            );
            figure(
                &mut l,
                format!("{} mask #{} S normalized", s.name, rs.index),
                rs.s_normalized.into(),
                rf.s_normalized.into(),
            );
        }
        match (s.likelihoods, f.likelihoods) {
            (Some(a), Some(b)) => {
                figure(&mut l, format!("{} r1", s.name), a.r1, b.r1);
                figure(&mut l, format!("{} r0", s.name), a.r0, b.r0);
            }
            (a, b) => exact(
                &mut l,
                format!("{} likelihoods", s.name),
                format!("{a:?}"),
                format!("{b:?}"),
            ),
        }
    }
    // Compression-history evidence and the verdict (absent in reports written before them).
    if let (Some(s), Some(f)) = (&stored.compression, &fresh.compression) {
        exact(
            &mut l,
            "compression evidence".into(),
            format!("{:?}", s.absent),
            format!("{:?}", f.absent),
        );
        exact(
            &mut l,
            "stored quantisation table".into(),
            format!("{:?}", s.table),
            format!("{:?}", f.table),
        );
        exact(
            &mut l,
            "A-DJPG frequencies with a trace".into(),
            s.adjpg_frequencies_used.to_string(),
            f.adjpg_frequencies_used.to_string(),
        );
        exact(
            &mut l,
            "estimated primary quality".into(),
            format!("{:?}", s.primary_quality),
            format!("{:?}", f.primary_quality),
        );
        figure(
            &mut l,
            "A-DJPG flagged fraction".into(),
            s.adjpg_flagged_fraction,
            f.adjpg_flagged_fraction,
        );
        exact(
            &mut l,
            "NA-DJPG grid shift".into(),
            format!("{:?}", s.na_shift),
            format!("{:?}", f.na_shift),
        );
    }
    if let (Some(s), Some(f)) = (&stored.verdict, &fresh.verdict) {
        figure(
            &mut l,
            "verdict probability".into(),
            s.probability.into(),
            f.probability.into(),
        );
    }
    l
}
