//! The JPEG file as stored: its quantised DCT coefficients and quantisation tables, read by
//! `libjpeg-turbo-rs` (a pure-Rust port of libjpeg-turbo, cross-validated against the C library;
//! baseline, extended, progressive and arithmetic-coded files, restart markers, every chroma
//! subsampling). No re-encoding happens here: the compression-history evidence
//! ([`crate::engine::compression`], METHOD.md section 9) reads the numbers the camera or editor wrote.

use thiserror::Error;

/// Natural (row-major) index of the k-th coefficient in zig-zag order (ITU-T T.81, figure A.6).
pub const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// IJG / Annex K luminance table at quality 50, natural order.
pub const IJG_LUMA_Q50: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// Why the coefficients of a file could not be read.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum JpegError {
    #[error("not a JPEG file (no start-of-image marker)")]
    NotJpeg,
    #[error("the JPEG data cannot be decoded: {0}")]
    Decode(String),
    #[error("unsupported JPEG layout: {0}")]
    Unsupported(String),
    #[error("invalid quantisation table: {0}")]
    BadTable(String),
    #[error("the JPEG needs more memory than its size allows: {0}")]
    Limit(String),
}

/// Largest frame whose coefficients are read, in pixels: the bound `imageio` applies to decoding
/// (`MAX_MEGAPIXELS`), so a header that claims a gigapixel frame is refused before the
/// coefficient buffers are allocated (a 794-byte fuzz input claimed 33045 x 33153).
pub const MAX_FRAME_PIXELS: u64 = 120_000_000;

/// Width and height of the first frame header (SOF0-SOF15), read from the markers without
/// decoding; `None` when no frame header precedes the end of the data.
pub fn frame_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 9 < bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]) as u32;
            let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]) as u32;
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

/// One colour component's quantised coefficients, natural order within each block.
#[derive(Debug, Clone)]
pub struct Plane {
    /// Blocks per row and per column that cover the component's samples (MCU padding dropped).
    pub blocks_x: usize,
    pub blocks_y: usize,
    /// Row-major blocks, `blocks_y * blocks_x` of them; entry `[u * 8 + v]` is frequency (u, v).
    pub blocks: Vec<[i16; 64]>,
    /// The component's quantisation table, natural order, every step >= 1.
    pub table: [u16; 64],
    pub h_sampling: u8,
    pub v_sampling: u8,
}

/// What the coefficient layer returns for one file.
#[derive(Debug, Clone)]
pub struct Coefficients {
    /// Image size in pixels, as the frame header gives it (stored orientation).
    pub width: usize,
    pub height: usize,
    /// Bits per sample (8 or 12).
    pub precision: u8,
    /// Components in frame order; the first is luminance for JFIF / YCbCr files.
    pub planes: Vec<Plane>,
    /// Restart interval in MCUs (0 = none).
    pub restart_interval: u16,
    /// True when the first component is luminance (1 or 3 components, not RGB-coded).
    pub first_is_luma: bool,
}

impl Coefficients {
    pub fn luma(&self) -> &Plane {
        &self.planes[0]
    }
}

/// True when `bytes` start with a JPEG start-of-image marker.
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Source folder of the codec crate, as it appears in a panic's location: a panic there is the
/// codec's bug on a hostile file, contained by [`contained`] and reported as an error. Fuzzing and
/// the regression test count every other panic as ours.
pub const CODEC_SOURCE: &str = "libjpeg-turbo-rs-";

/// Run a codec call so that a panic inside the codec (seen on fuzzed CMYK frames with unusual
/// sampling factors, libjpeg-turbo-rs 0.9.0 `decode/color.rs`) becomes [`JpegError::Decode`]
/// instead of taking the analysis, or the app, down.
fn contained<T>(f: impl FnOnce() -> Result<T, JpegError>) -> Result<T, JpegError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(JpegError::Decode(format!(
            "the JPEG decoder (libjpeg-turbo-rs) failed on this file ({msg}); it is damaged or \
             uses a layout the decoder does not handle"
        )))
    })
}

