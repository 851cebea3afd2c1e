//! The panels around the image: menu bar, error bar, layers (left), analysis (right), status bar.
//! Each `_ui` function only reads the app and pushes [`Command`]s.

use egui::{Color32, RichText};
use tamperscope::engine::pipeline::CompressionMaps;
use tamperscope::engine::similarity::SimilarityVariant;
use tamperscope::outputs::colormap::ColorMap;
use tamperscope::outputs::output::STAND_IN_LABEL;

use super::TamperscopeApp;
use super::command::Command;
use super::gpu::MAX_PANES;
use super::state::{Document, HeatLayer, LayerStyle, PriorChoice, SegLayer, StageState, ViewMode};
use super::viewer::Readout;

const WARN: Color32 = Color32::from_rgb(255, 170, 60);
const BAD: Color32 = Color32::from_rgb(255, 110, 110);
const GOOD: Color32 = Color32::from_rgb(120, 210, 120);
/// Hover text of the display threshold slider.
pub const THRESHOLD_HELP: &str = "Display threshold: on the localisation maps A, A_2, A_3, A_4, \
H and the prior, values below it are not drawn, so only the strongest areas stay coloured. \
ELA and the JPEG compression maps are always drawn in full. It changes the view and its \
exports, not the analysis.";
/// Masks listed per segmenter before "show all".
const LIST_LIMIT: usize = 25;

