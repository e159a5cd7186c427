//! Parsing datafiles: what Tinybird accepts, and an error with line and keyword for everything else.

use tinybird_core::datafile::{PipeKind, parse_datasource, parse_pipe};
use tinybird_core::datasource::TokenPermission;

fn ds_err(text: &str) -> (Option<usize>, Option<String>, String) {
    let err = parse_datasource("ds", text).expect_err(text);
    (err.line(), err.keyword().map(str::to_owned), err.to_string())
}

fn pipe_err(text: &str) -> (Option<usize>, Option<String>, String) {
    let err = parse_pipe("p", text).expect_err(text);
    (err.line(), err.keyword().map(str::to_owned), err.to_string())
}

const SCHEMA: &str = "SCHEMA >\n    a String\n";
/// A schema block closed by a keyword: a line at column 0 that is not a keyword would be part of the block.
const HEAD: &str = "SCHEMA >\n    a String\nENGINE MergeTree\n";

#[test]
fn parses_a_hand_written_datasource() {
    let text = r#"
# Events, as Tinybird's docs write them.
description >
    Raw page view events
      (second line keeps its relative indent)

TOKEN events_append APPEND
token "read all" read

SCHEMA >
    `timestamp` DateTime64(3) `json:$.timestamp`,
    session_id String `json:$.session_id`, -- a comment
    `user_id` Nullable(UInt64) `json:$.user.id`,
    `tags` Array(String) `json:$.tags[:]` DEFAULT [],
    `kind` Enum8('a, b' = 1, 'c' = 2) DEFAULT 'c' CODEC(LZ4),
    `pair` Tuple(x String, y Nullable(Float64))

INDEXES >
    INDEX idx_s session_id TYPE bloom_filter(0.001) GRANULARITY 4,
    idx_u user_id TYPE minmax

Engine MergeTree
ENGINE_PARTITION_KEY toYYYYMM(timestamp)
ENGINE_SORTING_KEY "session_id, timestamp"
ENGINE_TTL 'toDateTime(timestamp) + INTERVAL 90 DAY'
"#;
    let def = parse_datasource("page_views", text).unwrap();
    assert_eq!(def.name, "page_views");
    assert_eq!(def.description.as_deref(), Some("Raw page view events\n  (second line keeps its relative indent)"));
    assert_eq!(def.tokens.len(), 2);
    assert_eq!(def.tokens[1].name, "read all");
    assert_eq!(def.tokens[1].permission, TokenPermission::Read);
    let cols: Vec<(&str, &str)> = def.columns.iter().map(|c| (c.name.as_str(), c.ty.as_str())).collect();
    assert_eq!(
        cols,
        [
            ("timestamp", "DateTime64(3)"),
            ("session_id", "String"),
            ("user_id", "Nullable(UInt64)"),
            ("tags", "Array(String)"),
            ("kind", "Enum8('a, b' = 1, 'c' = 2)"),
            ("pair", "Tuple(x String, y Nullable(Float64))"),
        ]
    );
    assert_eq!(def.columns[2].json_path.as_deref(), Some("$.user.id"));
    assert_eq!(def.columns[3].json_path.as_deref(), Some("$.tags[:]"));
    assert_eq!(def.columns[3].default.as_deref(), Some("[]"));
    assert_eq!(def.columns[4].default.as_deref(), Some("'c'"));
    assert_eq!(def.columns[4].codec.as_deref(), Some("LZ4"));
    assert_eq!(def.columns[5].json_path, None);
    assert_eq!(def.indexes.len(), 2);
    assert_eq!(def.indexes[0].name, "idx_s");
    assert_eq!(def.indexes[0].granularity, 4);
    assert_eq!(def.indexes[1].granularity, 1);
    assert_eq!(def.engine.kind, "MergeTree");
    assert_eq!(def.engine.partition_key.as_deref(), Some("toYYYYMM(timestamp)"));
    assert_eq!(def.engine.sorting_key.as_deref(), Some("session_id, timestamp"));
    assert_eq!(def.engine.ttl.as_deref(), Some("toDateTime(timestamp) + INTERVAL 90 DAY"));
}

