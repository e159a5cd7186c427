//! `ch_expect(x, 'kind', 'function')`: an argument ClickHouse takes only of one family of types. DataFusion converts
//! freely (`lower(u8)` reads the number as text, `toYear('2024-05-05')` parses the date), where ClickHouse raises
//! `ILLEGAL_TYPE_OF_ARGUMENT`; a query ClickHouse refuses must not get an answer here. The check happens while the
//! query is planned (the return type), and planning then removes the call, so it costs nothing at run time.
//! [`super::compat`] puts it around the arguments listed in [`expected`].

use crate::types::ChType;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// A family of argument types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `String` (or `LowCardinality(String)`, `FixedString`).
    Text,
    /// `Date`, `Date32`, `DateTime`, `DateTime64`.
    Date,
    /// Integers, floats, decimals and `Bool`.
    Number,
    /// A condition: `UInt8` or `Bool` (a comparison), possibly Nullable.
    Condition,
    /// Anything but a decimal (`toUnixTimestamp`, `toDateTime`).
    NotDecimal,
    /// Anything but an array (`nullIf`: an array cannot be inside a Nullable).
    NotArray,
    /// Anything but a UUID, IPv4, IPv6 or Enum column, which this engine stores as text (`hex`, whose answer for
    /// them is of their binary form).
    NotTextStored,
}

impl Family {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::Text => "text",
            Family::Date => "date",
            Family::Number => "number",
            Family::Condition => "condition",
            Family::NotDecimal => "not_decimal",
            Family::NotArray => "not_array",
            Family::NotTextStored => "not_text_stored",
        }
    }

    const ALL: [Family; 7] = [
        Family::Text,
        Family::Date,
        Family::Number,
        Family::Condition,
        Family::NotDecimal,
        Family::NotArray,
        Family::NotTextStored,
    ];

    fn of_name(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    fn admits(self, t: &DataType) -> bool {
        match t {
            DataType::Null => true,
            DataType::Dictionary(_, value) => self.admits(value),
            t => match self {
                Family::Text => matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
                Family::Date => matches!(t, DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)),
                Family::Number => t.is_integer() || t.is_floating() || t.is_decimal() || matches!(t, DataType::Boolean),
                Family::Condition => matches!(t, DataType::UInt8 | DataType::Boolean),
                Family::NotDecimal => !t.is_decimal(),
                Family::NotArray => {
                    !matches!(t, DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..))
                }
                Family::NotTextStored => true,
            },
        }
    }

    fn wanted(self) -> &'static str {
        match self {
            Family::Text => "String",
            Family::Date => "Date, Date32, DateTime or DateTime64",
            Family::Number => "a number",
            Family::Condition => "UInt8 (the last argument is the condition)",
            Family::NotDecimal => "a date, a date-time, a number that is not a decimal or a String",
            Family::NotArray => "a value that is not an array (an array cannot be inside a Nullable)",
            Family::NotTextStored => {
                "a value that is not a UUID, an IP address or an Enum (which tinybird-local's DataFusion engine stores \
                 as text)"
            }
        }
    }
}

/// The arguments (by position) of a ClickHouse function that must be of a family, measured against ClickHouse 26.9
/// over columns of every type (a sweep of each function over each column: where ClickHouse raised
/// `ILLEGAL_TYPE_OF_ARGUMENT`, the family excludes the type).
pub(crate) fn expected(function: &str) -> &'static [(usize, Family)] {
    const TEXT: &[(usize, Family)] = &[(0, Family::Text)];
    const DATE: &[(usize, Family)] = &[(0, Family::Date)];
    const NUMBER: &[(usize, Family)] = &[(0, Family::Number)];
    const DIFF: &[(usize, Family)] = &[(1, Family::Date), (2, Family::Date)];
    match function {
        "lower"
        | "upper"
        | "lowerUTF8"
        | "upperUTF8"
        | "lcase"
        | "ucase"
        | "lengthUTF8"
        | "reverseUTF8"
        | "replaceRegexpOne"
        | "replaceRegexpAll"
        | "regexp_replace"
        | "left"
        | "right"
        | "leftUTF8"
        | "rightUTF8"
        | "substring"
        | "substr"
        | "mid"
        | "substringUTF8"
        | "position"
        | "positionCaseInsensitive"
        | "positionUTF8"
        | "positionCaseInsensitiveUTF8"
        | "extract"
        | "extractAll"
        | "isValidJSON"
        | "JSONHas"
        | "JSONLength"
        | "JSONType"
        | "JSONExtract"
        | "JSONExtractString"
        | "JSONExtractInt"
        | "JSONExtractUInt"
        | "JSONExtractFloat"
        | "JSONExtractBool"
        | "JSONExtractRaw"
        | "JSONExtractKeys"
        | "JSONExtractArrayRaw"
        | "JSONExtractKeysAndValues"
        | "parseDateTimeBestEffort"
        | "parseDateTimeBestEffortOrNull"
        | "parseDateTimeBestEffortOrZero"
        | "parseDateTime64BestEffort"
        | "parseDateTime64BestEffortOrNull"
        | "parseDateTime64BestEffortOrZero" => TEXT,
        // `toInt32OrNull`, `toFloat64OrZero`, … (but not `toDateOrNull`, which also takes numbers).
        n if (n.ends_with("OrNull") || n.ends_with("OrZero"))
            && n.strip_prefix("to").is_some_and(|t| {
                let t = t.trim_end_matches("OrNull").trim_end_matches("OrZero");
                ["Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64"]
                    .contains(&t)
            }) =>
        {
            TEXT
        }
        "toYear"
        | "toMonth"
        | "toQuarter"
        | "toDayOfMonth"
        | "toDayOfWeek"
        | "toDayOfYear"
        | "toYYYYMM"
        | "toYYYYMMDD"
        | "toYYYYMMDDhhmmss"
        | "toStartOfDay"
        | "toStartOfMonth"
        | "toStartOfYear"
        | "toStartOfQuarter"
        | "toStartOfWeek"
        | "toMonday"
        | "toStartOfInterval"
        | "toStartOfHour"
        | "toStartOfMinute"
        | "toStartOfFiveMinutes"
        | "toStartOfFiveMinute"
        | "toStartOfTenMinutes"
        | "toStartOfFifteenMinutes"
        | "toLastDayOfMonth"
        | "toDate32"
        | "toISOYear"
        | "toISOWeek"
        | "toWeek"
        | "toYearWeek" => DATE,
        "dateDiff" | "date_diff" | "DATE_DIFF" | "timestampDiff" | "age" => DIFF,
        "round" | "roundBankers" | "floor" | "ceil" | "ceiling" | "trunc" | "truncate" | "sqrt" | "cbrt" | "exp"
        | "exp2" | "exp10" | "ln" | "log" | "log2" | "log10" | "sign" | "sin" | "cos" | "tan" | "asin" | "acos"
        | "atan" => NUMBER,
        "toUnixTimestamp" | "toDateTime" => &[(0, Family::NotDecimal)],
        "nullIf" | "NULLIF" | "toNullable" => &[(0, Family::NotArray)],
        "hex" => &[(0, Family::NotTextStored)],
        _ => &[],
    }
}

