//! Reading suspect images safely: size checks from the header before any pixel is allocated,
//! EXIF orientation applied, and the file's hashes taken from the exact bytes analysed.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageDecoder, ImageReader, Limits, RgbImage};
use serde::{Deserialize, Serialize};

use crate::digest::sha256_hex;
use crate::error::{EngineError, Result};

/// Largest image accepted, in megapixels (a 100 MP medium-format frame fits).
pub const MAX_MEGAPIXELS: u32 = 120;
/// Largest file accepted, in bytes.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// A decoded image and what identifies it.
#[derive(Clone)]
pub struct LoadedImage {
    pub path: PathBuf,
    pub rgb: RgbImage,
    pub info: ImageInfo,
    /// The file's bytes when it is a JPEG: the compression-history evidence reads its
    /// coefficients from exactly the bytes that were hashed and decoded.
    pub jpeg_bytes: Option<std::sync::Arc<[u8]>>,
}

impl std::fmt::Debug for LoadedImage {
    // The pixels are left out: a 12 MP image would flood any log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedImage")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageInfo {
    pub file_name: String,
    pub file_bytes: u64,
    pub sha256: String,
    pub md5: String,
    pub format: String,
    /// Size as stored in the file.
    pub stored_width: u32,
    pub stored_height: u32,
    /// Size after the EXIF orientation is applied (what is analysed).
    pub width: u32,
    pub height: u32,
    /// EXIF orientation tag (1-8), 1 when absent.
    pub exif_orientation: u8,
    /// What decoding did beyond a plain decode ("first of 2 images", "12-bit samples scaled to
    /// 8 bits", "GIF: first frame"), in words for the report; empty for an ordinary file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decode_notes: Vec<String>,
}

