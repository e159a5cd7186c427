#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The public API, named item by item (the runtime lives in `tinybird-core`; nothing else of it is public here).
pub use tinybird_core::{
    client, connections, datafile, datasource, endpoint, error, filter, jwt, params, pipes, project, row, types,
};

pub use tinybird_core::client::{Client, ClientBuilder};
pub use tinybird_core::error::{Error, ErrorKind, Result};
pub use tinybird_core::params::QueryParams;
pub use tinybird_core::{Datasource, DatasourceDef, Endpoint, EndpointDef, FixedParams, Row};
pub use tinybird_macros::{Datasource, Endpoint, Row};

/// A copy pipe's cron schedule, checked when the code compiles: `tinybird::cron!("0 * * * *")`.
pub use tinybird_core::cron;

// A module of its own with a glob, not a re-export of `tinybird_core::check`: only this way does the compiler name
// the traits briefly (`AcceptsDateTime`, not `tinybird::__private::check::AcceptsDateTime`) in the derives' errors.
pub mod check {
    //! Which Rust types each typed template function takes: a parameter read by `{{F(x)}}` must implement `F`'s
    //! trait here, which `#[derive(Endpoint)]` asserts at compile time.
    pub use tinybird_core::check::*;
}

#[cfg(feature = "cli")]
pub mod cli;

#[doc(hidden)]
/// Items used by the code `#[derive(Endpoint)]` and `#[derive(Datasource)]` generate. Not part of the public API:
/// anything here may change in any release.
pub mod __private {
    pub use tinybird_core::__private::*;
}