#[test]
fn engine_keys_without_engine_mean_merge_tree() {
    let def = parse_datasource("ds", &format!("{SCHEMA}ENGINE_SORTING_KEY a\nENGINE_VER v\nENGINE_COLUMNS \"x, y\""))
        .unwrap();
    assert_eq!(def.engine.kind, "MergeTree");
    assert_eq!(def.engine.ver.as_deref(), Some("v"));
    assert_eq!(def.engine.columns.as_deref(), Some("x, y"));
    let def = parse_datasource("ds", SCHEMA).unwrap();
    assert_eq!(def.engine.kind, "");
}

#[test]
fn datasource_errors_carry_line_and_keyword() {
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (format!("{HEAD}FOO bar"), 4, "FOO", "line 4: FOO is not a valid option in datasource files."),
        (
            format!("{HEAD}settings a=1"),
            4,
            "SETTINGS",
            "line 4: SETTINGS option is not allowed, use ENGINE_SETTINGS instead.",
        ),
        (format!("{HEAD}NODE x"), 4, "NODE", "line 4: NODE is not a valid option in datasource files."),
        (format!("{HEAD}TOKEN x"), 4, "TOKEN", "line 4: TOKEN takes two params"),
        (
            format!("{HEAD}TOKEN x WRITE"),
            4,
            "TOKEN",
            "line 4: TOKEN: Invalid permission: WRITE. Only READ and APPEND are supported",
        ),
        (format!("{HEAD}TOKEN a b c"), 4, "TOKEN", "line 4: TOKEN: Invalid number of arguments for TOKEN command: 3."),
        ("SCHEMA a String".into(), 1, "SCHEMA", "line 1: SCHEMA must be multiline"),
        (
            "SCHEMA >\n    a Strin".into(),
            1,
            "SCHEMA",
            "line 1: SCHEMA: column 1: column `a`: invalid Tinybird type `Strin`: unknown type `Strin` at position 0",
        ),
        ("SCHEMA >\n    a String,\n    a UInt8".into(), 1, "SCHEMA", "line 1: SCHEMA: column `a` is declared twice"),
        (
            "SCHEMA >\n    a String,,\n    b UInt8".into(),
            1,
            "SCHEMA",
            "line 1: SCHEMA: column 2: empty column (a stray comma?)",
        ),
        ("SCHEMA >\n    a".into(), 1, "SCHEMA", "line 1: SCHEMA: column 1: column `a` has no type"),
        (
            "SCHEMA >\n    a String MATERIALIZED 'x'".into(),
            1,
            "SCHEMA",
            "column `a`: MATERIALIZED columns are not supported",
        ),
        ("SCHEMA >\n    a String `json:$.a".into(), 1, "SCHEMA", "unterminated `json:` path"),
        ("SCHEMA >\n    a String DEFAULT".into(), 1, "SCHEMA", "column `a`: DEFAULT without an expression"),
        (
            "SCHEMA >\n    a String foo".into(),
            1,
            "SCHEMA",
            "column `a`: unexpected `foo` (expected DEFAULT, CODEC(…) or `json:$.path`)",
        ),
        (format!("{HEAD}INDEXES >\n    idx a minmax"), 4, "INDEXES", "line 4: INDEXES: index 1: invalid INDEX format."),
        (
            format!("{HEAD}INDEXES >\n    idx a TYPE minmax GRANULARITY x"),
            4,
            "INDEXES",
            "GRANULARITY `x` is not a number",
        ),
        (format!("{HEAD}ENGINE_TTL"), 4, "ENGINE_TTL", "line 4: ENGINE_TTL: missing value"),
        (format!("{HEAD}ENGINE_TTL a\nENGINE_TTL b"), 5, "ENGINE_TTL", "line 5: ENGINE_TTL is given twice"),
        (
            format!("{HEAD}KAFKA_TOPIC t"),
            4,
            "KAFKA_TOPIC",
            "line 4: KAFKA_TOPIC: Some Kafka params have been provided, but the following required ones are missing: \
             ['kafka_connection_name', 'kafka_group_id']",
        ),
        (
            format!("{HEAD}IMPORT_CONNECTION_NAME c"),
            4,
            "IMPORT_CONNECTION_NAME",
            "the following required ones are missing: ['import_bucket_uri', 'import_schedule']",
        ),
        (
            format!("{HEAD}IMPORT_CONNECTION_NAME c\nIMPORT_SCHEDULE hourly\nIMPORT_BUCKET_URI s3://b/*.csv"),
            5,
            "IMPORT_SCHEDULE",
            "Invalid import schedule 'hourly'. Only ['@auto', '@on-demand', '@once'] values are allowed",
        ),
        (
            format!("{HEAD}IMPORT_TABLE_ARN arn:aws:dynamodb:x"),
            4,
            "IMPORT_TABLE_ARN",
            "Some DynamoDB params have been provided, but the following required ones are missing: \
             ['import_connection_name', 'import_export_bucket']",
        ),
        (
            format!("{HEAD}PG_TABLE t"),
            4,
            "PG_TABLE",
            "Some Postgres params have been provided, but the following required ones are missing: \
             ['pg_connection_name']",
        ),
        (format!("{HEAD}FORWARD_QUERY SELECT 1"), 4, "FORWARD_QUERY", "FORWARD_QUERY must be multiline"),
        (format!("{HEAD}FORWARD_QUERY >"), 4, "FORWARD_QUERY", "FORWARD_QUERY: missing value"),
        (format!("{HEAD}KAFKA_TOPIC >\n    t"), 4, "KAFKA_TOPIC", "KAFKA_TOPIC does not support multiline arguments"),
        (format!("{HEAD}SHARED_WITH , ,"), 4, "SHARED_WITH", "SHARED_WITH requires at least one workspace name"),
        (format!("{HEAD}KAFKA_TOPIC a\nKAFKA_TOPIC b"), 5, "KAFKA_TOPIC", "line 5: KAFKA_TOPIC is given twice"),
        (
            format!("{HEAD}BACKFILL all"),
            4,
            "BACKFILL",
            "line 4: BACKFILL: all is not an allowed value for BACKFILL. Use one of: {'skip'}",
        ),
        (format!("{HEAD}INCLUDE \"x.incl\""), 4, "INCLUDE", "line 4: INCLUDE is not supported yet"),
        (format!("{HEAD}include x.incl"), 4, "INCLUDE", "line 4: INCLUDE: include is not supported yet"),
        (format!("{HEAD}SOURCE x"), 4, "SOURCE", "line 4: SOURCE has been deprecated"),
        (format!("{HEAD}IMPORT_STRATEGY append"), 4, "IMPORT_STRATEGY", "IMPORT_STRATEGY has been deprecated."),
        (
            format!("{HEAD}KAFKA_STORE_BINARY_HEADERS true"),
            4,
            "KAFKA_STORE_BINARY_HEADERS",
            "KAFKA_STORE_BINARY_HEADERS has been deprecated.",
        ),
        ("SCHEMA >\n    a String ALIAS b".into(), 1, "SCHEMA", "column `a`: ALIAS columns are not supported"),
        ("SCHEMA >\n    a DateTime TTL a + 1".into(), 1, "SCHEMA", "column `a`: column TTL is not supported"),
        (format!("{HEAD}TOKEN >\n    x READ"), 4, "TOKEN", "TOKEN does not support multiline arguments"),
        (format!("{HEAD}ENGINE \"MergeTree"), 4, "", "line 4: unterminated quote"),
        (format!("{HEAD}DESCRIPTION > text"), 4, "DESCRIPTION", "unexpected text after `>`"),
        ("DESCRIPTION >\n    no schema".into(), 2, "SCHEMA", "the datasource has no SCHEMA"),
    ];
    for (text, line, keyword, message) in cases {
        let (got_line, got_keyword, got_message) = ds_err(&text);
        assert_eq!(got_line, Some(line), "line for {text:?}: {got_message}");
        assert_eq!(got_keyword.unwrap_or_default(), keyword, "keyword for {text:?}");
        assert!(got_message.contains(message), "message for {text:?}:\n  got  {got_message}\n  want {message}");
    }
}

