//! The ClickHouse type model: parsing, printing, round trips, helpers and wire compatibility.

use proptest::prelude::*;
use tinybird_core::types::{ChType, TupleElement};

fn parse(s: &str) -> ChType {
    s.parse().unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
}

#[test]
fn prints_canonical_forms() {
    let cases = [
        ("String", "String"),
        ("FixedString(16)", "FixedString(16)"),
        ("Nullable(UInt64)", "Nullable(UInt64)"),
        ("LowCardinality(Nullable(String))", "LowCardinality(Nullable(String))"),
        ("DateTime64(3, 'UTC')", "DateTime64(3, 'UTC')"),
        ("DateTime64(6)", "DateTime64(6)"),
        ("DateTime('Europe/Madrid')", "DateTime('Europe/Madrid')"),
        ("Map(String,UInt64)", "Map(String, UInt64)"),
        ("Array( Array(Int8) )", "Array(Array(Int8))"),
        ("Tuple(String, UInt8)", "Tuple(String, UInt8)"),
        ("Tuple(a String, b Nullable(Float64))", "Tuple(a String, b Nullable(Float64))"),
        ("Tuple(`a b` String)", "Tuple(`a b` String)"),
        ("Decimal(10,2)", "Decimal(10, 2)"),
        ("Decimal(5)", "Decimal(5, 0)"),
        ("Decimal32(4)", "Decimal(9, 4)"),
        ("Decimal64(4)", "Decimal(18, 4)"),
        ("Decimal128(4)", "Decimal(38, 4)"),
        ("Decimal256(4)", "Decimal(76, 4)"),
        ("Enum8('a' = 1, 'b\\'c' = 2)", "Enum8('a' = 1, 'b\\'c' = 2)"),
        ("Enum16('x' = -1000, 'y' = 1000)", "Enum16('x' = -1000, 'y' = 1000)"),
        ("Enum('a', 'b')", "Enum8('a' = 1, 'b' = 2)"),
        ("Enum('a' = 1, 'b' = 300)", "Enum16('a' = 1, 'b' = 300)"),
        ("SimpleAggregateFunction(sum, UInt64)", "SimpleAggregateFunction(sum, UInt64)"),
        ("AggregateFunction(uniq, UInt64)", "AggregateFunction(uniq, UInt64)"),
        ("AggregateFunction(count)", "AggregateFunction(count)"),
        ("AggregateFunction(quantiles(0.5, 0.9), Float64)", "AggregateFunction(quantiles(0.5, 0.9), Float64)"),
        ("AggregateFunction(argMax, String, DateTime)", "AggregateFunction(argMax, String, DateTime)"),
        ("bool", "Bool"),
        ("Boolean", "Bool"),
        ("IPv4", "IPv4"),
        ("IPv6", "IPv6"),
        ("JSON", "JSON"),
        ("Nothing", "Nothing"),
        ("Nullable(Nothing)", "Nullable(Nothing)"),
        ("Date32", "Date32"),
        ("  Int256 ", "Int256"),
        ("UInt256", "UInt256"),
    ];
    for (input, printed) in cases {
        let ty = parse(input);
        assert_eq!(ty.to_string(), printed, "printing `{input}`");
        assert_eq!(parse(printed), ty, "re-parsing `{printed}`");
    }
}

#[test]
fn parses_into_the_model() {
    assert_eq!(parse("Nullable(UInt64)"), ChType::nullable(ChType::UInt64));
    assert_eq!(parse("DateTime64(3, 'UTC')"), ChType::DateTime64 { precision: 3, tz: Some("UTC".into()) });
    assert_eq!(parse("Map(String, Array(Int32))"), ChType::map(ChType::String, ChType::array(ChType::Int32)));
    assert_eq!(
        parse("Tuple(a String, UInt8)"),
        ChType::Tuple(vec![
            TupleElement { name: Some("a".into()), ty: ChType::String },
            TupleElement { name: None, ty: ChType::UInt8 },
        ])
    );
    // A name that is also a type name is still a name when a type follows it.
    assert_eq!(
        parse("Tuple(String UInt8)"),
        ChType::Tuple(vec![TupleElement { name: Some("String".into()), ty: ChType::UInt8 }])
    );
    assert_eq!(parse("Enum8('a' = 1)"), ChType::Enum8(vec![("a".into(), 1)]));
}

