//! generate → parse round trips, over many generated definitions.

use proptest::prelude::*;
use tinybird_core::datafile::{
    DatafileSetting, PipeDef, PipeKind, parse_datasource, parse_pipe, write_datasource, write_endpoint, write_pipe,
};
use tinybird_core::datasource::{ColumnDef, DatasourceDef, EngineDef, IndexDef, TokenDef, TokenPermission};
use tinybird_core::endpoint::{EndpointDef, NodeDef, ParamDef};

fn ident() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,10}"
}

/// Text for descriptions: several lines, each trimmed, none starting with `#`; quotes, braces and `%` included.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec("[A-Za-z0-9][A-Za-z0-9 ,.:'\"{}%()#-]{0,30}", 1..4)
        .prop_map(|lines| lines.iter().map(|l| l.trim().to_owned()).collect::<Vec<_>>().join("\n"))
}

/// One-line values for engine keys: quotes of one kind at most, as an expression would have.
fn expr() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9_(), +*'=$-]{1,30}", "[a-zA-Z0-9_(), +*\"=$-]{1,30}"]
        .prop_filter("non-blank", |s| !s.trim().is_empty())
        .prop_map(|s| s.trim().to_owned())
}

fn column_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("String".to_owned()),
        Just("UInt64".to_owned()),
        Just("Nullable(Int32)".to_owned()),
        Just("LowCardinality(Nullable(String))".to_owned()),
        Just("DateTime64(3, 'UTC')".to_owned()),
        Just("Array(Tuple(a String, b Float64))".to_owned()),
        Just("Map(String, Array(UInt8))".to_owned()),
        Just("Enum8('a, b' = 1, 'it\\'s' = 2)".to_owned()),
        Just("Decimal(18, 4)".to_owned()),
        Just("SimpleAggregateFunction(sum, UInt64)".to_owned()),
        Just("AggregateFunction(quantiles(0.5, 0.9), Float64)".to_owned()),
    ]
}

fn column() -> impl Strategy<Value = ColumnDef> {
    (
        ident(),
        column_type(),
        proptest::option::of(prop_oneof![
            "\\$\\.[a-z]{1,5}",
            "\\$\\.[a-z]{1,5}\\.[a-z]{1,5}",
            "\\$\\.[a-z]{1,5}\\[:\\]"
        ]),
        proptest::option::of(prop_oneof![
            Just("0".to_owned()),
            Just("'x, y'".to_owned()),
            Just("now()".to_owned()),
            Just("[]".to_owned())
        ]),
        proptest::option::of(prop_oneof![Just("ZSTD(1)".to_owned()), Just("Delta(4), LZ4".to_owned())]),
    )
        .prop_map(|(name, ty, json_path, default, codec)| ColumnDef { name, ty, json_path, default, codec })
}

/// One-line setting values: spaces (runs of them too), `$`, `#`, `:` and one kind of quote, anywhere.
fn setting_value() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9_ ,.:/@$#'=-]{1,24}", "[a-zA-Z0-9_ ,.:/@$#\"=-]{1,24}"]
        .prop_filter("non-blank", |s| !s.trim().is_empty())
        .prop_map(|s| s.trim().to_owned())
}

/// A one-line setting or a block, as `keyword` allows.
fn setting(keyword: &'static str, line: bool, block: bool) -> BoxedStrategy<DatafileSetting> {
    let block_text = text().prop_filter("no template tags", |t| !["{{", "{%", "{#"].iter().any(|o| t.contains(o)));
    match (line, block) {
        (true, true) => prop_oneof![
            setting_value().prop_map(move |v| DatafileSetting::line(keyword, v)),
            block_text.prop_map(move |v| DatafileSetting::block(keyword, v)),
        ]
        .boxed(),
        (true, false) => setting_value().prop_map(move |v| DatafileSetting::line(keyword, v)).boxed(),
        _ => block_text.prop_map(move |v| DatafileSetting::block(keyword, v)).boxed(),
    }
}

