//! What every layer and figure means, in an analyst's words, with the section of METHOD.md
//! (`../shared/design/METHOD.md`) for the details; and the Help window (guide and shortcuts).

use egui::RichText;

use super::TamperscopeApp;
use super::command::Command;
use super::state::HeatLayer;

pub const VERDICT: &str = "Was the photo manipulated? The classifier's probability and the compression score combined: \
p = 1 - (1 - classifier) (1 - compression), so either detector alone can call it manipulated; \
\"manipulated\" from p = 0.5. A probability, not proof: read it with the measured accuracy below. \
METHOD.md sections 2 and 9.";
pub const ACCURACY: &str = "How often the method was right on a labelled data set (development figures): \
AUC 1 = always ranks manipulated above authentic, 0.5 = chance. The pixel AUC says how well the \
heatmap H ranks manipulated pixels above untouched ones. METHOD.md section 7.";
pub const REGION: &str = "Where the default heatmap H is at least 0.5 (the threshold of the measured F1), \
outlined in white. Nothing is outlined when the verdict is authentic. The segmenters' own \
chosen regions (cyan, per segmenter) are secondary: the pieces H was refined with. \
METHOD.md section 6.";
pub const CLASSIFIER: &str = "Image-level classifier (WCBnet, three variants): the probability that the whole \
image was manipulated, from its error levels. It says whether, not where. It is weak and reads \
the file's save quality as much as the content (most photos saved above quality 92 score high), \
so it counts half in the verdict: it cannot call a photo manipulated alone. METHOD.md section 2; \
docs/verdict.md.";
pub const COMPRESSION: &str = "The file's own JPEG history: a background compressed twice while a pasted or \
retouched area was not (A-DJPG), or a region whose compression grid is shifted (NA-DJPG). \
Needs no training; does not apply to files that are not JPEG. METHOD.md section 9.";
pub const COPY_MOVE: &str = "Copy-move: an area of the photo repeated elsewhere in the same photo \
(a clone, shifted, possibly rotated or scaled). Both the source and the copy are marked: the \
detector cannot tell which is the original. Hover a marked area to see where it was matched. \
Self-similar texture (facades with repeated windows, tiles, fences) can also match: on 20 \
authentic photos a mean 0.59 % of the image was marked. A marked area raises the prior to at \
least 0.9 and the clone score joins the verdict. Needs no training; \
not in METHOD.md: the dense-field method of Cozzolino, Poggi and Verdoliva (IEEE TIFS 2015), \
src/engine/copymove.rs.";
pub const MASKS: &str = "Every region this segmenter cut the image into, each outlined in its own colour. \
Regions are candidates, not evidence. METHOD.md section 4.";
pub const CHOSEN: &str = "This segmenter's best-matching region (highest S), outlined in cyan; outside it is \
darkened. Secondary: the white outline of the answer card comes from H, which combines it with \
the prior. METHOD.md section 5.";
pub const REFINED: &str = "H, the refined heatmap: the prior updated (Bayes' rule) with this segmenter's chosen \
region as evidence. The final \"where\" map: near 1 = likely manipulated, near 0 = likely \
untouched. The answer card outlines H >= 0.5. METHOD.md section 6.";
pub const SIMILARITY: &str = "S: how strongly the prior concentrates inside a region, weighted toward its \
interior; the region with the highest S is chosen. \"paper\" grows with the region's size (values \
like 4.7), \"normalized\" does not (values below 1): compare S only within one setting. \
METHOD.md section 5.";
pub const LIKELIHOODS: &str = "How much the chosen region says: r1 = the share of the prior's mass inside the \
region, r0 = the share of the rest. r1 much larger than r0: the region is strong evidence; close \
to each other: weak. METHOD.md section 6.";
pub const MIN_AREA: &str = "Regions smaller than this share of the image are dropped (semantic masks are \
filtered at once; the built-in segmenter is re-run, a few ms). METHOD.md section 4.";
pub const PRIOR: &str = "The map S and H start from: A combined with the compression map where the file has \
compression evidence (else A), raised to at least 0.9 where the copy-move search marks a repeated \
area (default); or A alone as in the paper. METHOD.md sections 5, 6 and 9; docs/copy-move.md.";

