//! PNG exports, written atomically:
//! - "Export view as PNG…": the image view exactly as shown (pan, zoom, compare panes, the GPU's
//!   blending), cut from a screenshot of the next frame at screen resolution;
//! - "Export layers as PNG…": the whole image composed on the CPU at the working resolution with
//!   the engine's own overlay functions (the same layers, opacities and colour maps as on screen;
//!   the compare view exports its panes side by side), each pane with the colour scale of every
//!   scalar map it shows under it. Also the fallback without a renderer.
//!
//! Every export ends with a message: the file written (status bar) or the error (error bar).
//! Where no file dialog can be shown (no desktop portal, no zenity), the file is saved beside
//! the image and the message says where.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use anyhow::Context as _;
use image::RgbImage;
use tamperscope::engine::raster::Map;
use tamperscope::outputs::colormap::ColorMap;
use tamperscope::outputs::output::{chosen_overlay, heat_overlay_graded, regions_overlay};

use super::TamperscopeApp;
use super::gpu::{DRAW_ORDER, MAX_SEGMENTERS, SLOT_REFINED0, heat_slot, thresholded};
use super::state::{HeatLayer, ViewMode};
use super::viewer::PaneSpec;

const CMAPS: [ColorMap; 4] = ColorMap::ALL;

/// A "Save as" dialog to show.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveRequest {
    pub title: String,
    pub file_name: String,
    pub directory: Option<PathBuf>,
    /// (name, extensions)
    pub filters: Vec<(&'static str, &'static [&'static str])>,
}

/// What a "Save as" dialog gave.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveChoice {
    Path(PathBuf),
    Cancelled,
    /// No dialog could be shown.
    NoDialog,
}

/// rfd answers sooner than this only when it could not show a dialog: nobody cancels one faster.
const NO_DIALOG: std::time::Duration = std::time::Duration::from_millis(400);

/// The "Save as" dialog through rfd. rfd returns `None` both when the analyst cancels and when
/// no dialog backend exists (no desktop portal on D-Bus, no zenity: it only logs that); the two
/// differ in time, so an answer of `None` within [`NO_DIALOG`] is taken as "no dialog".
pub fn rfd_save_dialog(req: &SaveRequest) -> SaveChoice {
    let mut dialog = rfd::FileDialog::new()
        .set_file_name(&req.file_name)
        .set_title(&req.title);
    for (name, exts) in &req.filters {
        dialog = dialog.add_filter(*name, exts);
    }
    if let Some(dir) = &req.directory {
        dialog = dialog.set_directory(dir);
    }
    let t0 = std::time::Instant::now();
    match dialog.save_file() {
        Some(p) => SaveChoice::Path(p),
        None if t0.elapsed() < NO_DIALOG => SaveChoice::NoDialog,
        None => SaveChoice::Cancelled,
    }
}

/// `<folder>/<image stem>_<suffix>.<ext>` beside the image, numbered (`_2`, `_3`, …) so that no
/// file is overwritten.
pub fn beside_image(image: &Path, suffix: &str, ext: &str) -> Option<PathBuf> {
    let stem = image.file_stem()?.to_string_lossy().into_owned();
    let dir = image.parent().unwrap_or(Path::new("."));
    (1..1000).find_map(|k| {
        let name = if k == 1 {
            format!("{stem}_{suffix}.{ext}")
        } else {
            format!("{stem}_{suffix}_{k}.{ext}")
        };
        let p = dir.join(name);
        (!p.exists()).then_some(p)
    })
}

/// Said after the file name when no dialog could be shown.
pub const NO_DIALOG_NOTE: &str =
    "no file dialog could be shown (no desktop portal or zenity), so it was saved beside the image";

/// A screenshot on its way from the renderer to the file.
pub struct ViewShot {
    path: PathBuf,
    /// Added to the message once written.
    note: Option<String>,
    /// The view's area in physical pixels when the export was asked for.
    area: egui::Rect,
    image: Arc<egui::ColorImage>,
}