#[test]
fn errors_say_where_and_what_was_expected() {
    let cases = [
        ("", 0, "expected a type name, found end of input"),
        ("Strin", 0, "unknown type `Strin`"),
        // ClickHouse reads `UUID`, `String`, `Nullable`… only as written (`bool` and `datetime` in any case).
        ("uuid", 0, "unknown type `uuid`"),
        ("Nullable(string)", 9, "unknown type `string`"),
        ("Array(Strin)", 6, "unknown type `Strin`"),
        ("Array(String", 12, "expected `)`, found end of input"),
        ("Array(String]", 12, "expected `)`, found `]`"),
        ("Map(String)", 10, "expected `,`, found `)`"),
        ("String(3)", 6, "`String` takes no arguments"),
        ("Nullable", 8, "expected `(` after `Nullable`, found end of input"),
        ("FixedString(0)", 13, "FixedString length must be at least 1"),
        ("FixedString(x)", 12, "expected a length, found `x`"),
        ("DateTime64(10)", 11, "DateTime64 precision must be in 0..=9, found 10"),
        ("DateTime64(3, UTC)", 14, "expected a quoted string, found `U`"),
        ("DateTime('UTC", 9, "unterminated string"),
        ("Decimal(0, 0)", 8, "Decimal precision must be in 1..=76, found 0"),
        ("Decimal(10, 11)", 12, "Decimal scale must be in 0..=10, found 11"),
        ("Decimal32(10)", 10, "Decimal scale must be in 0..=9, found 10"),
        ("Enum8('a' = 1000)", 17, "Enum8 values must be in -128..=127"),
        ("Enum8('a' = 1, 'a' = 2)", 22, "duplicate enum name 'a'"),
        ("Enum8('a' = 1, 'b' = 1)", 22, "duplicate enum value 1"),
        ("UInt64 extra", 7, "expected end of type, found `e`"),
        ("Tuple()", 6, "expected a type name, found `)`"),
    ];
    for (input, position, message) in cases {
        let err = input.parse::<ChType>().expect_err(input);
        assert_eq!((err.position(), err.message()), (position, message), "for `{input}`");
        assert_eq!(err.to_string(), format!("invalid Tinybird type `{input}`: {message} at position {position}"));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}String{}", "Array(".repeat(10_000), ")".repeat(10_000));
    let err = deep.parse::<ChType>().unwrap_err();
    assert!(err.message().contains("nested more than 64 deep"), "{err}");
    let ok = format!("{}String{}", "Array(".repeat(60), ")".repeat(60));
    assert!(ok.parse::<ChType>().is_ok());
}

#[test]
fn helpers() {
    assert!(parse("Nullable(String)").is_nullable());
    assert!(parse("LowCardinality(Nullable(String))").is_nullable());
    assert!(parse("Nullable(Nothing)").is_nullable());
    assert!(!parse("Array(Nullable(String))").is_nullable());
    assert!(!parse("String").is_nullable());
    assert_eq!(parse("LowCardinality(String)").unwrap_low_cardinality(), &ChType::String);
    assert_eq!(parse("String").unwrap_low_cardinality(), &ChType::String);
    assert_eq!(parse("LowCardinality(Nullable(String))").base(), &ChType::String);
    assert!(ChType::Int256.is_integer());
    assert!(!ChType::Float64.is_integer());
}

