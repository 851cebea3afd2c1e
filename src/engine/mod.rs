//! The method (METHOD.md), one module per stage. [`pipeline`] runs the stages in order; each
//! stage is a function from data to data that a test can call alone. The engine uses model
//! management ([`crate::models`]) and never imports outputs, the command line or the app.

// Decoding and the pixel containers every stage works on.
pub mod imageio;
pub mod raster;
pub mod rng;

// Section 1: signed error levels.
pub mod ela;
// Sections 2-3: image-level classifier and Grad-CAM.
pub mod cam;
pub mod classifier;
// Section 9: compression-history evidence (JPEG coefficients as stored, A-DJPG / NA-DJPG).
pub mod compression;
pub mod jpeg;
// Copy-move evidence.
pub mod copymove;
// Section 4: segmenters.
pub mod segment;
// Section 5: similarity and choice of mask.
pub mod similarity;
// Section 6: Bayesian refinement.
pub mod refine;
// Section 7: pixel- and image-level scores.
pub mod metrics;

// All stages in order, for one image.
pub mod pipeline;
