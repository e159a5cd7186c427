//! Expansion snapshots: the code the derives write for typical inputs, reviewed like code.

use quote::quote;

fn pretty(tokens: proc_macro2::TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => tokens.to_string(),
    }
}

#[test]
fn endpoint_expansion() {
    let input = syn::parse2(quote! {
        /// Daily events of one user.
        #[tinybird(
            sql = "%\nSELECT toDate(timestamp) AS day, count() AS events FROM events WHERE user_id = {{UInt64(user_id)}} {% if defined(ids) %}AND id IN {{Array(ids, 'Int32')}}{% end %} LIMIT {{UInt32(limit, 100)}}",
            output(day: chrono::NaiveDate, events: u64),
            cache_ttl = 60,
            token(name = "dashboard")
        )]
        pub struct UserAnalytics {
            pub user_id: u64,
            pub ids: Option<Vec<i32>>,
            #[tinybird(default = 100, description = "Max rows")]
            pub limit: Option<u32>,
        }
    })
    .unwrap();
    insta::assert_snapshot!(pretty(crate::endpoint::derive(&input)));
}

#[test]
fn datasource_expansion() {
    let input = syn::parse2(quote! {
        /// Product events.
        #[tinybird(
            crate = "::my_sdk",
            engine = "ReplacingMergeTree",
            sorting_key = "userId, timestamp",
            ver = "timestamp",
            index(name = "idx_kind", expr = "kind", type = "bloom_filter", granularity = 4),
            token(name = "ingest", append)
        )]
        #[serde(rename_all = "camelCase")]
        pub struct Event {
            pub user_id: u64,
            #[tinybird(type = "DateTime64(3)", json = "$.meta.ts")]
            pub timestamp: String,
            #[tinybird(type = "LowCardinality(String)", default = "'view'", codec = "ZSTD(1)")]
            pub kind: String,
        }
    })
    .unwrap();
    insta::assert_snapshot!(pretty(crate::datasource::derive(&input)));
}

#[test]
fn errors_accumulate_and_come_with_fallback_stubs() {
    let input = syn::parse2(quote! {
        #[tinybird(sql = "%\nSELECT {{UInt64(user_di)}}", output(n: u64), cach_ttl = 1)]
        pub struct UserAnalytics {
            pub user_id: u64,
            #[tinybird(defualt = 3)]
            pub limit: Option<u32>,
        }
    })
    .unwrap();
    let out = crate::endpoint::derive(&input).to_string();
    let errors: Vec<&str> = out.match_indices("compile_error").map(|(i, _)| &out[i..(i + 90).min(out.len())]).collect();
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert!(out.contains("impl :: tinybird :: __private :: Endpoint for UserAnalytics"), "fallback impl missing");
    assert!(out.contains("unreachable"), "fallback bodies");
}

proptest::proptest! {
    /// Whatever the SQL and attribute values, the derives answer with code or errors, never a panic.
    #[test]
    fn arbitrary_sql_and_values_never_panic(
        sql in "(%\\n)?([a-zA-Z_ ,(){}%#'\"=*<>!.\\n0-9]|\\{\\{|\\}\\}|\\{%|%\\}){0,80}",
        name in "[a-zA-Z0-9_ ]{0,12}",
        ty in "[A-Za-z0-9(), ']{0,24}",
        key in "[a-z_]{1,10}",
    ) {
        let key = syn::Ident::new(&key, proc_macro2::Span::call_site());
        let input: syn::DeriveInput = syn::parse2(quote! {
            #[tinybird(name = #name, sql = #sql, output(n: u64))]
            pub struct E {
                #[tinybird(type = #ty)]
                pub user_id: u64,
                #[tinybird(#key = 1)]
                pub limit: Option<u32>,
            }
        }).unwrap();
        let _ = crate::endpoint::derive(&input);
        let input: syn::DeriveInput = syn::parse2(quote! {
            #[tinybird(name = #name, sorting_key = #sql, engine = #ty)]
            pub struct D {
                #[tinybird(type = #ty, json = #name)]
                pub user_id: u64,
                #[tinybird(#key = "x")]
                pub page: String,
            }
        }).unwrap();
        let _ = crate::datasource::derive(&input);
    }
}
