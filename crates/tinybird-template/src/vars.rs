//! Inputs and outputs of one render.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// One parameter value.
///
/// HTTP params arrive as strings (one, or several for a repeated key); fixed params from a JWT arrive as JSON
/// values and keep their JSON type (Tinybird's JWT docs, fixed params): `{{String(x)}}` with `Json(3)` renders `'3'`, a bare `{{x}}`
/// renders `3`.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A single HTTP value.
    Str(String),
    /// A repeated HTTP key (`?ids=1&ids=2`), a Python list of strings to the renderer.
    List(Vec<String>),
    /// A JSON value (JWT `fixed_params`), converted as Python's `json.loads` would.
    Json(serde_json::Value),
}

impl From<&str> for ParamValue {
    fn from(s: &str) -> Self {
        ParamValue::Str(s.to_string())
    }
}
impl From<String> for ParamValue {
    fn from(s: String) -> Self {
        ParamValue::Str(s)
    }
}
impl From<Vec<String>> for ParamValue {
    fn from(v: Vec<String>) -> Self {
        ParamValue::List(v)
    }
}
impl From<serde_json::Value> for ParamValue {
    fn from(v: serde_json::Value) -> Self {
        ParamValue::Json(v)
    }
}

/// The variables of one render: parameter name → value.
///
/// ```
/// use tinybird_template::{ParamValue, Variables};
/// let mut vars = Variables::from_pairs([("ids", "1"), ("ids", "2"), ("org", "a")]);
/// assert_eq!(vars.get("ids"), Some(&ParamValue::List(vec!["1".into(), "2".into()])));
/// let fixed = Variables::from_iter([("org".to_string(), ParamValue::Json(serde_json::json!(3)))]);
/// vars.overlay(&fixed); // fixed params (from a JWT) win over request params
/// assert_eq!(vars.get("org"), Some(&ParamValue::Json(serde_json::json!(3))));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variables {
    map: HashMap<String, ParamValue>,
}

impl Variables {
    /// No variables.
    pub fn new() -> Variables {
        Variables::default()
    }

    /// Set `name` to `value`, replacing any previous value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<ParamValue>) -> &mut Self {
        self.map.insert(name.into(), value.into());
        self
    }

    /// Build from HTTP query pairs: a key seen more than once becomes a [`ParamValue::List`] in arrival order.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Variables
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut map: HashMap<String, ParamValue> = HashMap::new();
        for (k, v) in pairs {
            let v = v.into();
            match map.entry(k.into()) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(ParamValue::Str(v));
                }
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let slot = e.get_mut();
                    match slot {
                        ParamValue::Str(first) => {
                            *slot = ParamValue::List(vec![std::mem::take(first), v]);
                        }
                        ParamValue::List(items) => items.push(v),
                        ParamValue::Json(_) => *slot = ParamValue::Str(v),
                    }
                }
            }
        }
        Variables { map }
    }

    /// Put every variable of `fixed` over these ones (fixed params win, as Tinybird's JWT docs say).
    pub fn overlay(&mut self, fixed: &Variables) -> &mut Self {
        for (k, v) in &fixed.map {
            self.map.insert(k.clone(), v.clone());
        }
        self
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.map.get(name)
    }

    /// Whether `name` has a value.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Iterate over (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl FromIterator<(String, ParamValue)> for Variables {
    fn from_iter<T: IntoIterator<Item = (String, ParamValue)>>(iter: T) -> Self {
        Variables { map: iter.into_iter().collect() }
    }
}

/// Workspace secrets for `tb_secret`/`tb_var`. Values never appear in `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    map: HashMap<String, String>,
}

impl Secrets {
    /// No secrets.
    pub fn new() -> Secrets {
        Secrets::default()
    }
    /// Add a secret.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.map.insert(name.into(), value.into());
        self
    }
    /// Whether a secret named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
    /// The value of a secret, to bind as the ClickHouse query parameter the render refers to.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.map.keys().collect();
        names.sort();
        f.debug_struct("Secrets").field("names", &names).field("values", &"<redacted>").finish()
    }
}

/// Options of one render.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Test mode (build/parse checks, `/v0/sql` without variables): missing variables become placeholders,
    /// `error`/`custom_error` are no-ops.
    pub test_mode: bool,
    /// Secrets visible to `tb_secret`/`tb_var`.
    pub secrets: Secrets,
    /// The current time as `YYYY-MM-DD HH:MM:SS`, used for `job_timestamp` when it is referenced and not given.
    /// `None` uses the system clock (UTC).
    pub now: Option<String>,
}

/// Side outputs of a render (Tinybird's template renderer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// `max_threads(n)`.
    pub max_threads: Option<i64>,
    /// `cache_ttl('5m')`.
    pub cache_ttl: Option<String>,
    /// `backend_hint(x)`; `None` when unset or set to None/False.
    pub backend_hint: Option<String>,
    /// `activate(feature)`, every feature activated.
    pub activate: BTreeSet<String>,
    /// `disable(feature)`.
    pub disable: Option<String>,
}

/// A successful render.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The SQL.
    pub sql: String,
    /// Side outputs.
    pub hints: Hints,
    /// Warnings, e.g. a reserved parameter name used as a variable.
    pub warnings: Vec<String>,
    /// Secrets the SQL refers to as ClickHouse query parameters (`{name: String}`); bind them when running it.
    pub query_params: Vec<String>,
}
