include!("support/jwt_decls.rs");

use std::time::Duration;
use tinybird_core::jwt::{Jwt, Scope, SigningKey};

fn main() {
    let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key").unwrap();
    // `user_analytics` has no `org_id` parameter.
    let _token = Jwt::builder("user_42")
        .scope(Scope::pipe::<UserAnalytics>().fixed(|p| p.org_id = Some("acme".to_owned())))
        .expires_in(Duration::from_secs(60))
        .sign(&key);
}
