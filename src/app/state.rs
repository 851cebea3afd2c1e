//! What the app knows: persisted [`Settings`] (one serde struct, saved by `App::save`) and the
//! runtime [`Document`] of the open image, kept apart so that no handle or result is ever
//! serialised.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use serde::{Deserialize, Serialize};
use tamperscope::engine::copymove::{CloneRegion, CopyMove};
use tamperscope::engine::imageio::ImageInfo;
use tamperscope::engine::pipeline::{
    CompressionMaps, PriorRule, SegmenterResult, Unavailable, VariantResult, score_and_refine,
};
use tamperscope::engine::raster::Map;
use tamperscope::engine::segment::{MaskRule, Segmentation};
use tamperscope::engine::similarity::SimilarityVariant;
use tamperscope::outputs::colormap::ColorMap;

/// Recent files kept.
pub const MAX_RECENT: usize = 10;

/// Opacity, colour map and visibility of one layer kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerStyle {
    pub visible: bool,
    pub opacity: f32,
    pub cmap: ColorMap,
}

impl LayerStyle {
    pub const fn new(visible: bool, opacity: f32, cmap: ColorMap) -> Self {
        Self {
            visible,
            opacity,
            cmap,
        }
    }
    /// Opacity the shader gets (0 when hidden).
    pub fn effective(&self) -> f32 {
        if self.visible {
            self.opacity.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// The heat maps every analysis has (the H maps are per segmenter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeatLayer {
    Ela,
    Cam2,
    Cam3,
    Cam4,
    Fused,
    /// Aligned double-JPEG `P(tampered)` (METHOD.md section 9).
    Adjpg,
    /// Non-aligned double-JPEG `P(tampered)`.
    NaDjpg,
    /// The two compression maps combined (the compression posterior).
    Compression,
    /// The prior of the similarity and the refinement (`A` fused with the compression posterior).
    Prior,
    /// Copy-move: 1 where a region is repeated elsewhere in the image (source and copy alike).
    CopyMove,
}

impl HeatLayer {
    pub const COUNT: usize = 10;
    pub const ALL: [HeatLayer; HeatLayer::COUNT] = [
        HeatLayer::Ela,
        HeatLayer::Cam2,
        HeatLayer::Cam3,
        HeatLayer::Cam4,
        HeatLayer::Fused,
        HeatLayer::Adjpg,
        HeatLayer::NaDjpg,
        HeatLayer::Compression,
        HeatLayer::Prior,
        HeatLayer::CopyMove,
    ];
    pub fn label(self) -> &'static str {
        match self {
            HeatLayer::Ela => "ELA",
            HeatLayer::Cam2 => "A_2",
            HeatLayer::Cam3 => "A_3",
            HeatLayer::Cam4 => "A_4",
            HeatLayer::Fused => "A (fused)",
            HeatLayer::Adjpg => "A-DJPG",
            HeatLayer::NaDjpg => "NA-DJPG",
            HeatLayer::Compression => "Compression (combined)",
            HeatLayer::Prior => "Prior",
            HeatLayer::CopyMove => "Copy-move",
        }
    }
    /// Name of the layer in a report bookmark (what `tamperscope::outputs::report::compose_view` draws).
    pub fn bookmark_name(self) -> String {
        match self {
            HeatLayer::Ela => "ela".into(),
            HeatLayer::Fused => "fused".into(),
            HeatLayer::Adjpg => "adjpg".into(),
            HeatLayer::NaDjpg => "nadjpg".into(),
            HeatLayer::Compression => "compression".into(),
            HeatLayer::Prior => "prior".into(),
            HeatLayer::CopyMove => "copymove".into(),
            other => format!("cam{}", other.variant().unwrap_or(0)),
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn variant(self) -> Option<u32> {
        match self {
            HeatLayer::Cam2 => Some(2),
            HeatLayer::Cam3 => Some(3),
            HeatLayer::Cam4 => Some(4),
            _ => None,
        }
    }
}

/// Which map is the prior of the similarity and the refinement (persisted; the engine's
/// [`PriorRule`] is derived from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PriorChoice {
    /// `A`, the compression posterior in log-odds and the copy-move map ([`PriorRule::default`]).
    #[default]
    Compression,
    /// The paper's configuration: `A` alone.
    Paper,
}

impl PriorChoice {
    pub const ALL: [PriorChoice; 2] = [PriorChoice::Compression, PriorChoice::Paper];
    pub fn label(self) -> &'static str {
        match self {
            PriorChoice::Compression => "A + evidence (default)",
            PriorChoice::Paper => "paper: A alone",
        }
    }
    pub fn rule(self) -> PriorRule {
        match self {
            PriorChoice::Compression => PriorRule::default(),
            PriorChoice::Paper => PriorRule::Paper,
        }
    }
}

/// Which per-segmenter layers are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SegToggles {
    pub masks: bool,
    pub chosen: bool,
    pub refined: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SegLayer {
    Masks,
    Chosen,
    Refined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ViewMode {
    #[default]
    Single,
    Compare,
}

/// What one compare pane shows over the photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaneContent {
    Photo,
    Heat(HeatLayer),
    /// H of the n-th segmenter.
    Refined(usize),
    /// Masks and chosen mask of the n-th segmenter.
    Masks(usize),
}

impl PaneContent {
    pub fn label(&self, segmenters: &[String]) -> String {
        let seg = |i: &usize| {
            segmenters
                .get(*i)
                .cloned()
                .unwrap_or_else(|| format!("segmenter {}", i + 1))
        };
        match self {
            PaneContent::Photo => "Photo".into(),
            PaneContent::Heat(h) => h.label().into(),
            PaneContent::Refined(i) => format!("H ({})", seg(i)),
            PaneContent::Masks(i) => format!("Masks ({})", seg(i)),
        }
    }
}

/// Default style per [`HeatLayer`].
pub const DEFAULT_HEAT: [LayerStyle; HeatLayer::COUNT] = [
    LayerStyle::new(false, 0.6, ColorMap::Gray),
    LayerStyle::new(false, 0.6, ColorMap::Inferno),
    LayerStyle::new(false, 0.6, ColorMap::Inferno),
    LayerStyle::new(false, 0.6, ColorMap::Inferno),
    LayerStyle::new(true, 0.55, ColorMap::Inferno),
    LayerStyle::new(false, 0.6, ColorMap::Viridis),
    LayerStyle::new(false, 0.6, ColorMap::Viridis),
    LayerStyle::new(false, 0.6, ColorMap::Viridis),
    LayerStyle::new(false, 0.6, ColorMap::Inferno),
    // On by default: the map is 0 (invisible) unless a repeated region was found. Viridis draws
    // its 1 in yellow, apart from A's inferno.
    LayerStyle::new(true, 0.6, ColorMap::Viridis),
];

/// `Settings::heat` from a sequence of any length (a tuple in RON, an array in JSON): styles
/// saved before a layer existed keep their values, the new layers take [`DEFAULT_HEAT`], and
/// entries beyond the known layers are ignored.
fn heat_styles<'de, D>(deserializer: D) -> Result<[LayerStyle; HeatLayer::COUNT], D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Styles;
    impl<'de> serde::de::Visitor<'de> for Styles {
        type Value = [LayerStyle; HeatLayer::COUNT];
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a sequence of layer styles")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = DEFAULT_HEAT;
            for slot in out.iter_mut() {
                match seq.next_element::<LayerStyle>()? {
                    Some(s) => *slot = s,
                    None => return Ok(out),
                }
            }
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(out)
        }
    }
    // A length hint only: RON reads a tuple of any length, JSON any array.
    deserializer.deserialize_tuple(HeatLayer::COUNT, Styles)
}

