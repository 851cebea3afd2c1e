//! The answer card at the top of the analysis panel (issue 18): the verdict in plain words with its
//! probability and measured accuracy, the region the default heatmap H points at (outlined on the
//! photo in one style of its own), and one line per piece of evidence, including "does not apply".
//!
//! [`Answer::of`] is a pure function of the document and the settings, so its wording is tested
//! without a window; [`TamperscopeApp::answer_card_ui`] only draws it.

use std::path::Path;

use egui::{Color32, RichText};
use tamperscope::engine::pipeline::AnalysisParams;
use tamperscope::engine::raster::Map;
use tamperscope::outputs::eval::EvalReport;

use super::TamperscopeApp;
use super::state::{Document, PriorChoice, Settings};

/// H at or above this is "flagged" (the fixed threshold of the F1 figures, METHOD.md section 7).
pub const REGION_THRESHOLD: f32 = 0.5;
/// Colour of the answer's outline on the photo (drawn over a dark stroke); no layer uses it.
pub const OUTLINE: Color32 = Color32::WHITE;
/// The segmenter whose H the measured default uses.
pub const DEFAULT_SEGMENTER: &str = "deeplabv3";

const BAD: Color32 = Color32::from_rgb(255, 110, 110);
const GOOD: Color32 = Color32::from_rgb(120, 210, 120);
const WARN: Color32 = Color32::from_rgb(255, 170, 60);

/// The figures of `measured.json` the card quotes.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// "CASIA v1 val" and the like.
    pub dataset: String,
    pub images: usize,
    /// Image-level AUC of the verdict (classifier and compression together), when measured.
    pub verdict_auc: Option<f64>,
    /// Pixel AUC per map key ("refined_dq:deeplabv3:paper", ...).
    pub pixel_auc: Vec<(String, f64)>,
    /// (model name, sha256) the figures were measured with.
    pub models: Vec<(String, String)>,
}

impl Measured {
    /// Read `measured.json` beside the manifest; None when absent or unreadable.
    pub fn load(file: &Path) -> Option<Measured> {
        let bytes = std::fs::read(file).ok()?;
        let eval: EvalReport = serde_json::from_slice(&bytes).ok()?;
        Some(Measured {
            dataset: dataset_name(&eval.dataset),
            images: eval.images_analysed,
            verdict_auc: eval
                .image_level
                .variants
                .get("verdict")
                .and_then(|m| m.auc)
                .or(eval.image_level.auc),
            pixel_auc: eval
                .pixel_level
                .iter()
                .filter_map(|(k, p)| Some((k.clone(), p.auc?)))
                .collect(),
            models: eval.models.clone(),
        })
    }

    /// The figures apply to the classifier models of `doc` (same names and hashes).
    fn applies_to(&self, doc: &Document) -> bool {
        !doc.variants.is_empty()
            && doc.variants.iter().all(|v| {
                self.models
                    .iter()
                    .any(|(n, h)| *n == v.info.model && *h == v.info.sha256)
            })
    }

    fn pixel(&self, key: &str) -> Option<f64> {
        self.pixel_auc
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }
}

/// "../shared/data/casia1/val" -> "CASIA v1 val"; other paths: their last two components.
fn dataset_name(path: &str) -> String {
    let parts: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .collect();
    let last = parts.last().copied().unwrap_or("");
    match parts.iter().rev().nth(1) {
        Some(p) if p.eq_ignore_ascii_case("casia1") => format!("CASIA v1 {last}"),
        Some(p) => format!("{p}/{last}"),
        None => last.to_string(),
    }
}

/// Where the default H points.
#[derive(Debug, Clone, PartialEq)]
pub enum Region {
    /// Outlined on the photo: H of `segmenter` >= [`REGION_THRESHOLD`] over `fraction` of the image.
    Flagged { segmenter: String, fraction: f32 },
    /// The verdict is authentic: nothing is outlined; `strongest` is H's maximum, for the record.
    NotFlagged {
        segmenter: Option<String>,
        strongest: Option<f32>,
    },
    /// Manipulated, but no pixel of H reaches the threshold.
    BelowThreshold { segmenter: String, strongest: f32 },
    /// No H (no segmenter region, or no classifier).
    NoMap(String),
    /// The analysis has not produced H yet.
    Pending,
}

