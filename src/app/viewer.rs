//! The image view: the wgpu paint callback that blends the photo and the
//! layers (`shaders/view.wgsl`), and the pixel readout under the cursor.
//!
//! Coordinates: "screen" = egui points, "image" = photo pixels, "work" = working-resolution pixels
//! of the maps and masks. Transforms are named `target_from_source`.

use egui::{Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2, vec2};

use super::TamperscopeApp;
use super::command::Command;
use super::gpu::{self, MAX_SEGMENTERS, SLOT_COPY_MOVE, SLOT_REFINED0, ViewCallback, ViewUniforms};
use super::state::{HeatLayer, PaneContent};
use super::transform::ViewTransform;

/// What a pane draws over the photo.
#[derive(Debug, Clone, PartialEq)]
pub enum PaneSpec {
    /// The single view: every visible layer of the settings.
    Main,
    /// A compare pane: one layer.
    Compare(PaneContent),
}

/// The pixel under the cursor and the values of the visible layers there.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Readout {
    pub x: u32,
    pub y: u32,
    pub rgb: [u8; 3],
    pub values: Vec<(String, String)>,
}

impl TamperscopeApp {
    /// Uniforms for one pane: which layers, how opaque, which colour map; the transform is added by
    /// [`Self::view_ui`].
    pub fn pane_uniforms(&self, spec: &PaneSpec) -> ViewUniforms {
        let mut u = ViewUniforms::zeroed_default();
        let s = &self.settings;
        let Some(doc) = &self.rt.doc else { return u };
        u.misc = [s.display_threshold, 0.12, 0.0, 0.0];
        u.chosen_index = [-1; 4];
        u.highlight = [-1; 4];
        let heat_on = |layer: HeatLayer| doc.heat_map(layer).is_some();
        let heat_slot = gpu::heat_slot;
        for (i, seg) in doc.segs.iter().enumerate().take(MAX_SEGMENTERS) {
            u.chosen_index[i] = seg.result.chosen.map(|c| c as i32).unwrap_or(-1);
        }
        match spec {
            PaneSpec::Main => {
                for layer in HeatLayer::ALL {
                    let style = s.heat[layer.index()];
                    if heat_on(layer) {
                        u.set_heat(
                            heat_slot(layer),
                            style.effective(),
                            style.cmap.shader_index(),
                        );
                    }
                }
                for (i, seg) in doc.segs.iter().enumerate().take(MAX_SEGMENTERS) {
                    let t = s.seg_toggles(&seg.name);
                    if t.refined && seg.result.refined.is_some() {
                        u.set_heat(
                            SLOT_REFINED0 + i,
                            s.refined.effective(),
                            s.refined.cmap.shader_index(),
                        );
                    }
                    if t.masks {
                        u.mask_opacity[i] = s.masks_opacity;
                    }
                    if t.chosen && seg.result.chosen.is_some() {
                        u.chosen_opacity[i] = s.chosen_opacity;
                    }
                }
            }
            PaneSpec::Compare(content) => match content {
                PaneContent::Photo => {}
                PaneContent::Heat(layer) => {
                    let style = s.heat[layer.index()];
                    if heat_on(*layer) {
                        u.set_heat(heat_slot(*layer), style.opacity, style.cmap.shader_index());
                    }
                }
                PaneContent::Refined(i) => {
                    if doc.segs.get(*i).is_some_and(|g| g.result.refined.is_some())
                        && *i < MAX_SEGMENTERS
                    {
                        u.set_heat(
                            SLOT_REFINED0 + i,
                            s.refined.opacity,
                            s.refined.cmap.shader_index(),
                        );
                    }
                }
                PaneContent::Masks(i) => {
                    if *i < MAX_SEGMENTERS && *i < doc.segs.len() {
                        u.mask_opacity[*i] = s.masks_opacity;
                        u.chosen_opacity[*i] = if doc.segs[*i].result.chosen.is_some() {
                            s.chosen_opacity
                        } else {
                            0.0
                        };
                    }
                }
            },
        }
        if let Some((seg, region)) = self.rt.effective_highlight()
            && seg < MAX_SEGMENTERS
        {
            u.highlight = [seg as i32, region as i32, 0, 0];
        }
        u
    }