impl TamperscopeApp {
    pub fn menu_bar_ui(&self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open…").clicked() {
                    cmds.push(Command::OpenDialog);
                    ui.close();
                }
                ui.menu_button("Open recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.label("(none)");
                    }
                    for p in &self.settings.recent {
                        if ui.button(p.display().to_string()).clicked() {
                            cmds.push(Command::Open(p.clone()));
                            ui.close();
                        }
                    }
                    ui.separator();
                    if ui
                        .add_enabled(
                            !self.settings.recent.is_empty(),
                            egui::Button::new("Clear recent files"),
                        )
                        .clicked()
                    {
                        cmds.push(Command::ClearRecent);
                        ui.close();
                    }
                });
                ui.separator();
                let has_image = self.rt.doc.as_ref().is_some_and(|d| d.working.is_some());
                if ui
                    .add_enabled(has_image, egui::Button::new("Export view as PNG…"))
                    .on_hover_text(
                        "the image view as shown: pan, zoom and compare panes, screen resolution",
                    )
                    .clicked()
                {
                    cmds.push(Command::ExportViewDialog);
                    ui.close();
                }
                if ui
                    .add_enabled(has_image, egui::Button::new("Export layers as PNG…"))
                    .on_hover_text(
                        "the whole image with the visible layers, at the working resolution",
                    )
                    .clicked()
                {
                    cmds.push(Command::ExportLayersDialog);
                    ui.close();
                }
                let done = self
                    .rt
                    .doc
                    .as_ref()
                    .is_some_and(|d| d.fused.is_some() && !d.running);
                if ui
                    .add_enabled(done, egui::Button::new("Export report…"))
                    .on_disabled_hover_text("available when an analysis has finished")
                    .clicked()
                {
                    cmds.push(Command::ExportReportDialog);
                    ui.close();
                }
                ui.separator();
                if ui
                    .button("Reload models")
                    .on_hover_text(
                        "open the models again (after installing one) and re-analyse the image",
                    )
                    .clicked()
                {
                    cmds.push(Command::ReloadModels);
                    ui.close();
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                let ppp = ui.ctx().pixels_per_point();
                let has_image = self.rt.doc.as_ref().is_some_and(|d| d.photo.is_some());
                let item = |ui: &mut egui::Ui, text: &str, keys: &str| {
                    ui.add_enabled(has_image, egui::Button::new(text).shortcut_text(keys))
                        .clicked()
                };
                if item(ui, "Zoom in", "+") {
                    cmds.push(Command::ZoomBy(super::KEY_ZOOM_STEP));
                    ui.close();
                }
                if item(ui, "Zoom out", "-") {
                    cmds.push(Command::ZoomBy(1.0 / super::KEY_ZOOM_STEP));
                    ui.close();
                }
                if item(ui, "Fit", "0") {
                    cmds.push(Command::Fit);
                    ui.close();
                }
                if item(ui, "1:1", "1") {
                    cmds.push(Command::OneToOne {
                        pixels_per_point: ppp,
                    });
                    ui.close();
                }
                ui.separator();
                if item(ui, "Previous layer", "[") {
                    cmds.push(Command::StepLayer(-1));
                    ui.close();
                }
                if item(ui, "Next layer", "]") {
                    cmds.push(Command::StepLayer(1));
                    ui.close();
                }
                ui.separator();
                let mut layers = self.settings.show_layers_panel;
                let mut analysis = self.settings.show_analysis_panel;
                if ui.checkbox(&mut layers, "Layers panel").changed()
                    || ui.checkbox(&mut analysis, "Analysis panel").changed()
                {
                    cmds.push(Command::ShowPanels { layers, analysis });
                }
            });
            ui.menu_button("Help", |ui| {
                if ui
                    .add(egui::Button::new("Guide to the layers and shortcuts").shortcut_text("F1"))
                    .clicked()
                {
                    cmds.push(Command::ShowHelp(true));
                    ui.close();
                }
                ui.separator();
                ui.label(RichText::new("Keyboard").strong());
                egui::Grid::new("menu_shortcuts")
                    .num_columns(2)
                    .show(ui, |ui| {
                        for (k, what) in super::help::SHORTCUTS {
                            ui.monospace(k);
                            ui.label(what);
                            ui.end_row();
                        }
                    });
            });
            ui.separator();
            let mode = self.settings.view_mode;
            if ui
                .selectable_label(mode == ViewMode::Single, "Single view")
                .clicked()
            {
                cmds.push(Command::SetViewMode(ViewMode::Single));
            }
            if ui
                .selectable_label(mode == ViewMode::Compare, "Compare view")
                .clicked()
            {
                cmds.push(Command::SetViewMode(ViewMode::Compare));
            }
            if mode == ViewMode::Compare {
                let mut n = self.settings.compare_panes;
                egui::ComboBox::from_id_salt("panes")
                    .selected_text(format!("{n} panes"))
                    .show_ui(ui, |ui| {
                        for k in 2..=MAX_PANES {
                            ui.selectable_value(&mut n, k, format!("{k} panes"));
                        }
                    });
                if n != self.settings.compare_panes {
                    cmds.push(Command::SetComparePanes(n));
                }
            }
            ui.separator();
            if ui
                .button("Fit")
                .on_hover_text("Fit the image to the view (0)")
                .clicked()
            {
                cmds.push(Command::Fit);
            }
            if ui
                .button("1:1")
                .on_hover_text("One image pixel per screen pixel (1)")
                .clicked()
            {
                cmds.push(Command::OneToOne {
                    pixels_per_point: ui.ctx().pixels_per_point(),
                });
            }
        });
    }

    pub fn error_bar_ui(&self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        for (i, e) in self.rt.errors.iter().enumerate() {
            egui::Frame::new()
                .fill(Color32::from_rgb(90, 25, 25))
                .inner_margin(4.0)
                .show(ui, |ui| {
                    ui.horizontal_wrapped(|ui| {
                        // A word, not a symbol: the bundled fonts have no cross glyph.
                        if ui.button("Dismiss").clicked() {
                            cmds.push(Command::DismissError(i));
                        }
                        ui.label(RichText::new(e).color(Color32::WHITE));
                    });
                });
        }
    }

    pub fn layers_panel_ui(&self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        ui.heading("Layers");
        let doc = self.rt.doc.as_ref();
        for layer in HeatLayer::ALL {
            if layer == HeatLayer::Adjpg {
                ui.add_space(4.0);
                ui.weak("JPEG compression maps");
            }
            if layer == HeatLayer::CopyMove {
                ui.add_space(4.0);
                ui.weak("Repeated regions (same image)");
            }
            let available = doc.is_some_and(|d| d.heat_map(layer).is_some());
            let reason = doc.and_then(|d| d.heat_absent_reason(layer));
            let style = self.settings.heat[layer.index()];
            let row = HeatRow {
                label: layer.label(),
                description: super::help::heat(layer),
                available,
                reason: reason.as_deref(),
            };
            if let Some(s) = style_row_ui(ui, &row, style, ("heat", layer.index())) {
                cmds.push(Command::SetHeatStyle(layer, s));
            }
        }
        ui.separator();
        let mut t = self.settings.display_threshold;
        // The scope on a line of its own: beside the slider it widened the panel.
        ui.add(
            egui::Label::new(format!(
                "Display threshold ({})",
                super::gpu::THRESHOLD_SCOPE
            ))
            .wrap(),
        )
        .on_hover_text(THRESHOLD_HELP);
        if ui
            .add(egui::Slider::new(&mut t, 0.0..=1.0).text("threshold"))
            .on_hover_text(THRESHOLD_HELP)
            .on_disabled_hover_text(THRESHOLD_HELP)
            .changed()
        {
            cmds.push(Command::SetThreshold(t));
        }
        ui.separator();
        ui.label(RichText::new("Per segmenter").strong());
        let segs = doc.map(|d| d.segs.as_slice()).unwrap_or_default();
        if segs.is_empty() {
            ui.weak("(no masks yet)");
        }
        for seg in segs {
            let t = self.settings.seg_toggles(&seg.name);
            ui.label(&seg.name);
            // Toggles that would draw nothing are disabled, with the reason as hover text.
            let no_region = seg.result.segmentation.regions.is_empty();
            let none_reason = format!("{} found no region", seg.name);
            let chosen_reason = if no_region {
                none_reason.clone()
            } else {
                format!(
                    "{}: no evidence mask (no region could be scored against A)",
                    seg.name
                )
            };
            let refined_reason = if no_region {
                none_reason.clone()
            } else {
                format!("{}: no H map (no evidence mask to refine A with)", seg.name)
            };
            ui.horizontal(|ui| {
                let mut m = t.masks;
                if ui
                    .add_enabled(
                        !no_region,
                        egui::Checkbox::new(&mut m, format!("Masks · {}", seg.name)),
                    )
                    .on_hover_text(super::help::MASKS)
                    .on_disabled_hover_text(format!("{none_reason}.\n\n{}", super::help::MASKS))
                    .changed()
                {
                    cmds.push(Command::SetSegLayer {
                        segmenter: seg.name.clone(),
                        layer: SegLayer::Masks,
                        on: m,
                    });
                }
            });
            // One toggle a line: side by side they widened the panel.
            ui.vertical(|ui| {
                let mut c = t.chosen;
                if ui
                    .add_enabled(
                        seg.result.chosen.is_some(),
                        egui::Checkbox::new(&mut c, format!("Chosen · {}", seg.name)),
                    )
                    .on_hover_text(super::help::CHOSEN)
                    .on_disabled_hover_text(format!("{chosen_reason}.\n\n{}", super::help::CHOSEN))
                    .changed()
                {
                    cmds.push(Command::SetSegLayer {
                        segmenter: seg.name.clone(),
                        layer: SegLayer::Chosen,
                        on: c,
                    });
                }
                let mut r = t.refined;
                if ui
                    .add_enabled(
                        seg.result.refined.is_some(),
                        egui::Checkbox::new(&mut r, format!("H · {}", seg.name)),
                    )
                    .on_hover_text(super::help::REFINED)
                    .on_disabled_hover_text(format!(
                        "{refined_reason}.\n\n{}",
                        super::help::REFINED
                    ))
                    .changed()
                {
                    cmds.push(Command::SetSegLayer {
                        segmenter: seg.name.clone(),
                        layer: SegLayer::Refined,
                        on: r,
                    });
                }
            });
        }
        ui.add_space(4.0);
        let mut mo = self.settings.masks_opacity;
        if ui
            .add(egui::Slider::new(&mut mo, 0.0..=1.0).text("mask opacity"))
            .on_hover_text(super::help::MASKS)
            .changed()
        {
            cmds.push(Command::SetMasksOpacity(mo));
        }
        let mut co = self.settings.chosen_opacity;
        if ui
            .add(egui::Slider::new(&mut co, 0.0..=1.0).text("chosen opacity"))
            .on_hover_text(super::help::CHOSEN)
            .changed()
        {
            cmds.push(Command::SetChosenOpacity(co));
        }
        let refined = self.settings.refined;
        let mut opacity = refined.opacity;
        let mut cmap = refined.cmap;
        // Wrapped: slider, name and colour map side by side would widen the panel.
        ui.horizontal_wrapped(|ui| {
            ui.add(egui::Slider::new(&mut opacity, 0.0..=1.0).text("H opacity"))
                .on_hover_text(super::help::REFINED);
            cmap_combo_ui(ui, &mut cmap, "refined_cmap");
        });
        if opacity != refined.opacity || cmap != refined.cmap {
            cmds.push(Command::SetRefinedStyle(LayerStyle {
                opacity,
                cmap,
                ..refined
            }));
        }
    }

    pub fn analysis_panel_ui(&self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        ui.heading("Analysis");
        self.answer_card_ui(ui);
        self.progress_ui(ui, cmds);
        self.models_ui(ui, cmds);
        let Some(doc) = &self.rt.doc else { return };

        if !doc.variants.is_empty() {
            ui.separator();
            ui.label(RichText::new("Classifier").strong())
                .on_hover_text(super::help::CLASSIFIER);
            if doc.stand_in() {
                ui.label(
                    RichText::new(format!(
                        "{STAND_IN_LABEL}: these probabilities mean nothing"
                    ))
                    .color(WARN)
                    .strong(),
                );
            }
            egui::Grid::new("variants").striped(true).show(ui, |ui| {
                for v in &doc.variants {
                    ui.label(format!("A_{}", v.info.variant)).on_hover_text(format!(
                        "Classifier variant {}: {}",
                        v.info.variant,
                        super::help::CLASSIFIER
                    ));
                    ui.label(format!("p = {:.3}", v.probability)).on_hover_text(
                        "The probability, from 0 to 1, that this variant gives to \"the whole image was manipulated\"; 0.5 and above reads as manipulated. METHOD.md section 2.",
                    );
                    let verdict = tamperscope::outputs::output::verdict(v.probability);
                    let color = if v.probability >= 0.5 { BAD } else { GOOD };
                    ui.label(RichText::new(verdict).color(color));
                    if v.info.status.contains("stand-in") {
                        ui.label(RichText::new(STAND_IN_LABEL).color(WARN).small());
                    }
                    ui.end_row();
                }
            });
            let mean =
                doc.variants.iter().map(|v| v.probability).sum::<f32>() / doc.variants.len() as f32;
            ui.label(format!(
                "mean p = {mean:.3}: {}",
                tamperscope::outputs::output::verdict(mean)
            ))
            .on_hover_text("The three variants' mean: the classifier's part of the verdict");
            // The models' identity, for the record (not in the hover texts, which explain).
            let models: Vec<String> = doc
                .variants
                .iter()
                .map(|v| {
                    format!(
                        "{} {}…",
                        v.info.model,
                        &v.info.sha256[..v.info.sha256.len().min(8)]
                    )
                })
                .collect();
            ui.add(
                egui::Label::new(
                    RichText::new(format!("models: {}", models.join(", ")))
                        .weak()
                        .small(),
                )
                .wrap(),
            );
        }

        ui.separator();
        ui.label(RichText::new("Masks").strong());
        let mut sim = self.settings.similarity;
        ui.horizontal_wrapped(|ui| {
            ui.label("similarity S")
                .on_hover_text(super::help::SIMILARITY);
            for v in SimilarityVariant::ALL {
                ui.radio_value(&mut sim, v, v.name())
                    .on_hover_text(super::help::SIMILARITY);
            }
        });
        if sim != self.settings.similarity {
            cmds.push(Command::SetSimilarity(sim));
        }
        let mut prior = self.settings.prior;
        ui.horizontal_wrapped(|ui| {
            ui.label("prior").on_hover_text(super::help::PRIOR);
            for p in PriorChoice::ALL {
                ui.radio_value(&mut prior, p, p.label())
                    .on_hover_text(p.rule().name());
            }
        });
        if prior != self.settings.prior {
            cmds.push(Command::SetPrior(prior));
        }
        let mut pct = self.settings.min_area_fraction * 100.0;
        if ui
            .add(
                egui::Slider::new(&mut pct, 0.0..=10.0)
                    .text("min area %")
                    .max_decimals(2),
            )
            .on_hover_text(super::help::MIN_AREA)
            .changed()
        {
            cmds.push(Command::SetMinArea(pct / 100.0));
        }
        for e in &doc.seg_errors {
            ui.label(RichText::new(format!("{} failed: {}", e.name, e.reason)).color(BAD));
        }
        for (si, seg) in doc.segs.iter().enumerate() {
            let n = seg.result.segmentation.regions.len();
            let mut header = format!(
                "{} — {} masks ({} dropped)",
                seg.name, n, seg.result.segmentation.dropped_small
            );
            if self.rt.show_timings {
                header.push_str(&format!(", {:.0} ms", seg.ms));
            }
            egui::CollapsingHeader::new(header)
                .id_salt(("seg", si))
                .default_open(true)
                .show(ui, |ui| {
                    if seg.result.scores.is_empty() && n > 0 {
                        ui.weak("no S: the classifier is unavailable");
                    }
                    if seg.user_choice.is_some()
                        && ui
                            .button(format!("Automatic evidence mask · {}", seg.name))
                            .clicked()
                    {
                        cmds.push(Command::ChooseMask {
                            seg: si,
                            region: None,
                        });
                    }
                    let total = seg
                        .result
                        .segmentation
                        .regions
                        .first()
                        .map(|r| r.mask.data.len())
                        .unwrap_or(1)
                        .max(1) as f32;
                    let show_all = ui
                        .ctx()
                        .data(|d| d.get_temp::<bool>(ui.scope_id().with(("show_all", si))))
                        .unwrap_or(false);
                    let ranked = seg.ranked();
                    let best = seg
                        .result
                        .scores
                        .iter()
                        .copied()
                        .fold(0f32, f32::max)
                        .max(1e-6);
                    for (rank, &i) in ranked.iter().enumerate() {
                        if rank >= LIST_LIMIT && !show_all {
                            if ui.button(format!("show all {n}")).clicked() {
                                ui.ctx().data_mut(|d| {
                                    d.insert_temp(ui.scope_id().with(("show_all", si)), true)
                                });
                            }
                            break;
                        }
                        let r = &seg.result.segmentation.regions[i];
                        let chosen = seg.result.chosen == Some(i);
                        let highlighted = self.rt.effective_highlight() == Some((si, i));
                        let s = seg.result.scores.get(i).copied();
                        ui.horizontal(|ui| {
                            let c = tamperscope::outputs::colormap::region_color(i);
                            let (sw, _) = ui
                                .allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
                            ui.painter()
                                .rect_filled(sw, 2.0, Color32::from_rgb(c[0], c[1], c[2]));
                            let radio = ui.radio(chosen, "").on_hover_text("Use as evidence mask");
                            // The radio has no visible text: name it for screen readers (and tests).
                            let radio_name = format!("Evidence mask #{i} · {}", seg.name);
                            radio.widget_info(|| {
                                egui::WidgetInfo::selected(
                                    egui::Role::RadioButton,
                                    true,
                                    chosen,
                                    &radio_name,
                                )
                            });
                            if radio.clicked() && !chosen {
                                cmds.push(Command::ChooseMask {
                                    seg: si,
                                    region: Some(i),
                                });
                            }
                            let text = match s {
                                Some(s) => format!(
                                    "#{i} {}  S={s:.3}  {:.1}%",
                                    r.label,
                                    100.0 * r.area as f32 / total
                                ),
                                None => format!(
                                    "#{i} {}  {:.1}%",
                                    r.label,
                                    100.0 * r.area as f32 / total
                                ),
                            };
                            let text = if chosen {
                                RichText::new(text)
                                    .strong()
                                    .color(Color32::from_rgb(80, 230, 230))
                            } else {
                                RichText::new(text)
                            };
                            let resp = ui.selectable_label(highlighted, text).on_hover_text(format!(
                                "{}: {:.1} % of the image{}. Click to highlight it, double-click to make it the evidence mask.\n\n{}",
                                r.label,
                                100.0 * r.area as f32 / total,
                                s.map(|s| format!(", S = {s:.3}")).unwrap_or_default(),
                                super::help::SIMILARITY
                            ));
                            if let Some(s) = s {
                                let (bar, _) = ui.allocate_exact_size(
                                    egui::vec2(40.0, 6.0),
                                    egui::Sense::hover(),
                                );
                                ui.painter().rect_filled(bar, 0.0, Color32::from_gray(60));
                                let mut fill = bar;
                                fill.set_width(bar.width() * (s / best).clamp(0.0, 1.0));
                                ui.painter().rect_filled(
                                    fill,
                                    0.0,
                                    Color32::from_rgb(230, 120, 40),
                                );
                            }
                            if resp.hovered() || radio.hovered() {
                                cmds.push(Command::Highlight(Some((si, i))));
                            }
                            if resp.clicked() {
                                cmds.push(Command::Pin(Some((si, i))));
                            }
                            if resp.double_clicked() {
                                cmds.push(Command::ChooseMask {
                                    seg: si,
                                    region: Some(i),
                                });
                            }
                        });
                    }
                    if let Some(l) = &seg.result.likelihoods {
                        ui.add(
                            egui::Label::new(
                                RichText::new(format!(
                                    "evidence likelihoods r1 = {:.3}, r0 = {:.3}",
                                    l.r1, l.r0
                                ))
                                .weak(),
                            )
                            .wrap(),
                        )
                        .on_hover_text(super::help::LIKELIHOODS);
                    }
                });
        }

        compression_ui(ui, doc);
        copy_move_ui(ui, doc);
    }

    fn progress_ui(&self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        let Some(doc) = &self.rt.doc else {
            ui.weak("No image open.");
            return;
        };
        ui.label(
            RichText::new(
                doc.path
                    .file_name()
                    .map(|f| f.to_string_lossy().to_string())
                    .unwrap_or_default(),
            )
            .strong(),
        )
        .on_hover_text(doc.path.display().to_string());
        if let Some(info) = &doc.info {
            ui.weak(format!(
                "{}x{} {} · sha256 {}…",
                info.width,
                info.height,
                info.format,
                &info.sha256[..info.sha256.len().min(12)]
            ));
            for note in &info.decode_notes {
                ui.weak(note);
            }
        }
        let done = doc
            .stages
            .iter()
            .filter(|s| matches!(s.state, StageState::Done(_)))
            .count();
        if doc.running {
            ui.horizontal(|ui| {
                ui.spinner();
                let total = doc.total_stages.max(1);
                ui.add(
                    egui::ProgressBar::new(done as f32 / total as f32)
                        .text(format!("{done}/{total} stages"))
                        .desired_width(160.0),
                );
                if ui.button("Cancel").clicked() {
                    cmds.push(Command::CancelAnalysis);
                }
            });
        } else if doc.cancelled {
            ui.label(RichText::new("Analysis cancelled").color(WARN));
        }
        if !self.rt.show_timings {
            return;
        }
        egui::CollapsingHeader::new("Stages")
            .default_open(true)
            .show(ui, |ui| {
                for s in &doc.stages {
                    match &s.state {
                        StageState::Running => ui.horizontal(|ui| {
                            ui.spinner();
                            ui.label(&s.name);
                        }),
                        StageState::Done(ms) => ui.horizontal(|ui| {
                            ui.label(RichText::new("done").color(GOOD));
                            ui.label(format!("{}  {ms:.0} ms", s.name));
                        }),
                        StageState::Failed(e) => ui.horizontal(|ui| {
                            ui.label(RichText::new("failed").color(BAD));
                            ui.label(format!("{}: {e}", s.name));
                        }),
                    };
                }
            });
    }

    fn models_ui(&self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        let e = &self.rt.engine;
        if !e.ready {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Loading models…");
            });
            return;
        }
        ui.separator();
        ui.label(RichText::new("Models").strong());
        if !e.classifiers.is_empty() {
            ui.weak(format!("classifier: {}", e.classifiers.join(", ")));
        }
        ui.weak(format!("segmenters: {}", e.segmenters.join(", ")));
        if let Some(err) = &e.error {
            ui.label(RichText::new(format!("Classifier unavailable: {err}")).color(BAD));
            ui.weak("ELA and the built-in segmenter still work; no A, S or H until a classifier is installed.");
        }
        for u in &e.unavailable {
            ui.label(RichText::new(format!("{} unavailable: {}", u.name, u.reason)).color(WARN));
        }
        if !e.missing.is_empty() {
            egui::CollapsingHeader::new(format!("{} model(s) not installed", e.missing.len()))
                .show(ui, |ui| {
                    for (name, hint) in &e.missing {
                        super::install::missing_model_ui(ui, name, hint, cmds);
                    }
                });
        }
    }

    pub fn status_bar_ui(&self, ui: &mut egui::Ui, readout: Option<&Readout>) {
        ui.horizontal(|ui| {
            if let Some(r) = readout {
                ui.monospace(format!("x {:>5} y {:>5}  RGB {:>3} {:>3} {:>3}", r.x, r.y, r.rgb[0], r.rgb[1], r.rgb[2]));
                for (k, v) in &r.values {
                    ui.separator();
                    ui.monospace(format!("{k} {v}"));
                }
            } else if let Some(n) = &self.rt.notice {
                ui.label(n);
            } else {
                ui.weak("Drag to pan, scroll or pinch to zoom; click a mask to highlight it, double-click to make it the evidence mask.");
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.monospace(format!("zoom {:.0}%", self.rt.last_zoom.get() * 100.0));
            });
        });
    }
}