/// Read and decode an image file.
pub fn load_image(path: &Path) -> Result<LoadedImage> {
    let meta = std::fs::metadata(path).map_err(|source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return Err(EngineError::NotAnImage {
            path: path.to_path_buf(),
            reason: "it is a directory".into(),
        });
    }
    if meta.len() == 0 {
        return Err(EngineError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(EngineError::NotAnImage {
            path: path.to_path_buf(),
            reason: format!(
                "file is {} MB, the limit is {} MB",
                meta.len() >> 20,
                MAX_FILE_BYTES >> 20
            ),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image_bytes(path, &bytes)
}

/// Decode image bytes; `path` is only used in messages and the report.
pub fn decode_image_bytes(path: &Path, bytes: &[u8]) -> Result<LoadedImage> {
    let not_image = |reason: String| EngineError::NotAnImage {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() {
        return Err(EngineError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| not_image(e.to_string()))?;
    let format = reader.format().ok_or_else(|| {
        not_image(
            "unrecognised file signature; JPEG, PNG, TIFF, WebP, BMP and GIF are supported".into(),
        )
    })?;

    // Header first: refuse huge images before the decoder allocates their pixels. The claimed size
    // is read from the first header bytes, so a file that is cut short after its header is still
    // reported for what it claims.
    let too_large = |(width, height): (u32, u32)| {
        (width as u64 * height as u64 > MAX_MEGAPIXELS as u64 * 1_000_000).then(|| {
            EngineError::ImageTooLarge {
                path: path.to_path_buf(),
                width,
                height,
                limit_megapixels: MAX_MEGAPIXELS,
            }
        })
    };
    if let Some(err) = header_dimensions(bytes).and_then(too_large) {
        return Err(err);
    }
    let (stored_width, stored_height) = if format == image::ImageFormat::Jpeg {
        crate::engine::jpeg::frame_size(bytes).ok_or_else(|| EngineError::CorruptImage {
            path: path.to_path_buf(),
            reason: "the JPEG has no frame header".into(),
        })?
    } else {
        reader.into_dimensions().map_err(|e| corrupt(path, e))?
    };
    if let Some(err) = too_large((stored_width, stored_height)) {
        return Err(err);
    }
    let megapixels = stored_width as u64 * stored_height as u64;
    if format == image::ImageFormat::Jpeg && !jpeg_has_end_marker(bytes) {
        // Decoders fill a truncated scan with grey; for evidence that is damage, not an image.
        return Err(EngineError::CorruptImage {
            path: path.to_path_buf(),
            reason: "the JPEG stream ends before its end-of-image marker (file truncated)".into(),
        });
    }

    let (rgb, orientation, decode_notes) = if format == image::ImageFormat::Jpeg {
        decode_jpeg(path, bytes)?
    } else {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut limits = Limits::default();
        limits.max_image_width = Some(stored_width);
        limits.max_image_height = Some(stored_height);
        // Decoders may need a few buffers of the image's size (16-bit, alpha); allow that and
        // no more.
        limits.max_alloc = Some(megapixels * 8 * 3 + (64 << 20));
        reader.limits(limits);
        let mut decoder = reader.into_decoder().map_err(|e| corrupt(path, e))?;
        let orientation = decoder
            .orientation()
            .unwrap_or(image::metadata::Orientation::NoTransforms);
        let dynamic = image::DynamicImage::from_decoder(decoder).map_err(|e| corrupt(path, e))?;
        let notes = if format == image::ImageFormat::Gif {
            vec!["GIF: the first frame is analysed".to_string()]
        } else {
            Vec::new()
        };
        (dynamic.to_rgb8(), orientation, notes)
    };
    let mut dynamic = image::DynamicImage::ImageRgb8(rgb);
    dynamic.apply_orientation(orientation);
    let rgb = dynamic.into_rgb8();

    let md5 = {
        use md5::Digest as _;
        hex::encode(md5::Md5::digest(bytes))
    };
    let info = ImageInfo {
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file_bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        md5,
        format: format!("{format:?}").to_lowercase(),
        stored_width,
        stored_height,
        width: rgb.width(),
        height: rgb.height(),
        exif_orientation: orientation_tag(orientation),
        decode_notes,
    };
    let jpeg_bytes = (format == image::ImageFormat::Jpeg).then(|| std::sync::Arc::from(bytes));
    Ok(LoadedImage {
        path: path.to_path_buf(),
        rgb,
        info,
        jpeg_bytes,
    })
}

/// Decode a JPEG with the one JPEG codec of the engine ([`crate::engine::jpeg::decode_rgb`]);
/// returns the stored-orientation pixels, the EXIF orientation to apply and the decoder's notes.
fn decode_jpeg(
    path: &Path,
    bytes: &[u8],
) -> Result<(RgbImage, image::metadata::Orientation, Vec<String>)> {
    use crate::engine::jpeg::{JpegError, decode_rgb};
    let d = decode_rgb(bytes).map_err(|e| match e {
        JpegError::NotJpeg | JpegError::Unsupported(_) => EngineError::NotAnImage {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
        other => EngineError::CorruptImage {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })?;
    let rgb = RgbImage::from_raw(d.width as u32, d.height as u32, d.rgb).ok_or_else(|| {
        EngineError::CorruptImage {
            path: path.to_path_buf(),
            reason: "the decoder returned a short image".into(),
        }
    })?;
    let orientation = d
        .exif_orientation
        .and_then(image::metadata::Orientation::from_exif)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    Ok((rgb, orientation, d.notes))
}

/// Width and height claimed by a PNG (IHDR) or JPEG (SOFn) header, without decoding.
pub fn header_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() >= 24 && &bytes[12..16] == b"IHDR" {
        let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        return Some((w, h));
    }
    if let Some(size) = crate::engine::jpeg::frame_size(bytes) {
        return Some(size);
    }
    None
}

/// True when an end-of-image marker follows the last start-of-scan (embedded EXIF thumbnails
/// have their own markers earlier in the file).
fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let last = |m: u8| bytes.windows(2).rposition(|w| w[0] == 0xFF && w[1] == m);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

fn corrupt(path: &Path, e: image::ImageError) -> EngineError {
    match e {
        image::ImageError::Unsupported(u) => EngineError::NotAnImage {
            path: path.to_path_buf(),
            reason: u.to_string(),
        },
        image::ImageError::Limits(l) => EngineError::CorruptImage {
            path: path.to_path_buf(),
            reason: format!("decoder needs more memory than the image size allows ({l})"),
        },
        other => EngineError::CorruptImage {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

fn orientation_tag(o: image::metadata::Orientation) -> u8 {
    use image::metadata::Orientation::*;
    match o {
        NoTransforms => 1,
        FlipHorizontal => 2,
        Rotate180 => 3,
        FlipVertical => 4,
        Rotate90FlipH => 5,
        Rotate90 => 6,
        Rotate270FlipH => 7,
        Rotate270 => 8,
    }
}

/// Write bytes to `dest` through a temporary file in the same folder and a rename, so that a
/// reader never sees a partial file and a failure leaves nothing behind.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let write_err = |source| EngineError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(())
}

/// Encode an 8-bit RGB image as PNG bytes.
pub fn png_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| EngineError::Other(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// Encode an 8-bit grey image as PNG bytes.
pub fn png_gray(width: u32, height: u32, gray: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(gray, width, height, image::ExtendedColorType::L8)
        .map_err(|e| EngineError::Other(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

use image::ImageEncoder as _;