#[test]
fn a_keyword_at_column_zero_ends_a_block_but_an_indented_one_does_not() {
    let text = "DESCRIPTION >\n    type of thing\n    TOKEN inside\nnot a keyword line\nSCHEMA >\n    a String";
    let def = parse_datasource("ds", text).unwrap();
    // The column-0 line stays in the block, so nothing is dedented (as in Tinybird).
    assert_eq!(def.description.as_deref(), Some("    type of thing\n    TOKEN inside\nnot a keyword line"));
}

#[test]
fn parses_a_hand_written_pipe() {
    let text = r#"DESCRIPTION >
    Top sessions endpoint

TOKEN "read_top" READ

NODE filtered
SQL >
    %
    SELECT session_id, count() AS hits
    FROM events
    WHERE timestamp >= {{DateTime(start, '2024-01-01 00:00:00')}}
    {% if defined(user_ids) %} AND user_id IN {{Array(user_ids, 'UInt64')}} {% end %}
    GROUP BY session_id

NODE endpoint
SQL >
    %
    SELECT * FROM filtered ORDER BY hits DESC LIMIT {{Int32(limit, 10, description="max rows")}}
TYPE Endpoint
"#;
    let pipe = parse_pipe("top_sessions", text).unwrap();
    assert_eq!(pipe.kind, PipeKind::Endpoint);
    assert_eq!(pipe.nodes.len(), 2);
    assert!(pipe.nodes[0].sql.starts_with("%\nSELECT session_id"), "{}", pipe.nodes[0].sql);
    let endpoint = pipe.into_endpoint().unwrap();
    let params: Vec<(&str, &str, Option<&str>, Option<&str>)> = endpoint
        .params
        .iter()
        .map(|p| (p.name.as_str(), p.ty.as_str(), p.default.as_deref(), p.description.as_deref()))
        .collect();
    assert_eq!(
        params,
        [
            ("start", "DateTime", Some("'2024-01-01 00:00:00'"), None),
            ("user_ids", "Array(UInt64)", None, None),
            ("limit", "Int32", Some("10"), Some("max rows")),
        ]
    );
}

