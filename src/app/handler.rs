//! The one handler of [`Command`]s: [`TamperscopeApp::apply`] changes the app's state after the
//! views have drawn (egui demo app pattern). Views never call in here; they only emit commands.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::TamperscopeApp;
use super::command::{Command, IMAGE_EXTENSIONS};
use super::state::{Document, HeatLayer, PaneContent, SegLayer};
use super::transform::{MAX_ZOOM, MIN_ZOOM, ViewTransform};
use super::worker::Request;

impl TamperscopeApp {
    pub fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::OpenDialog => {
                let mut dialog = rfd::FileDialog::new()
                    .add_filter("Images", &IMAGE_EXTENSIONS)
                    .set_title("Open image");
                if let Some(dir) = &self.settings.last_folder {
                    dialog = dialog.set_directory(dir);
                }
                if let Some(path) = dialog.pick_file() {
                    self.apply(Command::Open(path));
                }
            }
            Command::Open(path) => self.open(path),
            Command::CancelAnalysis => {
                if let Some(c) = &self.rt.cancel {
                    c.store(true, Ordering::Relaxed);
                }
            }
            Command::ClearRecent => self.settings.recent.clear(),
            Command::SetHeatStyle(layer, style) => self.settings.heat[layer.index()] = style,
            Command::SetRefinedStyle(style) => self.settings.refined = style,
            Command::SetMasksOpacity(v) => self.settings.masks_opacity = v.clamp(0.0, 1.0),
            Command::SetChosenOpacity(v) => self.settings.chosen_opacity = v.clamp(0.0, 1.0),
            Command::SetSegLayer {
                segmenter,
                layer,
                on,
            } => {
                let t = self.settings.seg_layers.entry(segmenter).or_default();
                match layer {
                    SegLayer::Masks => t.masks = on,
                    SegLayer::Chosen => t.chosen = on,
                    SegLayer::Refined => t.refined = on,
                }
            }
            Command::Highlight(h) => self.rt.highlight = h,
            Command::Pin(p) => self.rt.pinned = if self.rt.pinned == p { None } else { p },
            Command::ChooseMask { seg, region } => self.choose_mask(seg, region),
            Command::SetSimilarity(v) => {
                self.settings.similarity = v;
                self.rescore_all();
            }
            Command::SetPrior(p) => {
                if p != self.settings.prior {
                    self.settings.prior = p;
                    self.update_prior();
                    self.rescore_all();
                }
            }
            Command::SetMinArea(v) => {
                let v = v.clamp(0.0, 0.5);
                if v != self.settings.min_area_fraction {
                    self.settings.min_area_fraction = v;
                    self.rt.pinned = None;
                    self.rescore_all();
                    // The built-in segmenter merges small regions rather than dropping them: re-run it.
                    if let (Some(w), Some(doc)) = (&self.rt.worker, &self.rt.doc)
                        && !doc.running
                    {
                        w.send(Request::Resegment {
                            job: doc.job,
                            rule: self.settings.mask_rule(),
                        });
                    }
                }
            }
            Command::SetThreshold(v) => self.settings.display_threshold = v.clamp(0.0, 1.0),
            Command::SetViewMode(m) => self.settings.view_mode = m,
            Command::SetComparePanes(n) => {
                self.settings.compare_panes = n.clamp(2, super::gpu::MAX_PANES)
            }
            Command::SetPaneContent(i, c) => {
                if i < super::gpu::MAX_PANES {
                    while self.settings.pane_content.len() <= i {
                        self.settings.pane_content.push(PaneContent::Photo);
                    }
                    self.settings.pane_content[i] = c;
                }
            }
            Command::SetView(v) => self.rt.view = v,
            Command::Fit => self.rt.view.fit = true,
            Command::ZoomBy(factor) => self.zoom_by(factor),
            Command::StepLayer(step) => self.step_layer(step),
            Command::ShowHelp(on) => self.rt.show_help = on,
            Command::OneToOne { pixels_per_point } => {
                let center = self
                    .rt
                    .doc
                    .as_ref()
                    .and_then(|d| d.photo_size())
                    .map(|(w, h)| egui::vec2(w, h) * 0.5);
                let center = if self.rt.view.fit {
                    center.unwrap_or(self.rt.view.center)
                } else {
                    self.rt.view.center
                };
                self.rt.view = ViewTransform {
                    center,
                    zoom: 1.0 / pixels_per_point.max(0.1),
                    fit: false,
                };
            }
            Command::ExportViewDialog => {
                if let Some((path, note)) =
                    self.export_path("view", "Export view as PNG", vec![("PNG", &["png"])])
                {
                    match note {
                        None => self.apply(Command::ExportView(path)),
                        Some(_) => self.export_view_noted(path, note),
                    }
                }
            }
            Command::ExportLayersDialog => {
                if let Some((path, note)) =
                    self.export_path("layers", "Export layers as PNG", vec![("PNG", &["png"])])
                {
                    match note {
                        None => self.apply(Command::ExportLayers(path)),
                        Some(_) => self.export_layers_noted(&path, note),
                    }
                }
            }
            cmd @ (Command::SetNotes(_)
            | Command::AddBookmark(_)
            | Command::RemoveBookmark(_)
            | Command::RestoreBookmark(_)
            | Command::ExportReportDialog
            | Command::ExportReport(_)) => self.apply_report(cmd),
            Command::ExportView(path) => self.export_view(path),
            Command::ExportLayers(path) => self.export_layers_noted(&path, None),
            Command::InstallModel { name, from } => {
                super::install::start(self.rt.ctx.clone(), &name, from);
            }
            Command::InstallModelFromFileDialog(name) => {
                if let Some(f) = rfd::FileDialog::new()
                    .add_filter("ONNX model", &["onnx"])
                    .set_title(format!("Install {name} from a file"))
                    .pick_file()
                {
                    self.apply(Command::InstallModel {
                        name,
                        from: Some(f),
                    });
                }
            }
            Command::ReloadModels => self.reload_models(),
            Command::DismissError(i) => {
                if i < self.rt.errors.len() {
                    self.rt.errors.remove(i);
                }
            }
            Command::ShowPanels { layers, analysis } => {
                self.settings.show_layers_panel = layers;
                self.settings.show_analysis_panel = analysis;
            }
        }
    }

    /// Zoom about the centre of the view; from "fit", about the fitted view.
    fn zoom_by(&mut self, factor: f32) {
        if !factor.is_finite() || factor <= 0.0 {
            return;
        }
        let mut view = self.rt.view;
        if view.fit {
            let Some((w, h)) = self.rt.doc.as_ref().and_then(|d| d.photo_size()) else {
                return;
            };
            view = ViewTransform {
                center: egui::vec2(w, h) * 0.5,
                zoom: self.rt.last_fit_zoom.get(),
                fit: false,
            };
        }
        view.zoom = (view.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        view.fit = false;
        self.rt.view = view;
    }

    /// The layers [ and ] step through, in the order of the layers panel: the heat layers that
    /// exist, then H of each segmenter that has one.
    pub fn layer_cycle(&self) -> Vec<PaneContent> {
        let Some(doc) = &self.rt.doc else {
            return Vec::new();
        };
        let mut out: Vec<PaneContent> = HeatLayer::ALL
            .into_iter()
            .filter(|&l| doc.heat_map(l).is_some())
            .map(PaneContent::Heat)
            .collect();
        out.extend(
            doc.segs
                .iter()
                .enumerate()
                .take(super::gpu::MAX_SEGMENTERS)
                .filter(|(_, s)| s.result.refined.is_some())
                .map(|(i, _)| PaneContent::Refined(i)),
        );
        out
    }

    /// Whether `c` is shown in the single view.
    fn layer_visible(&self, c: &PaneContent) -> bool {
        let Some(doc) = &self.rt.doc else {
            return false;
        };
        match c {
            PaneContent::Heat(l) => self.settings.heat[l.index()].visible,
            PaneContent::Refined(i) => {
                self.settings.refined.visible
                    && doc
                        .segs
                        .get(*i)
                        .is_some_and(|s| self.settings.seg_toggles(&s.name).refined)
            }
            _ => false,
        }
    }

    /// Show only the next / previous layer of [`Self::layer_cycle`] (masks and chosen regions
    /// are left as they are); the status bar names it.
    fn step_layer(&mut self, step: i32) {
        let cycle = self.layer_cycle();
        if cycle.is_empty() {
            return;
        }
        let n = cycle.len() as i32;
        let current = cycle.iter().position(|c| self.layer_visible(c));
        let next = match current {
            Some(i) => (i as i32 + step).rem_euclid(n),
            None if step >= 0 => 0,
            None => n - 1,
        } as usize;
        let target = cycle[next].clone();
        for l in HeatLayer::ALL {
            self.settings.heat[l.index()].visible = target == PaneContent::Heat(l);
        }
        let names = self
            .rt
            .doc
            .as_ref()
            .map(|d| d.segmenter_names())
            .unwrap_or_default();
        for (i, name) in names.iter().enumerate() {
            let t = self.settings.seg_layers.entry(name.clone()).or_default();
            t.refined = target == PaneContent::Refined(i);
        }
        if matches!(target, PaneContent::Refined(_)) {
            self.settings.refined.visible = true;
        }
        self.rt.notice = Some(format!(
            "Layer {} of {n}: {}",
            next + 1,
            target.label(&names)
        ));
    }

    /// Re-open the engine with what is installed now; the open image is analysed again once
    /// it is ready.
    fn reload_models(&mut self) {
        let Some(worker) = &self.rt.worker else {
            self.rt
                .errors
                .push("Cannot reload the models: the analysis worker is not running".into());
            return;
        };
        if let Some(c) = self.rt.cancel.take() {
            c.store(true, Ordering::Relaxed);
        }
        worker.send(Request::Reload);
        self.rt.engine.ready = false;
        self.rt.reanalyse_when_ready = self.rt.doc.as_ref().map(|d| d.path.clone());
        super::install::clear_finished();
        self.rt.notice = Some("Loading the installed models…".into());
    }

    fn open(&mut self, path: PathBuf) {
        // Opening another image cancels the running analysis.
        if let Some(c) = self.rt.cancel.take() {
            c.store(true, Ordering::Relaxed);
        }
        self.settings.push_recent(&path);
        self.rt.next_job += 1;
        let job = self.rt.next_job;
        let cancel = Arc::new(AtomicBool::new(false));
        self.rt.cancel = Some(cancel.clone());
        self.rt.doc = Some(Document {
            path: path.clone(),
            job,
            running: true,
            ..Default::default()
        });
        self.rt.scene = Default::default();
        self.rt.view = ViewTransform::default();
        self.rt.highlight = None;
        self.rt.pinned = None;
        self.rt.timing = Some(super::JobTiming {
            started: Instant::now(),
            first_overlay_ms: None,
            done_ms: None,
        });
        match &self.rt.worker {
            Some(w) => w.send(Request::Analyze {
                job,
                path,
                cancel,
                rule: self.settings.mask_rule(),
            }),
            None => self
                .rt
                .errors
                .push("The analysis worker is not running".into()),
        }
    }

    fn choose_mask(&mut self, seg: usize, region: Option<usize>) {
        let t0 = Instant::now();
        let similarity = self.settings.similarity;
        let Some(doc) = self.rt.doc.as_mut() else {
            return;
        };
        let prior = doc.prior.clone();
        let Some(s) = doc.segs.get_mut(seg) else {
            return;
        };
        if region.is_some_and(|r| r >= s.result.segmentation.regions.len()) {
            return;
        }
        s.choose(region, prior.as_ref(), similarity);
        self.upload_refined(seg);
        if let Some(stats) = &mut self.rt.stats {
            stats.event(&format!(
                "mask change -> H recomputed in {:.2} ms",
                t0.elapsed().as_secs_f64() * 1e3
            ));
        }
    }

    /// Re-filter and re-score every segmenter against the prior (similarity, prior or minimum
    /// area changed); no model runs.
    pub fn rescore_all(&mut self) {
        let Some(doc) = self.rt.doc.as_mut() else {
            return;
        };
        let prior = doc.prior.clone();
        for s in &mut doc.segs {
            s.refilter(prior.as_ref(), &self.settings);
        }
        let n = doc.segs.len();
        for i in 0..n {
            self.upload_segmenter(i);
        }
    }
}