/// The answer card's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub probability: f32,
    pub manipulated: bool,
    /// "Manipulated (p = 1.00)".
    pub headline: String,
    /// One short phrase: what the figures are worth.
    pub accuracy: String,
    pub region: Region,
    /// One line per evidence: (name, finding).
    pub evidence: Vec<(String, String)>,
    /// The classifier is a stand-in: the probabilities mean nothing.
    pub stand_in: bool,
}

/// The segmenter whose H is the default heatmap: DeepLab when it produced H (the measured default),
/// else the first segmenter with an H.
pub fn default_segmenter(doc: &Document) -> Option<usize> {
    doc.segs
        .iter()
        .position(|s| s.name == DEFAULT_SEGMENTER && s.result.refined.is_some())
        .or_else(|| doc.segs.iter().position(|s| s.result.refined.is_some()))
}

impl Answer {
    /// The answer once the classifier has spoken (None before: no verdict yet).
    pub fn of(doc: &Document, settings: &Settings, measured: Option<&Measured>) -> Option<Answer> {
        let mean = doc.mean_probability()?;
        let cs = doc.compression_score();
        // The app runs the current defaults (classifier weight, clone score in the verdict).
        let p = AnalysisParams::default().verdict(mean, cs, doc.copy_move.as_ref());
        let manipulated = p >= 0.5;
        let headline = format!(
            "{} (p = {p:.2})",
            if manipulated {
                "Manipulated"
            } else {
                "Authentic: no manipulation found"
            }
        );
        let seg = default_segmenter(doc);
        let seg_name = seg.map(|i| doc.segs[i].name.clone());
        let h: Option<&Map> = seg.and_then(|i| doc.segs[i].result.refined.as_ref());
        let accuracy = accuracy_phrase(doc, settings, measured, seg_name.as_deref());
        let strongest = h.map(|h| h.data.iter().copied().fold(0.0f32, f32::max));
        let region = match (h, &seg_name) {
            (_, _) if !manipulated => Region::NotFlagged {
                segmenter: seg_name.clone(),
                strongest,
            },
            (Some(h), Some(name)) => {
                let flagged = h.data.iter().filter(|&&v| v >= REGION_THRESHOLD).count();
                if flagged > 0 {
                    Region::Flagged {
                        segmenter: name.clone(),
                        fraction: flagged as f32 / h.data.len().max(1) as f32,
                    }
                } else {
                    Region::BelowThreshold {
                        segmenter: name.clone(),
                        strongest: strongest.unwrap_or(0.0),
                    }
                }
            }
            _ if doc.running => Region::Pending,
            _ => Region::NoMap(if doc.segs.is_empty() {
                "no segmenter produced regions".into()
            } else {
                "no segmenter region could refine the prior".into()
            }),
        };
        let mut evidence = vec![(
            "Classifier".to_string(),
            format!(
                "{}, mean p = {mean:.2} over {} variant(s); {}",
                tamperscope::outputs::output::verdict(mean),
                doc.variants.len(),
                verdict_weight_words(AnalysisParams::default().verdict_classifier_weight)
            ),
        )];
        evidence.push(("Compression history".into(), compression_line(doc)));
        evidence.push(("Copy-move".into(), copy_move_line(doc)));
        Some(Answer {
            probability: p,
            manipulated,
            headline,
            accuracy,
            region,
            evidence,
            stand_in: doc.stand_in(),
        })
    }

