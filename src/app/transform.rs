//! Pan and zoom of the image view, as data: what [`super::command::Command::SetView`] carries and
//! the settings persist. Coordinates: "screen" = egui points, "image" = photo pixels; transforms
//! are named `target_from_source`.

use egui::{Pos2, Rect, Vec2};
use serde::{Deserialize, Serialize};

/// Pan and zoom, shared by every pane (the compare view is synchronised by construction).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ViewTransform {
    /// Image point shown at the centre of the pane.
    pub center: Vec2,
    /// Screen points per image pixel.
    pub zoom: f32,
    /// Fit the image to the pane (recomputed every frame until the analyst pans or zooms).
    pub fit: bool,
}

impl Default for ViewTransform {
    fn default() -> Self {
        Self {
            center: Vec2::ZERO,
            zoom: 1.0,
            fit: true,
        }
    }
}

pub const MIN_ZOOM: f32 = 0.01;
pub const MAX_ZOOM: f32 = 64.0;

impl ViewTransform {
    /// The transform actually used in `pane` for an image of `image_size` pixels.
    pub fn resolved(&self, pane: Rect, image_size: Vec2) -> ViewTransform {
        if !self.fit || image_size.x <= 0.0 || image_size.y <= 0.0 {
            return *self;
        }
        let zoom = (pane.width() / image_size.x)
            .min(pane.height() / image_size.y)
            .max(MIN_ZOOM);
        ViewTransform {
            center: image_size * 0.5,
            zoom,
            fit: true,
        }
    }

    pub fn image_from_screen(&self, pane: Rect, p: Pos2) -> Pos2 {
        (self.center + (p - pane.center()) / self.zoom).to_pos2()
    }

    pub fn screen_from_image(&self, pane: Rect, q: Pos2) -> Pos2 {
        pane.center() + (q.to_vec2() - self.center) * self.zoom
    }

    /// Zoom by `factor` keeping the image point under `anchor` (screen) in place.
    pub fn zoomed_about(&self, pane: Rect, anchor: Pos2, factor: f32) -> ViewTransform {
        let q = self.image_from_screen(pane, anchor);
        let zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        ViewTransform {
            center: q.to_vec2() - (anchor - pane.center()) / zoom,
            zoom,
            fit: false,
        }
    }

    pub fn panned(&self, delta_screen: Vec2) -> ViewTransform {
        ViewTransform {
            center: self.center - delta_screen / self.zoom,
            zoom: self.zoom,
            fit: false,
        }
    }
}
