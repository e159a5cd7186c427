use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS n FROM events WHERE user_id = {{UInt64(user_id)}}", output(n: u64))]
pub struct UserAnalytics {
    #[tinybird(unused)]
    pub user_id: u64,
}

fn main() {}
