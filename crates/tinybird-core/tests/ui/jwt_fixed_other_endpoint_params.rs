include!("support/jwt_decls.rs");

use std::time::Duration;
use tinybird_core::jwt::{Jwt, Scope, SigningKey};

fn main() {
    let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key").unwrap();
    // A `user_analytics` scope cannot be pinned with `top_pages`'s params.
    let _token = Jwt::builder("org_acme")
        .scope(Scope::pipe::<UserAnalytics>().fixed(|p: &mut TopPagesFixed| p.org_id = Some("acme".to_owned())))
        .expires_in(Duration::from_secs(60))
        .sign(&key);
}