#[test]
fn pipe_errors_carry_line_and_keyword() {
    let node = "NODE n\nSQL >\n    SELECT 1\n";
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (format!("FOO x\n{node}"), 1, "FOO", "line 1: FOO is not a valid option in pipe files."),
        (format!("SCHEMA >\n    a String\n{node}"), 1, "SCHEMA", "SCHEMA is not a valid option in pipe files."),
        ("NODE n\nSQL SELECT 1".into(), 2, "SQL", "SQL must be multiline"),
        ("SQL >\n    SELECT 1".into(), 1, "SQL", "SQL must be called after a NODE command"),
        ("TYPE endpoint".into(), 1, "TYPE", "type must be called after a NODE command"),
        (format!("{node}TYPE api"), 4, "TYPE", "Invalid node type (api)"),
        (format!("TOKEN t APPEND\n{node}"), 1, "TOKEN", "Only READ is allowed for pipes"),
        (
            format!("{node}TYPE endpoint\nNODE m\nSQL >\n    SELECT 2\nTYPE copy\nTARGET_DATASOURCE x"),
            8,
            "TYPE",
            "Multiple non-standard nodes in pipe. There can only be one",
        ),
        (
            format!("{node}TYPE endpoint\nNODE m\nSQL >\n    SELECT 2"),
            4,
            "TYPE",
            "the endpoint node `n` must be the last node of the pipe",
        ),
        (format!("{node}TYPE materialized"), 4, "TYPE", "a materialized node needs DATASOURCE"),
        (format!("{node}TYPE copy"), 4, "TYPE", "a copy node needs TARGET_DATASOURCE"),
        (format!("{node}TYPE endpoint\nDATASOURCE x"), 5, "DATASOURCE", "DATASOURCE does not apply to a endpoint pipe"),
        (
            format!("DEPLOYMENT_METHOD drop\n{node}"),
            1,
            "DEPLOYMENT_METHOD",
            "drop is not an allowed value for DEPLOYMENT_METHOD",
        ),
        (format!("INCLUDE \"x.incl\"\n{node}"), 1, "INCLUDE", "line 1: INCLUDE is not supported yet"),
        (format!("SCOPE s\n{node}"), 1, "SCOPE", "SCOPE is valid in Tinybird pipe files but not supported by this SDK"),
        (format!("FILTER x\n{node}"), 1, "FILTER", "filter must be called after a NODE command"),
        (format!("{node}FILTER a\nFILTER b"), 5, "FILTER", "line 5: FILTER is given twice"),
        (format!("{node}FILTER x"), 4, "FILTER", "line 4: FILTER: Standard node 'n' has an invalid attribute (filter)"),
        (
            format!("{node}TAGS \"team=core\"\nTYPE materialized\nDATASOURCE d"),
            4,
            "TAGS",
            "Materialized node 'n' has an invalid attribute (tags)",
        ),
        (
            format!("{node}ON_DEMAND_COMPUTE maybe\nTYPE copy\nTARGET_DATASOURCE d"),
            4,
            "ON_DEMAND_COMPUTE",
            "ON_DEMAND_COMPUTE must be true or false",
        ),
        (
            format!("{node}FILTER x\nTYPE copy\nTARGET_DATASOURCE d"),
            4,
            "FILTER",
            "Copy node 'n' has an invalid attribute (filter)",
        ),
        (
            format!("{node}ON_DEMAND_COMPUTE >\n    true"),
            4,
            "ON_DEMAND_COMPUTE",
            "ON_DEMAND_COMPUTE does not support multiline arguments",
        ),
        ("NODE n\nNODE n\nSQL >\n    SELECT 1".into(), 2, "NODE", "node `n` is declared twice"),
        ("NODE n\nDESCRIPTION >\n    no sql".into(), 1, "NODE", "node `n` has no SQL"),
        ("DESCRIPTION >\n    only a description".into(), 2, "NODE", "Pipe data file must have at least one node"),
        ("NODE".into(), 1, "NODE", "NODE: missing value"),
    ];
    for (text, line, keyword, message) in cases {
        let (got_line, got_keyword, got_message) = pipe_err(&text);
        assert_eq!(got_line, Some(line), "line for {text:?}: {got_message}");
        assert_eq!(got_keyword.unwrap_or_default(), keyword, "keyword for {text:?}");
        assert!(got_message.contains(message), "message for {text:?}:\n  got  {got_message}\n  want {message}");
    }
}

