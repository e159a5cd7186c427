use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(crate = "tinybird", sql = "%\nSELECT {{UInt64(user_id)}}", output(n: u64))]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