    /// The segmenter whose masks the cursor picks in a pane.
    /// The first segmenter shown in the pane (masks or chosen mask) with a region at working
    /// pixel (wx, wy), and that region.
    fn pick_region(&self, spec: &PaneSpec, wx: usize, wy: usize) -> Option<(usize, Option<usize>)> {
        let doc = self.rt.doc.as_ref()?;
        let shown: Vec<usize> = match spec {
            PaneSpec::Main => (0..doc.segs.len().min(MAX_SEGMENTERS))
                .filter(|&i| {
                    let t = self.settings.seg_toggles(&doc.segs[i].name);
                    t.masks || t.chosen
                })
                .collect(),
            PaneSpec::Compare(PaneContent::Masks(i)) if *i < doc.segs.len() => vec![*i],
            PaneSpec::Compare(_) => Vec::new(),
        };
        let first = *shown.first()?;
        Some(
            shown
                .iter()
                .find_map(|&i| doc.segs[i].region_at(wx, wy).map(|r| (i, Some(r))))
                .unwrap_or((first, None)),
        )
    }

    /// One image pane: input (pan, zoom, hover, click on a mask) and the paint callback.
    /// Returns the commands to apply and the readout under the cursor.
    pub fn view_ui(
        &self,
        ui: &mut egui::Ui,
        pane: usize,
        spec: &PaneSpec,
        cmds: &mut Vec<Command>,
    ) -> Option<Readout> {
        let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        let Some(doc) = &self.rt.doc else {
            ui.painter().rect_filled(rect, 0.0, super::VIEW_BACKGROUND);
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Open an image: File ▸ Open…, drop a file here, or pass it on the command line",
                egui::FontId::proportional(15.0),
                egui::Color32::GRAY,
            );
            return None;
        };
        let Some((pw, ph)) = doc.photo_size() else {
            ui.painter().rect_filled(rect, 0.0, super::VIEW_BACKGROUND);
            if doc.running {
                ui.put(rect, egui::Spinner::new().size(32.0));
            } else {
                // Loading failed or was cancelled: no spinner, say so (the error bar has the cause).
                let name = doc
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let why = if doc.cancelled {
                    "cancelled"
                } else {
                    "see the message above"
                };
                ui.put(
                    rect,
                    egui::Label::new(
                        egui::RichText::new(format!("Could not open {name} ({why})"))
                            .color(egui::Color32::GRAY)
                            .size(15.0),
                    ),
                );
            }
            return None;
        };
        let image_size = vec2(pw, ph);
        let view = self.rt.view.resolved(rect, image_size);
        self.rt
            .last_fit_zoom
            .set(ViewTransform::default().resolved(rect, image_size).zoom);
        self.rt
            .last_zoom
            .set(view.zoom * ui.ctx().pixels_per_point());

        // Input.
        if response.dragged() {
            let delta = response.drag_delta();
            if delta != Vec2::ZERO {
                cmds.push(Command::SetView(view.panned(delta)));
            }
        }
        let hover = response.hover_pos();
        if let Some(p) = hover {
            let (scroll, zoom) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
            let factor = zoom * (scroll * 0.0025).exp();
            if (factor - 1.0).abs() > 1e-4 {
                cmds.push(Command::SetView(view.zoomed_about(rect, p, factor)));
            }
        }

        let ppp = ui.ctx().pixels_per_point();
        let mut u = self.pane_uniforms(spec);
        let origin = view.screen_from_image(rect, Pos2::ZERO);
        u.origin_scale = [
            origin.x * ppp,
            origin.y * ppp,
            view.zoom * ppp,
            if self.rt.linear_target { 1.0 } else { 0.0 },
        ];
        let (ww, wh) = doc.work_size().unwrap_or((1, 1));
        u.sizes = [pw, ph, ww as f32, wh as f32];
        // Pixel peeping: nearest sampling once an image pixel is larger than two screen pixels.
        u.misc[2] = if view.zoom * ppp > 2.0 { 1.0 } else { 0.0 };

