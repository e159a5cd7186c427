//! The resources a workspace serves: connections, datasources and pipes, from definitions or from datafiles.

use std::path::Path;
use tinybird_core::connections::ConnectionDef;
use tinybird_core::datafile::{PipeDef, PipeKind, parse_connection, parse_datasource, parse_pipe};
use tinybird_core::datasource::TokenDef;
use tinybird_core::endpoint::NodeDef;
use tinybird_core::{DatasourceDef, EndpointDef};

/// A pipe as the server runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipe {
    /// Pipe name.
    pub name: String,
    /// Nodes in order; the last one is the result.
    pub nodes: Vec<NodeDef>,
    /// `TOKEN name READ` lines.
    pub tokens: Vec<TokenDef>,
    /// Whether the pipe is published as an API endpoint (`TYPE endpoint`).
    pub endpoint: bool,
    /// `TYPE` of the pipe, as in the datafile (`endpoint`, `materialized`, `copy`, `sink`), if any.
    pub kind: Option<String>,
    /// For `TYPE materialized`: the datasource its last node writes to on every ingestion.
    pub materialized_target: Option<String>,
    /// For `TYPE copy`: where its last node's result goes when it runs (`POST /v0/pipes/{name}/copy`).
    pub copy: Option<CopySpec>,
    /// For `TYPE sink`: its `EXPORT_*` settings (`POST /v0/pipes/{name}/sink` runs it).
    pub sink: Option<SinkSpec>,
}

/// A sink pipe's settings: the `EXPORT_*` keys (upper-case) and their values, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSpec {
    /// `EXPORT_*` keys and values.
    pub settings: Vec<(String, String)>,
}

impl SinkSpec {
    /// The value of `EXPORT_<key>`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.iter().find(|(k, _)| k.eq_ignore_ascii_case(&format!("EXPORT_{key}"))).map(|(_, v)| v.as_str())
    }
}

/// A copy pipe's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    /// `TARGET_DATASOURCE`.
    pub target: String,
    /// `COPY_MODE replace`: the target is emptied first; otherwise rows are appended.
    pub replace: bool,
    /// `COPY_SCHEDULE`, when set.
    pub schedule: Option<String>,
}

impl From<PipeDef> for Pipe {
    fn from(def: PipeDef) -> Pipe {
        let materialized_target = match &def.kind {
            PipeKind::Materialized { datasource, .. } => Some(datasource.clone()),
            _ => None,
        };
        let copy = match &def.kind {
            PipeKind::Copy { target_datasource, schedule, mode } => Some(CopySpec {
                target: target_datasource.clone(),
                replace: mode.as_deref() == Some("replace"),
                schedule: schedule.clone(),
            }),
            _ => None,
        };
        let sink = match &def.kind {
            PipeKind::Sink { settings } => Some(SinkSpec { settings: settings.clone() }),
            _ => None,
        };
        Pipe {
            materialized_target,
            copy,
            sink,
            endpoint: def.kind == PipeKind::Endpoint,
            kind: def.kind.type_name().map(str::to_string),
            name: def.name,
            nodes: def.nodes,
            tokens: def.tokens,
        }
    }
}

impl From<EndpointDef> for Pipe {
    fn from(def: EndpointDef) -> Pipe {
        Pipe {
            name: def.name,
            nodes: def.nodes,
            tokens: def.tokens,
            endpoint: true,
            kind: Some("endpoint".into()),
            materialized_target: None,
            copy: None,
            sink: None,
        }
    }
}

const NO_IMPORTS: &str = "tinybird-local deploys connections but does not ingest through them (Kafka, S3, GCS, \
    DynamoDB, Postgres): it cannot reach the services they name. Deploy the datasource without its connector keys to \
    test the rest locally (and send it rows with the Events API), or test the import on Tinybird";

/// What a sink may do here: write files under a `file://` URI, as csv or ndjson, plain or gzipped.
const SINKS: &str = "tinybird-local runs sinks to a bucket connection (s3 or gcs) whose EXPORT_BUCKET_URI is a \
    local file:// folder, as csv or ndjson, uncompressed or gzip, on demand (POST /v0/pipes/<name>/sink) or on \
    their EXPORT_SCHEDULE";