/// What both readers check before the codec allocates anything: a JPEG signature, then the
/// frame header as the codec itself parses it (it skips bytes that `frame_size` stops at, so a
/// fuzzed file hid a 674 MP frame from `frame_size` and the coefficient reader spent seconds
/// allocating for it): a size of at most [`MAX_FRAME_PIXELS`] and not 0, a precision of 2-16 bits,
/// and sampling factors libjpeg accepts ([`check_sampling`]).
fn check_header(bytes: &[u8]) -> Result<(), JpegError> {
    if !is_jpeg(bytes) {
        return Err(JpegError::NotJpeg);
    }
    contained(|| check_frame(&parse_header(bytes)?))
}

/// The codec's parse of the markers up to the frame (no sample buffer is allocated).
fn parse_header(bytes: &[u8]) -> Result<libjpeg_turbo_rs::Decoder<'_>, JpegError> {
    libjpeg_turbo_rs::Decoder::new_with_limits(bytes, decode_limits()).map_err(codec_error)
}

/// [`check_header`]'s bounds on an already parsed frame.
fn check_frame(d: &libjpeg_turbo_rs::Decoder<'_>) -> Result<(), JpegError> {
    let f = d.header();
    let (w, h, precision) = (f.width as u64, f.height as u64, f.precision);
    if w == 0 || h == 0 {
        return Err(JpegError::Unsupported(format!(
            "the frame header gives a size of {w} x {h} (a height set later by a DNL marker is not supported)"
        )));
    }
    if w * h > MAX_FRAME_PIXELS {
        return Err(JpegError::Limit(format!(
            "the frame claims {w} x {h} pixels, over the {} MP limit",
            MAX_FRAME_PIXELS / 1_000_000
        )));
    }
    if !(2..=16).contains(&precision) {
        return Err(JpegError::Unsupported(format!(
            "the frame header gives {precision} bits per sample (JPEG allows 2-16)"
        )));
    }
    check_sampling(
        &f.components
            .iter()
            .map(|c| (c.horizontal_sampling, c.vertical_sampling))
            .collect::<Vec<_>>(),
    )
}

/// libjpeg's rule for sampling factors (T.81 section A.1.1; `jdmaster.c` and `jdsample.c`): each
/// factor is 1-4, and every component's factors divide the frame's largest ones, since libjpeg
/// upsamples only by whole ratios ("Fractional sampling not implemented yet"; `djpeg` refuses such
/// files). libjpeg-turbo-rs 0.9.0 indexes out of bounds on some of them (fuzzed CMYK frames), so
/// they are refused here, from the header, with libjpeg's reason.
fn check_sampling(factors: &[(u8, u8)]) -> Result<(), JpegError> {
    if let Some(&(h, v)) = factors
        .iter()
        .find(|&&(h, v)| !(1..=4).contains(&h) || !(1..=4).contains(&v))
    {
        return Err(JpegError::Unsupported(format!(
            "a component has sampling factors {h} x {v} (JPEG allows 1-4)"
        )));
    }
    let max_h = factors.iter().map(|f| f.0).max().unwrap_or(1);
    let max_v = factors.iter().map(|f| f.1).max().unwrap_or(1);
    if let Some(&(h, v)) = factors
        .iter()
        .find(|&&(h, v)| max_h % h != 0 || max_v % v != 0)
    {
        return Err(JpegError::Unsupported(format!(
            "fractional chroma sampling: a component sampled {h} x {v} against the frame's \
             {max_h} x {max_v} (libjpeg refuses it too: \"Fractional sampling not implemented yet\")"
        )));
    }
    Ok(())
}

