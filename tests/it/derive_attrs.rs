//! Attribute handling that the seed does not show: serde names, the crate path override, doc comments, engines.

use serde::{Deserialize, Serialize};
use tinybird::{Datasource, Endpoint, Row};

/// Sessions, collapsed by sign.
///
/// Second paragraph of the description.
#[derive(Debug, Serialize, Deserialize, Datasource)]
#[serde(rename_all = "camelCase")]
#[tinybird(
    crate = "::tinybird",
    engine = "VersionedCollapsingMergeTree",
    sorting_key = "(sessionId)",
    sign = "SIGN",
    version = "revision",
    json_paths = false
)]
pub struct SessionState {
    pub session_id: String,
    #[serde(rename = "SIGN")]
    #[tinybird(type = "Int8")]
    pub sign: i8,
    pub revision: u32,
    pub tags: Vec<String>,
    pub country: Option<String>,
}

#[derive(Debug, Endpoint)]
#[serde(rename_all = "camelCase")]
#[tinybird(
    crate = "::tinybird",
    sql = "%\nSELECT * FROM t WHERE s = {{String(sessionId)}} {% if defined(minRevision) %}AND revision >= {{UInt32(minRevision)}}{% end %}",
    output = serde_json::Value
)]
pub struct SessionLookup {
    pub session_id: String,
    pub min_revision: Option<u32>,
    /// Not read by the SQL yet; kept for the next version of the pipe.
    #[tinybird(unused, type = "Array(String)")]
    pub tags: Option<Vec<String>>,
}

#[test]
fn serde_rename_all_and_rename_decide_column_names() {
    let def = SessionState::definition();
    let cols: Vec<(&str, &str, Option<&str>)> =
        def.columns.iter().map(|c| (c.name.as_str(), c.ty.as_str(), c.json_path.as_deref())).collect();
    assert_eq!(
        cols,
        [
            ("sessionId", "String", None),
            ("SIGN", "Int8", None),
            ("revision", "UInt32", None),
            ("tags", "Array(String)", None),
            ("country", "Nullable(String)", None),
        ]
    );
    assert_eq!(def.name, "session_state");
    assert_eq!(
        def.description.as_deref(),
        Some("Sessions, collapsed by sign.\n\nSecond paragraph of the description.")
    );
    assert_eq!(def.engine.kind, "VersionedCollapsingMergeTree");
    assert_eq!(def.engine.sign.as_deref(), Some("SIGN"));
    assert_eq!(def.engine.version.as_deref(), Some("revision"));
    assert_eq!(<SessionState as Datasource>::Columns::default().session_id.name(), "sessionId");
}

#[test]
fn serde_rename_all_decides_param_names() {
    let def = SessionLookup::definition();
    let params: Vec<(&str, &str, bool)> =
        def.params.iter().map(|p| (p.name.as_str(), p.ty.as_str(), p.required)).collect();
    assert_eq!(
        params,
        [("sessionId", "String", true), ("minRevision", "UInt32", false), ("tags", "Array(String)", false)]
    );
    let q = SessionLookup { session_id: "s1".into(), min_revision: Some(3), tags: None };
    assert_eq!(q.to_params().to_query_string(), "sessionId=s1&minRevision=3");
    assert_eq!(
        def.params[2].description.as_deref(),
        Some("Not read by the SQL yet; kept for the next version of the pipe.")
    );
    assert!(<SessionLookup as Endpoint>::Output::columns().is_empty());
}
