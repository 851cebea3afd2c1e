//! Segment Anything and PSPNet through the engine with the stand-in models (known masks), and
//! `analyze` / `eval` listing them beside the other segmenters.

mod common;

use std::process::Command;

use tamperscope::engine::pipeline::{AnalysisParams, downscale_rgb};
use tamperscope::engine::raster::working_size;
use tamperscope::engine::segment::MaskRule;
use tamperscope::engine::segment::sam::SamSegmenter;
use tamperscope::engine::segment::semantic::SemanticSegmenter;
use tamperscope::models::runtime::ProviderChoice;

fn working(name: &str) -> image::RgbImage {
    let img =
        tamperscope::engine::imageio::load_image(&common::sample(name)).expect("sample loads");
    let (w, h) = working_size(img.info.width, img.info.height, 512);
    downscale_rgb(&img.rgb, w, h)
}

#[test]
fn sam_stand_in_yields_the_known_masks() {
    let reg = common::test_registry();
    let enc = reg.resolve("standin-sam-encoder").expect("encoder");
    let dec = reg.resolve("standin-sam").expect("decoder");
    let mut sam = SamSegmenter::open(&enc, &dec, None, ProviderChoice::Cpu, 1).expect("opens");
    assert_eq!(
        sam.params.points_per_side, 8,
        "parameters come from the manifest"
    );
    // 1024x576 -> working 512x288 -> SAM frame 1024x576 (scale 2).
    let img = working("kleiber_spliced.jpg");
    assert_eq!((img.width(), img.height()), (512, 288));
    let seg = sam.segment(&img, &MaskRule::default()).expect("segments");
    let s = &sam.last_stats;
    // 64 prompts x 3 multimask outputs; channel 3 fails the IoU filter, channel 2 the stability.
    assert_eq!(
        (s.decoded, s.dropped_iou, s.dropped_stability),
        (192, 64, 64)
    );
    // Grid points in the 1024 frame: x = 64 + 128 i, y = 36 + 72 j; inside the rectangle
    // [256, 640) x [320, 704): 3 x 4 = 12 points, all giving the same mask -> 11 suppressed.
    assert_eq!(s.suppressed, 11);
    // The 52 discs (radius 48 working pixels, neighbours' box IoU <= 0.45) all stay.
    assert_eq!(seg.regions.len(), 53);
    assert_eq!(seg.dropped_small, 0);
    let rect = &seg.regions[0];
    // [256, 640) x [320, 704) / 2, clipped by the image's 288 rows.
    assert_eq!(rect.bbox, [128, 160, 320, 288]);
    assert_eq!(rect.area, 192 * 128);
    // Masks may overlap: the first disc overlaps its right neighbour.
    let (a, b) = (&seg.regions[1].mask.data, &seg.regions[2].mask.data);
    assert!(a.iter().zip(b).any(|(x, y)| *x && *y));
    // A larger minimum area (5899 pixels) drops the corner discs, clipped by two image edges.
    let seg = sam
        .segment(
            &img,
            &MaskRule {
                min_area_fraction: 0.04,
            },
        )
        .expect("segments");
    assert!(
        seg.dropped_small > 0 && seg.regions.len() + seg.dropped_small == 53,
        "{} kept, {} dropped",
        seg.regions.len(),
        seg.dropped_small
    );
}

#[test]
fn pspnet_stand_in_masks_follow_its_label_map() {
    let reg = common::test_registry();
    let m = reg.resolve("standin-pspnet").expect("pspnet");
    assert_eq!(m.entry.labels.len(), 150);
    let mut psp = SemanticSegmenter::open(&m, ProviderChoice::Cpu, 1).expect("opens");
    let img = working("kleiber_spliced.jpg");
    let seg = psp.segment(&img, &MaskRule::default()).expect("segments");
    let labels: Vec<&str> = seg.regions.iter().map(|r| r.label.as_str()).collect();
    // Sky band on top (rows 0..10 of 60), person rectangle, wall (class 0, not ignored) elsewhere.
    assert_eq!(labels.len(), 3, "{labels:?}");
    for l in ["sky", "wall", "person"] {
        assert!(labels.contains(&l), "{labels:?}");
    }
    let person = seg
        .regions
        .iter()
        .find(|r| r.label == "person")
        .expect("person");
    // Logit rows 15..45, cols 20..40 of 60, upsampled bilinearly to 512x288: about a third of
    // the width and half the height, centred.
    let [x0, y0, x1, y1] = person.bbox;
    assert!(
        (165..=180).contains(&x0) && (335..=350).contains(&x1),
        "{:?}",
        person.bbox
    );
    assert!(
        (66..=76).contains(&y0) && (212..=222).contains(&y1),
        "{:?}",
        person.bbox
    );
}

