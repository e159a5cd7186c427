//! The ClickHouse compatibility layer, checked against ClickHouse's own answers (the expected values below are what
//! ClickHouse returns for the same query and data, not what DataFusion returns natively).

use super::{DataFusionEngine, Engine, EngineError};
use crate::format::{OutputOptions, json_value};
use crate::ingest::{IngestColumn, parse_ndjson};
use crate::types::ChType;
use tinybird_core::datasource::{ColumnDef, DatasourceDef};

async fn engine() -> DataFusionEngine {
    let engine = DataFusionEngine::new();
    let cols = [
        ("id", "UInt64"),
        ("name", "String"),
        ("ts", "DateTime"),
        ("v", "Float64"),
        ("arr", "Array(String)"),
        ("n", "Nullable(Int32)"),
    ];
    let def = DatasourceDef {
        name: "t".into(),
        columns: cols
            .iter()
            .map(|(n, t)| ColumnDef { name: n.to_string(), ty: t.to_string(), ..Default::default() })
            .collect(),
        ..Default::default()
    };
    engine.create_table(&def).await.unwrap();
    let ingest: Vec<IngestColumn> =
        cols.iter().map(|(n, t)| IngestColumn::new(n, ChType::parse(t).unwrap(), None, None)).collect();
    let body = br#"{"id":1,"name":"a","ts":"2024-01-15 10:30:45","v":1.5,"arr":["x","y"],"n":1}
{"id":2,"name":"B","ts":"2024-01-16 23:59:59","v":2.5,"arr":[],"n":null}
{"id":3,"name":"c","ts":"2024-02-01 00:00:00","v":4.0,"arr":["z"],"n":3}"#;
    let parsed = parse_ndjson(body, &ingest);
    assert!(parsed.quarantined.is_empty(), "{:?}", parsed.quarantined);
    engine.append("t", parsed.rows).await.unwrap();
    engine
}

/// Runs a query and returns (type of the first column, each row's first value as ClickHouse JSON).
async fn run(engine: &DataFusionEngine, sql: &str) -> (String, Vec<String>) {
    let result = engine.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let ty = result.columns[0].ty.clone();
    let values = result
        .rows()
        .iter()
        .map(|r| {
            let mut s = String::new();
            json_value(&mut s, &r[0], &ty, OutputOptions::default());
            s
        })
        .collect();
    (ty.to_string(), values)
}

async fn check(engine: &DataFusionEngine, sql: &str, ty: &str, value: &str) {
    let (got_ty, got) = run(engine, sql).await;
    assert_eq!((got_ty.as_str(), got.join("|").as_str()), (ty, value), "{sql}");
}

#[tokio::test]
async fn aggregates_match_clickhouse() {
    let e = engine().await;
    check(&e, "SELECT count() FROM t", "UInt64", "3").await;
    check(&e, "SELECT count(*) FROM t", "UInt64", "3").await;
    check(&e, "SELECT count(n) FROM t", "UInt64", "2").await;
    check(&e, "SELECT countIf(v > 2) FROM t", "UInt64", "2").await;
    check(&e, "SELECT sum(id) FROM t", "UInt64", "6").await;
    check(&e, "SELECT sum(v) FROM t", "Float64", "8").await;
    check(&e, "SELECT sum(id) FROM t WHERE id > 10", "UInt64", "0").await;
    check(&e, "SELECT sumIf(id, v > 2) FROM t", "UInt64", "5").await;
    check(&e, "SELECT avg(v) FROM t", "Float64", "2.6666666666666665").await;
    check(&e, "SELECT avgIf(v, id > 1) FROM t", "Float64", "3.25").await;
    check(&e, "SELECT minIf(v, id > 1) FROM t", "Float64", "2.5").await;
    check(&e, "SELECT maxIf(id, v < 3) FROM t", "UInt64", "2").await;
    check(&e, "SELECT min(ts) FROM t", "DateTime", "\"2024-01-15 10:30:45\"").await;
    check(&e, "SELECT max(name) FROM t", "String", "\"c\"").await;
    check(&e, "SELECT uniq(toDate(ts) > '2024-01-15') FROM t", "UInt64", "2").await;
    check(&e, "SELECT uniqExact(name) FROM t", "UInt64", "3").await;
    check(&e, "SELECT quantile(0.5)(v) FROM t", "Float64", "2.5").await;
    check(&e, "SELECT quantile(v) FROM t", "Float64", "2.5").await;
    check(&e, "SELECT quantileExact(0.5)(v) FROM t", "Float64", "2.5").await;
    check(&e, "SELECT quantiles(0, 1)(v) FROM t", "Array(Float64)", "[1.5,4]").await;
    check(&e, "SELECT median(id) FROM t", "Float64", "2").await;
    check(&e, "SELECT argMax(name, v) FROM t", "String", "\"c\"").await;
    check(&e, "SELECT argMin(name, ts) FROM t", "String", "\"a\"").await;
    check(&e, "SELECT arraySort(groupArray(n)) FROM t", "Array(Int32)", "[1,3]").await;
    check(&e, "SELECT any(n) FROM t WHERE id = 2", "Nullable(Int32)", "null").await;
    check(&e, "SELECT any(name) FROM t WHERE id = 3", "String", "\"c\"").await;
}

/// Integer literals selected as columns have ClickHouse's smallest type and, unnamed, ClickHouse's column name.
#[tokio::test]
async fn integer_literals_have_clickhouse_types() {
    let e = engine().await;
    check(&e, "SELECT 1 AS one", "UInt8", "1").await;
    check(&e, "SELECT 255 AS x", "UInt8", "255").await;
    check(&e, "SELECT 256 AS x", "UInt16", "256").await;
    check(&e, "SELECT 70000 AS x", "UInt32", "70000").await;
    check(&e, "SELECT 4294967296 AS x", "UInt64", "4294967296").await;
    check(&e, "SELECT 18446744073709551615 AS x", "UInt64", "18446744073709551615").await;
    check(&e, "SELECT -1 AS x", "Int8", "-1").await;
    check(&e, "SELECT -129 AS x", "Int16", "-129").await;
    check(&e, "SELECT -40000 AS x", "Int32", "-40000").await;
    check(&e, "SELECT -9223372036854775808 AS x", "Int64", "-9223372036854775808").await;
    check(&e, "SELECT 1.5 AS x", "Float64", "1.5").await;
    check(&e, "SELECT 1 AS x FROM t WHERE id > 1 ORDER BY id", "UInt8", "1|1").await;
    let r = e.query("SELECT 1, -2").await.unwrap();
    assert_eq!(
        r.columns.iter().map(|c| (c.name.as_str(), c.ty.to_string())).collect::<Vec<_>>(),
        [("1", "UInt8".into()), ("-2", "Int8".into())]
    );
    // Branch values of conditionals: the supertype of the branches, as in ClickHouse.
    check(&e, "SELECT if(id > 1, 1, 0) AS x FROM t WHERE id = 3", "UInt8", "1").await;
    check(&e, "SELECT if(id > 1, 1, -1) AS x FROM t WHERE id = 1", "Int16", "-1").await;
    check(&e, "SELECT if(id > 1, 1, 1000) AS x FROM t WHERE id = 1", "UInt16", "1000").await;
    check(&e, "SELECT multiIf(id = 1, 10, id = 2, 20, 30) AS x FROM t WHERE id = 3", "UInt8", "30").await;
    check(&e, "SELECT if(id > 1, id, 0) AS x FROM t WHERE id = 1", "UInt64", "0").await;
    check(&e, "SELECT if(id > 1, v, 0) AS x FROM t WHERE id = 1", "Float64", "0").await;
    check(&e, "SELECT ifNull(n, 0) AS x FROM t WHERE id = 2", "Int32", "0").await;
    check(&e, "SELECT coalesce(n, 7) AS x FROM t WHERE id = 2", "Int32", "7").await;
    // In arithmetic with a column the literal's small type lets the column's type win, as in ClickHouse.
    check(&e, "SELECT id + 1 AS x FROM t WHERE id = 1", "UInt64", "2").await;
    check(&e, "SELECT count() * 2 AS x FROM t", "UInt64", "6").await;
    check(&e, "SELECT 10 - id AS x FROM t WHERE id = 3", "Int64", "7").await;
    check(&e, "SELECT v + 1 AS x FROM t WHERE id = 1", "Float64", "2.5").await;
}

