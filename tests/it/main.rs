//! The `tinybird` crate's integration tests, one binary: the derives (attributes, seed, template functions,
//! compile-fail cases), the client against an in-process `tinybird-local`, the `tinybird` command, the examples, and
//! the browser test. `scripts/test.sh` runs `client_local::` and `examples::` again on the ClickHouse engine.

/// The `token_server` example, shared by the examples' tests and the browser test.
#[path = "../../examples/token_server/main.rs"]
mod token_server;

mod browser;
mod cli;
mod client_local;
mod derive_attrs;
mod derive_compile_fail;
mod derive_seed;
mod derive_template_fns;
mod examples;
mod tb_parser;
