//! Golden datafiles for the seed's resources (`events`, `user_analytics`, `top_events`, `org_analytics`), checked
//! with snapshots, and parsed back.

use tinybird_core::datafile::{
    PipeDef, PipeKind, parse_datasource, parse_pipe, write_datasource, write_endpoint, write_pipe,
};
use tinybird_core::datasource::{ColumnDef, DatasourceDef, EngineDef, IndexDef, TokenDef, TokenPermission};
use tinybird_core::endpoint::{EndpointDef, NodeDef, ParamDef};

fn column(name: &str, ty: &str, json_path: &str) -> ColumnDef {
    ColumnDef { name: name.into(), ty: ty.into(), json_path: Some(json_path.into()), ..Default::default() }
}

fn param(name: &str, ty: &str) -> ParamDef {
    ParamDef { name: name.into(), ty: ty.into(), ..Default::default() }
}

fn token(name: &str, permission: TokenPermission) -> TokenDef {
    TokenDef { name: name.into(), permission }
}

fn events() -> DatasourceDef {
    DatasourceDef {
        name: "events".into(),
        description: Some(
            "Product events, one row per action of a user.\n\nIngested from the browser and the backend.".into(),
        ),
        columns: vec![
            column("timestamp", "DateTime", "$.timestamp"),
            column("org_id", "UInt64", "$.org_id"),
            column("user_id", "UInt64", "$.user_id"),
            column("event_type", "LowCardinality(String)", "$.event_type"),
            ColumnDef {
                default: Some("''".into()),
                codec: Some("ZSTD(1)".into()),
                ..column("page", "String", "$.properties.page")
            },
            column("duration_ms", "Nullable(UInt32)", "$.duration_ms"),
        ],
        engine: EngineDef {
            kind: "MergeTree".into(),
            sorting_key: Some("org_id, user_id, timestamp".into()),
            partition_key: Some("toYYYYMM(timestamp)".into()),
            ttl: Some("timestamp + INTERVAL 90 DAY".into()),
            settings: Some("index_granularity=8192".into()),
            ..Default::default()
        },
        indexes: vec![IndexDef {
            name: "idx_event_type".into(),
            expr: "event_type".into(),
            ty: "bloom_filter(0.01)".into(),
            granularity: 4,
        }],
        tokens: vec![token("events_append", TokenPermission::Append), token("events_read", TokenPermission::Read)],
        settings: vec![],
    }
}

fn user_analytics() -> EndpointDef {
    EndpointDef {
        name: "user_analytics".into(),
        description: Some(
            "Daily event counts for one user: the endpoint a browser calls with a JWT that pins `user_id`.".into(),
        ),
        nodes: vec![NodeDef {
            settings: Vec::new(),
            name: "user_analytics_0".into(),
            description: None,
            sql: "%
SELECT toDate(timestamp) AS day, count() AS events
FROM events
WHERE user_id = {{UInt64(user_id)}}
{% if defined(start_date) %} AND timestamp >= {{DateTime(start_date)}} {% end %}
{% if defined(end_date) %} AND timestamp <= {{DateTime(end_date)}} {% end %}
GROUP BY day
ORDER BY day
LIMIT {{UInt32(limit, 100)}}"
                .into(),
        }],
        params: vec![
            ParamDef {
                required: true,
                description: Some("The user whose events are counted.".into()),
                ..param("user_id", "UInt64")
            },
            ParamDef { description: Some("Start of the date range.".into()), ..param("start_date", "DateTime") },
            ParamDef { description: Some("End of the date range.".into()), ..param("end_date", "DateTime") },
            ParamDef {
                default: Some("100".into()),
                description: Some("Maximum number of days".into()),
                ..param("limit", "UInt32")
            },
        ],
        tokens: vec![token("dashboard", TokenPermission::Read)],
        ..Default::default()
    }
}

