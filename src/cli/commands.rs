//! The subcommands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use super::args::{self, Invocation};
use super::{Cli, CliError, Output};
use crate::client::{BuildResult, Client, DeployOptions, DeployOutcome, DeployProgress, Feedback};
use crate::project::{Project, ProjectFile};

/// Tinybird Local's default address.
const LOCAL_URL: &str = "http://localhost:7181";
/// The default API host of `deploy`.
const DEFAULT_URL: &str = "https://api.tinybird.co";
/// Where `generate` writes without `--out`.
const DEFAULT_OUT: &str = "tinybird";
/// How long to wait for Tinybird Local's `GET /tokens` (it answers at once when it is up).
const LOCAL_TOKEN_TIMEOUT: Duration = Duration::from_secs(5);

type Opts = BTreeMap<&'static str, Option<String>>;

pub(super) async fn run(cli: &Cli, invocation: Invocation) -> Result<(), CliError> {
    let out = &cli.output;
    match invocation {
        Invocation::Help => {
            out.out(args::help(&cli.bin_name).trim_end());
            Ok(())
        }
        Invocation::CommandHelp(name) => {
            out.out(args::command_help(&cli.bin_name, name).trim_end());
            Ok(())
        }
        Invocation::Version => {
            let version = env!("CARGO_PKG_VERSION");
            if cli.bin_name == "tinybird" {
                out.out(&format!("tinybird {version}"));
            } else {
                out.out(&format!("{} (tinybird {version})", cli.bin_name));
            }
            Ok(())
        }
        Invocation::Run { command, opts } => match command {
            "generate" => generate(cli, &opts),
            "check" => check(cli, &opts),
            "build" => build(cli, &opts).await,
            "deploy" => deploy(cli, &opts).await,
            "promote" => promote(cli, &opts).await,
            "discard" => discard(cli, &opts).await,
            other => Err(CliError::usage(format!("unknown command `{other}`"))),
        },
    }
}

fn value<'a>(opts: &'a Opts, name: &str) -> Option<&'a str> {
    opts.get(name).and_then(|v| v.as_deref())
}

fn flag(opts: &Opts, name: &str) -> bool {
    opts.contains_key(name)
}

/// Every problem of the project: errors (each resource checked on its own, so all are reported, not the first) and
/// warnings (from [`Project::validate`], once the project is valid).
struct Findings {
    errors: Vec<String>,
    warnings: Vec<String>,
}

