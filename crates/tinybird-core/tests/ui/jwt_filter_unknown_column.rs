include!("support/jwt_decls.rs");

use std::time::Duration;
use tinybird_core::jwt::{Jwt, Scope, SigningKey};

fn main() {
    let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key").unwrap();
    // `events` has no `tenant` column.
    let _token = Jwt::builder("org_acme")
        .scope(Scope::datasource_read::<Events>().filter(|c| c.tenant.eq("acme")))
        .expires_in(Duration::from_secs(60))
        .sign(&key);
}