    /// The region line in words.
    pub fn region_line(&self) -> String {
        let pct = |f: f32| {
            let p = 100.0 * f;
            if p < 1.0 {
                format!("{p:.1} %")
            } else {
                format!("{p:.0} %")
            }
        };
        match &self.region {
            Region::Flagged {
                segmenter,
                fraction,
            } => format!(
                "Where: outlined in white on the photo, {} of the image (H · {segmenter} ≥ {REGION_THRESHOLD})",
                pct(*fraction)
            ),
            Region::NotFlagged {
                strongest: Some(s),
                segmenter: Some(seg),
            } if *s >= REGION_THRESHOLD => format!(
                "No region flagged. H · {seg} reaches {s:.2} in places: the strongest evidence, below the verdict's threshold; not outlined."
            ),
            Region::NotFlagged { .. } => "No region flagged.".into(),
            Region::BelowThreshold {
                segmenter,
                strongest,
            } => format!(
                "Where: no area reaches H ≥ {REGION_THRESHOLD} (H · {segmenter} peaks at {strongest:.2}); the evidence is image-wide, see the compression maps."
            ),
            Region::NoMap(why) => format!("Where: no heatmap H ({why})."),
            Region::Pending => "Where: waiting for the segmenters…".into(),
        }
    }
}

fn compression_line(doc: &Document) -> String {
    let Some(maps) = &doc.compression else {
        return if doc.running {
            "not read yet".into()
        } else {
            "not read in this session".into()
        };
    };
    let Some(e) = &maps.evidence else {
        let why = maps
            .absent
            .as_deref()
            .unwrap_or("the file's coefficients could not be read");
        return format!("does not apply: {why}");
    };
    let mut found = Vec::new();
    if e.adjpg.used() > 0 {
        found.push("aligned (A-DJPG)");
    }
    if e.na.is_some() {
        found.push("misaligned (NA-DJPG)");
    }
    if found.is_empty() {
        "no double-compression trace (no evidence either way)".into()
    } else {
        format!(
            "double compression found, {} trace; score {:.2}",
            found.join(" and "),
            maps.image_score()
        )
    }
}

/// The classifier's weight in the verdict in plain words ("counts half in the verdict").
fn verdict_weight_words(w: f32) -> String {
    if (w - 0.5).abs() < 1e-6 {
        "counts half in the verdict".into()
    } else {
        format!("weight {w} in the verdict")
    }
}

/// The copy-move finding in plain words: the largest repeated region, its size and shift (photo
/// pixels), how many more there are; or that none was found, or why the search did not run.
pub fn copy_move_line(doc: &Document) -> String {
    let Some(cm) = &doc.copy_move else {
        return if doc.running {
            "not searched yet".into()
        } else {
            "did not run in this session".into()
        };
    };
    if let Some(why) = &cm.absent {
        return format!("did not run: {why}");
    }
    // Regions come largest first; a copy-move gives a source and a copy, each the other's partner.
    let Some(r) = cm.regions.first() else {
        return "no repeated region found".into();
    };
    let pct = 100.0 * r.area_fraction;
    // One decimal below 10 %: "3.6 %" says more than "4 %" for the usual small clone.
    let pct = if pct < 10.0 {
        format!("{pct:.1} %")
    } else {
        format!("{pct:.0} %")
    };
    let pairs = cm.regions.len().div_ceil(2);
    let more = match pairs {
        0 | 1 => String::new(),
        2 => "; 1 more repeated region".into(),
        n => format!("; {} more repeated regions", n - 1),
    };
    format!(
        "a {pct} region is repeated elsewhere in the image, shifted by ({:.0}, {:.0}) px{more}; score {:.2}",
        r.offset[0], r.offset[1], cm.score
    )
}

