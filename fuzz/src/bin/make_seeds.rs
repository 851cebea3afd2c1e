//! Writes the seed corpus of the fuzzer to `seeds/` (or the folder given as the first argument):
//! one small file (16-64 px, a few KB) per input kind the engine reads. Deterministic, so the
//! corpus can be regenerated instead of stored: `cargo run --release --bin make_seeds`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use libjpeg_turbo_rs as ljt;
use ljt::{PixelFormat, Subsampling};

/// A test card: gradients, a hard-edged square and a little deterministic noise, so that every
/// coding path (DC, AC, chroma) has something to code.
fn card(w: usize, h: usize) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(w * h * 3);
    let mut s: u32 = 0x1234_5678;
    for y in 0..h {
        for x in 0..w {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let n = (s & 15) as usize;
            let inside = (w / 4..3 * w / 4).contains(&x) && (h / 4..3 * h / 4).contains(&y);
            let r = (x * 255 / w.max(1) + n) as u8;
            let g = if inside {
                230
            } else {
                (y * 255 / h.max(1)) as u8
            };
            let b = ((x + y) * 4 % 256) as u8;
            rgb.extend_from_slice(&[r, g, b]);
        }
    }
    rgb
}

/// An APP1 Exif segment with one IFD0 entry, Orientation = `orientation` (little-endian TIFF).
fn exif_app1(orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 offset
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // count
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut seg = vec![0xFF, 0xE1];
    let len = (2 + 6 + tiff.len()) as u16;
    seg.extend_from_slice(&len.to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend_from_slice(&tiff);
    seg
}

fn with_exif_after_soi(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]));
    let mut out = vec![0xFF, 0xD8];
    out.extend_from_slice(&exif_app1(orientation));
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn image_bytes(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format)
        .expect("image crate writes the seed");
    out.into_inner()
}

fn main() {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(Into::into)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"));
    std::fs::create_dir_all(&dir).expect("create seed folder");
    let mut seeds: Vec<(&str, Vec<u8>)> = Vec::new();
    let (w, h) = (32usize, 24usize);
    let rgb = card(w, h);
    let q = 85;

    let baseline420 =
        ljt::compress(&rgb, w, h, PixelFormat::Rgb, q, Subsampling::S420).expect("420");
    seeds.push(("baseline_420.jpg", baseline420.clone()));
    seeds.push((
        "baseline_444.jpg",
        ljt::compress(&rgb, w, h, PixelFormat::Rgb, q, Subsampling::S444).expect("444"),
    ));
    seeds.push(("baseline_422_odd_size.jpg", {
        let rgb = card(21, 17);
        ljt::compress(&rgb, 21, 17, PixelFormat::Rgb, 70, Subsampling::S422).expect("422")
    }));
    let grey: Vec<u8> = rgb.chunks_exact(3).map(|p| p[1]).collect();
    seeds.push((
        "greyscale.jpg",
        ljt::compress(&grey, w, h, PixelFormat::Grayscale, q, Subsampling::S444).expect("grey"),
    ));
    seeds.push((
        "progressive.jpg",
        ljt::compress_progressive(&rgb, w, h, PixelFormat::Rgb, q, Subsampling::S420)
            .expect("progressive"),
    ));
    seeds.push((
        "progressive_restart.jpg",
        ljt::Encoder::new(&rgb, w, h, PixelFormat::Rgb)
            .quality(q)
            .progressive(true)
            .restart_blocks(1)
            .encode()
            .expect("progressive + restart"),
    ));
    seeds.push((
        "baseline_restart.jpg",
        ljt::Encoder::new(&rgb, w, h, PixelFormat::Rgb)
            .quality(q)
            .restart_blocks(2)
            .encode()
            .expect("baseline + restart"),
    ));
    seeds.push((
        "arithmetic.jpg",
        ljt::compress_arithmetic(&rgb, w, h, PixelFormat::Rgb, q, Subsampling::S420)
            .expect("arithmetic"),
    ));
    seeds.push((
        "arithmetic_progressive.jpg",
        ljt::compress_arithmetic_progressive(&rgb, w, h, PixelFormat::Rgb, q, Subsampling::S420)
            .expect("arithmetic progressive"),
    ));
    let rgb12: Vec<i16> = rgb.iter().map(|&v| (v as i16) << 4 | 0x7).collect();
    seeds.push((
        "12bit.jpg",
        ljt::compress_12bit(&rgb12, w, h, 3, q, Subsampling::S420).expect("12-bit"),
    ));
    let cmyk: Vec<u8> = rgb
        .chunks_exact(3)
        .flat_map(|p| {
            let k = 255 - p[0].max(p[1]).max(p[2]);
            [255 - p[0], 255 - p[1], 255 - p[2], k]
        })
        .collect();
    seeds.push((
        "cmyk.jpg",
        ljt::Encoder::new(&cmyk, w, h, PixelFormat::Cmyk)
            .quality(q)
            .encode()
            .expect("CMYK"),
    ));
    seeds.push((
        "exif_orientation6.jpg",
        with_exif_after_soi(&baseline420, 6),
    ));
    let mut two = baseline420.clone();
    two.extend_from_slice(
        &ljt::compress(
            &card(16, 16),
            16,
            16,
            PixelFormat::Rgb,
            60,
            Subsampling::S420,
        )
        .expect("second image"),
    );
    seeds.push(("multi_picture.jpg", two));
    // A JPEG that was compressed twice at different qualities (the compression-history path).
    let once = ljt::decompress_to(
        &ljt::compress(
            &card(64, 64),
            64,
            64,
            PixelFormat::Rgb,
            60,
            Subsampling::S420,
        )
        .expect("q60"),
        PixelFormat::Rgb,
    )
    .expect("decode q60");
    seeds.push((
        "double_q60_q90_64px.jpg",
        ljt::compress(&once.data, 64, 64, PixelFormat::Rgb, 90, Subsampling::S420).expect("q90"),
    ));

    let img = image::RgbImage::from_raw(w as u32, h as u32, rgb.clone()).expect("card");
    let dynimg = image::DynamicImage::ImageRgb8(img);
    seeds.push((
        "card.png",
        image_bytes(dynimg.clone(), image::ImageFormat::Png),
    ));
    seeds.push((
        "card.gif",
        image_bytes(
            image::DynamicImage::ImageRgba8(dynimg.to_rgba8()),
            image::ImageFormat::Gif,
        ),
    ));
    seeds.push((
        "card.bmp",
        image_bytes(dynimg.clone(), image::ImageFormat::Bmp),
    ));
    seeds.push((
        "card.tiff",
        image_bytes(dynimg.clone(), image::ImageFormat::Tiff),
    ));
    seeds.push((
        "card.webp",
        image_bytes(dynimg.clone(), image::ImageFormat::WebP),
    ));

    for (name, bytes) in &seeds {
        // Each seed must be a file the engine reads (except where refusing is the behaviour).
        let trail = tamperscope_fuzz::run(bytes);
        println!("{name:28} {:6} B  {trail}", bytes.len());
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}
