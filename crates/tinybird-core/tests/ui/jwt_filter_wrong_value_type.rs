include!("support/jwt_decls.rs");

use std::time::Duration;
use tinybird_core::jwt::{Jwt, Scope, SigningKey};

fn main() {
    let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key").unwrap();
    // `user_id` is a `u64` column: comparing it with a string does not compile.
    let _token = Jwt::builder("org_acme")
        .scope(Scope::datasource_read::<Events>().filter(|c| c.user_id.eq("42")))
        .expires_in(Duration::from_secs(60))
        .sign(&key);
}