/// Datasource settings Tinybird accepts together: at most one connector with its required keys, and the other
/// kept keywords, shuffled.
fn datasource_settings() -> impl Strategy<Value = Vec<DatafileSetting>> {
    let fixed = |keyword: &'static str, value: &'static str| Just(DatafileSetting::line(keyword, value)).boxed();
    let connector: BoxedStrategy<Vec<DatafileSetting>> = prop_oneof![
        Just(Vec::new()),
        (
            setting("KAFKA_CONNECTION_NAME", true, false),
            setting("KAFKA_TOPIC", true, false),
            setting("KAFKA_GROUP_ID", true, false),
            proptest::option::of(fixed("KAFKA_AUTO_OFFSET_RESET", "earliest")),
            proptest::option::of(fixed("KAFKA_STORE_RAW_VALUE", "True")),
            proptest::option::of(fixed("KAFKA_VALUE_FORMAT", "json_without_schema")),
        )
            .prop_map(|(a, b, c, d, e, f)| [Some(a), Some(b), Some(c), d, e, f].into_iter().flatten().collect()),
        (
            setting("IMPORT_CONNECTION_NAME", true, false),
            proptest::sample::select(vec!["@once", "@on-demand", "@auto"]),
            setting("IMPORT_BUCKET_URI", true, false),
            proptest::option::of(fixed("IMPORT_FORMAT", "ndjson")),
            proptest::option::of(setting("IMPORT_FROM_TIMESTAMP", true, false)),
        )
            .prop_map(|(a, schedule, c, d, e)| {
                [Some(a), Some(DatafileSetting::line("IMPORT_SCHEDULE", schedule)), Some(c), d, e]
                    .into_iter()
                    .flatten()
                    .collect()
            }),
        (
            setting("IMPORT_CONNECTION_NAME", true, false),
            setting("IMPORT_TABLE_ARN", true, false),
            setting("IMPORT_EXPORT_BUCKET", true, false)
        )
            .prop_map(|(a, b, c)| vec![a, b, c]),
        (setting("PG_CONNECTION_NAME", true, false), setting("PG_TABLE", true, false)).prop_map(|(a, b)| vec![a, b]),
    ]
    .boxed();
    (
        connector,
        proptest::collection::vec(setting("TAGS", true, true), 0..3),
        proptest::collection::vec(
            prop_oneof![
                // One line is a comma list of plain names (Tinybird splits each argument on commas).
                proptest::collection::vec(ident(), 1..4)
                    .prop_map(|names| DatafileSetting::line("SHARED_WITH", names.join(", "))),
                setting("SHARED_WITH", false, true),
            ],
            0..2,
        ),
        proptest::option::of(setting("FORWARD_QUERY", false, true)),
        proptest::option::of(prop_oneof![fixed("BACKFILL", "skip"), fixed("BACKFILL", "SKIP")]),
        proptest::option::of(setting("VERSION", true, true)),
    )
        .prop_flat_map(|(connector, tags, shared, forward, backfill, version)| {
            let all: Vec<DatafileSetting> =
                connector.into_iter().chain(tags).chain(shared).chain(forward).chain(backfill).chain(version).collect();
            Just(all).prop_shuffle()
        })
}

fn token(permissions: &'static [TokenPermission]) -> impl Strategy<Value = TokenDef> {
    ("[a-z][a-z0-9_ ]{0,10}", proptest::sample::select(permissions))
        .prop_map(|(name, permission)| TokenDef { name: name.trim().to_owned(), permission })
}

fn datasource() -> impl Strategy<Value = DatasourceDef> {
    let engine = (
        proptest::sample::select(vec!["MergeTree", "ReplacingMergeTree", "SummingMergeTree", "Null"]),
        proptest::collection::vec(proptest::option::of(expr()), 11),
    )
        .prop_map(|(kind, keys)| {
            let mut keys = keys.into_iter();
            let mut next = || keys.next().flatten();
            EngineDef {
                kind: kind.to_owned(),
                partition_key: next(),
                sorting_key: next(),
                primary_key: next(),
                sampling_key: next(),
                ttl: next(),
                ver: next(),
                sign: next(),
                version: next(),
                is_deleted: next(),
                columns: next(),
                settings: next(),
            }
        });
    let index = (ident(), expr(), prop_oneof![Just("minmax"), Just("bloom_filter(0.01)"), Just("set(100)")], 1u32..10)
        .prop_map(|(name, expr, ty, granularity)| IndexDef { name, expr, ty: ty.to_owned(), granularity });
    (
        ident(),
        // Tinybird renders a .datasource as a template, so the writer refuses template tags there (tested apart).
        proptest::option::of(
            text().prop_filter("no template tags", |t| !["{{", "{%", "{#"].iter().any(|o| t.contains(o))),
        ),
        proptest::collection::vec(column(), 1..6),
        engine,
        proptest::collection::vec(index, 0..3),
        proptest::collection::vec(token(&[TokenPermission::Read, TokenPermission::Append]), 0..3),
        datasource_settings(),
    )
        .prop_map(|(name, description, mut columns, engine, mut indexes, tokens, settings)| {
            columns.dedup_by(|a, b| a.name == b.name);
            let mut seen = Vec::new();
            columns.retain(|c| {
                if seen.contains(&c.name) {
                    false
                } else {
                    seen.push(c.name.clone());
                    true
                }
            });
            let mut seen = Vec::new();
            indexes.retain(|i| {
                if seen.contains(&i.name) {
                    false
                } else {
                    seen.push(i.name.clone());
                    true
                }
            });
            DatasourceDef { name, description, columns, engine, indexes, tokens, settings }
        })
}

