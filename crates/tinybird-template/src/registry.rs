//! Tinybird's template functions that read a request parameter, as data: one entry per name, with the Tinybird type
//! it gives the parameter, the Rust-side check, and the lists of Tinybird's reference renderer it belongs to. The
//! renderer's analysis, the derives' compile-time checks and the datafile writer all read this table, so a function
//! is described once.

/// A template function whose first argument names a request parameter (`{{Int32(limit, 10)}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamFunction {
    /// The function's name, as written in templates.
    pub name: &'static str,
    /// The Tinybird type it reads the parameter as (`Int` and `Integer` read an `Int32`). `None` for `Array`, whose
    /// element type decides, and `JSON`, which takes any JSON.
    pub param_type: Option<&'static str>,
    /// The trait in `tinybird::check` a Rust parameter type implements to be read by this function (for `Array`,
    /// the trait its element type implements is the element function's).
    pub accepts: &'static str,
    /// Whether it is an element type of `Array(x, 'T')`.
    pub array_element: bool,
    /// Whether the reference renderer lists it among its parameter types (`get_var_data`'s typed functions).
    pub reference_parameter_type: bool,
    /// Whether a datafile's placeholder for it carries the parameter's metadata (`default=`, `required=`,
    /// `description=`), which the datafile writer fills in.
    pub carries_metadata: bool,
}

const fn typed(name: &'static str, param_type: &'static str, accepts: &'static str) -> ParamFunction {
    ParamFunction {
        name,
        param_type: Some(param_type),
        accepts,
        array_element: true,
        reference_parameter_type: true,
        carries_metadata: true,
    }
}

const fn identifier(name: &'static str, carries_metadata: bool) -> ParamFunction {
    ParamFunction {
        name,
        param_type: Some("String"),
        accepts: "AcceptsString",
        array_element: false,
        reference_parameter_type: false,
        carries_metadata,
    }
}

/// Every template function that reads a request parameter.
pub const PARAM_FUNCTIONS: &[ParamFunction] = &[
    // `Int` and `Integer` read an Int32; the reference renderer does not list them as parameter types.
    ParamFunction { reference_parameter_type: false, ..typed("Int", "Int32", "AcceptsInt32") },
    ParamFunction { reference_parameter_type: false, ..typed("Integer", "Int32", "AcceptsInt32") },
    typed("Int8", "Int8", "AcceptsInt8"),
    typed("Int16", "Int16", "AcceptsInt16"),
    typed("Int32", "Int32", "AcceptsInt32"),
    typed("Int64", "Int64", "AcceptsInt64"),
    typed("Int128", "Int128", "AcceptsInt128"),
    typed("Int256", "Int256", "AcceptsInt256"),
    typed("UInt8", "UInt8", "AcceptsUInt8"),
    typed("UInt16", "UInt16", "AcceptsUInt16"),
    typed("UInt32", "UInt32", "AcceptsUInt32"),
    typed("UInt64", "UInt64", "AcceptsUInt64"),
    typed("UInt128", "UInt128", "AcceptsUInt128"),
    typed("UInt256", "UInt256", "AcceptsUInt256"),
    typed("Float32", "Float32", "AcceptsFloat"),
    typed("Float64", "Float64", "AcceptsFloat"),
    typed("String", "String", "AcceptsString"),
    typed("Boolean", "Boolean", "AcceptsBoolean"),
    typed("Date", "Date", "AcceptsDate"),
    typed("DateTime", "DateTime", "AcceptsDateTime"),
    typed("DateTime64", "DateTime64", "AcceptsDateTime"),
    ParamFunction { param_type: None, accepts: "TemplateArray", array_element: false, ..typed("Array", "", "") },
    ParamFunction { param_type: None, array_element: false, ..typed("JSON", "", "AcceptsJson") },
    identifier("column", true),
    identifier("columns", false),
    identifier("symbol", false),
    identifier("split_to_array", false),
];

/// The entry for `name`, when it is a function that reads a request parameter.
pub fn param_function(name: &str) -> Option<&'static ParamFunction> {
    PARAM_FUNCTIONS.iter().find(|f| f.name == name)
}

/// The element types `Array(x, 'T')` takes, in the table's order (integers, floats, `String`, `Boolean`, dates).
pub fn array_element_types() -> impl Iterator<Item = &'static str> {
    PARAM_FUNCTIONS.iter().filter(|f| f.array_element).map(|f| f.name)
}

/// A name templates may call, and the lists of Tinybird's reference renderer (`tinybird.sql_template`) that hold
/// it. The lists really differ (`symbol` is callable but not a transform type, `Symbol` the reverse), so each entry
/// says where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateFunction {
    /// The name, as written in templates.
    pub name: &'static str,
    /// In `VALID_FUNCTION_NAMES` or `VALID_CUSTOM_FUNCTION_NAMES`: the security check lets `{{ }}` call it.
    pub callable: bool,
    /// In `get_transform_types()` or the function list: the renderer defines it as a function of the template.
    pub transform: bool,
    /// In `VALID_CUSTOM_FUNCTION_NAMES`: a custom function (its first argument may name a parameter).
    pub custom: bool,
    /// Offered by the derives as "did you mean" for an unknown call (the callable names and the Python builtins
    /// templates use most).
    pub suggested: bool,
}

