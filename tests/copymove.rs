//! Copy-move evidence (src/engine/copymove.rs) on copy-moves the test makes from photos in
//! `../shared/data/photos` (or `$TAMPERSCOPE_SHARED/data/photos`): an elliptic region is copied
//! elsewhere in the same photo as a plain shift, rotated, scaled, then saved as JPEG or with
//! added noise; the ground truth marks BOTH the source and the copy. Authentic photos (including
//! self-similar city scenes from urban100) must stay quiet. The tests skip with a message where
//! `../shared` is absent.
//!
//! Seeds: the asserted tests use generator seed 1 (the seed the parameters were tuned on); the
//! `#[ignore]` measurement (`cargo test --release --test copymove -- --ignored --nocapture`) uses
//! seed 2026 by default (`COPYMOVE_SEED` overrides; `COPYMOVE_OFFSET` starts at another photo of each
//! folder, as in `write_eval_set`), which was not used for tuning. The detector's
//! own PatchMatch seed is `CopyMoveParams::default().seed`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use libjpeg_turbo_rs::{PixelFormat, Subsampling, compress};
use tamperscope::engine::copymove::{CopyMoveParams, detect};
use tamperscope::engine::metrics::{Counts, auc};

/// `../shared/data/photos`, or None (with a message) where it is absent.
fn photos_dir() -> Option<PathBuf> {
    let shared = std::env::var_os("TAMPERSCOPE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo().join("../shared"));
    let dir = shared.join("data/photos");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} is absent (../shared not mounted)",
            dir.display()
        );
        None
    }
}

/// Photos of varied content: Kodak (objects, textures), urban100 (buildings: windows, brick,
/// repeated facades), sunhays80 (landscapes, sky) and camera wallpapers.
fn photo_list(dir: &std::path::Path, n: usize) -> Vec<PathBuf> {
    photo_list_from(dir, n, 0)
}

/// [`photo_list`] starting at the `offset`-th photo of each folder (0-6 give disjoint lists).
fn photo_list_from(dir: &std::path::Path, n: usize, offset: usize) -> Vec<PathBuf> {
    let mut lists: Vec<Vec<PathBuf>> = ["kodak24", "urban100", "sunhays80", "wallpapers"]
        .iter()
        .map(|d| {
            let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(d))
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            v.retain(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"));
            v.sort();
            v
        })
        .collect();
    // Every 7th photo of each folder, folders interleaved.
    let mut out = Vec::new();
    let mut k = 0;
    while out.len() < n && k < 200 {
        for l in &mut lists {
            if let Some(p) = l.get(k * 7 + offset) {
                out.push(p.clone());
                if out.len() == n {
                    break;
                }
            }
        }
        k += 1;
    }
    out
}

/// The photo with its longest side scaled to `side` (Lanczos3).
fn load(path: &std::path::Path, side: u32) -> RgbImage {
    let img = tamperscope::engine::imageio::load_image(path)
        .expect("photo decodes")
        .rgb;
    let s = side as f64 / img.width().max(img.height()) as f64;
    let (w, h) = (
        (img.width() as f64 * s).round() as u32,
        (img.height() as f64 * s).round() as u32,
    );
    image::imageops::resize(&img, w, h, image::imageops::FilterType::Lanczos3)
}

use tamperscope::engine::rng::SplitMix64 as Rng;

/// Standard normal by Box-Muller.
fn gauss(rng: &mut Rng) -> f64 {
    let u1 = rng.uniform(1e-12, 1.0);
    let u2 = rng.uniform(0.0, 1.0);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Plain,
    Rotated,
    Scaled,
    Jpeg,
    Noise,
}

const KINDS: [Kind; 5] = [
    Kind::Plain,
    Kind::Rotated,
    Kind::Scaled,
    Kind::Jpeg,
    Kind::Noise,
];

/// A generated copy-move: the forged image, the mask of source and copy, and what was done.
struct Forgery {
    image: RgbImage,
    mask: Vec<bool>,
    what: String,
}

impl Forgery {
    /// `DIR/STEM.png` (the image) and `DIR/STEM_mask.png` (source and copy white).
    fn save(&self, dir: &Path, stem: &str) {
        self.image
            .save(dir.join(format!("{stem}.png")))
            .expect("save");
        let m: Vec<u8> = self.mask.iter().map(|&b| if b { 255 } else { 0 }).collect();
        image::GrayImage::from_raw(self.image.width(), self.image.height(), m)
            .expect("mask size")
            .save(dir.join(format!("{stem}_mask.png")))
            .expect("save");
    }
}

