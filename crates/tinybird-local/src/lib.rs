#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod engine;
pub mod format;
pub mod ingest;
pub mod resources;
mod server;
pub mod template;
pub mod types;

pub use resources::{FileError, FileErrors, Pipe, Resources};
pub use server::{Config, LocalServer, LocalServerBuilder, StartError};