/// Everything that persists across runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// One style per [`HeatLayer`] (indexed by [`HeatLayer::index`]). Settings saved before a
    /// layer existed have fewer entries: the missing ones take their defaults.
    #[serde(deserialize_with = "heat_styles")]
    pub heat: [LayerStyle; HeatLayer::COUNT],
    /// Style of every segmenter's H (visibility per segmenter in `seg_layers`).
    pub refined: LayerStyle,
    /// Opacity of the outlined masks.
    pub masks_opacity: f32,
    /// Strength of the chosen-mask outline and dimming outside it.
    pub chosen_opacity: f32,
    /// Per segmenter name.
    pub seg_layers: BTreeMap<String, SegToggles>,
    pub similarity: SimilarityVariant,
    /// The prior of the similarity and the refinement.
    pub prior: PriorChoice,
    /// Minimum region area, as a fraction of the working image (METHOD.md section 4).
    pub min_area_fraction: f32,
    /// Heat values below this are not drawn.
    pub display_threshold: f32,
    pub last_folder: Option<PathBuf>,
    pub recent: Vec<PathBuf>,
    pub view_mode: ViewMode,
    pub compare_panes: usize,
    pub pane_content: Vec<PaneContent>,
    pub show_layers_panel: bool,
    pub show_analysis_panel: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            heat: DEFAULT_HEAT,
            refined: LayerStyle::new(true, 0.6, ColorMap::Turbo),
            masks_opacity: 0.8,
            chosen_opacity: 0.8,
            seg_layers: BTreeMap::new(),
            similarity: SimilarityVariant::default(),
            prior: PriorChoice::default(),
            min_area_fraction: MaskRule::default().min_area_fraction,
            display_threshold: 0.0,
            last_folder: None,
            recent: Vec::new(),
            view_mode: ViewMode::Single,
            compare_panes: 2,
            pane_content: vec![
                PaneContent::Heat(HeatLayer::Fused),
                PaneContent::Refined(0),
                PaneContent::Refined(1),
                PaneContent::Heat(HeatLayer::Ela),
            ],
            show_layers_panel: true,
            show_analysis_panel: true,
        }
    }
}

