// Pinning `org_id` on a pipe whose only param is `user_id`: the generated fixed-params struct has no such field.
use tinybird::jwt::Scope;
use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS c FROM events WHERE user_id = {{UInt64(user_id)}}", output(c: u64))]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {
    let _ = Scope::pipe::<UserAnalytics>().fixed(|p| p.org_id = Some(7));
}
