//! "Export report…" (issue 5): the analyst's notes, bookmarked views, and the report of the open
//! document written as PDF, HTML or JSON by the engine's `report` module. Notes and bookmarks live
//! with the document in memory (a new image starts a new case).

use std::path::Path;

use anyhow::Context as _;
use egui::RichText;
use tamperscope::engine::pipeline::{Analysis, AnalysisParams, CompressionMaps, StageTime};
use tamperscope::outputs::report::{
    Annotations, Bookmark, build_report, figures, render_html, render_pdf,
};

use super::TamperscopeApp;
use super::command::Command;
use super::state::{BookmarkView, HeatLayer, StageState};

impl TamperscopeApp {
    /// The current view as a bookmark: visible layers, pan / zoom, caption.
    pub fn current_bookmark(&self, caption: String) -> Option<Bookmark> {
        let doc = self.rt.doc.as_ref()?;
        let (pw, ph) = doc.photo_size()?;
        let mut layers = Vec::new();
        let mut opacity = None;
        for l in HeatLayer::ALL {
            let style = self.settings.heat[l.index()];
            if style.visible && doc.heat_map(l).is_some() {
                layers.push(l.bookmark_name());
                opacity.get_or_insert(style.opacity);
            }
        }
        for s in &doc.segs {
            let t = self.settings.seg_toggles(&s.name);
            if t.masks {
                layers.push(format!("masks:{}", s.name));
            }
            if t.chosen {
                layers.push(format!("chosen:{}", s.name));
            }
            if t.refined && self.settings.refined.visible {
                layers.push(format!("refined:{}", s.name));
                opacity.get_or_insert(self.settings.refined.opacity);
            }
        }
        let view = self.rt.view;
        let (zoom, center) = if view.fit {
            (1.0, [0.5, 0.5])
        } else {
            let fit = self.rt.last_fit_zoom.get().max(1e-6);
            (
                (view.zoom / fit).max(1.0),
                [view.center.x / pw, view.center.y / ph],
            )
        };
        Some(Bookmark {
            caption,
            layers,
            opacity: opacity.unwrap_or(0.6),
            zoom,
            center,
        })
    }

    pub fn apply_report(&mut self, cmd: Command) {
        match cmd {
            Command::SetNotes(text) => {
                if let Some(doc) = &mut self.rt.doc {
                    doc.notes = text;
                }
            }
            Command::AddBookmark(caption) => {
                let view = BookmarkView {
                    view: self.rt.view,
                    screen_zoom: self.rt.last_zoom.get(),
                    heat: self.settings.heat,
                    refined: self.settings.refined,
                    seg_layers: self.settings.seg_layers.clone(),
                };
                if let Some(b) = self.current_bookmark(caption)
                    && let Some(doc) = &mut self.rt.doc
                {
                    doc.bookmarks.push(b);
                    doc.bookmark_views.push(view);
                }
            }
            Command::RemoveBookmark(i) => {
                if let Some(doc) = &mut self.rt.doc
                    && i < doc.bookmarks.len()
                {
                    doc.bookmarks.remove(i);
                    if i < doc.bookmark_views.len() {
                        doc.bookmark_views.remove(i);
                    }
                }
            }
            Command::RestoreBookmark(i) => {
                let Some(doc) = &self.rt.doc else { return };
                let Some(v) = doc.bookmark_views.get(i).cloned() else {
                    return;
                };
                let caption = doc
                    .bookmarks
                    .get(i)
                    .map(|b| b.caption.clone())
                    .unwrap_or_default();
                self.rt.view = v.view;
                self.settings.heat = v.heat;
                self.settings.refined = v.refined;
                self.settings.seg_layers = v.seg_layers;
                self.rt.notice = Some(format!("Bookmark restored: {caption}"));
            }
            Command::ExportReportDialog => {
                if let Some((path, note)) = self.export_path(
                    "report",
                    "Export report",
                    vec![("PDF", &["pdf"]), ("HTML", &["html"]), ("JSON", &["json"])],
                ) {
                    match note {
                        None => self.apply(Command::ExportReport(path)),
                        Some(_) => self.export_report_noted(&path, note),
                    }
                }
            }
            Command::ExportReport(path) => self.export_report_noted(&path, None),
            _ => {}
        }
    }

    /// [`Self::export_report`] and its message.
    fn export_report_noted(&mut self, path: &Path, note: Option<String>) {
        match self.export_report(path) {
            Ok(()) => {
                self.rt.notice = Some(match note {
                    Some(n) => format!("Report written to {}: {n}", path.display()),
                    None => format!("Report written to {}", path.display()),
                })
            }
            Err(e) => self
                .rt
                .errors
                .push(format!("Report export to {} failed: {e:#}", path.display())),
        }
    }

