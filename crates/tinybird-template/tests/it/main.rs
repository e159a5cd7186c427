//! tinybird-template's integration tests, one binary: the public API, analysis, errors, properties, and the
//! reference renderer's vectors.

mod analysis;
mod api;
mod errors;
mod properties;
mod vectors;
