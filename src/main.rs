//! tamperscope command line. Errors are reported here, once, with `anyhow`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(feature = "app")]
mod app;
mod cli;

use cli::{analyze, bench, compare, ela, eval, models, verify};

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
    Analyze(analyze::AnalyzeArgs),
    /// Score the method on a labelled dataset (METHOD.md section 7).
    Eval(eval::EvalArgs),
    /// Compare two `eval` results of the same dataset image by image (paired differences).
    CompareEvals(compare::CompareArgs),
    /// Per-stage median times and peak memory on one image.
    Bench(bench::BenchArgs),
    /// List and verify the models of the manifest.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Write the signed error levels (METHOD.md section 1) of images as float32 .npy or PNG.
    Ela(ela::ElaArgs),
    /// Re-run the analysis a report.json describes and check every figure against it.
    VerifyReport(verify::VerifyArgs),
}

#[cfg(feature = "app")]
fn open_app(image: Option<PathBuf>) -> anyhow::Result<bool> {
    app::run(image)
}

/// A build without the `app` feature has only the command line.
#[cfg(not(feature = "app"))]
fn open_app(_image: Option<PathBuf>) -> anyhow::Result<bool> {
    anyhow::bail!(
        "this tamperscope was built without the desktop app (cargo feature `app`); use a subcommand, see --help"
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Analyze(args)) => analyze::run(&args),
        Some(Command::Eval(args)) => eval::run(&args),
        Some(Command::CompareEvals(args)) => compare::run(&args),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Models(cmd)) => models::run(&cmd),
        Some(Command::Ela(args)) => ela::run(&args),
        Some(Command::VerifyReport(args)) => verify::run(&args),
        None => open_app(cli.image),
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
