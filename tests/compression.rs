//! Compression-history evidence (METHOD.md section 9) on images the test makes from the bundled
//! photo: a region without the background's earlier compression is found by A-DJPG, a region
//! pasted from another JPEG on its own grid by NA-DJPG; single- and never-compressed files show
//! no spurious evidence; damaged coefficient data gives a reason, not a crash.

mod common;

use std::path::Path;

use image::RgbImage;
use libjpeg_turbo_rs::{PixelFormat, Subsampling, compress};
use tamperscope::engine::compression::{CompressionParams, analyze};
use tamperscope::engine::imageio::decode_image_bytes;
use tamperscope::engine::jpeg::{JpegError, read_coefficients};
use tamperscope::engine::metrics::auc;
use tamperscope::engine::pipeline::compression_maps;

const W: u32 = 512;
const H: u32 = 288;
/// The manipulated rectangle: x0, y0, width, height (not on the 8x8 grid).
const REGION: (u32, u32, u32, u32) = (197, 133, 168, 128);

/// A photo with no JPEG history: the bundled sample (itself a JPEG) scaled by 4/7, a factor that
/// puts its old 8x8 lattice at no integer period of the new grid, then cropped.
fn photo() -> RgbImage {
    let img = tamperscope::engine::imageio::load_image(&common::sample("kleiber_authentic.jpg"))
        .expect("bundled sample decodes")
        .rgb;
    assert_eq!((img.width(), img.height()), (1024, 576), "sample size");
    let small = image::imageops::resize(&img, 585, 329, image::imageops::FilterType::Lanczos3);
    image::imageops::crop_imm(&small, 36, 20, W, H).to_image()
}

fn jpeg(img: &RgbImage, q: u8) -> Vec<u8> {
    compress(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
        PixelFormat::Rgb,
        q,
        Subsampling::S420,
    )
    .expect("encode")
}

fn decode(bytes: &[u8]) -> RgbImage {
    tamperscope::engine::imageio::decode_image_bytes(std::path::Path::new("generated.jpg"), bytes)
        .expect("decode")
        .rgb
}

/// `dst` with the rectangle REGION replaced by `src` read at REGION shifted by `(dx, dy)`.
fn paste(dst: &RgbImage, src: &RgbImage, dx: i64, dy: i64) -> RgbImage {
    let mut out = dst.clone();
    let (x0, y0, w, h) = REGION;
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let (sx, sy) = ((x as i64 + dx) as u32, (y as i64 + dy) as u32);
            out.put_pixel(x, y, *src.get_pixel(sx, sy));
        }
    }
    out
}

fn truth() -> Vec<bool> {
    let (x0, y0, w, h) = REGION;
    (0..H)
        .flat_map(|y| (0..W).map(move |x| (x, y)))
        .map(|(x, y)| x >= x0 && x < x0 + w && y >= y0 && y < y0 + h)
        .collect()
}

fn maps(bytes: &[u8]) -> tamperscope::engine::pipeline::CompressionMaps {
    let img = decode_image_bytes(Path::new("generated.jpg"), bytes).expect("loads");
    compression_maps(&img, &CompressionParams::default(), &img.rgb)
}

#[test]
fn adjpg_finds_a_region_without_the_earlier_compression() {
    let orig = photo();
    // Background: saved at q70, decoded; region: the never-compressed photo shifted by (3, 2) px
    // (no q70 lattice on the grid); all saved at q90.
    let first = decode(&jpeg(&orig, 70));
    let forged = paste(&first, &orig, 3, 2);
    let m = maps(&jpeg(&forged, 90));
    let ev = m.evidence.as_ref().expect("a JPEG has evidence");
    assert!(
        ev.adjpg.used() >= 5,
        "frequencies with a trace: {}",
        ev.adjpg.used()
    );
    let q = ev.primary_quality.expect("primary quality estimated");
    assert!((60..=80).contains(&q), "primary quality {q}");
    let a = auc(&m.adjpg.as_ref().expect("map").data, &truth()).expect("two classes");
    assert!(a > 0.9, "A-DJPG pixel AUC {a:.3}");
    let c = auc(&m.combined.as_ref().expect("combined").data, &truth()).expect("two classes");
    assert!(c > 0.9, "combined pixel AUC {c:.3}");
}