/// A param, the typed placeholder that uses it, and the SQL around it.
fn param() -> impl Strategy<Value = (ParamDef, String)> {
    let function = proptest::sample::select(vec![
        ("String", "String", "'dflt'"),
        ("Int32", "Int32", "10"),
        ("UInt64", "UInt64", "18446744073709551615"),
        ("Float64", "Float64", "1.5"),
        ("DateTime", "DateTime", "'2024-01-01 00:00:00'"),
        ("Date", "Date", "'2024-01-01'"),
        ("Array", "Array(Int32)", "'1,2'"),
        ("Boolean", "Boolean", "1"),
    ]);
    // Param names the template language accepts: no dunders, no Python keywords, not `q` or `format`.
    let name = "p_[a-z0-9]{0,4}(_[a-z0-9]{1,4})?";
    (name, function, any::<bool>(), any::<bool>(), proptest::option::of(text())).prop_map(
        |(name, (function, ty, default_literal), required, with_default, description)| {
            // Boolean() takes no metadata in Tinybird, so the generator gives it none.
            let (required, description) = if function == "Boolean" { (false, None) } else { (required, description) };
            let placeholder = match function {
                "Array" => format!("{{{{Array({name}, 'Int32')}}}}"),
                f => format!("{{{{ {f}({name}) }}}}"),
            };
            let param = ParamDef {
                name,
                ty: ty.to_owned(),
                required,
                default: with_default.then(|| default_literal.to_owned()),
                description,
            };
            (param, placeholder)
        },
    )
}

fn endpoint() -> impl Strategy<Value = EndpointDef> {
    (
        ident(),
        proptest::option::of(text()),
        proptest::collection::vec(param(), 0..5),
        proptest::collection::vec((ident(), proptest::option::of(text())), 1..4),
        proptest::collection::vec(token(&[TokenPermission::Read]), 0..3),
    )
        .prop_map(|(name, description, params, nodes, tokens)| {
            let mut seen = Vec::new();
            let params: Vec<(ParamDef, String)> = params
                .into_iter()
                .filter(|(p, _)| {
                    if seen.contains(&p.name) {
                        false
                    } else {
                        seen.push(p.name.clone());
                        true
                    }
                })
                .collect();
            let mut seen = Vec::new();
            let nodes: Vec<(String, Option<String>)> = nodes
                .into_iter()
                .filter(|(n, _)| {
                    if seen.contains(n) {
                        false
                    } else {
                        seen.push(n.clone());
                        true
                    }
                })
                .collect();
            let count = nodes.len();
            let nodes = nodes
                .into_iter()
                .enumerate()
                .map(|(i, (node_name, node_description))| {
                    // The placeholders go in the last node, indented as in a Rust literal.
                    let sql = if i + 1 == count && !params.is_empty() {
                        let uses: Vec<&str> = params.iter().map(|(_, p)| p.as_str()).collect();
                        format!("%\n        SELECT\n            {}\n        FROM t", uses.join(",\n            "))
                    } else {
                        format!("SELECT {i} AS n\nFROM t{i}")
                    };
                    NodeDef { name: node_name, description: node_description, sql, settings: Vec::new() }
                })
                .collect();
            EndpointDef {
                name,
                description,
                nodes,
                params: params.into_iter().map(|(p, _)| p).collect(),
                tokens,
                ..Default::default()
            }
        })
}

