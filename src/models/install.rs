//! `models install`: put a model file into a model folder, checked and atomically.
//!
//! The bytes (downloaded over HTTP(S), or copied from a file the user obtained some other way) go
//! to a temporary file in the target folder while their sha256 is computed; only when the hash is
//! the expected one is the file fsynced and renamed into place (and the folder fsynced). Any
//! failure removes the temporary file, so a model folder never holds a half-written model.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};
use crate::models::manifest::{ModelEntry, is_pinned};

/// Where the bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    Url(String),
    File(PathBuf),
}

/// Progress of one transfer: bytes so far and the total when known.
pub type ProgressFn<'a> = dyn FnMut(u64, Option<u64>) + 'a;

/// The hash the installed file must have: the manifest's, or for an unverified entry the one the
/// user passes (which must then be given). A user hash that contradicts a pinned one is refused.
pub fn expected_sha256(entry: &ModelEntry, user: Option<&str>) -> Result<String> {
    let user = user.map(str::to_ascii_lowercase);
    if let Some(u) = &user
        && !is_pinned(u)
    {
        return Err(EngineError::InvalidParameter(format!(
            "--sha256 must be 64 hexadecimal digits, got '{u}'"
        )));
    }
    match (is_pinned(&entry.sha256), user) {
        (true, None) => Ok(entry.sha256.to_ascii_lowercase()),
        (true, Some(u)) if u.eq_ignore_ascii_case(&entry.sha256) => Ok(u),
        (true, Some(u)) => Err(EngineError::InstallRefused {
            name: entry.name.clone(),
            reason: format!("--sha256 {u} differs from the manifest's {}", entry.sha256),
        }),
        (false, Some(u)) => Ok(u),
        (false, None) => Err(EngineError::InstallRefused {
            name: entry.name.clone(),
            reason: format!(
                "the manifest has no published sha256 for it ({}); pass --sha256 HEX with a hash you obtained and checked yourself",
                entry.sha256
            ),
        }),
    }
}

/// Removes the temporary file unless the install completed.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Copy `reader` into a temporary file in `dir`, hashing; then check and rename to `target`.
fn store(
    name: &str,
    reader: &mut dyn Read,
    declared_len: Option<u64>,
    target: &Path,
    expected: &str,
    progress: &mut ProgressFn<'_>,
) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let file_name = target
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut temp = TempFile {
        path: dir.join(format!(
            ".{file_name}.partial-{}-{nanos}",
            std::process::id()
        )),
        keep: false,
    };
    let mut file = File::create_new(&temp.path).map_err(io_err(&temp.path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(EngineError::Download {
                    name: name.to_string(),
                    reason: format!("transfer failed after {total} bytes: {e}"),
                });
            }
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(io_err(&temp.path))?;
        total += n as u64;
        progress(total, declared_len);
    }
    if let Some(len) = declared_len
        && len != total
    {
        return Err(EngineError::Download {
            name: name.to_string(),
            reason: format!("truncated transfer: {total} of {len} bytes"),
        });
    }
    let actual = hex::encode(hasher.finalize());
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(EngineError::ModelHashMismatch {
            name: name.to_string(),
            path: temp.path.clone(),
            expected: expected.to_string(),
            actual,
        });
    }
    file.sync_all().map_err(io_err(&temp.path))?;
    drop(file);
    std::fs::rename(&temp.path, target).map_err(io_err(target))?;
    temp.keep = true;
    // Make the rename itself durable.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// One attempt at downloading `url`.
fn download_once(
    name: &str,
    url: &str,
    target: &Path,
    expected: &str,
    progress: &mut ProgressFn<'_>,
) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    let dl = |reason: String| EngineError::Download {
        name: name.to_string(),
        reason,
    };
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| dl(format!("{url}: {e}")))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(EngineError::DownloadStatus {
            name: name.to_string(),
            url: url.to_string(),
            status,
        });
    }
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
    store(name, &mut reader, declared, target, expected, progress)
}

/// Install `entry`'s file into `dir` from `source`, checking `expected` (see [`expected_sha256`]).
/// Downloads are tried up to `attempts` times when the transfer breaks off; a wrong hash or an HTTP
/// error status is not retried. Returns the installed path.
pub fn install(
    entry: &ModelEntry,
    dir: &Path,
    source: &Source,
    expected: &str,
    attempts: u32,
    progress: &mut ProgressFn<'_>,
) -> Result<PathBuf> {
    let target = dir.join(&entry.file);
    match source {
        Source::File(path) => {
            let mut f = File::open(path).map_err(|source| EngineError::Io {
                path: path.clone(),
                source,
            })?;
            let len = f.metadata().ok().map(|m| m.len());
            store(&entry.name, &mut f, len, &target, expected, progress)?;
        }
        Source::Url(url) => {
            let mut last = None;
            for _ in 0..attempts.max(1) {
                match download_once(&entry.name, url, &target, expected, progress) {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e @ EngineError::Download { .. }) => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
    }
    Ok(target)
}
