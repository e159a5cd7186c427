//! `Project`: grouping resources, validation, writing and reading a project folder.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tinybird_core::datafile::{PipeDef, PipeKind};
use tinybird_core::datasource::{ColumnDef, Datasource, DatasourceDef, EngineDef};
use tinybird_core::endpoint::{Endpoint, EndpointDef, FixedParams, NodeDef, ParamDef};
use tinybird_core::params::QueryParams;
use tinybird_core::project::{Project, ProjectError};

#[derive(Serialize, Deserialize)]
struct Event {
    user_id: u64,
}

impl Datasource for Event {
    const NAME: &'static str = "events";
    type Columns = ();
    fn definition() -> DatasourceDef {
        DatasourceDef {
            name: "events".into(),
            columns: vec![ColumnDef {
                name: "user_id".into(),
                ty: "UInt64".into(),
                json_path: Some("$.user_id".into()),
                ..Default::default()
            }],
            engine: EngineDef { kind: "MergeTree".into(), sorting_key: Some("user_id".into()), ..Default::default() },
            ..Default::default()
        }
    }
}

#[derive(Default)]
struct TopUsersFixed {
    limit: Option<u32>,
}

impl FixedParams for TopUsersFixed {
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        if let Some(limit) = self.limit {
            map.insert("limit".into(), limit.into());
        }
        map
    }
}

struct TopUsers {
    limit: Option<u32>,
}

impl Endpoint for TopUsers {
    const NAME: &'static str = "top_users";
    type Output = serde_json::Value;
    type Fixed = TopUsersFixed;
    fn definition() -> EndpointDef {
        EndpointDef {
            name: "top_users".into(),
            nodes: vec![NodeDef {
                settings: Vec::new(),
                name: "top".into(),
                description: None,
                sql: "%\nSELECT user_id, count() AS c FROM events GROUP BY user_id LIMIT {{UInt32(limit)}}".into(),
            }],
            params: vec![ParamDef {
                name: "limit".into(),
                ty: "UInt32".into(),
                default: Some("10".into()),
                description: Some("Rows".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }
    fn to_params(&self) -> QueryParams {
        let mut params = QueryParams::new();
        params.add("limit", &self.limit);
        params
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tinybird-core-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn mv() -> PipeDef {
    PipeDef {
        name: "users_mv".into(),
        nodes: vec![NodeDef { name: "n".into(), sql: "SELECT user_id FROM events".into(), ..Default::default() }],
        kind: PipeKind::Materialized { datasource: "users".into(), deployment_method: None },
        ..Default::default()
    }
}

#[test]
fn groups_typed_resources_and_writes_them() {
    let project = Project::new().datasource::<Event>().endpoint::<TopUsers>().with_pipe(mv());
    let files = project.files().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["datasources/events.datasource", "endpoints/top_users.pipe", "pipes/users_mv.pipe"]);
    assert!(files[1].content.contains("{{UInt32(limit, 10, description=\"Rows\")}}"), "{}", files[1].content);

    let warnings = project.validate().unwrap();
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings, ["users_mv: writes to `users`, which is not a datasource of this project"]);

    let dir = temp_dir("write");
    project.write_to(&dir).unwrap();
    for file in &files {
        assert_eq!(std::fs::read_to_string(dir.join(&file.path)).unwrap(), file.content);
    }

    // Reading the folder back gives the same project, and the same files.
    let read = Project::from_dir(&dir).unwrap();
    assert_eq!(read.datasources(), project.datasources());
    assert_eq!(read.pipes(), project.pipes());
    assert_eq!(read.endpoints().len(), 1);
    assert_eq!(read.endpoints()[0].params, TopUsers::definition().params);
    assert_eq!(read.files().unwrap(), files);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validation_errors_and_warnings() {
    let dup = Project::new().datasource::<Event>().with_datasource(Event::definition());
    assert_eq!(dup.validate().unwrap_err().to_string(), "two resources are named `events` (datasource and datasource)");

    let clash = Project::new()
        .datasource::<Event>()
        .with_endpoint(EndpointDef { name: "events".into(), ..TopUsers::definition() });
    assert!(matches!(
        clash.validate(),
        Err(ProjectError::DuplicateName { first: "datasource", second: "endpoint", .. })
    ));

    let bad_name = Project::new().with_datasource(DatasourceDef { name: "my-events".into(), ..Event::definition() });
    assert_eq!(
        bad_name.validate().unwrap_err().to_string(),
        "invalid datasource name `my-events`: names start with a letter or `_` and contain only letters, digits and `_`"
    );

    let unwritable = Project::new().with_datasource(DatasourceDef { columns: vec![], ..Event::definition() });
    assert_eq!(
        unwritable.validate().unwrap_err().to_string(),
        "datasources/events.datasource: SCHEMA: datasource `events` has no columns"
    );

    let unknown = Project::new().endpoint::<TopUsers>();
    let warnings = unknown.validate().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        warnings[0].to_string(),
        "top_users: node `top` reads `events`, which is not a datasource, pipe or node of this project"
    );
}

#[test]
fn from_dir_reports_the_file_and_line() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(dir.join("datasources")).unwrap();
    std::fs::write(dir.join("datasources/bad.datasource"), "SCHEMA >\n    a String\nENGINE MergeTree\nSETTINGS x=1\n")
        .unwrap();
    let err = Project::from_dir(&dir).unwrap_err().to_string();
    assert!(err.starts_with("datasources/bad.datasource: line 4: SETTINGS option is not allowed"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    let missing = temp_dir("missing");
    assert!(matches!(Project::from_dir(&missing), Err(ProjectError::Io { .. })));
}