#[test]
fn adjpg_finds_a_resampled_region() {
    let orig = photo();
    let first = decode(&jpeg(&orig, 75));
    // The region comes from the q75 image scaled by 1.1: resampling destroys the lattice.
    let big = image::imageops::resize(
        &first,
        W * 11 / 10,
        H * 11 / 10,
        image::imageops::FilterType::Triangle,
    );
    let forged = paste(&first, &big, 20, 20);
    let m = maps(&jpeg(&forged, 92));
    let a = auc(&m.adjpg.as_ref().expect("map").data, &truth()).expect("two classes");
    assert!(a > 0.9, "A-DJPG pixel AUC {a:.3}");
}

#[test]
fn nadjpg_finds_a_region_pasted_from_another_jpeg_on_its_own_grid() {
    let orig = photo();
    // The donor was a q50 JPEG; its block at donor (x, y) lands at (x - 5, y - 3): its grid sits at
    // shift (3, 5) in the forgery. The background was never compressed before the q95 save.
    // The region covers 44 % of the image here: NA-DJPG needs many blocks (docs/compression.md).
    let donor = decode(&jpeg(&orig, 50));
    let mut forged = orig.clone();
    let region = |x: u32, y: u32| x < 256 && y < 256;
    for y in 0..H - 3 {
        for x in 0..W - 5 {
            if region(x, y) {
                forged.put_pixel(x, y, *donor.get_pixel(x + 5, y + 3));
            }
        }
    }
    let truth: Vec<bool> = (0..H)
        .flat_map(|y| (0..W).map(move |x| region(x, y)))
        .collect();
    let m = maps(&jpeg(&forged, 95));
    let ev = m.evidence.as_ref().expect("evidence");
    eprintln!("NA: {:?}", ev.na_absent);
    let na = ev.na.as_ref().expect("a shifted grid is found");
    assert_eq!(na.shift, (3, 5), "grid shift");
    let a = auc(&m.na.as_ref().expect("map").data, &truth).expect("two classes");
    eprintln!(
        "NA-DJPG pixel AUC {a:.3}, trace fraction {:.2}",
        na.trace_fraction
    );
    assert!(a > 0.9, "NA-DJPG pixel AUC {a:.3}");
}

#[test]
fn single_and_never_compressed_files_show_no_spurious_evidence() {
    let orig = photo();
    for q in [60u8, 75, 85, 90, 95] {
        let m = maps(&jpeg(&orig, q));
        let ev = m.evidence.as_ref().expect("evidence");
        let flagged = ev.adjpg.map.flagged_fraction();
        eprintln!(
            "single q{q}: {} frequencies used, {:.3} of blocks above 0.5, NA: {:?} {:?}",
            ev.adjpg.used(),
            flagged,
            ev.na.as_ref().map(|n| n.shift),
            ev.na_absent
        );
        assert!(flagged < 0.05, "q{q}: {flagged:.3} of blocks flagged");
        assert!(ev.na.is_none(), "q{q}: spurious shifted grid");
        assert_eq!(m.image_score(), 0.0, "q{q}: no trace, no image score");
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(orig)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let img = decode_image_bytes(Path::new("generated.png"), &png).expect("loads");
    let m = compression_maps(&img, &CompressionParams::default(), &img.rgb);
    assert!(m.evidence.is_none() && m.adjpg.is_none());
    let why = m.absent.expect("a reason");
    assert!(why.contains("not a JPEG"), "{why}");
}

/// Offset of the first DQT segment's table bytes.
fn dqt_table_offset(bytes: &[u8]) -> usize {
    let i = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xDB])
        .expect("a DQT marker");
    i + 5
}

