//! Reading attributes: `#[tinybird(…)]` keys (unknown and duplicate keys reported on the key itself), `#[serde(…)]`
//! keys that decide wire names, and doc comments.

use proc_macro2::{Span, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, LitStr, Token};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;
use crate::suggest;

/// Walks every `#[tinybird(…)]` on an item, calling `handle` once per key in `allowed`.
///
/// Unknown keys and repeated keys (unless listed in `repeatable`) are reported on the key. When `handle` fails, the
/// error is recorded and the rest of that key's value is skipped, so later keys are still read.
pub(crate) fn for_each_key(
    cx: &Ctxt,
    attrs: &[Attribute],
    what: &str,
    allowed: &[&str],
    repeatable: &[&str],
    mut handle: impl FnMut(&str, &ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    let mut seen: Vec<String> = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("tinybird")) {
        if !matches!(attr.meta, syn::Meta::List(_)) {
            cx.error_spanned_by(attr, "expected `#[tinybird(key = value, …)]`");
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_else(|| {
                meta.path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().join("::")
            });
            if !allowed.contains(&key.as_str()) {
                cx.error_spanned_by(&meta.path, unknown_key(&key, what, allowed));
                return skip_value(&meta);
            }
            if seen.contains(&key) && !repeatable.contains(&key.as_str()) {
                cx.error_spanned_by(&meta.path, format!("duplicate tinybird attribute `{key}`"));
                return skip_value(&meta);
            }
            seen.push(key.clone());
            if let Err(err) = handle(&key, &meta) {
                cx.syn_error(err);
                return skip_value(&meta);
            }
            Ok(())
        });
        if let Err(err) = result {
            cx.syn_error(err);
        }
    }
}

/// "unknown tinybird attribute `x` on …", with the likely key, or the list of keys when none is close.
pub(crate) fn unknown_key(key: &str, what: &str, allowed: &[&str]) -> String {
    match suggest::did_you_mean(key, allowed.iter().copied()) {
        Some(close) => format!("unknown tinybird attribute `{key}` on {what}; did you mean `{close}`?"),
        None => format!("unknown tinybird attribute `{key}` on {what}; expected one of: {}", allowed.join(", ")),
    }
}

/// Consumes what is left of one key's value: everything up to the next top-level comma.
pub(crate) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    while !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// `key = "string"`.
pub(crate) fn lit_str(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<LitStr> {
    let value = meta.value()?;
    match value.parse::<syn::Expr>()? {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Ok(s),
        other => Err(syn::Error::new_spanned(other, format!("expected a string: `{key} = \"…\"`"))),
    }
}

/// `key = 123`.
pub(crate) fn lit_u32(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<(u32, Span)> {
    let value = meta.value()?;
    match value.parse::<syn::Expr>()? {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<u32>().map(|n| (n, i.span())),
        other => Err(syn::Error::new_spanned(other, format!("expected a non-negative integer: `{key} = 60`"))),
    }
}

/// `key = true|false`, or a bare `key` meaning true.
pub(crate) fn flag(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<bool> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        return Ok(true);
    }
    let value = meta.value()?;
    match value.parse::<syn::Lit>()? {
        syn::Lit::Bool(b) => Ok(b.value),
        other => Err(syn::Error::new(other.span(), format!("expected `{key}`, `{key} = true` or `{key} = false`"))),
    }
}

/// The doc comment, lines joined with `\n`, the one leading space rustdoc adds removed; `None` when empty.
pub(crate) fn doc_comment(attrs: &[Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = &nv.value
        {
            let text = s.value();
            // `"".lines()` is empty, but an empty `///` line is a paragraph break.
            let text = if text.is_empty() { "\n".to_owned() } else { text };
            for line in text.lines() {
                lines.push(line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned());
            }
        }
    }
    while lines.first().is_some_and(std::string::String::is_empty) {
        lines.remove(0);
    }
    while lines.last().is_some_and(std::string::String::is_empty) {
        lines.pop();
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// What `#[serde(…)]` on a struct says, read once: wire names here, and the keys the direct row reader
/// (`rowjson`) checks it understands.
#[derive(Default)]
pub(crate) struct SerdeContainer {
    pub rename_all: Option<RenameRule>,
    pub deny_unknown_fields: bool,
    /// Every key given, in order.
    pub keys: Vec<String>,
    /// Whether an attribute could not be read (serde reports it; readers that need every key give up).
    pub unreadable: bool,
    errors: Vec<syn::Error>,
}

/// What `#[serde(…)]` on a field says, read once: its wire name, whether it is one column, its `with` module, and
/// the keys given.
#[derive(Default)]
pub(crate) struct SerdeField {
    pub rename: Option<String>,
    /// `skip`, `skip_serializing`, `skip_deserializing` or `flatten`: the field is not one column.
    pub not_a_column: Option<(String, Span)>,
    /// The `with = "…"` module, when one is given as a string.
    pub with: Option<String>,
    /// Every key given, in order.
    pub keys: Vec<String>,
    /// Whether an attribute could not be read.
    pub unreadable: bool,
    errors: Vec<syn::Error>,
}

/// Reads `#[serde(…)]` on a struct, reporting to `cx` a `rename_all` that differs between serialize and deserialize.
pub(crate) fn serde_container(cx: &Ctxt, attrs: &[Attribute]) -> SerdeContainer {
    let mut out = read_serde_container(attrs);
    for err in std::mem::take(&mut out.errors) {
        cx.syn_error(err);
    }
    out
}

/// [`serde_container`] without reporting anything.
pub(crate) fn read_serde_container(attrs: &[Attribute]) -> SerdeContainer {
    let mut out = SerdeContainer::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            out.keys.push(key.clone());
            match key.as_str() {
                "rename_all" => {
                    match split_ser_de(&meta)? {
                        (Some(s), Some(d)) if s.value() != d.value() => out.errors.push(syn::Error::new_spanned(
                            &meta.path,
                            "tinybird needs one name per column: `rename_all` must be the same for serialize and deserialize",
                        )),
                        (Some(_), None) | (None, Some(_)) => out.errors.push(syn::Error::new_spanned(
                            &meta.path,
                            "tinybird needs one name per column: give `rename_all` for both serialize and deserialize",
                        )),
                        // An unknown rule is serde's to report; say nothing twice.
                        (Some(s), Some(_)) => out.rename_all = RenameRule::parse(&s.value()),
                        (None, None) => {}
                    }
                    Ok(())
                }
                "deny_unknown_fields" => {
                    out.deny_unknown_fields = true;
                    skip_value(&meta)
                }
                _ => skip_value(&meta),
            }
        });
        // A malformed serde attribute is serde's to report.
        out.unreadable |= result.is_err();
    }
    out
}

