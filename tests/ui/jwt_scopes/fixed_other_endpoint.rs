// A scope on `user_analytics` cannot be given `org_analytics`'s fixed params.
use tinybird::jwt::Scope;
use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS c FROM events WHERE user_id = {{UInt64(user_id)}}", output(c: u64))]
pub struct UserAnalytics {
    pub user_id: u64,
}

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS c FROM events WHERE org_id = {{String(org_id)}}", output(c: u64))]
pub struct OrgAnalytics {
    pub org_id: String,
}

fn main() {
    let _ = Scope::pipe::<UserAnalytics>().fixed(|p: &mut OrgAnalyticsFixed| p.org_id = Some("acme".into()));
}