/// Read the quantised DCT coefficients and quantisation tables of a JPEG file as stored.
///
/// Errors: [`JpegError::NotJpeg`] for other formats; [`JpegError::Decode`] for damaged or
/// truncated entropy-coded data (the library's message); [`JpegError::Limit`] for a frame over
/// [`MAX_FRAME_PIXELS`], refused before any allocation; [`JpegError::BadTable`] for a
/// quantisation step of 0; [`JpegError::Unsupported`] for a frame with no component, and for
/// sampling factors libjpeg refuses (outside 1-4, or fractional ratios).
pub fn read_coefficients(bytes: &[u8]) -> Result<Coefficients, JpegError> {
    check_header(bytes)?;
    let c = contained(|| {
        libjpeg_turbo_rs::read_coefficients(bytes).map_err(|e| JpegError::Decode(e.to_string()))
    })?;
    if c.components.is_empty() {
        return Err(JpegError::Unsupported("the frame has no component".into()));
    }
    let (width, height) = (c.width as usize, c.height as usize);
    let precision = c.effective_precision();
    let max_h = c
        .components
        .iter()
        .map(|p| p.h_sampling.max(1) as usize)
        .max()
        .unwrap_or(1);
    let max_v = c
        .components
        .iter()
        .map(|p| p.v_sampling.max(1) as usize)
        .max()
        .unwrap_or(1);
    let rgb_coded = c.components.len() == 3
        && c.components.iter().map(|p| p.component_id).eq(*b"RGB")
        || (c.components.len() == 3 && c.adobe_transform == Some(0));
    let first_is_luma = matches!(c.components.len(), 1 | 3) && !rgb_coded;
    let mut planes = Vec::with_capacity(c.components.len());
    for comp in c.components {
        let table = c
            .quant_tables
            .get(comp.quant_table_index as usize)
            .copied()
            .ok_or_else(|| JpegError::BadTable("a component names a missing table".into()))?;
        if let Some(k) = table.iter().position(|&q| q == 0) {
            return Err(JpegError::BadTable(format!(
                "step 0 at frequency ({}, {})",
                k / 8,
                k % 8
            )));
        }
        // Blocks that hold samples (libjpeg's width_in_blocks); the rest is MCU padding.
        let comp_w = (width * comp.h_sampling.max(1) as usize).div_ceil(max_h);
        let comp_h = (height * comp.v_sampling.max(1) as usize).div_ceil(max_v);
        let bx = comp_w.div_ceil(8).min(comp.blocks_x);
        let by = comp_h.div_ceil(8).min(comp.blocks_y);
        if bx > 0 && by > 0 && comp.blocks.len() < (by - 1) * comp.blocks_x + bx {
            return Err(JpegError::Decode("coefficient array too short".into()));
        }
        // In place: block (row, col) moves to row * bx + col <= row * blocks_x + col, in order,
        // and from zig-zag to natural order.
        let mut blocks = comp.blocks;
        for row in 0..by {
            for col in 0..bx {
                let zz = blocks[row * comp.blocks_x + col];
                let natural = &mut blocks[row * bx + col];
                for (k, &v) in zz.iter().enumerate() {
                    natural[ZIGZAG[k]] = v;
                }
            }
        }
        blocks.truncate(bx * by);
        planes.push(Plane {
            blocks_x: bx,
            blocks_y: by,
            blocks,
            table,
            h_sampling: comp.h_sampling,
            v_sampling: comp.v_sampling,
        });
    }
    Ok(Coefficients {
        width,
        height,
        precision,
        planes,
        restart_interval: c.restart_interval,
        first_is_luma,
    })
}

/// A JPEG decoded to 8-bit RGB, in the orientation it is stored in.
#[derive(Debug, Clone)]
pub struct DecodedJpeg {
    pub width: usize,
    pub height: usize,
    /// Interleaved RGB, `height * width * 3` bytes, row-major.
    pub rgb: Vec<u8>,
    /// EXIF orientation tag (1-8) when the file has one; not applied here.
    pub exif_orientation: Option<u8>,
    /// What the decoder did beyond a plain decode, in words ("12-bit samples scaled to 8 bits",
    /// "CMYK converted to RGB", "first of 2 images"): the report shows them.
    pub notes: Vec<String>,
}

