use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\n{% import os %}\nSELECT {{UInt64(user_id)}}", output(n: u64))]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
