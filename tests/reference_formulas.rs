//! Each formula against independent references: expected values computed with numpy/scipy by
//! `training/tamperscope_training/fixtures.py` and stored in tests/fixtures/.

use serde_json::Value;
use tamperscope::engine::raster::{Map, Mask, resize_area};

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn usize_of(v: &Value, key: &str) -> usize {
    v[key].as_u64().unwrap_or_else(|| panic!("missing {key}")) as usize
}

fn mask_of(case: &Value) -> Mask {
    let data = case["mask"]
        .as_array()
        .expect("mask")
        .iter()
        .map(|x| x.as_u64() == Some(1))
        .collect();
    Mask {
        width: usize_of(case, "width"),
        height: usize_of(case, "height"),
        data,
    }
}

fn map_of(case: &Value, key: &str) -> Map {
    Map::new(
        usize_of(case, "width"),
        usize_of(case, "height"),
        floats(&case[key]),
    )
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, expected {w}"
        );
    }
}

#[test]
fn distance_transform_matches_scipy() {
    let f = fixture("edt.json");
    let cases = f["cases"].as_array().expect("cases");
    assert!(cases.len() >= 6);
    for (i, case) in cases.iter().enumerate() {
        let got = tamperscope::engine::similarity::distance_transform(&mask_of(case));
        assert_close(&got, &floats(&case["dist"]), 1e-5, &format!("edt case {i}"));
    }
}

#[test]
fn similarity_matches_numpy_in_both_variants() {
    use tamperscope::engine::similarity::{SimilarityVariant, similarity};
    let f = fixture("similarity.json");
    for (i, case) in f["cases"].as_array().expect("cases").iter().enumerate() {
        let (mask, map) = (mask_of(case), map_of(case, "map"));
        let paper = similarity(&mask, &map, SimilarityVariant::Paper);
        let norm = similarity(&mask, &map, SimilarityVariant::Normalized);
        assert_close(
            &[paper, norm],
            &[
                case["s_paper"].as_f64().expect("n") as f32,
                case["s_normalized"].as_f64().expect("n") as f32,
            ],
            1e-5,
            &format!("similarity case {i}"),
        );
        // The cached, bounding-box-cropped path of the segmenters must agree.
        if let Some(region) = tamperscope::engine::segment::Region::new("r".into(), mask) {
            assert!((region.similarity(&map, SimilarityVariant::Paper) - paper).abs() < 1e-5);
            assert!((region.similarity(&map, SimilarityVariant::Normalized) - norm).abs() < 1e-5);
        }
    }
}

#[test]
fn geometric_mean_matches_numpy() {
    let f = fixture("geomean.json");
    assert!(
        (f["eps"].as_f64().expect("eps") as f32 - tamperscope::engine::cam::GEOMEAN_EPS).abs()
            < 1e-12
    );
    for (i, case) in f["cases"].as_array().expect("cases").iter().enumerate() {
        let (w, h) = (usize_of(case, "width"), usize_of(case, "height"));
        let maps: Vec<Map> = case["maps"]
            .as_array()
            .expect("maps")
            .iter()
            .map(|m| Map::new(w, h, floats(m)))
            .collect();
        let fused = tamperscope::engine::cam::geometric_mean(&maps.iter().collect::<Vec<_>>())
            .expect("same sizes");
        assert_close(
            &fused.data,
            &floats(&case["fused"]),
            1e-4,
            &format!("geomean case {i}"),
        );
    }
}

#[test]
fn refinement_matches_numpy() {
    let f = fixture("refine.json");
    assert!(
        (f["eps"].as_f64().expect("eps") - tamperscope::engine::refine::REFINE_EPS).abs() < 1e-15
    );
    for (i, case) in f["cases"].as_array().expect("cases").iter().enumerate() {
        let (h, l) = tamperscope::engine::refine::refine(&map_of(case, "prior"), &mask_of(case));
        assert!(
            (l.r1 - case["r1"].as_f64().expect("r1")).abs() < 1e-6,
            "case {i} r1"
        );
        assert!(
            (l.r0 - case["r0"].as_f64().expect("r0")).abs() < 1e-6,
            "case {i} r0"
        );
        assert_close(
            &h.data,
            &floats(&case["refined"]),
            1e-4,
            &format!("refine case {i}"),
        );
    }
}

#[test]
fn auc_and_f1_match_scipy() {
    let f = fixture("metrics.json");
    for (i, case) in f["auc_cases"].as_array().expect("auc").iter().enumerate() {
        let labels: Vec<bool> = case["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|v| v.as_u64() == Some(1) || v.as_bool() == Some(true))
            .collect();
        let got = tamperscope::engine::metrics::auc(&floats(&case["scores"]), &labels)
            .expect("both classes");
        assert!(
            (got - case["auc"].as_f64().expect("auc")).abs() < 1e-9,
            "auc case {i}: {got}"
        );
    }
    for (i, case) in f["f1_cases"].as_array().expect("f1").iter().enumerate() {
        let labels: Vec<bool> = case["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|v| v.as_u64() == Some(1) || v.as_bool() == Some(true))
            .collect();
        let got = tamperscope::engine::metrics::f1_at(
            &floats(&case["scores"]),
            &labels,
            case["threshold"].as_f64().expect("t") as f32,
        );
        assert!(
            (got - case["f1"].as_f64().expect("f1")).abs() < 1e-9,
            "f1 case {i}: {got}"
        );
    }
}

#[test]
fn grad_cam_matches_torch_interpolate() {
    let f = fixture("cam.json");
    for (i, case) in f["cases"].as_array().expect("cases").iter().enumerate() {
        let (c, fh, fw) = (
            usize_of(case, "channels"),
            usize_of(case, "fh"),
            usize_of(case, "fw"),
        );
        let (w, h) = (usize_of(case, "width"), usize_of(case, "height"));
        let cam = tamperscope::engine::cam::grad_cam(
            &floats(&case["features"]),
            c,
            fh,
            fw,
            &floats(&case["alpha"]),
            w,
            h,
        );
        assert_close(
            &cam.data,
            &floats(&case["cam"]),
            1e-4,
            &format!("cam case {i}"),
        );
    }
}

#[test]
fn area_resize_matches_numpy() {
    let f = fixture("area_resize.json");
    for (i, case) in f["cases"].as_array().expect("cases").iter().enumerate() {
        let got = resize_area(
            &floats(&case["src"]),
            usize_of(case, "sw"),
            usize_of(case, "sh"),
            usize_of(case, "dw"),
            usize_of(case, "dh"),
        );
        assert_close(&got, &floats(&case["dst"]), 1e-4, &format!("area case {i}"));
    }
}
