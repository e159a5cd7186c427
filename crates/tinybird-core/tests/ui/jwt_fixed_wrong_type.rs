include!("support/jwt_decls.rs");

use std::time::Duration;
use tinybird_core::jwt::{Jwt, Scope, SigningKey};

fn main() {
    let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key").unwrap();
    // `user_id` is a `u64`, not a string.
    let _token = Jwt::builder("user_42")
        .scope(Scope::pipe::<UserAnalytics>().fixed(|p| p.user_id = Some("42")))
        .expires_in(Duration::from_secs(60))
        .sign(&key);
}
