#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use tinybird_core::*;
pub use tinybird_macros::{Datasource, Endpoint, Row};

#[cfg(feature = "cli")]
pub mod cli;

#[doc(hidden)]
/// Items used by the code `#[derive(Endpoint)]` and `#[derive(Datasource)]` generate. Not part of the public API:
/// anything here may change in any release.
pub mod __private {
    pub use tinybird_core::__private::*;
}
