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
    #[error("the JPEG's coefficient data cannot be read: {0}")]
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

/// Read the quantised DCT coefficients and quantisation tables of a JPEG file as stored.
///
/// Errors: [`JpegError::NotJpeg`] for other formats; [`JpegError::Decode`] for damaged or
/// truncated entropy-coded data (the library's message); [`JpegError::Limit`] for a frame over
/// [`MAX_FRAME_PIXELS`], refused before any allocation; [`JpegError::BadTable`] for a
/// quantisation step of 0; [`JpegError::Unsupported`] for a frame with no component.
pub fn read_coefficients(bytes: &[u8]) -> Result<Coefficients, JpegError> {
    if !is_jpeg(bytes) {
        return Err(JpegError::NotJpeg);
    }
    if let Some((w, h)) = frame_size(bytes)
        && w as u64 * h as u64 > MAX_FRAME_PIXELS
    {
        return Err(JpegError::Limit(format!(
            "the frame claims {w} x {h} pixels, over the {} MP limit",
            MAX_FRAME_PIXELS / 1_000_000
        )));
    }
    let c =
        libjpeg_turbo_rs::read_coefficients(bytes).map_err(|e| JpegError::Decode(e.to_string()))?;
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