/// Whether the function is an `-If` aggregate, whose last argument is a condition.
pub(crate) fn takes_condition(function: &str) -> bool {
    matches!(
        function,
        "countIf"
            | "sumIf"
            | "avgIf"
            | "minIf"
            | "maxIf"
            | "anyIf"
            | "anyLastIf"
            | "uniqIf"
            | "uniqExactIf"
            | "argMinIf"
            | "argMaxIf"
            | "groupArrayIf"
            | "groupUniqArrayIf"
            | "medianIf"
            | "quantileIf"
    )
}

/// `ch_expect(x, 'family', 'function')`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Expect {
    signature: Signature,
}

/// The family and function named by the call's constant arguments.
fn named(args: &[ScalarValue]) -> Option<(Family, String)> {
    let text = |v: &ScalarValue| match v {
        ScalarValue::Utf8(Some(t)) | ScalarValue::Utf8View(Some(t)) | ScalarValue::LargeUtf8(Some(t)) => {
            Some(t.clone())
        }
        _ => None,
    };
    match args {
        [family, function] => Some((Family::of_name(&text(family)?)?, text(function)?)),
        _ => None,
    }
}

impl ScalarUDFImpl for Expect {
    fn name(&self) -> &str {
        "ch_expect"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t, ..] => Ok(t.clone()),
            [] => exec_err!("ch_expect takes a value, a family and a function"),
        }
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs<'_>,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let [value, _, _] = args.arg_fields else {
            return exec_err!("ch_expect takes a value, a family and a function");
        };
        let constants: Option<Vec<ScalarValue>> = args.scalar_arguments[1..].iter().map(|s| s.cloned()).collect();
        // The family and function are literals as the compatibility layer writes them; a plan that no longer
        // shows them (a rewritten copy of an expression already checked) keeps the value's field.
        let Some((family, function)) = constants.as_deref().and_then(named) else { return Ok(value.clone()) };
        // A column declared UUID, IPv4, IPv6 or Enum is stored as its text here, and is not a String to ClickHouse.
        let declared = ChType::of_field(value);
        let text_stored = matches!(declared.base(), ChType::Named(n)
            if ["UUID", "IPv4", "IPv6", "Enum8(", "Enum16("].iter().any(|p| n.starts_with(p)));
        if !family.admits(value.data_type()) || (matches!(family, Family::Text | Family::NotTextStored) && text_stored)
        {
            let shown = if text_stored {
                declared.base().to_string()
            } else {
                ChType::from_arrow(value.data_type()).to_string()
            };
            if family == Family::NotTextStored {
                return exec_err!(
                    "DB::Exception: tinybird-local's DataFusion engine does not support {function} of a {shown} (it \
                     stores the value as text; ClickHouse's answer is of its binary form)"
                );
            }
            return exec_err!(
                "DB::Exception: Illegal type {shown} of argument of function {function}: it takes {}. (ILLEGAL_TYPE_OF_ARGUMENT)",
                family.wanted()
            );
        }
        Ok(value.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match args.args.into_iter().next() {
            Some(value) => Ok(value),
            None => exec_err!("ch_expect takes a value, a family and a function"),
        }
    }

    fn simplify(&self, mut args: Vec<Expr>, _: &SimplifyContext) -> Result<ExprSimplifyResult> {
        // Planning has checked the type by now (the return type is computed before simplifying).
        if args.len() == 3 {
            return Ok(ExprSimplifyResult::Simplified(args.swap_remove(0)));
        }
        Ok(ExprSimplifyResult::Original(args))
    }
}

pub(super) fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Expect { signature: Signature::any(3, Volatility::Immutable) }));
}

#[cfg(test)]
mod tests {
    use super::Family;

    /// Each family is found by the name the compatibility layer writes for it (a family missing from `of_name`
    /// would skip its check).
    #[test]
    fn every_family_is_found_by_its_name() {
        for family in Family::ALL {
            assert_eq!(Family::of_name(family.name()), Some(family));
        }
        // Each family's name is its own.
        let names: std::collections::HashSet<&str> = Family::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), Family::ALL.len());
    }
}
