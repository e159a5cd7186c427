use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS n FROM events WHERE timestamp >= {{DateTime(start)}}", output(n: u64))]
pub struct UserAnalytics {
    pub start: u32,
}

fn main() {}