#[test]
fn engine_runs_sam_and_pspnet_beside_the_others() {
    let reg = common::test_registry();
    let params = AnalysisParams {
        classifiers: vec!["standin-b2".into()],
        segmenters: vec![
            "standin-sam".into(),
            "standin-pspnet".into(),
            "felzenszwalb".into(),
        ],
        provider: ProviderChoice::Cpu,
        ..AnalysisParams::default()
    };
    let mut engine = tamperscope::engine::pipeline::Engine::open(&reg, params).expect("engine");
    let names: Vec<String> = engine
        .segmenter_models
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(
        names,
        ["standin-sam-encoder", "standin-sam", "standin-pspnet"]
    );
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let a = engine
        .analyze(&common::sample("kleiber_spliced.jpg"), &cancel, &mut |_| {})
        .expect("analyses");
    let segs: Vec<&str> = a
        .segmenters
        .iter()
        .map(|s| s.segmentation.segmenter.as_str())
        .collect();
    assert_eq!(segs, ["standin-sam", "standin-pspnet", "felzenszwalb"]);
    for s in &a.segmenters {
        assert!(
            s.chosen.is_some() && s.refined.is_some(),
            "{}",
            s.segmentation.segmenter
        );
    }
    // A SAM encoder alone is not a segmenter.
    let bad = AnalysisParams {
        classifiers: vec!["standin-b2".into()],
        segmenters: vec!["standin-sam-encoder".into()],
        provider: ProviderChoice::Cpu,
        ..AnalysisParams::default()
    };
    assert!(tamperscope::engine::pipeline::Engine::open(&reg, bad).is_err());
}

fn tamperscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tamperscope"))
}

fn test_engine_args() -> Vec<String> {
    let repo = common::repo();
    [
        "--manifest",
        &repo.join("models/test/manifest.toml").display().to_string(),
        "--models",
        &repo.join("models").display().to_string(),
        "--classifier",
        "standin-b2",
        "--classifier",
        "standin-b4",
        "--segmenter",
        "standin-sam",
        "--segmenter",
        "standin-pspnet",
        "--segmenter",
        "felzenszwalb",
        "--provider",
        "cpu",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn analyze_and_eval_list_sam_and_pspnet() {
    let out = tempfile::tempdir().expect("tmp");
    let o = tamperscope()
        .arg("analyze")
        .args(test_engine_args())
        .arg("--out")
        .arg(out.path())
        .arg(common::sample("ladybird_copymove.jpg"))
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = out.path().join("ladybird_copymove");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("analysis.json")).expect("json"))
            .expect("parses");
    let names: Vec<&str> = json["segmenters"]
        .as_array()
        .expect("segmenters")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["standin-sam", "standin-pspnet", "felzenszwalb"]);
    for n in &names {
        for f in [format!("masks_{n}.png"), format!("refined_{n}.png")] {
            assert!(dir.join(&f).is_file(), "{f}");
        }
    }

    let data = tempfile::tempdir().expect("tmp");
    for f in [
        "kleiber_spliced.jpg",
        "kleiber_spliced_mask.png",
        "kleiber_authentic.jpg",
    ] {
        std::fs::copy(common::sample(f), data.path().join(f)).expect("copy");
    }
    std::fs::write(
        data.path().join("labels.csv"),
        "image,label,kind,mask\nkleiber_spliced.jpg,1,splicing,kleiber_spliced_mask.png\nkleiber_authentic.jpg,0,authentic,\n",
    )
    .expect("labels");
    let eval_out = data.path().join("eval.json");
    let o = tamperscope()
        .arg("eval")
        .args(test_engine_args())
        .arg("--dataset")
        .arg(data.path())
        .arg("--out")
        .arg(&eval_out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&eval_out).expect("json")).expect("parses");
    for key in [
        "refined:standin-sam:paper",
        "refined:standin-pspnet:paper",
        "refined:felzenszwalb:paper",
    ] {
        assert!(
            json["pixel_level"][key]["auc"].is_number(),
            "{key}: {}",
            json["pixel_level"]
        );
    }
}
