//! Compare view: two to four panes side by side (for example A against H, or H of each
//! segmenter), all sharing one pan/zoom transform.

use super::TamperscopeApp;
use super::command::Command;
use super::gpu::MAX_PANES;
use super::state::{HeatLayer, PaneContent};
use super::viewer::{PaneSpec, Readout};

impl TamperscopeApp {
    /// Everything a pane can show for the current document.
    pub fn pane_choices(&self) -> Vec<PaneContent> {
        let mut out = vec![PaneContent::Photo];
        out.extend(HeatLayer::ALL.into_iter().map(PaneContent::Heat));
        let n = self.rt.doc.as_ref().map(|d| d.segs.len()).unwrap_or(0);
        for i in 0..n {
            out.push(PaneContent::Refined(i));
            out.push(PaneContent::Masks(i));
        }
        out
    }

    /// Whether a pane showing `content` draws anything over the photo for the open document.
    pub fn pane_has_content(&self, content: &PaneContent) -> bool {
        let Some(doc) = self.rt.doc.as_ref() else {
            return false;
        };
        match content {
            PaneContent::Photo => true,
            PaneContent::Heat(layer) => doc.heat_map(*layer).is_some(),
            PaneContent::Refined(i) => doc.segs.get(*i).is_some_and(|g| g.result.refined.is_some()),
            PaneContent::Masks(i) => doc
                .segs
                .get(*i)
                .is_some_and(|g| !g.result.segmentation.regions.is_empty()),
        }
    }

    /// What each compare pane shows: its setting, or, when that layer is empty for this image
    /// (H of a segmenter that found no region, a map this image has not got), the first layer that
    /// exists and no other pane shows: A, ELA, the prior, another H, the compression maps. The
    /// settings keep the analyst's choice for the next image.
    pub fn pane_contents(&self) -> Vec<PaneContent> {
        let n = self.settings.compare_panes.clamp(2, MAX_PANES);
        let stored: Vec<PaneContent> = (0..n)
            .map(|i| {
                self.settings
                    .pane_content
                    .get(i)
                    .cloned()
                    .unwrap_or(PaneContent::Photo)
            })
            .collect();
        let segs = self.rt.doc.as_ref().map(|d| d.segs.len()).unwrap_or(0);
        let mut candidates = vec![
            PaneContent::Heat(HeatLayer::Fused),
            PaneContent::Heat(HeatLayer::Ela),
            PaneContent::Heat(HeatLayer::Prior),
        ];
        candidates.extend((0..segs).map(PaneContent::Refined));
        candidates.extend(
            [HeatLayer::Compression, HeatLayer::Adjpg, HeatLayer::NaDjpg].map(PaneContent::Heat),
        );
        let mut out: Vec<PaneContent> = Vec::with_capacity(n);
        for (i, content) in stored.iter().enumerate() {
            if self.rt.doc.is_none() || self.pane_has_content(content) {
                out.push(content.clone());
                continue;
            }
            let taken = |c: &PaneContent| {
                out.contains(c)
                    || stored
                        .iter()
                        .enumerate()
                        .any(|(j, s)| j > i && s == c && self.pane_has_content(s))
            };
            let pick = candidates
                .iter()
                .find(|c| self.pane_has_content(c) && !taken(c))
                .or_else(|| candidates.iter().find(|c| self.pane_has_content(c)))
                .cloned()
                .unwrap_or(PaneContent::Photo);
            out.push(pick);
        }
        out
    }

    pub fn compare_ui(&self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) -> Option<Readout> {
        let n = self.settings.compare_panes.clamp(2, MAX_PANES);
        let (cols, rows) = if n == 4 { (2, 2) } else { (n, 1) };
        let names = self
            .rt
            .doc
            .as_ref()
            .map(|d| d.segmenter_names())
            .unwrap_or_default();
        let choices = self.pane_choices();
        let contents = self.pane_contents();
        let full = ui.available_rect_before_wrap();
        let gap = 4.0;
        let cell = egui::vec2(
            (full.width() - gap * (cols - 1) as f32) / cols as f32,
            (full.height() - gap * (rows - 1) as f32) / rows as f32,
        );
        let mut readout = None;
        // The central panel has no fill (the window's clear colour shows through, see
        // `window_ui`); the panes draw their own background. Fill the gaps and headers here.
        let fill = super::VIEW_BACKGROUND;
        for c in 1..cols {
            let x = full.min.x + c as f32 * (cell.x + gap) - gap;
            let strip = egui::Rect::from_min_size(
                egui::pos2(x, full.min.y),
                egui::vec2(gap, full.height()),
            );
            ui.painter().rect_filled(strip, 0.0, fill);
        }
        for r in 1..rows {
            let y = full.min.y + r as f32 * (cell.y + gap) - gap;
            let strip =
                egui::Rect::from_min_size(egui::pos2(full.min.x, y), egui::vec2(full.width(), gap));
            ui.painter().rect_filled(strip, 0.0, fill);
        }
        for pane in 0..n {
            let (c, r) = (pane % cols, pane / cols);
            let min = full.min + egui::vec2(c as f32 * (cell.x + gap), r as f32 * (cell.y + gap));
            let rect = egui::Rect::from_min_size(min, cell);
            let content = contents.get(pane).cloned().unwrap_or(PaneContent::Photo);
            let stored = self.settings.pane_content.get(pane);
            let mut child = ui.new_child(
                egui::UiBuilder::new()
                    .max_rect(rect)
                    .id_salt(("pane", pane)),
            );
            let header_bg = child.painter().add(egui::Shape::Noop);
            let header = child.horizontal(|ui| {
                ui.label(format!("Pane {}", pane + 1));
                let combo = egui::ComboBox::from_id_salt(("pane_content", pane))
                    .selected_text(content.label(&names))
                    .show_ui(ui, |ui| {
                        for choice in &choices {
                            if ui
                                .add_enabled(
                                    self.pane_has_content(choice),
                                    egui::Button::selectable(
                                        *choice == content,
                                        choice.label(&names),
                                    ),
                                )
                                .on_disabled_hover_text("empty for this image")
                                .clicked()
                            {
                                cmds.push(Command::SetPaneContent(pane, choice.clone()));
                            }
                        }
                    });
                if let Some(s) = stored.filter(|s| **s != content) {
                    combo.response.on_hover_text(format!(
                        "{} is empty for this image: showing {}",
                        s.label(&names),
                        content.label(&names)
                    ));
                }
            });
            let mut strip = header.response.rect;
            strip.set_left(rect.left());
            strip.set_right(rect.right());
            strip.max.y += child.spacing().item_spacing.y;
            child
                .painter()
                .set(header_bg, egui::Shape::rect_filled(strip, 0.0, fill));
            if let Some(r) = self.view_ui(&mut child, pane, &PaneSpec::Compare(content), cmds) {
                readout = Some(r);
            }
        }
        ui.advance_cursor_after_rect(full);
        readout
    }
}