/// Channel from the renderer's screenshot callbacks to the UI thread.
pub struct ViewShots {
    tx: mpsc::Sender<ViewShot>,
    rx: mpsc::Receiver<ViewShot>,
    /// Exports asked for and not written yet.
    pub pending: usize,
}

impl Default for ViewShots {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel();
        ViewShots { tx, rx, pending: 0 }
    }
}

/// The part of `image` inside `area` (physical pixels), as RGB.
pub fn crop_rgb(image: &egui::ColorImage, area: egui::Rect) -> Option<RgbImage> {
    let [iw, ih] = image.size;
    let x0 = (area.min.x.round().max(0.0) as usize).min(iw);
    let y0 = (area.min.y.round().max(0.0) as usize).min(ih);
    let x1 = (area.max.x.round().max(0.0) as usize).min(iw);
    let y1 = (area.max.y.round().max(0.0) as usize).min(ih);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let mut out = RgbImage::new((x1 - x0) as u32, (y1 - y0) as u32);
    for (y, row) in (y0..y1).enumerate() {
        for (x, c) in image.pixels[row * iw + x0..row * iw + x1]
            .iter()
            .enumerate()
        {
            out.put_pixel(x as u32, y as u32, image::Rgb([c.r(), c.g(), c.b()]));
        }
    }
    Some(out)
}

