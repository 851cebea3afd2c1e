//! Annotated case reports (issue 5): a JSON document that holds everything needed to re-run the
//! analysis, rendered as a self-contained HTML page and as a PDF.
//!
//! The schema of the JSON document is in `docs/report-schema.md`. [`ReportDoc`] is built from an
//! [`Analysis`] once; [`Figures`] are the images drawn from the same analysis; [`render_html`] and
//! [`render_pdf`] only lay them out.
//!
//! This file assembles the document, its figures and the rows both renderings share;
//! `html.rs` and `pdf.rs` lay them out.

mod html;
mod pdf;

use std::path::Path;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::engine::imageio::png_rgb;
use crate::engine::pipeline::{Analysis, AnalysisParams, Unavailable};
use crate::error::Result;
use crate::models::registry::Registry;
use crate::outputs::colormap::ColorMap;
use crate::outputs::eval::EvalReport;
use crate::outputs::output::{
    AnalysisRecord, STAND_IN_LABEL, chosen_overlay, heat_overlay, heat_overlay_graded, record,
    regions_overlay,
};

pub use html::render_html;
pub use pdf::{Pdf, render_pdf};

pub const REPORT_SCHEMA: &str = "tamperscope.report/1";
/// File of measured accuracy, relative to the manifest's folder (output of `tamperscope eval`).
pub const MEASURED_FILE: &str = "measured.json";
pub const NOT_MEASURED: &str = "accuracy of these models not measured";
/// How many masks per segmenter the similarity table lists.
pub const TABLE_ROWS: usize = 10;

pub const METHODS: &str = "Signed error levels (the image minus its JPEG re-encoding at the model's quality) are \
fed to the WCBnet classifier variants; each variant gives a probability that the image was manipulated \
and a Grad-CAM map at its own scale. The maps are fused by their pixel-wise geometric mean. Each \
segmenter cuts the image into candidate regions; every region is scored by the distance-transform \
similarity S between the region and the prior, and the best region is the evidence of a Bayesian \
refinement that gives the refined heatmap. The prior is the fused map combined with the file's \
compression history (METHOD.md section 9): the quantised DCT coefficients of the JPEG as stored are \
tested for the trace of an earlier compression on the same 8x8 grid (A-DJPG, Bianchi & Piva 2012) and \
on a shifted grid (NA-DJPG); a region without the background's trace was pasted, resampled or \
retouched. That evidence is averaged within small image regions (superpixels) so that it follows image \
edges; where almost every block lacks the trace (a weak trace, typical of strong textures) only the \
tenth that lacks it most is kept. The paper's configuration (the fused map alone as the prior) is reported beside it.";

/// What the copy-move figure shows and what it cannot, for the report's copy-move section.
pub const COPY_MOVE_EXPLAINED: &str = "What the map shows: areas of the photo that are repeated \
elsewhere in the same photo (copy-move), found by the dense-field method of Cozzolino, Poggi and \
Verdoliva (IEEE TIFS 2015) on the working image: every pixel is matched to its most similar \
patch (rotation-invariant Zernike features, PatchMatch), and a pixel is marked where the matches \
of its neighbourhood move together (a smooth offset field). Both the source and the copy are \
marked, boxed in the same colour: the method cannot tell which is the original. It needs no \
training and works on any file format.";

/// The limits of the copy-move map, with the false-positive area measured on authentic photos.
pub const COPY_MOVE_LIMITS: &str = "Limits: self-similar texture (facades with repeated windows, \
tiles, fences, foliage) can be marked although nothing was copied; on 20 authentic photos the \
marked area was 0.59 % of the image on average and 5.6 % at worst (urban facades), and 4 of the \
20 had a region marked. Flat areas (sky, walls) are never marked, so a copy over a flat area is \
missed, as are copies smaller than 0.2 % of the image or pasted from another photo (splices).";