#[test]
fn a_standard_pipe_and_into_endpoint() {
    let pipe = parse_pipe("lib", "NODE a\nSQL >\n    SELECT 1\nTYPE standard").unwrap();
    assert_eq!(pipe.kind, PipeKind::Standard);
    let err = pipe.into_endpoint().unwrap_err();
    assert_eq!(err.to_string(), "TYPE: pipe `lib` is a standard pipe, not an endpoint");
}

#[test]
fn sql_lines_with_odd_quotes_stay_content() {
    let text = "NODE n\nSQL >\n    SELECT 'it''s' AS a, \"x\n    FROM t # not a comment in SQL? Tinybird drops only comment-only lines\nTYPE endpoint";
    let pipe = parse_pipe("p", text).unwrap();
    assert_eq!(
        pipe.nodes[0].sql,
        "SELECT 'it''s' AS a, \"x\nFROM t # not a comment in SQL? Tinybird drops only comment-only lines"
    );
}

#[test]
fn template_errors_point_at_the_file_line() {
    let text = "NODE n\nSQL >\n    %\n    SELECT 1\n    WHERE x = {{ String(x) }\n    AND 1\nTYPE endpoint";
    let err = parse_pipe("p", text).unwrap_err();
    assert_eq!(err.keyword(), Some("SQL"));
    assert!(err.to_string().starts_with("line "), "{err}");
    assert!(err.message().starts_with("node `n`: "), "{err}");
    let err = parse_pipe("p", "NODE n\nSQL >\n    %\n    SELECT {% import os %}\nTYPE endpoint").unwrap_err();
    assert_eq!(err.line(), Some(4), "{err}");
    assert!(err.message().contains("import"), "{err}");
}
