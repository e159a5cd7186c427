// A JWT signed without `.expires_in(…)`/`.expires_at(…)`: Tinybird refuses JWTs without `exp`.
use tinybird::jwt::{Jwt, Scope, SigningKey};
use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "SELECT count() AS c FROM events", output(c: u64))]
pub struct UserAnalytics {}

fn main() {
    let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key").unwrap();
    let _token = Jwt::builder("user_42").scope(Scope::pipe::<UserAnalytics>()).sign(&key);
}