pub const LIMITATIONS: &[&str] = &[
    "The classifier is trained on image-level labels only; its maps show where the evidence for its decision lies, not a pixel-accurate outline of a manipulation.",
    "Error levels carry little signal in images re-compressed many times, resized, or saved losslessly from an edited original.",
    "A segmenter can only outline regions it can see: a manipulation that does not follow object boundaries may be outlined badly.",
    "A probability is not proof: read it together with the measured accuracy stated in this report.",
    "The compression-history maps need a JPEG whose background was compressed before at a coarser step than its last save; they say nothing for PNG/TIFF files, single-compressed JPEGs, or images resized after the edit, and smooth areas (sky, walls) carry no trace either way.",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportDoc {
    pub schema: String,
    pub created_utc: String,
    pub tool: ReportTool,
    pub exif: ExifSummary,
    pub models: Vec<ModelProvenance>,
    pub accuracy: AccuracyStatement,
    pub methods: String,
    pub limitations: Vec<String>,
    pub notes: String,
    pub bookmarks: Vec<Bookmark>,
    /// The full analysis record: input (path, sha256, md5), params, probabilities, S per mask,
    /// chosen masks, likelihoods.
    pub analysis: AnalysisRecord,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportTool {
    pub name: String,
    pub version: String,
    pub commit: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ExifSummary {
    pub present: bool,
    pub make: Option<String>,
    pub model: Option<String>,
    pub date_time_original: Option<String>,
    pub software: Option<String>,
    pub orientation: Option<String>,
    pub dimensions: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelProvenance {
    pub name: String,
    pub role: String,
    pub file: String,
    /// Empty for built-in segmenters (no weights).
    pub sha256: String,
    pub status: String,
    pub licence: String,
    pub source: String,
    pub provenance: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccuracyStatement {
    pub measured: bool,
    /// One sentence for the reader.
    pub statement: String,
    pub dataset: Option<String>,
    pub images: Option<usize>,
    pub image_auc: Option<f64>,
    pub image_accuracy: Option<f64>,
    pub image_f1: Option<f64>,
    /// Pixel-level AUC / F1 of the fused map, when measured.
    pub pixel_auc_fused: Option<f64>,
    pub pixel_f1_fused: Option<f64>,
}

/// A view the analyst kept: which layers were visible, the pan / zoom, and a caption.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Bookmark {
    pub caption: String,
    /// Layer names, drawn in order over the photo: "ela", "cam2".., "fused", "masks:SEG",
    /// "chosen:SEG", "refined:SEG".
    pub layers: Vec<String>,
    pub opacity: f32,
    /// 1 = whole image; 2 = half the width and height visible.
    pub zoom: f32,
    /// Centre of the view, as fractions of the image width and height.
    pub center: [f32; 2],
}

impl Bookmark {
    /// The figure's caption in the report: the analyst's caption, the layers, and what part of
    /// the image the view shows. `zoom` counts from the whole image (the app's status bar shows
    /// screen pixels per image pixel instead, which depends on the window), so the words say
    /// "whole image" or "enlarged 2.0x on the image, centred at 40 % / 55 %".
    pub fn figure_caption(&self) -> String {
        let view = if self.zoom <= 1.0 + 1e-3 {
            "whole image".to_string()
        } else {
            format!(
                "enlarged {:.1}x on the image, centred at {:.0} % across / {:.0} % down",
                self.zoom,
                100.0 * self.center[0],
                100.0 * self.center[1]
            )
        };
        let layers = if self.layers.is_empty() {
            "photo only".to_string()
        } else {
            self.layers.join(" + ")
        };
        if self.caption.trim().is_empty() {
            format!("{layers}; {view}")
        } else {
            format!("{} ({layers}; {view})", self.caption)
        }
    }
}

impl Default for Bookmark {
    fn default() -> Self {
        Self {
            caption: String::new(),
            layers: vec!["fused".into()],
            opacity: 0.6,
            zoom: 1.0,
            center: [0.5, 0.5],
        }
    }
}

/// What the analyst adds to a report.
#[derive(Debug, Clone, Default)]
pub struct Annotations {
    pub notes: String,
    pub bookmarks: Vec<Bookmark>,
}

/// Summary of the EXIF data of a file; `present = false` when it has none.
pub fn exif_summary(path: &Path) -> ExifSummary {
    let Ok(bytes) = std::fs::read(path) else {
        return ExifSummary::default();
    };
    let Ok(exif) = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(bytes)) else {
        return ExifSummary::default();
    };
    let get = |tag: exif::Tag| {
        exif.get_field(tag, exif::In::PRIMARY)
            .map(|f| {
                f.display_value()
                    .with_unit(&exif)
                    .to_string()
                    .trim_matches('"')
                    .trim()
                    .to_string()
            })
            .filter(|s| !s.is_empty())
    };
    let dims = match (
        get(exif::Tag::PixelXDimension),
        get(exif::Tag::PixelYDimension),
    ) {
        (Some(x), Some(y)) => Some(format!("{x} x {y}")),
        _ => None,
    };
    ExifSummary {
        present: true,
        make: get(exif::Tag::Make),
        model: get(exif::Tag::Model),
        date_time_original: get(exif::Tag::DateTimeOriginal),
        software: get(exif::Tag::Software),
        orientation: get(exif::Tag::Orientation),
        dimensions: dims,
    }
}

/// The models an analysis used, with their provenance from the manifest.
pub fn model_provenance(registry: &Registry, rec: &AnalysisRecord) -> Vec<ModelProvenance> {
    let mut out: Vec<ModelProvenance> = Vec::new();
    let mut add = |name: &str, sha: &str| {
        if out.iter().any(|m| m.name == name) {
            return;
        }
        let entry = registry.manifest.models.iter().find(|m| m.name == name);
        out.push(match entry {
            Some(e) => ModelProvenance {
                name: e.name.clone(),
                role: format!("{:?}", e.role).to_lowercase(),
                file: e.file.clone(),
                sha256: sha.to_string(),
                status: e.status.clone(),
                licence: e.licence.clone(),
                source: e.source.clone(),
                provenance: e.provenance.clone(),
            },
            None => ModelProvenance {
                name: name.to_string(),
                role: "built-in segmenter".into(),
                file: String::new(),
                sha256: sha.to_string(),
                status: "built-in".into(),
                licence: "MIT OR Apache-2.0 (this project)".into(),
                source: "built into tamperscope".into(),
                provenance: "classical algorithm, no weights".into(),
            },
        });
    };
    for v in &rec.classifier.variants {
        add(&v.model, &v.sha256);
    }
    for s in &rec.segmenters {
        add(&s.name, &s.model_sha256);
    }
    out
}

/// The accuracy of the classifier models, read from `measured.json` beside the manifest; "not
/// measured" unless the file exists and names exactly the classifier models (by sha256) used.
pub fn accuracy_statement(measured_file: &Path, rec: &AnalysisRecord) -> AccuracyStatement {
    let not = AccuracyStatement {
        measured: false,
        statement: NOT_MEASURED.to_string(),
        dataset: None,
        images: None,
        image_auc: None,
        image_accuracy: None,
        image_f1: None,
        pixel_auc_fused: None,
        pixel_f1_fused: None,
    };
    let Some(eval) = std::fs::read(measured_file)
        .ok()
        .and_then(|b| serde_json::from_slice::<EvalReport>(&b).ok())
    else {
        return not;
    };
    let matches = rec.classifier.variants.iter().all(|v| {
        eval.models
            .iter()
            .any(|(n, h)| *n == v.model && *h == v.sha256)
    }) && !rec.classifier.variants.is_empty();
    if !matches {
        return not;
    }
    let fused = eval.pixel_level.get("fused");
    let f = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    // The default configuration's refined map (compression evidence in the prior), when measured.
    let default_h = eval
        .pixel_level
        .iter()
        .find(|(k, _)| k.starts_with("refined_dq:") && k.ends_with(":paper"))
        .map(|(k, p)| {
            format!(
                "; pixel-level AUC of the refined heatmap H with the compression and copy-move evidence ({}) {}, F1 {}",
                k.trim_start_matches("refined_dq:").trim_end_matches(":paper"),
                f(p.auc),
                f(p.f1)
            )
        })
        .unwrap_or_default();
    // The verdict's own figures lead when the evaluation has them; the classifier's follow.
    let verdict = eval
        .image_level
        .variants
        .get("verdict")
        .map(|v| {
            format!(
                "verdict AUC {}, accuracy {:.3}; classifier alone ",
                f(v.auc),
                v.accuracy
            )
        })
        .unwrap_or_default();
    AccuracyStatement {
        measured: true,
        statement: format!(
            "measured on {} ({} images): {verdict}image-level AUC {}, accuracy {:.3}, F1 {:.3}; pixel-level AUC of the fused map {}, F1 {}{default_h}",
            eval.dataset,
            eval.images_analysed,
            f(eval.image_level.auc),
            eval.image_level.accuracy,
            eval.image_level.f1,
            f(fused.and_then(|p| p.auc)),
            f(fused.and_then(|p| p.f1)),
        ),
        dataset: Some(eval.dataset.clone()),
        images: Some(eval.images_analysed),
        image_auc: eval.image_level.auc,
        image_accuracy: Some(eval.image_level.accuracy),
        image_f1: Some(eval.image_level.f1),
        pixel_auc_fused: fused.and_then(|p| p.auc),
        pixel_f1_fused: fused.and_then(|p| p.f1),
    }
}

/// Build the report document of an analysis.
pub fn build_report(
    analysis: &Analysis,
    params: &AnalysisParams,
    segmenter_models: &[(String, String)],
    unavailable: &[Unavailable],
    registry: &Registry,
    notes: &Annotations,
) -> ReportDoc {
    let mut rec = record(analysis, params, segmenter_models, unavailable);
    // Name the models that ran, so that the report re-runs exactly them.
    if rec.params.classifiers.is_empty() {
        rec.params.classifiers = rec
            .classifier
            .variants
            .iter()
            .map(|v| v.model.clone())
            .collect();
    }
    if rec.params.segmenters.is_empty() {
        rec.params.segmenters = rec.segmenters.iter().map(|s| s.name.clone()).collect();
    }
    // An absolute path, so that `verify-report` finds the input from anywhere.
    if let Ok(abs) = std::path::absolute(&analysis.input_path) {
        rec.input.path = abs.display().to_string();
    }
    let measured = registry
        .manifest_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(MEASURED_FILE);
    ReportDoc {
        schema: REPORT_SCHEMA.to_string(),
        created_utc: rec.created_utc.clone(),
        tool: ReportTool {
            name: "tamperscope".into(),
            version: crate::VERSION.into(),
            commit: crate::COMMIT.into(),
        },
        exif: exif_summary(&analysis.input_path),
        models: model_provenance(registry, &rec),
        accuracy: accuracy_statement(&measured, &rec),
        methods: METHODS.to_string(),
        limitations: LIMITATIONS.iter().map(|s| s.to_string()).collect(),
        notes: notes.notes.clone(),
        bookmarks: notes.bookmarks.clone(),
        analysis: rec,
    }
}

/// One picture of a report.
pub struct Figure {
    pub title: String,
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Draw the colour scale (0..1) under it.
    pub legend: bool,
}

/// A row of figures shown side by side.
pub struct FigureRow {
    pub heading: String,
    pub figures: Vec<Figure>,
    /// Paragraphs under the figures (the findings and limits of a section), often none.
    pub notes: Vec<String>,
}

pub struct Figures {
    /// The answer at a glance, for page 1: the input and the default heatmap `H` of the first
    /// segmenter that chose a region (its region outlined), or the prior when none did.
    pub main: FigureRow,
    pub rows: Vec<FigureRow>,
    /// One composed view per bookmark, in bookmark order.
    pub bookmarks: Vec<Figure>,
    /// Colour scale 0..1, as a PNG strip.
    pub legend_png: Vec<u8>,
    pub cmap: ColorMap,
}

fn figure(title: impl Into<String>, img: &RgbImage, legend: bool) -> Result<Figure> {
    Ok(Figure {
        title: title.into(),
        png: png_rgb(img.width(), img.height(), img.as_raw())?,
        width: img.width(),
        height: img.height(),
        legend,
    })
}

/// A 256 x 12 colour-scale strip, 0 on the left.
pub fn legend_strip(cmap: ColorMap) -> RgbImage {
    RgbImage::from_fn(256, 12, |x, _| image::Rgb(cmap.rgb8(x as f32 / 255.0)))
}

/// The photo with the bookmark's layers drawn over it, cropped to its pan / zoom.
pub fn compose_view(analysis: &Analysis, bm: &Bookmark, cmap: ColorMap) -> RgbImage {
    let photo = &analysis.working;
    let mut img = photo.clone();
    let opacity = bm.opacity.clamp(0.0, 1.0);
    for layer in &bm.layers {
        let (kind, seg) = layer.split_once(':').unwrap_or((layer.as_str(), ""));
        let s = analysis
            .segmenters
            .iter()
            .find(|s| s.segmentation.segmenter == seg);
        match (kind, s) {
            ("ela", _) => img = heat_overlay(&img, &analysis.ela_map, cmap, opacity),
            ("fused", _) => img = heat_overlay(&img, &analysis.fused, cmap, opacity),
            ("prior", _) => img = heat_overlay(&img, &analysis.prior, cmap, opacity),
            ("copymove", _) => {
                // Graded: the binary map's 0 leaves the photo untouched, as in the app.
                if let Some(c) = analysis.copy_move.as_ref().filter(|c| c.absent.is_none()) {
                    img = heat_overlay_graded(&img, &c.map, cmap, opacity, 0.0);
                }
            }
            ("adjpg" | "nadjpg" | "compression", _) => {
                let c = &analysis.compression;
                let m = match kind {
                    "adjpg" => &c.adjpg,
                    "nadjpg" => &c.na,
                    _ => &c.combined,
                };
                if let Some(m) = m {
                    img = heat_overlay(&img, m, cmap, opacity);
                }
            }
            ("masks", Some(s)) => {
                img = regions_overlay(&img, s.segmentation.regions.iter().map(|r| &r.mask))
            }
            ("chosen", Some(s)) => {
                if let Some(c) = s.chosen {
                    img = chosen_overlay(&img, &s.segmentation.regions[c].mask);
                }
            }
            ("refined", Some(s)) => {
                if let Some(r) = &s.refined {
                    img = heat_overlay(&img, r, cmap, opacity);
                }
            }
            (k, _) => {
                if let Some(v) = k.strip_prefix("cam").and_then(|n| n.parse::<u32>().ok())
                    && let Some(v) = analysis.variants.iter().find(|x| x.info.variant == v)
                {
                    img = heat_overlay(&img, &v.cam, cmap, opacity);
                }
            }
        }
    }
    let zoom = bm.zoom.max(1.0);
    if zoom > 1.0 {
        let (w, h) = (img.width() as f32, img.height() as f32);
        let (cw, ch) = ((w / zoom).max(1.0), (h / zoom).max(1.0));
        let x0 = (bm.center[0] * w - cw / 2.0).clamp(0.0, w - cw);
        let y0 = (bm.center[1] * h - ch / 2.0).clamp(0.0, h - ch);
        let crop =
            image::imageops::crop_imm(&img, x0 as u32, y0 as u32, cw as u32, ch as u32).to_image();
        img = image::imageops::resize(
            &crop,
            img.width(),
            img.height(),
            image::imageops::FilterType::Triangle,
        );
    }
    img
}

/// Every image of the report, drawn from the analysis.
pub fn figures(analysis: &Analysis, bookmarks: &[Bookmark], cmap: ColorMap) -> Result<Figures> {
    let photo = &analysis.working;
    let mut rows = vec![FigureRow {
        heading: "Input and fused map".into(),
        figures: vec![
            figure("Input (working resolution)", photo, false)?,
            figure(
                "Fused map A (geometric mean of the CAMs)",
                &heat_overlay(photo, &analysis.fused, cmap, 0.6),
                true,
            )?,
        ],
        notes: Vec::new(),
    }];
    let c = &analysis.compression;
    let mut comp = Vec::new();
    if let Some(m) = &c.adjpg {
        comp.push(figure(
            "A-DJPG: P(no earlier aligned compression)",
            &heat_overlay(photo, m, cmap, 0.6),
            true,
        )?);
    }
    if let Some(m) = &c.na {
        comp.push(figure(
            "NA-DJPG: P(tampered) from the shifted grid",
            &heat_overlay(photo, m, cmap, 0.6),
            true,
        )?);
    }
    comp.push(figure(
        "Prior of the refinement (A with the compression and copy-move evidence)",
        &heat_overlay(photo, &analysis.prior, cmap, 0.6),
        true,
    )?);
    rows.push(FigureRow {
        heading: match &c.absent {
            Some(why) => format!("Compression history: not available ({why})"),
            None => "Compression history".into(),
        },
        figures: comp,
        notes: Vec::new(),
    });
    rows.push(copy_move_row(analysis)?);
    for s in &analysis.segmenters {
        let name = &s.segmentation.segmenter;
        let mut masks = regions_overlay(photo, s.segmentation.regions.iter().map(|r| &r.mask));
        let mut figs = Vec::new();
        match (s.chosen, &s.refined) {
            (Some(c), Some(refined)) => {
                let chosen = &s.segmentation.regions[c].mask;
                // Outline the chosen region on both pictures.
                masks = outline(&masks, chosen);
                figs.push(figure(
                    format!("{name}: masks (chosen #{c} outlined)"),
                    &masks,
                    false,
                )?);
                let over = outline(&heat_overlay(photo, refined, cmap, 0.6), chosen);
                figs.push(figure(format!("{name}: refined heatmap H"), &over, true)?);
            }
            _ => figs.push(figure(
                format!("{name}: masks (none chosen)"),
                &masks,
                false,
            )?),
        }
        rows.push(FigureRow {
            heading: format!("Segmenter {name}"),
            figures: figs,
            notes: Vec::new(),
        });
    }
    let bookmarks = bookmarks
        .iter()
        .map(|b| figure(b.figure_caption(), &compose_view(analysis, b, cmap), false))
        .collect::<Result<Vec<_>>>()?;
    let strip = legend_strip(cmap);
    Ok(Figures {
        main: main_row(analysis, cmap)?,
        rows,
        bookmarks,
        legend_png: png_rgb(strip.width(), strip.height(), strip.as_raw())?,
        cmap,
    })
}

/// Page 1's figure: what the analyst asked (where?), answered with the default heatmap.
fn main_row(analysis: &Analysis, cmap: ColorMap) -> Result<FigureRow> {
    let photo = &analysis.working;
    let answer = analysis.segmenters.iter().find_map(|s| {
        let (c, refined) = (s.chosen?, s.refined.as_ref()?);
        Some((s, &s.segmentation.regions[c].mask, refined))
    });
    let second = match answer {
        Some((s, chosen, refined)) => figure(
            format!(
                "Heatmap H ({}), chosen region outlined",
                s.segmentation.segmenter
            ),
            &outline(&heat_overlay(photo, refined, cmap, 0.6), chosen),
            true,
        )?,
        None => figure(
            "Prior (no segmenter chose a region)",
            &heat_overlay(photo, &analysis.prior, cmap, 0.6),
            true,
        )?,
    };
    Ok(FigureRow {
        heading: "Where: the input and the heatmap".into(),
        figures: vec![figure("Input (working resolution)", photo, false)?, second],
        notes: Vec::new(),
    })
}

/// The copy-move section: the photo with every repeated region tinted and each source/copy pair
/// boxed in a colour of its own, the findings in words, what the map shows and its limits.
/// Without evidence (search off, image too small or flat) the row says why and has no figure.
pub fn copy_move_row(analysis: &Analysis) -> Result<FigureRow> {
    let explained = vec![
        COPY_MOVE_EXPLAINED.to_string(),
        COPY_MOVE_LIMITS.to_string(),
    ];
    let Some(cm) = &analysis.copy_move else {
        return Ok(FigureRow {
            heading: "Copy-move: not run".into(),
            figures: Vec::new(),
            notes: std::iter::once(
                "The copy-move search was off for this analysis: no finding either way.".into(),
            )
            .chain(explained)
            .collect(),
        });
    };
    let mut notes = cm.summary();
    notes.extend(explained);
    if let Some(why) = &cm.absent {
        return Ok(FigureRow {
            heading: format!("Copy-move: not available ({why})"),
            figures: Vec::new(),
            notes,
        });
    }
    Ok(FigureRow {
        heading: "Copy-move: regions repeated within the image".into(),
        figures: vec![figure(
            if cm.regions.is_empty() {
                "Copy-move: nothing marked".to_string()
            } else {
                format!(
                    "Copy-move: {} region(s) marked, {:.1} % of the image; source and copy boxed in the same colour",
                    cm.regions.len(),
                    100.0 * cm.marked_fraction()
                )
            },
            &copy_move_overlay(&analysis.working, cm),
            false,
        )?],
        notes,
    })
}

/// `photo` (the working image the map was computed on) with the marked pixels tinted yellow
/// and outlined, and a box around every region in the colour of its source/copy pair. Region
/// boxes are in file pixels; `cm.pixel_scale` brings them back to the working image.
pub fn copy_move_overlay(photo: &RgbImage, cm: &crate::engine::copymove::CopyMove) -> RgbImage {
    if cm.map.width != photo.width() as usize || cm.map.height != photo.height() as usize {
        return photo.clone();
    }
    let mut img = heat_overlay_graded(photo, &cm.map, ColorMap::Viridis, 0.45, 0.0);
    let mask = crate::engine::raster::Mask {
        width: cm.map.width,
        height: cm.map.height,
        data: cm.map.data.iter().map(|&v| v >= 0.5).collect(),
    };
    img = outline_in(&img, &mask, [253, 231, 37], 1);
    // Pair k: region i and the region its matches fell in (see `CopyMove::summary`).
    let mut pair = vec![usize::MAX; cm.regions.len()];
    let mut next = 0;
    for i in 0..cm.regions.len() {
        if pair[i] != usize::MAX {
            continue;
        }
        pair[i] = next;
        let r = &cm.regions[i];
        let partner = (0..cm.regions.len())
            .filter(|&j| j != i && pair[j] == usize::MAX)
            .map(|j| (j, box_overlap(&r.partner_bbox, &cm.regions[j].bbox)))
            .filter(|&(_, o)| o > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((j, _)) = partner {
            pair[j] = next;
        }
        next += 1;
    }
    let s = if cm.pixel_scale > 0.0 {
        cm.pixel_scale
    } else {
        1.0
    };
    for (r, &k) in cm.regions.iter().zip(&pair) {
        let b = r.bbox.map(|v| (v / s).round() as i64);
        draw_box(&mut img, b, crate::outputs::colormap::region_color(k), 2);
    }
    img
}

fn box_overlap(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    w * h
}

/// The edges of box `[x0, y0, x1, y1]` (inclusive-exclusive), `width` pixels wide, clipped.
fn draw_box(img: &mut RgbImage, b: [i64; 4], rgb: [u8; 3], width: i64) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let [x0, y0, x1, y1] = b;
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            let edge = x < x0 + width || x >= x1 - width || y < y0 + width || y >= y1 - width;
            if edge {
                img.put_pixel(x as u32, y as u32, image::Rgb(rgb));
            }
        }
    }
}

/// The edge of `mask` drawn in cyan, two pixels wide.
fn outline(img: &RgbImage, mask: &crate::engine::raster::Mask) -> RgbImage {
    outline_in(img, mask, [0, 255, 255], 2)
}

/// The edge of `mask` drawn in `rgb`, `width` pixels wide.
fn outline_in(
    img: &RgbImage,
    mask: &crate::engine::raster::Mask,
    rgb: [u8; 3],
    width: isize,
) -> RgbImage {
    let mut out = img.clone();
    let (w, h) = (mask.width, mask.height);
    let at = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && mask.data[y as usize * w + x as usize]
    };
    for y in 0..h {
        for x in 0..w {
            let (xi, yi) = (x as isize, y as isize);
            if !at(xi, yi) {
                continue;
            }
            let edge = (-width..=width).any(|d| !at(xi + d, yi) || !at(xi, yi + d));
            if edge && (x as u32) < out.width() && (y as u32) < out.height() {
                out.put_pixel(x as u32, y as u32, image::Rgb(rgb));
            }
        }
    }
    out
}