    /// The open document as an [`Analysis`] (with the analyst's mask choices) and its parameters.
    pub fn document_analysis(&self) -> anyhow::Result<(Analysis, AnalysisParams)> {
        let doc = self.rt.doc.as_ref().context("no image is open")?;
        if doc.running {
            anyhow::bail!("the analysis is still running");
        }
        let fused = doc.fused.clone().context("the analysis has no fused map")?;
        let params = AnalysisParams {
            classifiers: doc.variants.iter().map(|v| v.info.model.clone()).collect(),
            segmenters: doc.segmenter_names(),
            similarity: self.settings.similarity,
            mask_rule: self.settings.mask_rule(),
            prior: self.settings.prior.rule(),
            // The worker searches with the defaults; a document without the evidence did not.
            copy_move: doc
                .copy_move
                .as_ref()
                .and(AnalysisParams::default().copy_move),
            ..AnalysisParams::default()
        };
        let compression = doc.compression.clone().unwrap_or_else(|| CompressionMaps {
            absent: Some("the compression history was not read in this session".into()),
            ..Default::default()
        });
        // The segmenters were scored against `doc.prior`; it is A under the paper's rule.
        let prior = doc.prior.clone().unwrap_or_else(|| fused.clone());
        let analysis = Analysis {
            image: doc.info.clone().context("no image information")?,
            input_path: doc.path.clone(),
            working: (**doc.working.as_ref().context("no working image")?).clone(),
            ela_map: doc.ela.clone().context("no ELA map")?,
            variants: doc.variants.clone(),
            fused,
            compression,
            prior,
            copy_move: doc.copy_move.clone(),
            segmenters: doc.segs.iter().map(|s| s.result.clone()).collect(),
            segmenter_errors: doc.seg_errors.clone(),
            timings: doc
                .stages
                .iter()
                .filter_map(|s| match s.state {
                    StageState::Done(ms) => Some(StageTime {
                        stage: s.name.clone(),
                        ms,
                    }),
                    _ => None,
                })
                .collect(),
            provider: "app session (see params.provider)".into(),
        };
        Ok((analysis, params))
    }

    /// Write the report; the format follows the extension (pdf, html, json).
    pub fn export_report(&self, path: &Path) -> anyhow::Result<()> {
        let (analysis, params) = self.document_analysis()?;
        let doc = self.rt.doc.as_ref().context("no image is open")?;
        let registry = super::open_registry()?;
        let segmenter_models: Vec<(String, String)> = registry
            .manifest
            .models
            .iter()
            .filter(|m| doc.segs.iter().any(|s| s.name == m.name))
            .map(|m| (m.name.clone(), m.sha256.clone()))
            .collect();
        let notes = Annotations {
            notes: doc.notes.clone(),
            bookmarks: doc.bookmarks.clone(),
        };
        let report = build_report(
            &analysis,
            &params,
            &segmenter_models,
            &[],
            &registry,
            &notes,
        );
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let bytes = match ext.as_str() {
            "json" => serde_json::to_vec_pretty(&report)?,
            "html" | "htm" => {
                let figs = figures(&analysis, &notes.bookmarks, Default::default())?;
                render_html(&report, &figs).into_bytes()
            }
            _ => {
                let figs = figures(&analysis, &notes.bookmarks, Default::default())?;
                render_pdf(&report, &figs)?.bytes
            }
        };
        tamperscope::engine::imageio::write_atomic(path, &bytes)?;
        Ok(())
    }

    /// Notes and bookmarks, at the end of the analysis panel.
    pub fn report_ui(&self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        let Some(doc) = &self.rt.doc else { return };
        ui.separator();
        ui.label(RichText::new("Report").strong());
        ui.label("Analyst's notes");
        let mut notes = doc.notes.clone();
        if ui
            .add(
                egui::TextEdit::multiline(&mut notes)
                    .desired_rows(4)
                    .desired_width(f32::INFINITY)
                    .hint_text("Notes for the report"),
            )
            .changed()
        {
            cmds.push(Command::SetNotes(notes));
        }
        let id = ui.scope_id().with("bookmark_caption");
        let mut caption: String = ui.data_mut(|d| d.get_temp(id).unwrap_or_default());
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut caption)
                    .desired_width(160.0)
                    .hint_text("Caption"),
            );
            if ui
                .add_enabled(doc.working.is_some(), egui::Button::new("Bookmark view"))
                .on_hover_text(
                    "Keep the visible layers and the pan / zoom, with this caption, for the report",
                )
                .clicked()
            {
                let c = if caption.trim().is_empty() {
                    format!("View {}", doc.bookmarks.len() + 1)
                } else {
                    std::mem::take(&mut caption)
                };
                cmds.push(Command::AddBookmark(c));
            }
        });
        ui.data_mut(|d| d.insert_temp(id, caption));
        for (i, b) in doc.bookmarks.iter().enumerate() {
            // Wrapped: a long caption or layer list must not widen the panel.
            ui.horizontal_wrapped(|ui| {
                // A word, not a symbol: the bundled fonts have no cross glyph.
                if ui.small_button("Remove").clicked() {
                    cmds.push(Command::RemoveBookmark(i));
                }
                // The zoom as the status bar showed it (the report's figure zooms relative to
                // the whole image).
                let zoom = doc
                    .bookmark_views
                    .get(i)
                    .map(|v| {
                        if v.view.fit {
                            format!("fit, {:.0}%", v.screen_zoom * 100.0)
                        } else {
                            format!("zoom {:.0}%", v.screen_zoom * 100.0)
                        }
                    })
                    .unwrap_or_else(|| format!("zoom x{:.1}", b.zoom));
                let text = format!("{} ({}, {zoom})", b.caption, b.layers.join(" + "));
                if ui
                    .add(egui::Button::new(text).frame(false).wrap())
                    .on_hover_text("Click to go back to this view: pan, zoom and layers")
                    .clicked()
                {
                    cmds.push(Command::RestoreBookmark(i));
                }
            });
        }
    }
}