#[test]
fn damaged_coefficient_data_gives_a_reason_not_a_crash() {
    let good = jpeg(&photo(), 85);
    // A quantisation step of 0.
    let mut zero = good.clone();
    let off = dqt_table_offset(&zero);
    zero[off + 3] = 0;
    match read_coefficients(&zero) {
        Err(JpegError::BadTable(m)) => assert!(m.contains("step 0"), "{m}"),
        Err(other) => eprintln!("zero step refused earlier: {other}"),
        Ok(_) => panic!("a zero quantisation step is accepted"),
    }
    // Absurd steps (255 everywhere) are legal: analysed, no trace, no panic.
    let mut absurd = good.clone();
    let off = dqt_table_offset(&absurd);
    for b in &mut absurd[off..off + 64] {
        *b = 255;
    }
    if let Ok(c) = read_coefficients(&absurd) {
        let ev = analyze(&c, &CompressionParams::default());
        assert!(ev.adjpg.map.p.iter().all(|p| p.is_finite()));
    }
    // Truncated scan: a reason from the coefficient layer.
    let cut = &good[..good.len() / 2];
    assert!(read_coefficients(cut).is_err(), "truncated scan accepted");
    // Garbage in the entropy-coded data: either an error or finite maps.
    let mut noisy = good.clone();
    let start = noisy.len() / 3;
    for (i, b) in noisy[start..start + 400].iter_mut().enumerate() {
        *b = (i * 37 % 251) as u8;
    }
    match read_coefficients(&noisy) {
        Ok(c) => {
            let ev = analyze(&c, &CompressionParams::default());
            assert!(ev.adjpg.map.p.iter().all(|p| p.is_finite()));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

#[test]
fn progressive_restart_and_grey_files_are_read() {
    let orig = photo();
    let base = jpeg(&orig, 80);
    let coefs = read_coefficients(&base).expect("baseline");
    let (bx, by) = (coefs.luma().blocks_x, coefs.luma().blocks_y);
    assert_eq!((bx, by), (64, 36));
    // The same coefficients transcoded to a progressive file with a restart marker every 2 MCU
    // rows read back identically.
    let raw = libjpeg_turbo_rs::read_coefficients(&base).expect("library reads its own file");
    let prog = libjpeg_turbo_rs::write_coefficients_progressive(&raw, Some(2)).expect("transcode");
    assert!(
        prog.windows(2).any(|w| w == [0xFF, 0xC2]),
        "SOF2 (progressive)"
    );
    assert!(
        prog.windows(2).any(|w| w == [0xFF, 0xDD]),
        "DRI (restart interval)"
    );
    let p = read_coefficients(&prog).expect("progressive reads");
    assert!(p.restart_interval > 0);
    assert_eq!(p.luma().blocks, coefs.luma().blocks);
    assert_eq!(p.luma().table, coefs.luma().table);
    // Arithmetic-coded (SOF9) too.
    let arith = libjpeg_turbo_rs::write_coefficients_arithmetic(&raw).expect("arithmetic");
    let a = read_coefficients(&arith).expect("arithmetic reads");
    assert_eq!(a.luma().blocks, coefs.luma().blocks);
    let grey = image::DynamicImage::ImageRgb8(orig).to_luma8();
    let g = compress(
        grey.as_raw(),
        W as usize,
        H as usize,
        PixelFormat::Grayscale,
        80,
        Subsampling::S444,
    )
    .expect("grey");
    let c = read_coefficients(&g).expect("grey reads");
    assert_eq!(c.planes.len(), 1);
    assert!(c.first_is_luma);
    let ev = analyze(&c, &CompressionParams::default());
    assert_eq!(ev.quality.map(|q| q.0), Some(80));
}