fn findings(project: &Project) -> Findings {
    let mut errors = Vec::new();
    let resources: Vec<(&str, &str, Project)> = project
        .datasources()
        .iter()
        .map(|d| ("datasource", d.name.as_str(), Project::new().with_datasource(d.clone())))
        .chain(
            project.endpoints().iter().map(|e| ("endpoint", e.name.as_str(), Project::new().with_endpoint(e.clone()))),
        )
        .chain(project.pipes().iter().map(|p| ("pipe", p.name.as_str(), Project::new().with_pipe(p.clone()))))
        .collect();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (kind, name, alone) in &resources {
        if let Some((first, _)) = seen.iter().find(|(_, n)| n == name) {
            errors.push(format!("two resources are named `{name}` ({first} and {kind})"));
        }
        seen.push((kind, name));
        // Alone, a resource can only fail on its own name or datafile; its references are checked below.
        if let Err(e) = alone.validate() {
            errors.push(e.to_string());
        }
    }
    let mut warnings = Vec::new();
    if errors.is_empty() {
        match project.validate() {
            Ok(list) => warnings.extend(list.iter().map(ToString::to_string)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Findings { errors, warnings }
}

fn invalid(errors: &[String]) -> CliError {
    let mut message = if errors.len() == 1 {
        "the project is invalid:".to_owned()
    } else {
        format!("the project is invalid ({} problems):", errors.len())
    };
    for e in errors {
        message.push_str("\n  ");
        message.push_str(e);
    }
    CliError::failed(message)
}

/// Validates the project, prints its warnings and returns its datafiles.
fn valid_files(cli: &Cli) -> Result<Vec<ProjectFile>, CliError> {
    let found = findings(&cli.project);
    if !found.errors.is_empty() {
        return Err(invalid(&found.errors));
    }
    for w in &found.warnings {
        cli.output.err(&format!("warning: {w}"));
    }
    let files = cli.project.files().map_err(|e| invalid(&[e.to_string()]))?;
    if files.is_empty() {
        return Err(CliError::failed("the project has no datasources, endpoints or pipes"));
    }
    Ok(files)
}

fn kind_of(path: &str) -> &'static str {
    if path.starts_with("datasources/") {
        "datasource"
    } else if path.starts_with("endpoints/") {
        "endpoint"
    } else {
        "pipe"
    }
}

fn name_of(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.').map_or(file, |(stem, _)| stem)
}

fn generate(cli: &Cli, opts: &Opts) -> Result<(), CliError> {
    if flag(opts, "json") && flag(opts, "out") {
        return Err(CliError::usage(
            "`--json` prints the datafiles instead of writing them, so it cannot be combined with `--out`",
        ));
    }
    let files = valid_files(cli)?;
    if flag(opts, "json") {
        let artifacts: Vec<serde_json::Value> = files
            .iter()
            .map(|file| {
                serde_json::json!({
                    "type": kind_of(&file.path),
                    "name": name_of(&file.path),
                    "relativePath": file.path,
                    "content": file.content,
                })
            })
            .collect();
        let json = serde_json::json!({ "artifacts": artifacts });
        cli.output.out(&json.to_string());
        return Ok(());
    }
    let dir = PathBuf::from(value(opts, "out").unwrap_or(DEFAULT_OUT));
    cli.output.err(&format!("Writing {} to {}", count(files.len(), "datafile"), dir.display()));
    cli.project.write_to(&dir).map_err(|e| CliError::failed(format!("cannot write the datafiles: {e}")))?;
    for file in &files {
        cli.output.out(&dir.join(&file.path).display().to_string());
    }
    let written: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for stale in datafiles_under(&dir)?.into_iter().filter(|p| !written.contains(&p.as_str())) {
        cli.output.err(&format!(
            "warning: {} is not part of the project (left in place; delete it if the resource is gone)",
            dir.join(stale).display()
        ));
    }
    Ok(())
}

/// Relative paths (with `/`) of the `.datasource` and `.pipe` files under `dir`, sorted.
fn datafiles_under(dir: &Path) -> Result<Vec<String>, CliError> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("datasource" | "pipe")) {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out).map_err(|e| CliError::failed(format!("cannot list {}: {e}", dir.display())))?;
    out.sort();
    Ok(out)
}

fn check(cli: &Cli, opts: &Opts) -> Result<(), CliError> {
    let project = &cli.project;
    let found = findings(project);
    for w in &found.warnings {
        cli.output.err(&format!("warning: {w}"));
    }
    if !found.errors.is_empty() {
        return Err(invalid(&found.errors));
    }
    let mut summary = format!(
        "ok: {}, {}, {}",
        count(project.datasources().len(), "datasource"),
        count(project.endpoints().len(), "endpoint"),
        count(project.pipes().len(), "pipe")
    );
    if let Some(dir) = value(opts, "against") {
        let differences = compare(project, Path::new(dir))?;
        if !differences.is_empty() {
            let mut message = format!("the project differs from the datafiles in {dir}:");
            for d in &differences {
                message.push_str("\n  ");
                message.push_str(d);
            }
            return Err(CliError::failed(message));
        }
        summary.push_str(&format!("; same as the datafiles in {dir}"));
    }
    if flag(opts, "deny-warnings") && !found.warnings.is_empty() {
        return Err(CliError::failed(format!(
            "{}, and --deny-warnings is set",
            count(found.warnings.len(), "warning")
        )));
    }
    if !found.warnings.is_empty() {
        summary.push_str(&format!(" ({})", count(found.warnings.len(), "warning")));
    }
    cli.output.out(&summary);
    Ok(())
}

