use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS n FROM events WHERE user_id = {{UInt46(user_id)}}", output(n: u64))]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
