//! App tests (unit tests of the binary crate: `cargo test --release --bin tamperscope`).
