//! PNG exports, written atomically:
//! - "Export view as PNG…": the image view exactly as shown (pan, zoom, compare panes, the GPU's
//!   blending), cut from a screenshot of the next frame at screen resolution;
//! - "Export layers as PNG…": the whole image composed on the CPU at the working resolution with
//!   the engine's own overlay functions (the same layers, opacities and colour maps as on screen;
//!   the compare view exports its panes side by side). Also the fallback without a renderer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use anyhow::Context as _;
use image::RgbImage;
use tamperscope::colormap::ColorMap;
use tamperscope::output::{chosen_overlay, heat_overlay, regions_overlay};
use tamperscope::raster::Map;

use super::TamperscopeApp;
use super::gpu::{DRAW_ORDER, MAX_PANES, MAX_SEGMENTERS, SLOT_REFINED0, heat_slot};
use super::state::{HeatLayer, PaneContent, ViewMode};
use super::viewer::PaneSpec;

const CMAPS: [ColorMap; 4] = ColorMap::ALL;

/// A screenshot on its way from the renderer to the file.
pub struct ViewShot {
    path: PathBuf,
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
    /// "Save as" for a PNG named after the open image.
    pub fn png_save_dialog(&self, suffix: &str, title: &str) -> Option<PathBuf> {
        let name = self
            .rt
            .doc
            .as_ref()
            .and_then(|d| d.path.file_stem())
            .map(|s| format!("{}_{suffix}.png", s.to_string_lossy()))
            .unwrap_or_else(|| format!("{suffix}.png"));
        let mut dialog = rfd::FileDialog::new()
            .add_filter("PNG", &["png"])
            .set_file_name(name)
            .set_title(title);
        if let Some(dir) = &self.settings.last_folder {
            dialog = dialog.set_directory(dir);
        }
        dialog.save_file()
    }

    /// Export the view as shown: ask the renderer for a screenshot of the next frame. Without
    /// a renderer (command-level tests), the layers are composed on the CPU instead.
    pub fn export_view(&mut self, path: PathBuf) {
        if self.rt.doc.as_ref().is_none_or(|d| d.working.is_none()) {
            self.rt
                .errors
                .push("Export failed: nothing to export: no image is open".into());
            return;
        }
        let (Some(ctx), Some(rect), true) = (self.rt.ctx.clone(), self.rt.view_rect, self.rt.gpu)
        else {
            match self.export_layers(&path) {
                Ok(()) => self.rt.notice = Some(format!("Exported {}", path.display())),
                Err(e) => self.rt.errors.push(format!("Export failed: {e}")),
            }
            return;
        };
        let area = rect * ctx.pixels_per_point();
        let tx = self.rt.view_shots.tx.clone();
        let wake = ctx.clone();
        ctx.request_screenshot(move |image| {
            // The receiver lives as long as the app; a send can only fail at shutdown.
            let _ = tx.send(ViewShot { path, area, image });
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
                    let png =
                        tamperscope::imageio::png_rgb(img.width(), img.height(), img.as_raw())?;
                    tamperscope::imageio::write_atomic(&shot.path, &png)?;
                    Ok(())
                });
            match result {
                Ok(()) => self.rt.notice = Some(format!("Exported {}", shot.path.display())),
                Err(e) => self.rt.errors.push(format!("Export failed: {e}")),
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
            if threshold <= 0.0 {
                img = heat_overlay(&img, map, cmap, opacity);
            } else {
                for (p, &v) in img.pixels_mut().zip(&map.data) {
                    if v >= threshold {
                        let c = cmap.rgb8(v);
                        for (d, s) in p.0.iter_mut().zip(c) {
                            *d = (*d as f32 * (1.0 - opacity) + s as f32 * opacity).round() as u8;
                        }
                    }
                }
            }
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

    /// Compose the whole image with the visible layers (all compare panes side by side) and
    /// write it as PNG.
    pub fn export_layers(&self, path: &Path) -> anyhow::Result<()> {
        let specs: Vec<PaneSpec> = match self.settings.view_mode {
            ViewMode::Single => vec![PaneSpec::Main],
            ViewMode::Compare => (0..self.settings.compare_panes.clamp(2, MAX_PANES))
                .map(|i| {
                    PaneSpec::Compare(
                        self.settings
                            .pane_content
                            .get(i)
                            .cloned()
                            .unwrap_or(PaneContent::Photo),
                    )
                })
                .collect(),
        };
        let panes: Vec<RgbImage> = specs.iter().filter_map(|s| self.compose(s)).collect();
        let first = panes
            .first()
            .context("nothing to export: no image is open")?;
        let gap = 8;
        let (w, h) = (first.width(), first.height());
        let n = panes.len() as u32;
        let mut out = RgbImage::from_pixel(w * n + gap * (n - 1), h, image::Rgb([30, 30, 30]));
        for (k, p) in panes.iter().enumerate() {
            image::imageops::replace(&mut out, p, (k as u32 * (w + gap)) as i64, 0);
        }
        let png = tamperscope::imageio::png_rgb(out.width(), out.height(), out.as_raw())?;
        tamperscope::imageio::write_atomic(path, &png)?;
        Ok(())
    }
}
