//! One preprocessing (issue 3): the ELA tensors training reads are written by `tamperscope ela`
//! (training/tamperscope_training/data.py calls it), and they must equal the tensor the engine
//! feeds the classifier during analysis. Checked on the bundled samples: max |difference| <= 1
//! level is the requirement; the two paths share one function, so the difference is 0.

mod common;

use std::process::Command;

#[test]
fn training_ela_equals_engine_ela() {
    let out = tempfile::tempdir().expect("tmp");
    let samples = [
        "kleiber_spliced.jpg",
        "ladybird_copymove.jpg",
        "kleiber_authentic.jpg",
    ];
    let status = Command::new(env!("CARGO_BIN_EXE_tamperscope"))
        .args([
            "ela",
            "--quality",
            "90",
            "--size",
            "384",
            "--scale",
            "1",
            "--out-dir",
        ])
        .arg(out.path())
        .args(samples.iter().map(|s| common::sample(s)))
        .status()
        .expect("runs");
    assert!(status.success());
    for s in samples {
        let stem = s.trim_end_matches(".jpg");
        let (shape, training) =
            tamperscope::outputs::npy::read_f32(&out.path().join(format!("{stem}.npy")))
                .expect("npy");
        assert_eq!(shape, vec![3, 384, 384]);
        // The engine's path: the classifier input at scale 1, as the pipeline prepares it.
        let img = tamperscope::engine::imageio::load_image(&common::sample(s)).expect("sample");
        let (w, h) =
            tamperscope::engine::raster::working_size(img.info.width, img.info.height, 512);
        let ela = tamperscope::engine::ela::signed_ela(&img.rgb, 90, 384, (w, h)).expect("ela");
        let params = tamperscope::engine::ela::ElaParams {
            quality: 90,
            scale: 1.0,
            size: 384,
        };
        let engine: Vec<f32> = ela
            .to_tensor(&params)
            .expect("tensor")
            .iter()
            .copied()
            .collect();
        let max_diff = training
            .iter()
            .zip(&engine)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            max_diff <= 1.0,
            "{s}: max |training ELA - engine ELA| = {max_diff}"
        );
        assert_eq!(max_diff, 0.0, "{s}: the two paths are one function");
    }
}
