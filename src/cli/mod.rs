//! A `tinybird` command for your own binary (feature `cli`).
//!
//! Resources are Rust types in your crate, so the command that writes, checks, builds and deploys them has to be
//! compiled with them. Add a small binary that lists the project and hands over to [`main`]:
//!
//! ```no_run
//! use tinybird::project::Project;
//! # use tinybird::datasource::{ColumnDef, DatasourceDef};
//! # fn project() -> Project {
//! #     Project::new().with_datasource(DatasourceDef {
//! #         name: "events".into(),
//! #         columns: vec![ColumnDef { name: "user_id".into(), ty: "UInt64".into(), ..Default::default() }],
//! #         ..Default::default()
//! #     })
//! # }
//!
//! // src/bin/tinybird.rs; with derives this is `Project::new().datasource::<Event>().endpoint::<UserAnalytics>()`.
//! fn main() -> std::process::ExitCode {
//!     tinybird::cli::main(project())
//! }
//! ```
//!
//! Then `cargo run --bin tinybird -- <command>`:
//!
//! | command | what it does |
//! |---|---|
//! | `generate [--out DIR] [--json]` | writes the datafiles under `DIR` (default `tinybird`), or prints them as JSON (`{"artifacts":[{"type","name","relativePath","content"}]}`) |
//! | `check [--against DIR] [--deny-warnings]` | validates names, datafiles and templates offline; warns about pipes reading unknown datasources; with `--against`, fails when `DIR`'s datafiles differ from the project |
//! | `build [--local \| --url URL] [--dry-run]` | `POST /v1/build` on Tinybird Local (`http://localhost:7181`) or `URL`; the token is `TINYBIRD_TOKEN`, else Tinybird Local's `workspace_admin_token` from `GET /tokens` |
//! | `deploy [--check] [--allow-destructive-operations] [--no-wait] [--no-auto] [--dry-run]` | the `/v1/deploy` flow against `TINYBIRD_URL` (default `https://api.tinybird.co`) with `TINYBIRD_TOKEN`; `--no-auto` stages the deployment, `--no-wait` returns once it is accepted |
//! | `promote [--id ID]` | makes a staged deployment live (the newest one by default) and removes the one it replaces |
//! | `discard [--id ID]` | deletes a deployment that is not live (the newest one by default) |
//! | `help [COMMAND]`, `--help`, `--version` | help and the SDK version |
//!
//! Progress goes to stderr, results to stdout. Tokens are never printed, and URLs are printed without credentials or
//! query strings.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (including "no changes") |
//! | 1 | failed: the server refused the build or deployment, a check failed, the server was unreachable, or files could not be written |
//! | 2 | usage error: unknown command or option, missing value |
//! | 3 | configuration error: missing token (and no Tinybird Local to ask), token rejected (401/403), invalid URL |
//!
//! # Embedding
//!
//! [`main`] reads the process's arguments and environment and writes to stdout/stderr. [`Cli`] does the same with
//! everything injectable (arguments, environment, captured output), for tests or for a binary that already runs a
//! Tokio runtime.

mod args;
mod commands;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use crate::project::Project;

/// Runs the command with the process's arguments and environment, printing to stdout/stderr, and returns the exit
/// code (see the [module docs](self)). Starts its own Tokio runtime, so call it from a plain `fn main`, not from
/// inside a runtime (use [`Cli::run`] there; called inside one, it prints an error and returns exit code 1).
pub fn main(project: Project) -> ExitCode {
    let mut args = std::env::args_os();
    let bin = args
        .next()
        .and_then(|p| std::path::Path::new(&p).file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "tinybird".to_owned());
    Cli::new(project).bin_name(bin).main_with_args(args)
}

/// Runs the command with `args` (without the program name), the process's environment and stdout/stderr. Errors are
/// returned, not printed; [`CliError::exit_code`] gives the code to exit with.
pub async fn run<I, S>(project: &Project, args: I) -> Result<(), CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    Cli::new(project.clone()).run(args).await
}

