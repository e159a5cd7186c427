use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(node(name = "endpoint", sql = "%\nSELECT {{UInt64(user_id)}}", descripton = "x"), output(n: u64))]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