        if self.rt.gpu {
            // The shader runs only where the photo is: a software rasteriser pays for every
            // fragment, and at "fit" the letterbox can be half the pane. egui fills the rest.
            let photo_rect = Rect::from_two_pos(
                view.screen_from_image(rect, Pos2::ZERO),
                view.screen_from_image(rect, Pos2::new(pw, ph)),
            );
            let shown = rect.intersect(photo_rect);
            let shown = (shown.width() > 0.0 && shown.height() > 0.0).then_some(shown);
            let background = super::VIEW_BACKGROUND;
            match shown {
                Some(shown) => {
                    // Strips around the photo, one point into it so that no seam is left when
                    // the edges are rounded to pixels (the callback paints over the overlap).
                    let inner = shown.shrink(1.0);
                    for strip in [
                        Rect::from_min_max(rect.min, egui::pos2(rect.max.x, inner.min.y)),
                        Rect::from_min_max(egui::pos2(rect.min.x, inner.max.y), rect.max),
                        Rect::from_min_max(
                            egui::pos2(rect.min.x, inner.min.y),
                            egui::pos2(inner.min.x, inner.max.y),
                        ),
                        Rect::from_min_max(
                            egui::pos2(inner.max.x, inner.min.y),
                            egui::pos2(rect.max.x, inner.max.y),
                        ),
                    ] {
                        if strip.width() > 0.0 && strip.height() > 0.0 {
                            ui.painter().rect_filled(strip, 0.0, background);
                        }
                    }
                    ui.painter().add(egui_wgpu::Callback::new_paint_callback(
                        shown,
                        ViewCallback {
                            pane,
                            scene: self.rt.scene.clone(),
                            uniforms: u,
                        },
                    ));
                }
                None => {
                    ui.painter().rect_filled(rect, 0.0, background);
                }
            }
        } else {
            ui.painter().rect_filled(rect, 0.0, super::VIEW_BACKGROUND);
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "The image view needs the wgpu renderer",
                egui::FontId::proportional(15.0),
                egui::Color32::LIGHT_RED,
            );
        }

        // Over the photo: the answer's region, the chosen regions' labels, the colour scales.
        let work_to_screen = |q: Pos2| {
            view.screen_from_image(
                rect,
                Pos2::new(q.x * pw / ww.max(1) as f32, q.y * ph / wh.max(1) as f32),
            )
        };
        let image_to_screen = |q: Pos2| view.screen_from_image(rect, q);
        self.overlays_ui(ui, rect, spec, &u, &work_to_screen, &image_to_screen);

        // Readout, hover and click on masks.
        let mut readout = None;
        let mut tooltip = None;
        if let Some(p) = hover {
            let q = view.image_from_screen(rect, p);
            if q.x >= 0.0 && q.y >= 0.0 && q.x < pw && q.y < ph {
                let (x, y) = (q.x as u32, q.y as u32);
                let wx = ((q.x / pw) * ww as f32) as usize;
                let wy = ((q.y / ph) * wh as f32) as usize;
                let (wx, wy) = (wx.min(ww.saturating_sub(1)), wy.min(wh.saturating_sub(1)));
                readout = Some(self.readout_at(x, y, wx, wy, spec));
                // Over a marked copy-move pixel: a line to where its region was matched.
                if u.heat(SLOT_COPY_MOVE) > 0.0
                    && let Some(m) = doc.copy_move_partner(x as f32 + 0.5, y as f32 + 0.5)
                {
                    let painter = ui.painter_at(rect);
                    let (a, b) = (
                        image_to_screen(Pos2::new(m.at[0], m.at[1])),
                        image_to_screen(Pos2::new(m.partner[0], m.partner[1])),
                    );
                    for (width, color) in [(4.0f32, Color32::from_black_alpha(200)), (2.0, PARTNER)]
                    {
                        painter.line_segment([a, b], Stroke::new(width, color));
                        painter.circle_stroke(b, 7.0, Stroke::new(width, color));
                    }
                    tooltip = Some(partner_text(&m));
                }
                if let Some((seg, region)) = self.pick_region(spec, wx, wy) {
                    if let Some(r) = region {
                        cmds.push(Command::Highlight(Some((seg, r))));
                    }
                    if response.double_clicked() {
                        if let Some(r) = region {
                            cmds.push(Command::ChooseMask {
                                seg,
                                region: Some(r),
                            });
                        }
                    } else if response.clicked() {
                        cmds.push(Command::Pin(region.map(|r| (seg, r))));
                    }
                }
            }
        }
        if let Some(text) = tooltip {
            let _ = response.on_hover_text_at_pointer(text);
        }
        readout
    }

    fn readout_at(&self, x: u32, y: u32, wx: usize, wy: usize, spec: &PaneSpec) -> Readout {
        let mut out = Readout {
            x,
            y,
            ..Default::default()
        };
        let Some(doc) = &self.rt.doc else { return out };
        if let Some(photo) = &doc.photo
            && x < photo.width()
            && y < photo.height()
        {
            out.rgb = photo.get_pixel(x, y).0;
        }
        let u = self.pane_uniforms(spec);
        let value = |m: &tamperscope::engine::raster::Map| {
            m.data.get(wy * m.width + wx).copied().unwrap_or(0.0)
        };
        for layer in HeatLayer::ALL {
            let slot = gpu::heat_slot(layer);
            if u.heat(slot) > 0.0
                && let Some(m) = doc.heat_map(layer)
            {
                out.values
                    .push((layer.label().to_string(), format!("{:.3}", value(m))));
            }
        }
        if u.heat(SLOT_COPY_MOVE) > 0.0
            && let Some(m) = doc.copy_move_partner(x as f32 + 0.5, y as f32 + 0.5)
        {
            out.values.push((
                "Copy-move".into(),
                format!("partner ({:.0}, {:.0})", m.partner[0], m.partner[1]),
            ));
        }
        for (i, seg) in doc.segs.iter().enumerate().take(MAX_SEGMENTERS) {
            if u.heat(SLOT_REFINED0 + i) > 0.0
                && let Some(h) = &seg.result.refined
            {
                out.values
                    .push((format!("H {}", seg.name), format!("{:.3}", value(h))));
            }
            if (u.mask_opacity[i] > 0.0 || u.chosen_opacity[i] > 0.0)
                && let Some(r) = seg.region_at(wx, wy)
            {
                let s = seg
                    .result
                    .scores
                    .get(r)
                    .map(|s| format!(" S={s:.2}"))
                    .unwrap_or_default();
                out.values.push((
                    seg.name.clone(),
                    format!("#{r} {}{s}", seg.result.segmentation.regions[r].label),
                ));
            }
        }
        out
    }
}

