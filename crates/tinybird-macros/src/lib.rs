//! Derive macros for the `tinybird` crate. Use them through `tinybird::{Endpoint, Datasource}`.

use proc_macro::TokenStream;

#[proc_macro_derive(Endpoint, attributes(tinybird))]
pub fn derive_endpoint(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}

#[proc_macro_derive(Datasource, attributes(tinybird))]
pub fn derive_datasource(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
