use tinybird::Endpoint;

// The wire name is `userId` (serde's rename_all), so the template must use it.
#[derive(Endpoint)]
#[serde(rename_all = "camelCase")]
#[tinybird(sql = "%\nSELECT count() AS n FROM events WHERE user_id = {{UInt64(user_id)}}", output(n: u64))]
pub struct UserAnalytics {
    pub user_id: u64,
}

fn main() {}
