//! `tamperscope models list|verify|install`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use tamperscope::models::install::{Source, expected_sha256, install};
use tamperscope::models::registry::{HashStatus, install_hint, user_models_dir};

use crate::cli::common::EngineArgs;

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
    /// Download a model (or take it --from a file), check its sha256 and store it atomically in the
    /// user's model folder (or --dir).
    Install {
        /// Manifest name (for SAM, install the encoder and the decoder entries).
        name: String,
        /// Install this file instead of downloading the manifest's URL.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// Target folder (default: the user's model folder).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Expected sha256, required for models whose manifest hash is "unverified".
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Download attempts when a transfer breaks off.
        #[arg(long, default_value_t = 3)]
        attempts: u32,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

fn run_install(
    name: &str,
    from: Option<&PathBuf>,
    dir: Option<&PathBuf>,
    sha256: Option<&str>,
    attempts: u32,
    engine: &EngineArgs,
) -> anyhow::Result<bool> {
    let registry = engine.registry()?;
    let entry = registry.manifest.get(name)?;
    let expected = expected_sha256(entry, sha256)?;
    let dir = match dir {
        Some(d) => d.clone(),
        None => user_models_dir().context("no user data folder on this system; pass --dir")?,
    };
    let source = match (from, &entry.url) {
        (Some(f), _) => Source::File(f.clone()),
        (None, Some(url)) => Source::Url(url.clone()),
        (None, None) => anyhow::bail!(
            "model '{name}' has no download address in the manifest. {}",
            install_hint(entry)
        ),
    };
    let what = match &source {
        Source::File(f) => f.display().to_string(),
        Source::Url(u) => u.clone(),
    };
    eprintln!("installing {name} from {what}");
    let mut last_pct = u64::MAX;
    let mut progress = |done: u64, total: Option<u64>| {
        let line = match total {
            Some(t) if t > 0 => {
                let pct = done * 100 / t;
                if pct == last_pct && done != t {
                    return;
                }
                last_pct = pct;
                let filled = (pct / 5) as usize;
                format!(
                    "\r[{}{}] {pct:3}% {:.1}/{:.1} MB",
                    "#".repeat(filled),
                    " ".repeat(20 - filled.min(20)),
                    done as f64 / 1e6,
                    t as f64 / 1e6
                )
            }
            _ => format!("\r{:.1} MB", done as f64 / 1e6),
        };
        let mut err = std::io::stderr();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    };
    let result = install(entry, &dir, &source, &expected, attempts, &mut progress);
    eprintln!();
    let path = result?;
    println!("installed {name}: {} (sha256 {expected})", path.display());
    Ok(true)
}

pub fn run(cmd: &ModelsCommand) -> anyhow::Result<bool> {
    let (engine, hash) = match cmd {
        ModelsCommand::List { engine } => (engine, false),
        ModelsCommand::Verify { engine } => (engine, true),
        ModelsCommand::Install {
            name,
            from,
            dir,
            sha256,
            attempts,
            engine,
        } => {
            return run_install(
                name,
                from.as_ref(),
                dir.as_ref(),
                sha256.as_deref(),
                *attempts,
                engine,
            );
        }
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
