//! The Rust CAM from the shipped classifier's ONNX outputs equals PyTorch autograd Grad-CAM on
//! the same input (fixture written by training/tamperscope_training/export.py).

use std::path::Path;

use serde_json::Value;

#[test]
fn rust_cam_equals_pytorch_autograd_grad_cam() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = repo.join("tests/fixtures/gradcam_parity");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("fixture"))
            .expect("json");
    let model = repo.join(expected["model"].as_str().expect("model"));
    assert_eq!(
        tamperscope::digest::sha256_file(&model).expect("model"),
        expected["model_sha256"].as_str().expect("sha"),
        "the fixture belongs to the shipped model"
    );
    let (w, h) = (
        expected["width"].as_u64().expect("w") as usize,
        expected["height"].as_u64().expect("h") as usize,
    );
    let mut session = tamperscope::models::runtime::open_session(
        &model,
        tamperscope::models::runtime::ProviderChoice::Cpu,
        0,
    )
    .expect("session");
    for case in expected["cases"].as_array().expect("cases") {
        let (shape, data) =
            tamperscope::outputs::npy::read_f32(&dir.join(case["input"].as_str().expect("input")))
                .expect("npy");
        let input = ort::value::Tensor::from_array((shape.clone(), data)).expect("tensor");
        let outputs = session
            .session
            .run(ort::inputs!["ela" => input])
            .expect("run");
        for (variant, want) in case["variants"].as_object().expect("variants") {
            let get = |name: String| {
                let (s, d) = outputs[name.as_str()]
                    .try_extract_tensor::<f32>()
                    .expect("float");
                (s.to_vec(), d.to_vec())
            };
            let (_, logit) = get(format!("logit_b{variant}"));
            let (fshape, features) = get(format!("features_b{variant}"));
            let (_, alpha) = get(format!("alpha_b{variant}"));
            let p = 1.0 / (1.0 + (-logit[0]).exp());
            assert!(
                (p as f64 - want["prob"].as_f64().expect("prob")).abs() < 1e-4,
                "b{variant}: p {p}"
            );
            let (c, fh, fw) = (fshape[1] as usize, fshape[2] as usize, fshape[3] as usize);
            let cam = tamperscope::engine::cam::grad_cam(&features, c, fh, fw, &alpha, w, h);
            let flat: Vec<f64> = want["cam"]
                .as_array()
                .expect("cam")
                .iter()
                .flat_map(|row| match row.as_array() {
                    Some(r) => r.iter().map(|v| v.as_f64().expect("n")).collect::<Vec<_>>(),
                    None => vec![row.as_f64().expect("n")],
                })
                .collect();
            assert_eq!(flat.len(), w * h);
            let max_diff = cam
                .data
                .iter()
                .zip(&flat)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0.0, f64::max);
            assert!(
                max_diff < 1e-3,
                "b{variant}: max |Rust CAM - autograd Grad-CAM| = {max_diff}"
            );
        }
    }
}
