//! The desktop inspector (eframe/egui). Placeholder in the engine worktree.

use std::path::PathBuf;

pub fn run(_image: Option<PathBuf>) -> anyhow::Result<bool> {
    use clap::CommandFactory;
    let _ = crate::Cli::command().print_help();
    Ok(true)
}