/// The command with its inputs and outputs configurable: the environment it reads, where it writes, the program
/// name in help texts.
///
/// ```
/// # use tinybird::project::Project;
/// # use tinybird::datasource::{ColumnDef, DatasourceDef};
/// use tinybird::cli::{Cli, Output};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let project = Project::new().with_datasource(DatasourceDef {
/// #     name: "events".into(),
/// #     columns: vec![ColumnDef { name: "user_id".into(), ty: "UInt64".into(), ..Default::default() }],
/// #     ..Default::default()
/// # });
/// let output = Output::captured();
/// let cli = Cli::new(project).env_clear().output(output.clone());
/// cli.run(["generate", "--json"]).await.unwrap();
/// assert!(output.stdout_text().contains("datasources/events.datasource"));
/// # }
/// ```
#[must_use]
pub struct Cli {
    project: Project,
    bin_name: String,
    inherit_env: bool,
    env: BTreeMap<String, Option<String>>,
    output: Output,
}

impl fmt::Debug for Cli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Variable values may be tokens: only their names are shown.
        let env: Vec<(&str, bool)> = self.env.iter().map(|(k, v)| (k.as_str(), v.is_some())).collect();
        f.debug_struct("Cli")
            .field("project", &self.project)
            .field("bin_name", &self.bin_name)
            .field("inherit_env", &self.inherit_env)
            .field("env (name, set)", &env)
            .field("output", &self.output)
            .finish()
    }
}

impl Cli {
    /// The command for `project`, reading the process's environment and writing to stdout/stderr.
    pub fn new(project: Project) -> Self {
        Cli { project, bin_name: "tinybird".to_owned(), inherit_env: true, env: BTreeMap::new(), output: Output::std() }
    }

    /// The program name shown in help texts (default `tinybird`).
    pub fn bin_name(mut self, name: impl Into<String>) -> Self {
        self.bin_name = name.into();
        self
    }

    /// Sets an environment variable for this command only (the process's environment is not changed).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), Some(value.into()));
        self
    }

    /// Hides an environment variable from this command.
    pub fn env_remove(mut self, name: impl Into<String>) -> Self {
        self.env.insert(name.into(), None);
        self
    }

    /// Ignores the process's environment: only variables set with [`env`](Self::env) are seen.
    pub fn env_clear(mut self) -> Self {
        self.inherit_env = false;
        self.env.retain(|_, v| v.is_some());
        self
    }

    /// Where results and progress are written.
    pub fn output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// Runs the command with `args` (without the program name). Nothing is printed for the returned error: the
    /// caller decides (see [`main_with_args`](Self::main_with_args)).
    pub async fn run<I, S>(&self, args: I) -> Result<(), CliError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        commands::run(self, args::parse(args)?).await
    }

    /// Runs the command on a new single-threaded Tokio runtime, prints an error as `error: …` on stderr, and returns
    /// the exit code. Inside a Tokio runtime it does not start one: it prints an error and returns exit code 1.
    pub fn main_with_args<I, S>(&self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            // Starting a runtime inside another one panics; say what to do instead.
            self.output.err(
                "error: the tinybird command was started inside a Tokio runtime; \
                 there, call `tinybird::cli::Cli::new(project).run(args).await` instead",
            );
            return ExitCode::from(CliErrorKind::Failed.exit_code());
        }
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                self.output.err(&format!("error: cannot start the async runtime: {e}"));
                return ExitCode::from(CliErrorKind::Failed.exit_code());
            }
        };
        match runtime.block_on(self.run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let mut text = format!("error: {e}");
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    text.push_str(&format!("\n  caused by: {c}"));
                    cause = c.source();
                }
                self.output.err(&text);
                if e.kind() == CliErrorKind::Usage {
                    self.output.err(&format!("Run `{} --help` for usage.", self.bin_name));
                }
                ExitCode::from(e.exit_code())
            }
        }
    }

    fn var(&self, name: &str) -> Option<String> {
        let value = match self.env.get(name) {
            Some(v) => v.clone(),
            None if self.inherit_env => std::env::var(name).ok(),
            None => None,
        };
        value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }
}

/// Where the command writes: results to "stdout", progress, warnings and errors to "stderr". Either the process's
/// streams or in-memory buffers. Cheap to clone; clones share the buffers.
#[derive(Clone, Debug)]
pub struct Output {
    out: Sink,
    err: Sink,
}