impl Settings {
    pub fn push_recent(&mut self, path: &Path) {
        self.recent.retain(|p| p != path);
        self.recent.insert(0, path.to_path_buf());
        self.recent.truncate(MAX_RECENT);
        if let Some(dir) = path.parent() {
            self.last_folder = Some(dir.to_path_buf());
        }
    }

    pub fn seg_toggles(&self, name: &str) -> SegToggles {
        self.seg_layers.get(name).copied().unwrap_or_default()
    }

    pub fn mask_rule(&self) -> MaskRule {
        MaskRule {
            min_area_fraction: self.min_area_fraction.clamp(0.0, 0.5),
        }
    }
}

/// One segmenter's output: all regions it found (the floor rule) and the filtered, scored set.
pub struct SegState {
    pub name: String,
    /// Regions as segmented (semantic: every component; built-in: already merged by the rule).
    pub raw: Segmentation,
    /// `kept[i]` = index in `raw.regions` of `result.segmentation.regions[i]`.
    pub kept: Vec<usize>,
    /// Scored and refined against the prior (no scores when the classifier is unavailable).
    pub result: SegmenterResult,
    /// The analyst's evidence mask, as an index into `raw.regions` (None = automatic argmax).
    pub user_choice: Option<usize>,
    pub ms: f64,
}

impl SegState {
    pub fn new(
        name: String,
        raw: Segmentation,
        ms: f64,
        prior: Option<&Map>,
        settings: &Settings,
    ) -> SegState {
        let empty = Segmentation {
            segmenter: name.clone(),
            regions: Vec::new(),
            dropped_small: 0,
        };
        let result = SegmenterResult {
            segmentation: empty,
            similarity: settings.similarity,
            scores: Vec::new(),
            chosen: None,
            refined: None,
            likelihoods: None,
        };
        let mut s = SegState {
            name,
            raw,
            kept: Vec::new(),
            result,
            user_choice: None,
            ms,
        };
        s.refilter(prior, settings);
        s
    }

