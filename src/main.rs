//! tamperscope command line. Errors are reported here, once, with `anyhow`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

mod app;
mod cli_analyze;
mod cli_bench;
mod cli_common;
mod cli_compare;
mod cli_ela;
mod cli_eval;
mod cli_models;
mod cli_verify;

#[derive(Parser)]
#[command(name = "tamperscope", version = tamperscope::VERSION, about = "Forensic inspector for suspect photos: was it manipulated, and where?")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Image to open in the desktop app.
    image: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse images: per-variant probabilities, CAMs, fused map, masks and refined heatmaps.
    Analyze(cli_analyze::AnalyzeArgs),
    /// Score the method on a labelled dataset (METHOD.md section 7).
    Eval(cli_eval::EvalArgs),
    /// Compare two `eval` results of the same dataset image by image (paired differences).
    CompareEvals(cli_compare::CompareArgs),
    /// Per-stage median times and peak memory on one image.
    Bench(cli_bench::BenchArgs),
    /// List and verify the models of the manifest.
    #[command(subcommand)]
    Models(cli_models::ModelsCommand),
    /// Write the signed error levels (METHOD.md section 1) of images as float32 .npy or PNG.
    Ela(cli_ela::ElaArgs),
    /// Re-run the analysis a report.json describes and check every figure against it.
    VerifyReport(cli_verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Analyze(args)) => cli_analyze::run(&args),
        Some(Command::Eval(args)) => cli_eval::run(&args),
        Some(Command::CompareEvals(args)) => cli_compare::run(&args),
        Some(Command::Bench(args)) => cli_bench::run(&args),
        Some(Command::Models(cmd)) => cli_models::run(&cmd),
        Some(Command::Ela(args)) => cli_ela::run(&args),
        Some(Command::VerifyReport(args)) => cli_verify::run(&args),
        None => app::run(cli.image),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn ensure_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{} exists and is not a directory", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
