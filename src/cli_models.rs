//! `tamperscope models list|verify`.

use tamperscope::registry::{HashStatus, install_hint};

use crate::cli_common::EngineArgs;

#[derive(clap::Subcommand)]
pub enum ModelsCommand {
    /// Each model's role, source, licence and whether it is installed.
    List {
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Like list, and check every installed file's sha256 against the manifest.
    Verify {
        #[command(flatten)]
        engine: EngineArgs,
    },
}

pub fn run(cmd: &ModelsCommand) -> anyhow::Result<bool> {
    let (engine, hash) = match cmd {
        ModelsCommand::List { engine } => (engine, false),
        ModelsCommand::Verify { engine } => (engine, true),
    };
    let registry = engine.registry()?;
    println!("manifest: {}", registry.manifest_path.display());
    println!(
        "searched: {}",
        registry
            .search_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut ok = true;
    for s in registry.statuses(hash) {
        let entry = registry.manifest.get(&s.name)?;
        let state = match (&s.path, &s.sha256) {
            (None, _) => "NOT INSTALLED".to_string(),
            (Some(p), HashStatus::Ok) if hash => format!("installed, sha256 ok ({})", p.display()),
            (Some(p), HashStatus::Ok) => format!("installed ({})", p.display()),
            (Some(p), HashStatus::Unpinned) => {
                format!("installed, sha256 not pinned in manifest ({})", p.display())
            }
            (Some(p), HashStatus::Mismatch { actual }) => {
                ok = false;
                format!("SHA256 MISMATCH ({}: {actual})", p.display())
            }
            (Some(_), HashStatus::NotInstalled) => "NOT INSTALLED".to_string(),
        };
        println!(
            "{}\n  role: {:?}  status: {}\n  licence: {}\n  source: {}\n  {state}",
            s.name, s.role, s.status, s.licence, s.source
        );
        if s.path.is_none() {
            println!("  how to install: {}", install_hint(entry));
        }
    }
    Ok(ok)
}