/// The "Compression history" section: the findings in words and the figures behind them.
fn compression_ui(ui: &mut egui::Ui, doc: &Document) {
    let Some(maps) = &doc.compression else {
        if doc.running && doc.working.is_some() {
            ui.separator();
            // Wrapped: a line wider than the panel would widen it for good.
            ui.horizontal_wrapped(|ui| {
                ui.spinner();
                ui.weak("Compression history: reading the JPEG coefficients…");
            });
        }
        return;
    };
    ui.separator();
    egui::CollapsingHeader::new(RichText::new("Compression history").strong())
        .id_salt("compression_history")
        .default_open(true)
        .show(ui, |ui| compression_findings_ui(ui, maps))
        .header_response
        .on_hover_text(super::help::COMPRESSION);
}

/// The "Copy-move" section: the detector's findings in words, one line per source/copy pair.
fn copy_move_ui(ui: &mut egui::Ui, doc: &Document) {
    let Some(cm) = &doc.copy_move else {
        return;
    };
    ui.separator();
    egui::CollapsingHeader::new(RichText::new("Repeated regions (copy-move)").strong())
        .id_salt("copy_move")
        .default_open(true)
        .show(ui, |ui| {
            for line in cm.summary() {
                ui.add(egui::Label::new(line).wrap());
            }
            if !cm.regions.is_empty() {
                ui.weak("Hover a marked area in the view to see where it was matched.");
            }
        })
        .header_response
        .on_hover_text(super::help::COPY_MOVE);
}

