//! Errors of the engine. Each variant says what went wrong in words an analyst can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is empty (0 bytes)")]
    EmptyFile { path: PathBuf },
    #[error("{path} is not an image this tool can read ({reason})")]
    NotAnImage { path: PathBuf, reason: String },
    #[error(
        "{path} is too large: {width}x{height} pixels, the limit is {limit_megapixels} megapixels"
    )]
    ImageTooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        limit_megapixels: u32,
    },
    #[error("{path}: the image data is damaged or truncated ({reason})")]
    CorruptImage { path: PathBuf, reason: String },
    #[error("model manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("model '{name}' is not installed: looked for {file} in {searched}. {hint}")]
    ModelMissing {
        name: String,
        file: String,
        searched: String,
        hint: String,
    },
    #[error(
        "model '{name}' at {path} has sha256 {actual}, the manifest expects {expected}; the file is damaged or not the model named"
    )]
    ModelHashMismatch {
        name: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model '{name}' does not match its contract: {reason}")]
    ModelContract { name: String, reason: String },
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("no model named '{0}' in the manifest")]
    UnknownModel(String),
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("analysis cancelled")]
    Cancelled,
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot download model '{name}': {reason}")]
    Download { name: String, reason: String },
    #[error("cannot download model '{name}': {url} answered HTTP {status}")]
    DownloadStatus {
        name: String,
        url: String,
        status: u16,
    },
    #[error("refusing to install model '{name}': {reason}")]
    InstallRefused { name: String, reason: String },
    #[error("cannot compare the evaluations: {0}")]
    NotComparable(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl From<ort::Error> for EngineError {
    fn from(e: ort::Error) -> Self {
        EngineError::Runtime(e.to_string())
    }
}
