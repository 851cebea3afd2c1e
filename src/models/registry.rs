//! Where model files are found, and whether they are the files the manifest names.
//! Search order: an explicit folder (`--models` / `$TAMPERSCOPE_MODELS`), the repository's or
//! installation's `models/`, then the user's data folder (where `models install` writes).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::models::manifest::{Manifest, ModelEntry, UNVERIFIED, is_pinned};

pub const MODELS_ENV: &str = "TAMPERSCOPE_MODELS";

/// The manifest shipped in the program's `models/` folder ([`repo_models_dir`]).
pub fn default_manifest_path() -> PathBuf {
    repo_models_dir().join("manifest.toml")
}

/// The `models/` folder that ships with the program: an installed package's
/// `share/tamperscope/models` above the executable (`/usr/bin/tamperscope` ->
/// `/usr/share/tamperscope/models`, also when the package is unpacked under another root), else the
/// source tree it was built from when that still exists (a development build), else `models/`
/// beside or above the executable.
pub fn repo_models_dir() -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let exe = std::env::current_exe().ok();
    if let Some(installed) = exe.as_deref().and_then(installed_models_dir) {
        return installed;
    }
    if source.join("manifest.toml").is_file() {
        return source;
    }
    if let Some(exe) = exe {
        for dir in exe.ancestors().skip(1).take(4) {
            let candidate = dir.join("models");
            if candidate.join("manifest.toml").is_file() {
                return candidate;
            }
        }
    }
    source
}

/// `share/tamperscope/models` of a package installation holding the executable `exe`.
fn installed_models_dir(exe: &Path) -> Option<PathBuf> {
    exe.ancestors()
        .skip(1)
        .take(4)
        .map(|dir| dir.join("share/tamperscope/models"))
        .find(|candidate| candidate.join("manifest.toml").is_file())
}

/// The user's model folder (e.g. `~/.local/share/tamperscope/models`).
pub fn user_models_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "tamperscope", "tamperscope")
        .map(|d| d.data_dir().join("models"))
}

#[derive(Debug, Clone)]
pub struct Registry {
    pub manifest: Manifest,
    pub manifest_path: PathBuf,
    pub search_dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum HashStatus {
    Ok,
    Mismatch {
        actual: String,
    },
    NotInstalled,
    /// The manifest has no hash yet (development models), or none was published ("unverified").
    Unpinned,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub name: String,
    pub role: crate::models::manifest::Role,
    pub status: String,
    pub licence: String,
    pub source: String,
    pub path: Option<PathBuf>,
    pub sha256: HashStatus,
}

/// A model file that was found and whose hash matched.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub entry: ModelEntry,
    pub path: PathBuf,
    pub sha256: String,
}

impl Registry {
    /// Load the shipped manifest and search the usual folders, `extra` first.
    pub fn open(extra: Option<&Path>) -> Result<Registry> {
        let manifest_path = default_manifest_path();
        Self::with_manifest(&manifest_path, extra)
    }

    pub fn with_manifest(manifest_path: &Path, extra: Option<&Path>) -> Result<Registry> {
        let manifest = Manifest::load(manifest_path)?;
        let mut search_dirs = Vec::new();
        if let Some(dir) = extra {
            search_dirs.push(dir.to_path_buf());
        } else if let Some(dir) = std::env::var_os(MODELS_ENV) {
            search_dirs.push(PathBuf::from(dir));
        }
        if let Some(parent) = manifest_path.parent() {
            search_dirs.push(parent.to_path_buf());
        }
        if let Some(user) = user_models_dir() {
            search_dirs.push(user);
        }
        search_dirs.dedup();
        Ok(Registry {
            manifest,
            manifest_path: manifest_path.to_path_buf(),
            search_dirs,
        })
    }

    pub fn locate(&self, entry: &ModelEntry) -> Option<PathBuf> {
        self.search_dirs
            .iter()
            .map(|d| d.join(&entry.file))
            .find(|p| p.is_file())
    }

    fn searched(&self) -> String {
        self.search_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Find a model and check its sha256 against the manifest.
    pub fn resolve(&self, name: &str) -> Result<ResolvedModel> {
        let entry = self.manifest.get(name)?.clone();
        let path = self
            .locate(&entry)
            .ok_or_else(|| EngineError::ModelMissing {
                name: entry.name.clone(),
                file: entry.file.clone(),
                searched: self.searched(),
                hint: install_hint(&entry),
            })?;
        let actual = crate::digest::sha256_file(&path)?;
        if is_pinned(&entry.sha256) && !entry.sha256.eq_ignore_ascii_case(&actual) {
            return Err(EngineError::ModelHashMismatch {
                name: entry.name.clone(),
                path,
                expected: entry.sha256.clone(),
                actual,
            });
        }
        Ok(ResolvedModel {
            entry,
            path,
            sha256: actual,
        })
    }

    /// Status of every model, for `models list` / `models verify`. `hash` computes sha256s.
    pub fn statuses(&self, hash: bool) -> Vec<ModelStatus> {
        self.manifest
            .models
            .iter()
            .map(|e| {
                let path = self.locate(e);
                let sha256 = match (&path, hash) {
                    (None, _) => HashStatus::NotInstalled,
                    (Some(_), _) if !is_pinned(&e.sha256) => HashStatus::Unpinned,
                    (Some(p), true) => match crate::digest::sha256_file(p) {
                        Ok(h) if h.eq_ignore_ascii_case(&e.sha256) => HashStatus::Ok,
                        Ok(h) => HashStatus::Mismatch { actual: h },
                        Err(err) => HashStatus::Mismatch {
                            actual: err.to_string(),
                        },
                    },
                    (Some(_), false) => HashStatus::Ok,
                };
                ModelStatus {
                    name: e.name.clone(),
                    role: e.role,
                    status: e.status.clone(),
                    licence: e.licence.clone(),
                    source: e.source.clone(),
                    path,
                    sha256,
                }
            })
            .collect()
    }
}

/// How to get a model that is not installed.
pub fn install_hint(entry: &ModelEntry) -> String {
    match (&entry.url, entry.status.as_str()) {
        (_, _) if entry.sha256 == UNVERIFIED => format!(
            "Obtain {} ({}), check it, and run: tamperscope models install {} --from FILE --sha256 HEX",
            entry.file, entry.source, entry.name
        ),
        (Some(_), _) => match &entry.sam {
            Some(sam) => format!(
                "Install it with: tamperscope models install {} && tamperscope models install {}",
                sam.encoder, entry.name
            ),
            None => format!("Install it with: tamperscope models install {}", entry.name),
        },
        (None, "converted") => {
            "Run the set-up script (packaging/setup.sh), which converts it from ../shared/models."
                .into()
        }
        (None, s) if s.contains("stand-in") => {
            "Regenerate it with: .venv/bin/python -m tamperscope_training.standin --out-dir models"
                .into()
        }
        _ => format!(
            "Obtain the file {} and run: tamperscope models install {} --from FILE",
            entry.file, entry.name
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_layout_is_found_above_the_executable() {
        let root = tempfile::tempdir().expect("tempdir");
        let exe = root.path().join("usr/bin/tamperscope");
        assert_eq!(installed_models_dir(&exe), None);
        let models = root.path().join("usr/share/tamperscope/models");
        std::fs::create_dir_all(&models).expect("mkdir");
        std::fs::write(models.join("manifest.toml"), "").expect("write");
        assert_eq!(installed_models_dir(&exe), Some(models));
    }
}
