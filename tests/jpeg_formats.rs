//! The one JPEG layer (issue 14): every kind of JPEG an analyst meets, each generated here as a
//! small file, decoded by the product's loader and, end to end, analysed by the command line.
//! The decoder is also checked against libjpeg-turbo's own `djpeg`, and the ELA round trip
//! against `cjpeg -quality 90 | djpeg` (Debian's libjpeg-turbo-progs, installed by setup.sh).

mod common;

use std::path::Path;
use std::process::Command;

use libjpeg_turbo_rs::{Encoder, PixelFormat, Subsampling};
use tamperscope::engine::imageio::{LoadedImage, decode_image_bytes};

/// A smooth, textured RGB test picture, `w x h`, with distinct corners.
fn picture(w: usize, h: usize) -> Vec<u8> {
    let mut px = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let r = (x * 255 / w.max(1)) as u8;
            let g = (y * 255 / h.max(1)) as u8;
            let b = (((x / 6 + y / 6) % 2) * 120 + 60) as u8;
            px.extend_from_slice(&[r, g, b]);
        }
    }
    px
}

/// The decoder said what it did: one of its notes contains `what`.
fn assert_note(img: &LoadedImage, what: &str) {
    assert!(
        img.info.decode_notes.iter().any(|n| n.contains(what)),
        "no note with {what:?}: {:?}",
        img.info.decode_notes
    );
}

fn decode(bytes: &[u8]) -> LoadedImage {
    decode_image_bytes(Path::new("generated.jpg"), bytes).expect("decodes")
}

/// Mean absolute difference between two equally sized RGB buffers, in levels.
fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .sum::<f64>()
        / a.len() as f64
}

/// A minimal big-endian EXIF TIFF block holding only the orientation tag (0x0112).
fn exif_orientation(tag: u16) -> Vec<u8> {
    let mut t = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&tag.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    t
}

#[test]
fn arithmetic_coded_jpeg_is_decoded() {
    let (w, h) = (96, 64);
    let px = picture(w, h);
    let enc = |arithmetic| {
        Encoder::new(&px, w, h, PixelFormat::Rgb)
            .quality(92)
            .arithmetic(arithmetic)
            .encode()
            .expect("encode")
    };
    let jpeg = enc(true);
    // The DAC marker (0xFFCC) is what the previous decoder refused.
    assert!(jpeg.windows(2).any(|m| m == [0xFF, 0xCC]));
    let img = decode(&jpeg);
    assert_eq!((img.info.width, img.info.height), (w as u32, h as u32));
    // The same coefficients Huffman-coded give the same pixels.
    assert_eq!(img.rgb.as_raw(), decode(&enc(false)).rgb.as_raw());
    // 4:2:0 smears the blue checks' sharp chroma edges: 7.5 levels on average here.
    let err = mean_abs_diff(img.rgb.as_raw(), &px);
    assert!(err < 10.0, "mean |error| {err}");
    assert!(
        img.info.decode_notes.is_empty(),
        "{:?}",
        img.info.decode_notes
    );
}

#[test]
fn progressive_with_restart_markers_decodes_and_keeps_its_coefficients() {
    let (w, h) = (80, 72);
    let px = picture(w, h);
    let enc = |progressive| {
        Encoder::new(&px, w, h, PixelFormat::Rgb)
            .quality(85)
            .subsampling(Subsampling::S420)
            .progressive(progressive)
            .restart_rows(1)
            .encode()
            .expect("encode")
    };
    let (prog, base) = (enc(true), enc(false));
    assert!(prog.windows(2).any(|m| m == [0xFF, 0xC2]), "SOF2");
    assert!(prog.windows(2).any(|m| m == [0xFF, 0xD0]), "RST0");
    let (a, b) = (decode(&prog), decode(&base));
    // Same quantised coefficients, same IDCT: the same pixels.
    assert_eq!(a.rgb.as_raw(), b.rgb.as_raw());
    let ca = tamperscope::engine::jpeg::read_coefficients(&prog).expect("coefficients");
    let cb = tamperscope::engine::jpeg::read_coefficients(&base).expect("coefficients");
    assert!(ca.restart_interval > 0);
    assert_eq!(ca.luma().blocks, cb.luma().blocks);
}

#[test]
fn twelve_bit_jpeg_is_scaled_to_eight_bits_and_said_so() {
    let (w, h) = (64, 48);
    let px = picture(w, h);
    let px12: Vec<i16> = px.iter().map(|&v| (v as i16) << 4).collect();
    let jpeg = libjpeg_turbo_rs::compress_12bit(&px12, w, h, 3, 95, Subsampling::S444)
        .expect("12-bit encode");
    let img = decode(&jpeg);
    assert_eq!((img.info.width, img.info.height), (w as u32, h as u32));
    assert!(mean_abs_diff(img.rgb.as_raw(), &px) < 3.0);
    assert_note(&img, "12-bit");
}