impl TamperscopeApp {
    /// What egui paints over a pane (after the GPU callback, so on top of it): the answer's
    /// outline in the single view, a label on each chosen region shown, and one colour scale per
    /// visible heat layer.
    fn overlays_ui(
        &self,
        ui: &egui::Ui,
        rect: Rect,
        spec: &PaneSpec,
        u: &ViewUniforms,
        work_to_screen: &dyn Fn(Pos2) -> Pos2,
        image_to_screen: &dyn Fn(Pos2) -> Pos2,
    ) {
        let Some(doc) = &self.rt.doc else { return };
        let painter = ui.painter_at(rect);
        let label = |pos: Pos2, text: &str, color: Color32| {
            let galley =
                painter.layout_no_wrap(text.to_string(), FontId::proportional(12.0), color);
            let r = Rect::from_min_size(pos, galley.size()).expand(3.0);
            // Kept inside the pane.
            let r = r.translate(vec2(
                (rect.max.x - r.max.x).min(0.0) + (rect.min.x - r.min.x).max(0.0),
                (rect.max.y - r.max.y).min(0.0) + (rect.min.y - r.min.y).max(0.0),
            ));
            painter.rect_filled(r, 3.0, Color32::from_black_alpha(190));
            painter.galley(r.min + vec2(3.0, 3.0), galley, color);
        };
        if *spec == PaneSpec::Main {
            // Secondary: each segmenter's chosen region (cyan, drawn by the shader) is labelled.
            for (i, seg) in doc.segs.iter().enumerate().take(MAX_SEGMENTERS) {
                if u.chosen_opacity[i] <= 0.0 {
                    continue;
                }
                let Some(r) = seg
                    .result
                    .chosen
                    .and_then(|c| seg.result.segmentation.regions.get(c))
                else {
                    continue;
                };
                let [x0, y0, _, _] = r.bbox;
                let at = work_to_screen(Pos2::new(x0 as f32, y0 as f32));
                label(
                    at + vec2(2.0, 2.0),
                    &format!("{}'s chosen region (secondary)", seg.name),
                    Color32::from_rgb(80, 230, 230),
                );
            }
            // Primary: the answer's region, white over a dark stroke.
            if let Some(o) = &self.rt.answer_outline {
                for [a, b] in &o.segments {
                    let (a, b) = (work_to_screen(*a), work_to_screen(*b));
                    painter.line_segment([a, b], Stroke::new(4.0, Color32::from_black_alpha(200)));
                }
                for [a, b] in &o.segments {
                    let (a, b) = (work_to_screen(*a), work_to_screen(*b));
                    painter.line_segment([a, b], Stroke::new(2.0, super::answer::OUTLINE));
                }
                if let Some(bb) = o.bbox {
                    let at = work_to_screen(bb.min);
                    label(
                        at + vec2(0.0, -22.0),
                        &format!("answer: H ≥ {}", super::answer::REGION_THRESHOLD),
                        super::answer::OUTLINE,
                    );
                }
            }
        }
        // Copy-move: a box around each repeated region, numbered with the region it matches.
        if u.heat(SLOT_COPY_MOVE) > 0.0
            && let Some(cm) = doc.copy_move.as_ref().filter(|c| c.absent.is_none())
        {
            let partners = super::state::copy_move_partners(cm);
            for (i, (r, p)) in cm.regions.iter().zip(&partners).enumerate() {
                let [x0, y0, x1, y1] = r.bbox;
                let b = Rect::from_two_pos(
                    image_to_screen(Pos2::new(x0, y0)),
                    image_to_screen(Pos2::new(x1, y1)),
                );
                painter.rect_stroke(
                    b,
                    0.0,
                    Stroke::new(3.0, Color32::from_black_alpha(200)),
                    egui::StrokeKind::Middle,
                );
                painter.rect_stroke(b, 0.0, Stroke::new(1.5, PARTNER), egui::StrokeKind::Middle);
                let text = match p {
                    Some(j) => format!("copy-move {} (matches {})", i + 1, j + 1),
                    None => format!("copy-move {}", i + 1),
                };
                label(b.min + vec2(2.0, 2.0), &text, PARTNER);
            }
        }
        // Colour scales of the heat layers this pane draws.
        let s = &self.settings;
        let mut scales: Vec<(String, tamperscope::outputs::colormap::ColorMap, bool)> = Vec::new();
        for layer in HeatLayer::ALL {
            // An empty copy-move map draws nothing: no scale to read.
            if layer == HeatLayer::CopyMove && !doc.copy_move_found() {
                continue;
            }
            if u.heat(gpu::heat_slot(layer)) > 0.0 && doc.heat_map(layer).is_some() {
                let thresholded = gpu::THRESHOLD_SLOTS & (1 << gpu::heat_slot(layer)) != 0;
                scales.push((
                    layer.label().to_string(),
                    s.heat[layer.index()].cmap,
                    thresholded,
                ));
            }
        }
        for (i, seg) in doc.segs.iter().enumerate().take(MAX_SEGMENTERS) {
            if u.heat(SLOT_REFINED0 + i) > 0.0 {
                scales.push((format!("H · {}", seg.name), s.refined.cmap, true));
            }
        }
        colour_scales_ui(&painter, rect, &scales, s.display_threshold);
    }
}