/// Reads `#[serde(…)]` on a field, reporting to `cx` a `rename` that differs between serialize and deserialize.
pub(crate) fn serde_field(cx: &Ctxt, attrs: &[Attribute], field_name: &str) -> SerdeField {
    let mut out = read_serde_field(attrs, field_name);
    for err in std::mem::take(&mut out.errors) {
        cx.syn_error(err);
    }
    out
}

/// [`serde_field`] without reporting anything.
pub(crate) fn read_serde_field(attrs: &[Attribute], field_name: &str) -> SerdeField {
    let mut out = SerdeField::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            out.keys.push(key.clone());
            match key.as_str() {
                "rename" => {
                    let (ser, de) = split_ser_de(&meta)?;
                    let ser = ser.map(|s| s.value()).unwrap_or_else(|| field_name.to_owned());
                    let de = de.map(|s| s.value()).unwrap_or_else(|| field_name.to_owned());
                    if ser == de {
                        out.rename = Some(ser);
                    } else {
                        out.errors.push(syn::Error::new_spanned(
                            &meta.path,
                            "tinybird needs one name per column: `rename` must be the same for serialize and deserialize",
                        ));
                    }
                    Ok(())
                }
                "with" => {
                    let path: LitStr = meta.value()?.parse()?;
                    out.with = Some(path.value());
                    Ok(())
                }
                "skip" | "skip_serializing" | "skip_deserializing" | "flatten" => {
                    out.not_a_column = Some((key.clone(), meta.path.span()));
                    skip_value(&meta)
                }
                _ => skip_value(&meta),
            }
        });
        out.unreadable |= result.is_err();
    }
    out
}

/// `key = "x"` → (x, x); `key(serialize = "a", deserialize = "b")` → (a, b), either side optional.
fn split_ser_de(meta: &ParseNestedMeta<'_>) -> syn::Result<(Option<LitStr>, Option<LitStr>)> {
    if meta.input.peek(Token![=]) {
        let s: LitStr = meta.value()?.parse()?;
        return Ok((Some(s.clone()), Some(s)));
    }
    let mut ser = None;
    let mut de = None;
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("serialize") {
            ser = Some(inner.value()?.parse()?);
        } else if inner.path.is_ident("deserialize") {
            de = Some(inner.value()?.parse()?);
        } else {
            skip_value(&inner)?;
        }
        Ok(())
    })?;
    Ok((ser, de))
}

/// Like [`for_each_key`], for the keys inside one `key(…)` value.
pub(crate) fn nested_keys(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    what: &str,
    allowed: &[&str],
    mut handle: impl FnMut(&str, &ParseNestedMeta<'_>) -> syn::Result<()>,
) -> syn::Result<()> {
    let mut seen: Vec<String> = Vec::new();
    meta.parse_nested_meta(|inner| {
        let key = inner.path.get_ident().map(ToString::to_string).unwrap_or_default();
        if !allowed.contains(&key.as_str()) {
            cx.error_spanned_by(&inner.path, unknown_key(&key, what, allowed));
            return skip_value(&inner);
        }
        if seen.contains(&key) {
            cx.error_spanned_by(&inner.path, format!("duplicate tinybird attribute `{key}`"));
            return skip_value(&inner);
        }
        seen.push(key.clone());
        if let Err(err) = handle(&key, &inner) {
            cx.syn_error(err);
            return skip_value(&inner);
        }
        Ok(())
    })
}