#[test]
fn cmyk_and_ycck_are_converted_as_adobe_inks() {
    let (w, h) = (64, 48);
    let px = picture(w, h);
    // Adobe's inverted inks: with K stored as 255, the stored C, M, Y are R, G, B.
    let cmyk: Vec<u8> = px
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let mut jpeg = Encoder::new(&cmyk, w, h, PixelFormat::Cmyk)
        .quality(95)
        .subsampling(Subsampling::S444)
        .encode()
        .expect("encode");
    let img = decode(&jpeg);
    assert!(mean_abs_diff(img.rgb.as_raw(), &px) < 4.0);
    assert_note(&img, "CMYK");
    // The same planes declared YCCK (Adobe APP14 transform 2): the first three are Y, Cb, Cr
    // of the inverted inks, so R = 255 - (Y + 1.402 (Cr - 128)) at K = 255 (JFIF, T.871).
    let app14 = jpeg
        .windows(9)
        .position(|m| m == b"\xFF\xEE\x00\x0EAdobe")
        .expect("Adobe marker");
    assert_eq!(jpeg[app14 + 15], 0, "CMYK transform");
    jpeg[app14 + 15] = 2;
    let img = decode(&jpeg);
    assert_note(&img, "YCCK");
    let want: Vec<u8> = px
        .chunks_exact(3)
        .flat_map(|p| {
            let (y, cb, cr) = (p[0] as f64, p[1] as f64 - 128.0, p[2] as f64 - 128.0);
            let rgb = [
                y + 1.402 * cr,
                y - 0.344136 * cb - 0.714136 * cr,
                y + 1.772 * cb,
            ];
            rgb.map(|v| (255.0 - v.clamp(0.0, 255.0)).round() as u8)
        })
        .collect();
    assert!(mean_abs_diff(img.rgb.as_raw(), &want) < 4.0);
}

#[test]
fn multi_picture_file_analyses_its_first_image() {
    let (w, h) = (64, 48);
    let first = picture(w, h);
    let second: Vec<u8> = first.iter().map(|&v| 255 - v).collect();
    let enc = |px: &[u8], w, h| {
        Encoder::new(px, w, h, PixelFormat::Rgb)
            .quality(90)
            .encode()
            .expect("encode")
    };
    let mut file = enc(&first, w, h);
    file.extend_from_slice(&enc(&second[..32 * 24 * 3], 32, 24));
    let img = decode(&file);
    assert_eq!((img.info.width, img.info.height), (w as u32, h as u32));
    assert_eq!(img.rgb.as_raw(), decode(&enc(&first, w, h)).rgb.as_raw());
    assert_note(&img, "2 JPEG images");
    // A single image with EXIF is one image.
    let single = decode(&enc(&first, w, h));
    assert!(single.info.decode_notes.is_empty());
}

#[test]
fn every_exif_orientation_is_applied() {
    // Stored 6 x 4 with red at the top left, green top right, blue bottom left, white bottom right.
    let (w, h) = (48usize, 32usize);
    let mut px = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let c = match (x < w / 2, y < h / 2) {
                (true, true) => [255, 0, 0],
                (false, true) => [0, 255, 0],
                (true, false) => [0, 0, 255],
                (false, false) => [255, 255, 255],
            };
            px[(y * w + x) * 3..][..3].copy_from_slice(&c);
        }
    }
    // Where the stored top-left corner (red) ends up after the tag's transform (EXIF 2.32,
    // table of Orientation): 1 top-left, 2 top-right, 3 bottom-right, 4 bottom-left,
    // 5 top-left (transposed), 6 top-right, 7 bottom-right, 8 bottom-left.
    let red_at = [
        (0, 0),
        (1, 0),
        (1, 1),
        (0, 1),
        (0, 0),
        (1, 0),
        (1, 1),
        (0, 1),
    ];
    for tag in 1..=8u16 {
        let exif = exif_orientation(tag);
        let jpeg = Encoder::new(&px, w, h, PixelFormat::Rgb)
            .quality(95)
            .subsampling(Subsampling::S444)
            .exif_data(&exif)
            .encode()
            .expect("encode");
        let img = decode(&jpeg);
        assert_eq!(img.info.exif_orientation as u16, tag);
        let (ow, oh) = if tag >= 5 { (h, w) } else { (w, h) };
        assert_eq!(
            (img.info.width as usize, img.info.height as usize),
            (ow, oh),
            "tag {tag}"
        );
        let (cx, cy) = red_at[tag as usize - 1];
        let p = img.rgb.get_pixel(
            (cx * (ow - 1) + (1 - cx) * 2) as u32,
            (cy * (oh - 1) + (1 - cy) * 2) as u32,
        );
        assert!(
            p.0[0] > 200 && p.0[1] < 60 && p.0[2] < 60,
            "tag {tag}: {:?}",
            p.0
        );
    }
}