impl TamperscopeApp {
    /// Where to write an export named `<image stem>_<suffix>.<ext>`: the dialog's answer, or
    /// beside the image when no dialog can be shown (with the note to add to the message).
    /// `None`: cancelled (said in the status bar) or failed (said in the error bar).
    pub fn export_path(
        &mut self,
        suffix: &str,
        title: &str,
        filters: Vec<(&'static str, &'static [&'static str])>,
    ) -> Option<(PathBuf, Option<String>)> {
        let image = self.rt.doc.as_ref().map(|d| d.path.clone());
        let ext = filters
            .first()
            .and_then(|(_, e)| e.first())
            .copied()
            .unwrap_or("png");
        let stem = image
            .as_deref()
            .and_then(Path::file_stem)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tamperscope".into());
        let req = SaveRequest {
            title: title.into(),
            file_name: format!("{stem}_{suffix}.{ext}"),
            directory: self.settings.last_folder.clone(),
            filters,
        };
        match (self.rt.save_dialog)(&req) {
            SaveChoice::Path(p) => Some((p, None)),
            SaveChoice::Cancelled => {
                self.rt.notice = Some(format!("{title}: cancelled, nothing written"));
                None
            }
            SaveChoice::NoDialog => match image.and_then(|i| beside_image(&i, suffix, ext)) {
                Some(p) => Some((p, Some(NO_DIALOG_NOTE.into()))),
                None => {
                    self.rt.errors.push(format!(
                        "{title} failed: no file dialog could be shown (no desktop portal or \
                         zenity) and there is no image folder to save beside"
                    ));
                    None
                }
            },
        }
    }

    /// The message after an export to `path`.
    pub fn exported(&mut self, path: &Path, note: Option<String>) {
        self.rt.notice = Some(match note {
            Some(n) => format!("Exported {}: {n}", path.display()),
            None => format!("Exported {}", path.display()),
        });
    }

    /// Export the view as shown: ask the renderer for a screenshot of the next frame. Without
    /// a renderer (command-level tests), the layers are composed on the CPU instead.
    pub fn export_view(&mut self, path: PathBuf) {
        self.export_view_noted(path, None);
    }

    /// [`Self::export_view`], with a note for the message once written.
    pub fn export_view_noted(&mut self, path: PathBuf, note: Option<String>) {
        if self.rt.doc.as_ref().is_none_or(|d| d.working.is_none()) {
            self.rt
                .errors
                .push("Export failed: nothing to export: no image is open".into());
            return;
        }
        let (Some(ctx), Some(rect), true) = (self.rt.ctx.clone(), self.rt.view_rect, self.rt.gpu)
        else {
            match self.export_layers(&path) {
                Ok(()) => self.exported(&path, note),
                Err(e) => self
                    .rt
                    .errors
                    .push(format!("Export to {} failed: {e}", path.display())),
            }
            return;
        };
        let area = rect * ctx.pixels_per_point();
        let tx = self.rt.view_shots.tx.clone();
        let wake = ctx.clone();
        ctx.request_screenshot(move |image| {
            // The receiver lives as long as the app; a send can only fail at shutdown.
            let _ = tx.send(ViewShot {
                path,
                note,
                area,
                image,
            });
            wake.request_repaint();
        });
        self.rt.view_shots.pending += 1;
        self.rt.notice = Some("Exporting the view…".into());
    }

    /// Write the screenshots that arrived (called every frame).
    pub fn save_view_shots(&mut self) {
        let shots: Vec<ViewShot> = self.rt.view_shots.rx.try_iter().collect();
        for shot in shots {
            self.rt.view_shots.pending = self.rt.view_shots.pending.saturating_sub(1);
            let result = crop_rgb(&shot.image, shot.area)
                .context("the view is empty")
                .and_then(|img| {
                    let png = tamperscope::engine::imageio::png_rgb(
                        img.width(),
                        img.height(),
                        img.as_raw(),
                    )?;
                    tamperscope::engine::imageio::write_atomic(&shot.path, &png)?;
                    Ok(())
                });
            match result {
                Ok(()) => self.exported(&shot.path, shot.note),
                Err(e) => self
                    .rt
                    .errors
                    .push(format!("Export to {} failed: {e}", shot.path.display())),
            }
        }
    }

    fn slot_map(&self, slot: usize) -> Option<&Map> {
        let doc = self.rt.doc.as_ref()?;
        match HeatLayer::ALL.into_iter().find(|&l| heat_slot(l) == slot) {
            Some(layer) => doc.heat_map(layer),
            None => doc
                .segs
                .get(slot.checked_sub(SLOT_REFINED0)?)
                .and_then(|g| g.result.refined.as_ref()),
        }
    }

    /// One pane composed at the working resolution.
    pub fn compose(&self, spec: &PaneSpec) -> Option<RgbImage> {
        let doc = self.rt.doc.as_ref()?;
        let mut img: RgbImage = (**doc.working.as_ref()?).clone();
        let u = self.pane_uniforms(spec);
        let threshold = self.settings.display_threshold;
        for slot in DRAW_ORDER {
            let opacity = u.heat(slot);
            let Some(map) = self.slot_map(slot).filter(|_| opacity > 0.0) else {
                continue;
            };
            if map.width != img.width() as usize || map.height != img.height() as usize {
                continue;
            }
            let cmap = CMAPS
                .get(u.heat_cmap[slot / 4][slot % 4] as usize)
                .copied()
                .unwrap_or_default();
            // The shader's rule: alpha = opacity * value, the threshold only on its slots.
            let t = if thresholded(slot) { threshold } else { 0.0 };
            img = heat_overlay_graded(&img, map, cmap, opacity, t);
        }
        for (i, seg) in doc.segs.iter().enumerate().take(MAX_SEGMENTERS) {
            let regions = &seg.result.segmentation.regions;
            if u.mask_opacity[i] > 0.0 {
                img = regions_overlay(&img, regions.iter().map(|r| &r.mask));
            }
            if u.chosen_opacity[i] > 0.0
                && let Some(r) = seg.result.chosen.and_then(|c| regions.get(c))
            {
                img = chosen_overlay(&img, &r.mask);
            }
        }
        Some(img)
    }

    /// [`Self::export_layers`] and its message.
    pub fn export_layers_noted(&mut self, path: &Path, note: Option<String>) {
        match self.export_layers(path) {
            Ok(()) => self.exported(path, note),
            Err(e) => self
                .rt
                .errors
                .push(format!("Export to {} failed: {e}", path.display())),
        }
    }

    /// The scalar maps `spec` draws, in draw order: (layer name, colour map), as the view's
    /// colour scales list them.
    pub fn pane_scales(&self, spec: &PaneSpec) -> Vec<(String, ColorMap)> {
        let u = self.pane_uniforms(spec);
        let mut out = Vec::new();
        for slot in DRAW_ORDER {
            if u.heat(slot) <= 0.0 || self.slot_map(slot).is_none() {
                continue;
            }
            // An empty copy-move map draws nothing, as in the view.
            if slot == super::gpu::SLOT_COPY_MOVE
                && !self.rt.doc.as_ref().is_some_and(|d| d.copy_move_found())
            {
                continue;
            }
            let cmap = CMAPS
                .get(u.heat_cmap[slot / 4][slot % 4] as usize)
                .copied()
                .unwrap_or_default();
            let name = match HeatLayer::ALL.into_iter().find(|&l| heat_slot(l) == slot) {
                Some(layer) => layer.label().to_string(),
                None => {
                    let seg = self
                        .rt
                        .doc
                        .as_ref()
                        .and_then(|d| d.segs.get(slot - SLOT_REFINED0))
                        .map(|g| g.name.clone())
                        .unwrap_or_default();
                    format!("H · {seg}")
                }
            };
            out.push((name, cmap));
        }
        out
    }

    /// Compose the whole image with the visible layers (all compare panes side by side, each
    /// with its colour scales under it) and write it as PNG.
    pub fn export_layers(&self, path: &Path) -> anyhow::Result<()> {
        let specs: Vec<PaneSpec> = match self.settings.view_mode {
            ViewMode::Single => vec![PaneSpec::Main],
            ViewMode::Compare => self
                .pane_contents()
                .into_iter()
                .map(PaneSpec::Compare)
                .collect(),
        };
        let mut text = LegendText::new();
        let panes: Vec<RgbImage> = specs
            .iter()
            .filter_map(|s| {
                let img = self.compose(s)?;
                Some(with_colour_scales(&img, &self.pane_scales(s), &mut text))
            })
            .collect();
        let first = panes
            .first()
            .context("nothing to export: no image is open")?;
        let gap = 8;
        let w = first.width();
        // Panes with more scales are taller.
        let h = panes.iter().map(RgbImage::height).max().unwrap_or(0);
        let n = panes.len() as u32;
        let mut out = RgbImage::from_pixel(w * n + gap * (n - 1), h, LEGEND_BACKGROUND);
        for (k, p) in panes.iter().enumerate() {
            image::imageops::replace(&mut out, p, (k as u32 * (w + gap)) as i64, 0);
        }
        let png = tamperscope::engine::imageio::png_rgb(out.width(), out.height(), out.as_raw())?;
        tamperscope::engine::imageio::write_atomic(path, &png)?;
        Ok(())
    }
}

/// Background of the exported colour scales (the view's).
pub const LEGEND_BACKGROUND: image::Rgb<u8> = image::Rgb([30, 30, 30]);
/// Height of one exported colour scale: its name, then the bar between "0" and "1".
pub const LEGEND_ROW: u32 = 34;
/// Left edge and height of an exported colour bar, px.
pub const LEGEND_BAR_X: u32 = 20;
pub const LEGEND_BAR_H: u32 = 8;

/// Where the bar of an exported colour scale lies in a pane `pane_width` wide: `[x0, x1)`.
pub fn legend_bar_span(pane_width: u32) -> (u32, u32) {
    let x1 = (LEGEND_BAR_X + 256).min(pane_width.saturating_sub(LEGEND_BAR_X));
    (LEGEND_BAR_X, x1.max(LEGEND_BAR_X + 1))
}

/// Text for the exported colour scales, drawn with egui's own fonts from epaint's glyph atlas,
/// so that the PNG needs no system font.
pub struct LegendText {
    fonts: egui::epaint::text::Fonts,
}

impl Default for LegendText {
    fn default() -> Self {
        Self::new()
    }
}

impl LegendText {
    pub fn new() -> LegendText {
        LegendText {
            fonts: egui::epaint::text::Fonts::new(
                egui::epaint::text::TextOptions::default(),
                egui::FontDefinitions::default(),
            ),
        }
    }

    /// Draw `text` at `size` px with its top-left corner at `(x, y)` in `rgb`, clipped to
    /// `img`; returns its width in px.
    pub fn draw(
        &mut self,
        img: &mut RgbImage,
        (x, y): (i64, i64),
        text: &str,
        size: f32,
        rgb: [u8; 3],
    ) -> f32 {
        let job = egui::text::LayoutJob::simple(
            text.to_owned(),
            egui::FontId::proportional(size),
            egui::Color32::WHITE,
            f32::INFINITY,
        );
        let galley = self.fonts.layout_uncached(1.0, Arc::new(job));
        // After the layout: the atlas holds the glyphs it rasterised.
        let atlas = self.fonts.image();
        let [aw, ah] = atlas.size;
        for row in &galley.rows {
            for g in &row.row.glyphs {
                let uv = g.uv_rect;
                if uv.is_nothing() {
                    continue;
                }
                let left_top = row.pos + g.pos.to_vec2() + uv.offset;
                let (ox, oy) = (x + left_top.x.round() as i64, y + left_top.y.round() as i64);
                for v in uv.min[1]..uv.max[1] {
                    for u in uv.min[0]..uv.max[0] {
                        let (u, v) = (usize::from(u), usize::from(v));
                        if u >= aw || v >= ah {
                            continue;
                        }
                        let a = atlas.pixels[v * aw + u].a();
                        let px = ox + (u - usize::from(uv.min[0])) as i64;
                        let py = oy + (v - usize::from(uv.min[1])) as i64;
                        if a == 0
                            || px < 0
                            || py < 0
                            || px >= i64::from(img.width())
                            || py >= i64::from(img.height())
                        {
                            continue;
                        }
                        let p = img.get_pixel_mut(px as u32, py as u32);
                        let t = f32::from(a) / 255.0;
                        for (c, &to) in p.0.iter_mut().zip(&rgb) {
                            *c = (f32::from(*c) * (1.0 - t) + f32::from(to) * t).round() as u8;
                        }
                    }
                }
            }
        }
        galley.size().x
    }
}

/// `pane` with one colour scale per entry under it: the layer's name and colour map's name,
/// then the colour of 0 on the left of the bar, of 1 on the right, labelled "0" and "1" (as the
/// view's colour scales). No entry: `pane` as it is.
pub fn with_colour_scales(
    pane: &RgbImage,
    scales: &[(String, ColorMap)],
    text: &mut LegendText,
) -> RgbImage {
    if scales.is_empty() {
        return pane.clone();
    }
    let (w, h) = (pane.width(), pane.height());
    let mut out = RgbImage::from_pixel(
        w,
        h + LEGEND_ROW * scales.len() as u32 + 6,
        LEGEND_BACKGROUND,
    );
    image::imageops::replace(&mut out, pane, 0, 0);
    let (x0, x1) = legend_bar_span(w);
    let light = [230, 230, 230];
    for (k, (name, cmap)) in scales.iter().enumerate() {
        let top = h + 6 + LEGEND_ROW * k as u32;
        text.draw(
            &mut out,
            (i64::from(LEGEND_BAR_X) - 12, i64::from(top)),
            &format!("{name} · colour map {}", cmap.name()),
            12.0,
            light,
        );
        let bar_top = top + 18;
        for x in x0..x1 {
            let t = (x - x0) as f32 / (x1 - x0 - 1).max(1) as f32;
            let c = image::Rgb(cmap.rgb8(t));
            for y in bar_top..bar_top + LEGEND_BAR_H {
                out.put_pixel(x, y, c);
            }
        }
        // "0" left of the bar, "1" right of it, centred on it.
        let label_y = i64::from(bar_top) - 4;
        text.draw(&mut out, (i64::from(x0) - 10, label_y), "0", 11.0, light);
        text.draw(&mut out, (i64::from(x1) + 3, label_y), "1", 11.0, light);
    }
    out
}
