//! "Export view as PNG…": the current view composed on the CPU at the working resolution with the
//! engine's own overlay functions (the same layers, opacities and colour maps as on screen; the
//! compare view exports its panes side by side). Written atomically.

use std::path::Path;

use anyhow::Context as _;
use image::RgbImage;
use tamperscope::colormap::ColorMap;
use tamperscope::output::{chosen_overlay, heat_overlay, regions_overlay};
use tamperscope::raster::Map;

use super::TamperscopeApp;
use super::gpu::{HEAT_SLOTS, MAX_PANES, MAX_SEGMENTERS, SLOT_ELA, SLOT_FUSED, SLOT_REFINED0};
use super::state::{PaneContent, ViewMode};
use super::viewer::PaneSpec;

const CMAPS: [ColorMap; 4] = ColorMap::ALL;

impl TamperscopeApp {
    fn slot_map(&self, slot: usize) -> Option<&Map> {
        let doc = self.rt.doc.as_ref()?;
        match slot {
            SLOT_ELA => doc.ela.as_ref(),
            SLOT_FUSED => doc.fused.as_ref(),
            s if s < SLOT_FUSED => doc.variant(s as u32 + 1).map(|v| &v.cam),
            s => doc
                .segs
                .get(s - SLOT_REFINED0)
                .and_then(|g| g.result.refined.as_ref()),
        }
    }

    /// One pane composed at the working resolution.
    pub fn compose(&self, spec: &PaneSpec) -> Option<RgbImage> {
        let doc = self.rt.doc.as_ref()?;
        let mut img: RgbImage = (**doc.working.as_ref()?).clone();
        let u = self.pane_uniforms(spec);
        let threshold = self.settings.display_threshold;
        for slot in 0..HEAT_SLOTS {
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

    /// Compose the current view (all compare panes side by side) and write it as PNG.
    pub fn export_view(&self, path: &Path) -> anyhow::Result<()> {
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