/// Lines of text of the case header, as (label, value).
pub fn header_rows(doc: &ReportDoc) -> Vec<(String, String)> {
    let a = &doc.analysis;
    let i = &a.input.info;
    let mut rows = vec![
        ("File".to_string(), i.file_name.clone()),
        ("Path".into(), a.input.path.clone()),
        (
            "Size".into(),
            format!(
                "{} bytes, {} x {} pixels ({})",
                i.file_bytes, i.width, i.height, i.format
            ),
        ),
        ("SHA-256".into(), i.sha256.clone()),
        ("MD5".into(), i.md5.clone()),
    ];
    let e = &doc.exif;
    let exif = if !e.present {
        "no EXIF".to_string()
    } else {
        let f = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        format!(
            "make {}, model {}, taken {}, software {}, orientation {}, dimensions {}",
            f(&e.make),
            f(&e.model),
            f(&e.date_time_original),
            f(&e.software),
            f(&e.orientation),
            f(&e.dimensions)
        )
    };
    rows.push(("EXIF".into(), exif));
    if !i.decode_notes.is_empty() {
        rows.push(("Decoding".into(), i.decode_notes.join("; ")));
    }
    rows.push(("Analysed".into(), doc.created_utc.clone()));
    rows.push((
        "Tool".into(),
        format!(
            "{} {} (commit {})",
            doc.tool.name,
            doc.tool.version,
            if doc.tool.commit.is_empty() {
                "unknown"
            } else {
                &doc.tool.commit
            }
        ),
    ));
    rows.push(("Execution provider".into(), a.execution_provider.clone()));
    rows
}

