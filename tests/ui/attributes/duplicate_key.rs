use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(name = "a", sql = "%\nSELECT {{UInt64(user_id)}}", output(n: u64))]
#[tinybird(name = "b")]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
