#![doc = include_str!("../README.md")]
// Only `engine::clickhouse::chdb` (loading chDB's library) needs `unsafe`, and it says why at each block.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod engine;
pub(crate) mod format;
pub(crate) mod ingest;
pub mod resources;
mod server;
pub mod template;
pub(crate) mod types;

pub use resources::{FileError, FileErrors, Pipe, Resources};
pub use server::{Config, EngineKind, LocalServer, LocalServerBuilder, StartError};
