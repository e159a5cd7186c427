use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(name = user_analytics, cache_ttl = "60", sql = "%\nSELECT {{UInt64(user_id)}}", output(n: u64))]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
