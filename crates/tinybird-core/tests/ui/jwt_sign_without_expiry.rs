include!("support/jwt_decls.rs");

use std::time::Duration;
use tinybird_core::jwt::{Jwt, Scope, SigningKey};

fn main() {
    let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key").unwrap();
    let _ = Duration::from_secs(60);
    // No `.expires_in(…)`/`.expires_at(…)`: Tinybird refuses JWTs without `exp`.
    let _token = Jwt::builder("user_42").scope(Scope::pipe::<UserAnalytics>()).sign(&key);
}
