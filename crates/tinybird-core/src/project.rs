//! A Tinybird project: datasources and pipes, validated together and written as datafiles.
//!
//! ```
//! use tinybird_core::datasource::{ColumnDef, DatasourceDef};
//! use tinybird_core::endpoint::{EndpointDef, NodeDef};
//! use tinybird_core::project::Project;
//!
//! let events = DatasourceDef {
//!     name: "events".into(),
//!     columns: vec![ColumnDef { name: "user_id".into(), ty: "UInt64".into(), ..Default::default() }],
//!     ..Default::default()
//! };
//! let top = EndpointDef {
//!     name: "top_users".into(),
//!     nodes: vec![NodeDef { name: "top".into(), sql: "SELECT user_id, count() c FROM events GROUP BY user_id".into(), ..Default::default() }],
//!     ..Default::default()
//! };
//! let project = Project::new().with_datasource(events).with_endpoint(top);
//! assert!(project.validate().unwrap().is_empty());
//! let paths: Vec<String> = project.files().unwrap().into_iter().map(|file| file.path).collect();
//! assert_eq!(paths, ["datasources/events.datasource", "endpoints/top_users.pipe"]);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use crate::connections::{Connection, ConnectionDef, ConnectionError, DatasourceImport};
use crate::datafile::{self, DatafileError, PipeDef, PipeKind};
use crate::datasource::{Datasource, DatasourceDef, TokenDef, TokenPermission};
use crate::endpoint::{Endpoint, EndpointDef};

/// One datafile of a project: its path relative to the project folder (`datasources/events.datasource`) and its text.
/// What [`Project::files`] returns and what a deploy or a build uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    /// The path relative to the project folder, with `/` separators.
    pub path: String,
    /// The datafile's text.
    pub content: String,
}

impl ProjectFile {
    /// A datafile at `path` (relative to the project folder) with `content`.
    pub fn new(path: impl Into<String>, content: impl Into<String>) -> Self {
        ProjectFile { path: path.into(), content: content.into() }
    }
}

/// Datasources, endpoints and other pipes that are deployed together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Project {
    connections: Vec<ConnectionDef>,
    datasources: Vec<DatasourceDef>,
    endpoints: Vec<EndpointDef>,
    pipes: Vec<PipeDef>,
    /// Typed pipes whose declared output does not fit their target: reported by `validate` and `files`.
    mismatches: Vec<crate::pipes::PipeError>,
    /// Typed connections that cannot be written: reported by `validate` and `files`.
    bad_connections: Vec<ConnectionError>,
    /// Token grants on resources the project lacks: reported by `validate` and `files`.
    bad_grants: Vec<String>,
}

