//! Everything the UI can ask for, as data. Views emit [`Command`]s (plain values, no behaviour)
//! and depend on nothing else here; `TamperscopeApp::apply` (`handler.rs`) is the one place that
//! applies them and changes the app's state, so the whole behaviour is testable without a window.

use std::path::PathBuf;

use tamperscope::engine::similarity::SimilarityVariant;

use super::state::{HeatLayer, LayerStyle, PaneContent, PriorChoice, SegLayer, ViewMode};
use super::transform::ViewTransform;

/// Image formats the file dialog offers (what the engine decodes).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp"];

#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Show the file dialog, then open the file picked.
    OpenDialog,
    /// Open an image (cancels the running analysis).
    Open(PathBuf),
    CancelAnalysis,
    ClearRecent,
    SetHeatStyle(HeatLayer, LayerStyle),
    SetRefinedStyle(LayerStyle),
    SetMasksOpacity(f32),
    SetChosenOpacity(f32),
    SetSegLayer {
        segmenter: String,
        layer: SegLayer,
        on: bool,
    },
    /// The mask under the cursor (list or image) this frame.
    Highlight(Option<(usize, usize)>),
    /// Keep a mask highlighted (click); `None` unpins.
    Pin(Option<(usize, usize)>),
    /// Make a region of segmenter `seg` the evidence mask (`None` = back to the automatic argmax);
    /// H is recomputed at once.
    ChooseMask {
        seg: usize,
        region: Option<usize>,
    },
    SetSimilarity(SimilarityVariant),
    /// The prior of the similarity and the refinement: recomputed, and every segmenter
    /// re-scored, without running a model.
    SetPrior(PriorChoice),
    SetMinArea(f32),
    SetThreshold(f32),
    SetViewMode(ViewMode),
    SetComparePanes(usize),
    SetPaneContent(usize, PaneContent),
    SetView(ViewTransform),
    Fit,
    /// Zoom by a factor about the centre of the view (keyboard + and -).
    ZoomBy(f32),
    /// Show only the next (+1) or previous (-1) layer that exists (keyboard ] and [).
    StepLayer(i32),
    /// Show the Help window, or close it.
    ShowHelp(bool),
    /// Go back to the view of a bookmark: pan, zoom and layers.
    RestoreBookmark(usize),
    /// One image pixel per screen pixel.
    OneToOne {
        pixels_per_point: f32,
    },
    /// Export the image view as shown (pan, zoom, compare panes) at screen resolution.
    ExportViewDialog,
    ExportView(PathBuf),
    /// Export the whole image with the visible layers, at the working resolution.
    ExportLayersDialog,
    ExportLayers(PathBuf),
    DismissError(usize),
    /// Install a model of the manifest, from its download address or from a file.
    InstallModel {
        name: String,
        from: Option<PathBuf>,
    },
    InstallModelFromFileDialog(String),
    /// Re-open the engine (after installing models) and analyse the open image again.
    ReloadModels,
    /// The analyst's notes of the open document.
    SetNotes(String),
    /// Bookmark the current view with a caption.
    AddBookmark(String),
    RemoveBookmark(usize),
    ExportReportDialog,
    /// Write the report of the open document (format from the extension: pdf, html, json).
    ExportReport(PathBuf),
    ShowPanels {
        layers: bool,
        analysis: bool,
    },
}