pub fn model_rows(doc: &ReportDoc) -> Vec<String> {
    doc.models
        .iter()
        .map(|m| {
            format!(
                "{} ({}, {}): sha256 {}; {}; source: {}; licence: {}",
                m.name,
                m.role,
                m.status,
                if m.sha256.is_empty() {
                    "- (no weights)"
                } else {
                    &m.sha256
                },
                m.provenance,
                m.source,
                m.licence
            )
        })
        .collect()
}

/// Every parameter, one `key = value` per line, from the JSON form of [`AnalysisParams`].
pub fn param_rows(params: &AnalysisParams) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, v, out);
                }
            }
            // f32 parameters, shown as written (0.8, not 0.800000011920929).
            serde_json::Value::Number(n) if n.is_f64() => out.push(format!(
                "{prefix} = {}",
                n.as_f64().unwrap_or_default() as f32
            )),
            other => out.push(format!("{prefix} = {other}")),
        }
    }
    if let Ok(v) = serde_json::to_value(params) {
        walk("", &v, &mut out);
    }
    out
}

pub fn verdict_rows(doc: &ReportDoc) -> Vec<String> {
    let c = &doc.analysis.classifier;
    let stand_in = c.status == STAND_IN_LABEL;
    let mut rows: Vec<String> = c
        .variants
        .iter()
        .map(|v| {
            let tag = if v.status.contains("stand-in") {
                "untrained stand-in: not a verdict".to_string()
            } else {
                v.verdict.clone()
            };
            format!(
                "{} (variant b{}): p = {:.4} - {tag}",
                v.model, v.variant, v.probability
            )
        })
        .collect();
    rows.push(format!(
        "Mean probability {:.4} - {}",
        c.mean_probability,
        if stand_in {
            "untrained stand-in: not a verdict".to_string()
        } else {
            c.verdict.clone()
        }
    ));
    if let Some(v) = &doc.analysis.verdict {
        // The answer leads; the per-variant figures behind it follow.
        rows.insert(
            0,
            format!(
                "Verdict: {}; 1 - (1 - weight x classifier)(1 - compression)(1 - copy-move)",
                v.sentence(4)
            ),
        );
        rows.push(format!("Prior of the refinement: {}", v.prior));
    }
    if let Some(c) = &doc.analysis.compression {
        for line in &c.summary {
            rows.push(format!("Compression history: {line}"));
        }
    }
    if let Some(c) = &doc.analysis.copy_move {
        for line in &c.summary {
            rows.push(format!("Copy-move: {line}"));
        }
    }
    rows
}

/// Rows of the similarity table: (rank, label, area %, S paper, S normalized, chosen).
pub fn table_rows(
    seg: &crate::outputs::output::SegmenterRecord,
    pixels: usize,
) -> Vec<[String; 6]> {
    let mut idx: Vec<usize> = (0..seg.regions.len()).collect();
    idx.sort_by(|&a, &b| seg.regions[b].s.total_cmp(&seg.regions[a].s));
    idx.iter()
        .take(TABLE_ROWS)
        .enumerate()
        .map(|(rank, &i)| {
            let r = &seg.regions[i];
            [
                (rank + 1).to_string(),
                format!("#{} {}", r.index, r.label),
                format!("{:.2}", 100.0 * r.area as f64 / pixels.max(1) as f64),
                format!("{:.4}", r.s_paper),
                format!("{:.4}", r.s_normalized),
                if seg.chosen == Some(i) {
                    "yes".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect()
}
