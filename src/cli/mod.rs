//! The command line: one file per subcommand, each with its clap arguments and a `run` that
//! returns whether everything succeeded. Shared option groups and helpers live in [`common`].
//! Uses the library's layers; never the app.

pub mod analyze;
pub mod bench;
pub mod common;
pub mod compare;
pub mod ela;
pub mod eval;
pub mod models;
pub mod verify;