/// What a project asks for that this server would otherwise silently not do: each is refused, naming it.
pub(crate) fn unsimulated(resources: &Resources) -> Vec<FileError> {
    let mut errors = Vec::new();
    for ds in &resources.datasources {
        if let Some(s) = ds.settings.iter().find(|s| {
            let k = s.keyword.to_ascii_uppercase();
            k.starts_with("KAFKA_") || k.starts_with("IMPORT_") || k.starts_with("PG_")
        }) {
            errors.push(FileError {
                filename: format!("{}.datasource", ds.name),
                error: format!("{} ingests from a connection. {NO_IMPORTS}", s.keyword.to_ascii_uppercase()),
            });
        }
    }
    for pipe in &resources.pipes {
        let filename = format!("{}.pipe", pipe.name);
        if let Some(sink) = &pipe.sink
            && let Err(why) = check_sink(sink, &resources.connections)
        {
            errors.push(FileError { filename: filename.clone(), error: why });
        }
        let Some(copy) = &pipe.copy else { continue };
        if !resources.datasources.iter().any(|d| d.name == copy.target) {
            errors.push(FileError {
                filename: filename.clone(),
                error: format!("the copy pipe writes to '{}', which is not a datasource of the project", copy.target),
            });
        }
        // A cron schedule runs (each minute it matches); anything else is refused, as Tinybird refuses it.
        if let Some(schedule) = copy.schedule.as_deref().filter(|s| *s != "@on-demand")
            && let Err(e) = tinybird_core::pipes::CopySchedule::cron(schedule)
        {
            errors.push(FileError { filename, error: format!("COPY_SCHEDULE: {e}") });
        }
    }
    errors
}

/// Why a sink cannot run here, if it cannot: its connection, target, format, compression and schedule.
fn check_sink(sink: &SinkSpec, connections: &[ConnectionDef]) -> Result<(), String> {
    let name = sink.get("CONNECTION_NAME").unwrap_or_default();
    let Some(connection) = connections.iter().find(|c| c.name == name) else {
        return Err(format!("the sink exports through '{name}', which is not a connection of the project"));
    };
    if sink.get("KAFKA_TOPIC").is_some() {
        return Err(format!("sinks to Kafka are not simulated (there is no broker here). {SINKS}"));
    }
    if !matches!(connection.kind.as_str(), "s3" | "s3_iamrole" | "gcs") {
        return Err(format!("the sink's connection '{name}' is of type {}, not a bucket. {SINKS}", connection.kind));
    }
    let uri = sink.get("BUCKET_URI").unwrap_or_default();
    if !uri.starts_with("file://") {
        return Err(format!("EXPORT_BUCKET_URI {uri}: not a file:// folder. {SINKS}"));
    }
    let template = sink.get("FILE_TEMPLATE").unwrap_or_default();
    if template.is_empty() || template.contains(['{', '}', '/', '\\']) || template.starts_with('.') {
        return Err(format!(
            "EXPORT_FILE_TEMPLATE {template}: tinybird-local writes one file named after a plain template (no \
             placeholders, folders or leading dot)"
        ));
    }
    let format = sink.get("FORMAT").unwrap_or("csv");
    if !matches!(format.to_ascii_lowercase().as_str(), "csv" | "ndjson") {
        return Err(format!("EXPORT_FORMAT {format} is not simulated. {SINKS}"));
    }
    let compression = sink.get("COMPRESSION").unwrap_or("none");
    if !matches!(compression.to_ascii_lowercase().as_str(), "none" | "gzip") {
        return Err(format!("EXPORT_COMPRESSION {compression} is not simulated. {SINKS}"));
    }
    let schedule = sink.get("SCHEDULE").unwrap_or("@on-demand");
    if schedule != "@on-demand"
        && let Err(e) = tinybird_core::pipes::CopySchedule::cron(schedule)
    {
        return Err(format!("EXPORT_SCHEDULE: {e}"));
    }
    Ok(())
}

/// A datafile that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[{filename}] {error}")]
pub struct FileError {
    /// The file's name (relative path).
    pub filename: String,
    /// What is wrong.
    pub error: String,
}

impl From<&tinybird_core::project::Project> for Resources {
    fn from(project: &tinybird_core::project::Project) -> Resources {
        Resources {
            connections: project.connections().to_vec(),
            datasources: project.datasources().to_vec(),
            pipes: project
                .endpoints()
                .iter()
                .cloned()
                .map(Pipe::from)
                .chain(project.pipes().iter().cloned().map(Pipe::from))
                .collect(),
        }
    }
}

