//! ONNX Runtime: finding the shared library the set-up script installed, and opening sessions on
//! the best execution provider available (CUDA requested when present, CPU otherwise), recording
//! which one actually runs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::ep::ExecutionProvider as _;
use ort::session::Session;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// Overrides where the ONNX Runtime library is looked for.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";
const LIB_NAME: &str = "libonnxruntime.so";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProviderChoice {
    /// CUDA when this ONNX Runtime build and machine offer it, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl std::str::FromStr for ProviderChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            _ => Err(format!(
                "unknown execution provider '{s}' (auto, cpu or cuda)"
            )),
        }
    }
}

/// Candidate locations of the ONNX Runtime library, most specific first.
pub fn dylib_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os(ORT_DYLIB_ENV) {
        out.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe() {
        out.extend(dylib_candidates_near(&exe));
    }
    out.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("third_party/onnxruntime/lib")
            .join(LIB_NAME),
    );
    out
}

/// Candidates beside or above the executable `exe`: `lib/`, an installed package's private
/// `lib/tamperscope/` (`/usr/bin/tamperscope` -> `/usr/lib/tamperscope/libonnxruntime.so`, also
/// when the package is unpacked under another root), and a source tree's `third_party/`.
fn dylib_candidates_near(exe: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in exe.ancestors().skip(1).take(4) {
        out.push(dir.join("lib").join(LIB_NAME));
        out.push(dir.join("lib/tamperscope").join(LIB_NAME));
        out.push(dir.join("third_party/onnxruntime/lib").join(LIB_NAME));
    }
    out
}

static ENVIRONMENT: OnceLock<
    std::result::Result<(ort::environment::Environment, PathBuf), String>,
> = OnceLock::new();

/// Load ONNX Runtime once per process.
pub fn environment() -> Result<(&'static ort::environment::Environment, &'static Path)> {
    let init = ENVIRONMENT.get_or_init(|| {
        let candidates = dylib_candidates();
        let path = candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
            format!(
                "the ONNX Runtime library was not found (looked at {}). Run packaging/setup.sh, which installs it from the PyPI onnxruntime wheel.",
                candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            )
        })?;
        let env = ort::init_from(&path)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?
            .with_name("tamperscope")
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime: {e}"))?;
        Ok((env, path))
    });
    match init {
        Ok((env, path)) => Ok((env, path.as_path())),
        Err(msg) => Err(EngineError::Runtime(msg.clone())),
    }
}

/// A session and the execution provider it runs on.
pub struct ModelSession {
    pub session: Session,
    pub provider: String,
}

impl std::fmt::Debug for ModelSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSession")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

fn rt(e: impl std::fmt::Display) -> EngineError {
    EngineError::Runtime(e.to_string())
}

/// Open a model file. With `Auto`, CUDA is tried first and a failure falls back to CPU; the
/// provider string says what happened (e.g. "CPU (CUDA not available in this ONNX Runtime build)").
pub fn open_session(path: &Path, choice: ProviderChoice, threads: usize) -> Result<ModelSession> {
    let (env, _) = environment()?;
    let cuda_built = ort::ep::CUDA::is_available().unwrap_or(false);
    let mut note = String::new();
    if choice != ProviderChoice::Cpu {
        if cuda_built {
            let attempt = Session::builder(env)
                .map_err(rt)?
                .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                .map_err(rt)
                .and_then(|b| with_threads(b, threads))
                .and_then(|mut b| b.commit_from_file(path).map_err(rt));
            match attempt {
                Ok(session) => {
                    return Ok(ModelSession {
                        session,
                        provider: "CUDA".into(),
                    });
                }
                Err(e) if choice == ProviderChoice::Cuda => return Err(e),
                Err(e) => note = format!(" (CUDA failed: {})", e.to_string().trim()),
            }
        } else if choice == ProviderChoice::Cuda {
            return Err(EngineError::Runtime(
                "CUDA was requested but this ONNX Runtime build has no CUDA execution provider (install onnxruntime-gpu's library)".into(),
            ));
        } else {
            note = " (CUDA not available in this ONNX Runtime build)".into();
        }
    }
    let mut builder = with_threads(Session::builder(env).map_err(rt)?, threads)?;
    let session = builder
        .commit_from_file(path)
        .map_err(|e| EngineError::Runtime(format!("cannot open model {}: {e}", path.display())))?;
    Ok(ModelSession {
        session,
        provider: format!("CPU{note}"),
    })
}

fn with_threads(
    b: ort::session::builder::SessionBuilder,
    threads: usize,
) -> Result<ort::session::builder::SessionBuilder> {
    if threads == 0 {
        return Ok(b);
    }
    b.with_intra_threads(threads).map_err(rt)
}

/// Declared shape of a graph input or output (-1 for dynamic dimensions).
pub fn outlet_shape(outlets: &[ort::value::Outlet], name: &str) -> Option<Vec<i64>> {
    outlets
        .iter()
        .find(|o| o.name() == name)
        .and_then(|o| match o.dtype() {
            ort::value::ValueType::Tensor { shape, .. } => Some(shape.iter().copied().collect()),
            _ => None,
        })
}

/// Check that a session has the input and outputs its manifest entry promises.
pub fn check_contract(
    entry: &crate::models::manifest::ModelEntry,
    session: &Session,
) -> Result<()> {
    let declared = outlet_shape(session.inputs(), &entry.input.name).ok_or_else(|| {
        let names: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
        entry.contract(&format!(
            "the graph has no input '{}' (it has {names:?})",
            entry.input.name
        ))
    })?;
    let expected = &entry.input.shape;
    let compatible = declared.len() == expected.len()
        && declared
            .iter()
            .zip(expected)
            .enumerate()
            .all(|(i, (&d, &e))| d == e || d < 0 || (i == 0 && e < 0));
    if !compatible {
        return Err(entry.contract(&format!(
            "input '{}' has shape {declared:?} in the model file but {expected:?} in the manifest",
            entry.input.name
        )));
    }
    for out in entry.outputs.values() {
        if !session.outputs().iter().any(|o| o.name() == out) {
            let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
            return Err(entry.contract(&format!(
                "the graph has no output '{out}' (it has {names:?})"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_package_library_is_a_candidate() {
        let c = dylib_candidates_near(Path::new("/opt/root/usr/bin/tamperscope"));
        assert!(c.contains(&PathBuf::from(
            "/opt/root/usr/lib/tamperscope/libonnxruntime.so"
        )));
        let c = dylib_candidates_near(Path::new("/usr/bin/tamperscope"));
        assert!(c.contains(&PathBuf::from("/usr/lib/tamperscope/libonnxruntime.so")));
    }
}