    /// Apply the minimum-area rule to `raw`, then score and refine against `prior` (no model
    /// is run).
    pub fn refilter(&mut self, prior: Option<&Map>, settings: &Settings) {
        let (w, h) = self
            .raw
            .regions
            .first()
            .map(|r| (r.mask.width, r.mask.height))
            .unwrap_or((0, 0));
        let min = settings.mask_rule().min_pixels(w, h);
        self.kept = self
            .raw
            .regions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.area >= min)
            .map(|(i, _)| i)
            .collect();
        let dropped = self.raw.dropped_small + (self.raw.regions.len() - self.kept.len());
        let segmentation = Segmentation {
            segmenter: self.raw.segmenter.clone(),
            regions: self
                .kept
                .iter()
                .map(|&i| self.raw.regions[i].clone())
                .collect(),
            dropped_small: dropped,
        };
        let chosen = self
            .user_choice
            .and_then(|raw| self.kept.iter().position(|&k| k == raw));
        self.result = match prior {
            Some(p) => score_and_refine(segmentation, p, settings.similarity, chosen),
            None => SegmenterResult {
                segmentation,
                similarity: settings.similarity,
                scores: Vec::new(),
                chosen: None,
                refined: None,
                likelihoods: None,
            },
        };
    }

    /// Make region `i` (index into the filtered regions; None = automatic) the evidence mask.
    pub fn choose(&mut self, i: Option<usize>, prior: Option<&Map>, similarity: SimilarityVariant) {
        self.user_choice = i.and_then(|i| self.kept.get(i).copied());
        if let Some(p) = prior {
            self.result.rescore(p, similarity, i);
        }
    }

    /// Regions ranked by S, best first (index into the filtered regions).
    pub fn ranked(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.result.segmentation.regions.len()).collect();
        if !self.result.scores.is_empty() {
            order.sort_by(|&a, &b| self.result.scores[b].total_cmp(&self.result.scores[a]));
        }
        order
    }

    /// Region index + 1 per pixel (0 = none) for the shader; later regions win where they overlap.
    /// `len` = working width x height (all zeros when the segmenter found no region).
    /// The view's index texture: per pixel, region index + 1 (0 = none) and the distance to the
    /// nearest region boundary in 1/16 pixels, interleaved. The shader outlines a region where
    /// that distance is below the outline width: one texture read instead of five.
    pub fn index_texels(&self, (w, h): (usize, usize)) -> Vec<u16> {
        let index = self.index_map(w * h);
        let distance = boundary_distance(&index, w, h);
        index
            .iter()
            .zip(&distance)
            .flat_map(|(&i, &d)| [i, (d * 16.0).round().min(f32::from(u16::MAX)) as u16])
            .collect()
    }

    pub fn index_map(&self, len: usize) -> Vec<u16> {
        let regions = &self.result.segmentation.regions;
        let mut out = vec![0u16; len];
        for (i, r) in regions.iter().enumerate() {
            let v = (i + 1).min(u16::MAX as usize) as u16;
            for (o, &m) in out.iter_mut().zip(&r.mask.data) {
                if m {
                    *o = v;
                }
            }
        }
        out
    }

    /// Region under working-resolution pixel (x, y).
    pub fn region_at(&self, x: usize, y: usize) -> Option<usize> {
        let regions = &self.result.segmentation.regions;
        regions
            .iter()
            .enumerate()
            .rev()
            .find(|(_, r)| {
                let [x0, y0, x1, y1] = r.bbox;
                (x0..x1).contains(&x) && (y0..y1).contains(&y) && r.mask.data[y * r.mask.width + x]
            })
            .map(|(i, _)| i)
    }
}

/// One stage of the running (or finished) analysis, for the progress list.
#[derive(Debug, Clone, PartialEq)]
pub enum StageState {
    Running,
    Done(f64),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageRow {
    pub name: String,
    pub state: StageState,
}

/// The open image and everything computed for it so far.
#[derive(Default)]
pub struct Document {
    pub path: PathBuf,
    pub job: u64,
    pub info: Option<ImageInfo>,
    pub photo: Option<Arc<RgbImage>>,
    pub working: Option<Arc<RgbImage>>,
    pub ela: Option<Map>,
    pub variants: Vec<VariantResult>,
    /// `A` (the A layer).
    pub fused: Option<Map>,
    /// Compression-history evidence, once its stage has run.
    pub compression: Option<CompressionMaps>,
    /// The prior the segmenters are scored and refined against: [`Settings::prior`] applied to
    /// `A` and the compression posterior ([`Document::update_prior`]).
    pub prior: Option<Map>,
    /// Copy-move evidence, once its stage has run (map at the working resolution, regions and
    /// offsets in photo pixels).
    pub copy_move: Option<CopyMove>,
    pub segs: Vec<SegState>,
    pub seg_errors: Vec<Unavailable>,
    pub stages: Vec<StageRow>,
    pub total_stages: usize,
    pub running: bool,
    pub cancelled: bool,
    /// The analyst's notes and bookmarked views, for the report.
    pub notes: String,
    pub bookmarks: Vec<tamperscope::outputs::report::Bookmark>,
    /// The app's own record of each bookmark (same index): what "restore" brings back.
    pub bookmark_views: Vec<BookmarkView>,
}

/// The view a bookmark restores: pan / zoom as the app had it, and the layer styles.
#[derive(Debug, Clone, PartialEq)]
pub struct BookmarkView {
    pub view: super::transform::ViewTransform,
    /// The zoom the status bar showed (screen pixels per image pixel).
    pub screen_zoom: f32,
    pub heat: [LayerStyle; HeatLayer::COUNT],
    pub refined: LayerStyle,
    pub seg_layers: BTreeMap<String, SegToggles>,
}

impl Document {
    pub fn variant(&self, v: u32) -> Option<&VariantResult> {
        self.variants.iter().find(|r| r.info.variant == v)
    }

