//! Bad input gets a clear error, no panic, and no partial output.

mod common;

use tamperscope::EngineError;
use tamperscope::engine::imageio::load_image;
use tamperscope::engine::pipeline::{AnalysisParams, Engine};

#[test]
fn zero_byte_file_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = common::write(dir.path(), "empty.jpg", b"");
    let err = load_image(&p).expect_err("must fail");
    assert!(matches!(err, EngineError::EmptyFile { .. }), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn truncated_jpeg_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let bytes = std::fs::read(common::sample("kleiber_spliced.jpg")).expect("sample");
    let p = common::write(dir.path(), "cut.jpg", &bytes[..bytes.len() / 3]);
    let err = load_image(&p).expect_err("must fail");
    assert!(matches!(err, EngineError::CorruptImage { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn text_named_jpg_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = common::write(
        dir.path(),
        "notes.jpg",
        b"this is a text file, not a photo\n",
    );
    let err = load_image(&p).expect_err("must fail");
    assert!(matches!(err, EngineError::NotAnImage { .. }), "{err}");
}

#[test]
fn huge_png_header_is_refused_before_allocating() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = common::write(
        dir.path(),
        "huge.png",
        &common::png_header_only(100_000, 100_000),
    );
    let err = load_image(&p).expect_err("must fail");
    match err {
        EngineError::ImageTooLarge { width, height, .. } => {
            assert_eq!((width, height), (100_000, 100_000))
        }
        other => panic!("expected ImageTooLarge, got {other}"),
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let err = load_image(std::path::Path::new("/nonexistent/photo.jpg")).expect_err("must fail");
    assert!(matches!(err, EngineError::Io { .. }), "{err}");
}

fn open_with(classifier: &str) -> Result<Engine, EngineError> {
    let params = AnalysisParams {
        classifiers: vec![classifier.to_string()],
        segmenters: vec!["felzenszwalb".into()],
        ..AnalysisParams::default()
    };
    Engine::open(&common::test_registry(), params)
}

#[test]
fn missing_model_says_what_and_how() {
    let err = open_with("missing").err().expect("must fail");
    assert!(matches!(err, EngineError::ModelMissing { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("does_not_exist.onnx") && msg.contains("install"),
        "{msg}"
    );
}

#[test]
fn model_with_wrong_sha256_is_refused() {
    let err = open_with("bad-hash").err().expect("must fail");
    assert!(
        matches!(err, EngineError::ModelHashMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("8d4b3867"), "{err}");
}

#[test]
fn model_with_wrong_input_shape_is_refused() {
    let err = open_with("wrong-shape").err().expect("must fail");
    assert!(matches!(err, EngineError::ModelContract { .. }), "{err}");
    assert!(err.to_string().contains("224"), "{err}");
}

#[test]
fn unknown_model_name() {
    let err = open_with("no-such-model").err().expect("must fail");
    assert!(matches!(err, EngineError::UnknownModel(_)), "{err}");
}

#[test]
fn coefficient_reader_refuses_a_gigapixel_frame_before_allocating() {
    // The same bound as pixel decoding, so no file gets further in one than in the other.
    assert_eq!(
        tamperscope::engine::jpeg::MAX_FRAME_PIXELS,
        tamperscope::engine::imageio::MAX_MEGAPIXELS as u64 * 1_000_000
    );
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz_regressions/hang-coefficients-gigapixel-frame-afl.jpg"),
    )
    .expect("regression file");
    assert_eq!(
        tamperscope::engine::jpeg::frame_size(&bytes),
        Some((33045, 33153))
    );
    let err = tamperscope::engine::jpeg::read_coefficients(&bytes).expect_err("refused");
    assert!(
        matches!(err, tamperscope::engine::jpeg::JpegError::Limit(_)),
        "{err}"
    );
}

#[test]
fn coefficient_reader_refuses_a_frame_the_marker_scan_misses() {
    // A fuzzed file whose frame header (16160 x 41712, 674 MP) lies past bytes that stop
    // `frame_size`; the codec's own parser finds it, and so does the check before allocation.
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz_regressions/hang-coefficients-hidden-674mp-frame-afl.jpg"),
    )
    .expect("regression file");
    assert_eq!(tamperscope::engine::jpeg::frame_size(&bytes), None);
    let err = tamperscope::engine::jpeg::read_coefficients(&bytes).expect_err("refused");
    assert!(
        matches!(
            err,
            tamperscope::engine::jpeg::JpegError::Limit(_)
                | tamperscope::engine::jpeg::JpegError::Unsupported(_)
        ),
        "{err}"
    );
}

#[test]
fn fractional_chroma_sampling_is_refused_like_libjpeg() {
    // Fuzzed CMYK frames (C 2x3 with K 2x2; C 2x2 with K 4x3) on which the codec crate indexed out
    // of bounds; djpeg refuses both ("Fractional sampling not implemented yet"). Both readers now
    // refuse them from the header, before the codec decodes anything.
    for name in [
        "codec-panic-cmyk-sampling-2x3-afl.jpg",
        "codec-panic-cmyk-sampling-4x3-afl.jpg",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz_regressions")
            .join(name);
        let bytes = std::fs::read(&path).expect("regression file");
        for err in [
            tamperscope::engine::jpeg::read_coefficients(&bytes).expect_err("refused"),
            tamperscope::engine::jpeg::decode_rgb(&bytes).expect_err("refused"),
        ] {
            assert!(
                matches!(err, tamperscope::engine::jpeg::JpegError::Unsupported(_))
                    && err.to_string().contains("fractional chroma sampling"),
                "{name}: {err}"
            );
        }
        let err = load_image(&path).expect_err("refused");
        assert!(
            err.to_string().contains("fractional chroma sampling"),
            "{name}: {err}"
        );
    }
}
