use tinybird::Endpoint;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Opaque(u64);

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS n FROM events WHERE user_id = {{UInt64(user_id)}}", output(n: Opaque))]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
