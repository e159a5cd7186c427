use tinybird::Endpoint;

#[derive(Debug, Clone, PartialEq)]
pub struct NoSerde;

#[derive(Endpoint)]
#[tinybird(
    sql = "%\nSELECT count() AS n FROM events WHERE user_id = {{UInt64(user_id)}}",
    output(#[tinybird(type = "UInt64")] n: NoSerde)
)]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