fn accuracy_phrase(
    doc: &Document,
    settings: &Settings,
    measured: Option<&Measured>,
    seg: Option<&str>,
) -> String {
    let Some(m) = measured.filter(|m| m.applies_to(doc)) else {
        return "Accuracy: not measured for these models.".into();
    };
    let mut out = format!("Measured on {} ({} images)", m.dataset, m.images);
    if let Some(auc) = m.verdict_auc {
        out.push_str(&format!(": verdict AUC {auc:.2}"));
    }
    let seg = seg.unwrap_or(DEFAULT_SEGMENTER);
    let prefix = match settings.prior {
        PriorChoice::Compression => "refined_dq",
        PriorChoice::Paper => "refined",
    };
    let key = format!("{prefix}:{seg}:{}", settings.similarity.name());
    if let Some(auc) = m.pixel(&key) {
        out.push_str(&format!("; pixel AUC {auc:.2} for H · {seg}"));
    }
    out.push('.');
    out
}

impl TamperscopeApp {
    /// The answer card; nothing before the classifier has run.
    pub fn answer_card_ui(&self, ui: &mut egui::Ui) {
        let Some(doc) = &self.rt.doc else { return };
        let Some(a) = Answer::of(doc, &self.settings, self.rt.measured.as_ref()) else {
            if !doc.running && doc.variants.is_empty() && doc.working.is_some() {
                egui::Frame::group(ui.style()).show(ui, |ui| {
                    ui.label(RichText::new("No verdict").strong().size(18.0));
                    ui.label("The classifier is not available: there is no verdict, only the ELA and compression maps.");
                });
            }
            return;
        };
        let color = if a.manipulated { BAD } else { GOOD };
        egui::Frame::group(ui.style())
            .stroke(egui::Stroke::new(1.5, color))
            .inner_margin(8.0)
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.label(RichText::new(&a.headline).strong().size(19.0).color(color))
                    .on_hover_text(super::help::VERDICT);
                if a.stand_in {
                    ui.label(
                        RichText::new(format!(
                            "{}: these probabilities mean nothing",
                            tamperscope::outputs::output::STAND_IN_LABEL
                        ))
                        .color(WARN),
                    );
                }
                ui.label(RichText::new(&a.accuracy).weak())
                    .on_hover_text(super::help::ACCURACY);
                let region = a.region_line();
                let resp = if matches!(a.region, Region::Flagged { .. }) {
                    ui.label(RichText::new(region).color(Color32::WHITE))
                } else {
                    ui.label(region)
                };
                resp.on_hover_text(super::help::REGION);
                ui.add_space(2.0);
                for (name, finding) in &a.evidence {
                    ui.horizontal_wrapped(|ui| {
                        ui.label(RichText::new(format!("{name}:")).strong())
                            .on_hover_text(super::help::evidence(name));
                        ui.label(finding);
                    });
                }
            });
    }
}

/// The outline of the answer's region, at the working resolution, cached per H upload.
#[derive(Debug, Clone, Default)]
pub struct Outline {
    /// (job, segmenter, generation of its H upload): recomputed when it changes.
    pub key: (u64, usize, u64),
    /// Line segments in working pixels.
    pub segments: Vec<[egui::Pos2; 2]>,
    /// Bounding box in working pixels (for the label).
    pub bbox: Option<egui::Rect>,
}

