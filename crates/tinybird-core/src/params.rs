//! Encoding Rust values as Tinybird request parameters (spec §2.2) and as JWT `fixed_params` (spec §1.4).

/// Request parameters in order. A key may repeat (arrays are sent as repeated keys, which the renderer takes as a list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends one `key=value` pair.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((key.into(), value.into()));
    }
    /// Adds a parameter from a Rust value; `None` adds nothing, a `Vec` adds one pair per element.
    pub fn add<T: ToParam + ?Sized>(&mut self, key: &str, value: &T) {
        value.to_param(key, self);
    }
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// A Rust value usable as an endpoint parameter.
pub trait ToParam {
    /// Appends this value's pairs for `key`.
    fn to_param(&self, key: &str, out: &mut QueryParams);
}

/// A Rust value usable as a JWT fixed param: keeps its JSON type.
pub trait FixedValue {
    fn to_fixed(&self) -> serde_json::Value;
}