/// Colour of the copy-move boxes and partner marker: viridis' 1, the layer's default colour.
const PARTNER: Color32 = Color32::from_rgb(253, 231, 37);

/// The hover text over a marked copy-move pixel. The detector cannot tell the original from the
/// copy, so the partner is "copied from or to".
pub fn partner_text(m: &super::state::CopyMovePartner) -> String {
    format!(
        "Copy-move: copied from or to ({:.0}, {:.0}), offset ({:.0}, {:.0}) px",
        m.partner[0], m.partner[1], m.offset[0], m.offset[1]
    )
}

/// Width of a colour scale's bar, in points.
pub const SCALE_WIDTH: f32 = 120.0;

/// One colour bar per entry (name, colour map, whether the display threshold applies), stacked
/// in the bottom-left corner of `rect`: the colour of 0 on the left, of 1 on the right. A mark
/// shows the display threshold where it hides values.
pub fn colour_scales_ui(
    painter: &egui::Painter,
    rect: Rect,
    scales: &[(String, tamperscope::outputs::colormap::ColorMap, bool)],
    threshold: f32,
) {
    if scales.is_empty() {
        return;
    }
    let row = 30.0;
    let pad = 6.0;
    let name_w = scales
        .iter()
        .map(|(n, _, _)| {
            painter
                .layout_no_wrap(n.clone(), FontId::proportional(11.0), Color32::WHITE)
                .size()
                .x
        })
        .fold(0.0f32, f32::max);
    let w = SCALE_WIDTH.max(name_w) + 2.0 * pad + 16.0;
    let h = row * scales.len() as f32 + pad;
    let bg = Rect::from_min_size(
        Pos2::new(rect.min.x + 8.0, rect.max.y - 8.0 - h),
        vec2(w, h),
    );
    painter.rect_filled(bg, 4.0, Color32::from_black_alpha(170));
    for (k, (name, cmap, thresholded)) in scales.iter().enumerate() {
        let top = bg.min.y + pad + row * k as f32;
        let x0 = bg.min.x + pad;
        painter.text(
            Pos2::new(x0, top),
            egui::Align2::LEFT_TOP,
            name,
            FontId::proportional(11.0),
            Color32::WHITE,
        );
        let bar = Rect::from_min_size(Pos2::new(x0 + 8.0, top + 14.0), vec2(SCALE_WIDTH, 8.0));
        let mut mesh = egui::Mesh::default();
        let steps = 32;
        for i in 0..=steps {
            let t = i as f32 / steps as f32;
            let [r, g, b] = cmap.rgb8(t);
            let c = Color32::from_rgb(r, g, b);
            let x = bar.min.x + t * bar.width();
            mesh.colored_vertex(Pos2::new(x, bar.min.y), c);
            mesh.colored_vertex(Pos2::new(x, bar.max.y), c);
            if i > 0 {
                let v = 2 * i as u32;
                mesh.add_triangle(v - 2, v - 1, v);
                mesh.add_triangle(v - 1, v, v + 1);
            }
        }
        painter.add(egui::Shape::mesh(mesh));
        let small = FontId::proportional(10.0);
        painter.text(
            Pos2::new(bar.min.x - 2.0, bar.center().y),
            egui::Align2::RIGHT_CENTER,
            "0",
            small.clone(),
            Color32::LIGHT_GRAY,
        );
        painter.text(
            Pos2::new(bar.max.x + 2.0, bar.center().y),
            egui::Align2::LEFT_CENTER,
            "1",
            small,
            Color32::LIGHT_GRAY,
        );
        if *thresholded && threshold > 0.0 {
            let x = bar.min.x + threshold.clamp(0.0, 1.0) * bar.width();
            painter.line_segment(
                [Pos2::new(x, bar.min.y - 3.0), Pos2::new(x, bar.max.y + 3.0)],
                Stroke::new(1.5, Color32::WHITE),
            );
        }
    }
}

impl ViewUniforms {
    pub fn zeroed_default() -> ViewUniforms {
        bytemuck::Zeroable::zeroed()
    }
}