/// Boundary of `H >= REGION_THRESHOLD`, on a grid coarse enough to keep the segments few (at most
/// ~256 cells a side), with collinear runs merged.
pub fn outline_of(h: &Map) -> (Vec<[egui::Pos2; 2]>, Option<egui::Rect>) {
    let (w, hh) = (h.width, h.height);
    if w == 0 || hh == 0 || h.data.len() != w * hh {
        return (Vec::new(), None);
    }
    let cell = w.max(hh).div_ceil(256).max(1);
    let (gw, gh) = (w.div_ceil(cell), hh.div_ceil(cell));
    // A cell is in when the majority of its pixels are.
    let mut grid = vec![false; gw * gh];
    for gy in 0..gh {
        for gx in 0..gw {
            let (mut n, mut on) = (0usize, 0usize);
            for y in gy * cell..((gy + 1) * cell).min(hh) {
                for x in gx * cell..((gx + 1) * cell).min(w) {
                    n += 1;
                    on += usize::from(h.data[y * w + x] >= REGION_THRESHOLD);
                }
            }
            grid[gy * gw + gx] = 2 * on > n;
        }
    }
    let at = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < gw
            && (y as usize) < gh
            && grid[y as usize * gw + x as usize]
    };
    let s = cell as f32;
    let px = |x: usize, y: usize| {
        egui::pos2((x as f32 * s).min(w as f32), (y as f32 * s).min(hh as f32))
    };
    let mut segs = Vec::new();
    let mut bbox: Option<egui::Rect> = None;
    // Horizontal edges: between rows y-1 and y, merged along x.
    for y in 0..=gh {
        let mut start: Option<usize> = None;
        for x in 0..=gw {
            let edge = x < gw && at(x as isize, y as isize - 1) != at(x as isize, y as isize);
            match (edge, start) {
                (true, None) => start = Some(x),
                (false, Some(x0)) => {
                    segs.push([px(x0, y), px(x, y)]);
                    start = None;
                }
                _ => {}
            }
        }
    }
    // Vertical edges: between columns x-1 and x, merged along y.
    for x in 0..=gw {
        let mut start: Option<usize> = None;
        for y in 0..=gh {
            let edge = y < gh && at(x as isize - 1, y as isize) != at(x as isize, y as isize);
            match (edge, start) {
                (true, None) => start = Some(y),
                (false, Some(y0)) => {
                    segs.push([px(x, y0), px(x, y)]);
                    start = None;
                }
                _ => {}
            }
        }
    }
    for [a, b] in &segs {
        let r = egui::Rect::from_two_pos(*a, *b);
        bbox = Some(bbox.map_or(r, |bb| bb.union(r)));
    }
    (segs, bbox)
}

impl TamperscopeApp {
    /// Keep [`super::Runtime::answer_outline`] in step with the default H and the verdict: an
    /// outline only when the verdict is "manipulated" and some of H reaches the threshold.
    pub fn refresh_answer_outline(&mut self) {
        let Some(doc) = &self.rt.doc else {
            self.rt.answer_outline = None;
            return;
        };
        let answer = Answer::of(doc, &self.settings, None);
        let flagged = answer
            .as_ref()
            .is_some_and(|a| matches!(a.region, Region::Flagged { .. }));
        let seg = default_segmenter(doc);
        let (Some(i), true) = (seg, flagged) else {
            self.rt.answer_outline = None;
            return;
        };
        let generation = self
            .rt
            .scene
            .heat
            .get(super::gpu::SLOT_REFINED0 + i)
            .and_then(|u| u.as_ref())
            .map_or(0, |u| u.generation);
        let key = (doc.job, i, generation);
        if self
            .rt
            .answer_outline
            .as_ref()
            .is_some_and(|o| o.key == key)
        {
            return;
        }
        let Some(h) = doc.segs[i].result.refined.as_ref() else {
            self.rt.answer_outline = None;
            return;
        };
        let (segments, bbox) = outline_of(h);
        self.rt.answer_outline = Some(Outline {
            key,
            segments,
            bbox,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names() {
        assert_eq!(dataset_name("../shared/data/casia1/val"), "CASIA v1 val");
        assert_eq!(dataset_name("/data/columbia/test"), "columbia/test");
        assert_eq!(dataset_name("val"), "val");
    }

    #[test]
    fn the_outline_of_a_square_is_four_segments() {
        let mut data = vec![0.0f32; 20 * 10];
        for y in 2..6 {
            for x in 3..9 {
                data[y * 20 + x] = 0.9;
            }
        }
        let (segs, bbox) = outline_of(&Map {
            width: 20,
            height: 10,
            data,
        });
        assert_eq!(segs.len(), 4, "{segs:?}");
        assert_eq!(
            bbox,
            Some(egui::Rect::from_min_max(
                egui::pos2(3.0, 2.0),
                egui::pos2(9.0, 6.0)
            ))
        );
    }
}
