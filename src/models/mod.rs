//! Model management (METHOD.md section 8): the manifest (what each model file is and how to feed
//! it), the registry (where model files are found, whether they are the files the manifest names),
//! installing a model file, and opening ONNX Runtime sessions. Knows nothing of the engine's
//! stages: a segmenter's or classifier's manifest section is plain data owned by [`manifest`].
//! Direction inside: `manifest` <- `install` <- `registry`; `runtime` uses `manifest`.

pub mod install;
pub mod manifest;
pub mod registry;
pub mod runtime;