fn top_events() -> EndpointDef {
    EndpointDef {
        name: "top_events".into(),
        description: Some("The most frequent event types in a time window.".into()),
        nodes: vec![
            NodeDef {
settings: Vec::new(),
                name: "windowed".into(),
                description: Some("Events in the window".into()),
                // Indented as it would be in a Rust string literal: the generator dedents it.
                sql: "%
                    SELECT event_type
                    FROM events
                    WHERE timestamp >= {{DateTime(start, '2024-01-01 00:00:00')}}
                    {% if defined(event_types) %} AND event_type IN {{Array(event_types, 'String')}} {% end %}
                "
                .into(),
            },
            NodeDef {
settings: Vec::new(),
                name: "endpoint".into(),
                description: None,
                sql: "%\nSELECT event_type, count() AS events\nFROM windowed\nGROUP BY event_type\nORDER BY events DESC\nLIMIT {{Int32(limit, 10)}}".into(),
            },
        ],
        params: vec![
            ParamDef { default: Some("'2024-01-01 00:00:00'".into()), ..param("start", "DateTime") },
            param("event_types", "Array(String)"),
            ParamDef { default: Some("10".into()), ..param("limit", "Int32") },
        ],
        cache_ttl: Some(60),
        ..Default::default()
    }
}

fn org_analytics() -> EndpointDef {
    EndpointDef {
        name: "org_analytics".into(),
        description: Some(
            "Per-org analytics for a multi-tenant app:\nthe org comes from the JWT's `fixed_params`.".into(),
        ),
        nodes: vec![NodeDef {
            settings: Vec::new(),
            name: "org_analytics_0".into(),
            description: None,
            sql: "%
SELECT user_id, count() AS events, max(timestamp) AS last_seen
FROM events
WHERE org_id = {{UInt64(org_id, required=True)}}
GROUP BY user_id
ORDER BY events DESC"
                .into(),
        }],
        params: vec![ParamDef {
            required: true,
            description: Some("The tenant, pinned by the JWT".into()),
            ..param("org_id", "UInt64")
        }],
        tokens: vec![token("org_dashboard", TokenPermission::Read)],
        ..Default::default()
    }
}

#[test]
fn events_datasource() {
    let text = write_datasource(&events()).unwrap();
    insta::assert_snapshot!(text);
    assert_eq!(parse_datasource("events", &text).unwrap(), events());
}

fn check_endpoint(def: &EndpointDef) -> String {
    let text = write_endpoint(def).unwrap();
    let parsed = parse_pipe(&def.name, &text).unwrap();
    assert_eq!(parsed.kind, PipeKind::Endpoint);
    let endpoint = parsed.into_endpoint().unwrap();
    // Every declared param comes back from the placeholders with its metadata.
    let mut expected = def.params.clone();
    let mut got = endpoint.params.clone();
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    got.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(got, expected);
    assert_eq!(endpoint.description, def.description);
    assert_eq!(endpoint.tokens, def.tokens);
    assert_eq!(
        endpoint.nodes.iter().map(|n| &n.name).collect::<Vec<_>>(),
        def.nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
    );
    // Writing what was read gives the same file.
    assert_eq!(write_endpoint(&endpoint).unwrap(), text);
    text
}

#[test]
fn user_analytics_pipe() {
    insta::assert_snapshot!(check_endpoint(&user_analytics()));
}

#[test]
fn top_events_pipe() {
    insta::assert_snapshot!(check_endpoint(&top_events()));
}

#[test]
fn org_analytics_pipe() {
    insta::assert_snapshot!(check_endpoint(&org_analytics()));
}