fn pipe() -> impl Strategy<Value = PipeDef> {
    let kind = prop_oneof![
        Just(PipeKind::Standard),
        Just(PipeKind::Endpoint),
        (ident(), proptest::option::of(Just("alter".to_owned())))
            .prop_map(|(datasource, deployment_method)| PipeKind::Materialized { datasource, deployment_method }),
        (ident(), proptest::option::of(Just("0 * * * *".to_owned())), proptest::option::of(Just("replace".to_owned())))
            .prop_map(|(target_datasource, schedule, mode)| PipeKind::Copy { target_datasource, schedule, mode }),
    ];
    let pipe_settings = (
        proptest::collection::vec(setting("TAGS", true, true), 0..3),
        proptest::option::of(setting("VERSION", true, true)),
    )
        .prop_flat_map(|(tags, version)| Just(tags.into_iter().chain(version).collect::<Vec<_>>()).prop_shuffle());
    let node_settings = (
        proptest::option::of(setting("FILTER", true, false)),
        proptest::option::of(setting("ON_DEMAND_COMPUTE", true, false)),
        proptest::collection::vec(setting("TAGS", true, true), 0..2),
        proptest::sample::select(vec!["true", "False", "0", "yes"]),
    )
        .prop_flat_map(|(filter, compute, tags, flag)| {
            (Just(filter.into_iter().chain(compute).chain(tags).collect::<Vec<_>>()).prop_shuffle(), Just(flag))
        });
    (ident(), proptest::option::of(text()), "[a-z]{1,8}", kind, pipe_settings, node_settings).prop_map(
        |(name, description, node, kind, settings, (node_settings, flag))| {
            // What Tinybird lets each node type carry: endpoints anything; copies ON_DEMAND_COMPUTE (a boolean);
            // other nodes only plain tags (`key=value` tags are node attributes).
            let node_settings: Vec<DatafileSetting> = node_settings
                .into_iter()
                .filter_map(|s| match (&kind, s.keyword.as_str()) {
                    (PipeKind::Endpoint, _) => Some(s),
                    (PipeKind::Copy { .. }, "ON_DEMAND_COMPUTE") => {
                        Some(DatafileSetting::line("ON_DEMAND_COMPUTE", flag))
                    }
                    (_, "TAGS") if !s.value.contains('=') => Some(s),
                    _ => None,
                })
                .collect();
            pipe_def(name, description, node, kind, settings, node_settings)
        },
    )
}

fn pipe_def(
    name: String,
    description: Option<String>,
    node: String,
    kind: PipeKind,
    settings: Vec<DatafileSetting>,
    node_settings: Vec<DatafileSetting>,
) -> PipeDef {
    PipeDef {
        name,
        description,
        nodes: vec![NodeDef {
            name: node,
            description: None,
            sql: "SELECT 1\n\nFROM t\n  WHERE x = '#'".into(),
            settings: node_settings,
        }],
        tokens: vec![],
        kind,
        settings,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn datasources_round_trip(def in datasource()) {
        let text = write_datasource(&def).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed = parse_datasource(&def.name, &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let mut expected = def.clone();
        if expected.engine.kind.is_empty() && parsed.engine != EngineDef::default() {
            expected.engine.kind = "MergeTree".into();
        }
        prop_assert_eq!(&parsed, &expected, "\n{}", text);
        prop_assert_eq!(write_datasource(&parsed).unwrap(), text);
    }

    #[test]
    fn endpoints_round_trip(def in endpoint()) {
        let text = write_endpoint(&def).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let pipe = parse_pipe(&def.name, &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&pipe.kind, &PipeKind::Endpoint);
        let parsed = pipe.into_endpoint().unwrap();
        prop_assert_eq!(&parsed.params, &def.params, "\n{}", text);
        prop_assert_eq!(&parsed.description, &def.description);
        prop_assert_eq!(&parsed.tokens, &def.tokens);
        let names = |e: &EndpointDef| e.nodes.iter().map(|n| (n.name.clone(), n.description.clone())).collect::<Vec<_>>();
        prop_assert_eq!(names(&parsed), names(&def));
        // The file of the parsed endpoint is the same file: metadata is injected once.
        prop_assert_eq!(write_endpoint(&parsed).unwrap(), text);
    }

    #[test]
    fn pipes_round_trip(def in pipe()) {
        let text = write_pipe(&def).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed = parse_pipe(&def.name, &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&parsed, &def, "\n{}", text);
        prop_assert_eq!(write_pipe(&parsed).unwrap(), text);
    }

    #[test]
    fn the_parsers_never_panic(input in "(?s)[A-Za-z_ >\n\t`'\"#%{}(),.$:=0-9\u{3000}é-]{0,200}") {
        let _ = parse_datasource("x", &input);
        let _ = parse_pipe("x", &input);
    }

    #[test]
    fn the_parsers_never_panic_on_keyword_soup(
        lines in proptest::collection::vec(
            (proptest::sample::select(vec!["SCHEMA >", "NODE n", "SQL >", "TYPE endpoint", "TOKEN t READ",
                "ENGINE MergeTree", "INDEXES >", "DESCRIPTION >", "    a String", "    SELECT 1", "    `x` UInt8,",
                "TYPE copy", "TARGET_DATASOURCE x", "    i a TYPE minmax GRANULARITY 1", "ENGINE_TTL \"x\"", ""]),
             "[ a-z'\"`(),]{0,8}"),
            0..20)
    ) {
        let text: String = lines.iter().map(|(k, tail)| format!("{k}{tail}\n")).collect();
        let _ = parse_datasource("x", &text);
        let _ = parse_pipe("x", &text);
    }
}