#[derive(Clone, Debug)]
enum Sink {
    Stdout,
    Stderr,
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl Sink {
    fn line(&self, text: &str) {
        // A closed pipe (`| head`) must not turn a finished deploy into a failure, so write errors are ignored.
        match self {
            Sink::Stdout => {
                let _ = writeln!(std::io::stdout().lock(), "{text}");
            }
            Sink::Stderr => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
            Sink::Buffer(buf) => {
                let mut buf = buf.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                buf.extend_from_slice(text.as_bytes());
                buf.push(b'\n');
            }
        }
    }

    fn text(&self) -> String {
        match self {
            Sink::Buffer(buf) => {
                String::from_utf8_lossy(&buf.lock().unwrap_or_else(|poisoned| poisoned.into_inner())).into_owned()
            }
            _ => String::new(),
        }
    }
}

impl Output {
    /// The process's stdout and stderr.
    pub fn std() -> Self {
        Output { out: Sink::Stdout, err: Sink::Stderr }
    }

    /// In-memory buffers, read back with [`stdout_text`](Self::stdout_text) and [`stderr_text`](Self::stderr_text).
    pub fn captured() -> Self {
        Output { out: Sink::Buffer(Arc::default()), err: Sink::Buffer(Arc::default()) }
    }

    /// What was written to stdout (empty unless [`captured`](Self::captured)).
    pub fn stdout_text(&self) -> String {
        self.out.text()
    }

    /// What was written to stderr (empty unless [`captured`](Self::captured)).
    pub fn stderr_text(&self) -> String {
        self.err.text()
    }

    fn out(&self, line: &str) {
        self.out.line(line);
    }

    fn err(&self, line: &str) {
        self.err.line(line);
    }
}

/// Why the command failed, broadly; each kind has its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliErrorKind {
    /// Exit code 1: the server refused, a check failed, the server was unreachable, files could not be written.
    Failed,
    /// Exit code 2: the command line is wrong.
    Usage,
    /// Exit code 3: configuration: missing or rejected token, invalid URL.
    Config,
}

impl CliErrorKind {
    /// The process exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            CliErrorKind::Failed => 1,
            CliErrorKind::Usage => 2,
            CliErrorKind::Config => 3,
        }
    }
}

/// A failed command: a kind (and so an exit code) and a message. The message never contains a token.
#[derive(Debug)]
pub struct CliError {
    kind: CliErrorKind,
    message: String,
    source: Option<crate::error::Error>,
}

impl CliError {
    fn new(kind: CliErrorKind, message: impl Into<String>) -> Self {
        CliError { kind, message: message.into(), source: None }
    }

    fn usage(message: impl Into<String>) -> Self {
        Self::new(CliErrorKind::Usage, message)
    }

    fn config(message: impl Into<String>) -> Self {
        Self::new(CliErrorKind::Config, message)
    }

    fn failed(message: impl Into<String>) -> Self {
        Self::new(CliErrorKind::Failed, message)
    }

    /// A client error, classified: configuration and auth problems are [`CliErrorKind::Config`], the rest
    /// [`CliErrorKind::Failed`].
    fn client(error: crate::error::Error) -> Self {
        use crate::error::ErrorKind;
        let kind = match error.kind() {
            ErrorKind::Config | ErrorKind::Auth | ErrorKind::Forbidden => CliErrorKind::Config,
            _ => CliErrorKind::Failed,
        };
        let mut message = error.to_string();
        if matches!(error.kind(), ErrorKind::Auth | ErrorKind::Forbidden) {
            message.push_str("\n(hint: the token must be a workspace admin token of this workspace and region)");
        }
        CliError { kind, message, source: Some(error) }
    }

    /// The broad kind.
    pub fn kind(&self) -> CliErrorKind {
        self.kind
    }

    /// The process exit code: 1, 2 or 3 (see the [module docs](self)).
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// The client error behind this one, when a server call failed (for its status and per-file errors).
    pub fn client_error(&self) -> Option<&crate::error::Error> {
        self.source.as_ref()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {
    /// The message already is the client error's text: the chain goes on with that error's cause (the transport
    /// error behind a failed request), so nothing is printed twice.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().and_then(|e| std::error::Error::source(e))
    }
}