fn compression_findings_ui(ui: &mut egui::Ui, maps: &CompressionMaps) {
    let Some(e) = &maps.evidence else {
        let why = maps
            .absent
            .as_deref()
            .unwrap_or("the file's coefficients could not be read");
        ui.label(format!("Not applicable: {why}."));
        return;
    };
    for line in maps.summary() {
        ui.label(line);
    }
    // Short values: the grid does not wrap, and it must not widen the panel.
    egui::Grid::new("compression_figures")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            ui.label("stored table");
            match e.quality {
                Some((q, true)) => ui.label(format!("IJG quality {q}")),
                Some((q, false)) => ui
                    .label(format!("≈ IJG quality {q}"))
                    .on_hover_text("a custom table; the closest IJG quality"),
                None => ui.label("custom"),
            };
            ui.end_row();
            ui.label("primary quality");
            match e.primary_quality {
                Some(q) => ui
                    .label(format!("≈ {q}"))
                    .on_hover_text("estimated from the primary steps of the frequencies with a trace"),
                None => ui.label("—"),
            };
            ui.end_row();
            ui.label("frequencies with a trace")
                .on_hover_text("A-DJPG: frequencies where an earlier compression shows");
            ui.label(format!("{} of {}", e.adjpg.used(), e.adjpg.frequencies.len()))
                .on_hover_text(format!(
                    "a frequency carries a trace when the double-compression model beats the single one by more than log(#blocks) = {:.1} nats",
                    e.adjpg.guard
                ));
            ui.end_row();
            ui.label("NA-DJPG grid shift");
            match &e.na {
                Some(na) => ui
                    .label(format!("({}, {}) px", na.shift.0, na.shift.1))
                    .on_hover_text(format!(
                        "the shifted grid covers about {:.0} % of the image",
                        100.0 * na.trace_fraction
                    )),
                None => ui
                    .label("none")
                    .on_hover_text(e.na_absent.as_deref().unwrap_or("no shifted grid found")),
            };
            ui.end_row();
            ui.label("compression score");
            ui.label(format!("{:.3}", maps.image_score()))
                .on_hover_text("99th percentile of the combined map where a trace was found, else 0 (no evidence either way)");
            ui.end_row();
        });
}