#[test]
fn wire_compatibility() {
    let fits = |wire: &str, declared: &str| parse(wire).is_compatible_with(&parse(declared));
    // Wrappers.
    assert!(fits("LowCardinality(String)", "String"));
    assert!(fits("String", "LowCardinality(String)"));
    assert!(fits("UInt64", "Nullable(UInt64)"));
    assert!(!fits("Nullable(UInt64)", "UInt64"));
    assert!(fits("LowCardinality(Nullable(String))", "Nullable(String)"));
    assert!(fits("Nullable(Nothing)", "Nullable(String)"));
    assert!(fits("Array(Nothing)", "Array(UInt8)"));
    // Time zones and precisions.
    assert!(fits("DateTime('UTC')", "DateTime"));
    assert!(fits("DateTime", "DateTime('Europe/Madrid')"));
    assert!(fits("DateTime64(3, 'UTC')", "DateTime64(3)"));
    assert!(!fits("DateTime64(6)", "DateTime64(3)"));
    assert!(!fits("DateTime", "DateTime64(3)"));
    assert!(fits("Date", "Date32"));
    assert!(!fits("Date32", "Date"));
    // Numbers widen, never narrow.
    assert!(fits("UInt32", "UInt64"));
    assert!(fits("UInt32", "Int64"));
    assert!(!fits("UInt64", "Int64"));
    assert!(!fits("UInt64", "UInt32"));
    assert!(!fits("Int8", "UInt64"));
    assert!(fits("Int64", "Int128"));
    assert!(fits("Float32", "Float64"));
    assert!(!fits("Float64", "Float32"));
    assert!(!fits("UInt64", "Float64"));
    assert!(fits("Decimal(10, 2)", "Decimal(12, 4)"));
    assert!(!fits("Decimal(10, 2)", "Decimal(10, 4)"));
    assert!(!fits("Decimal(10, 4)", "Decimal(10, 2)"));
    // String-valued types.
    assert!(fits("FixedString(3)", "String"));
    assert!(!fits("String", "FixedString(3)"));
    assert!(fits("UUID", "String"));
    assert!(fits("Enum8('a' = 1)", "String"));
    assert!(fits("Enum8('a' = 1)", "Enum16('a' = 5, 'b' = 6)"));
    assert!(!fits("Enum8('a' = 1, 'c' = 2)", "Enum8('a' = 1, 'b' = 2)"));
    // Aggregates and containers.
    assert!(fits("SimpleAggregateFunction(sum, UInt64)", "UInt64"));
    assert!(fits("UInt64", "SimpleAggregateFunction(sum, UInt64)"));
    assert!(!fits("AggregateFunction(uniq, UInt64)", "UInt64"));
    assert!(fits("Array(LowCardinality(String))", "Array(String)"));
    assert!(fits("Map(String, UInt32)", "Map(String, UInt64)"));
    assert!(fits("Tuple(a String, b UInt8)", "Tuple(String, UInt16)"));
    assert!(!fits("Tuple(String, UInt8)", "Tuple(String)"));
    assert!(fits("JSON", "JSON"));
    assert!(!fits("JSON", "String"));
}

fn leaf() -> impl Strategy<Value = ChType> {
    prop_oneof![
        Just(ChType::String),
        (1u32..100).prop_map(ChType::FixedString),
        Just(ChType::Int8),
        Just(ChType::Int64),
        Just(ChType::Int256),
        Just(ChType::UInt8),
        Just(ChType::UInt128),
        Just(ChType::Float32),
        Just(ChType::Float64),
        (1u8..=76)
            .prop_flat_map(|p| (Just(p), 0..=p))
            .prop_map(|(precision, scale)| ChType::Decimal { precision, scale }),
        Just(ChType::Bool),
        Just(ChType::Date),
        Just(ChType::Date32),
        proptest::option::of(tz()).prop_map(ChType::DateTime),
        (0u8..=9, proptest::option::of(tz())).prop_map(|(precision, tz)| ChType::DateTime64 { precision, tz }),
        Just(ChType::Uuid),
        Just(ChType::IPv4),
        Just(ChType::IPv6),
        Just(ChType::Json),
        Just(ChType::Nothing),
        enum_values::<i8>().prop_map(ChType::Enum8),
        enum_values::<i16>().prop_map(ChType::Enum16),
    ]
}