#[test]
fn gif_first_frame_is_analysed_and_said_so() {
    use image::codecs::gif::GifEncoder;
    let (w, h) = (40u32, 30u32);
    let mut bytes = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut bytes);
        for shade in [30u8, 220] {
            let frame = image::RgbaImage::from_pixel(w, h, image::Rgba([shade, shade, shade, 255]));
            enc.encode_frame(image::Frame::new(frame)).expect("frame");
        }
    }
    let img = decode_image_bytes(Path::new("two_frames.gif"), &bytes).expect("decodes");
    assert_eq!(img.info.format, "gif");
    assert!(
        img.rgb.pixels().all(|p| p.0[0] < 60),
        "the first (dark) frame"
    );
    assert_note(&img, "first frame");
    assert!(img.jpeg_bytes.is_none());
}

#[test]
fn lossless_jpeg_decodes_exactly() {
    let (w, h) = (40, 24);
    let px = picture(w, h);
    let jpeg = Encoder::new(&px, w, h, PixelFormat::Rgb)
        .lossless(true)
        .encode()
        .expect("encode");
    let img = decode(&jpeg);
    assert_eq!(img.rgb.as_raw(), &px);
    // It holds no DCT coefficients, so there is no compression history to read.
    assert!(tamperscope::engine::jpeg::read_coefficients(&jpeg).is_err());
}

fn run(cmd: &str) -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd}: {} (libjpeg-turbo-progs is installed by packaging/setup.sh)",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Pixels of a binary PPM (P6, maxval 255).
fn ppm_pixels(ppm: &[u8]) -> Vec<u8> {
    let mut fields = 0;
    let mut i = 0;
    while fields < 4 {
        while ppm[i].is_ascii_whitespace() {
            i += 1;
        }
        while !ppm[i].is_ascii_whitespace() {
            i += 1;
        }
        fields += 1;
    }
    ppm[i + 1..].to_vec()
}

#[test]
fn decoding_and_ela_round_trip_equal_libjpeg_turbo_tools() {
    for sample in ["kleiber_spliced.jpg", "ladybird_copymove.jpg"] {
        let path = common::sample(sample);
        let img = tamperscope::engine::imageio::load_image(&path).expect("sample");
        let djpeg = ppm_pixels(&run(&format!("djpeg -ppm '{}'", path.display())));
        assert_eq!(img.rgb.as_raw(), &djpeg, "{sample}: decode equals djpeg");
        let tools = ppm_pixels(&run(&format!(
            "djpeg -ppm '{}' | cjpeg -quality 90 | djpeg -ppm",
            path.display()
        )));
        let ours = tamperscope::engine::ela::jpeg_roundtrip(&img.rgb, 90).expect("round trip");
        assert_eq!(
            ours.as_raw(),
            &tools,
            "{sample}: round trip equals cjpeg | djpeg"
        );
    }
}

#[test]
fn every_kind_is_analysed_end_to_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let (w, h) = (160, 120);
    let px = picture(w, h);
    let base = || Encoder::new(&px, w, h, PixelFormat::Rgb).quality(85);
    let exif = exif_orientation(6);
    let files = [
        ("arithmetic.jpg", base().arithmetic(true).encode()),
        (
            "progressive_rst.jpg",
            base().progressive(true).restart_rows(2).encode(),
        ),
        ("orientation6.jpg", base().exif_data(&exif).encode()),
    ];
    let mut paths = Vec::new();
    for (name, bytes) in files {
        paths.push(common::write(dir.path(), name, &bytes.expect("encode")));
    }
    let out = dir.path().join("out");
    let res = Command::new(env!("CARGO_BIN_EXE_tamperscope"))
        .args(["analyze", "--segmenter", "felzenszwalb", "--out"])
        .arg(&out)
        .args(&paths)
        .output()
        .expect("runs");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    for (stem, want) in [
        ("arithmetic", (160, 120)),
        ("progressive_rst", (160, 120)),
        ("orientation6", (120, 160)),
    ] {
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join(stem).join("analysis.json")).expect("json"),
        )
        .expect("parses");
        assert_eq!(
            (
                json["input"]["width"].as_u64(),
                json["input"]["height"].as_u64()
            ),
            (Some(want.0), Some(want.1)),
            "{stem}"
        );
        // The compression evidence read the file's coefficients (it was not skipped).
        assert!(
            json["compression"]["absent"].is_null() && json["compression"]["quality"].is_number(),
            "{stem}: {}",
            json["compression"]
        );
    }
}
