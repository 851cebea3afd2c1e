//! Installing a missing model from the app: the exact `models install` command, a "Download and
//! install" button for models with a download address and a published sha256, and "Install from
//! file…" (the `--from` path). The transfer runs on a background thread; its progress is shown and
//! the window repainted as it goes. The checks are those of the command line (library `install`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tamperscope::models::install::{Source, expected_sha256, install};
use tamperscope::models::manifest::is_pinned;
use tamperscope::models::registry::{Registry, user_models_dir};

use super::command::Command;

#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    Running { done: u64, total: Option<u64> },
    Done(PathBuf),
    Failed(String),
}

thread_local! {
    /// Install jobs by model name; the UI thread owns them (views draw them, threads update them).
    static JOBS: RefCell<BTreeMap<String, Arc<Mutex<JobState>>>> =
        const { RefCell::new(BTreeMap::new()) };
    /// The manifest, read once for the install actions.
    static REGISTRY: Option<Registry> = super::open_registry().ok();
}

fn state_of(name: &str) -> Option<JobState> {
    JOBS.with(|j| {
        j.borrow()
            .get(name)
            .and_then(|s| s.lock().ok().map(|g| g.clone()))
    })
}

/// Start installing `name` from `source` on a background thread (the window, if any, is
/// repainted as it goes).
pub fn start(ctx: Option<egui::Context>, name: &str, source: Option<PathBuf>) {
    let state = Arc::new(Mutex::new(JobState::Running {
        done: 0,
        total: None,
    }));
    JOBS.with(|j| j.borrow_mut().insert(name.to_string(), state.clone()));
    let repaint = move || {
        if let Some(ctx) = &ctx {
            ctx.request_repaint();
        }
    };
    let name = name.to_string();
    std::thread::spawn(move || {
        let set = |s: JobState| {
            if let Ok(mut g) = state.lock() {
                *g = s;
            }
        };
        let result = (|| -> Result<PathBuf, String> {
            let registry = super::open_registry().map_err(|e| e.to_string())?;
            let entry = registry.manifest.get(&name).map_err(|e| e.to_string())?;
            let expected = expected_sha256(entry, None).map_err(|e| e.to_string())?;
            let dir = user_models_dir().ok_or("no user data folder on this system")?;
            let source = match (source, &entry.url) {
                (Some(f), _) => Source::File(f),
                (None, Some(u)) => Source::Url(u.clone()),
                (None, None) => return Err("no download address in the manifest".into()),
            };
            let mut progress = |done: u64, total: Option<u64>| {
                set(JobState::Running { done, total });
                repaint();
            };
            install(entry, &dir, &source, &expected, 3, &mut progress).map_err(|e| e.to_string())
        })();
        set(match result {
            Ok(p) => JobState::Done(p),
            Err(e) => JobState::Failed(e),
        });
        repaint();
    });
}

/// Forget finished jobs (after the engine was reloaded with their models).
pub fn clear_finished() {
    JOBS.with(|j| {
        j.borrow_mut().retain(|_, s| {
            s.lock()
                .is_ok_and(|g| matches!(*g, JobState::Running { .. }))
        })
    });
}

/// One missing model: its install command and the install actions.
pub fn missing_model_ui(ui: &mut egui::Ui, name: &str, hint: &str, cmds: &mut Vec<Command>) {
    let (pinned, has_url) = REGISTRY.with(|r| {
        r.as_ref()
            .and_then(|r| r.manifest.get(name).ok())
            .map_or((false, false), |e| (is_pinned(&e.sha256), e.url.is_some()))
    });
    let downloadable = pinned && has_url;
    ui.label(format!("{name}: {hint}"));
    match state_of(name) {
        Some(JobState::Running { done, total }) => {
            let frac = total
                .filter(|&t| t > 0)
                .map_or(0.0, |t| done as f32 / t as f32);
            ui.add(
                egui::ProgressBar::new(frac)
                    .text(format!("{name}: {:.1} MB", done as f64 / 1e6))
                    .animate(total.is_none()),
            );
        }
        Some(JobState::Done(p)) => {
            ui.label(format!("installed at {}", p.display()));
            if ui.button("Load installed models").clicked() {
                cmds.push(Command::ReloadModels);
            }
        }
        state => {
            if let Some(JobState::Failed(e)) = state {
                ui.colored_label(egui::Color32::from_rgb(220, 80, 60), e);
            }
            ui.horizontal(|ui| {
                if downloadable && ui.button("Download and install").clicked() {
                    cmds.push(Command::InstallModel {
                        name: name.to_string(),
                        from: None,
                    });
                }
                if pinned && ui.button("Install from file…").clicked() {
                    cmds.push(Command::InstallModelFromFileDialog(name.to_string()));
                }
                if !pinned {
                    ui.weak("no published sha256: install it from the command line with --sha256");
                }
            });
        }
    }
}
