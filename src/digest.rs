//! SHA-256 of bytes and files: how input images and model files are identified. Shared by
//! model management (is this the file the manifest names?) and the engine (the hash of the exact
//! bytes analysed).

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(sha256_hex(&bytes))
}