const fn f(name: &'static str, callable: bool, transform: bool, custom: bool, suggested: bool) -> TemplateFunction {
    TemplateFunction { name, callable, transform, custom, suggested }
}

/// Every name a template may call: the reference's lists, merged (see [`TemplateFunction`]).
pub const TEMPLATE_FUNCTIONS: &[TemplateFunction] = &[
    f("Boolean", true, true, false, true),
    f("DateTime", true, true, false, true),
    f("DateTime64", true, true, false, true),
    f("Date", true, true, false, true),
    f("Float32", true, true, false, true),
    f("Float64", true, true, false, true),
    f("Int8", true, true, false, true),
    f("Int16", true, true, false, true),
    f("Int32", true, true, false, true),
    f("Int64", true, true, false, true),
    f("Int128", true, true, false, true),
    f("Int256", true, true, false, true),
    f("UInt8", true, true, false, true),
    f("UInt16", true, true, false, true),
    f("UInt32", true, true, false, true),
    f("UInt64", true, true, false, true),
    f("UInt128", true, true, false, true),
    f("UInt256", true, true, false, true),
    f("String", true, true, false, true),
    f("Array", true, true, false, true),
    f("symbol", true, false, false, true),
    f("cache_ttl", true, false, false, true),
    f("error", true, true, false, true),
    f("custom_error", true, true, false, true),
    f("backend_hint", true, false, false, true),
    f("activate", true, false, false, true),
    f("disable", true, false, false, true),
    f("sql_unescape", true, true, false, true),
    f("max_threads", true, false, false, true),
    f("tb_secret", true, false, false, true),
    f("tb_var", true, false, false, true),
    f("Int", true, true, false, true),
    f("table", true, true, false, true),
    f("TABLE", true, true, false, true),
    f("len", true, false, false, true),
    f("list", true, false, false, true),
    f("min", true, false, false, true),
    f("max", true, false, false, true),
    f("Integer", true, true, false, true),
    f("int", true, false, false, true),
    f("float", true, false, false, true),
    f("JSON", true, true, false, true),
    f("defined", true, true, true, true),
    f("column", true, true, true, true),
    f("columns", true, true, true, true),
    f("day_diff", true, true, true, true),
    f("date_diff_in_seconds", true, true, true, true),
    f("date_diff_in_minutes", true, true, true, true),
    f("date_diff_in_hours", true, true, true, true),
    f("date_diff_in_days", true, true, true, true),
    f("split_to_array", true, true, true, true),
    f("enumerate_with_last", true, true, true, true),
    f("sql_and", true, true, true, true),
    f("bool", false, true, false, true),
    f("Symbol", false, true, false, false),
    f("Column", false, true, false, false),
    f("sum", false, false, false, true),
    f("range", false, false, false, true),
    f("enumerate", false, false, false, true),
];

/// The entry for `name`, when templates may call it.
pub fn template_function(name: &str) -> Option<&'static TemplateFunction> {
    TEMPLATE_FUNCTIONS.iter().find(|f| f.name == name)
}

/// Whether `{{ }}` may call `name` (the reference's `VALID_FUNCTION_NAMES` ∪ `VALID_CUSTOM_FUNCTION_NAMES`).
pub fn is_callable(name: &str) -> bool {
    template_function(name).is_some_and(|f| f.callable)
}

/// The names offered as "did you mean" for an unknown call.
pub fn suggestions() -> impl Iterator<Item = &'static str> {
    TEMPLATE_FUNCTIONS.iter().filter(|f| f.suggested).map(|f| f.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_element_types_are_scalar() {
        for (i, f) in PARAM_FUNCTIONS.iter().enumerate() {
            assert!(PARAM_FUNCTIONS[..i].iter().all(|g| g.name != f.name), "{} is listed twice", f.name);
            if f.array_element {
                assert!(f.param_type.is_some(), "{} is an element type without a type", f.name);
            }
        }
        assert_eq!(param_function("Integer").and_then(|f| f.param_type), Some("Int32"));
        assert_eq!(array_element_types().count(), 21);
    }

    #[test]
    fn every_name_is_listed_once_and_every_param_function_is_callable() {
        for (i, f) in TEMPLATE_FUNCTIONS.iter().enumerate() {
            assert!(TEMPLATE_FUNCTIONS[..i].iter().all(|g| g.name != f.name), "{} is listed twice", f.name);
            assert!(f.callable || f.transform || f.suggested, "{} is on no list", f.name);
        }
        for p in PARAM_FUNCTIONS {
            assert!(is_callable(p.name), "{} reads a parameter but cannot be called", p.name);
        }
    }
}
