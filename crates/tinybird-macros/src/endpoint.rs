//! `#[derive(Endpoint)]`: read the struct and its attributes into a model, check the nodes' templates against the
//! params, then expand.

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, LitStr, Token};
use tinybird_template::registry;

use crate::attr;
use crate::ctxt::Ctxt;
use crate::fallback;
use crate::model;
use crate::rowjson;
use crate::suggest;
use crate::template;

const CONTAINER_KEYS: &[&str] = &["name", "description", "crate", "sql", "node", "output", "cache_ttl", "token"];
const FIELD_KEYS: &[&str] = &["type", "default", "description", "required", "unused"];
const NODE_KEYS: &[&str] = &["name", "sql", "description"];
const TOKEN_KEYS: &[&str] = &["name", "read"];
const OUTPUT_FIELD_KEYS: &[&str] = &["type"];
/// Names Tinybird reserves for itself (Tinybird's template renderer).
const RESERVED: &[&str] = &["format", "q"];

pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let model = Model::read(&cx, input);
    if let Some(model) = &model {
        model.check(&cx);
    }
    match (cx.check(), model) {
        (Ok(()), Some(model)) => model.expand(),
        (Err(err), model) => {
            let mut out = err.to_compile_error();
            out.extend(fallback::endpoint(input, model.as_ref()));
            out
        }
        (Ok(()), None) => unreachable_model(input),
    }
}

/// `Model::read` returns `None` only after recording an error; reaching this is a bug in this crate.
fn unreachable_model(input: &DeriveInput) -> TokenStream {
    syn::Error::new(input.ident.span(), "tinybird-macros: no model and no error (bug in tinybird-macros)")
        .to_compile_error()
}

pub(crate) struct Model {
    pub ident: Ident,
    pub vis: syn::Visibility,
    pub krate: syn::Path,
    pub name: String,
    pub description: Option<String>,
    pub nodes: Vec<Node>,
    pub params: Vec<Param>,
    pub output: Option<Output>,
    pub cache_ttl: Option<u32>,
    pub tokens: Vec<String>,
    /// The SQL attributes were contradictory; usage checks would only echo that error.
    pub sql_conflict: bool,
}

pub(crate) struct Node {
    pub name: String,
    pub name_span: Span,
    pub description: Option<String>,
    pub sql: LitStr,
    /// The SQL's analysis, done once.
    pub analysis: template::Analysis,
}

