//! The fuzzed path, shared by the AFL target (`src/bin/decode.rs`) and the parent crate's
//! regression test (`tests/fuzz_regressions.rs` includes this file with `#[path]`).
//!
//! One input goes through what analysing an untrusted file does before the models run:
//! decode (every format, EXIF orientation applied), the signed ELA of the classifier input
//! (quality 90, 384 x 384, working size at most 512 px, as the pipeline prepares it), for a JPEG
//! the quantised coefficients and the compression-history analysis, and the EXIF reader.
//! Errors are expected and ignored; a panic, an abort or a hang is a bug.

use std::path::Path;

/// Images above this many pixels are decoded but not run through ELA / compression analysis,
/// to keep one execution short (the decode stage is where hostile sizes matter).
pub const MAX_ANALYSED_PIXELS: u64 = 1_000_000;

/// True when a panic happened inside the JPEG codec crate: the engine contains those
/// (`engine::jpeg`, reported as a decode error), so they are the codec's bugs, not crashes of
/// tamperscope. Every other panic, in any thread, is ours.
pub fn panic_is_contained(info: &std::panic::PanicHookInfo<'_>) -> bool {
    info.location()
        .is_some_and(|l| l.file().contains(tamperscope::engine::jpeg::CODEC_SOURCE))
}

/// Run every stage on `data`. Returns a short description of how far the input got
/// (for the triage runner); never panics unless the engine does.
pub fn run(data: &[u8]) -> String {
    let mut trail = String::new();
    match tamperscope::engine::imageio::decode_image_bytes(Path::new("fuzz-input"), data) {
        Err(e) => trail.push_str(&format!("decode: Err({e}); ")),
        Ok(img) => {
            let (w, h) = (img.info.width, img.info.height);
            trail.push_str(&format!("decode: {} {w}x{h}; ", img.info.format));
            if (w as u64) * (h as u64) <= MAX_ANALYSED_PIXELS {
                let (ww, wh) = tamperscope::engine::raster::working_size(w, h, 512);
                match tamperscope::engine::ela::signed_ela(&img.rgb, 90, 384, (ww, wh)) {
                    Ok(_) => trail.push_str("ela: ok; "),
                    Err(e) => trail.push_str(&format!("ela: Err({e}); ")),
                }
                if let Some(bytes) = &img.jpeg_bytes {
                    match tamperscope::engine::jpeg::read_coefficients(bytes) {
                        Ok(coefs) => {
                            let params =
                                tamperscope::engine::compression::CompressionParams::default();
                            let ev = tamperscope::engine::compression::analyze(&coefs, &params);
                            // The maps the pipeline draws, at working size.
                            let _ = ev.combined_log_odds_pixels();
                            trail.push_str("coefficients + compression: ok; ");
                        }
                        Err(e) => trail.push_str(&format!("coefficients: Err({e}); ")),
                    }
                }
            } else {
                trail.push_str("over 1 MP: ELA and compression skipped; ");
            }
        }
    }
    // The coefficient reader is also given the raw bytes when the decoder refused them: the
    // pipeline reads coefficients only of decoded JPEGs, but the reader is a public entry point.
    // ... and so is the analysis of what it read, whatever the pixel decoder said.
    if tamperscope::engine::jpeg::is_jpeg(data)
        && !trail.contains("coefficients")
        && let Ok(coefs) = tamperscope::engine::jpeg::read_coefficients(data)
    {
        let params = tamperscope::engine::compression::CompressionParams::default();
        let _ = tamperscope::engine::compression::analyze(&coefs, &params);
        trail.push_str("raw coefficients + compression: ok; ");
    }
    match exif::Reader::new().read_from_container(&mut std::io::Cursor::new(data)) {
        Ok(exif) => {
            // Format every field, as the report's EXIF summary does.
            for f in exif.fields() {
                let _ = f.display_value().with_unit(&exif).to_string();
            }
            trail.push_str(&format!("exif: {} fields", exif.fields().count()));
        }
        Err(e) => trail.push_str(&format!("exif: Err({e})")),
    }
    trail
}