/// `+`, `-`, `*` on integers have ClickHouse's result types (the next size up, signed for `-`), so small types do not
/// overflow where ClickHouse does not; floats compute in Float64. Expected values are ClickHouse's.
#[tokio::test]
async fn arithmetic_has_clickhouse_result_types() {
    let e = engine().await;
    check(&e, "SELECT 1 + 1 AS x", "UInt16", "2").await;
    check(&e, "SELECT 1 - 2 AS x", "Int16", "-1").await;
    check(&e, "SELECT toUInt8(200) + toUInt8(100) AS x", "UInt16", "300").await;
    check(&e, "SELECT toUInt8(20) * toUInt8(20) AS x", "UInt16", "400").await;
    check(&e, "SELECT toUInt32(1) + toUInt8(1) AS x", "UInt64", "2").await;
    check(&e, "SELECT toInt32(1) + toUInt8(1) AS x", "Int64", "2").await;
    check(&e, "SELECT toInt8(-1) * toInt8(100) AS x", "Int16", "-100").await;
    check(&e, "SELECT toUInt64(3) - toUInt64(5) AS x", "Int64", "-2").await;
    check(&e, "SELECT id * id AS x FROM t WHERE id = 3", "UInt64", "9").await;
    check(&e, "SELECT id - 1 AS x FROM t WHERE id = 3", "Int64", "2").await;
    check(&e, "SELECT toFloat32(1.5) + toFloat32(1) AS x", "Float64", "2.5").await;
    check(&e, "SELECT n + 1 AS x FROM t WHERE id = 3", "Nullable(Int64)", "4").await;
    // Dates and times keep their own arithmetic.
    check(&e, "SELECT count() FROM t WHERE ts >= now() - INTERVAL 10000 DAY", "UInt64", "3").await;
    check(&e, "SELECT ts + 15 AS x FROM t WHERE id = 1", "DateTime", "\"2024-01-15 10:31:00\"").await;
    check(&e, "SELECT 60 + ts AS x FROM t WHERE id = 1", "DateTime", "\"2024-01-15 10:31:45\"").await;
    check(&e, "SELECT ts - 86400 AS x FROM t WHERE id = 1", "DateTime", "\"2024-01-14 10:30:45\"").await;
    check(&e, "SELECT count() FROM t WHERE ts > toDateTime('2024-01-16 23:59:59') - 3600", "UInt64", "2").await;
    check(&e, "SELECT toDate(ts) + 1 AS d FROM t WHERE id = 1", "Date", "\"2024-01-16\"").await;
}

/// Aggregates over an empty set without GROUP BY: one row holding the type's default (ClickHouse), not NULL
/// (DataFusion); `avg` is nan (JSON `null`); a `Nullable` column's aggregate stays NULL.
#[tokio::test]
async fn aggregates_of_an_empty_set_match_clickhouse() {
    let e = engine().await;
    let none = "FROM t WHERE id > 10";
    check(&e, &format!("SELECT min(id) {none}"), "UInt64", "0").await;
    check(&e, &format!("SELECT max(v) {none}"), "Float64", "0").await;
    check(&e, &format!("SELECT max(name) {none}"), "String", "\"\"").await;
    check(&e, &format!("SELECT min(ts) {none}"), "DateTime", "\"1970-01-01 00:00:00\"").await;
    check(&e, &format!("SELECT minIf(v, id > 1) {none}"), "Float64", "0").await;
    check(&e, &format!("SELECT maxIf(id, v < 3) {none}"), "UInt64", "0").await;
    check(&e, &format!("SELECT any(name) {none}"), "String", "\"\"").await;
    check(&e, &format!("SELECT anyLast(id) {none}"), "UInt64", "0").await;
    check(&e, &format!("SELECT argMax(name, v) {none}"), "String", "\"\"").await;
    check(&e, &format!("SELECT groupArray(name) {none}"), "Array(String)", "[]").await;
    check(&e, &format!("SELECT avg(v) {none}"), "Float64", "null").await;
    check(&e, &format!("SELECT avgIf(v, id > 1) {none}"), "Float64", "null").await;
    let (_, values) = run(&e, &format!("SELECT max(n) {none}")).await;
    assert_eq!(values, ["null"], "max of a Nullable column over no rows is NULL");
    let (_, values) = run(&e, &format!("SELECT any(t.n) {none}")).await;
    assert_eq!(values, ["null"]);
    // With GROUP BY an empty set has no groups at all.
    let (_, values) = run(&e, &format!("SELECT min(id) {none} GROUP BY name")).await;
    assert!(values.is_empty());
    // Over rows, the wrapped forms answer as before.
    check(&e, "SELECT min(id) FROM t", "UInt64", "1").await;
    check(&e, "SELECT max(n) FROM t", "Nullable(Int32)", "3").await;
}