impl From<tinybird_core::project::Project> for Resources {
    fn from(project: tinybird_core::project::Project) -> Resources {
        Resources::from(&project)
    }
}

/// Every problem found in a set of datafiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileErrors(pub Vec<FileError>);

impl std::fmt::Display for FileErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for FileErrors {}

/// Connections, datasources and pipes to serve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Connection definitions (deployed and listed; sinks to a `file://` bucket run through them).
    pub connections: Vec<ConnectionDef>,
    /// Datasource definitions.
    pub datasources: Vec<DatasourceDef>,
    /// Pipes.
    pub pipes: Vec<Pipe>,
}

impl Resources {
    /// No resources.
    pub fn new() -> Resources {
        Resources::default()
    }

    /// Adds a connection.
    pub fn connection(mut self, def: ConnectionDef) -> Resources {
        self.connections.push(def);
        self
    }

    /// Adds a datasource.
    pub fn datasource(mut self, def: DatasourceDef) -> Resources {
        self.datasources.push(def);
        self
    }

    /// Adds a pipe (a [`PipeDef`] parsed from a `.pipe` file, or an [`EndpointDef`]).
    pub fn pipe(mut self, pipe: impl Into<Pipe>) -> Resources {
        self.pipes.push(pipe.into());
        self
    }

    /// Reads datafiles given as `(relative path, text)`. `.connection`, `.datasource` and `.pipe` files are parsed;
    /// other files (fixtures, READMEs) are ignored. Every bad file is reported, not only the first.
    pub fn from_files<N: AsRef<str>, T: AsRef<str>>(
        files: impl IntoIterator<Item = (N, T)>,
    ) -> Result<Resources, FileErrors> {
        let mut resources = Resources::new();
        let mut errors = Vec::new();
        for (path, text) in files {
            let path = path.as_ref();
            let file = path.rsplit('/').next().unwrap_or(path);
            let bad = |e: String| FileError { filename: path.to_string(), error: e };
            if let Some(name) = file.strip_suffix(".datasource") {
                match parse_datasource(name, text.as_ref()) {
                    Ok(def) => resources.datasources.push(def),
                    Err(e) => errors.push(bad(e.to_string())),
                }
            } else if let Some(name) = file.strip_suffix(".pipe") {
                match parse_pipe(name, text.as_ref()) {
                    Ok(def) => resources.pipes.push(def.into()),
                    Err(e) => errors.push(bad(e.to_string())),
                }
            } else if let Some(name) = file.strip_suffix(".connection") {
                match parse_connection(name, text.as_ref()) {
                    Ok(def) => resources.connections.push(def),
                    Err(e) => errors.push(bad(e.to_string())),
                }
            }
        }
        errors.extend(unsimulated(&resources));
        for pipe in &resources.pipes {
            if let Some(target) = &pipe.materialized_target
                && !resources.datasources.iter().any(|d| &d.name == target)
            {
                errors.push(FileError {
                    filename: format!("{}.pipe", pipe.name),
                    error: format!(
                        "the materialized view writes to '{target}', which is not a datasource of the project"
                    ),
                });
            }
        }
        let mut connection_names = std::collections::HashSet::new();
        for c in &resources.connections {
            if !connection_names.insert(&c.name) {
                errors.push(FileError {
                    filename: format!("{}.connection", c.name),
                    error: format!("Connection '{}' is defined twice", c.name),
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        for name in resources.datasources.iter().map(|d| &d.name).chain(resources.pipes.iter().map(|p| &p.name)) {
            if !seen.insert(name.clone()) {
                errors.push(FileError { filename: name.clone(), error: format!("Resource '{name}' is defined twice") });
            }
        }
        if errors.is_empty() { Ok(resources) } else { Err(FileErrors(errors)) }
    }

    /// Reads every `.connection`, `.datasource` and `.pipe` file under a folder (recursively).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Resources, FileErrors> {
        let dir = dir.as_ref();
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d)
                .map_err(|e| FileErrors(vec![FileError { filename: d.display().to_string(), error: e.to_string() }]))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "connection" || e == "datasource" || e == "pipe") {
                    let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| FileErrors(vec![FileError { filename: rel.clone(), error: e.to_string() }]))?;
                    files.push((rel, text));
                }
            }
        }
        files.sort();
        Resources::from_files(files)
    }
}
