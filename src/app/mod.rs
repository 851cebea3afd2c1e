//! The desktop inspector (eframe + egui on wgpu). `tamperscope [IMAGE]` opens it.
//!
//! Layout of this module (data flows one way: worker -> document -> GPU scene -> views -> commands):
//! - [`state`]: persisted [`state::Settings`] and the runtime [`state::Document`];
//! - [`command`]: the [`command::Command`]s views emit, as data; [`handler`]: the one `apply`
//!   that handles them after the frame is drawn;
//! - [`worker`]: the thread that owns the engine and runs the method stage by stage;
//! - [`transform`]: pan and zoom as data; [`viewer`] / [`compare`]: the image panes; [`gpu`]: the
//!   wgpu pipeline;
//! - [`panels`]: the side panels; [`export`]: "Export view as PNG…".

pub mod answer;
pub mod command;
pub mod compare;
pub mod export;
pub mod gpu;
pub mod handler;
pub mod help;
pub mod install;
pub mod panels;
pub mod report;
pub mod state;
pub mod transform;
pub mod viewer;
pub mod worker;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::anyhow;
use tamperscope::engine::pipeline::{AnalysisParams, Progress};
use tamperscope::engine::raster::Map;

use command::Command;
use gpu::{
    MAX_SEGMENTERS, SLOT_ADJPG, SLOT_COMPRESSION, SLOT_COPY_MOVE, SLOT_ELA, SLOT_FUSED,
    SLOT_NA_DJPG, SLOT_PRIOR, SLOT_REFINED0, Upload,
};
use state::{
    Document, EngineStatus, SegState, SegToggles, Settings, StageRow, StageState, ViewMode,
};
use transform::ViewTransform;
use viewer::{PaneSpec, Readout};
use worker::{Reply, WorkerHandle};

/// The model registry the app uses. Its UI tests read a manifest of generated stand-ins only, so
/// that their snapshots do not depend on which models a machine has installed.
pub(crate) fn open_registry() -> tamperscope::Result<tamperscope::models::registry::Registry> {
    #[cfg(test)]
    {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        tamperscope::models::registry::Registry::with_manifest(
            &repo.join("models/test/app_manifest.toml"),
            Some(&repo.join("models")),
        )
    }
    #[cfg(not(test))]
    {
        tamperscope::models::registry::Registry::open(None)
    }
}

/// Background of the image view (the window's clear colour, see `clear_color`).
pub const VIEW_BACKGROUND: egui::Color32 = egui::Color32::from_gray(30);

/// Each side panel takes at most this share of the window's width.
pub const MAX_PANEL_SHARE: f32 = 0.4;
/// And at least this many points (below it a panel is better hidden: View menu).
pub const MIN_PANEL_WIDTH: f32 = 160.0;
/// Zoom factor of one press of + or -.
pub const KEY_ZOOM_STEP: f32 = 1.25;

/// Environment variable that turns on frame-time and latency logging to stderr.
pub const STATS_ENV: &str = "TAMPERSCOPE_APP_STATS";

