//! What an analysis becomes for people and other programs: the result folder of `analyze`
//! ([`output`]), reports ([`report`]: the document, its HTML and its PDF), evaluations on labelled
//! datasets ([`eval`], [`eval_compare`]), colour maps and `.npy` arrays. Uses the engine and
//! model management; neither of them imports anything here.

pub mod colormap;
pub mod eval;
pub mod eval_compare;
pub mod npy;
pub mod output;
pub mod report;
