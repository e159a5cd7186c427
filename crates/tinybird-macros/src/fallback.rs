//! Stub impls emitted next to the errors when the input is wrong, so that code using the struct (`E::NAME`,
//! `E::Fixed`, the columns struct) still type-checks and the user sees the real error rather than a cascade. The
//! bodies never run: the crate does not compile while the error is there.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::DeriveInput;

use crate::{datasource, endpoint};

fn krate(path: Option<&syn::Path>) -> TokenStream {
    match path {
        Some(p) => quote!(#p),
        None => quote!(::tinybird),
    }
}

pub(crate) fn endpoint(input: &DeriveInput, model: Option<&endpoint::Model>) -> TokenStream {
    if !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let krate = krate(model.map(|m| &m.krate));
    let private = quote!(#krate::__private);
    let ident = &input.ident;
    let vis = &input.vis;
    let fixed = format_ident!("{}Fixed", ident);
    let name = model.map_or_else(|| ident.to_string(), |m| m.name.clone());
    let fixed_fields = model.into_iter().flat_map(|m| &m.params).map(|p| {
        let (id, inner) = (&p.ident, &p.inner);
        quote!(pub #id: ::core::option::Option<#inner>)
    });
    let row = match model.and_then(|m| m.output.as_ref()) {
        Some(endpoint::Output::Inline { ident: row, fields }) => {
            let fields = fields.iter().map(|f| {
                let (id, ty) = (&f.ident, &f.ty);
                quote!(pub #id: #ty)
            });
            quote!(#vis struct #row { #(#fields,)* })
        }
        _ => TokenStream::new(),
    };
    quote! {
        #[derive(::core::default::Default)]
        #vis struct #fixed { #(#fixed_fields,)* }
        #row
        impl #private::FixedParams for #fixed {
            fn to_json(&self) -> #private::serde_json::Map<::std::string::String, #private::serde_json::Value> {
                ::core::unreachable!()
            }
        }
        impl #private::Endpoint for #ident {
            const NAME: &'static str = #name;
            type Output = #private::serde_json::Value;
            type Fixed = #fixed;
            fn definition() -> #private::EndpointDef {
                ::core::unreachable!()
            }
            fn to_params(&self) -> #private::QueryParams {
                ::core::unreachable!()
            }
        }
    }
}

pub(crate) fn datasource(input: &DeriveInput, model: Option<&datasource::Model>) -> TokenStream {
    if !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let krate = krate(model.map(|m| &m.krate));
    let private = quote!(#krate::__private);
    let ident = &input.ident;
    let vis = &input.vis;
    let columns = format_ident!("{}Columns", ident);
    let name = model.map_or_else(|| ident.to_string(), |m| m.name.clone());
    let fields: Vec<_> = model.into_iter().flat_map(|m| &m.columns).collect();
    let decls = fields.iter().map(|c| {
        let (id, ty) = (&c.ident, &c.ty);
        quote!(pub #id: #private::Column<#ty>)
    });
    let inits = fields.iter().map(|c| {
        let (id, wire) = (&c.ident, &c.wire);
        quote!(#id: #private::Column::new(#wire))
    });
    // The Datasource impl needs serde impls on the struct; only claim it when the input is a struct.
    let is_struct = matches!(input.data, syn::Data::Struct(_));
    let impls = is_struct.then(|| {
        quote! {
            impl #private::Datasource for #ident {
                const NAME: &'static str = #name;
                type Columns = #columns;
                fn definition() -> #private::DatasourceDef {
                    ::core::unreachable!()
                }
            }
        }
    });
    quote! {
        #vis struct #columns { #(#decls,)* }
        impl ::core::default::Default for #columns {
            fn default() -> Self {
                #columns { #(#inits,)* }
            }
        }
        #impls
    }
}
