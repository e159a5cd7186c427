//! `#[derive(Row)]`: a result row type for queries that are not a declared endpoint's output (`client.sql::<R>(…)`),
//! stating its columns and their Tinybird types so the client can check the response's `meta`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::DeriveInput;
use syn::spanned::Spanned;

use crate::attr;
use crate::ctxt::Ctxt;
use crate::model;
use crate::rowjson;

const CONTAINER_KEYS: &[&str] = &["crate", "writes"];
const FIELD_KEYS: &[&str] = &["type"];

pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let mut krate: Option<syn::Path> = None;
    let mut writes: Option<syn::Type> = None;
    attr::for_each_key(&cx, &input.attrs, "a row struct", CONTAINER_KEYS, &[], |key, meta| {
        let lit = attr::lit_str(meta, key)?;
        if key == "crate" {
            krate = model::crate_path(&cx, &lit);
        } else {
            match lit.parse::<syn::Type>() {
                Ok(ty) => writes = Some(ty),
                Err(_) => {
                    cx.error_spanned_by(&lit, "`writes` names a `#[derive(Datasource)]` type, as `\"DailyStats\"`");
                }
            }
        }
        Ok(())
    });
    let serde = attr::serde_container(&cx, &input.attrs);
    let mut columns = Vec::new();
    let mut all_fields = Vec::new();
    if let Some(fields) = model::named_fields(&cx, input, "Row", "column") {
        for field in fields {
            let (wire, serde_field) = model::wire_name(&cx, field, serde.rename_all);
            if let Some(ident) = &field.ident {
                all_fields.push((ident, &field.ty, wire.clone(), &field.attrs[..]));
            }
            if serde_field.not_a_column.is_some() {
                // `skip`/`flatten`: not one column of the result; serde decides how it is filled.
                continue;
            }
            let mut explicit = None;
            attr::for_each_key(&cx, &field.attrs, "a row column", FIELD_KEYS, &[], |key, meta| {
                if key == "type" {
                    explicit = Some(model::explicit_type(&cx, &attr::lit_str(meta, key)?));
                }
                Ok(())
            });
            columns.push((wire, field.ty.clone(), explicit, field.ident.clone()));
        }
    }
    if let Err(err) = cx.check() {
        return err.to_compile_error();
    }
    let krate = krate.unwrap_or_else(|| syn::parse_quote!(::tinybird));
    let private = quote!(#krate::__private);
    let ident = &input.ident;
    let specs = columns.iter().map(|(wire, ty, explicit, _)| {
        let spec = match explicit {
            Some(t) => quote!(#private::TypeSpec::Named(#t)),
            None => quote_spanned!(ty.span()=> #private::TypeSpec::Of(<#ty as #private::TinybirdType>::ch_type)),
        };
        quote!((#wire, #spec))
    });
    let fields: Vec<rowjson::Field<'_>> =
        all_fields.iter().map(|(ident, ty, wire, attrs)| rowjson::Field { ident, ty, wire, attrs }).collect();
    let decoder = rowjson::decoder_method(&private, ident, &input.attrs, &fields);
    // `writes = "T"`: each column is a column of `T` of the same Rust type, checked by the compiler on `T`'s typed
    // column handles (a missing column is "no field", another type is "mismatched types", at the field).
    let writes = writes.map(|target| {
        let checks = columns.iter().filter_map(|(_, ty, _, field)| {
            let field = field.as_ref()?;
            let value = quote_spanned!(ty.span()=> __column::<#ty>());
            Some(quote_spanned!(field.span()=> __target.#field = #value;))
        });
        quote! {
            #[automatically_derived]
            impl #private::WritesInto<#target> for #ident {}
            const _: () = {
                #[allow(unused_assignments, unused_mut, unused_variables)]
                fn __writes(mut __target: <#target as #private::Datasource>::Columns) {
                    fn __column<T: ?Sized>() -> #private::Column<T> {
                        #private::Column::new("")
                    }
                    #(#checks)*
                }
            };
        }
    });
    quote! {
        #writes
        #[automatically_derived]
        impl #private::Row for #ident {
            fn columns() -> ::std::vec::Vec<#private::RowColumn> {
                #private::row_columns(&[#(#specs),*])
            }
            #decoder
        }
    }
}
