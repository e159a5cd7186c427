use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT {{UInt64(user_id)}}", output(n: u64), cache_tll = 60)]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
