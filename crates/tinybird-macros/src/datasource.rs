//! `#[derive(Datasource)]`: read the row struct and its attributes, check engine keys against the columns, expand.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, LitStr};

use crate::attr;
use crate::ctxt::Ctxt;
use crate::endpoint::opt_str;
use crate::fallback;
use crate::model;
use crate::rowjson;
use crate::suggest;
use tinybird_types::TABLE_ENGINES as ENGINES;

const CONTAINER_KEYS: &[&str] = &[
    "name",
    "description",
    "crate",
    "engine",
    "sorting_key",
    "partition_key",
    "primary_key",
    "sampling_key",
    "ttl",
    "ver",
    "sign",
    "version",
    "is_deleted",
    "summing_columns",
    "settings",
    "index",
    "token",
    "json_paths",
];
const FIELD_KEYS: &[&str] = &["type", "json", "default", "codec"];
const INDEX_KEYS: &[&str] = &["name", "expr", "type", "granularity"];
const TOKEN_KEYS: &[&str] = &["name", "read", "append"];

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
            out.extend(fallback::datasource(input, model.as_ref()));
            out
        }
        (Ok(()), None) => {
            syn::Error::new(input.ident.span(), "tinybird-macros: no model and no error (bug)").to_compile_error()
        }
    }
}

