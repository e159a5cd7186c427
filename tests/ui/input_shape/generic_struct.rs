use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT {{UInt64(user_id)}}", output(n: u64))]
pub struct UserAnalytics<T> {
    pub user_id: T,
}

fn main() {}