#[test]
fn materialized_and_copy_pipes() {
    let node =
        |name: &str, sql: &str| NodeDef { settings: Vec::new(), name: name.into(), description: None, sql: sql.into() };
    let mv = PipeDef {
        name: "events_per_day_mv".into(),
        description: Some("Feeds events_per_day".into()),
        nodes: vec![node(
            "per_day",
            "SELECT toDate(timestamp) AS day, org_id, count() AS events\nFROM events\nGROUP BY day, org_id",
        )],
        tokens: vec![],
        settings: vec![],
        kind: PipeKind::Materialized { datasource: "events_per_day".into(), deployment_method: Some("alter".into()) },
    };
    let copy = PipeDef {
        name: "daily_snapshot".into(),
        description: None,
        nodes: vec![node("snapshot", "SELECT * FROM events_per_day WHERE day = yesterday()")],
        tokens: vec![],
        settings: vec![],
        kind: PipeKind::Copy {
            target_datasource: "snapshots".into(),
            schedule: Some("0 0 * * *".into()),
            mode: Some("append".into()),
        },
    };
    let sink = PipeDef {
        name: "export_events".into(),
        description: None,
        nodes: vec![node("export", "SELECT * FROM events")],
        tokens: vec![],
        settings: vec![],
        kind: PipeKind::Sink {
            settings: vec![
                ("EXPORT_CONNECTION_NAME".into(), "s3_conn".into()),
                ("EXPORT_BUCKET_URI".into(), "s3://bucket/prefix".into()),
                ("EXPORT_FILE_TEMPLATE".into(), "events_{date}".into()),
                ("EXPORT_SCHEDULE".into(), "0 * * * *".into()),
                ("EXPORT_FORMAT".into(), "ndjson".into()),
            ],
        },
    };
    let mut all = String::new();
    for def in [mv, copy, sink] {
        let text = write_pipe(&def).unwrap();
        assert_eq!(parse_pipe(&def.name, &text).unwrap(), def);
        all.push_str(&format!("==> {}.pipe\n{text}", def.name));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn values_are_written_the_way_tinybird_reads_them() {
    let def = DatasourceDef {
        name: "quirks".into(),
        columns: vec![
            ColumnDef { ty: "Enum8('it\\'s' = 1, 'back\\\\slash' = 2)".into(), ..column("kind", "", "$.kind") },
            ColumnDef { default: Some("concat('it\\'s', '$x')".into()), ..column("s", "String", "$.s") },
        ],
        engine: EngineDef {
            kind: "MergeTree".into(),
            ttl: Some("t + INTERVAL 1 DAY -- $HOME".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let text = write_datasource(&def).unwrap();
    insta::assert_snapshot!(text);
    // `\'` becomes `''` (Tinybird's schema parser rejects `\'`), `$` becomes `$$` where Tinybird substitutes
    // environment variables.
    assert!(text.contains("Enum8('it''s' = 1, 'back\\\\slash' = 2)"), "{text}");
    assert!(text.contains("DEFAULT concat('it''s', '$x')"), "{text}");
    assert!(text.contains("ENGINE_TTL \"t + INTERVAL 1 DAY -- $$HOME\""), "{text}");
    let parsed = parse_datasource("quirks", &text).unwrap();
    assert_eq!(parsed.columns[0].ty, "Enum8('it\\'s' = 1, 'back\\\\slash' = 2)");
    assert_eq!(parsed.columns[1].default.as_deref(), Some("concat('it''s', '$x')"));
    assert_eq!(parsed.engine.ttl, def.engine.ttl);
}

#[test]
fn what_cannot_be_written_is_an_error() {
    let base = events();
    let err = |def: &DatasourceDef| write_datasource(def).unwrap_err().to_string();
    let mut def = base.clone();
    def.description = Some("Use {{ tb_secret('x') }} here".into());
    assert_eq!(
        err(&def),
        "line 2 would contain `{{`, which Tinybird reads as a template tag: `    Use {{ tb_secret('x') }} here`"
    );
    let mut def = base.clone();
    def.description = Some("Intro\n# Heading".into());
    assert_eq!(err(&def), "DESCRIPTION: the line `# Heading` starts with `#`, which Tinybird reads as a comment");
    let mut def = base.clone();
    def.engine.ttl = Some("a = 'x' OR b = \"y\"".into());
    assert!(err(&def).starts_with("ENGINE_TTL: `a = 'x' OR b = \"y\"` cannot be written on one line"), "{}", err(&def));
    let mut def = base.clone();
    def.columns[0].ty = "DateTime64(12)".into();
    assert_eq!(
        err(&def),
        "SCHEMA: column `timestamp`: invalid Tinybird type `DateTime64(12)`: DateTime64 precision must be in 0..=9, found 12 at position 11"
    );
    let mut def = base.clone();
    def.columns[0].json_path = Some("timestamp".into());
    assert!(err(&def).contains("invalid JSONPath `timestamp`"));
    let mut def = base.clone();
    def.columns.clear();
    assert_eq!(err(&def), "SCHEMA: datasource `events` has no columns");
    let mut def = base;
    def.columns[1].name = "a`b".into();
    assert_eq!(err(&def), "SCHEMA: invalid column name `a`b`");

    let mut endpoint = user_analytics();
    endpoint.tokens.push(token("writer", TokenPermission::Append));
    assert_eq!(
        write_endpoint(&endpoint).unwrap_err().to_string(),
        "TOKEN: token `writer`: only READ is allowed in pipes"
    );
    let mut endpoint = user_analytics();
    endpoint.nodes.clear();
    assert_eq!(write_endpoint(&endpoint).unwrap_err().to_string(), "NODE: pipe `user_analytics` has no nodes");
    let mut endpoint = user_analytics();
    endpoint.nodes[0].sql = "  \n ".into();
    assert_eq!(write_endpoint(&endpoint).unwrap_err().to_string(), "SQL: node `user_analytics_0` has no SQL");
}

/// The typed connections (every kind and way to authenticate) and sinks, as written: golden, and read back.
#[test]
fn typed_connections_and_sinks() {
    use tinybird_core::connections::{
        Connection, DynamoDbConnection, GcsConnection, KafkaConnection, KafkaSaslMechanism, KafkaSecurityProtocol,
        S3Connection, Secret,
    };
    use tinybird_core::datafile::{parse_connection, write_connection};
    use tinybird_core::pipes::{SinkCompression, SinkFormat, SinkPipe, SinkStrategy};
    let kafka = KafkaConnection::new("events_kafka", "broker-1:9092,broker-2:9092")
        .security_protocol(KafkaSecurityProtocol::SaslSsl)
        .sasl_mechanism(KafkaSaslMechanism::ScramSha256)
        .key(Secret::new("KAFKA_KEY"))
        .secret(Secret::new("KAFKA_SECRET"))
        .schema_registry_url("https://registry.example.com")
        .ssl_ca_pem(Secret::new("KAFKA_CA_PEM"));
    let s3 = S3Connection::with_role("exports", "eu-west-1", "arn:aws:iam::123456789012:role/tinybird");
    let s3_keys =
        S3Connection::with_keys("landing", "us-east-1", Secret::new("S3_KEY"), Secret::new("S3_SECRET").or_default(""));
    let gcs = GcsConnection::with_service_account("archive", Secret::new("GCS_SERVICE_ACCOUNT"));
    let ddb = DynamoDbConnection::new("orders_ddb", "us-east-1", "arn:aws:iam::123456789012:role/ddb");
    let connections: [&dyn Connection; 5] = [&kafka, &s3, &s3_keys, &gcs, &ddb];
    let mut out = String::new();
    for connection in connections {
        let def = connection.definition().unwrap();
        let text = write_connection(&def).unwrap();
        assert_eq!(parse_connection(&def.name, &text).unwrap(), def);
        out.push_str(&format!("=== connections/{}.connection\n{text}", def.name));
    }
    let to_bucket = SinkPipe::to_bucket("events_export", &s3, "s3://exports/events", "events")
        .description("Yesterday's events, every night")
        .node("yesterday", "SELECT * FROM events WHERE toDate(timestamp) = yesterday()")
        .schedule(tinybird_core::cron!("0 3 * * *"))
        .strategy(SinkStrategy::Replace)
        .compression(SinkCompression::Gzip)
        .format(SinkFormat::Parquet);
    let to_kafka = SinkPipe::to_kafka("events_stream", &kafka, "events_out").node("all", "SELECT * FROM events");
    for sink in [to_bucket.definition(), to_kafka.definition()] {
        let text = write_pipe(&sink).unwrap();
        assert_eq!(parse_pipe(&sink.name, &text).unwrap(), sink);
        out.push_str(&format!("=== pipes/{}.pipe\n{text}", sink.name));
    }
    insta::assert_snapshot!(out);
}
