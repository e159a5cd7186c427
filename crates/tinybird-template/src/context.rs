//! The state of one render: the template, its variables and options, and what the render has produced so far.
//! Shared by the interpreter (`render`) and the template functions (`funcs`).

use std::collections::HashMap;

use crate::Inner as Template;
use crate::value::Value;
use crate::vars::{Hints, RenderOptions, Variables};

/// Most loop iterations (for + while, all loops together) one render may run.
pub const MAX_LOOP_ITERATIONS: usize = 1_000_000;
/// Largest SQL (or intermediate string/list) one render may build, in bytes/elements.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024 * 1024;

pub(crate) struct Ctx<'a> {
    pub tpl: &'a Template,
    pub vars: &'a Variables,
    pub opts: &'a RenderOptions,
    pub preprocessed: HashMap<&'a str, Value>,
    pub locals: HashMap<String, Value>,
    pub out: String,
    pub hints: Hints,
    pub query_params: Vec<String>,
    pub iterations: usize,
    pub secret_test_mode: bool,
    pub job_timestamp: Option<String>,
}