/// What a heat layer is and how to read it.
pub fn heat(layer: HeatLayer) -> &'static str {
    match layer {
        HeatLayer::Ela => {
            "ELA (error level analysis): how much each area changes when the photo is saved again as \
JPEG at quality 90. Bright = changed more. Edits can stand out, but so do edges, texture and \
highlights: a hint, never a verdict, and not a probability. METHOD.md section 1 (the \
classifier's input is its signed form)."
        }
        HeatLayer::Cam2 | HeatLayer::Cam3 | HeatLayer::Cam4 => {
            "Where one classifier variant looked (Grad-CAM): A_2 from the finest feature grid, A_4 \
from the coarsest. Bright = drove the \"manipulated\" score. These maps localise poorly on \
their own (pixel AUC about 0.62 on CASIA v1 val). METHOD.md section 3."
        }
        HeatLayer::Fused => {
            "A: the three classifier maps A_2, A_3, A_4 combined (geometric mean): bright only where \
all three agree. The classifier's \"where\"; weak alone, it is the starting point of S and H. \
METHOD.md section 3."
        }
        HeatLayer::Adjpg => {
            "Aligned double JPEG: the probability that a block lacks the trace of the earlier \
compression the rest of the photo carries, as pasted, resampled or retouched areas do. Near 1 = \
likely tampered. Smooth areas can also lack the trace. METHOD.md section 9."
        }
        HeatLayer::NaDjpg => {
            "Non-aligned double JPEG: the probability from a compression grid shifted against the \
file's own, typical of content pasted from another JPEG. METHOD.md section 9."
        }
        HeatLayer::Compression => {
            "The compression history as one map: A-DJPG and NA-DJPG combined, then averaged within \
small image regions (superpixels) so that its edges follow the image's. Near 1 = likely tampered. \
Where almost every block leans tampered (a weak trace), only the tenth that leans hardest is kept. \
METHOD.md section 9; docs/compression.md."
        }
        HeatLayer::Prior => PRIOR,
        HeatLayer::CopyMove => COPY_MOVE,
    }
}

/// The hover text of an evidence line of the answer card.
pub fn evidence(name: &str) -> &'static str {
    match name {
        "Classifier" => CLASSIFIER,
        "Compression history" => COMPRESSION,
        "Copy-move" => COPY_MOVE,
        _ => "",
    }
}

/// Keyboard shortcuts: (keys, what they do), for the Help window and the menus.
pub const SHORTCUTS: [(&str, &str); 7] = [
    ("+ / -", "zoom in / out"),
    ("0", "fit the image to the view"),
    ("1", "one image pixel per screen pixel (1:1)"),
    ("[ / ]", "show only the previous / next layer"),
    ("Ctrl+O", "open an image"),
    ("F1", "this help"),
    ("Ctrl+plus / minus", "scale the whole interface"),
];

impl TamperscopeApp {
    /// The Help window (Help menu, F1): a short guide to the layers and the shortcuts.
    pub fn help_window_ui(&self, ctx: &egui::Context, cmds: &mut Vec<Command>) {
        if !self.rt.show_help {
            return;
        }
        let mut open = true;
        egui::Window::new("Guide")
            .open(&mut open)
            .default_width(460.0)
            .max_width((ctx.content_rect().width() * 0.6).max(300.0))
            .max_height((ctx.content_rect().height() * 0.8).max(200.0))
            .collapsible(false)
            .show(ctx, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.label(RichText::new("Reading the answer").strong());
                    ui.label("The card at the top of the Analysis panel says whether the photo was manipulated, how sure the method is and how accurate it was when measured, where (the white outline on the photo) and on what evidence. A probability is not proof.");
                    ui.add_space(6.0);
                    ui.label(RichText::new("Layers").strong());
                    for layer in [
                        HeatLayer::Fused,
                        HeatLayer::Ela,
                        HeatLayer::Cam2,
                        HeatLayer::Adjpg,
                        HeatLayer::NaDjpg,
                        HeatLayer::Compression,
                        HeatLayer::Prior,
                        HeatLayer::CopyMove,
                    ] {
                        let name = match layer {
                            HeatLayer::Cam2 => "A_2, A_3, A_4",
                            l => l.label(),
                        };
                        ui.label(format!("{name}: {}", heat(layer)));
                    }
                    ui.label(format!("H (per segmenter): {REFINED}"));
                    ui.label(format!("Masks (per segmenter): {MASKS}"));
                    ui.label(format!("Chosen (per segmenter): {CHOSEN}"));
                    ui.label("Colour: every heat layer shows its colour scale (0 to 1) in the view. Low values are drawn transparent, so the photo stays visible; the display threshold hides low values of A, A_2-4, H and the prior.");
                    ui.add_space(6.0);
                    ui.label(RichText::new("Keyboard").strong());
                    egui::Grid::new("shortcuts").num_columns(2).show(ui, |ui| {
                        for (k, what) in SHORTCUTS {
                            ui.monospace(k);
                            ui.label(what);
                            ui.end_row();
                        }
                    });
                    ui.label("Mouse: drag to pan, scroll to zoom; click a mask to highlight it, double-click to make it the evidence mask; click a bookmark to go back to its view.");
                });
            });
        if !open {
            cmds.push(Command::ShowHelp(false));
        }
    }
}