/// Differences between the project and the datafiles in `dir`. Both are compared in the form this SDK writes
/// (`dir`'s files are parsed and written again), so formatting, comments and folder layout do not count.
fn compare(project: &Project, dir: &Path) -> Result<Vec<String>, CliError> {
    let theirs = Project::from_dir(dir)
        .and_then(|p| p.files())
        .map_err(|e| CliError::failed(format!("cannot read the datafiles in {}: {e}", dir.display())))?;
    let ours = project.files().map_err(|e| invalid(&[e.to_string()]))?;
    let theirs: BTreeMap<&str, &str> = theirs.iter().map(|f| (f.path.as_str(), f.content.as_str())).collect();
    let ours: BTreeMap<&str, &str> = ours.iter().map(|f| (f.path.as_str(), f.content.as_str())).collect();
    let mut out = Vec::new();
    for (path, text) in &ours {
        match theirs.get(path) {
            None => out.push(format!("{path}: only in the project")),
            Some(other) if other != text => out.push(format!("{path}: {}", first_difference(text, other))),
            Some(_) => {}
        }
    }
    for path in theirs.keys().filter(|p| !ours.contains_key(*p)) {
        out.push(format!("{path}: only in {}", dir.display()));
    }
    Ok(out)
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn first_difference(ours: &str, theirs: &str) -> String {
    let (mut a, mut b) = (ours.lines(), theirs.lines());
    let mut line = 1;
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => line += 1,
            (Some(x), Some(y)) => {
                return format!("differs at line {line}: project `{x}`, folder `{y}`");
            }
            (Some(x), None) => {
                return format!("differs at line {line}: project `{x}`, folder ends");
            }
            (None, Some(y)) => {
                return format!("differs at line {line}: project ends, folder `{y}`");
            }
            (None, None) => return "differs in whitespace at line ends".to_owned(),
        }
    }
}

/// Parses a base URL the way the client does (no scheme means https) and returns it for display: without
/// credentials, query string or fragment. The raw value is never echoed, since it may hold a secret.
fn display_url(raw: &str, source: &str) -> Result<String, CliError> {
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("https://{raw}") };
    let mut url =
        Url::parse(&with_scheme).map_err(|e| CliError::config(format!("{source} is not a valid URL: {e}")))?;
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn list_files(output: &Output, files: &[ProjectFile]) {
    for file in files {
        output.out(&format!("{} ({} bytes)", file.path, file.content.len()));
    }
}

fn print_feedback(output: &Output, feedback: &[Feedback]) {
    for f in feedback {
        let level = if f.level.eq_ignore_ascii_case("warning") { "warning" } else { "info" };
        match &f.resource {
            Some(r) => output.err(&format!("{level}: [{r}] {}", f.message)),
            None => output.err(&format!("{level}: {}", f.message)),
        }
    }
}

async fn build(cli: &Cli, opts: &Opts) -> Result<(), CliError> {
    if flag(opts, "local") && flag(opts, "url") {
        return Err(CliError::usage("`--local` and `--url` cannot be used together"));
    }
    let (raw_url, source) = match value(opts, "url") {
        Some(url) => (url.to_owned(), "--url"),
        None => (LOCAL_URL.to_owned(), "the Tinybird Local URL"),
    };
    let shown = display_url(&raw_url, source)?;
    let files = valid_files(cli)?;
    if flag(opts, "dry-run") {
        cli.output.err(&format!("Dry run: would build {} on {shown}", count(files.len(), "datafile")));
        list_files(&cli.output, &files);
        return Ok(());
    }
    let token = match cli.var("TINYBIRD_TOKEN") {
        Some(token) => token,
        None => {
            cli.output
                .err(&format!("No TINYBIRD_TOKEN: asking Tinybird Local at {shown} for its workspace admin token"));
            local_token(&raw_url, &shown).await?
        }
    };
    let client = Client::builder().base_url(raw_url).token(token).build().map_err(CliError::client)?;
    cli.output.err(&format!("Building {} on {shown}", count(files.len(), "datafile")));
    let result = client.build(&files).await.map_err(CliError::client)?;
    print_build(&cli.output, &result);
    Ok(())
}