/// What a heat layer row shows besides its style.
struct HeatRow<'a> {
    label: &'a str,
    description: &'a str,
    available: bool,
    /// Why the map is absent (the row is disabled and says so on hover).
    reason: Option<&'a str>,
}

/// Checkbox, opacity slider and colour map of one heat layer; returns the new style if changed.
fn style_row_ui(
    ui: &mut egui::Ui,
    row: &HeatRow<'_>,
    style: LayerStyle,
    id: (&str, usize),
) -> Option<LayerStyle> {
    let mut s = style;
    if let Some(reason) = row.reason {
        // No map for this image: a disabled toggle that says why, and no style controls.
        ui.horizontal(|ui| {
            ui.add_enabled(false, egui::Checkbox::new(&mut s.visible, row.label))
                .on_disabled_hover_text(format!("{reason}.\n\n{}", row.description));
            ui.add_enabled(false, egui::Label::new(RichText::new("n/a").small()))
                .on_disabled_hover_text(reason);
        });
        return None;
    }
    ui.add_enabled_ui(row.available, |ui| {
        ui.horizontal(|ui| {
            ui.checkbox(&mut s.visible, row.label)
                .on_hover_text(row.description)
                .on_disabled_hover_text(row.description);
        });
        ui.horizontal(|ui| {
            ui.add(egui::Slider::new(&mut s.opacity, 0.0..=1.0).show_value(true));
            cmap_combo_ui(ui, &mut s.cmap, id);
        });
    });
    (s != style).then_some(s)
}

fn cmap_combo_ui(
    ui: &mut egui::Ui,
    cmap: &mut ColorMap,
    id: impl std::hash::Hash + std::fmt::Debug,
) {
    egui::ComboBox::from_id_salt(id)
        .width(70.0)
        .selected_text(cmap.name())
        .show_ui(ui, |ui| {
            for c in ColorMap::ALL {
                ui.selectable_value(cmap, c, c.name());
            }
        });
}
