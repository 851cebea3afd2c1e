//! tamperscope command line. Errors are reported here, once, with `anyhow`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

mod cli_ela;

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
    /// Write the signed error levels (METHOD.md section 1) of images as float32 .npy or PNG.
    Ela(cli_ela::ElaArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Ela(args)) => cli_ela::run(&args),
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            Ok(true)
        }
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

#[allow(dead_code)]
fn ensure_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{} exists and is not a directory", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
