//! Pieces of the resource model shared by both derives: the struct's fields with their wire names, the crate path,
//! names Tinybird accepts.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

use crate::attr;
use crate::case::RenameRule;
use crate::ctxt::Ctxt;

/// The named fields of a plain struct, or an error saying why the input cannot be a `what`.
pub(crate) fn named_fields<'a>(
    cx: &Ctxt,
    input: &'a DeriveInput,
    derive: &str,
    what: &str,
) -> Option<&'a syn::punctuated::Punctuated<syn::Field, syn::Token![,]>> {
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &input.generics,
            format!(
                "`#[derive({derive})]` does not support generics: the struct declares one concrete Tinybird resource"
            ),
        );
    }
    match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => Some(&named.named),
            Fields::Unnamed(_) | Fields::Unit => {
                cx.error_at(
                    input.ident.span(),
                    format!("`#[derive({derive})]` needs a struct with named fields: each field is a {what}"),
                );
                None
            }
        },
        Data::Enum(e) => {
            cx.error_at(e.enum_token.span, format!("`#[derive({derive})]` only supports structs, not enums"));
            None
        }
        Data::Union(u) => {
            cx.error_at(u.union_token.span, format!("`#[derive({derive})]` only supports structs, not unions"));
            None
        }
    }
}

/// `crate = "::path"`: must be an absolute path, since generated code lives in the user's modules.
pub(crate) fn crate_path(cx: &Ctxt, lit: &LitStr) -> Option<syn::Path> {
    match lit.parse::<syn::Path>() {
        Ok(path) if path.leading_colon.is_some() => Some(path),
        Ok(_) => {
            cx.error_spanned_by(lit, "`crate` must be an absolute path, such as `crate = \"::tinybird\"`");
            None
        }
        Err(_) => {
            cx.error_spanned_by(lit, "`crate` must be a path, such as `crate = \"::tinybird\"`");
            None
        }
    }
}

pub(crate) use tinybird_types::is_valid_name;

/// A resource name from `name = "…"`, checked, or the struct's name in snake_case.
pub(crate) fn resource_name(cx: &Ctxt, given: Option<&LitStr>, ident: &syn::Ident) -> String {
    match given {
        Some(lit) => {
            let name = lit.value();
            if !is_valid_name(&name) {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "`{name}` is not a valid Tinybird name: use letters, digits and `_`, not starting with a digit"
                    ),
                );
            }
            name
        }
        None => crate::case::snake_case(&ident.unraw_string()),
    }
}

/// The field's wire name: `#[serde(rename)]`, else the container's `rename_all`, else the field name.
pub(crate) fn wire_name(cx: &Ctxt, field: &syn::Field, rename_all: Option<RenameRule>) -> (String, attr::SerdeField) {
    let ident = field.ident.as_ref().map(UnrawString::unraw_string).unwrap_or_default();
    let serde = attr::serde_field(cx, &field.attrs, &ident);
    let name = match (&serde.rename, rename_all) {
        (Some(r), _) => r.clone(),
        (None, Some(rule)) => rule.apply_to_field(&ident),
        (None, None) => ident,
    };
    (name, serde)
}

/// `T` when `ty` is written `Option<T>` (any path ending in `Option`).
pub(crate) fn option_inner(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let last = tp.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    if args.args.len() != 1 {
        return None;
    }
    match args.args.first()? {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

/// A `#[tinybird(type = "…")]` value, syntax-checked.
pub(crate) fn explicit_type(cx: &Ctxt, lit: &LitStr) -> String {
    let ty = lit.value();
    if let Err(msg) = crate::chtype::check(&ty) {
        cx.error_spanned_by(lit, format!("invalid Tinybird type: {msg}"));
    }
    ty
}

/// Span of a field's name (its type for unnamed fields).
pub(crate) fn field_span(field: &syn::Field) -> Span {
    field.ident.as_ref().map_or_else(|| field.ty.span(), proc_macro2::Ident::span)
}

trait UnrawString {
    fn unraw_string(&self) -> String;
}
impl UnrawString for syn::Ident {
    fn unraw_string(&self) -> String {
        let s = self.to_string();
        s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
    }
}