/// Open the window; returns when it is closed.
pub fn run(image: Option<PathBuf>) -> anyhow::Result<bool> {
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default()
            .with_title("tamperscope")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([640.0, 400.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "tamperscope",
        options,
        Box::new(move |cc| {
            let mut app = TamperscopeApp::new(cc);
            if let Some(path) = image {
                app.apply(Command::Open(path));
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow!("cannot open the window: {e}"))?;
    Ok(true)
}

/// Open → first overlay → done, for the stats log and the tests.
#[derive(Debug, Clone, Copy)]
pub struct JobTiming {
    pub started: Instant,
    pub first_overlay_ms: Option<f64>,
    pub done_ms: Option<f64>,
}

/// Frame-time log (`TAMPERSCOPE_APP_STATS=1`): every two seconds, the frame intervals per state
/// (idle, analysing, panning) and the CPU time of `ui` over that window.
pub struct Stats {
    last_frame: Option<Instant>,
    window_start: Instant,
    /// Frame intervals (ms) by the state the frame was drawn in.
    intervals: std::collections::BTreeMap<&'static str, Vec<f32>>,
    cpu: Vec<f32>,
    render: Vec<f32>,
    /// eframe's CPU time of the previous frame (ui and rendering, vsync excluded), if known.
    pub last_render_ms: Option<f32>,
    /// Texture uploads so far (from the GPU resources).
    pub uploads: gpu::UploadStats,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            last_frame: None,
            window_start: Instant::now(),
            intervals: Default::default(),
            cpu: Vec::new(),
            render: Vec::new(),
            last_render_ms: None,
            uploads: Default::default(),
        }
    }

    pub fn event(&self, what: &str) {
        eprintln!("[stats] {what}");
    }

    fn frame(&mut self, cpu_ms: f32, state: &'static str) {
        let now = Instant::now();
        if let Some(last) = self.last_frame {
            self.intervals
                .entry(state)
                .or_default()
                .push((now - last).as_secs_f32() * 1e3);
            self.cpu.push(cpu_ms);
            self.render.extend(self.last_render_ms);
        }
        self.last_frame = Some(now);
        if now - self.window_start < std::time::Duration::from_secs(2) || self.cpu.is_empty() {
            return;
        }
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
        for (state, v) in &mut self.intervals {
            v.sort_by(f32::total_cmp);
            let p95 = v[((v.len() as f32 * 0.95) as usize).min(v.len() - 1)];
            eprintln!(
                "[stats] frames state={state} n={} interval mean={:.1} ms p50={:.1} p95={p95:.1} max={:.1}",
                v.len(),
                mean(v),
                v[v.len() / 2],
                v[v.len() - 1]
            );
        }
        eprintln!(
            "[stats] ui_cpu mean={:.2} ms frame_cpu(eframe, incl. render) mean={:.1} ms",
            mean(&self.cpu),
            if self.render.is_empty() {
                f32::NAN
            } else {
                mean(&self.render)
            }
        );
        eprintln!("[stats] uploads so far: {:?}", self.uploads);
        self.intervals.clear();
        self.cpu.clear();
        self.render.clear();
        self.window_start = now;
    }
}

/// Runtime state: never persisted.
pub struct Runtime {
    pub worker: Option<WorkerHandle>,
    pub engine: EngineStatus,
    pub doc: Option<Document>,
    pub next_job: u64,
    pub cancel: Option<Arc<AtomicBool>>,
    pub errors: Vec<String>,
    pub notice: Option<String>,
    /// The "Save as" dialog of the exports (rfd; tests put a stand-in here).
    pub save_dialog: fn(&export::SaveRequest) -> export::SaveChoice,
    pub view: ViewTransform,
    /// Mask under the cursor this frame; pinned by a click.
    pub highlight: Option<(usize, usize)>,
    pub pinned: Option<(usize, usize)>,
    /// What the GPU should hold; layers carry generations so each is uploaded once.
    pub scene: gpu::SceneData,
    next_generation: u64,
    /// The wgpu pipeline is installed.
    pub gpu: bool,
    /// The target is an sRGB framebuffer (the shader then outputs linear colour).
    pub linear_target: bool,
    pub timing: Option<JobTiming>,
    pub stats: Option<Stats>,
    /// Zoom of the last drawn pane (screen points per image pixel), for the status bar.
    pub last_zoom: std::cell::Cell<f32>,
    /// Zoom that fits the image in the last drawn pane, for bookmarks.
    pub last_fit_zoom: std::cell::Cell<f32>,
    title: String,
    pub readout: Option<Readout>,
    /// Show per-stage times (off in snapshot tests, where they would differ run to run).
    pub show_timings: bool,
    /// The window's context (absent in command-level tests), for screenshots.
    pub ctx: Option<egui::Context>,
    /// The image view's area in points, as last drawn (what "Export view" captures).
    pub view_rect: Option<egui::Rect>,
    /// Screenshots taken for "Export view", delivered by the renderer on a later frame.
    pub view_shots: export::ViewShots,
    /// The image to analyse again once the reloaded engine is open.
    pub reanalyse_when_ready: Option<PathBuf>,
    /// The measured accuracy (`measured.json` beside the manifest), read when the engine opens.
    pub measured: Option<answer::Measured>,
    /// The answer's region on the photo (see [`answer::Outline`]).
    pub answer_outline: Option<answer::Outline>,
    /// The Help window is open.
    pub show_help: bool,
    /// Widths of the layers and analysis panels as last drawn (0 when hidden).
    pub panel_widths: [f32; 2],
    /// Id of the Ui the side panels are children of (their saved widths live under it).
    pub panel_parent: Option<egui::Id>,
}

impl Runtime {
    pub fn effective_highlight(&self) -> Option<(usize, usize)> {
        self.highlight.or(self.pinned)
    }
}

pub struct TamperscopeApp {
    pub settings: Settings,
    pub rt: Runtime,
}

impl TamperscopeApp {
    pub fn new(cc: &eframe::CreationContext<'_>) -> TamperscopeApp {
        let settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        let mut app = TamperscopeApp::with_settings(settings, Some(cc.egui_ctx.clone()));
        app.rt.ctx = Some(cc.egui_ctx.clone());
        app.rt.gpu = gpu::install(cc.wgpu_render_state.as_ref());
        if let (Some(stats), Some(rs)) = (&app.rt.stats, cc.wgpu_render_state.as_ref()) {
            let info = rs.adapter.get_info();
            stats.event(&format!(
                "adapter: {} ({:?}, {:?}), target {:?}",
                info.name, info.backend, info.device_type, rs.target_format
            ));
        }
        app.rt.linear_target = cc
            .wgpu_render_state
            .as_ref()
            .is_some_and(|rs| rs.target_format.is_srgb());
        if !app.rt.gpu {
            app.rt
                .errors
                .push("The wgpu renderer is not available: the image view cannot be drawn".into());
        }
        app
    }

    /// The app without a window (command-level tests): the worker runs, nothing is drawn.
    pub fn with_settings(settings: Settings, ctx: Option<egui::Context>) -> TamperscopeApp {
        let mut errors = Vec::new();
        let worker = match WorkerHandle::spawn(ctx, AnalysisParams::default()) {
            Ok(w) => Some(w),
            Err(e) => {
                errors.push(format!("Cannot start the analysis worker: {e}"));
                None
            }
        };
        let stats = std::env::var(STATS_ENV)
            .ok()
            .filter(|v| !v.is_empty() && v != "0")
            .map(|_| Stats::new());
        TamperscopeApp {
            settings,
            rt: Runtime {
                worker,
                engine: EngineStatus::default(),
                doc: None,
                next_job: 0,
                cancel: None,
                errors,
                notice: None,
                save_dialog: export::rfd_save_dialog,
                view: ViewTransform::default(),
                highlight: None,
                pinned: None,
                scene: Default::default(),
                next_generation: 1,
                gpu: false,
                linear_target: false,
                timing: None,
                stats,
                last_zoom: std::cell::Cell::new(1.0),
                last_fit_zoom: std::cell::Cell::new(1.0),
                title: String::new(),
                show_timings: true,
                readout: None,
                ctx: None,
                view_rect: None,
                view_shots: Default::default(),
                reanalyse_when_ready: None,
                measured: None,
                answer_outline: None,
                show_help: false,
                panel_widths: [0.0; 2],
                panel_parent: None,
            },
        }
    }

    fn generation(&mut self) -> u64 {
        self.rt.next_generation += 1;
        self.rt.next_generation
    }

    fn upload_heat(&mut self, slot: usize, map: Option<&Map>) {
        let up = map.map(|m| Upload {
            generation: 0,
            data: Arc::new(m.to_u8()),
        });
        self.rt.scene.heat[slot] = up.map(|mut u| {
            u.generation = self.generation();
            u
        });
    }

    /// Recompute the prior of the open document with the rule of the settings and upload it
    /// (after `A` or the compression evidence arrived, or the rule changed). No model runs.
    pub fn update_prior(&mut self) {
        let rule = self.settings.prior.rule();
        let Some(doc) = self.rt.doc.as_mut() else {
            return;
        };
        doc.update_prior(rule);
        let prior = doc.prior.clone();
        self.upload_heat(SLOT_PRIOR, prior.as_ref());
    }

    /// Re-upload only H of segmenter `i` (after a mask change).
    pub fn upload_refined(&mut self, i: usize) {
        if i >= MAX_SEGMENTERS {
            return;
        }
        let h = self
            .rt
            .doc
            .as_ref()
            .and_then(|d| d.segs.get(i))
            .and_then(|s| s.result.refined.clone());
        self.upload_heat(SLOT_REFINED0 + i, h.as_ref());
    }

    /// Upload segmenter `i`'s region index map and H.
    pub fn upload_segmenter(&mut self, i: usize) {
        if i >= MAX_SEGMENTERS {
            return;
        }
        let index = self
            .rt
            .doc
            .as_ref()
            .and_then(|d| Some((d.segs.get(i)?, d.work_size()?)))
            .map(|(s, size)| s.index_texels(size));
        let generation = self.generation();
        self.rt.scene.index[i] = index.map(|data| Upload {
            generation,
            data: Arc::new(data),
        });
        self.upload_refined(i);
    }

    /// Drain the worker's messages into the document.
    pub fn poll_worker(&mut self) {
        let Some(worker) = &self.rt.worker else {
            return;
        };
        let replies: Vec<Reply> = worker.rx.try_iter().collect();
        for r in replies {
            self.handle_reply(r);
        }
    }

    fn current(&mut self, job: u64) -> Option<&mut Document> {
        self.rt.doc.as_mut().filter(|d| d.job == job)
    }

    fn first_overlay(&mut self) {
        if let Some(t) = &mut self.rt.timing
            && t.first_overlay_ms.is_none()
        {
            let ms = t.started.elapsed().as_secs_f64() * 1e3;
            t.first_overlay_ms = Some(ms);
            if let Some(s) = &self.rt.stats {
                s.event(&format!("open -> first overlay {ms:.0} ms"));
            }
        }
    }

    fn handle_reply(&mut self, reply: Reply) {
        match reply {
            Reply::EngineOpened {
                error,
                unavailable,
                missing,
                segmenters,
                classifiers,
            } => {
                self.rt.measured = open_registry().ok().and_then(|r| {
                    let dir = r.manifest_path.parent()?.to_path_buf();
                    answer::Measured::load(&dir.join(tamperscope::outputs::report::MEASURED_FILE))
                });
                self.rt.engine = EngineStatus {
                    ready: true,
                    error,
                    unavailable,
                    missing,
                    segmenters,
                    classifiers,
                };
                if let Some(path) = self.rt.reanalyse_when_ready.take() {
                    self.apply(Command::Open(path));
                }
            }
            Reply::Progress { job, progress } => {
                let Some(doc) = self.current(job) else { return };
                match progress {
                    Progress::Started { stage, total, .. } => {
                        doc.total_stages = total;
                        doc.stages.push(StageRow {
                            name: stage,
                            state: StageState::Running,
                        });
                    }
                    Progress::Finished { stage, ms } => {
                        if let Some(row) = doc.stages.iter_mut().rev().find(|r| r.name == stage) {
                            row.state = StageState::Done(ms);
                        }
                    }
                }
            }
            Reply::Photo {
                job,
                info,
                photo,
                mips,
            } => {
                let Some(doc) = self.current(job) else { return };
                doc.info = Some(info);
                doc.photo = Some(photo);
                let generation = self.generation();
                self.rt.scene.photo = Some(Upload {
                    generation,
                    data: mips,
                });
            }
            Reply::Prepared { job, working, ela } => {
                let size = (working.width(), working.height());
                let Some(doc) = self.current(job) else { return };
                doc.working = Some(working);
                doc.ela = Some(ela);
                let ela = doc.ela.clone();
                self.rt.scene.work_size = size;
                self.upload_heat(SLOT_ELA, ela.as_ref());
                self.first_overlay();
            }
            Reply::Compression { job, maps } => {
                let Some(doc) = self.current(job) else { return };
                let maps = *maps;
                let uploads = [
                    (SLOT_ADJPG, maps.adjpg.clone()),
                    (SLOT_NA_DJPG, maps.na.clone()),
                    (SLOT_COMPRESSION, maps.combined.clone()),
                ];
                doc.compression = Some(maps);
                for (slot, map) in uploads {
                    self.upload_heat(slot, map.as_ref());
                }
                // Normally before the classifier; should `A` be there already, the prior follows.
                if self.current(job).is_some_and(|d| d.fused.is_some()) {
                    self.update_prior();
                    self.rescore_all();
                }
            }
            Reply::CopyMove { job, evidence } => {
                let Some(doc) = self.current(job) else { return };
                doc.copy_move = Some(*evidence);
                let map = doc.heat_map(state::HeatLayer::CopyMove).cloned();
                self.upload_heat(SLOT_COPY_MOVE, map.as_ref());
                // The copy-move map is part of the prior: should `A` be there already, it follows.
                if self.current(job).is_some_and(|d| d.fused.is_some()) {
                    self.update_prior();
                    self.rescore_all();
                }
            }
            Reply::Classified {
                job,
                variants,
                fused,
            } => {
                let Some(doc) = self.current(job) else { return };
                doc.variants = variants;
                doc.fused = Some(fused);
                let cams: Vec<(usize, Map)> = doc
                    .variants
                    .iter()
                    .filter_map(|v| gpu::slot_cam(v.info.variant).map(|s| (s, v.cam.clone())))
                    .collect();
                let fused = doc.fused.clone();
                for (slot, cam) in cams {
                    self.upload_heat(slot, Some(&cam));
                }
                self.upload_heat(SLOT_FUSED, fused.as_ref());
                self.update_prior();
            }
            Reply::Segmented {
                job,
                name,
                segmentation,
                ms,
            } => {
                let settings = self.settings.clone();
                let Some(doc) = self.current(job) else { return };
                // Scored and refined against the prior (A, or A with the compression and copy-move evidence).
                let prior = doc.prior.clone();
                let state =
                    SegState::new(name.clone(), segmentation, ms, prior.as_ref(), &settings);
                let i = match doc.segs.iter().position(|s| s.name == name) {
                    Some(i) => {
                        doc.segs[i] = state;
                        i
                    }
                    None => {
                        doc.segs.push(state);
                        doc.segs.len() - 1
                    }
                };
                // The first time a segmenter finds regions, show its H unless
                // another segmenter's H is already shown. (One that found nothing gets no defaults
                // yet: on the bundled sample DeepLab finds no object, and its empty H would be the
                // only one shown.)
                let has_regions = !doc.segs[i].result.segmentation.regions.is_empty();
                let others: Vec<String> = doc
                    .segs
                    .iter()
                    .filter(|s| s.name != name)
                    .map(|s| s.name.clone())
                    .collect();
                if has_regions && !self.settings.seg_layers.contains_key(&name) {
                    let other_shown = others.iter().any(|o| self.settings.seg_toggles(o).refined);
                    self.settings.seg_layers.insert(
                        name,
                        SegToggles {
                            masks: false,
                            // The segmenter's chosen region is secondary: the answer card's
                            // outline (from H) is the primary "where"; the toggle brings it back.
                            chosen: false,
                            refined: !other_shown,
                        },
                    );
                }
                self.upload_segmenter(i);
            }
            Reply::SegmenterFailed { job, name, reason } => {
                let Some(doc) = self.current(job) else { return };
                doc.seg_errors
                    .push(tamperscope::engine::pipeline::Unavailable {
                        name: name.clone(),
                        reason: reason.clone(),
                    });
                if let Some(row) = doc
                    .stages
                    .iter_mut()
                    .rev()
                    .find(|r| r.name.ends_with(&name))
                {
                    row.state = StageState::Failed(reason);
                }
            }
            Reply::Done { job, total_ms } => {
                let Some(doc) = self.current(job) else { return };
                doc.running = false;
                if let Some(t) = &mut self.rt.timing {
                    let ms = t.started.elapsed().as_secs_f64() * 1e3;
                    t.done_ms = Some(ms);
                    if let Some(s) = &self.rt.stats {
                        s.event(&format!(
                            "open -> full result {ms:.0} ms (worker {total_ms:.0} ms)"
                        ));
                    }
                }
            }
            Reply::Failed { job, error } => {
                let Some(doc) = self.current(job) else { return };
                doc.running = false;
                if let Some(row) = doc
                    .stages
                    .iter_mut()
                    .rev()
                    .find(|r| r.state == StageState::Running)
                {
                    row.state = StageState::Failed(error.clone());
                }
                self.rt.errors.push(error);
            }
            Reply::Cancelled { job } => {
                let Some(doc) = self.current(job) else { return };
                doc.running = false;
                doc.cancelled = true;
                doc.stages.retain(|r| r.state != StageState::Running);
            }
        }
    }

    /// Whether the current analysis is still running (for tests and the stats label).
    pub fn analysis_running(&self) -> bool {
        self.rt.doc.as_ref().is_some_and(|d| d.running)
    }

    /// Draw the whole window; returns the commands the views emitted.
    pub fn window_ui(&mut self, ui: &mut egui::Ui) -> Vec<Command> {
        let mut cmds = Vec::new();
        self.refresh_answer_outline();
        // Side panels: resizable, at most this share of the window each, so that the image
        // keeps room whatever was saved (the widths persist) and whatever a line asks for.
        let window = ui.ctx().content_rect().width();
        let max_side = (window * MAX_PANEL_SHARE).max(MIN_PANEL_WIDTH);
        egui::Panel::top("menu").show(ui, |ui| {
            self.menu_bar_ui(ui, &mut cmds);
        });
        if !self.rt.errors.is_empty() {
            egui::Panel::top("errors").show(ui, |ui| self.error_bar_ui(ui, &mut cmds));
        }
        let readout = self.rt.readout.clone();
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar_ui(ui, readout.as_ref()));
        self.rt.panel_widths = [0.0; 2];
        self.rt.panel_parent = Some(ui.scope_id());
        if self.settings.show_layers_panel {
            let r = egui::Panel::left("layers")
                .resizable(true)
                .default_size(230.0f32.min(window * 0.22).clamp(MIN_PANEL_WIDTH, max_side))
                .size_range(MIN_PANEL_WIDTH..=max_side)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| self.layers_panel_ui(ui, &mut cmds));
                });
            self.rt.panel_widths[0] = r.response.rect.width();
        }
        if self.settings.show_analysis_panel {
            let r = egui::Panel::right("analysis")
                .resizable(true)
                .default_size(330.0f32.min(window * 0.28).clamp(MIN_PANEL_WIDTH, max_side))
                .size_range(MIN_PANEL_WIDTH..=max_side)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        ui.set_max_width(ui.available_width());
                        self.analysis_panel_ui(ui, &mut cmds);
                        self.report_ui(ui, &mut cmds);
                    });
                });
            self.rt.panel_widths[1] = r.response.rect.width();
        }
        // No fill: the window's clear colour is the view's background, and the panes paint their
        // own. On a software renderer every full-size layer costs milliseconds per frame.
        let central = egui::CentralPanel::default()
            .frame(egui::Frame::new())
            .show(ui, |ui| match self.settings.view_mode {
                ViewMode::Single => self.view_ui(ui, 0, &PaneSpec::Main, &mut cmds),
                ViewMode::Compare => self.compare_ui(ui, &mut cmds),
            });
        self.rt.view_rect = Some(central.response.rect);
        self.rt.readout = central.inner;
        self.save_view_shots();
        // Drag and drop.
        let dropped: Vec<PathBuf> = ui.ctx().input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if let Some(p) = dropped.into_iter().next() {
            cmds.push(Command::Open(p));
        }
        if ui.ctx().input(|i| !i.raw.hovered_files.is_empty()) {
            let rect = ui.ctx().content_rect();
            let painter = ui.ctx().layer_painter(egui::LayerId::new(
                egui::Order::Foreground,
                ui.scope_id().with("drop"),
            ));
            painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Drop the image to open it",
                egui::FontId::proportional(22.0),
                egui::Color32::WHITE,
            );
        }
        if ui
            .ctx()
            .input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::O))
        {
            cmds.push(Command::OpenDialog);
        }
        self.help_window_ui(ui.ctx(), &mut cmds);
        self.shortcuts(ui.ctx(), &mut cmds);
        cmds
    }

    /// The view's keyboard shortcuts (not while a text field has the keyboard): + and - zoom,
    /// 0 fits, 1 is 1:1, [ and ] step through the layers, F1 opens the help.
    fn shortcuts(&self, ctx: &egui::Context, cmds: &mut Vec<Command>) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let ppp = ctx.pixels_per_point();
        ctx.input_mut(|i| {
            let none = egui::Modifiers::NONE;
            // "+" is Shift+= on many layouts: accept both, with or without Shift.
            let plus = i.consume_key(none, egui::Key::Plus)
                || i.consume_key(egui::Modifiers::SHIFT, egui::Key::Plus)
                || i.consume_key(none, egui::Key::Equals)
                || i.consume_key(egui::Modifiers::SHIFT, egui::Key::Equals);
            if plus {
                cmds.push(Command::ZoomBy(KEY_ZOOM_STEP));
            }
            if i.consume_key(none, egui::Key::Minus) {
                cmds.push(Command::ZoomBy(1.0 / KEY_ZOOM_STEP));
            }
            if i.consume_key(none, egui::Key::Num0) {
                cmds.push(Command::Fit);
            }
            if i.consume_key(none, egui::Key::Num1) {
                cmds.push(Command::OneToOne {
                    pixels_per_point: ppp,
                });
            }
            if i.consume_key(none, egui::Key::OpenBracket) {
                cmds.push(Command::StepLayer(-1));
            }
            if i.consume_key(none, egui::Key::CloseBracket) {
                cmds.push(Command::StepLayer(1));
            }
            if i.consume_key(none, egui::Key::F1) {
                cmds.push(Command::ShowHelp(!self.rt.show_help));
            }
        });
    }

    /// One frame: worker messages, UI, commands.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        let t0 = Instant::now();
        self.poll_worker();
        let cmds = self.window_ui(ui);
        // Hover highlights are per frame: the commands of this frame set them again.
        let highlight_before = self.rt.effective_highlight();
        self.rt.highlight = None;
        let mut changed = false;
        for c in cmds {
            changed |= !matches!(c, Command::Highlight(_));
            self.apply(c);
        }
        // What the commands changed was not drawn yet: one more frame.
        if changed || self.rt.effective_highlight() != highlight_before {
            ui.ctx().request_repaint();
        }
        if let Some(doc) = &self.rt.doc {
            let title = format!(
                "tamperscope — {}",
                doc.path
                    .file_name()
                    .map(|f| f.to_string_lossy().to_string())
                    .unwrap_or_default()
            );
            if title != self.rt.title {
                ui.ctx()
                    .send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
                self.rt.title = title;
            }
        }
        let running = self.analysis_running();
        if let Some(stats) = &mut self.rt.stats {
            let dragging = ui.ctx().input(|i| i.pointer.any_down());
            let state = if running {
                "analysing"
            } else if dragging {
                "panning"
            } else {
                "idle"
            };
            stats.frame(t0.elapsed().as_secs_f32() * 1e3, state);
            // Continuous frames so that the intervals measure rendering, not input.
            ui.ctx().request_repaint();
        }
    }
}

impl eframe::App for TamperscopeApp {
    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        VIEW_BACKGROUND.to_normalized_gamma_f32()
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        if let Some(stats) = &mut self.rt.stats {
            // eframe's measure of the previous frame: ui + tessellation + rendering, without vsync.
            stats.last_render_ms = frame.info().cpu_usage.map(|s| s * 1e3);
            if let Some(rs) = frame.wgpu_render_state()
                && let Some(gpu) = rs
                    .renderer
                    .read()
                    .callback_resources
                    .get::<gpu::GpuResources>()
            {
                stats.uploads = gpu.uploads;
            }
        }
        self.frame(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}
