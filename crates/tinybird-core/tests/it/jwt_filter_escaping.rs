//! Any string value in a typed filter stays one ClickHouse string literal: it cannot close the quote early, and
//! reading the literal back with ClickHouse's escape rules gives the original string.

use proptest::prelude::*;
use tinybird_core::filter::Column;

/// Reads a ClickHouse single-quoted literal at the start of `sql`; returns its value and the rest of the text.
fn read_literal(sql: &str) -> Option<(String, &str)> {
    let mut chars = sql.strip_prefix('\'')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => return Some((out, &sql[i + 2..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '0' => out.push('\0'),
                    'x' => {
                        let hex: String = [chars.next()?.1, chars.next()?.1].iter().collect();
                        out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
                    }
                    other => out.push(other),
                }
            }
            c => out.push(c),
        }
    }
    None
}

proptest! {
    #[test]
    fn string_values_round_trip_as_one_literal(value in any::<String>()) {
        let sql = Column::<String>::new("org_id").eq(value.as_str()).into_sql();
        let literal = sql.strip_prefix("org_id = ").expect("column and operator first");
        let (read, rest) = read_literal(literal).expect("a whole literal");
        prop_assert_eq!(read, value);
        prop_assert_eq!(rest, "", "nothing may follow the literal");
    }

    #[test]
    fn in_lists_keep_every_value_apart(values in proptest::collection::vec(".*", 1..5)) {
        let sql = Column::<String>::new("c").in_(values.iter()).into_sql();
        let mut rest = sql.strip_prefix("c IN (").expect("prefix").strip_suffix(')').expect("suffix");
        for (i, value) in values.iter().enumerate() {
            let (read, after) = read_literal(rest).expect("a literal");
            prop_assert_eq!(&read, value);
            rest = if i + 1 < values.len() { after.strip_prefix(", ").expect("separator") } else { after };
        }
        prop_assert_eq!(rest, "");
    }
}
