//! The command line end to end on the bundled samples.

mod common;

use std::process::Command;

fn tamperscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tamperscope"))
}

#[test]
fn analyze_writes_json_and_maps() {
    let out = tempfile::tempdir().expect("tmp");
    let status = tamperscope()
        .args(["analyze", "--segmenter", "felzenszwalb", "--out"])
        .arg(out.path())
        .arg(common::sample("kleiber_spliced.jpg"))
        .arg(common::sample("ladybird_copymove.jpg"))
        .output()
        .expect("runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let dir = out.path().join("kleiber_spliced");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("analysis.json")).expect("json"))
            .expect("parses");
    let sha =
        tamperscope::digest::sha256_file(&common::sample("kleiber_spliced.jpg")).expect("hash");
    assert_eq!(json["input"]["sha256"], sha);
    assert_eq!(json["input"]["width"], 1024);
    assert_eq!(json["input"]["exif_orientation"], 1);
    assert_eq!(json["schema"], "tamperscope.analysis/1");
    let variants = json["classifier"]["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), 3);
    for v in variants {
        let p = v["probability"].as_f64().expect("p");
        assert!((0.0..=1.0).contains(&p));
        assert_eq!(v["sha256"].as_str().map(str::len), Some(64));
    }
    let seg = &json["segmenters"][0];
    assert_eq!(seg["name"], "felzenszwalb");
    assert_eq!(
        seg["masks"].as_u64(),
        seg["regions"].as_array().map(|r| r.len() as u64)
    );
    assert!(seg["chosen"].is_u64());
    assert!(json["timings_ms"].as_array().expect("timings").len() >= 4);
    assert!(
        json["execution_provider"]
            .as_str()
            .expect("ep")
            .contains("CPU")
            || json["execution_provider"] == "CUDA"
    );
    assert_eq!(json["params"]["working_max_side"], 512);
    for f in [
        "input.png",
        "ela.png",
        "ela_raw.png",
        "cam2.png",
        "cam3.png",
        "cam4.png",
        "fused.png",
        "fused_raw.png",
        "masks_felzenszwalb.png",
        "chosen_felzenszwalb.png",
        "refined_felzenszwalb.png",
        "refined_felzenszwalb_raw.png",
        "copymove.png",
        "copymove_raw.png",
    ] {
        let img = image::open(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(img.width(), 512, "{f}");
    }
    assert!(out.path().join("ladybird_copymove/analysis.json").is_file());
    // Copy-move evidence: its stage, its JSON section and its map.
    assert!(
        json["timings_ms"]
            .as_array()
            .expect("timings")
            .iter()
            .any(|t| t["stage"] == "copy-move")
    );
    let cm = &json["copy_move"];
    let score = cm["score"].as_f64().expect("copy-move score");
    assert!((0.0..=1.0).contains(&score));
    assert!(!cm["summary"].as_array().expect("summary").is_empty());
    assert_eq!(
        cm["offsets"].as_array().map(Vec::len),
        cm["regions"].as_array().map(Vec::len)
    );
}

#[test]
fn stand_in_classifier_is_labelled_as_such() {
    let out = tempfile::tempdir().expect("tmp");
    let o = tamperscope()
        .args([
            "analyze",
            "--classifier",
            "standin-b2",
            "--classifier",
            "standin-b4",
            "--segmenter",
            "felzenszwalb",
            "--out",
        ])
        .arg(out.path())
        .arg(common::sample("kleiber_authentic.jpg"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("untrained stand-in"), "{stdout}");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join("kleiber_authentic/analysis.json")).expect("json"),
    )
    .expect("parses");
    assert_eq!(json["classifier"]["status"], "untrained stand-in");
}

#[test]
fn bad_inputs_fail_cleanly_and_the_rest_is_still_done() {
    let inputs = tempfile::tempdir().expect("tmp");
    let out = tempfile::tempdir().expect("tmp");
    let empty = common::write(inputs.path(), "empty.jpg", b"");
    let text = common::write(inputs.path(), "text.jpg", b"hello");
    let huge = common::write(
        inputs.path(),
        "huge.png",
        &common::png_header_only(100_000, 100_000),
    );
    let o = tamperscope()
        .args(["analyze", "--segmenter", "felzenszwalb", "--out"])
        .arg(out.path())
        .args([&empty, &text, &huge])
        .arg(common::sample("kleiber_spliced.jpg"))
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("empty.jpg")
            && stderr.contains("text.jpg")
            && stderr.contains("100000x100000"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Each error line names its file once.
    for line in stderr.lines().filter(|l| l.starts_with("error:")) {
        let name = ["empty.jpg", "text.jpg", "huge.png"]
            .into_iter()
            .find(|n| line.contains(n))
            .unwrap_or_else(|| panic!("an error line names no input: {line}"));
        assert_eq!(line.matches(name).count(), 1, "{line}");
    }
    let mut written: Vec<String> = std::fs::read_dir(out.path())
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    // index.jsonl and summary.csv are the batch files (docs/report-schema.md).
    assert_eq!(
        written,
        vec!["index.jsonl", "kleiber_spliced", "summary.csv"],
        "only the good image has output, no partial folders"
    );
}

#[test]
fn models_verify_reports_hashes() {
    let o = tamperscope()
        .args(["models", "verify"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    assert!(
        stdout.contains("standin-b2") && stdout.contains("sha256 ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("licence:") && stdout.contains("role:"),
        "{stdout}"
    );
}

/// The bundled samples as a labelled dataset: a splice and a copy-move with masks, an authentic.
fn small_labelled_set() -> tempfile::TempDir {
    let data = tempfile::tempdir().expect("tmp");
    for f in [
        "kleiber_spliced.jpg",
        "kleiber_spliced_mask.png",
        "ladybird_copymove.jpg",
        "ladybird_copymove_mask.png",
        "kleiber_authentic.jpg",
    ] {
        std::fs::copy(common::sample(f), data.path().join(f)).expect("copy");
    }
    std::fs::write(
        data.path().join("labels.csv"),
        "image,label,kind,mask\nkleiber_spliced.jpg,1,splicing,kleiber_spliced_mask.png\nladybird_copymove.jpg,1,copy-move,ladybird_copymove_mask.png\nkleiber_authentic.jpg,0,authentic,\n",
    )
    .expect("labels");
    data
}

#[test]
fn eval_computes_section_7_on_a_small_labelled_set() {
    let data = small_labelled_set();
    let out = data.path().join("eval.json");
    let o = tamperscope()
        .args(["eval", "--segmenter", "felzenszwalb", "--dataset"])
        .arg(data.path())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("json")).expect("parses");
    assert_eq!(json["images_analysed"], 3);
    assert!(json["image_level"]["auc"].is_number());
    for key in [
        "fused",
        "cam2",
        "cam3",
        "cam4",
        "refined:felzenszwalb:paper",
        "refined:felzenszwalb:normalized",
        "baseline:ela",
        "baseline:centre",
    ] {
        let m = &json["pixel_level"][key];
        assert!(
            m["auc"].is_number()
                && m["f1"].is_number()
                && m["auc_pooled"].is_number()
                && m["auc_se"].as_f64().is_some_and(|se| se >= 0.0),
            "{key}: {m}"
        );
        assert_eq!(m["images"], 2, "{key}");
    }
    assert!(json["pixel_level_by_kind"]["splicing"]["fused"]["auc"].is_number());
    // The copy-move search runs by default (its map joins the prior, its score the verdict);
    // no convention file, none recorded.
    assert_eq!(json["pixel_level"]["copymove"]["images"], 2);
    assert!(json["mask_convention"].is_null());
    for r in json["per_image"].as_array().expect("records") {
        for key in ["compression", "copy-move", "verdict"] {
            assert!(r["scores"][key].is_number(), "{key}: {r}");
        }
    }
    // Per-image records, named as labels.csv names them; their pixel AUCs average to the table's.
    let records = json["per_image"].as_array().expect("per-image records");
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["image"], "kleiber_spliced.jpg");
    assert!(records[2]["pixel_auc"].is_null(), "authentic: no pixel AUC");
    let fused: Vec<f64> = records[..2]
        .iter()
        .map(|r| r["pixel_auc"]["fused"].as_f64().expect("fused AUC"))
        .collect();
    let mean = json["pixel_level"]["fused"]["auc"].as_f64().expect("auc");
    assert!((fused.iter().sum::<f64>() / 2.0 - mean).abs() < 1e-12);
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The shipped, trained classifier is the default: no stand-in label.
    assert_eq!(json["classifier_status"], "trained");
    assert!(
        stdout.contains("pixel level") && !stdout.contains("untrained stand-in"),
        "{stdout}"
    );
}

/// `eval` with Felzenszwalb and `extra` options on `data`, writing `out`; its parsed JSON.
fn eval_json(data: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let o = tamperscope()
        .arg("eval")
        .args(extra)
        .args(["--segmenter", "felzenszwalb", "--dataset"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(out).expect("json")).expect("parses")
}

#[test]
fn eval_scores_the_copy_move_map_and_records_the_mask_convention() {
    let data = small_labelled_set();
    std::fs::write(data.path().join("mask_convention.txt"), "copy-only\n").expect("convention");
    let out = data.path().join("eval.json");
    let json = eval_json(data.path(), &out, &[]);
    assert_eq!(json["mask_convention"], "copy-only");
    let m = &json["pixel_level"]["copymove"];
    assert_eq!(m["images"], 2, "{m}");
    // The bundled clone is found: its map overlaps the marked copy.
    let cm = json["pixel_level_by_kind"]["copy-move"]["copymove"]["auc"]
        .as_f64()
        .expect("copy-move AUC");
    assert!(cm > 0.6, "copy-move map AUC on the bundled clone {cm}");
    assert!(json["image_level"]["variants"]["copy-move"]["auc"].is_number());
    // An explicit flag overrides the file.
    let json = eval_json(
        data.path(),
        &out,
        &["--limit", "1", "--mask-convention", "source-and-copy"],
    );
    assert_eq!(json["mask_convention"], "source-and-copy");
    // --no-copy-move skips the search: no map, no score; the prior and verdict go without it.
    let json = eval_json(data.path(), &out, &["--limit", "1", "--no-copy-move"]);
    assert!(json["pixel_level"]["copymove"].is_null());
    assert!(json["image_level"]["variants"]["copy-move"].is_null());
    assert!(json["params"]["copy_move"].is_null());
}

#[test]
fn compare_evals_pairs_images_and_refuses_old_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let record = |image: &str, manipulated: bool, p: f64, fused: Option<f64>| {
        let mut r = serde_json::json!({"image": image, "manipulated": manipulated,
            "kind": if manipulated { "splicing" } else { "authentic" }, "probability": p});
        if let Some(a) = fused {
            r["pixel_auc"] = serde_json::json!({ "fused": a });
        }
        r
    };
    let eval = |per_image: Vec<serde_json::Value>| {
        serde_json::json!({
            "schema": "tamperscope.eval/1", "dataset": "d", "images_listed": 3, "images_analysed": 3,
            "failures": [], "image_level": {"auc": 1.0, "accuracy": 1.0, "f1": 1.0, "images": 3,
            "variants": {}, "by_kind": {}}, "pixel_level": {}, "pixel_level_by_kind": {},
            "classifier_status": "trained", "models": [], "params": {}, "tool": "test", "seconds": 1.0,
            "per_image": per_image})
    };
    let a = eval(vec![
        record("m1.jpg", true, 0.9, Some(0.6)),
        record("m2.jpg", true, 0.7, Some(0.7)),
        record("a1.jpg", false, 0.2, None),
    ]);
    let b = eval(vec![
        record("m1.jpg", true, 0.8, Some(0.8)),
        record("m2.jpg", true, 0.6, Some(0.8)),
        record("a1.jpg", false, 0.3, None),
    ]);
    let (pa, pb, out) = (
        dir.path().join("a.json"),
        dir.path().join("b.json"),
        dir.path().join("cmp.json"),
    );
    std::fs::write(&pa, a.to_string()).expect("a");
    std::fs::write(&pb, b.to_string()).expect("b");
    let compare_evals = || {
        tamperscope()
            .arg("compare-evals")
            .args([&pa, &pb])
            .arg("--out")
            .arg(&out)
            .output()
            .expect("runs")
    };
    let o = compare_evals();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cmp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("written")).expect("parses");
    let fused = &cmp["pixel_level"][0];
    assert_eq!(fused["map"], "fused");
    assert!((fused["diff"].as_f64().expect("diff") - 0.15).abs() < 1e-12);
    assert_eq!(fused["b_higher"], 2);
    assert!(String::from_utf8_lossy(&o.stdout).contains("fused"));

    // A file written before per-image records: a clear error, no output file.
    let mut old = a.clone();
    old.as_object_mut().expect("object").remove("per_image");
    std::fs::write(&pb, old.to_string()).expect("old");
    std::fs::remove_file(&out).expect("rm");
    let o = compare_evals();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("evaluation B has no per-image records"),
        "{err}"
    );
    assert!(!out.exists());
}