fn codec_error(e: libjpeg_turbo_rs::JpegError) -> JpegError {
    match e {
        libjpeg_turbo_rs::JpegError::LimitExceeded { .. } => JpegError::Limit(e.to_string()),
        libjpeg_turbo_rs::JpegError::Unsupported(m) => JpegError::Unsupported(m),
        other => JpegError::Decode(other.to_string()),
    }
}

/// The decoder's resource bounds: [`MAX_FRAME_PIXELS`], checked against the frame header
/// before any sample buffer is allocated.
fn decode_limits() -> libjpeg_turbo_rs::DecodeLimits {
    libjpeg_turbo_rs::DecodeLimits {
        max_pixels: MAX_FRAME_PIXELS,
        ..Default::default()
    }
}

/// Number of complete JPEG images in `bytes` (multi-picture files, MPO, and concatenated
/// streams hold several): start-of-image markers at the top level, skipping marker segments
/// and entropy-coded data.
fn count_images(bytes: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while let Some(off) = bytes[i..].windows(3).position(|w| w == [0xFF, 0xD8, 0xFF]) {
        n += 1;
        i += off + 2;
        // Walk this image's segments to its end-of-image marker, so that an embedded EXIF
        // thumbnail (inside APP1) is not counted.
        loop {
            if i + 4 > bytes.len() || bytes[i] != 0xFF {
                return n;
            }
            let m = bytes[i + 1];
            if m == 0xD9 {
                i += 2;
                break;
            }
            if m == 0xFF {
                i += 1;
                continue;
            }
            let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
            i += 2 + len;
            if m == 0xDA {
                // Entropy-coded data: skip to the next marker that is not a stuffed byte or
                // a restart marker.
                while i + 1 < bytes.len()
                    && !(bytes[i] == 0xFF
                        && bytes[i + 1] != 0
                        && !(0xD0..=0xD7).contains(&bytes[i + 1]))
                {
                    i += 1;
                }
            }
        }
        if i >= bytes.len() {
            break;
        }
    }
    n
}

/// Decode a JPEG file to 8-bit RGB with libjpeg-turbo-rs: accurate integer IDCT (`JDCT_ISLOW`)
/// and fancy (triangle-filter) chroma upsampling, libjpeg's defaults, so the pixels equal what
/// `djpeg` writes. Baseline, extended, progressive, arithmetic-coded and lossless frames,
/// restart markers and every chroma subsampling libjpeg decodes (whole ratios) are decoded. Greyscale is replicated to three
/// channels; CMYK and YCCK frames are converted as Adobe's inverted inks (R = C K / 255, ...);
/// 12-bit samples are scaled to 8 bits (`>> 4`); of a multi-picture file the first image is
/// decoded. Each of these is said in [`DecodedJpeg::notes`].
///
/// Errors: [`JpegError::NotJpeg`]; [`JpegError::Limit`] for a frame over
/// [`MAX_FRAME_PIXELS`], refused from the header before allocation; [`JpegError::Decode`] for
/// damaged data, and for a panic inside the codec (contained); [`JpegError::Unsupported`] for
/// layouts the codec refuses, for a frame of height 0 and for fractional chroma sampling
/// (which libjpeg refuses too).
pub fn decode_rgb(bytes: &[u8]) -> Result<DecodedJpeg, JpegError> {
    if !is_jpeg(bytes) {
        return Err(JpegError::NotJpeg);
    }
    contained(|| decode_rgb_unguarded(bytes))
}

