//! Keywords Tinybird accepts that the SDK keeps without interpreting (`TAGS`, `KAFKA_*`, `IMPORT_*`,
//! `FORWARD_QUERY >`, `SHARED_WITH >`, `BACKFILL`, pipe `FILTER`, …): parse → write → parse keeps them, in order,
//! and the writer refuses what Tinybird would refuse.

use tinybird_core::datafile::{
    DatafileSetting, PipeDef, PipeKind, parse_datasource, parse_pipe, write_datasource, write_endpoint, write_pipe,
};
use tinybird_core::datasource::{ColumnDef, DatasourceDef};
use tinybird_core::endpoint::NodeDef;

/// Parses `text`, writes it, parses the result: both parses agree and writing again gives the same text.
fn datasource_round_trip(name: &str, text: &str) -> (DatasourceDef, String) {
    let def = parse_datasource(name, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let written = write_datasource(&def).unwrap();
    let again = parse_datasource(name, &written).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert_eq!(again, def, "\n{written}");
    assert_eq!(write_datasource(&again).unwrap(), written);
    (def, written)
}

fn pipe_round_trip(name: &str, text: &str) -> (PipeDef, String) {
    let def = parse_pipe(name, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let written = write_pipe(&def).unwrap();
    let again = parse_pipe(name, &written).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert_eq!(again, def, "\n{written}");
    assert_eq!(write_pipe(&again).unwrap(), written);
    (def, written)
}

fn line(keyword: &str, value: &str) -> DatafileSetting {
    DatafileSetting::line(keyword, value)
}

#[test]
fn a_kafka_datasource() {
    let text = r#"DESCRIPTION >
    Raw events from the `events` topic

SCHEMA >
    `__value` String,
    `timestamp` DateTime `json:$.timestamp`,
    `user_id` UInt64 `json:$.user_id`

ENGINE "MergeTree"
ENGINE_PARTITION_KEY "toYYYYMM(timestamp)"
ENGINE_SORTING_KEY "timestamp, user_id"

KAFKA_CONNECTION_NAME kafka_prod
KAFKA_TOPIC events
KAFKA_GROUP_ID 'events_consumer_$${ENV}'
KAFKA_AUTO_OFFSET_RESET earliest
KAFKA_STORE_RAW_VALUE True
KAFKA_STORE_HEADERS False
KAFKA_VALUE_FORMAT json_without_schema
"#;
    let (def, written) = datasource_round_trip("kafka_events", text);
    assert_eq!(
        def.settings,
        [
            line("KAFKA_CONNECTION_NAME", "kafka_prod"),
            line("KAFKA_TOPIC", "events"),
            // Tinybird substitutes environment variables here; `$$` is a literal `$`.
            line("KAFKA_GROUP_ID", "events_consumer_${ENV}"),
            line("KAFKA_AUTO_OFFSET_RESET", "earliest"),
            line("KAFKA_STORE_RAW_VALUE", "True"),
            line("KAFKA_STORE_HEADERS", "False"),
            line("KAFKA_VALUE_FORMAT", "json_without_schema"),
        ]
    );
    insta::assert_snapshot!(written);
}

#[test]
fn an_s3_import_datasource() {
    let text = "SCHEMA >
    id UInt64 `json:$.id`,
    amount Float64 `json:$.amount`

ENGINE MergeTree
ENGINE_SORTING_KEY id

IMPORT_CONNECTION_NAME s3_landing
IMPORT_BUCKET_URI s3://landing-bucket/orders/*.ndjson
IMPORT_SCHEDULE @auto
IMPORT_FORMAT ndjson
IMPORT_FROM_TIMESTAMP 2024-01-01T00:00:00Z
";
    let (def, written) = datasource_round_trip("orders", text);
    let keywords: Vec<&str> = def.settings.iter().map(|s| s.keyword.as_str()).collect();
    assert_eq!(
        keywords,
        ["IMPORT_CONNECTION_NAME", "IMPORT_BUCKET_URI", "IMPORT_SCHEDULE", "IMPORT_FORMAT", "IMPORT_FROM_TIMESTAMP"]
    );
    assert_eq!(def.settings[1].value, "s3://landing-bucket/orders/*.ndjson");
    insta::assert_snapshot!(written);
}

#[test]
fn a_datasource_with_forward_query_tags_and_sharing() {
    let text = r#"TAGS "billing, stats"
TOKEN "payments_append" APPEND

SCHEMA >
    `timestamp` DateTime `json:$.timestamp`,
    `user_id` UInt64 `json:$.user_id`,
    `amount` Decimal(18, 2) `json:$.amount`

ENGINE "ReplacingMergeTree"
ENGINE_SORTING_KEY "user_id, timestamp"

FORWARD_QUERY >
    SELECT timestamp, user_id, toDecimal64(amount, 2) AS amount
    FROM payments

SHARED_WITH >
    analytics_ws,
    reporting_ws

BACKFILL skip
TAGS owner=finance
"#;
    let (def, written) = datasource_round_trip("payments", text);
    assert_eq!(
        def.settings,
        [
            line("TAGS", "billing, stats"),
            DatafileSetting::block(
                "FORWARD_QUERY",
                "SELECT timestamp, user_id, toDecimal64(amount, 2) AS amount\nFROM payments"
            ),
            DatafileSetting::block("SHARED_WITH", "analytics_ws,\nreporting_ws"),
            line("BACKFILL", "skip"),
            // Tinybird accumulates TAGS, so a second one is no duplicate.
            line("TAGS", "owner=finance"),
        ]
    );
    assert_eq!(def.tokens.len(), 1);
    insta::assert_snapshot!(written);
}

#[test]
fn a_pipe_with_tags() {
    let text = r#"DESCRIPTION >
    Revenue per day

TAGS "billing, stats"

NODE daily
SQL >
    %
    SELECT toDate(timestamp) AS day, sum(amount) AS revenue
    FROM payments
    WHERE user_id = {{UInt64(user_id, required=True)}}
    GROUP BY day
TAGS "hot"

NODE endpoint
SQL >
    SELECT * FROM daily ORDER BY day
TYPE endpoint
"#;
    let (def, written) = pipe_round_trip("revenue", text);
    assert_eq!(def.settings, [line("TAGS", "billing, stats")]);
    assert_eq!(def.nodes[0].settings, [line("TAGS", "hot")]);
    assert!(def.nodes[1].settings.is_empty());
    insta::assert_snapshot!(written);
    // The endpoint form keeps them and writes them back.
    let endpoint = def.clone().into_endpoint().unwrap();
    assert_eq!(endpoint.settings, def.settings);
    assert_eq!(endpoint.nodes[0].settings, def.nodes[0].settings);
    let from_endpoint = parse_pipe("revenue", &write_endpoint(&endpoint).unwrap()).unwrap();
    assert_eq!(from_endpoint.settings, def.settings);
    assert_eq!(from_endpoint.nodes[0].settings, def.nodes[0].settings);
}

#[test]
fn copy_node_keys_and_deprecated_keywords_tinybird_ignores() {
    // SHARED_WITH arguments are unquoted one by one and split on commas, as Tinybird does.
    let text = "SCHEMA >\n    a String\nSHARED_WITH \"ws_a\" ws_b,ws_c,\n";
    let (def, written) = datasource_round_trip("ds", text);
    assert_eq!(def.settings, [line("SHARED_WITH", "ws_a, ws_b, ws_c")]);
    assert!(written.ends_with("\nSHARED_WITH ws_a, ws_b, ws_c\n"), "{written}");

    let text = "VERSION 2
NODE snapshot
SQL >
    SELECT * FROM events
ON_DEMAND_COMPUTE true
TYPE copy
TARGET_DATASOURCE snapshots
COPY_SCHEDULE @on-demand
EXPORT_SERVICE s3
";
    let (def, written) = pipe_round_trip("snap", text);
    assert_eq!(def.settings, [line("VERSION", "2")]);
    assert_eq!(def.nodes[0].settings, [line("ON_DEMAND_COMPUTE", "true"), line("EXPORT_SERVICE", "s3")]);
    assert!(matches!(def.kind, PipeKind::Copy { .. }));
    assert!(written.contains("\n\nON_DEMAND_COMPUTE true\nEXPORT_SERVICE s3\nTYPE copy\n"), "{written}");

    // Datasource keywords Tinybird reads with a deprecation warning are kept too, and VERSION is not ENGINE_VERSION.
    let text = "SCHEMA >\n    a String\nENGINE VersionedCollapsingMergeTree\nENGINE_SIGN s\nENGINE_VERSION v\n\
                VERSION 1\nKAFKA_TARGET_PARTITIONS auto\nIMPORT_SERVICE s3\nEXPORT_SERVICE s3\n";
    let (def, _) = datasource_round_trip("ds", text);
    assert_eq!(def.engine.version.as_deref(), Some("v"));
    let keywords: Vec<&str> = def.settings.iter().map(|s| s.keyword.as_str()).collect();
    assert_eq!(keywords, ["VERSION", "KAFKA_TARGET_PARTITIONS", "IMPORT_SERVICE", "EXPORT_SERVICE"]);
}

#[test]
fn values_are_written_so_tinybird_reads_them_back() {
    let base = || DatasourceDef {
        name: "ds".into(),
        columns: vec![ColumnDef { name: "a".into(), ty: "String".into(), ..Default::default() }],
        ..Default::default()
    };
    let settings = vec![
        line("KAFKA_CONNECTION_NAME", "conn"),
        // Runs of spaces, a comment sign and a leading quote only survive quoted.
        line("KAFKA_TOPIC", "a  b # c"),
        line("KAFKA_GROUP_ID", "'g"),
        // `$` is doubled where Tinybird substitutes environment variables, left alone where it does not.
        line("KAFKA_KEY_FORMAT", "cost_$1"),
        line("TAGS", "price_$1"),
    ];
    let def = DatasourceDef { settings, ..base() };
    let text = write_datasource(&def).unwrap();
    assert!(
        text.ends_with(
            "KAFKA_CONNECTION_NAME conn\nKAFKA_TOPIC \"a  b # c\"\nKAFKA_GROUP_ID \"'g\"\nKAFKA_KEY_FORMAT cost_$$1\n\
             TAGS price_$1\n"
        ),
        "{text}"
    );
    assert_eq!(parse_datasource("ds", &text).unwrap(), def);

    // Blocks are dedented, then indented by four spaces; blank lines inside stay.
    let def =
        DatasourceDef { settings: vec![DatafileSetting::block("FORWARD_QUERY", "  SELECT a\n\n  FROM t  ")], ..base() };
    let text = write_datasource(&def).unwrap();
    assert!(text.ends_with("FORWARD_QUERY >\n    SELECT a\n\n    FROM t\n"), "{text}");
    assert_eq!(
        parse_datasource("ds", &text).unwrap().settings,
        [DatafileSetting::block("FORWARD_QUERY", "SELECT a\n\nFROM t")]
    );
}

#[test]
fn the_writer_refuses_settings_tinybird_would_not_read_back() {
    let ds = |settings: Vec<DatafileSetting>| DatasourceDef {
        name: "ds".into(),
        columns: vec![ColumnDef { name: "a".into(), ty: "String".into(), ..Default::default() }],
        settings,
        ..Default::default()
    };
    let cases: Vec<(Vec<DatafileSetting>, &str)> = vec![
        (vec![line("KAFKA_TOPCI", "t")], "KAFKA_TOPCI is not a setting this SDK can write in datasource files"),
        (vec![line("ENGINE_TTL", "x")], "ENGINE_TTL is not a setting this SDK can write"),
        (vec![line("INCLUDE", "x.incl")], "INCLUDE is not a setting this SDK can write"),
        (vec![line("FILTER", "x")], "FILTER is not a setting this SDK can write in datasource files"),
        (vec![DatafileSetting::block("KAFKA_TOPIC", "t")], "KAFKA_TOPIC does not support multiline arguments"),
        (vec![line("FORWARD_QUERY", "SELECT 1")], "FORWARD_QUERY must be multiline"),
        (vec![line("PG_TABLE", "a"), line("pg_table", "b")], "PG_TABLE is given twice"),
        (vec![line("TAGS", "  ")], "TAGS: empty value"),
        (vec![line("TAGS", "a\nb")], "cannot be written on one line"),
        // Bare, `it's "x"` reads back as it is; a value starting with a quote needs quoting, and both kinds defeat it.
        (vec![line("TAGS", r#""x" it's"#)], "cannot be written on one line"),
        (vec![DatafileSetting::block("SHARED_WITH", "ws\n# not a comment")], "Tinybird reads as a comment"),
        (vec![DatafileSetting::block("SHARED_WITH", "\n  \n")], "SHARED_WITH: empty value"),
        (vec![line("SHARED_WITH", "ws a, b")], "workspace `ws a` cannot be written on one line"),
    ];
    for (settings, message) in cases {
        let err = write_datasource(&ds(settings.clone())).expect_err(message);
        assert!(err.to_string().contains(message), "{settings:?}:\n  got  {err}\n  want {message}");
    }

    let pipe = |settings: Vec<DatafileSetting>, node_settings: Vec<DatafileSetting>| PipeDef {
        name: "p".into(),
        nodes: vec![NodeDef {
            name: "n".into(),
            sql: "SELECT 1".into(),
            settings: node_settings,
            ..Default::default()
        }],
        settings,
        ..Default::default()
    };
    let err = write_pipe(&pipe(vec![line("FILTER", "x")], vec![])).unwrap_err();
    assert_eq!(err.to_string(), "FILTER: filter must be called after a NODE command");
    let err = write_pipe(&pipe(vec![], vec![line("KAFKA_TOPIC", "x")])).unwrap_err();
    assert!(err.to_string().contains("KAFKA_TOPIC is not a setting this SDK can write in pipe files"), "{err}");
    let twice = PipeDef { kind: PipeKind::Endpoint, ..pipe(vec![], vec![line("FILTER", "a"), line("FILTER", "b")]) };
    let err = write_pipe(&twice).unwrap_err();
    assert_eq!(err.to_string(), "FILTER is given twice");
    let err = write_pipe(&pipe(vec![], vec![line("TAGS", "team=core")])).unwrap_err();
    assert_eq!(err.to_string(), "TAGS: Standard node 'n' has an invalid attribute (tags)");
    // An endpoint node may carry them (Tinybird does not check endpoint nodes).
    let endpoint =
        PipeDef { kind: PipeKind::Endpoint, ..pipe(vec![], vec![line("TAGS", "team=core"), line("FILTER", "x")]) };
    assert_eq!(parse_pipe("p", &write_pipe(&endpoint).unwrap()).unwrap(), endpoint);
    // TAGS may repeat, before and inside nodes.
    let ok = PipeDef {
        kind: PipeKind::Endpoint,
        ..pipe(vec![line("TAGS", "a"), line("TAGS", "b")], vec![line("TAGS", "c"), line("FILTER", "x")])
    };
    assert_eq!(parse_pipe("p", &write_pipe(&ok).unwrap()).unwrap(), ok);
}