/// Why a project is invalid, or could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectError {
    /// Two resources share a name (datasources and pipes share one namespace in a workspace).
    #[error("two resources are named `{name}` ({first} and {second})")]
    DuplicateName {
        /// The name.
        name: String,
        /// The first resource's kind (`datasource`, `endpoint`, `pipe`).
        first: &'static str,
        /// The second resource's kind.
        second: &'static str,
    },
    /// A resource name Tinybird would reject.
    #[error("invalid {kind} name `{name}`: names start with a letter or `_` and contain only letters, digits and `_`")]
    InvalidName {
        /// The resource's kind.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A datafile that could not be parsed or generated.
    #[error("{path}: {source}")]
    Datafile {
        /// The file (relative to the project folder).
        path: String,
        /// What is wrong with it.
        source: DatafileError,
    },
    /// A typed materialized view or copy pipe declares an output row that does not fit its target datasource.
    #[error(transparent)]
    PipeOutput(#[from] crate::pipes::PipeError),
    /// A typed connection that cannot be written (a bad name or secret, a malformed setting).
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// A declared token granted access to a resource the project does not hold.
    #[error("{0}")]
    TokenGrant(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A static token declared in code (the official SDK's `defineToken`): resources grant it access by type, so its
/// name is written once and each grant names a resource that exists. Each grant becomes a `TOKEN <name> READ|APPEND`
/// line in the resource's datafile; Tinybird creates the token on deploy (`tinybird-local` too: its value is
/// `LocalServer::token(name)`).
///
/// ```
/// use tinybird_core::project::{Project, Token};
/// # use tinybird_core::datasource::{ColumnDef, Datasource, DatasourceDef};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Event;
/// # impl Datasource for Event {
/// #     const NAME: &'static str = "events";
/// #     type Columns = ();
/// #     fn definition() -> DatasourceDef {
/// #         DatasourceDef { name: "events".into(), columns: vec![ColumnDef { name: "id".into(), ty: "UInt64".into(), ..Default::default() }], ..Default::default() }
/// #     }
/// # }
/// const INGEST: Token = Token::new("ingest_backend");
/// let project = Project::new().datasource::<Event>().grant(INGEST.appends::<Event>());
/// let files = project.files().unwrap();
/// assert!(files[0].content.contains("TOKEN \"ingest_backend\" APPEND"), "{}", files[0].content);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    name: &'static str,
}

impl Token {
    /// A token named `name`.
    pub const fn new(name: &'static str) -> Token {
        Token { name }
    }

    /// The token's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// `DATASOURCES:READ` on `D` (`TOKEN <name> READ` in its `.datasource`).
    pub fn reads<D: Datasource>(&self) -> TokenGrant {
        self.grant(D::NAME, TokenPermission::Read, GrantTarget::Datasource)
    }

    /// `DATASOURCES:APPEND` on `D` (`TOKEN <name> APPEND` in its `.datasource`).
    pub fn appends<D: Datasource>(&self) -> TokenGrant {
        self.grant(D::NAME, TokenPermission::Append, GrantTarget::Datasource)
    }

    /// `PIPES:READ` on the endpoint `E` (`TOKEN <name> READ` in its `.pipe`).
    pub fn reads_pipe<E: Endpoint>(&self) -> TokenGrant {
        self.grant(E::NAME, TokenPermission::Read, GrantTarget::Endpoint)
    }

    fn grant(&self, resource: &'static str, permission: TokenPermission, kind: GrantTarget) -> TokenGrant {
        TokenGrant { token: self.name, resource, permission, kind }
    }
}

/// One permission of a [`Token`] on one resource, for [`Project::grant`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGrant {
    token: &'static str,
    resource: &'static str,
    permission: TokenPermission,
    kind: GrantTarget,
}

/// What kind of resource a [`TokenGrant`] is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrantTarget {
    Datasource,
    Endpoint,
}

/// Something that deploys but is probably a mistake, e.g. a pipe reading a datasource the project does not define
/// (it may exist in the workspace already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectWarning {
    /// The resource the warning is about.
    pub resource: String,
    /// What looks wrong.
    pub message: String,
}

impl fmt::Display for ProjectWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.resource, self.message)
    }
}

impl Project {
    /// An empty project.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the datasource `D` (from `#[derive(Datasource)]`).
    pub fn datasource<D: Datasource>(self) -> Self {
        self.with_datasource(D::definition())
    }

    /// Adds the endpoint `E` (from `#[derive(Endpoint)]`).
    pub fn endpoint<E: Endpoint>(self) -> Self {
        self.with_endpoint(E::definition())
    }

    /// Adds a materialized view (see [`crate::pipes`]). A declared output row that does not fit the target is
    /// reported by [`Project::validate`] and [`Project::files`] (so a deploy refuses it), naming each mismatch.
    pub fn materialized_view<T: Datasource>(mut self, view: &crate::pipes::MaterializedView<T>) -> Self {
        if let Err(e) = view.check() {
            self.mismatches.push(e);
        }
        self.with_pipe(view.definition())
    }

    /// Adds a copy pipe (see [`crate::pipes`]); its output is checked as [`Project::materialized_view`]'s.
    pub fn copy_pipe<T: Datasource>(mut self, pipe: &crate::pipes::CopyPipe<T>) -> Self {
        if let Err(e) = pipe.check() {
            self.mismatches.push(e);
        }
        self.with_pipe(pipe.definition())
    }

    /// Grants a declared [`Token`] a permission on a resource of the project: a `TOKEN` line in its datafile. A grant
    /// on a resource the project does not hold (yet) is reported by [`Project::validate`] and [`Project::files`];
    /// add the resource first.
    pub fn grant(mut self, grant: TokenGrant) -> Self {
        let token = TokenDef { name: grant.token.to_owned(), permission: grant.permission };
        let (tokens, kind) = match grant.kind {
            GrantTarget::Datasource => {
                (self.datasources.iter_mut().find(|d| d.name == grant.resource).map(|d| &mut d.tokens), "datasource")
            }
            GrantTarget::Endpoint => {
                (self.endpoints.iter_mut().find(|e| e.name == grant.resource).map(|e| &mut e.tokens), "endpoint")
            }
        };
        match tokens {
            Some(tokens) if !tokens.contains(&token) => tokens.push(token),
            Some(_) => {}
            None => self.bad_grants.push(format!(
                "token `{}` is granted {} on the {} `{}`, which is not in the project (add it before the grant)",
                grant.token,
                match grant.permission {
                    TokenPermission::Read => "READ",
                    TokenPermission::Append => "APPEND",
                },
                kind,
                grant.resource
            )),
        }
        self
    }

