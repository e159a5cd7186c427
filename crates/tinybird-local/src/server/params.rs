//! Request parameters: query string, form bodies and JSON bodies.

use super::error::ApiError;
use axum::http::HeaderMap;
use tinybird_template::{ParamValue, Variables};

/// Parameters that control the request rather than feed the template.
const CONTROL: &[&str] = &[
    "token",
    "q",
    "from",
    "pipeline",
    "template_parameters",
    "output_format_json_quote_64bit_integers",
    "output_format_json_quote_denormals",
    "max_threads",
];

/// All the parameters of a request, in order, with repeated keys kept.
#[derive(Debug, Default, Clone)]
pub(super) struct Params {
    pairs: Vec<(String, ParamValue)>,
}

impl Params {
    /// The first value of a key, as text.
    pub(super) fn get(&self, key: &str) -> Option<String> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| match v {
            ParamValue::Str(s) => s.clone(),
            ParamValue::List(l) => l.first().cloned().unwrap_or_default(),
            ParamValue::Json(serde_json::Value::String(s)) => s.clone(),
            ParamValue::Json(other) => other.to_string(),
        })
    }

    /// Adds the pairs of another source, except keys this one already has (the query string wins). Linear: keys
    /// are looked up in a set, not compared pair by pair.
    fn extend_missing(&mut self, other: Vec<(String, ParamValue)>) -> Result<(), ApiError> {
        let existing: std::collections::HashSet<String> = self.pairs.iter().map(|(k, _)| k.clone()).collect();
        self.pairs.extend(other.into_iter().filter(|(k, _)| !existing.contains(k)));
        check_count(self.pairs.len())
    }

    /// Template variables: every non-control parameter; repeated keys become lists.
    pub(super) fn variables(&self) -> Result<Variables, ApiError> {
        let mut vars = Variables::new();
        let mut grouped: Vec<(String, Vec<ParamValue>)> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (k, v) in &self.pairs {
            if CONTROL.contains(&k.as_str()) {
                continue;
            }
            match index.get(k.as_str()) {
                Some(&i) => grouped[i].1.push(v.clone()),
                None => {
                    index.insert(k, grouped.len());
                    grouped.push((k.clone(), vec![v.clone()]));
                }
            }
        }
        for (k, mut vs) in grouped {
            let value = if vs.len() == 1 {
                vs.remove(0)
            } else {
                ParamValue::List(
                    vs.into_iter()
                        .flat_map(|v| match v {
                            ParamValue::Str(s) => vec![s],
                            ParamValue::List(l) => l,
                            ParamValue::Json(serde_json::Value::String(s)) => vec![s],
                            ParamValue::Json(j) => vec![j.to_string()],
                        })
                        .collect(),
                )
            };
            vars.insert(k, value);
        }
        if let Some(tp) = self.get("template_parameters") {
            let parsed: serde_json::Value = serde_json::from_str(&tp)
                .map_err(|e| ApiError::bad_request(format!("template_parameters is not valid JSON: {e}")))?;
            let serde_json::Value::Object(map) = parsed else {
                return Err(ApiError::bad_request("template_parameters must be a JSON object"));
            };
            check_count(map.len())?;
            for (k, v) in map {
                vars.insert(k, json_param(v));
            }
        }
        Ok(vars)
    }
}

/// The most parameters one request may carry (query string and body together).
pub(super) const MAX_PARAMS: usize = 10_000;

fn check_count(n: usize) -> Result<(), ApiError> {
    if n > MAX_PARAMS {
        return Err(ApiError::bad_request(format!(
            "Too many parameters: the request has {n}, the limit is {MAX_PARAMS}"
        )));
    }
    Ok(())
}

fn json_param(v: serde_json::Value) -> ParamValue {
    match v {
        serde_json::Value::String(s) => ParamValue::Str(s),
        serde_json::Value::Array(items) => ParamValue::List(
            items
                .into_iter()
                .map(|i| match i {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect(),
        ),
        serde_json::Value::Null => ParamValue::Json(serde_json::Value::Null),
        other => ParamValue::Str(other.to_string()),
    }
}

/// Every value of `key` in a query string, in order (a value that is not a plain string reads as empty).
pub(super) fn query_values(query: Option<&str>, key: &str) -> Vec<String> {
    form_pairs(query.unwrap_or("").as_bytes())
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| match v {
            ParamValue::Str(s) => s,
            _ => String::new(),
        })
        .collect()
}

/// The first value of `key` in a query string ([`query_values`]).
pub(super) fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query_values(query, key).into_iter().next()
}

/// Parses `a=1&b=2` (lossy on invalid UTF-8).
pub(super) fn form_pairs(text: &[u8]) -> Vec<(String, ParamValue)> {
    // One past the limit is enough to refuse the request: a huge body is never turned into millions of strings.
    form_urlencoded::parse(text)
        .take(MAX_PARAMS + 1)
        .map(|(k, v)| (k.into_owned(), ParamValue::Str(v.into_owned())))
        .collect()
}

/// What a request body held.
pub(super) enum Body {
    None,
    /// Raw text (a `/v0/sql` query).
    Text(String),
}

/// Collects parameters from the query string and, for POST, a form or JSON body. Other bodies are returned as text.
pub(super) fn collect(raw_query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<(Params, Body), ApiError> {
    let mut params = Params { pairs: raw_query.map(|q| form_pairs(q.as_bytes())).unwrap_or_default() };
    check_count(params.pairs.len())?;
    if body.is_empty() {
        return Ok((params, Body::None));
    }
    let content_type =
        headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        params.extend_missing(form_pairs(body))?;
        Ok((params, Body::None))
    } else if content_type.starts_with("application/json") {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(ApiError::bad_request("Invalid JSON body: expected an object of parameters"));
        };
        params.extend_missing(map.into_iter().map(|(k, v)| (k, json_param(v))).collect())?;
        Ok((params, Body::None))
    } else {
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::bad_request("The request body is not valid UTF-8"))?;
        Ok((params, Body::Text(text)))
    }
}
