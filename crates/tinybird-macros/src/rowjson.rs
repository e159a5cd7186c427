//! The direct row reader (`tinybird_core::rowjson`) generated next to `Row::columns`, for structs whose serde
//! attributes it reads exactly as serde does. Any attribute it does not know leaves the reader out, and the rows are
//! decoded by serde alone; a type without a direct reader makes the generated reader give up at run time, with the
//! same result.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote};
use syn::Attribute;

/// One field: its name, type, wire name and attributes.
pub(crate) struct Field<'a> {
    pub ident: &'a syn::Ident,
    pub ty: &'a syn::Type,
    pub wire: &'a str,
    pub attrs: &'a [Attribute],
}

/// Serde keys on a struct that do not change how an object's fields are read.
const CONTAINER_KEYS: &[&str] = &["rename_all", "rename", "crate", "default", "bound", "expecting"];
/// Serde keys on a field that do not change how its value is read once its key is there.
const FIELD_KEYS: &[&str] = &["rename", "alias", "default", "skip_serializing_if", "serialize_with", "bound"];

/// `fn __row_decoder()` for `impl Row for #ident`, or nothing when serde's attributes say more than the reader
/// understands.
pub(crate) fn decoder_method(
    private: &TokenStream,
    ident: &syn::Ident,
    container: &[Attribute],
    fields: &[Field<'_>],
) -> TokenStream {
    let Some(deny_unknown_fields) = read_container(container) else { return TokenStream::new() };
    let mut reads = Vec::new();
    for f in fields {
        // The reader is a nested function, where `Self` means nothing.
        if mentions_self(f.ty.to_token_stream()) {
            return TokenStream::new();
        }
        let Some(wire) = read_field(f.attrs) else { return TokenStream::new() };
        reads.push(if wire { quote!(wire) } else { quote!(plain) });
    }
    let slots: Vec<_> = (0..fields.len()).map(|i| format_ident!("__f{}", i)).collect();
    let idents = fields.iter().map(|f| f.ident);
    let tys: Vec<_> = fields.iter().map(|f| f.ty).collect();
    let names = fields.iter().map(|f| f.wire);
    let index = 0..fields.len();
    let rowjson = quote!(#private::rowjson);
    quote! {
        fn __row_decoder() -> ::core::option::Option<#rowjson::RowDecoder<Self>> {
            fn read(c: &mut #rowjson::Cursor<'_>, plan: &#rowjson::Plan) -> ::core::option::Option<#ident> {
                #[allow(unused_imports)]
                use #rowjson::{NoPlain as _, NoWire as _, ViaPlain as _, ViaWire as _};
                #(let mut #slots: ::core::option::Option<#tys> = ::core::option::Option::None;)*
                c.object(plan, |c, field| {
                    match field {
                        #(#index => #slots = ::core::option::Option::Some((&&#rowjson::Probe::<#tys>::NEW).#reads(c)?),)*
                        _ => return ::core::option::Option::None,
                    }
                    ::core::option::Option::Some(())
                })?;
                ::core::option::Option::Some(#ident { #(#idents: #slots?,)* })
            }
            ::core::option::Option::Some(#rowjson::RowDecoder::new(&[#(#names),*], #deny_unknown_fields, read))
        }
    }
}

fn mentions_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "Self",
        proc_macro2::TokenTree::Group(g) => mentions_self(g.stream()),
        _ => false,
    })
}

/// `Some(deny_unknown_fields)` when every serde key on the struct is understood.
fn read_container(attrs: &[Attribute]) -> Option<bool> {
    let serde = crate::attr::read_serde_container(attrs);
    let understood = serde.keys.iter().all(|k| k == "deny_unknown_fields" || CONTAINER_KEYS.contains(&k.as_str()));
    (understood && !serde.unreadable).then_some(serde.deny_unknown_fields)
}

/// `Some(wire)` when every serde key on the field is understood; `wire` when it is read through
/// `tinybird::types::wire`.
fn read_field(attrs: &[Attribute]) -> Option<bool> {
    let serde = crate::attr::read_serde_field(attrs, "");
    let wire = serde.with.as_deref().is_some_and(is_wire_module);
    let understood = serde.keys.iter().all(|k| FIELD_KEYS.contains(&k.as_str()) || (k == "with" && wire));
    (understood && !serde.unreadable).then_some(wire)
}

/// `tinybird::types::wire`, `tinybird_core::types::wire`, `::tinybird::__private::wire` and the like.
fn is_wire_module(path: &str) -> bool {
    let segments: Vec<&str> = path.trim().trim_start_matches("::").split("::").map(str::trim).collect();
    matches!(segments.as_slice(), [_, .., "types" | "__private", "wire"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_out_structs_whose_fields_name_self() {
        let ident: syn::Ident = syn::parse_quote!(Node);
        let ty: syn::Type = syn::parse_quote!(Vec<Box<Self>>);
        let name: syn::Ident = syn::parse_quote!(children);
        let fields = [Field { ident: &name, ty: &ty, wire: "children", attrs: &[] }];
        assert!(decoder_method(&quote!(::tinybird::__private), &ident, &[], &fields).is_empty());
        let ty: syn::Type = syn::parse_quote!(Vec<u64>);
        let fields = [Field { ident: &name, ty: &ty, wire: "children", attrs: &[] }];
        assert!(!decoder_method(&quote!(::tinybird::__private), &ident, &[], &fields).is_empty());
    }

    #[test]
    fn knows_the_wire_module_by_its_paths() {
        assert!(is_wire_module("tinybird::types::wire"));
        assert!(is_wire_module("::tinybird::__private::wire"));
        assert!(is_wire_module("tinybird_core::types::wire"));
        assert!(!is_wire_module("wire"));
        assert!(!is_wire_module("my::wire"));
        assert!(!is_wire_module("chrono::serde::ts_seconds"));
    }

    #[test]
    fn reads_only_the_serde_keys_it_understands() {
        let attrs = |tokens: TokenStream| -> Vec<Attribute> {
            let item: syn::ItemStruct = syn::parse2(quote!(#tokens struct S;)).unwrap();
            item.attrs
        };
        assert_eq!(read_container(&attrs(quote!(#[serde(rename_all = "camelCase")]))), Some(false));
        assert_eq!(read_container(&attrs(quote!(#[serde(deny_unknown_fields)]))), Some(true));
        assert_eq!(read_container(&attrs(quote!(#[serde(tag = "t")]))), None);
        assert_eq!(read_container(&attrs(quote!(#[derive(Debug)]))), Some(false));
        assert_eq!(read_field(&attrs(quote!(#[serde(with = "tinybird::types::wire")]))), Some(true));
        assert_eq!(read_field(&attrs(quote!(#[serde(rename = "x", default)]))), Some(false));
        assert_eq!(read_field(&attrs(quote!(#[serde(rename(serialize = "a", deserialize = "a"))]))), Some(false));
        assert_eq!(read_field(&attrs(quote!(#[serde(with = "chrono::serde::ts_seconds")]))), None);
        assert_eq!(read_field(&attrs(quote!(#[serde(deserialize_with = "f")]))), None);
        assert_eq!(read_field(&attrs(quote!(#[serde(flatten)]))), None);
        assert_eq!(read_field(&attrs(quote!(#[serde(skip)]))), None);
    }
}