fn print_build(output: &Output, result: &BuildResult) {
    print_feedback(
        output,
        &result.feedback.iter().filter(|f| !f.level.eq_ignore_ascii_case("error")).cloned().collect::<Vec<_>>(),
    );
    if result.result == "no_changes" {
        output.out("build: no changes");
        return;
    }
    output.out("build: success");
    let lists = [
        ("new datasources", &result.new_datasource_names),
        ("changed datasources", &result.changed_datasource_names),
        ("deleted datasources", &result.deleted_datasource_names),
        ("new pipes", &result.new_pipe_names),
        ("changed pipes", &result.changed_pipe_names),
        ("deleted pipes", &result.deleted_pipe_names),
    ];
    for (label, names) in lists {
        if !names.is_empty() {
            output.out(&format!("  {label}: {}", names.join(", ")));
        }
    }
}

/// Tinybird Local's workspace admin token, from `GET /tokens`. The token is returned, never shown.
async fn local_token(raw_url: &str, shown: &str) -> Result<String, CliError> {
    let hint = "start Tinybird Local (or `tinybird-local`), or set TINYBIRD_TOKEN";
    let fail = |detail: String| CliError::config(format!("no TINYBIRD_TOKEN, and {detail}: {hint}"));
    let url = format!("{}/tokens", raw_url.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(LOCAL_TOKEN_TIMEOUT)
        .build()
        .map_err(|e| fail(format!("no HTTP client could be built ({e})")))?;
    let resp = http
        .get(&url)
        .send()
        .await
        .map_err(|e| fail(format!("{shown}/tokens did not answer ({})", error_chain(&e.without_url()))))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!("{shown}/tokens answered HTTP {}", status.as_u16())));
    }
    let body: serde_json::Value =
        resp.json().await.map_err(|_| fail(format!("{shown}/tokens did not answer with JSON")))?;
    body.get("workspace_admin_token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| fail(format!("{shown}/tokens has no `workspace_admin_token`")))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The workspace URL (`TINYBIRD_URL`, else `TINYBIRD_HOST`, else Tinybird's default) and how to show it.
fn workspace_url(cli: &Cli) -> Result<(String, String), CliError> {
    let (raw_url, source) = match cli.var("TINYBIRD_URL") {
        Some(url) => (url, "TINYBIRD_URL"),
        None => match cli.var("TINYBIRD_HOST") {
            Some(url) => (url, "TINYBIRD_HOST"),
            None => (DEFAULT_URL.to_owned(), "the default URL"),
        },
    };
    let shown = display_url(&raw_url, source)?;
    Ok((raw_url, shown))
}

fn workspace_client(cli: &Cli, raw_url: String) -> Result<Client, CliError> {
    let token = cli.var("TINYBIRD_TOKEN").ok_or_else(|| {
        CliError::config("no token: set TINYBIRD_TOKEN to a workspace admin token of the workspace to deploy to")
    })?;
    Client::builder().base_url(raw_url).token(token).build().map_err(CliError::client)
}

/// `promote [--id ID]`: the newest staged deployment (data ready, not live), or `ID`.
async fn promote(cli: &Cli, opts: &Opts) -> Result<(), CliError> {
    let (raw_url, shown) = workspace_url(cli)?;
    let client = workspace_client(cli, raw_url)?;
    let id = match value(opts, "id") {
        Some(id) => id.to_owned(),
        None => {
            let list = client.deployments().await.map_err(CliError::client)?;
            let staged = list.iter().rev().find(|d| !d.is_live() && d.status == "data_ready");
            staged.map(|d| d.id.clone()).ok_or_else(|| {
                CliError::failed(format!("no staged deployment on {shown} (deploy --no-auto stages one)"))
            })?
        }
    };
    cli.output.err(&format!("Promoting deployment {id} on {shown}"));
    let previous = client.promote_deployment(&id).await.map_err(CliError::client)?;
    match previous.filter(|p| *p != id) {
        Some(prev) => cli.output.out(&format!("promote: deployment {id} is live (replaced deployment {prev})")),
        None => cli.output.out(&format!("promote: deployment {id} is live")),
    }
    Ok(())
}

/// `discard [--id ID]`: the newest deployment that is not live, or `ID`.
async fn discard(cli: &Cli, opts: &Opts) -> Result<(), CliError> {
    let (raw_url, shown) = workspace_url(cli)?;
    let client = workspace_client(cli, raw_url)?;
    let id = match value(opts, "id") {
        Some(id) => id.to_owned(),
        None => {
            let list = client.deployments().await.map_err(CliError::client)?;
            let staged = list.iter().rev().find(|d| !d.is_live());
            staged
                .map(|d| d.id.clone())
                .ok_or_else(|| CliError::failed(format!("no deployment to discard on {shown} (only the live one)")))?
        }
    };
    client.discard_deployment(&id).await.map_err(CliError::client)?;
    cli.output.out(&format!("discard: deployment {id} discarded"));
    Ok(())
}

async fn deploy(cli: &Cli, opts: &Opts) -> Result<(), CliError> {
    let (raw_url, shown) = workspace_url(cli)?;
    let files = valid_files(cli)?;
    if flag(opts, "dry-run") {
        cli.output.err(&format!("Dry run: would deploy {} to {shown}", count(files.len(), "datafile")));
        list_files(&cli.output, &files);
        return Ok(());
    }
    let client = workspace_client(cli, raw_url)?;
    let progress = cli.output.clone();
    let shown_for_progress = shown.clone();
    let options = DeployOptions::default()
        .check(flag(opts, "check"))
        .allow_destructive(flag(opts, "allow-destructive-operations"))
        .wait(!flag(opts, "no-wait"))
        .promote(!flag(opts, "no-auto"))
        .on_progress(move |step| progress.err(&describe(step, &shown_for_progress)));
    if flag(opts, "check") {
        cli.output.err(&format!("Checking a deployment of {} on {shown}", count(files.len(), "datafile")));
    }
    let outcome = client.deploy(&files, &options).await.map_err(CliError::client)?;
    match outcome {
        DeployOutcome::NoChanges => cli.output.out("deploy: no changes (the workspace already runs this project)"),
        DeployOutcome::Checked { feedback } => {
            print_feedback(&cli.output, &feedback);
            cli.output.out("deploy check: ok (nothing was changed)");
        }
        DeployOutcome::Deployed { id, previous, feedback } => {
            print_feedback(&cli.output, &feedback);
            match previous.filter(|p| *p != id) {
                Some(prev) => cli.output.out(&format!("deploy: deployment {id} is live (replaced deployment {prev})")),
                None => cli.output.out(&format!("deploy: deployment {id} is live")),
            }
        }
        DeployOutcome::Submitted { id, auto_promote, feedback } => {
            print_feedback(&cli.output, &feedback);
            if auto_promote {
                cli.output.out(&format!("deploy: deployment {id} submitted; the server promotes it when it is ready"));
            } else {
                cli.output.out(&format!("deploy: deployment {id} submitted (staged; promote or discard it)"));
            }
        }
        DeployOutcome::Staged { id, feedback } => {
            print_feedback(&cli.output, &feedback);
            cli.output
                .out(&format!("deploy: deployment {id} is staged (not live): promote --id {id}, or discard --id {id}"));
        }
        other => cli.output.out(&format!("deploy: {other:?}")),
    }
    Ok(())
}

fn describe(step: &DeployProgress, url: &str) -> String {
    match step {
        DeployProgress::CleaningUp { stale } => {
            format!("Discarding {}", count(*stale, "stale deployment"))
        }
        DeployProgress::Uploading { files } => {
            format!("Uploading {} to {url}", count(*files, "datafile"))
        }
        DeployProgress::Created { id } => format!("Deployment {id} created"),
        DeployProgress::Waiting { id, status } => format!("Deployment {id}: {status}"),
        DeployProgress::SettingLive { id } => format!("Promoting deployment {id}"),
        DeployProgress::RemovingPrevious { id } => format!("Removing the previous deployment {id}"),
        DeployProgress::Live { id } => format!("Deployment {id} is live"),
        other => format!("{other:?}"),
    }
}