    /// Adds a sink pipe (see [`crate::pipes::SinkPipe`]).
    pub fn sink_pipe<K>(self, pipe: &crate::pipes::SinkPipe<K>) -> Self {
        self.with_pipe(pipe.definition())
    }

    /// Adds a connection (see [`crate::connections`]): its `.connection` file is written with the project's files.
    /// One that cannot be written is reported by [`Project::validate`] and [`Project::files`].
    pub fn connection<C: Connection + ?Sized>(mut self, connection: &C) -> Self {
        match connection.definition() {
            Ok(def) => self.with_connection(def),
            Err(e) => {
                self.bad_connections.push(e);
                self
            }
        }
    }

    /// Adds the datasource `D`, fed through a connection with `import`'s settings (`KAFKA_*` or `IMPORT_*`). The
    /// import names its connection by value, so it can only name one of the right kind.
    pub fn datasource_from<D: Datasource>(self, import: &impl DatasourceImport) -> Self {
        let mut def = D::definition();
        def.settings.extend(import.settings());
        self.with_datasource(def)
    }

    /// Adds a connection definition.
    pub fn with_connection(mut self, def: ConnectionDef) -> Self {
        self.connections.push(def);
        self
    }

    /// Adds a datasource definition.
    pub fn with_datasource(mut self, def: DatasourceDef) -> Self {
        self.datasources.push(def);
        self
    }

    /// Adds an endpoint definition.
    pub fn with_endpoint(mut self, def: EndpointDef) -> Self {
        self.endpoints.push(def);
        self
    }

    /// Adds a pipe that is not an endpoint (materialized, copy, sink or standard). An endpoint pipe is turned into an
    /// [`EndpointDef`] (see [`PipeDef::into_endpoint`]).
    pub fn with_pipe(mut self, def: PipeDef) -> Self {
        if def.kind == PipeKind::Endpoint {
            self.endpoints.push(def.endpoint_parts());
        } else {
            self.pipes.push(def);
        }
        self
    }

    /// The connections, in the order they were added.
    pub fn connections(&self) -> &[ConnectionDef] {
        &self.connections
    }

    /// The datasources, in the order they were added.
    pub fn datasources(&self) -> &[DatasourceDef] {
        &self.datasources
    }

    /// The endpoints, in the order they were added.
    pub fn endpoints(&self) -> &[EndpointDef] {
        &self.endpoints
    }

    /// The pipes that are not endpoints, in the order they were added.
    pub fn pipes(&self) -> &[PipeDef] {
        &self.pipes
    }

