//! Compile-time check of ClickHouse type strings given in `#[tinybird(type = "…")]`, with the runtime's own parser
//! (`tinybird-types`), so what compiles is what the runtime and Tinybird read.

use crate::suggest;
use tinybird_types::{ChType, FAMILIES};

/// Checks a type string; the error says what is wrong in ClickHouse's terms, and suggests a name for a typo.
pub(crate) fn check(src: &str) -> Result<(), String> {
    let Err(err) = src.parse::<ChType>() else { return Ok(()) };
    let hint = match (err.unknown_type(), err.usage()) {
        (Some(name), _) => suggest::hint(name, FAMILIES.iter().map(|f| f.name)),
        (None, Some(usage)) => format!("; write {usage}"),
        (None, None) => String::new(),
    };
    // The span shows the whole string, so the message says only what is wrong.
    Err(format!("{}{hint}", err.message()))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_tinybird_schema_types() {
        for t in [
            "String",
            "LowCardinality(Nullable(String))",
            "DateTime64(3, 'UTC')",
            "DateTime('Europe/Madrid')",
            "Decimal(18, 4)",
            "Map(String, Array(UInt64))",
            "Tuple(a String, b UInt8)",
            "Enum8('a' = 1, 'b\\'c' = 2)",
            "SimpleAggregateFunction(sum, UInt64)",
            "AggregateFunction(quantiles(0.5, 0.9), Float64)",
            "FixedString(16)",
            "datetime",
        ] {
            assert_eq!(check(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(check("Strin").unwrap_err(), "unknown type `Strin`; did you mean `String`?");
        assert!(
            check("string").unwrap_err().contains("did you mean `String`?"),
            "ClickHouse reads `String` only as written"
        );
        assert!(check("Nullable").unwrap_err().contains("`Nullable(T)`"));
        assert!(check("UInt64(3)").unwrap_err().contains("takes no arguments"));
        assert!(check("DateTime64(12)").unwrap_err().contains("0..=9"));
        assert!(check("Array(String").unwrap_err().contains("expected `)`"));
        assert!(check("String extra").unwrap_err().contains("expected end of type"));
    }
}