pub(crate) struct Model {
    pub ident: Ident,
    pub vis: syn::Visibility,
    pub krate: syn::Path,
    pub name: String,
    pub description: Option<String>,
    pub columns: Vec<Column>,
    pub engine: String,
    /// Engine keys by datafile keyword suffix (`sorting_key`, …), each with the literal for spans.
    pub keys: Vec<(&'static str, LitStr)>,
    pub indexes: Vec<Index>,
    pub tokens: Vec<(String, bool, bool)>,
    /// `Row::__row_decoder`, or nothing.
    pub decoder: TokenStream,
}

pub(crate) struct Column {
    pub ident: Ident,
    pub wire: String,
    pub ty: syn::Type,
    pub explicit_type: Option<String>,
    pub json_path: Option<String>,
    pub default: Option<String>,
    pub codec: Option<String>,
}

pub(crate) struct Index {
    pub name: String,
    pub expr: String,
    pub ty: String,
    pub granularity: u32,
}

/// Keys that name a list of columns (checked) or one column.
const COLUMN_LIST_KEYS: &[&str] = &["sorting_key", "primary_key", "summing_columns"];
const COLUMN_KEYS: &[&str] = &["ver", "sign", "version", "is_deleted"];

impl Model {
    fn read(cx: &Ctxt, input: &DeriveInput) -> Option<Model> {
        let mut name: Option<LitStr> = None;
        let mut description = attr::doc_comment(&input.attrs);
        let mut krate = None;
        let mut engine: Option<LitStr> = None;
        let mut keys: Vec<(&'static str, LitStr)> = Vec::new();
        let mut indexes = Vec::new();
        let mut tokens = Vec::new();
        let mut json_paths = true;
        attr::for_each_key(cx, &input.attrs, "a datasource", CONTAINER_KEYS, &["index", "token"], |key, meta| {
            match key {
                "name" => name = Some(attr::lit_str(meta, key)?),
                "description" => description = Some(attr::lit_str(meta, key)?.value()),
                "crate" => krate = model::crate_path(cx, &attr::lit_str(meta, key)?),
                "engine" => engine = Some(attr::lit_str(meta, key)?),
                "index" => indexes.extend(read_index(cx, meta)?),
                "token" => tokens.extend(read_token(cx, meta)?),
                "json_paths" => json_paths = attr::flag(meta, key)?,
                other => {
                    let k = CONTAINER_KEYS.iter().copied().find(|k| *k == other).unwrap_or("settings");
                    let lit = attr::lit_str(meta, key)?;
                    if lit.value().trim().is_empty() {
                        cx.error_spanned_by(&lit, format!("`{key}` is empty"));
                    }
                    keys.push((k, lit));
                }
            }
            Ok(())
        });
        let resource = model::resource_name(cx, name.as_ref(), &input.ident);
        let engine_name = match &engine {
            Some(lit) => {
                let e = lit.value();
                if !ENGINES.contains(&e.as_str()) {
                    let msg = match suggest::did_you_mean(&e, ENGINES.iter().copied()) {
                        Some(close) => format!("unknown engine `{e}`; did you mean `{close}`?"),
                        None => format!("unknown engine `{e}`; Tinybird's are {}", ENGINES.join(", ")),
                    };
                    cx.error_spanned_by(lit, msg);
                }
                e
            }
            None => "MergeTree".to_owned(),
        };
        let fields = model::named_fields(cx, input, "Datasource", "column")?;
        let serde = attr::serde_container(cx, &input.attrs);
        let columns: Vec<Column> = fields.iter().map(|f| read_column(cx, f, serde.rename_all, json_paths)).collect();
        let krate: syn::Path = krate.unwrap_or_else(|| syn::parse_quote!(::tinybird));
        let decoder_fields: Vec<rowjson::Field<'_>> = columns
            .iter()
            .zip(fields)
            .map(|(c, f)| rowjson::Field { ident: &c.ident, ty: &c.ty, wire: &c.wire, attrs: &f.attrs })
            .collect();
        let decoder = rowjson::decoder_method(&quote!(#krate::__private), &input.ident, &input.attrs, &decoder_fields);
        Some(Model {
            ident: input.ident.clone(),
            vis: input.vis.clone(),
            krate,
            decoder,
            name: resource,
            description,
            columns,
            engine: engine_name,
            keys,
            indexes,
            tokens,
        })
    }
}

fn read_column(cx: &Ctxt, field: &syn::Field, rename_all: Option<crate::case::RenameRule>, json_paths: bool) -> Column {
    let (wire, serde) = model::wire_name(cx, field, rename_all);
    if let Some((key, span)) = &serde.not_a_column {
        cx.error_at(
            *span,
            format!("`#[serde({key})]` is not supported on a datasource row: every field is one column, sent and read"),
        );
    }
    if !model::is_valid_name(&wire) {
        cx.error_at(
            model::field_span(field),
            format!("`{wire}` is not a valid Tinybird column name: use letters, digits and `_`"),
        );
    }
    let mut explicit_type = None;
    let mut json_path = None;
    let mut default = None;
    let mut codec = None;
    attr::for_each_key(cx, &field.attrs, "a datasource column", FIELD_KEYS, &[], |key, meta| {
        match key {
            "type" => explicit_type = Some(model::explicit_type(cx, &attr::lit_str(meta, key)?)),
            "json" => {
                let lit = attr::lit_str(meta, key)?;
                if let Err(msg) = check_json_path(&lit.value()) {
                    cx.error_spanned_by(&lit, msg);
                }
                if !json_paths {
                    cx.error_spanned_by(&lit, "`json` is set but the datasource has `json_paths = false`");
                }
                json_path = Some(lit.value());
            }
            "default" => default = Some(non_empty(cx, attr::lit_str(meta, key)?)),
            "codec" => codec = Some(non_empty(cx, attr::lit_str(meta, key)?)),
            _ => {}
        }
        Ok(())
    });
    Column {
        ident: field.ident.clone().unwrap_or_else(|| format_ident!("_")),
        json_path: if json_paths { Some(json_path.unwrap_or_else(|| format!("$.{wire}"))) } else { None },
        wire,
        ty: field.ty.clone(),
        explicit_type,
        default,
        codec,
    }
}

fn non_empty(cx: &Ctxt, lit: LitStr) -> String {
    if lit.value().trim().is_empty() {
        cx.error_spanned_by(&lit, "this value is empty");
    }
    lit.value()
}

/// `$.a`, `$.a.b`, `$.arr[:]`, `$.['odd key']`.
fn check_json_path(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix("$.") else {
        return Err(format!("a JSONPath starts with `$.`: `$.field` or `$.parent.child`, not `{path}`"));
    };
    let ok = !rest.is_empty()
        && rest.split('.').all(|seg| {
            let seg = seg.strip_suffix("[:]").unwrap_or(seg);
            (!seg.is_empty() && seg.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-'))
                || (seg.starts_with("['") && seg.ends_with("']"))
        });
    if ok { Ok(()) } else { Err(format!("invalid JSONPath `{path}`: use `$.a`, `$.a.b` or `$.arr[:]`")) }
}

fn read_index(cx: &Ctxt, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Option<Index>> {
    let (mut name, mut expr, mut ty, mut granularity) = (None, None, None, None);
    attr::nested_keys(cx, meta, "an index", INDEX_KEYS, |key, inner| {
        match key {
            "name" => name = Some(attr::lit_str(inner, key)?),
            "expr" => expr = Some(attr::lit_str(inner, key)?.value()),
            "type" => ty = Some(attr::lit_str(inner, key)?.value()),
            "granularity" => granularity = Some(attr::lit_u32(inner, key)?.0),
            _ => {}
        }
        Ok(())
    })?;
    match (name, expr, ty, granularity) {
        (Some(name), Some(expr), Some(ty), Some(granularity)) => {
            if !model::is_valid_name(&name.value()) {
                cx.error_spanned_by(&name, format!("`{}` is not a valid index name", name.value()));
            }
            Ok(Some(Index { name: name.value(), expr, ty, granularity }))
        }
        _ => {
            cx.error_spanned_by(
                &meta.path,
                "an index needs `name`, `expr`, `type` and `granularity`: `index(name = \"idx\", expr = \"col\", type = \"bloom_filter\", granularity = 4)`",
            );
            Ok(None)
        }
    }
}

fn read_token(cx: &Ctxt, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Option<(String, bool, bool)>> {
    let (mut name, mut read, mut append) = (None::<LitStr>, false, false);
    attr::nested_keys(cx, meta, "a datasource token", TOKEN_KEYS, |key, inner| {
        match key {
            "name" => name = Some(attr::lit_str(inner, key)?),
            "read" => read = attr::flag(inner, key)?,
            "append" => append = attr::flag(inner, key)?,
            _ => {}
        }
        Ok(())
    })?;
    let Some(name) = name else {
        cx.error_spanned_by(
            &meta.path,
            "a token needs a name: `token(name = \"…\", read)` or `token(name = \"…\", append)`",
        );
        return Ok(None);
    };
    if !read && !append {
        cx.error_spanned_by(&meta.path, "a datasource token needs `read`, `append` or both");
        return Ok(None);
    }
    if !model::is_valid_name(&name.value()) {
        cx.error_spanned_by(&name, format!("`{}` is not a valid token name", name.value()));
    }
    Ok(Some((name.value(), read, append)))
}

impl Model {
    fn check(&self, cx: &Ctxt) {
        let names: Vec<&str> = self.columns.iter().map(|c| c.wire.as_str()).collect();
        for (i, c) in self.columns.iter().enumerate() {
            if names[..i].contains(&c.wire.as_str()) {
                cx.error_spanned_by(&c.ident, format!("column `{}` is declared twice", c.wire));
            }
        }
        let allowed: &[&str] = match self.engine.as_str() {
            "ReplacingMergeTree" => &["ver", "is_deleted"],
            "SummingMergeTree" => &["summing_columns"],
            "CollapsingMergeTree" => &["sign"],
            "VersionedCollapsingMergeTree" => &["sign", "version"],
            _ => &[],
        };
        for (key, lit) in &self.keys {
            if self.engine == "Null" {
                cx.error_spanned_by(lit, format!("`{key}` has no meaning for the Null engine, which stores nothing"));
                continue;
            }
            let specific = COLUMN_KEYS.contains(key) || *key == "summing_columns";
            if specific && !allowed.contains(key) {
                cx.error_spanned_by(lit, format!("`{key}` is not an option of engine `{}`", self.engine));
                continue;
            }
            let value = lit.value();
            let listed: Vec<String> = if COLUMN_LIST_KEYS.contains(key) {
                plain_column_list(&value).unwrap_or_default()
            } else if COLUMN_KEYS.contains(key) {
                vec![value.trim().trim_matches('`').to_owned()]
            } else {
                Vec::new()
            };
            for col in listed {
                if !names.contains(&col.as_str()) {
                    cx.error_spanned_by(
                        lit,
                        format!(
                            "`{col}` is not a column of datasource `{}` (in `{key}`){}",
                            self.name,
                            suggest::hint(&col, names.iter().copied())
                        ),
                    );
                }
            }
        }
        for needed in match self.engine.as_str() {
            "CollapsingMergeTree" => &["sign"][..],
            "VersionedCollapsingMergeTree" => &["sign", "version"][..],
            _ => &[][..],
        } {
            if !self.keys.iter().any(|(k, _)| k == needed) {
                cx.error_at(self.ident.span(), format!("engine `{}` needs `{needed} = \"column\"`", self.engine));
            }
        }
    }

    fn key(&self, k: &str) -> TokenStream {
        opt_str(self.keys.iter().find(|(key, _)| *key == k).map(|(_, l)| l.value()).as_deref())
    }

    fn expand(&self) -> TokenStream {
        let krate = &self.krate;
        let private = quote!(#krate::__private);
        let (ident, vis, name, decoder) = (&self.ident, &self.vis, &self.name, &self.decoder);
        let columns_ident = format_ident!("{}Columns", ident);
        let column_specs = self.columns.iter().map(|c| {
            let wire = &c.wire;
            let ty = match &c.explicit_type {
                Some(t) => quote!(#private::TypeSpec::Named(#t)),
                None => {
                    let ty = &c.ty;
                    quote_spanned!(ty.span()=> #private::TypeSpec::Of(<#ty as #private::TinybirdType>::ch_type))
                }
            };
            let (json, default, codec) =
                (opt_str(c.json_path.as_deref()), opt_str(c.default.as_deref()), opt_str(c.codec.as_deref()));
            quote! {
                #private::ColumnSpec { name: #wire, ty: #ty, json_path: #json, default: #default, codec: #codec }
            }
        });
        let handle_fields = self.columns.iter().map(|c| {
            let (id, ty) = (&c.ident, &c.ty);
            let doc = format!("Column `{}`.", c.wire);
            quote!(#[doc = #doc] pub #id: #private::Column<#ty>)
        });
        let handle_inits = self.columns.iter().map(|c| {
            let (id, wire) = (&c.ident, &c.wire);
            quote!(#id: #private::Column::new(#wire))
        });
        let indexes = self.indexes.iter().map(|i| {
            let (n, e, t, g) = (&i.name, &i.expr, &i.ty, i.granularity);
            quote!(#private::IndexSpec { name: #n, expr: #e, ty: #t, granularity: #g })
        });
        let tokens = self.tokens.iter().flat_map(|(n, read, append)| {
            let mut out = Vec::new();
            if *read {
                out.push(quote!((#n, #private::TokenPermission::Read)));
            }
            if *append {
                out.push(quote!((#n, #private::TokenPermission::Append)));
            }
            out
        });
        let description = opt_str(self.description.as_deref());
        let engine = &self.engine;
        let [sorting, partition, primary, sampling, ttl, ver, sign, version, is_deleted, summing, settings] = [
            "sorting_key",
            "partition_key",
            "primary_key",
            "sampling_key",
            "ttl",
            "ver",
            "sign",
            "version",
            "is_deleted",
            "summing_columns",
            "settings",
        ]
        .map(|k| self.key(k));
        let columns_doc = format!("Typed column handles of datasource `{name}`, for `DATASOURCES:READ` filters.");
        let span = Span::call_site();
        quote_spanned! {span=>
            #[doc = #columns_doc]
            #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
            #vis struct #columns_ident { #(#handle_fields,)* }

            #[automatically_derived]
            impl ::core::default::Default for #columns_ident {
                fn default() -> Self {
                    #columns_ident { #(#handle_inits,)* }
                }
            }

            const _: () = {
                const COLUMNS: &[#private::ColumnSpec] = &[#(#column_specs),*];

                #[automatically_derived]
                impl #private::Datasource for #ident {
                    const NAME: &'static str = #name;
                    type Columns = #columns_ident;

                    fn definition() -> #private::DatasourceDef {
                        const SPEC: #private::DatasourceSpec = #private::DatasourceSpec {
                            name: #name,
                            description: #description,
                            columns: COLUMNS,
                            engine: #private::EngineSpec {
                                kind: #engine,
                                sorting_key: #sorting,
                                partition_key: #partition,
                                primary_key: #primary,
                                sampling_key: #sampling,
                                ttl: #ttl,
                                ver: #ver,
                                sign: #sign,
                                version: #version,
                                is_deleted: #is_deleted,
                                columns: #summing,
                                settings: #settings,
                            },
                            indexes: &[#(#indexes),*],
                            tokens: &[#(#tokens),*],
                        };
                        SPEC.to_def()
                    }
                }

                #[automatically_derived]
                impl #private::Row for #ident {
                    fn columns() -> ::std::vec::Vec<#private::RowColumn> {
                        #private::datasource_row_columns(COLUMNS)
                    }
                    #decoder
                }
            };
        }
    }
}

/// The names in `a, b` / `(a, b)` / `` `a` ``, or `None` when the key is an expression (not checked).
fn plain_column_list(key: &str) -> Option<Vec<String>> {
    let trimmed = key.trim();
    let inner = match trimmed.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        Some(inner) => inner,
        None if trimmed == "tuple()" => return Some(Vec::new()),
        None => trimmed,
    };
    inner
        .split(',')
        .map(|part| {
            let name = part.trim().trim_matches('`');
            model::is_valid_name(name).then(|| name.to_owned())
        })
        .collect()
}