    /// Reads every `*.connection`, `*.datasource` and `*.pipe` file under `dir` (in any sub-folder), naming each
    /// resource after its file. Files are read in path order, so the result does not depend on the file system.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Project, ProjectError> {
        let dir = dir.as_ref();
        let mut files = Vec::new();
        collect_files(dir, &mut files)?;
        files.sort();
        let mut project = Project::new();
        for path in files {
            let relative = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let text =
                std::fs::read_to_string(&path).map_err(|source| ProjectError::Io { path: path.clone(), source })?;
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let in_file = |source: DatafileError| ProjectError::Datafile { path: relative.clone(), source };
            match path.extension().and_then(|e| e.to_str()) {
                Some("datasource") => {
                    project.datasources.push(datafile::parse_datasource(&name, &text).map_err(in_file)?);
                }
                Some("connection") => {
                    project.connections.push(datafile::parse_connection(&name, &text).map_err(in_file)?);
                }
                _ => {
                    let pipe = datafile::parse_pipe(&name, &text).map_err(in_file)?;
                    project = project.with_pipe(pipe);
                }
            }
        }
        Ok(project)
    }

    /// Checks the project as a whole: valid and unique names (an error), and pipes reading datasources the project
    /// does not define (a warning: they may already exist in the workspace). Also generates every datafile, so a
    /// definition that cannot be written is reported here.
    pub fn validate(&self) -> Result<Vec<ProjectWarning>, ProjectError> {
        let mut names: Vec<(&str, &'static str)> = Vec::new();
        let resources = self
            .datasources
            .iter()
            .map(|d| (d.name.as_str(), "datasource"))
            .chain(self.endpoints.iter().map(|e| (e.name.as_str(), "endpoint")))
            .chain(self.pipes.iter().map(|p| (p.name.as_str(), "pipe")));
        for (name, kind) in resources {
            if !tinybird_types::is_valid_name(name) {
                return Err(ProjectError::InvalidName { kind, name: name.to_owned() });
            }
            if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
                return Err(ProjectError::DuplicateName { name: name.to_owned(), first, second: kind });
            }
            names.push((name, kind));
        }
        // Connections have names of their own.
        for (i, connection) in self.connections.iter().enumerate() {
            if !tinybird_types::is_valid_name(&connection.name) {
                return Err(ProjectError::InvalidName { kind: "connection", name: connection.name.clone() });
            }
            if self.connections[..i].iter().any(|c| c.name == connection.name) {
                return Err(ProjectError::DuplicateName {
                    name: connection.name.clone(),
                    first: "connection",
                    second: "connection",
                });
            }
        }
        self.files()?;

        let mut warnings = Vec::new();
        let pipe_nodes = self
            .endpoints
            .iter()
            .map(|e| (e.name.as_str(), &e.nodes))
            .chain(self.pipes.iter().map(|p| (p.name.as_str(), &p.nodes)));
        for (pipe, nodes) in pipe_nodes {
            for node in nodes.iter() {
                for table in referenced_tables(&node.sql) {
                    let known = names.iter().any(|(n, _)| *n == table) || nodes.iter().any(|n| n.name == table);
                    if !known {
                        warnings.push(ProjectWarning {
                            resource: pipe.to_owned(),
                            message: format!(
                                "node `{}` reads `{table}`, which is not a datasource, pipe or node of this project",
                                node.name
                            ),
                        });
                    }
                }
            }
        }
        // Imports and sinks name their connection; it may already exist in the workspace.
        let mut uses: Vec<(&str, &str)> = Vec::new();
        for d in &self.datasources {
            for s in &d.settings {
                if matches!(
                    s.keyword.as_str(),
                    "KAFKA_CONNECTION_NAME" | "IMPORT_CONNECTION_NAME" | "PG_CONNECTION_NAME"
                ) {
                    uses.push((&d.name, &s.value));
                }
            }
        }
        for p in &self.pipes {
            if let PipeKind::Sink { settings } = &p.kind {
                uses.extend(
                    settings
                        .iter()
                        .filter(|(k, _)| k == "EXPORT_CONNECTION_NAME")
                        .map(|(_, v)| (p.name.as_str(), v.as_str())),
                );
            }
        }
        for (resource, connection) in uses {
            if !self.connections.iter().any(|c| c.name == connection) {
                warnings.push(ProjectWarning {
                    resource: resource.to_owned(),
                    message: format!("uses the connection `{connection}`, which is not a connection of this project"),
                });
            }
        }
        for pipe in &self.pipes {
            let target = match &pipe.kind {
                PipeKind::Materialized { datasource, .. } => Some(datasource),
                PipeKind::Copy { target_datasource, .. } => Some(target_datasource),
                _ => None,
            };
            if let Some(target) = target
                && !self.datasources.iter().any(|d| d.name == *target)
            {
                warnings.push(ProjectWarning {
                    resource: pipe.name.clone(),
                    message: format!("writes to `{target}`, which is not a datasource of this project"),
                });
            }
        }
        Ok(warnings)
    }

    /// Every datafile, with its path relative to the project: `connections/<name>.connection`,
    /// `datasources/<name>.datasource`, `endpoints/<name>.pipe` and `pipes/<name>.pipe`, in that order and in the order
    /// resources were added. This is what a deploy uploads.
    pub fn files(&self) -> Result<Vec<ProjectFile>, ProjectError> {
        if let Some(e) = self.mismatches.first() {
            return Err(ProjectError::PipeOutput(e.clone()));
        }
        if let Some(e) = self.bad_connections.first() {
            return Err(ProjectError::Connection(e.clone()));
        }
        if let Some(e) = self.bad_grants.first() {
            return Err(ProjectError::TokenGrant(e.clone()));
        }
        let mut out = Vec::new();
        for def in &self.connections {
            let path = format!("connections/{}.connection", def.name);
            let text = datafile::write_connection(def)
                .map_err(|source| ProjectError::Datafile { path: path.clone(), source })?;
            out.push(ProjectFile { path, content: text });
        }
        for def in &self.datasources {
            let path = format!("datasources/{}.datasource", def.name);
            let text = datafile::write_datasource(def)
                .map_err(|source| ProjectError::Datafile { path: path.clone(), source })?;
            out.push(ProjectFile { path, content: text });
        }
        for def in &self.endpoints {
            let path = format!("endpoints/{}.pipe", def.name);
            let text = datafile::write_endpoint(def)
                .map_err(|source| ProjectError::Datafile { path: path.clone(), source })?;
            out.push(ProjectFile { path, content: text });
        }
        for def in &self.pipes {
            let path = format!("pipes/{}.pipe", def.name);
            let text =
                datafile::write_pipe(def).map_err(|source| ProjectError::Datafile { path: path.clone(), source })?;
            out.push(ProjectFile { path, content: text });
        }
        Ok(out)
    }

    /// Writes [`files`](Self::files) under `dir`, creating folders as needed. Existing files with other names are
    /// left alone.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<(), ProjectError> {
        let dir = dir.as_ref();
        for file in self.files()? {
            let path = dir.join(&file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|source| ProjectError::Io { path: parent.to_owned(), source })?;
            }
            std::fs::write(&path, file.content).map_err(|source| ProjectError::Io { path, source })?;
        }
        Ok(())
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ProjectError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ProjectError::Io { path: dir.to_owned(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| ProjectError::Io { path: dir.to_owned(), source })?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| ProjectError::Io { path: path.clone(), source })?;
        if file_type.is_dir() {
            collect_files(&path, out)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("connection" | "datasource" | "pipe")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Plain table names after `FROM` and `JOIN`, outside template blocks, strings and comments. Subqueries, table
/// functions (`numbers(10)`), qualified names (`db.t`) and templated names (`{{ table(x) }}`) are skipped.
fn referenced_tables(sql: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut chars = sql.char_indices().peekable();
    let bytes = sql.as_bytes();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if matches!(bytes.get(i + 1), Some(b'{' | b'%' | b'#')) => {
                let close = match bytes[i + 1] {
                    b'{' => "}}",
                    b'%' => "%}",
                    _ => "#}",
                };
                let end = sql[i + 2..].find(close).map_or(sql.len(), |e| i + 2 + e + 2);
                while chars.next_if(|(j, _)| *j < end).is_some() {}
                words.push("{template}".to_owned());
            }
            '\'' | '"' => {
                let mut escaped = false;
                for (_, d) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
                words.push("'string'".to_owned());
            }
            '-' if bytes.get(i + 1) == Some(&b'-') => while chars.next_if(|(_, d)| *d != '\n').is_some() {},
            '`' => {
                let mut name = String::new();
                for (_, d) in chars.by_ref() {
                    if d == '`' {
                        break;
                    }
                    name.push(d);
                }
                words.push(format!("`{name}"));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut word = String::from(c);
                while let Some((_, d)) = chars.next_if(|(_, d)| d.is_alphanumeric() || *d == '_') {
                    word.push(d);
                }
                words.push(word);
            }
            c if c.is_whitespace() => {}
            c => words.push(c.to_string()),
        }
    }
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if !(word.eq_ignore_ascii_case("FROM") || word.eq_ignore_ascii_case("JOIN")) {
            continue;
        }
        let Some(next) = words.get(i + 1) else { continue };
        let followed_by = words.get(i + 2).map(String::as_str);
        if matches!(followed_by, Some("(" | ".")) {
            continue;
        }
        let name = if let Some(quoted) = next.strip_prefix('`') {
            quoted.to_owned()
        } else if next.starts_with(|c: char| c.is_alphabetic() || c == '_') {
            next.clone()
        } else {
            continue;
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::referenced_tables;

    #[test]
    fn finds_plain_table_references() {
        let sql = "%\nSELECT * FROM events e JOIN `users` u ON e.id = u.id\n\
                   WHERE x IN (SELECT id FROM numbers(10)) AND y FROM db.t -- FROM comment\n\
                   AND z = 'FROM quoted' {% if defined(a) %} FROM {{ table(t) }} {% end %}";
        assert_eq!(referenced_tables(sql), ["events", "users"]);
    }
}