#[tokio::test]
async fn dates_match_clickhouse() {
    let e = engine().await;
    let one = |f: &str| format!("SELECT {f} FROM t WHERE id = 1");
    check(&e, &one("toStartOfMinute(ts)"), "DateTime", "\"2024-01-15 10:30:00\"").await;
    check(&e, &one("toStartOfHour(ts)"), "DateTime", "\"2024-01-15 10:00:00\"").await;
    check(&e, &one("toStartOfDay(ts)"), "DateTime", "\"2024-01-15 00:00:00\"").await;
    check(&e, &one("toStartOfWeek(ts)"), "Date", "\"2024-01-14\"").await;
    check(&e, &one("toStartOfWeek(ts, 1)"), "Date", "\"2024-01-15\"").await;
    check(&e, &one("toMonday(ts)"), "Date", "\"2024-01-15\"").await;
    check(&e, &one("toStartOfMonth(ts)"), "Date", "\"2024-01-01\"").await;
    check(&e, &one("toStartOfInterval(ts, INTERVAL 15 minute)"), "DateTime", "\"2024-01-15 10:30:00\"").await;
    check(&e, &one("toStartOfInterval(ts, INTERVAL 1 hour)"), "DateTime", "\"2024-01-15 10:00:00\"").await;
    check(&e, &one("toDate(ts)"), "Date", "\"2024-01-15\"").await;
    check(&e, "SELECT toDate('2024-03-04')", "Date", "\"2024-03-04\"").await;
    check(&e, "SELECT toDate('2024-03-04 10:11:12')", "Date", "\"2024-03-04\"").await;
    check(&e, "SELECT toDateTime('2024-01-01 12:00:00')", "DateTime", "\"2024-01-01 12:00:00\"").await;
    check(&e, "SELECT toDateTime(1704067200)", "DateTime", "\"2024-01-01 00:00:00\"").await;
    check(&e, "SELECT toDateTime64('2024-01-01 12:00:00.123', 3)", "DateTime64(3)", "\"2024-01-01 12:00:00.123\"")
        .await;
    check(&e, &one("toYYYYMM(ts)"), "UInt32", "202401").await;
    check(&e, &one("toYYYYMMDD(ts)"), "UInt32", "20240115").await;
    check(&e, &one("toYear(ts)"), "UInt16", "2024").await;
    check(&e, &one("toDayOfWeek(ts)"), "UInt8", "1").await;
    check(&e, &one("toUnixTimestamp(ts)"), "UInt32", "1705314645").await;
    check(&e, &one("formatDateTime(ts, '%Y/%m/%d %H:%i:%S')"), "String", r#""2024\/01\/15 10:30:45""#).await;
    check(&e, &one("formatDateTime(ts, '%F %T')"), "String", "\"2024-01-15 10:30:45\"").await;
    check(&e, "SELECT parseDateTimeBestEffort('2024-01-15T10:30:45Z')", "DateTime", "\"2024-01-15 10:30:45\"").await;
    check(&e, "SELECT parseDateTimeBestEffort('2024-01-15 10:30:45+01:00')", "DateTime", "\"2024-01-15 09:30:45\"")
        .await;
    check(&e, "SELECT parseDateTimeBestEffortOrNull('garbage')", "Nullable(DateTime)", "null").await;
    check(
        &e,
        "SELECT dateDiff('day', toDateTime('2024-01-15 23:00:00'), toDateTime('2024-01-16 01:00:00'))",
        "Int64",
        "1",
    )
    .await;
    check(&e, "SELECT dateDiff('month', toDate('2024-01-31'), toDate('2024-02-01'))", "Int64", "1").await;
    check(
        &e,
        "SELECT dateDiff('hour', toDateTime('2024-01-01 00:59:59'), toDateTime('2024-01-01 01:00:00'))",
        "Int64",
        "1",
    )
    .await;
    check(&e, "SELECT dateDiff('year', toDate('2023-12-31'), toDate('2024-01-01'))", "Int64", "1").await;
    check(&e, "SELECT count() FROM t WHERE ts >= now() - INTERVAL 10000 DAY", "UInt64", "3").await;
    check(&e, "SELECT today() >= toDate('2024-01-01')", "UInt8", "1").await;
}

#[tokio::test]
async fn scalars_match_clickhouse() {
    let e = engine().await;
    let one = |f: &str, id: u8| format!("SELECT {f} FROM t WHERE id = {id}");
    check(&e, &one("if(v > 2, 'big', 'small')", 1), "String", "\"small\"").await;
    check(&e, &one("multiIf(v < 2, 'lo', v < 3, 'mid', 'hi')", 2), "String", "\"mid\"").await;
    check(&e, &one("coalesce(n, 0)", 2), "Int32", "0").await;
    check(&e, &one("has(arr, 'x')", 1), "UInt8", "1").await;
    check(&e, &one("has(arr, 'q')", 1), "UInt8", "0").await;
    check(&e, &one("length(arr)", 1), "UInt64", "2").await;
    check(&e, &one("length(arr)", 2), "UInt64", "0").await;
    check(&e, "SELECT length('héllo')", "UInt64", "6").await;
    check(&e, "SELECT arrayJoin(arr) AS a FROM t ORDER BY a", "String", "\"x\"|\"y\"|\"z\"").await;
    check(&e, "SELECT lower('ABC')", "String", "\"abc\"").await;
    check(&e, "SELECT substring('hello', 2, 3)", "String", "\"ell\"").await;
    check(&e, "SELECT substring('hello', -3)", "String", "\"llo\"").await;
    check(&e, "SELECT substring('hello', 2)", "String", "\"ello\"").await;
    check(&e, "SELECT substringUTF8('héllo', 2, 2)", "String", "\"él\"").await;
    check(&e, "SELECT upper('héllo')", "String", "\"HéLLO\"").await;
    check(&e, "SELECT upperUTF8('héllo')", "String", "\"HÉLLO\"").await;
    check(&e, "SELECT concat('a', toString(1), 'b')", "String", "\"a1b\"").await;
    // A function of a bare NULL is ClickHouse's NULL of no type.
    check(&e, "SELECT concat('a', NULL)", "Nullable(Nothing)", "null").await;
    check(&e, "SELECT count() FROM t WHERE name LIKE 'a%'", "UInt64", "1").await;
    check(&e, "SELECT count() FROM t WHERE name ILIKE 'b'", "UInt64", "1").await;
    check(&e, "SELECT count() FROM t WHERE like(name, 'c')", "UInt64", "1").await;
    check(&e, r#"SELECT JSONExtractString('{"a":{"b":"x"}}', 'a', 'b')"#, "String", "\"x\"").await;
    check(&e, r#"SELECT JSONExtractString('{"a":1}', 'missing')"#, "String", "\"\"").await;
    check(&e, r#"SELECT JSONExtractInt('{"a":5}', 'a')"#, "Int64", "5").await;
    check(&e, r#"SELECT JSONExtractUInt('{"a":[1,7]}', 'a', 2)"#, "UInt64", "7").await;
    check(&e, r#"SELECT JSONExtractFloat('{"a":1.5}', 'a')"#, "Float64", "1.5").await;
    check(&e, r#"SELECT JSONExtractBool('{"a":true}', 'a')"#, "UInt8", "1").await;
    check(&e, r#"SELECT JSONExtractRaw('{"a":[1,2]}', 'a')"#, "String", "\"[1,2]\"").await;
    check(&e, r#"SELECT JSONHas('{"a":1}', 'b')"#, "UInt8", "0").await;
    check(&e, r#"SELECT JSONExtract('{"a":3}', 'a', 'Int32')"#, "Int32", "3").await;
    // An element that does not read as the type is 0; none reading as it, an empty array (as ClickHouse).
    check(&e, r#"SELECT JSONExtract('{"a":[1,"2","x",1.5]}', 'a', 'Array(Int32)')"#, "Array(Int32)", "[1,2,0,1]").await;
    check(&e, r#"SELECT JSONExtract('{"a":["x",null,300]}', 'a', 'Array(UInt8)')"#, "Array(UInt8)", "[]").await;
    check(&e, r#"SELECT JSONExtract('[1,"a"]', 'Array(String)')"#, "Array(String)", "[\"1\",\"a\"]").await;
    check(&e, &one("toString(ts)", 1), "String", "\"2024-01-15 10:30:45\"").await;
    check(&e, "SELECT toString(1.0)", "String", "\"1\"").await;
    check(&e, "SELECT toInt32('42')", "Int32", "42").await;
    check(&e, "SELECT toUInt8(3.9)", "UInt8", "3").await;
    check(&e, "SELECT toFloat64('1.5')", "Float64", "1.5").await;
    check(&e, "SELECT toInt64OrNull('x')", "Nullable(Int64)", "null").await;
    check(&e, "SELECT toInt64OrZero('x')", "Int64", "0").await;
    check(&e, "SELECT round(2.5)", "Float64", "2").await;
    check(&e, "SELECT round(3.5)", "Float64", "4").await;
    check(&e, "SELECT round(3.14159, 2)", "Float64", "3.14").await;
    check(&e, "SELECT round(-2.5)", "Float64", "-2").await;
    check(&e, "SELECT 7 / 2", "Float64", "3.5").await;
    check(&e, "SELECT id / 2 FROM t WHERE id = 3", "Float64", "1.5").await;
    check(&e, "SELECT 1 / 0", "Float64", "null").await;
    check(&e, "SELECT intDiv(7, 2)", "UInt8", "3").await;
    check(&e, "SELECT intDiv(-7, 2)", "Int8", "-3").await;
    check(&e, "SELECT 7 % 3", "UInt8", "1").await;
    check(&e, "SELECT -7 % 3", "Int16", "-1").await;
}

#[tokio::test]
async fn clauses_match_clickhouse() {
    let e = engine().await;
    check(&e, "WITH 2 AS two SELECT two * 3", "UInt16", "6").await;
    check(&e, "WITH (SELECT max(id) FROM t) AS m SELECT count() FROM t WHERE id = m", "UInt64", "1").await;
    check(&e, "WITH x AS (SELECT id FROM t) SELECT count() FROM x", "UInt64", "3").await;
    check(&e, "SELECT toYYYYMM(ts) AS m, id FROM t ORDER BY m, id LIMIT 1 BY m", "UInt32", "202401|202402").await;
    let r = e.query("SELECT toYYYYMM(ts) AS m, id FROM t ORDER BY m, id DESC LIMIT 1 BY m").await.unwrap();
    assert_eq!(
        r.rows().iter().map(|r| r[1].clone()).collect::<Vec<_>>(),
        vec![super::Value::UInt(2), super::Value::UInt(3)]
    );
    let r = e.query("SELECT id FROM t ORDER BY id LIMIT 1").await.unwrap();
    assert_eq!((r.rows().len(), r.rows_before_limit), (1, Some(3)));
    let r = e.query("SELECT id FROM t ORDER BY id").await.unwrap();
    assert_eq!((r.rows().len(), r.rows_before_limit, r.rows_read), (3, None, 3));
    check(&e, "SELECT userId FROM (SELECT id AS userId FROM t) ORDER BY userId LIMIT 1", "UInt64", "1").await;
}

#[tokio::test]
async fn unsupported_constructs_fail_naming_them() {
    let e = engine().await;
    for (sql, construct) in [
        ("SELECT * FROM t FINAL", "FINAL"),
        ("SELECT * FROM t SAMPLE 1 / 2", "SAMPLE"),
        ("SELECT t.id FROM t ANY RIGHT JOIN t AS u ON t.id = u.id", "ANY INNER, RIGHT or FULL JOIN"),
        ("SELECT t.id FROM t ANY LEFT JOIN t AS u ON t.id < u.id", "ANY JOIN without an equality"),
        ("SELECT * FROM t SETTINGS max_threads = 1, join_use_nulls = 1", "the setting `join_use_nulls = 1`"),
        ("SELECT groupArrayMerge(id) FROM t", "groupArrayMerge"),
        ("SELECT countState() FROM t", "a -State value"),
        ("SELECT JSONExtract(name, 'Array(Nullable(Int64))') FROM t", "JSONExtract to type Array(Nullable(Int64))"),
        ("SELECT id IN (SELECT id FROM t) FROM t", "`IN (subquery)` or `EXISTS` outside WHERE and HAVING"),
        ("SELECT x FROM t LEFT ARRAY JOIN [id] AS x", "ARRAY JOIN LEFT of an expression"),
    ] {
        let err = e.query(sql).await.unwrap_err();
        assert!(matches!(err, EngineError::Unsupported(_)), "{sql}: {err:?}");
        assert!(err.to_string().contains(construct), "{sql}: {err}");
    }
    assert_eq!(e.query("SELECT * FROM nope").await.unwrap_err(), EngineError::UnknownTable("nope".into()));
    // Refused while planning, by the function that sees the types.
    let err = e.query("SELECT sumMerge(s) FROM (SELECT sumState(toFloat64(id)) AS s FROM t)").await.unwrap_err();
    assert!(err.to_string().contains("does not support sumMerge of a state of floats"), "{err}");
    // A state merged by another aggregate's -Merge is ClickHouse's error.
    let err = e.query("SELECT uniqMerge(c) FROM (SELECT countState() AS c FROM t)").await.unwrap_err();
    assert!(err.to_string().contains("expected AggregateFunction(uniq"), "{err}");
    check(&e, "SELECT countMerge(c) FROM (SELECT countState() AS c FROM t GROUP BY id)", "UInt64", "3").await;
}

#[tokio::test]
async fn deletes_and_truncates() {
    let e = engine().await;
    assert_eq!(e.delete("t", "id >= 2", true).await.unwrap(), 2);
    check(&e, "SELECT count() FROM t", "UInt64", "3").await;
    assert_eq!(e.delete("t", "id >= 2", false).await.unwrap(), 2);
    check(&e, "SELECT count() FROM t", "UInt64", "1").await;
    e.truncate("t").await.unwrap();
    check(&e, "SELECT count() FROM t", "UInt64", "0").await;
}

#[tokio::test]
async fn common_pipe_shapes_run() {
    let e = engine().await;
    check(&e, "SELECT name, count() AS c FROM t GROUP BY name HAVING c >= 1 ORDER BY name LIMIT 1", "String", "\"B\"")
        .await;
    check(
        &e,
        "SELECT toStartOfDay(ts) AS day, count() AS c FROM t GROUP BY day ORDER BY day LIMIT 1",
        "DateTime",
        "\"2024-01-15 00:00:00\"",
    )
    .await;
    check(&e, "SELECT count() FROM t WHERE id IN (SELECT id FROM t WHERE v > 2)", "UInt64", "2").await;
    check(&e, "SELECT count() FROM t WHERE ts BETWEEN '2024-01-15 00:00:00' AND '2024-01-16 23:59:59'", "UInt64", "2")
        .await;
    check(&e, "SELECT count() FROM t WHERE toDate(ts) = '2024-01-15'", "UInt64", "1").await;
    check(&e, "SELECT sum(v) / count() FROM t", "Float64", "2.6666666666666665").await;
    check(&e, "SELECT count() FROM (SELECT id FROM t UNION ALL SELECT id FROM t)", "UInt64", "6").await;
    check(&e, "SELECT count(DISTINCT name) FROM t", "UInt64", "3").await;
    check(&e, "SELECT a.id FROM t AS a LEFT JOIN t AS b ON a.id = b.id ORDER BY a.id DESC LIMIT 1", "UInt64", "3")
        .await;
    check(&e, "SELECT id FROM t ORDER BY 1 DESC LIMIT 1", "UInt64", "3").await;
    check(&e, "SELECT id FROM t WHERE name IN ('a', 'c') ORDER BY id LIMIT 1 OFFSET 1", "UInt64", "3").await;
    check(&e, "SELECT DISTINCT toYYYYMM(ts) AS m FROM t ORDER BY m", "UInt32", "202401|202402").await;
    check(&e, "SELECT id FROM t WHERE ts > now() - INTERVAL 1000 YEAR ORDER BY id LIMIT 1", "UInt64", "1").await;
}

/// `Bool` compares with integers as ClickHouse's `UInt8`: `{{Boolean(x)}}` renders `1`/`0`.
#[tokio::test]
async fn bool_compares_with_integers() {
    let engine = DataFusionEngine::new();
    let def = DatasourceDef {
        name: "b".into(),
        columns: vec![
            ColumnDef { name: "id".into(), ty: "UInt32".into(), ..Default::default() },
            ColumnDef { name: "flag".into(), ty: "Bool".into(), ..Default::default() },
        ],
        ..Default::default()
    };
    engine.create_table(&def).await.unwrap();
    let ingest = vec![
        IngestColumn::new("id", ChType::parse("UInt32").unwrap(), None, None),
        IngestColumn::new("flag", ChType::parse("Bool").unwrap(), None, None),
    ];
    let body = br#"{"id":1,"flag":true}
{"id":2,"flag":false}
{"id":3,"flag":true}"#;
    let parsed = parse_ndjson(body, &ingest);
    engine.append("b", parsed.rows).await.unwrap();
    // As in ClickHouse, where `true` is 1 and `false` 0: `flag = 2` matches nothing.
    check(&engine, "SELECT id FROM b WHERE flag = 1 ORDER BY id", "UInt32", "1|3").await;
    check(&engine, "SELECT id FROM b WHERE 0 = flag ORDER BY id", "UInt32", "2").await;
    check(&engine, "SELECT id FROM b WHERE flag IN (1) ORDER BY id", "UInt32", "1|3").await;
    check(&engine, "SELECT id FROM b WHERE flag != 1 ORDER BY id", "UInt32", "2").await;
    check(&engine, "SELECT id FROM b WHERE flag = 2 ORDER BY id", "UInt32", "").await;
    check(&engine, "SELECT id FROM b WHERE flag <= 1 ORDER BY id", "UInt32", "1|2|3").await;
    check(&engine, "SELECT id FROM b WHERE flag = true ORDER BY id", "UInt32", "1|3").await;
}

/// A DateTime64(3) past 2262 (where i64 nanoseconds end) is stored, read, printed and compared as ClickHouse does.
#[tokio::test]
async fn datetime64_reaches_2299() {
    let e = DataFusionEngine::new();
    e.create_table_with_columns("far", &[("t".into(), ChType::parse("DateTime64(3)").unwrap())]).await.unwrap();
    let late =
        crate::ingest::convert(&serde_json::json!("2299-12-31 23:59:59.999"), &ChType::parse("DateTime64(3)").unwrap())
            .unwrap();
    e.append("far", vec![vec![late]]).await.unwrap();
    check(&e, "SELECT t FROM far", "DateTime64(3)", "\"2299-12-31 23:59:59.999\"").await;
    check(&e, "SELECT toString(t) FROM far", "String", "\"2299-12-31 23:59:59.999\"").await;
    check(&e, "SELECT count() FROM far WHERE t > toDateTime64('2262-04-12 00:00:00', 3)", "UInt64", "1").await;
}

/// Two result columns with one name: both returned under it, as ClickHouse does (DataFusion holds them apart).
#[tokio::test]
async fn result_columns_sharing_a_name_are_both_returned() {
    let e = engine().await;
    for (sql, name) in [
        ("SELECT id <> 1, id != 1 FROM t ORDER BY id", "notEquals(id, 1)"),
        ("SELECT position('abc', 'b'), POSITION('b' IN 'abc')", "position('abc', 'b')"),
        ("SELECT id, id FROM t ORDER BY id", "id"),
    ] {
        let result = e.query(sql).await.unwrap();
        let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [name, name], "{sql}");
        let batch = &result.batches[0];
        assert_eq!(batch.column(0).as_ref(), batch.column(1).as_ref(), "{sql}: the same values");
    }
    // Aliased apart, both run.
    check(&e, "SELECT id <> 1 AS a, id != 1 AS b FROM t ORDER BY id", "UInt8", "0|1|1").await;
}

#[tokio::test]
async fn array_join_lists_unfold_side_by_side() {
    let e = engine().await;
    let unfolded = "SELECT a FROM (SELECT [1, 2] AS a, ['x', 'y'] AS b) ARRAY JOIN a, b AS y ORDER BY a";
    check(&e, unfolded, "UInt8", "1|2").await;
    let zipped = "SELECT y FROM (SELECT [1, 2] AS a, ['x', 'y'] AS b) ARRAY JOIN a, b AS y ORDER BY a";
    check(&e, zipped, "String", r#""x"|"y""#).await;
    let lambda = "SELECT x FROM (SELECT [1, 2] AS a) ARRAY JOIN arrayMap(v -> v * 10, a) AS x ORDER BY x";
    check(&e, lambda, "UInt16", "10|20").await;
    // Arrays of different lengths in one row: ClickHouse's error, not rows padded with NULLs.
    let err = e.query("SELECT a, b FROM (SELECT [1, 2] AS a, ['x'] AS b) ARRAY JOIN a, b").await.unwrap_err();
    assert!(err.to_string().contains("SIZES_OF_ARRAYS_DONT_MATCH"), "{err}");
    // An expression needs an alias; LEFT ARRAY JOIN is refused by name.
    let err = e.query("SELECT 1 FROM (SELECT [1] AS a) ARRAY JOIN arrayMap(v -> v, a)").await.unwrap_err();
    assert!(err.to_string().contains("without an alias"), "{err}");
    let err = e.query("SELECT x FROM (SELECT [1] AS a) LEFT ARRAY JOIN a AS x, a AS z").await.unwrap_err();
    assert!(err.to_string().contains("ARRAY JOIN LEFT"), "{err}");
}

#[tokio::test]
async fn range_and_array_enumerate_are_clickhouses() {
    let e = engine().await;
    check(&e, "SELECT range(3)", "Array(UInt8)", "[0,1,2]").await;
    check(&e, "SELECT range(toUInt64(0))", "Array(UInt64)", "[]").await;
    check(&e, "SELECT arrayEnumerate(['a', 'b'])", "Array(UInt32)", "[1,2]").await;
    // A signed or too large count: an error, never a silent empty array or an exhausted server.
    let err = e.query("SELECT range(-1)").await.unwrap_err().to_string();
    assert!(err.contains("range(n) of one unsigned integer"), "{err}");
    let err = e.query("SELECT range(1000000000)").await.unwrap_err().to_string();
    assert!(err.contains("ARGUMENT_OUT_OF_BOUND"), "{err}");
    let err = e.query("SELECT range(1, 3)").await.unwrap_err().to_string();
    assert!(err.contains("range(start, end[, step])"), "{err}");
    // arraySum of integers: 64 bits, wrapping as ClickHouse's does; of floats, refused (another order of addition).
    check(&e, "SELECT arraySum([1, 2, 3])", "UInt64", "6").await;
    check(&e, "SELECT arraySum([toInt64(9223372036854775807), 1])", "Int64", "-9223372036854775808").await;
    let err = e.query("SELECT arraySum([1.5, 2])").await.unwrap_err().to_string();
    assert!(err.contains("arraySum of an array of integers only"), "{err}");
}

#[tokio::test]
async fn rounding_to_digits_steps_in_the_values_type_as_clickhouse() {
    let e = engine().await;
    // Integers: ClickHouse's steps in the value's own type, wrapping where they overflow.
    check(&e, "SELECT round(toUInt8(255), -1)", "UInt8", "4").await;
    check(&e, "SELECT round(toInt8(-125), -1)", "Int8", "120").await;
    check(&e, "SELECT roundBankers(toInt16(-25), -1)", "Int16", "-20").await;
    check(&e, "SELECT round(toInt64(-25), -1)", "Int64", "-30").await;
    check(&e, "SELECT floor(toUInt8(200), -3)", "UInt8", "0").await;
    check(&e, "SELECT trunc(toInt32(-17), -1)", "Int32", "-10").await;
    // Floats: multiplied or divided by the power of ten, rounded, and back.
    check(&e, "SELECT floor(-1.2345, 2)", "Float64", "-1.24").await;
    check(&e, "SELECT ceil(toFloat32(1.25), 1)", "Float32", "1.3").await;
    check(&e, "SELECT trunc(0.29, 2)", "Float64", "0.28").await;
}

#[tokio::test]
async fn text_functions_are_clickhouses_or_refused_by_name() {
    let e = engine().await;
    let url = "'https://www.tinybird.co/docs/a?utm_source=x&flag&b=2#top'";
    for (f, ty, value) in [
        ("domain", "String", r#""www.tinybird.co""#),
        ("domainWithoutWWW", "String", r#""tinybird.co""#),
        ("path", "String", r#""\/docs\/a""#),
        ("queryString", "String", r#""utm_source=x&flag&b=2""#),
        ("fragment", "String", r#""top""#),
        ("cutQueryStringAndFragment", "String", r#""https:\/\/www.tinybird.co\/docs\/a""#),
        // ClickHouse 26.9's value for this URL.
        ("cityHash64", "UInt64", "15474582252999931754"),
    ] {
        let (got_ty, got) = run(&e, &format!("SELECT {f}({url})")).await;
        assert_eq!((got_ty.as_str(), got.join("").as_str()), (ty, value), "{f}");
    }
    check(&e, &format!("SELECT extractURLParameter({url}, 'b')"), "String", r#""2""#).await;
    check(&e, &format!("SELECT extractURLParameter({url}, 'flag')"), "String", r#""""#).await;
    check(&e, "SELECT hex(MD5('a'))", "String", r#""0CC175B9C0F1B6A831C399E269772661""#).await;
    check(
        &e,
        "SELECT toUUID('61F0C404-5CB3-11E7-907B-A6006AD3DBA0')",
        "UUID",
        r#""61f0c404-5cb3-11e7-907b-a6006ad3dba0""#,
    )
    .await;
    check(&e, "SELECT formatReadableSize(1152)", "String", r#""1.13 KiB""#).await;
    check(&e, "SELECT format('{1} {0}', 'a', name) FROM t ORDER BY id LIMIT 1", "String", r#""a a""#).await;
    check(&e, r#"SELECT simpleJSONExtractInt('{"b":{"a":5},"a":"7"}', 'a')"#, "Int64", "5").await;
    check(&e, "SELECT uniqExact(id, name) FROM t", "UInt64", "3").await;
    check(&e, "SELECT transform(name, ['a', 'B'], ['x', 'y'], 'z') FROM t ORDER BY id", "String", r#""x"|"y"|"z""#)
        .await;
    check(&e, "SELECT toDateOrNull('x')", "Nullable(Date)", "null").await;
    // ANY LEFT JOIN: the plain join where the joined relation has one row per key; refused where it has several.
    let any = "SELECT t.id, u.name FROM t ANY LEFT JOIN (SELECT id, name FROM t WHERE id > 1) AS u ON t.id = u.id \
               ORDER BY t.id";
    check(&e, any, "UInt64", "1|2|3").await;
    let err = e.query("SELECT t.id FROM t ANY LEFT JOIN (SELECT 1 AS k FROM t) AS u ON t.id = u.k").await.unwrap_err();
    assert!(err.to_string().contains("several rows for one key"), "{err}");
    let err = e.query("SELECT toDateOrNull('2024-1-1')").await.unwrap_err().to_string();
    assert!(err.contains("text other than YYYY-MM-DD"), "{err}");
    // A URL of another form, raw MD5 bytes and a bad UUID: errors naming what is wrong.
    let err = e.query("SELECT domain('www.a.com/x')").await.unwrap_err().to_string();
    assert!(err.contains("scheme://host"), "{err}");
    let err = e.query("SELECT MD5('a')").await.unwrap_err().to_string();
    assert!(err.contains("hex(MD5(…)) is"), "{err}");
    let err = e.query("SELECT toUUID('x')").await.unwrap_err().to_string();
    assert!(err.contains("CANNOT_PARSE_UUID"), "{err}");
}

#[tokio::test]
async fn uuids_and_enums_order_and_compare_by_value() {
    let e = engine().await;
    // A UUID compares its low 64 bits first; text order would put `00…` first.
    let uuids = "SELECT x FROM (SELECT toUUID('ffffffff-0000-0000-0000-000000000001') AS x UNION ALL \
                 SELECT toUUID('00000000-ffff-0000-0000-000000000002')) ORDER BY x";
    check(&e, uuids, "UUID", r#""ffffffff-0000-0000-0000-000000000001"|"00000000-ffff-0000-0000-000000000002""#).await;
    let compared = "SELECT count() FROM (SELECT toUUID('ffffffff-0000-0000-0000-000000000001') AS x) \
                    WHERE x < '00000000-ffff-0000-0000-000000000002' AND x = 'FFFFFFFF-0000-0000-0000-000000000001'";
    check(&e, compared, "UInt64", "1").await;
    // argMax, min and max order by the UUID's value, never by its text.
    let arg = "SELECT argMax(n, x) FROM (SELECT 1 AS n, toUUID('ffffffff-0000-0000-0000-000000000001') AS x UNION ALL \
               SELECT 2, toUUID('00000000-ffff-0000-0000-000000000002'))";
    check(&e, arg, "UInt8", "2").await;
    let two = "(SELECT toUUID('ffffffff-0000-0000-0000-000000000001') AS x UNION ALL \
               SELECT toUUID('00000000-ffff-0000-0000-000000000002'))";
    check(&e, &format!("SELECT min(x) FROM {two}"), "UUID", r#""ffffffff-0000-0000-0000-000000000001""#).await;
    check(&e, &format!("SELECT max(x) FROM {two}"), "UUID", r#""00000000-ffff-0000-0000-000000000002""#).await;
    check(
        &e,
        &format!("SELECT max(x) FROM {two} WHERE x = '00000000-0000-0000-0000-000000000003'"),
        "UUID",
        r#""00000000-0000-0000-0000-000000000000""#,
    )
    .await;
    let err = e.query(&format!("SELECT max(x) OVER () FROM {two}")).await.unwrap_err();
    assert!(err.to_string().contains("compares it by value"), "{err}");
}

#[tokio::test]
async fn top_k_and_window_funnel_are_clickhouses_where_they_are_exact() {
    let e = engine().await;
    check(&e, "SELECT topK(2)(x) FROM (SELECT arrayJoin([1, 1, 2, 3, 3, 3]) AS x)", "Array(UInt8)", "[3,1]").await;
    // Equal counts, or more distinct values than ClickHouse counts exactly: refused, never another order.
    let err = e.query("SELECT topK(3)(name) FROM t").await.unwrap_err().to_string();
    assert!(err.contains("equal counts"), "{err}");
    let err = e.query("SELECT topK(1)(number) FROM numbers(10)").await.unwrap_err().to_string();
    assert!(err.contains("more than 3 distinct values"), "{err}");
    let funnel = "SELECT windowFunnel(2)(t, x = 1, x = 3, x = 4) FROM (SELECT toDateTime('2024-01-01 00:00:00') + \
                  number AS t, number AS x FROM numbers(5))";
    check(&e, funnel, "UInt8", "2").await;
    let dates = "SELECT windowFunnel(100)(d, x = 1, x = 2) FROM (SELECT toDate('2024-01-01') + number AS d, number AS \
                 x FROM numbers(5))";
    check(&e, dates, "UInt8", "2").await;
}

#[tokio::test]
async fn order_sensitive_aggregates_follow_a_subquerys_order() {
    let e = engine().await;
    check(&e, "SELECT groupArray(id) FROM (SELECT id FROM t ORDER BY id DESC)", "Array(UInt64)", "[3,2,1]").await;
    check(&e, "SELECT any(name) FROM (SELECT name, id FROM t ORDER BY id DESC)", "String", r#""c""#).await;
    check(&e, "SELECT anyLast(name) FROM (SELECT name FROM t ORDER BY v DESC)", "String", r#""a""#).await;
    // Where the order cannot be carried, refused rather than answered in another order.
    let err = e.query("SELECT groupArray(id) FROM (SELECT DISTINCT id FROM t ORDER BY id DESC)").await.unwrap_err();
    assert!(err.to_string().contains("over a subquery's ORDER BY with DISTINCT"), "{err}");
}

/// `quantileExact`/`medianExact` return the argument's own type (ClickHouse's answers for the same rows).
#[tokio::test]
async fn exact_quantiles_keep_the_arguments_type() {
    let e = engine().await;
    check(&e, "SELECT medianExact(id) FROM t", "UInt64", "2").await;
    check(&e, "SELECT quantileExact(1)(id) FROM t", "UInt64", "3").await;
    check(&e, "SELECT medianExact(ts) FROM t", "DateTime", "\"2024-01-16 23:59:59\"").await;
    check(&e, "SELECT medianExact(n) FROM t", "Nullable(Int32)", "3").await;
    check(&e, "SELECT medianExact(n) FROM t WHERE id > 5", "Nullable(Int32)", "null").await;
    check(&e, "SELECT medianExact(id) FROM t WHERE id > 5", "UInt64", "0").await;
    check(&e, "SELECT quantilesExact(0, 0.5)(id) FROM t", "Array(UInt64)", "[1,2]").await;
    check(&e, "SELECT medianExact(toInt8(id) - 5) FROM t", "Int16", "-3").await;
    let err = e.query("SELECT medianExact(name) FROM t").await.unwrap_err();
    assert!(err.to_string().contains("an exact quantile of Utf8"), "{err}");
}

/// `WITH TOTALS`, `ROLLUP`, `CUBE` and `GROUPING SETS`: keys a row is not grouped by are their type's default (NULL
/// when Nullable), as ClickHouse's are; the totals row is rendered as ClickHouse renders it.
#[tokio::test]
async fn rollups_and_totals_fill_keys_with_defaults() {
    use crate::format::{Format, render};
    let e = engine().await;
    let rows = |r: &crate::engine::QueryResult| -> Vec<String> {
        r.rows()
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&r.columns)
                    .map(|(v, c)| {
                        let mut s = String::new();
                        json_value(&mut s, v, &c.ty, OutputOptions::default());
                        s
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    let r = e
        .query("SELECT name, id % 2 AS k, count() AS c FROM t GROUP BY ROLLUP(name, k) ORDER BY name, k, c")
        .await
        .unwrap();
    assert_eq!(
        rows(&r),
        ["\"\",0,3", "\"B\",0,1", "\"B\",0,1", "\"a\",0,1", "\"a\",1,1", "\"c\",0,1", "\"c\",1,1"],
        "ROLLUP"
    );
    // A key a filter pins is still ordered: DataFusion would take it for a constant and drop it from the sort.
    let pinned =
        "SELECT name, n > 0 AS p, count() AS c FROM t WHERE name = 'a' GROUP BY CUBE(name, p) ORDER BY name, p, c";
    assert_eq!(rows(&e.query(pinned).await.unwrap()), ["\"\",1,1", "\"\",null,1", "\"a\",1,1", "\"a\",null,1"]);
    let r = e.query("SELECT n, count() AS c FROM t GROUP BY n WITH ROLLUP ORDER BY n, c").await.unwrap();
    assert_eq!(rows(&r), ["1,1", "3,1", "null,1", "null,3"], "a Nullable key rolled up is NULL");
    let r = e.query("SELECT id % 2 AS k, k * 10 + 1 AS k2, max(k) AS m, count() AS c FROM t GROUP BY k WITH TOTALS ORDER BY k LIMIT 1").await.unwrap();
    assert_eq!(rows(&r), ["0,1,0,1"]);
    let json = render(&r, Format::Json, OutputOptions::default(), 0.0);
    let body: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(body["totals"], serde_json::json!({"k": 0, "k2": 1, "m": 1, "c": 3}), "{json}");
    assert!(render(&r, Format::Csv, OutputOptions::default(), 0.0).ends_with("0,1,0,1\n\n0,1,1,3\n"));
    for (sql, construct) in [
        ("SELECT id, count() FROM t GROUP BY id WITH TOTALS HAVING count() > 1", "WITH TOTALS together with HAVING"),
        ("SELECT id, count() FROM t GROUP BY 1 WITH TOTALS", "given by position"),
        ("SELECT id, count() FROM t GROUP BY ALL WITH TOTALS", "GROUP BY ALL"),
    ] {
        let err = e.query(sql).await.unwrap_err();
        assert!(err.to_string().contains(construct), "{sql}: {err}");
    }
}

/// `WITH FILL` adds ClickHouse's rows: defaults in the other columns, groups by the keys before it, LIMIT after.
#[tokio::test]
async fn with_fill_adds_the_rows_clickhouse_adds() {
    let e = engine().await;
    check(&e, "SELECT id * 3 AS n FROM t ORDER BY n WITH FILL LIMIT 5", "UInt64", "3|4|5|6|7").await;
    check(&e, "SELECT id AS n FROM t ORDER BY n DESC WITH FILL FROM 5 TO 0 STEP -2", "UInt64", "5|3|2|1").await;
    let r = e.query("SELECT toDate(ts) AS d, n FROM t ORDER BY d WITH FILL TO toDate('2024-01-18')").await.unwrap();
    let days: Vec<String> = r.rows().iter().map(|row| format!("{:?}/{:?}", row[0], row[1])).collect();
    assert_eq!(days.len(), 4, "{days:?}");
    assert_eq!(r.rows()[2][1], super::Value::Null, "a Nullable column of an added row is NULL");
    for (sql, construct) in [
        ("SELECT id FROM t ORDER BY id WITH FILL, name", "other than the last"),
        ("SELECT id FROM t ORDER BY id * 2 WITH FILL", "not a selected column"),
        ("SELECT name FROM t ORDER BY name WITH FILL", "on a column of type"),
        ("SELECT id FROM t ORDER BY id WITH FILL STEP -1", "sign"),
    ] {
        let err = e.query(sql).await.unwrap_err();
        assert!(err.to_string().contains(construct), "{sql}: {err}");
    }
}

/// A `DateTime` of another time zone is stored as its wall-clock time, not as ClickHouse's instant: every query
/// reading it is refused, naming the column; a query that does not read it, and a delete by other columns, still run.
#[tokio::test]
async fn datetimes_of_other_time_zones_are_refused_where_read() {
    let e = DataFusionEngine::new();
    let cols = [
        ("n", "UInt32"),
        ("t", "DateTime('Europe/Madrid')"),
        ("u", "DateTime('UTC')"),
        ("a", "Array(DateTime64(3, 'Asia/Tokyo'))"),
    ];
    let columns: Vec<(String, ChType)> = cols.iter().map(|(n, t)| (n.to_string(), ChType::parse(t).unwrap())).collect();
    e.create_table_with_columns("z", &columns).await.unwrap();
    let ingest: Vec<IngestColumn> =
        cols.iter().map(|(n, t)| IngestColumn::new(n, ChType::parse(t).unwrap(), None, None)).collect();
    let body = br#"{"n":1,"t":"2024-01-01 10:00:00","u":"2024-01-01 10:00:00","a":[]}
{"n":2,"t":"2024-07-01 10:00:00","u":"2024-07-01 10:00:00","a":["2024-07-01 10:00:00"]}"#;
    e.append("z", parse_ndjson(body, &ingest).rows).await.unwrap();
    for sql in [
        "SELECT t FROM z",
        "SELECT * FROM z",
        "SELECT toUnixTimestamp(t) FROM z",
        "SELECT n FROM z WHERE t > '2024-02-01 00:00:00'",
        "SELECT count() FROM z GROUP BY toHour(t)",
        "SELECT n FROM (SELECT n, t FROM z) ORDER BY t",
        "SELECT length(a) FROM z",
    ] {
        match e.query(sql).await {
            Err(EngineError::Unsupported(m)) => assert!(m.contains("in a time zone other than UTC"), "{sql}: {m}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    check(&e, "SELECT count() FROM z", "UInt64", "2").await;
    check(&e, "SELECT toUnixTimestamp(u) FROM z ORDER BY n", "UInt32", "1704103200|1719828000").await;
    assert_eq!(e.delete("z", "n = 1", false).await.unwrap(), 1);
    check(&e, "SELECT n FROM z", "UInt32", "2").await;
}

/// `min`/`max` of a value and a constant are computed as ClickHouse computes them: the aggregate, then the arithmetic
/// (values from ClickHouse 26.9). Over no rows the aggregate is the default, so the constant shows.
#[tokio::test]
async fn min_max_of_arithmetic_with_a_constant_lift_the_arithmetic_out() {
    let e = engine().await;
    check(&e, "SELECT max(id + 1) FROM t WHERE id > 100", "UInt64", "1").await;
    check(&e, "SELECT max(1 - id) FROM t WHERE id > 100", "Int64", "1").await;
    check(&e, "SELECT min(v + 1.5) FROM t WHERE id > 100", "Float64", "1.5").await;
    check(&e, "SELECT max((id + 1) + 1) FROM t WHERE id > 100", "UInt64", "2").await;
    check(&e, "SELECT max(n + 1) FROM t WHERE id > 100", "Nullable(Int64)", "null").await;
    // Not lifted: `-If`, `DISTINCT`, a value on both sides.
    check(&e, "SELECT maxIf(id + 1, id > 100) FROM t", "UInt64", "0").await;
    check(&e, "SELECT max(DISTINCT id + 1) FROM t WHERE id > 100", "UInt64", "0").await;
    check(&e, "SELECT max(id + id) FROM t WHERE id > 100", "UInt64", "0").await;
    // A negative factor turns max into min; with rows the answer is the same.
    check(&e, "SELECT max(id * -2), min(id * -2) FROM t", "Int64", "-2").await;
    check(&e, "SELECT max(id + 1) AS m FROM t GROUP BY name ORDER BY m", "UInt64", "2|3|4").await;
}

/// Arguments ClickHouse takes of one family of types only are checked while the query is planned: a query ClickHouse
/// refuses gets its error here too (the messages name the function and the type), and the right types still run.
#[tokio::test]
async fn arguments_of_the_wrong_type_are_clickhouses_errors() {
    let e = engine().await;
    for (sql, function, ty) in [
        ("SELECT lower(id) FROM t", "lower", "UInt64"),
        ("SELECT JSONExtractString(v, 'a') FROM t", "JSONExtractString", "Float64"),
        ("SELECT toInt32OrNull(id) FROM t", "toInt32OrNull", "UInt64"),
        ("SELECT toYear('2024-05-05')", "toYear", "String"),
        ("SELECT dateDiff('day', id, ts) FROM t", "dateDiff", "UInt64"),
        ("SELECT sqrt(ts) FROM t", "sqrt", "DateTime"),
        ("SELECT round(name) FROM t", "round", "String"),
        ("SELECT countIf(id) FROM t", "countIf", "UInt64"),
        ("SELECT sumIf(v, n) FROM t", "sumIf", "Int32"),
        ("SELECT substring(id FROM 2) FROM t", "substring", "UInt64"),
    ] {
        match e.query(sql).await {
            Err(err @ (EngineError::Execution(_) | EngineError::Syntax(_))) => {
                let m = err.to_string();
                assert!(m.contains(&format!("Illegal type {ty} of argument of function {function}")), "{sql}: {m}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    for sql in ["SELECT count(id, name) FROM t", "SELECT groupArray(0)(id) FROM t", "SELECT substring(name) FROM t"] {
        assert!(e.query(sql).await.is_err(), "{sql}");
    }
    let err = e.query("SELECT count() FROM t WHERE toDate(ts) > 19000").await.unwrap_err().to_string();
    assert!(err.contains("Illegal types of arguments (Date, Int64) of function greater"), "{err}");
    check(&e, "SELECT lower(name) FROM t ORDER BY id", "String", r#""a"|"b"|"c""#).await;
    check(&e, "SELECT countIf(n > 1) FROM t", "UInt64", "1").await;
    check(&e, "SELECT sumIf(id, n > 0) FROM t", "UInt64", "4").await;
    check(&e, "SELECT toYear(ts) FROM t ORDER BY id", "UInt16", "2024|2024|2024").await;
    check(&e, "SELECT round(v) FROM t ORDER BY id", "Float64", "2|2|4").await;
}
