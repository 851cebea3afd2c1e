//! tamperscope engine: weakly-supervised localisation of image manipulations
//! (`../shared/design/METHOD.md`). No GUI code lives here; the desktop app and the command line
//! both drive this library.
//!
//! The modules follow the method, stage after stage:
//! [`ela`] (section 1) -> [`classifier`] + [`cam`] (sections 2-3) -> [`segment`] (section 4)
//! -> [`similarity`] (section 5) -> [`refine`] (section 6), with [`metrics`] (section 7) and
//! [`manifest`] / [`registry`] (section 8). [`pipeline`] runs them in order.

pub mod cam;
pub mod classifier;
pub mod colormap;
pub mod compression;
pub mod copymove;
pub mod ela;
pub mod error;
pub mod eval;
pub mod eval_compare;
pub mod imageio;
pub mod install;
pub mod jpeg;
pub mod manifest;
pub mod metrics;
pub mod npy;
pub mod output;
pub mod pipeline;
pub mod raster;
pub mod refine;
pub mod registry;
pub mod report;
pub mod rng;
pub mod runtime;
pub mod segment;
pub mod similarity;

pub use error::{EngineError, Result};

/// Tool version and the commit it was built from.
pub const VERSION: &str = env!("TAMPERSCOPE_VERSION_LONG");
/// The commit the binary was built from ("" outside git; "-dirty" when uncommitted changes were built).
pub const COMMIT: &str = env!("TAMPERSCOPE_COMMIT");