fn decode_rgb_unguarded(bytes: &[u8]) -> Result<DecodedJpeg, JpegError> {
    use libjpeg_turbo_rs::{ColorSpace, PixelFormat};
    // One parse of the header serves the bounds and the decode.
    let mut decoder = parse_header(bytes)?;
    check_frame(&decoder)?;
    let header = decoder.header();
    let precision = header.precision;
    let (width, height) = (header.width as usize, header.height as usize);
    let components = header.components.len();
    let exif_orientation = decoder.exif_orientation();
    let colour = decoder.jpeg_color_space();
    let inks = matches!(colour, ColorSpace::Cmyk | ColorSpace::Ycck);
    let mut notes = Vec::new();
    let images = count_images(bytes);
    if images > 1 {
        notes.push(format!(
            "the file holds {images} JPEG images (multi-picture); the first is analysed"
        ));
    }
    if inks {
        notes.push(format!(
            "{} JPEG converted to RGB as Adobe's inverted inks (no colour profile applied)",
            if colour == ColorSpace::Ycck {
                "YCCK"
            } else {
                "CMYK"
            }
        ));
    }
    // Interleaved 8-bit samples, `channels` per pixel.
    let (samples, channels) = if precision > 8 {
        let img =
            libjpeg_turbo_rs::precision::decompress_12bit_with_limits(bytes, &decode_limits())
                .map_err(codec_error)?;
        notes.push(format!(
            "{precision}-bit samples scaled to 8 bits (the models and the compression evidence assume 8-bit JPEG)"
        ));
        let samples: Vec<u8> = img
            .data
            .iter()
            .map(|&v| (v.clamp(0, 4095) >> 4) as u8)
            .collect();
        (samples, img.num_components)
    } else {
        decoder.set_output_format(if inks {
            PixelFormat::Cmyk
        } else if components == 1 {
            PixelFormat::Grayscale
        } else {
            PixelFormat::Rgb
        });
        let img = decoder.decode_image().map_err(codec_error)?;
        let channels = img.pixel_format.bytes_per_pixel();
        (img.data, channels)
    };
    let n = width * height;
    if samples.len() < n * channels {
        return Err(JpegError::Decode(
            "the decoder returned too few samples".into(),
        ));
    }
    let rgb = match channels {
        3 => samples,
        1 => samples[..n].iter().flat_map(|&g| [g, g, g]).collect(),
        4 => samples[..n * 4]
            .chunks_exact(4)
            .flat_map(|p| {
                let k = p[3] as u32;
                let ink = |c: u8| ((c as u32 * k + 127) / 255) as u8;
                [ink(p[0]), ink(p[1]), ink(p[2])]
            })
            .collect(),
        c => {
            return Err(JpegError::Unsupported(format!(
                "{c} colour components per pixel"
            )));
        }
    };
    Ok(DecodedJpeg {
        width,
        height,
        rgb,
        exif_orientation,
        notes,
    })
}

/// The JPEG round trip of the ELA (METHOD.md section 1, J = JPEG_q(I)): encode `rgb`
/// (`height` rows of `width * 3` bytes) as libjpeg's `cjpeg -quality q` does (IJG tables
/// scaled by `jpeg_set_quality`, 4:2:0, accurate integer DCT) and decode it again as
/// [`decode_rgb`] does. Returns `height * width * 3` bytes. The pixels are borrowed, not
/// copied.
///
/// Errors: [`JpegError::Decode`] if the codec fails (it does not on valid sizes).
pub fn roundtrip_rgb(
    rgb: &[u8],
    width: usize,
    height: usize,
    quality: u8,
) -> Result<Vec<u8>, JpegError> {
    contained(|| roundtrip_unguarded(rgb, width, height, quality))
}

fn roundtrip_unguarded(
    rgb: &[u8],
    width: usize,
    height: usize,
    quality: u8,
) -> Result<Vec<u8>, JpegError> {
    use libjpeg_turbo_rs::{DctMethod, Decoder, Encoder, PixelFormat, Subsampling};
    let jpeg = Encoder::new(rgb, width, height, PixelFormat::Rgb)
        .quality(quality)
        .subsampling(Subsampling::S420)
        .dct_method(DctMethod::IsLow)
        .encode()
        .map_err(codec_error)?;
    let mut decoder = Decoder::new(&jpeg).map_err(codec_error)?;
    decoder.set_output_format(PixelFormat::Rgb);
    decoder.set_dct_method(DctMethod::IsLow);
    Ok(decoder.decode_image().map_err(codec_error)?.data)
}

