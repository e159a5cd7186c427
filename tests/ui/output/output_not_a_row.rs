use tinybird::Endpoint;

pub struct NotARow {
    pub n: u64,
}

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS n FROM events WHERE user_id = {{UInt64(user_id)}}", output = NotARow)]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