fn bilinear(img: &RgbImage, x: f64, y: f64) -> [u8; 3] {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let px = |xx: i64, yy: i64| {
        img.get_pixel(xx.clamp(0, w - 1) as u32, yy.clamp(0, h - 1) as u32)
            .0
    };
    let (a, b, c, d) = (
        px(x0, y0),
        px(x0 + 1, y0),
        px(x0, y0 + 1),
        px(x0 + 1, y0 + 1),
    );
    let mut out = [0u8; 3];
    for k in 0..3 {
        let v = a[k] as f64 * (1.0 - fx) * (1.0 - fy)
            + b[k] as f64 * fx * (1.0 - fy)
            + c[k] as f64 * (1.0 - fx) * fy
            + d[k] as f64 * fx * fy;
        out[k] = v.round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Copy an ellipse (radii 26-44 px, about 1-3 % of a 512-px photo per side) to a place that does
/// not overlap it, transformed by `kind`.
fn forge(base: &RgbImage, kind: Kind, rng: &mut Rng) -> Forgery {
    let (w, h) = (base.width() as f64, base.height() as f64);
    let (rx, ry) = (rng.uniform(26.0, 44.0), rng.uniform(26.0, 44.0));
    let (angle, scale) = match kind {
        Kind::Rotated => {
            let a = rng.uniform(5.0, 45.0);
            (
                if rng.next_u64().is_multiple_of(2) {
                    a
                } else {
                    -a
                },
                1.0,
            )
        }
        Kind::Scaled => {
            let s = rng.uniform(0.8, 1.2);
            (0.0, s)
        }
        _ => (0.0, 1.0),
    };
    let reach = rx.max(ry) * scale.max(1.0) + 4.0;
    let (sx, sy, tx, ty) = loop {
        let sx = rng.uniform(reach, w - reach);
        let sy = rng.uniform(reach, h - reach);
        let tx = rng.uniform(reach, w - reach);
        let ty = rng.uniform(reach, h - reach);
        if ((sx - tx).powi(2) + (sy - ty).powi(2)).sqrt() > 2.0 * reach + 8.0 {
            break (sx, sy, tx, ty);
        }
    };
    let (ca, sa) = (angle.to_radians().cos(), angle.to_radians().sin());
    let mut out = base.clone();
    let (wi, hi) = (base.width() as usize, base.height() as usize);
    let mut mask = vec![false; wi * hi];
    let inside = |x: f64, y: f64| ((x - sx) / rx).powi(2) + ((y - sy) / ry).powi(2) <= 1.0;
    for y in 0..hi {
        for x in 0..wi {
            if inside(x as f64, y as f64) {
                mask[y * wi + x] = true;
            }
            // Inverse map of the copy: source = c_s + R(-a) (t - c_t) / s.
            let (u, v) = ((x as f64 - tx) / scale, (y as f64 - ty) / scale);
            let (qx, qy) = (sx + ca * u + sa * v, sy - sa * u + ca * v);
            if inside(qx, qy) {
                mask[y * wi + x] = true;
                out.put_pixel(x as u32, y as u32, image::Rgb(bilinear(base, qx, qy)));
            }
        }
    }
    let mut what = format!(
        "{kind:?}: radii ({rx:.0}, {ry:.0}), shift ({:.0}, {:.0})",
        tx - sx,
        ty - sy
    );
    match kind {
        Kind::Rotated => what.push_str(&format!(", rotated {angle:.1} deg")),
        Kind::Scaled => what.push_str(&format!(", scaled {scale:.2}")),
        Kind::Jpeg => {
            let q = 70 + (rng.next_u64() % 26) as u8;
            let bytes = compress(out.as_raw(), wi, hi, PixelFormat::Rgb, q, Subsampling::S420)
                .expect("encode");
            out = tamperscope::engine::imageio::decode_image_bytes(Path::new("q.jpg"), &bytes)
                .expect("decode")
                .rgb;
            what.push_str(&format!(", JPEG q{q}"));
        }
        Kind::Noise => {
            let sigma = rng.uniform(2.0, 6.0);
            for p in out.pixels_mut() {
                for c in &mut p.0 {
                    *c = (*c as f64 + sigma * gauss(rng)).round().clamp(0.0, 255.0) as u8;
                }
            }
            what.push_str(&format!(", noise sigma {sigma:.1}"));
        }
        _ => {}
    }
    Forgery {
        image: out,
        mask,
        what,
    }
}

/// The number in environment variable `k`, or `default` when it is unset or not a number.
fn env_or(k: &str, default: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The detector's defaults, or (measurement only) a partial JSON object in `COPYMOVE_PARAMS`.
fn params() -> CopyMoveParams {
    std::env::var("COPYMOVE_PARAMS")
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// Pixel F1@0.5 and AUC of one detection against its mask.
fn score(image: &RgbImage, mask: &[bool], params: &CopyMoveParams) -> (f64, f64, f32, f64) {
    let t = Instant::now();
    let cm = detect(image, params);
    let secs = t.elapsed().as_secs_f64();
    let f1 = Counts::at(&cm.map.data, mask, 0.5).f1();
    let a = auc(&cm.map.data, mask).unwrap_or(0.5);
    (f1, a, cm.score, secs)
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Mean F1 per kind over `n` photos, generator seed `seed`.
fn per_kind(
    dir: &std::path::Path,
    seed: u64,
    n: usize,
    offset: usize,
    verbose: bool,
) -> Vec<(Kind, f64, f64, f64)> {
    let params = params();
    let photos = photo_list_from(dir, n, offset);
    let mut out = Vec::new();
    for kind in KINDS {
        let mut rng = Rng(seed ^ ((kind as u64 + 1) * 0x1000));
        let (mut f1s, mut aucs, mut hits) = (Vec::new(), Vec::new(), 0usize);
        for p in &photos {
            let base = load(p, 512);
            let f = forge(&base, kind, &mut rng);
            let (f1, a, s, _) = score(&f.image, &f.mask, &params);
            if let Some(d) = std::env::var_os("COPYMOVE_DUMP") {
                let stem = format!("{kind:?}_{}", out.len() * 100 + f1s.len());
                f.save(&PathBuf::from(d), &stem);
            }
            if verbose {
                println!(
                    "  {:<40} {}: F1 {f1:.3} AUC {a:.3} score {s:.2}",
                    p.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default(),
                    f.what
                );
            }
            f1s.push(f1);
            aucs.push(a);
            hits += usize::from(s > 0.0);
        }
        out.push((
            kind,
            mean(&f1s),
            mean(&aucs),
            hits as f64 / photos.len() as f64,
        ));
    }
    out
}

/// False-positive area (fraction of the image marked) on `n` authentic photos at 512 px.
fn authentic_fp(
    dir: &std::path::Path,
    n: usize,
    offset: usize,
    verbose: bool,
) -> Vec<(String, f32, f32)> {
    let params = params();
    photo_list_from(dir, n, offset)
        .iter()
        .map(|p| {
            let img = load(p, 512);
            let cm = detect(&img, &params);
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if verbose {
                println!(
                    "  {name:<50} marked {:.2} % score {:.2} {:?}",
                    100.0 * cm.marked_fraction(),
                    cm.score,
                    cm.summary()
                );
            }
            (name, cm.marked_fraction(), cm.score)
        })
        .collect()
}

#[test]
fn uniform_image_gives_an_empty_map() {
    let img = RgbImage::from_pixel(640, 480, image::Rgb([120, 130, 140]));
    let cm = detect(&img, &CopyMoveParams::default());
    assert!(cm.map.data.iter().all(|&v| v == 0.0));
    assert!(cm.regions.is_empty());
    assert_eq!(cm.score, 0.0);
    assert!(cm.absent.is_some(), "a reason is given");
    let tiny = detect(&RgbImage::new(3, 2), &CopyMoveParams::default());
    assert_eq!((tiny.map.width, tiny.map.height), (3, 2));
    assert!(tiny.absent.is_some());
}

#[test]
fn generated_copy_moves_are_found() {
    let Some(dir) = photos_dir() else { return };
    let figures = per_kind(&dir, 1, 6, 0, false);
    for (kind, f1, a, det) in &figures {
        eprintln!("{kind:?}: mean F1@0.5 {f1:.3}, AUC {a:.3}, detected {det:.2}");
    }
    let f1 = |k: Kind| {
        figures
            .iter()
            .find(|f| f.0 == k)
            .map(|f| f.1)
            .unwrap_or(0.0)
    };
    // Measured on this set (seed 1, 6 photos) with the libjpeg-turbo decoder (issue 14): plain
    // 0.87, rotated 0.44, scaled 0.57, JPEG 0.66, noise 0.55 (with zune-jpeg's pixels rotated was
    // 0.67: one of the six rotated copies is now missed). The held-out figure is the measure
    // (`measure`, seed 2026, 20 photos: rotated 0.71). The thresholds leave a margin for a
    // different PatchMatch seed or thread split.
    assert!(f1(Kind::Plain) >= 0.75, "plain shift");
    assert!(f1(Kind::Rotated) >= 0.35, "rotated 5-45 degrees");
    assert!(f1(Kind::Scaled) >= 0.40, "scaled 0.8-1.2");
    assert!(f1(Kind::Jpeg) >= 0.60, "JPEG q70-95");
    assert!(f1(Kind::Noise) >= 0.40, "noise sigma 2-6");
}

#[test]
fn authentic_photos_stay_quiet() {
    let Some(dir) = photos_dir() else { return };
    let fp = authentic_fp(&dir, 8, 0, false);
    let mean_fp = fp.iter().map(|f| f.1 as f64).sum::<f64>() / fp.len() as f64;
    eprintln!("mean false-positive area {:.3} %", 100.0 * mean_fp);
    // 1.04 % on these 8 with the libjpeg-turbo decoder (two upscaled Urban100 facades), 0.59 % on
    // the 20 of `measure`.
    assert!(
        mean_fp <= 0.015,
        "mean false-positive area {mean_fp}: {fp:?}"
    );
}

/// The figures for the README: per transform F1/AUC on a held-out seed, false positives on 20
/// authentic photos, and the time at about 1 MP.
#[test]
#[ignore]
fn measure() {
    let Some(dir) = photos_dir() else { return };
    let (seed, n, offset) = (
        env_or("COPYMOVE_SEED", 2026),
        env_or("COPYMOVE_N", 20) as usize,
        env_or("COPYMOVE_OFFSET", 0) as usize,
    );
    let verbose = std::env::var_os("COPYMOVE_VERBOSE").is_some();
    println!(
        "generated copy-moves, seed {seed}, {n} photos per kind from offset {offset} (512 px):"
    );
    let t = Instant::now();
    for (kind, f1, a, det) in per_kind(&dir, seed, n, offset, verbose) {
        println!("  {kind:?}: mean pixel F1@0.5 {f1:.3}, mean AUC {a:.3}, detection rate {det:.2}");
    }
    let fp = authentic_fp(&dir, n, offset, verbose);
    println!(
        "  (forging, detecting and scoring took {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let areas: Vec<f64> = fp.iter().map(|f| f.1 as f64).collect();
    let flagged = fp.iter().filter(|f| f.2 > 0.0).count();
    println!(
        "authentic: {} photos, mean false-positive area {:.3} %, max {:.3} %, image-level false-positive rate {}/{}",
        fp.len(),
        100.0 * mean(&areas),
        100.0 * areas.iter().cloned().fold(0.0, f64::max),
        flagged,
        fp.len()
    );
    // Time at about 1 MP (1155 x 866), the detector's default working size.
    let photos = photo_list(&dir, 4);
    for p in &photos {
        let img = load(p, 1155);
        let t = Instant::now();
        let cm = detect(&img, &params());
        println!(
            "  {} x {}: {:.0} ms ({} regions)",
            img.width(),
            img.height(),
            t.elapsed().as_secs_f64() * 1e3,
            cm.regions.len()
        );
    }
}

/// Writes a labelled copy-move dataset for `tamperscope eval` (labels.csv, PNG images, masks of
/// source and copy, mask_convention.txt) to `$COPYMOVE_SET_OUT`: `COPYMOVE_N` photos (default
/// 20) from the `COPYMOVE_OFFSET`-th of each folder on (default 0, as `measure`), each once
/// authentic and once per transform kind, generator seed `COPYMOVE_SEED` (default 2026). The
/// copy-move weight of the prior was chosen on offset 3, seed 1 and checked on offset 0, seed 2026
/// (docs/copy-move.md). `cargo test --release --test copymove -- --ignored write_eval_set`.
#[test]
#[ignore]
fn write_eval_set() {
    let Some(dir) = photos_dir() else { return };
    let Some(out) = std::env::var_os("COPYMOVE_SET_OUT").map(PathBuf::from) else {
        eprintln!("skipping: set COPYMOVE_SET_OUT");
        return;
    };
    let (seed, n, offset) = (
        env_or("COPYMOVE_SEED", 2026),
        env_or("COPYMOVE_N", 20) as usize,
        env_or("COPYMOVE_OFFSET", 0) as usize,
    );
    std::fs::create_dir_all(out.join("images")).expect("output folder");
    let photos = photo_list_from(&dir, n, offset);
    let mut csv = String::from("image,label,kind,mask\n");
    for (i, p) in photos.iter().enumerate() {
        let name = format!("images/au_{i:03}.png");
        load(p, 512).save(out.join(&name)).expect("save");
        csv.push_str(&format!("{name},0,authentic,\n"));
    }
    for kind in KINDS {
        let mut rng = Rng(seed ^ ((kind as u64 + 1) * 0x1000));
        for (i, p) in photos.iter().enumerate() {
            let f = forge(&load(p, 512), kind, &mut rng);
            let stem = format!("images/{kind:?}_{i:03}").to_lowercase();
            f.save(&out, &stem);
            let kind_name = format!("{kind:?}").to_lowercase();
            csv.push_str(&format!("{stem}.png,1,{kind_name},{stem}_mask.png\n"));
        }
    }
    std::fs::write(out.join("labels.csv"), csv).expect("labels");
    std::fs::write(out.join("mask_convention.txt"), "source-and-copy\n").expect("convention");
    println!(
        "wrote {} photos x (1 + {} kinds) to {} (seed {seed}, offset {offset})",
        photos.len(),
        KINDS.len(),
        out.display()
    );
}

/// The prior's copy-move term (src/engine/pipeline.rs, `PriorRule::LogOdds`): a noisy-OR that
/// lifts marked pixels to at least the strength and leaves the rest as they were; the verdict's
/// noisy-OR of the three scores.
#[test]
fn copy_move_joins_the_prior_and_the_verdict_as_noisy_or() {
    use tamperscope::engine::pipeline::{PriorRule, verdict_probability};
    use tamperscope::engine::raster::Map;
    let fused = Map::new(4, 1, vec![0.05, 0.3, 0.05, 0.9]);
    let cm = Map::new(4, 1, vec![0.0, 0.0, 1.0, 1.0]);
    let dq = Map::new(4, 1, vec![0.0, 2.0, -1.0, 0.0]);
    let rule = PriorRule::default();
    let PriorRule::LogOdds {
        copy_move_strength: g,
        ..
    } = rule
    else {
        panic!("the default is the log-odds rule")
    };
    assert!(g > 0.5 && g <= 1.0, "default strength {g}");
    // No compression evidence: A where nothing is marked, at least g where it is.
    let p = rule.combine(&fused, None, Some(&cm));
    assert_eq!(&p.data[..2], &fused.data[..2]);
    assert!((p.data[2] - (1.0 - 0.95 * (1.0 - g))).abs() < 1e-6);
    assert!((p.data[3] - (1.0 - 0.1 * (1.0 - g))).abs() < 1e-6);
    // With compression evidence: unmarked pixels equal the rule without copy-move.
    let with = rule.combine(&fused, Some(&dq), Some(&cm));
    let without = rule.combine(&fused, Some(&dq), None);
    assert_eq!(&with.data[..2], &without.data[..2]);
    for i in 2..4 {
        let want = 1.0 - (1.0 - without.data[i]) * (1.0 - g);
        assert!((with.data[i] - want).abs() < 1e-6, "pixel {i}");
    }
    // The paper's configuration ignores both; a map of another size is ignored.
    assert_eq!(
        PriorRule::Paper.combine(&fused, Some(&dq), Some(&cm)).data,
        fused.data
    );
    let other = Map::new(2, 2, vec![1.0; 4]);
    assert_eq!(rule.combine(&fused, None, Some(&other)).data, fused.data);
    // Verdict: 1 - (1 - p)(1 - s)(1 - c).
    assert!((verdict_probability(0.2, 0.0, 0.0) - 0.2).abs() < 1e-6);
    assert!((verdict_probability(0.2, 0.5, 0.5) - (1.0 - 0.8 * 0.5 * 0.5)).abs() < 1e-6);
    // The default verdict weighs the classifier by half: it cannot call an image manipulated alone
    // (docs/verdict.md); the clone score joins it.
    use tamperscope::engine::pipeline::AnalysisParams;
    let params = AnalysisParams::default();
    assert!(params.verdict(0.99, 0.0, None) < 0.5);
    assert!((params.verdict(0.6, 0.0, None) - 0.3).abs() < 1e-6);
    let clone = tamperscope::engine::copymove::detect(
        &RgbImage::from_pixel(64, 64, image::Rgb([9, 9, 9])),
        &CopyMoveParams::default(),
    );
    let clone = tamperscope::engine::copymove::CopyMove {
        score: 0.5,
        ..clone
    };
    let v = params.verdict(0.6, 0.2, Some(&clone));
    assert!((v - (1.0 - 0.7 * 0.8 * 0.5)).abs() < 1e-6, "{v}");
    // Reports written before both terms re-run as they were: the classifier at full weight, no
    // clone score.
    let old: AnalysisParams = serde_json::from_str("{}").expect("empty params read");
    assert_eq!(old.verdict_classifier_weight, 1.0);
    assert!(!old.copy_move_in_verdict);
    assert!((old.verdict(0.6, 0.2, Some(&clone)) - (1.0 - 0.4 * 0.8)).abs() < 1e-6);
}
