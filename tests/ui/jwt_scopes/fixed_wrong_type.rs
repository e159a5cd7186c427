// `user_id` is a UInt64 param: pinning it with a string does not compile.
use tinybird::jwt::Scope;
use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS c FROM events WHERE user_id = {{UInt64(user_id)}}", output(c: u64))]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {
    let _ = Scope::pipe::<UserAnalytics>().fixed(|p| p.user_id = Some("42".to_string()));
}