    pub fn heat_map(&self, layer: HeatLayer) -> Option<&Map> {
        let compression = self.compression.as_ref();
        match layer {
            HeatLayer::Ela => self.ela.as_ref(),
            HeatLayer::Fused => self.fused.as_ref(),
            HeatLayer::Adjpg => compression.and_then(|c| c.adjpg.as_ref()),
            HeatLayer::NaDjpg => compression.and_then(|c| c.na.as_ref()),
            HeatLayer::Compression => compression.and_then(|c| c.combined.as_ref()),
            HeatLayer::Prior => self.prior.as_ref(),
            // No map when the search did not run (too small, flat): the row says why.
            HeatLayer::CopyMove => self
                .copy_move
                .as_ref()
                .filter(|c| c.absent.is_none())
                .map(|c| &c.map),
            _ => layer
                .variant()
                .and_then(|v| self.variant(v))
                .map(|r| &r.cam),
        }
    }

    /// Why `layer` has no map although its stage has run (None while it may still come, or
    /// when it is there), in words for the layer's hover text.
    pub fn heat_absent_reason(&self, layer: HeatLayer) -> Option<String> {
        if self.heat_map(layer).is_some() {
            return None;
        }
        let c = self.compression.as_ref();
        let not_applicable = || {
            c.and_then(|c| c.absent.as_ref())
                .map(|a| format!("No compression evidence: {a}"))
        };
        match layer {
            HeatLayer::Adjpg => not_applicable(),
            HeatLayer::NaDjpg => not_applicable().or_else(|| {
                let e = c?.evidence.as_ref()?;
                Some(match &e.na_absent {
                    Some(why) => format!("No misaligned (NA-DJPG) grid: {why}"),
                    None => "No misaligned (NA-DJPG) grid was found".into(),
                })
            }),
            HeatLayer::Compression => not_applicable().or_else(|| {
                c?.evidence.as_ref()?;
                Some("No compression trace was found: neither an aligned (A-DJPG) nor a misaligned (NA-DJPG) double compression".into())
            }),
            HeatLayer::CopyMove => self
                .copy_move
                .as_ref()
                .and_then(|c| c.absent.as_ref())
                .map(|why| format!("No copy-move search: {why}")),
            HeatLayer::Fused | HeatLayer::Cam2 | HeatLayer::Cam3 | HeatLayer::Cam4
            | HeatLayer::Prior
                if !self.running && self.variants.is_empty() =>
            {
                Some("No classifier: this map needs one".into())
            }
            _ => None,
        }
    }

    /// Recompute the prior from `A` and the compression log-odds, as `Engine::analyze` does (no
    /// model runs); false when there is no `A` yet.
    pub fn update_prior(&mut self, rule: PriorRule) -> bool {
        let Some(fused) = &self.fused else {
            self.prior = None;
            return false;
        };
        let dq = self
            .compression
            .as_ref()
            .and_then(|c| c.combined_log_odds.as_ref());
        let cm = self.copy_move.as_ref().map(|c| &c.map);
        self.prior = Some(rule.combine(fused, dq, cm));
        true
    }

    /// The compression image score (0 without evidence).
    pub fn compression_score(&self) -> f32 {
        self.compression
            .as_ref()
            .map_or(0.0, CompressionMaps::image_score)
    }

    /// The classifiers' mean probability, when there are classifiers.
    pub fn mean_probability(&self) -> Option<f32> {
        (!self.variants.is_empty()).then(|| {
            self.variants.iter().map(|v| v.probability).sum::<f32>() / self.variants.len() as f32
        })
    }

    pub fn work_size(&self) -> Option<(usize, usize)> {
        self.working
            .as_ref()
            .map(|w| (w.width() as usize, w.height() as usize))
    }

    pub fn photo_size(&self) -> Option<(f32, f32)> {
        self.photo
            .as_ref()
            .map(|p| (p.width() as f32, p.height() as f32))
    }

    pub fn segmenter_names(&self) -> Vec<String> {
        self.segs.iter().map(|s| s.name.clone()).collect()
    }

    pub fn stand_in(&self) -> bool {
        self.variants
            .iter()
            .any(|v| v.info.status.contains("stand-in"))
    }
}

/// A marked pixel of the copy-move map and where its region was matched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CopyMovePartner {
    /// Index into [`CopyMove::regions`].
    pub region: usize,
    /// The region its region was matched to (see [`copy_move_partners`]), if any.
    pub partner_region: Option<usize>,
    /// The point asked about and its partner, photo pixels.
    pub at: [f32; 2],
    pub partner: [f32; 2],
    /// The region's median offset `(dx, dy)` to its partner, photo pixels.
    pub offset: [f32; 2],
}