pub(crate) struct Param {
    pub ident: Ident,
    pub wire: String,
    pub ty: syn::Type,
    /// The type with one outer `Option` removed.
    pub inner: syn::Type,
    pub explicit_type: Option<String>,
    pub default: Option<(String, DefaultKind, Span)>,
    pub description: Option<String>,
    pub required: bool,
    pub unused: Option<Span>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum DefaultKind {
    Str,
    Int,
    Float,
    Bool,
}

pub(crate) enum Output {
    /// `output = Type`.
    Type(syn::Type),
    /// `output(col: Type, …)` or `output(Name { col: Type, … })`.
    Inline { ident: Ident, fields: Vec<OutputField> },
}

pub(crate) struct OutputField {
    pub ident: Ident,
    pub wire: String,
    pub ty: syn::Type,
    pub explicit_type: Option<String>,
    /// Attributes passed through to the generated struct (doc, serde).
    pub attrs: Vec<syn::Attribute>,
}

impl Model {
    fn read(cx: &Ctxt, input: &DeriveInput) -> Option<Model> {
        let mut name: Option<LitStr> = None;
        let mut description = attr::doc_comment(&input.attrs);
        let mut krate: Option<syn::Path> = None;
        let mut sql: Option<LitStr> = None;
        let mut nodes: Vec<Node> = Vec::new();
        let mut output: Option<Output> = None;
        let mut cache_ttl = None;
        let mut tokens = Vec::new();
        attr::for_each_key(cx, &input.attrs, "an endpoint", CONTAINER_KEYS, &["node", "token"], |key, meta| {
            match key {
                "name" => name = Some(attr::lit_str(meta, key)?),
                "description" => description = Some(attr::lit_str(meta, key)?.value()),
                "crate" => krate = model::crate_path(cx, &attr::lit_str(meta, key)?),
                "sql" => sql = Some(attr::lit_str(meta, key)?),
                "node" => nodes.extend(read_node(cx, meta)?),
                "output" => output = Some(read_output(cx, input, meta)?),
                "cache_ttl" => cache_ttl = Some(attr::lit_u32(meta, key)?.0),
                "token" => tokens.extend(read_token(cx, meta)?),
                _ => {}
            }
            Ok(())
        });
        let resource = model::resource_name(cx, name.as_ref(), &input.ident);
        let sql_conflict = sql.is_some() != nodes.is_empty();
        match (sql, nodes.is_empty()) {
            (Some(sql), true) => {
                let analysis = template::analyze(&sql.value());
                nodes.push(Node { name: "endpoint".into(), name_span: sql.span(), description: None, sql, analysis });
            }
            (Some(sql), false) => cx.error_spanned_by(
                &sql,
                "use either `sql = \"…\"` (one node) or `node(name = …, sql = …)`, not both",
            ),
            (None, true) => cx.error_at(
                input.ident.span(),
                format!(
                    "endpoint `{resource}` has no SQL: add `#[tinybird(sql = \"…\")]` or one or more `#[tinybird(node(name = \"…\", sql = \"…\"))]`"
                ),
            ),
            (None, false) => {}
        }
        if output.is_none() {
            cx.error_at(
                input.ident.span(),
                format!(
                    "endpoint `{resource}` needs an output: `#[tinybird(output = MyRow)]` or `#[tinybird(output(col: Type, …))]`"
                ),
            );
        }
        let fields = model::named_fields(cx, input, "Endpoint", "parameter of the endpoint")?;
        let serde = attr::serde_container(cx, &input.attrs);
        let params = fields.iter().map(|f| read_param(cx, f, serde.rename_all)).collect();
        Some(Model {
            ident: input.ident.clone(),
            vis: input.vis.clone(),
            krate: krate.unwrap_or_else(|| syn::parse_quote!(::tinybird)),
            name: resource,
            description,
            nodes,
            params,
            output,
            cache_ttl,
            tokens,
            sql_conflict,
        })
    }
}

fn read_node(cx: &Ctxt, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Option<Node>> {
    let mut name: Option<LitStr> = None;
    let mut sql: Option<LitStr> = None;
    let mut description = None;
    attr::nested_keys(cx, meta, "a node", NODE_KEYS, |key, inner| {
        match key {
            "name" => name = Some(attr::lit_str(inner, key)?),
            "sql" => sql = Some(attr::lit_str(inner, key)?),
            "description" => description = Some(attr::lit_str(inner, key)?.value()),
            _ => {}
        }
        Ok(())
    })?;
    let (Some(name), Some(sql)) = (name, sql) else {
        cx.error_spanned_by(&meta.path, "a node needs both `name = \"…\"` and `sql = \"…\"`");
        return Ok(None);
    };
    if !model::is_valid_name(&name.value()) {
        cx.error_spanned_by(&name, format!("`{}` is not a valid node name", name.value()));
    }
    let analysis = template::analyze(&sql.value());
    Ok(Some(Node { name: name.value(), name_span: name.span(), description, sql, analysis }))
}

fn read_token(cx: &Ctxt, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Option<String>> {
    let mut name: Option<LitStr> = None;
    let mut append = None;
    if meta.input.peek(Token![=]) {
        name = Some(meta.value()?.parse()?);
    } else {
        meta.parse_nested_meta(|inner| {
            if inner.path.is_ident("append") {
                append = Some(inner.path.span());
                return Ok(());
            }
            let key = inner.path.get_ident().map(ToString::to_string).unwrap_or_default();
            match key.as_str() {
                "name" => name = Some(attr::lit_str(&inner, "name")?),
                "read" => {
                    attr::flag(&inner, "read")?;
                }
                _ => {
                    cx.error_spanned_by(&inner.path, attr::unknown_key(&key, "an endpoint token", TOKEN_KEYS));
                    attr::skip_value(&inner)?;
                }
            }
            Ok(())
        })?;
    }
    if let Some(span) = append {
        cx.error_at(span, "endpoint tokens can only READ; APPEND belongs on a datasource");
    }
    match name {
        Some(n) if model::is_valid_name(&n.value()) => Ok(Some(n.value())),
        Some(n) => {
            cx.error_spanned_by(&n, format!("`{}` is not a valid token name", n.value()));
            Ok(None)
        }
        None => {
            cx.error_spanned_by(&meta.path, "a token needs a name: `token(name = \"…\")` or `token = \"…\"`");
            Ok(None)
        }
    }
}

fn read_output(cx: &Ctxt, input: &DeriveInput, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Output> {
    if meta.input.peek(Token![=]) {
        return Ok(Output::Type(meta.value()?.parse()?));
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let (ident, body) = if content.peek(Ident) && content.peek2(syn::token::Brace) {
        let ident: Ident = content.parse()?;
        let body;
        syn::braced!(body in content);
        let fields = body.parse_terminated(syn::Field::parse_named, Token![,])?;
        if !content.is_empty() {
            return Err(content.error("expected `)` after the output row"));
        }
        (ident, fields)
    } else {
        let fields = content.parse_terminated(syn::Field::parse_named, Token![,])?;
        (format_ident!("{}Row", input.ident), fields)
    };
    if body.is_empty() {
        cx.error_spanned_by(&meta.path, "an inline output needs at least one column: `output(col: Type, …)`");
    }
    let serde = attr::serde_container(cx, &[]);
    let mut fields = Vec::new();
    for field in body {
        let (wire, _) = model::wire_name(cx, &field, serde.rename_all);
        let mut explicit_type = None;
        attr::for_each_key(cx, &field.attrs, "an output column", OUTPUT_FIELD_KEYS, &[], |key, meta| {
            if key == "type" {
                explicit_type = Some(model::explicit_type(cx, &attr::lit_str(meta, key)?));
            }
            Ok(())
        });
        let attrs = field.attrs.iter().filter(|a| !a.path().is_ident("tinybird")).cloned().collect();
        let Some(ident) = field.ident.clone() else { continue };
        if !model::is_valid_name(&wire) {
            cx.error_spanned_by(&ident, format!("`{wire}` is not a valid Tinybird column name"));
        }
        if fields.iter().any(|f: &OutputField| f.wire == wire) {
            cx.error_spanned_by(&ident, format!("output column `{wire}` is declared twice"));
        }
        fields.push(OutputField { ident, wire, ty: field.ty.clone(), explicit_type, attrs });
    }
    Ok(Output::Inline { ident, fields })
}

fn read_param(cx: &Ctxt, field: &syn::Field, rename_all: Option<crate::case::RenameRule>) -> Param {
    let (wire, serde) = model::wire_name(cx, field, rename_all);
    if let Some((key, span)) = &serde.not_a_column {
        cx.error_at(
            *span,
            format!("`#[serde({key})]` is not supported on an endpoint parameter: every field is one parameter"),
        );
    }
    let mut explicit_type = None;
    let mut default = None;
    let mut description = attr::doc_comment(&field.attrs);
    let mut required: Option<(bool, Span)> = None;
    let mut unused = None;
    attr::for_each_key(cx, &field.attrs, "an endpoint parameter", FIELD_KEYS, &[], |key, meta| {
        match key {
            "type" => explicit_type = Some(model::explicit_type(cx, &attr::lit_str(meta, key)?)),
            "default" => default = Some(read_default(meta)?),
            "description" => description = Some(attr::lit_str(meta, key)?.value()),
            "required" => required = Some((attr::flag(meta, key)?, meta.path.span())),
            "unused" if attr::flag(meta, key)? => unused = Some(meta.path.span()),
            _ => {}
        }
        Ok(())
    });
    let inner = model::option_inner(&field.ty);
    let optional = inner.is_some();
    if let Some((true, span)) = required
        && optional
    {
        cx.error_at(span, "an `Option` field is an optional parameter; make the field non-`Option` to require it");
    }
    if !model::is_valid_name(&wire) {
        cx.error_at(model::field_span(field), format!("`{wire}` is not a valid Tinybird parameter name"));
    }
    if RESERVED.contains(&wire.as_str()) {
        cx.error_at(
            model::field_span(field),
            format!("\"{wire}\" can not be used as a variable name: Tinybird reserves it"),
        );
    }
    Param {
        ident: field.ident.clone().unwrap_or_else(|| format_ident!("_")),
        wire,
        ty: field.ty.clone(),
        inner: inner.cloned().unwrap_or_else(|| field.ty.clone()),
        explicit_type,
        default,
        description,
        required: required.map_or(!optional, |(r, _)| r),
        unused,
    }
}

/// `default = 10`, `-1`, `1.5`, `"US"`, `true` → the template literal and its kind.
fn read_default(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<(String, DefaultKind, Span)> {
    let expr: syn::Expr = meta.value()?.parse()?;
    let span = expr.span();
    let (neg, lit) = match &expr {
        syn::Expr::Lit(l) => (false, &l.lit),
        syn::Expr::Unary(syn::ExprUnary { op: syn::UnOp::Neg(_), expr, .. }) => match &**expr {
            syn::Expr::Lit(l) => (true, &l.lit),
            _ => return Err(syn::Error::new(span, "`default` must be a literal: a string, number or bool")),
        },
        _ => return Err(syn::Error::new(span, "`default` must be a literal: a string, number or bool")),
    };
    let sign = if neg { "-" } else { "" };
    Ok(match lit {
        syn::Lit::Str(s) if !neg => (python_str(&s.value()), DefaultKind::Str, span),
        syn::Lit::Int(i) => (format!("{sign}{}", i.base10_digits()), DefaultKind::Int, span),
        syn::Lit::Float(f) => (format!("{sign}{}", f.base10_digits()), DefaultKind::Float, span),
        syn::Lit::Bool(b) if !neg => ((if b.value { "True" } else { "False" }).into(), DefaultKind::Bool, span),
        _ => return Err(syn::Error::new(span, "`default` must be a literal: a string, number or bool")),
    })
}

/// A single-quoted template string literal.
fn python_str(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The trait(s) a param's type must implement for a typed function, as paths under `check::`.
fn fn_traits(func: &str, array_elem: Option<&str>) -> Result<Vec<(&'static str, bool)>, String> {
    // Functions that read no parameter (`defined`, …) ask nothing of its type.
    let Some(f) = registry::param_function(func) else { return Ok(Vec::new()) };
    if f.name != "Array" {
        return Ok(vec![(f.accepts, false)]);
    }
    // `Array`'s own trait, then its element's, which comes from the element function.
    let elem = array_elem.unwrap_or("String");
    match registry::param_function(elem).filter(|e| e.array_element) {
        Some(e) => Ok(vec![(f.accepts, false), (e.accepts, true)]),
        None => Err(match suggest::did_you_mean(elem, registry::array_element_types()) {
            Some(close) => format!("unknown Array element type '{elem}'; did you mean '{close}'?"),
            None => format!(
                "unknown Array element type '{elem}'; Tinybird's are {}",
                registry::array_element_types().collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// The Tinybird type a template function reads, used as the param's type when none is given.
fn fn_param_type(func: &str, array_elem: Option<&str>) -> Option<String> {
    if func == "Array" {
        let elem = array_elem.unwrap_or("String");
        let elem = registry::param_function(elem).and_then(|f| f.param_type).unwrap_or(elem);
        return Some(format!("Array({elem})"));
    }
    match registry::param_function(func) {
        Some(f) => f.param_type.map(str::to_owned),
        None if func == "defined" => None,
        None => Some(func.to_owned()),
    }
}

/// A type check to emit: the param's type must implement `trait_` (or its array element must).
pub(crate) struct Assertion {
    pub param: usize,
    pub trait_: &'static str,
    pub on_element: bool,
}

impl Model {
    /// Checks every node against the params. Returns nothing: problems go to `cx`, assertions are recomputed by
    /// [`Model::assertions`] during expansion.
    fn check(&self, cx: &Ctxt) {
        let mut seen_nodes: Vec<&str> = Vec::new();
        for node in &self.nodes {
            if seen_nodes.contains(&node.name.as_str()) {
                cx.error_at(node.name_span, format!("duplicate node `{}` in endpoint `{}`", node.name, self.name));
            }
            seen_nodes.push(&node.name);
        }
        let mut seen_params: BTreeMap<&str, &Ident> = BTreeMap::new();
        for p in &self.params {
            if let Some(first) = seen_params.insert(&p.wire, &p.ident) {
                cx.error_spanned_by(
                    &p.ident,
                    format!("parameter `{}` is declared twice (also by field `{first}`)", p.wire),
                );
            }
        }
        let names: Vec<&str> = self.params.iter().map(|p| p.wire.as_str()).collect();
        let mut used = vec![false; self.params.len()];
        for node in &self.nodes {
            let sql = node.sql.value();
            let analysis = &node.analysis;
            for problem in &analysis.problems {
                let (line, col) = template::line_col(&sql, problem.offset);
                cx.error_spanned_by(
                    &node.sql,
                    format!(
                        "Template Syntax Error in node `{}` of endpoint `{}` (SQL line {line}, column {col}): {}",
                        node.name, self.name, problem.message
                    ),
                );
            }
            for u in &analysis.uses {
                match names.iter().position(|n| *n == u.name) {
                    Some(i) => {
                        used[i] = true;
                        if let Some(func) = &u.func
                            && let Err(msg) = fn_traits(func, u.array_elem.as_deref())
                        {
                            let (line, col) = template::line_col(&sql, u.offset);
                            cx.error_spanned_by(
                                &node.sql,
                                format!("{msg} (node `{}`, SQL line {line}, column {col})", node.name),
                            );
                        }
                    }
                    None if u.name == "job_timestamp" => {}
                    None => {
                        let (line, col) = template::line_col(&sql, u.offset);
                        cx.error_spanned_by(
                            &node.sql,
                            match suggest::did_you_mean(&u.name, names.iter().copied()) {
                                Some(close) => format!(
                                    "`{}` is not a parameter of endpoint `{}`; did you mean `{close}`? (node `{}`, SQL line {line}, column {col})",
                                    u.name, self.name, node.name
                                ),
                                None => format!(
                                    "`{}` is not a parameter of endpoint `{}`; declare it as a field of `{}` (node `{}`, SQL line {line}, column {col})",
                                    u.name, self.name, self.ident, node.name
                                ),
                            },
                        );
                    }
                }
            }
        }
        // A node that does not parse reads unknown params: "unused" would only echo its syntax error.
        let complete = !self.sql_conflict && self.nodes.iter().all(|n| !n.analysis.incomplete);
        for (p, used) in self.params.iter().zip(used) {
            match (used, p.unused) {
                (false, None) if !complete => {}
                (false, None) => cx.error_spanned_by(
                    &p.ident,
                    format!(
                        "parameter `{}` is not used by any node of endpoint `{}`; use it in the SQL or mark it `#[tinybird(unused)]`",
                        p.wire, self.name
                    ),
                ),
                (true, Some(span)) => cx.error_at(
                    span,
                    format!("parameter `{}` is marked unused but a node of endpoint `{}` uses it", p.wire, self.name),
                ),
                _ => {}
            }
            if let Some((_, kind, span)) = &p.default {
                for func in self.funcs_of(&p.wire) {
                    let fits = match func.as_str() {
                        "String" | "Date" | "DateTime" | "DateTime64" | "column" | "columns" | "symbol" | "Array"
                        | "split_to_array" | "JSON" => *kind == DefaultKind::Str,
                        "Boolean" => matches!(kind, DefaultKind::Bool | DefaultKind::Int),
                        "Float32" | "Float64" => matches!(kind, DefaultKind::Float | DefaultKind::Int),
                        f if f.contains("Int") => *kind == DefaultKind::Int,
                        _ => true,
                    };
                    if !fits {
                        cx.error_at(
                            *span,
                            format!(
                                "this default does not fit `{func}({})`: expected {}",
                                p.wire,
                                expected_literal(&func)
                            ),
                        );
                    }
                }
            }
        }
    }

    /// Every typed function applied to the param named `wire`, in order of first use.
    fn funcs_of(&self, wire: &str) -> Vec<String> {
        self.uses_of(wire).into_iter().filter_map(|(f, _)| f).collect()
    }

    fn uses_of(&self, wire: &str) -> Vec<(Option<String>, Option<String>)> {
        let mut out: Vec<(Option<String>, Option<String>)> = Vec::new();
        for node in &self.nodes {
            for u in &node.analysis.uses {
                let entry = (u.func.clone().filter(|f| f != "defined"), u.array_elem.clone());
                if u.name == wire && entry.0.is_some() && !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
        out
    }

    fn assertions(&self) -> Vec<Assertion> {
        let mut out = Vec::new();
        for (i, p) in self.params.iter().enumerate() {
            for (func, elem) in self.uses_of(&p.wire) {
                let Some(func) = func else { continue };
                let traits = fn_traits(&func, elem.as_deref()).unwrap_or_default();
                let has_element_check = traits.iter().any(|(_, on_element)| *on_element);
                for (trait_, on_element) in traits {
                    if has_element_check && !on_element {
                        continue;
                    }
                    if !out.iter().any(|a: &Assertion| a.param == i && a.trait_ == trait_ && a.on_element == on_element)
                    {
                        out.push(Assertion { param: i, trait_, on_element });
                    }
                }
            }
        }
        out
    }

    fn expand(&self) -> TokenStream {
        let krate = &self.krate;
        let private = quote!(#krate::__private);
        let ident = &self.ident;
        let vis = &self.vis;
        let name = &self.name;
        let fixed_ident = format_ident!("{}Fixed", ident);

        let fixed_fields = self.params.iter().map(|p| {
            let (id, inner) = (&p.ident, &p.inner);
            let doc = format!("Pins `{}` when set.", p.wire);
            quote!(#[doc = #doc] pub #id: ::core::option::Option<#inner>)
        });
        let fixed_inserts = self.params.iter().map(|p| {
            let (id, wire, inner) = (&p.ident, &p.wire, &p.inner);
            let call = quote_spanned!(inner.span()=> <#inner as #private::FixedValue>::to_fixed(value));
            quote! {
                if let ::core::option::Option::Some(value) = &self.#id {
                    map.insert(::std::string::String::from(#wire), #call);
                }
            }
        });
        let add_params = self.params.iter().map(|p| {
            let (id, wire, ty) = (&p.ident, &p.wire, &p.ty);
            let call = quote_spanned!(ty.span()=> <#ty as #private::ToParam>::to_param(&self.#id, #wire, &mut params));
            quote!(#call;)
        });
        let param_specs = self.params.iter().map(|p| {
            let wire = &p.wire;
            let inner = &p.inner;
            let from_fn = self.uses_of(wire).into_iter().find_map(|(f, e)| fn_param_type(f.as_deref()?, e.as_deref()));
            let ty = match p.explicit_type.as_ref().or(from_fn.as_ref()) {
                Some(t) => quote!(#private::TypeSpec::Named(#t)),
                None => quote_spanned!(inner.span()=> #private::TypeSpec::Of(<#inner as #private::TinybirdType>::ch_type)),
            };
            let required = p.required;
            let default = opt_str(p.default.as_ref().map(|d| d.0.as_str()));
            let description = opt_str(p.description.as_deref());
            quote! {
                #private::ParamSpec { name: #wire, ty: #ty, required: #required, default: #default, description: #description }
            }
        });
        let node_specs = self.nodes.iter().map(|n| {
            let (nname, sql) = (&n.name, &n.sql);
            let description = opt_str(n.description.as_deref());
            quote!(#private::NodeSpec { name: #nname, description: #description, sql: #sql })
        });
        let tokens = &self.tokens;
        let description = opt_str(self.description.as_deref());
        let cache_ttl = match self.cache_ttl {
            Some(t) => quote!(::core::option::Option::Some(#t)),
            None => quote!(::core::option::Option::None),
        };
        let assertions = self.assertions().into_iter().map(|a| {
            let p = &self.params[a.param];
            let inner = &p.inner;
            let trait_ = Ident::new(a.trait_, inner.span());
            // One bound for arrays, so a non-list type gets one error, not one per element check.
            let bound = if a.on_element {
                quote_spanned!(inner.span()=> #private::check::TemplateArray<Element: #private::check::#trait_>)
            } else {
                quote_spanned!(inner.span()=> #private::check::#trait_)
            };
            quote_spanned! {inner.span()=>
                const _: fn() = || {
                    fn assert<T: ?::core::marker::Sized + #bound>() {}
                    assert::<#inner>();
                };
            }
        });
        let (output_ty, output_item) = match &self.output {
            Some(Output::Type(ty)) => (quote_spanned!(ty.span()=> #ty), TokenStream::new()),
            Some(Output::Inline { ident: row, fields }) => (quote!(#row), expand_inline_row(self, row, fields)),
            None => (quote!(#private::serde_json::Value), TokenStream::new()),
        };
        let fixed_doc =
            format!("Fixable parameters of endpoint `{name}`: set fields become a JWT scope's `fixed_params`.");

        quote! {
            #[doc = #fixed_doc]
            #[derive(::core::default::Default)]
            #vis struct #fixed_ident { #(#fixed_fields,)* }

            #[automatically_derived]
            impl #private::FixedParams for #fixed_ident {
                fn to_json(&self) -> #private::serde_json::Map<::std::string::String, #private::serde_json::Value> {
                    let mut map = #private::serde_json::Map::new();
                    #(#fixed_inserts)*
                    map
                }
            }

            #output_item

            #[automatically_derived]
            impl #private::Endpoint for #ident {
                const NAME: &'static str = #name;
                type Output = #output_ty;
                type Fixed = #fixed_ident;

                fn definition() -> #private::EndpointDef {
                    const SPEC: #private::EndpointSpec = #private::EndpointSpec {
                        name: #name,
                        description: #description,
                        nodes: &[#(#node_specs),*],
                        params: &[#(#param_specs),*],
                        tokens: &[#(#tokens),*],
                        cache_ttl: #cache_ttl,
                    };
                    SPEC.to_def(#private::output_columns::<Self>())
                }

                fn to_params(&self) -> #private::QueryParams {
                    let mut params = #private::QueryParams::new();
                    #(#add_params)*
                    params
                }
            }

            #(#assertions)*
        }
    }
}

fn expected_literal(func: &str) -> &'static str {
    match func {
        "Boolean" => "a bool",
        "Float32" | "Float64" => "a number",
        f if f.contains("Int") => "an integer",
        _ => "a string",
    }
}

/// `Some("…")` or `None`.
pub(crate) fn opt_str(s: Option<&str>) -> TokenStream {
    match s {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    }
}

fn expand_inline_row(model: &Model, row: &Ident, fields: &[OutputField]) -> TokenStream {
    let krate = &model.krate;
    let private = quote!(#krate::__private);
    let vis = &model.vis;
    let serde_path = format!("{}::__private::serde", quote!(#krate).to_string().replace(' ', ""));
    let doc = format!("One row of endpoint `{}`.", model.name);
    let wire_path = format!("{}::__private::wire", quote!(#krate).to_string().replace(' ', ""));
    // Tinybird's JSON forms (DateTime with a space, quoted 64-bit integers, NaN as null) differ from the Rust types'
    // own serde forms; fields of types the wire module knows are read through it unless the user chose.
    let field_attrs: Vec<Vec<syn::Attribute>> = fields
        .iter()
        .map(|f| {
            let mut attrs = f.attrs.clone();
            if is_wire_type(&f.ty) && !has_serde_with(&f.attrs) {
                attrs.push(syn::parse_quote!(#[serde(with = #wire_path)]));
            }
            attrs
        })
        .collect();
    let decls = fields.iter().zip(&field_attrs).map(|(f, attrs)| {
        let (id, ty) = (&f.ident, &f.ty);
        quote!(#(#attrs)* pub #id: #ty)
    });
    let columns = fields.iter().map(|f| {
        let (wire, ty) = (&f.wire, &f.ty);
        let spec = match &f.explicit_type {
            Some(t) => quote!(#private::TypeSpec::Named(#t)),
            None => quote_spanned!(ty.span()=> #private::TypeSpec::Of(<#ty as #private::TinybirdType>::ch_type)),
        };
        quote!((#wire, #spec))
    });
    let reader_fields: Vec<rowjson::Field<'_>> = fields
        .iter()
        .zip(&field_attrs)
        .map(|(f, attrs)| rowjson::Field { ident: &f.ident, ty: &f.ty, wire: &f.wire, attrs })
        .collect();
    let decoder = rowjson::decoder_method(&private, row, &[], &reader_fields);
    quote! {
        #[doc = #doc]
        #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::cmp::PartialEq, #private::serde::Serialize, #private::serde::Deserialize)]
        #[serde(crate = #serde_path)]
        #vis struct #row { #(#decls,)* }

        #[automatically_derived]
        impl #private::Row for #row {
            fn columns() -> ::std::vec::Vec<#private::RowColumn> {
                #private::row_columns(&[#(#columns),*])
            }
            #decoder
        }
    }
}

/// Whether `ty` is written as a type `tinybird::types::wire` reads (numbers, bool, String, chrono dates, and
/// `Option`/`Vec`/maps of these). Syntactic: an alias gets the type's own serde form.
fn is_wire_type(ty: &syn::Type) -> bool {
    let syn::Type::Path(tp) = ty else { return false };
    if tp.qself.is_some() {
        return false;
    }
    let Some(last) = tp.path.segments.last() else { return false };
    let args: Vec<&syn::Type> = match &last.arguments {
        syn::PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    match last.ident.to_string().as_str() {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" | "f32" | "f64" | "bool"
        | "String" | "NaiveDate" | "NaiveDateTime" | "DateTime64" => args.is_empty() || last.ident == "DateTime64",
        "DateTime" => {
            matches!(args.as_slice(), [syn::Type::Path(p)] if p.path.segments.last().is_some_and(|s| s.ident == "Utc"))
        }
        "Option" | "Vec" => matches!(args.as_slice(), [inner] if is_wire_type(inner)),
        "HashMap" | "BTreeMap" => matches!(args.as_slice(), [k, v] if is_wire_type(k) && is_wire_type(v)),
        _ => false,
    }
}

fn has_serde_with(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().filter(|a| a.path().is_ident("serde")).any(|a| {
        let text = a.meta.to_token_stream().to_string();
        text.contains("with")
    })
}
