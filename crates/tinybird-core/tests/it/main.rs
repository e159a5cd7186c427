//! tinybird-core's integration tests, one binary: the client against a mock server, datafiles, JWTs and types.
//! (The one test that changes the process environment is alone in `tests/environment.rs`.)

mod client_support;
mod jwt_support;

mod client_admin;
mod client_ingest;
mod client_query;
mod client_stream_sql;
mod connections;
mod datafile_golden;
mod datafile_parse;
mod datafile_project;
mod datafile_roundtrip;
mod datafile_settings;
mod jwt_cache;
mod jwt_filter_escaping;
mod jwt_interop;
mod jwt_sign;
mod jwt_verify;
mod types_model;
mod types_params;
mod types_serde;