fn tz() -> impl Strategy<Value = String> {
    // Quotes, backslashes and non-ASCII exercise the string escaping.
    "[A-Za-z/_'\\\\é ]{0,12}"
}

fn enum_values<T: Arbitrary + Copy + PartialEq + std::fmt::Debug + 'static>() -> impl Strategy<Value = Vec<(String, T)>>
{
    proptest::collection::vec(("[a-z' \\\\]{0,6}", any::<T>()), 1..5).prop_map(|values| {
        let mut out: Vec<(String, T)> = Vec::new();
        for (name, value) in values {
            if !out.iter().any(|(n, v)| *n == name || *v == value) {
                out.push((name, value));
            }
        }
        out
    })
}

fn ch_type() -> impl Strategy<Value = ChType> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(ChType::nullable),
            inner.clone().prop_map(ChType::low_cardinality),
            inner.clone().prop_map(ChType::array),
            (inner.clone(), inner.clone()).prop_map(|(k, v)| ChType::map(k, v)),
            proptest::collection::vec((proptest::option::of("[a-z_][a-z0-9_ ]{0,5}"), inner.clone()), 1..4)
                .prop_map(|els| ChType::Tuple(els.into_iter().map(|(name, ty)| TupleElement { name, ty }).collect())),
            ("[a-z][a-zA-Z]{0,8}", inner.clone())
                .prop_map(|(function, ty)| ChType::SimpleAggregateFunction { function, ty: Box::new(ty) }),
            ("[a-z][a-zA-Z]{0,8}(\\(0\\.5, 'x'\\))?", proptest::collection::vec(inner, 0..3))
                .prop_map(|(function, args)| ChType::AggregateFunction { function, args }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn print_then_parse_round_trips(ty in ch_type()) {
        let printed = ty.to_string();
        let parsed: ChType = printed.parse().map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(&parsed, &ty);
        prop_assert_eq!(parsed.to_string(), printed);
        prop_assert!(ty.is_compatible_with(&ty), "a type fits itself: {}", ty);
    }

    #[test]
    fn the_parser_never_panics(input in "\\PC{0,40}") {
        let _ = input.parse::<ChType>();
    }

    #[test]
    fn the_parser_never_panics_on_type_like_input(input in "[A-Za-z0-9(),' =`\\\\]{0,40}") {
        if let Ok(ty) = input.parse::<ChType>() {
            // Whatever parses prints to something that parses to the same type.
            prop_assert_eq!(ty.to_string().parse::<ChType>().ok(), Some(ty));
        }
    }
}

#[test]
fn response_meta_is_checked_against_declared_columns() {
    use tinybird_core::row::{ColumnMismatch, RowColumn, check_columns};
    let col = |name: &str, ty: &str| RowColumn { name: name.into(), ty: ty.into() };
    let expected = [col("day", "Date"), col("events", "UInt64"), col("who", "Nullable(String)"), col("gone", "String")];
    let meta =
        [col("day", "Date"), col("events", "Int64"), col("who", "LowCardinality(String)"), col("extra", "Float64")];
    let mismatches = check_columns(&expected, &meta);
    assert_eq!(
        mismatches,
        [
            ColumnMismatch::Type { name: "events".into(), expected: "UInt64".into(), actual: "Int64".into() },
            ColumnMismatch::Missing { name: "gone".into() },
        ]
    );
    assert_eq!(
        mismatches[0].to_string(),
        "column `events` is Int64 in the response, which does not fit the declared UInt64"
    );
    let bad = check_columns(&[col("x", "Strin")], &[col("x", "String")]);
    assert_eq!(bad[0].to_string(), "column `x`: invalid Tinybird type `Strin`: unknown type `Strin` at position 0");
    assert!(check_columns(&[], &meta).is_empty());
}
