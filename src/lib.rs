//! tamperscope engine: weakly-supervised localisation of image manipulations
//! (`../shared/design/METHOD.md`). No GUI code lives here; the desktop app and the command line
//! both drive this library. The layers, lowest first (see ARCHITECTURE.md):
//!
//! - [`error`], [`digest`]: the one error type every layer returns, and SHA-256 of bytes and files.
//! - [`models`]: model management (METHOD.md section 8): the manifest, where model files are
//!   found and whether they are the right ones, installing them, and opening ONNX sessions.
//! - [`engine`]: the method, stage after stage: [`engine::ela`] (section 1) ->
//!   [`engine::classifier`] + [`engine::cam`] (sections 2-3) -> [`engine::segment`] (section 4)
//!   -> [`engine::similarity`] (section 5) -> [`engine::refine`] (section 6), with the
//!   compression-history and copy-move evidence (section 9) and [`engine::metrics`] (section 7).
//!   [`engine::pipeline`] runs them in order.
//! - [`outputs`]: what an analysis becomes on disk: result folders, reports (JSON, HTML, PDF) and
//!   evaluations.
//!
//! Each layer imports only the layers above it in this list (`tests/layers.rs` checks).

pub mod digest;
pub mod engine;
pub mod error;
pub mod models;
pub mod outputs;

pub use error::{EngineError, Result};

/// Tool version and the commit it was built from.
pub const VERSION: &str = env!("TAMPERSCOPE_VERSION_LONG");
/// The commit the binary was built from ("" outside git; "-dirty" when uncommitted changes were built).
pub const COMMIT: &str = env!("TAMPERSCOPE_COMMIT");