/// Squared distance from (x, y) to a box `[x0, y0, x1, y1]` (0 inside).
fn box_distance2(b: &[f32; 4], x: f32, y: f32) -> f32 {
    let dx = (b[0] - x).max(0.0).max(x - b[2]);
    let dy = (b[1] - y).max(0.0).max(y - b[3]);
    dx * dx + dy * dy
}

fn box_overlap(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    w * h
}

/// For every region of `cm`, the other region its matches landed in: the one whose box overlaps
/// its `partner_bbox` most (None when no box does).
pub fn copy_move_partners(cm: &CopyMove) -> Vec<Option<usize>> {
    let regions: &[CloneRegion] = &cm.regions;
    regions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            regions
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(j, o)| (j, box_overlap(&r.partner_bbox, &o.bbox)))
                .filter(|&(_, o)| o > 0.0)
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(j, _)| j)
        })
        .collect()
}

impl Document {
    /// Whether the copy-move search found a repeated region (the layer draws something).
    pub fn copy_move_found(&self) -> bool {
        self.copy_move
            .as_ref()
            .is_some_and(|c| c.absent.is_none() && !c.regions.is_empty())
    }

    /// The partner of photo pixel `(x, y)` when the copy-move map marks it: the point moved by
    /// the median offset of its region (the region whose box is nearest, the smallest on a tie).
    /// The detector does not say which side is the original, so neither does this. None where
    /// the map is 0 or there is no copy-move evidence.
    pub fn copy_move_partner(&self, x: f32, y: f32) -> Option<CopyMovePartner> {
        let cm = self.copy_move.as_ref().filter(|c| c.absent.is_none())?;
        let (pw, ph) = self.photo_size()?;
        let m = &cm.map;
        if !(x >= 0.0 && y >= 0.0 && x < pw && y < ph) || m.width == 0 || m.height == 0 {
            return None;
        }
        let mx = ((x / pw * m.width as f32) as usize).min(m.width - 1);
        let my = ((y / ph * m.height as f32) as usize).min(m.height - 1);
        if m.data.get(my * m.width + mx).copied().unwrap_or(0.0) < 0.5 {
            return None;
        }
        let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
        let (region, r) = cm.regions.iter().enumerate().min_by(|(_, a), (_, b)| {
            box_distance2(&a.bbox, x, y)
                .total_cmp(&box_distance2(&b.bbox, x, y))
                .then(area(&a.bbox).total_cmp(&area(&b.bbox)))
        })?;
        let partner = [
            (x + r.offset[0]).clamp(0.0, pw - 1.0),
            (y + r.offset[1]).clamp(0.0, ph - 1.0),
        ];
        Some(CopyMovePartner {
            region,
            partner_region: copy_move_partners(cm).get(region).copied().flatten(),
            at: [x, y],
            partner,
            offset: r.offset,
        })
    }
}

/// What the worker reported about the models.
#[derive(Debug, Clone, Default)]
pub struct EngineStatus {
    pub ready: bool,
    /// The classifier (and so the engine) could not be opened: the reason, user-readable.
    pub error: Option<String>,
    pub unavailable: Vec<Unavailable>,
    /// Models of the manifest that are not installed, with how to install them.
    pub missing: Vec<(String, String)>,
    pub segmenters: Vec<String>,
    pub classifiers: Vec<String>,
}

/// Distance from each pixel to the nearest boundary pixel: a pixel on the image border or with a
/// 4-neighbour in another region (or in none).
pub fn boundary_distance(index: &[u16], w: usize, h: usize) -> Vec<f32> {
    if index.len() != w * h || w == 0 || h == 0 {
        return vec![0.0; index.len()];
    }
    let mut not_boundary = vec![true; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let v = index[i];
            not_boundary[i] = x > 0
                && y > 0
                && x + 1 < w
                && y + 1 < h
                && index[i - 1] == v
                && index[i + 1] == v
                && index[i - w] == v
                && index[i + w] == v;
        }
    }
    tamperscope::engine::similarity::distance_transform(&tamperscope::engine::raster::Mask {
        width: w,
        height: h,
        data: not_boundary,
    })
}
