//! ONNX contract tests with generated tiny models: the classifier interface (logit, Fc, alpha)
//! and the semantic-segmenter interface.

mod common;

use std::sync::atomic::AtomicBool;

use tamperscope::engine::pipeline::{AnalysisParams, Engine};

fn engine(classifiers: &[&str], segmenters: &[&str]) -> Engine {
    let params = AnalysisParams {
        classifiers: classifiers.iter().map(|s| s.to_string()).collect(),
        segmenters: segmenters.iter().map(|s| s.to_string()).collect(),
        ..AnalysisParams::default()
    };
    Engine::open(&common::test_registry(), params).expect("engine opens")
}

#[test]
fn classifier_outputs_follow_the_contract() {
    let mut e = engine(&["standin-b2", "standin-b4"], &["felzenszwalb"]);
    let img = e
        .load(&common::sample("kleiber_spliced.jpg"))
        .expect("sample loads");
    let prepared = e.prepare(img).expect("prepare");
    let outputs = e.classifier.run(&prepared.ela).expect("run");
    assert_eq!(outputs.len(), 2);
    let (b2, b4) = (&outputs[0], &outputs[1]);
    assert_eq!((b2.variant, b4.variant), (2, 4));
    assert_eq!((b2.channels, b2.feature_h, b2.feature_w), (8, 96, 96));
    assert_eq!((b4.feature_h, b4.feature_w), (24, 24));
    for o in &outputs {
        // The head is GAP + dense, so z = sum_k alpha_k * sum_hw F_k + b: the CAM integrates to z - b.
        let cam_sum: f32 = (0..o.channels)
            .map(|k| {
                o.alpha[k]
                    * o.features[k * o.feature_h * o.feature_w..(k + 1) * o.feature_h * o.feature_w]
                        .iter()
                        .sum::<f32>()
            })
            .sum();
        assert!((o.probability - 1.0 / (1.0 + (-o.logit).exp())).abs() < 1e-6);
        assert!(cam_sum.is_finite() && cam_sum >= 0.0);
    }
    // One shared file: one session, one run.
    assert!(e.classifier.provider().starts_with("CPU") || e.classifier.provider() == "CUDA");
}

#[test]
fn semantic_segmenter_stand_in_gives_its_known_regions() {
    let mut e = engine(&["standin-b2"], &["standin-segmenter"]);
    let cancel = AtomicBool::new(false);
    let a = e
        .analyze(&common::sample("kleiber_spliced.jpg"), &cancel, &mut |_| {})
        .expect("analysis");
    let seg = a
        .segmenters
        .iter()
        .find(|s| s.segmentation.segmenter == "standin-segmenter")
        .expect("segmenter ran");
    let labels: Vec<&str> = seg
        .segmentation
        .regions
        .iter()
        .map(|r| r.label.as_str())
        .collect();
    // Known pattern: person (15) in a centred rectangle, chair (9) in the top-left corner, background elsewhere.
    assert!(
        labels.contains(&"person") && labels.contains(&"chair") && labels.contains(&"background"),
        "{labels:?}"
    );
    let (w, h) = (a.working.width() as usize, a.working.height() as usize);
    let person = seg
        .segmentation
        .regions
        .iter()
        .find(|r| r.label == "person")
        .expect("person");
    // Rows 64..192, cols 80..176 of 257, scaled to the working size (bilinear logits: +-2 px).
    let expect = [
        80.0 * w as f32 / 257.0,
        64.0 * h as f32 / 257.0,
        176.0 * w as f32 / 257.0,
        192.0 * h as f32 / 257.0,
    ];
    for (got, want) in person.bbox.iter().zip(expect) {
        assert!(
            (*got as f32 - want).abs() <= 3.0,
            "bbox {:?} vs {expect:?}",
            person.bbox
        );
    }
    assert_eq!(seg.scores.len(), seg.segmentation.regions.len());
    assert!(seg.refined.is_some());
}

#[test]
fn analysis_maps_are_normalised_and_refinement_uses_chosen_mask() {
    let mut e = engine(&["standin-b2", "standin-b4"], &["felzenszwalb"]);
    let cancel = AtomicBool::new(false);
    let mut stages = Vec::new();
    let a = e
        .analyze(&common::sample("kleiber_spliced.jpg"), &cancel, &mut |p| {
            stages.push(p)
        })
        .expect("analysis");
    assert!(!stages.is_empty());
    for v in &a.variants {
        let max = v.cam.data.iter().copied().fold(0f32, f32::max);
        assert!((max - 1.0).abs() < 1e-6, "A_i is min-max normalised");
    }
    assert!(a.fused.data.iter().all(|v| (0.0..=1.0).contains(v)));
    let seg = &a.segmenters[0];
    let chosen = seg.chosen.expect("a mask is chosen");
    let best = seg.scores.iter().copied().fold(f32::MIN, f32::max);
    assert_eq!(seg.scores[chosen], best);
    // Choosing another evidence mask changes H.
    if seg.segmentation.regions.len() > 1 {
        let mut other = seg.clone();
        let alt = (chosen + 1) % seg.segmentation.regions.len();
        other.rescore(&a.fused, seg.similarity, Some(alt));
        assert_eq!(other.chosen, Some(alt));
        assert_ne!(
            other.refined.as_ref().map(|m| &m.data),
            seg.refined.as_ref().map(|m| &m.data)
        );
    }
}

#[test]
fn cancelled_analysis_stops() {
    let mut e = engine(&["standin-b2"], &["felzenszwalb"]);
    let cancel = AtomicBool::new(true);
    let err = e
        .analyze(&common::sample("kleiber_spliced.jpg"), &cancel, &mut |_| {})
        .err()
        .expect("cancelled");
    assert!(matches!(err, tamperscope::EngineError::Cancelled));
}