/// The IJG (libjpeg `jpeg_set_quality`) luminance table at quality `q` (1-100), natural order.
pub fn ijg_luma_table(q: u8) -> [u16; 64] {
    let q = q.clamp(1, 100) as u32;
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    let mut t = [0u16; 64];
    for (o, &b) in t.iter_mut().zip(IJG_LUMA_Q50.iter()) {
        *o = ((b as u32 * scale + 50) / 100).clamp(1, 255) as u16;
    }
    t
}

/// The IJG quality whose luminance table is closest to `steps` (given as `(natural index,
/// step)` pairs), by the sum of squared log-ratios; returns the quality and whether the match
/// is exact. Used both for the stored table (all 64 steps) and for the estimated primary
/// steps of the frequencies that carry a trace.
pub fn ijg_equivalent_quality(steps: &[(usize, f64)]) -> Option<(u8, bool)> {
    if steps.is_empty() {
        return None;
    }
    let mut best: Option<(u8, f64)> = None;
    for q in 1..=100u8 {
        let t = ijg_luma_table(q);
        let err: f64 = steps
            .iter()
            .map(|&(k, s)| ((t[k] as f64).ln() - s.max(1.0).ln()).powi(2))
            .sum();
        if best.is_none_or(|(_, e)| err < e) {
            best = Some((q, err));
        }
    }
    best.map(|(q, e)| (q, e < 1e-12))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_factors_follow_libjpeg() {
        // 4:4:4, 4:2:0, 4:1:1, 4:4:0 and a CMYK frame with K at half resolution are whole ratios.
        for ok in [
            vec![(1, 1), (1, 1), (1, 1)],
            vec![(2, 2), (1, 1), (1, 1)],
            vec![(4, 1), (1, 1), (1, 1)],
            vec![(1, 2), (1, 1), (1, 1)],
            vec![(2, 2), (2, 2), (2, 2), (1, 1)],
        ] {
            assert!(check_sampling(&ok).is_ok(), "{ok:?}");
        }
        // The fuzzed CMYK frames (C 2x3 with K 2x2; C 2x2 with K 4x3), 3:2 ratios and factor 0.
        for bad in [
            vec![(2, 3), (1, 1), (1, 1), (2, 2)],
            vec![(2, 2), (1, 1), (1, 1), (4, 3)],
            vec![(3, 1), (2, 1), (1, 1)],
            vec![(0, 1), (1, 1), (1, 1)],
        ] {
            let e = check_sampling(&bad).expect_err("refused");
            assert!(matches!(e, JpegError::Unsupported(_)), "{bad:?}: {e}");
        }
    }

    #[test]
    fn zigzag_is_a_permutation_that_starts_like_t81() {
        let mut seen = [false; 64];
        for &k in &ZIGZAG {
            seen[k] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(&ZIGZAG[..6], &[0, 1, 8, 16, 9, 2]);
    }

    #[test]
    fn ijg_tables_and_their_quality() {
        assert_eq!(ijg_luma_table(50), IJG_LUMA_Q50);
        assert_eq!(ijg_luma_table(100), [1u16; 64]);
        for q in [30u8, 75, 85, 90, 95] {
            let t = ijg_luma_table(q);
            let steps: Vec<(usize, f64)> =
                t.iter().enumerate().map(|(k, &s)| (k, s as f64)).collect();
            let (found, exact) = ijg_equivalent_quality(&steps).expect("steps given");
            assert!(exact, "q{q}");
            assert_eq!(ijg_luma_table(found), t, "q{q}");
        }
    }

    #[test]
    fn other_formats_and_garbage_are_refused_with_a_reason() {
        assert_eq!(
            read_coefficients(b"\x89PNG\r\n\x1a\n").expect_err("a PNG is refused"),
            JpegError::NotJpeg
        );
        let err = read_coefficients(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 2, 0xFF, 0xD9])
            .expect_err("a frame-less stream is refused");
        assert!(matches!(err, JpegError::Decode(_)), "{err:?}");
    }
}
