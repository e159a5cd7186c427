use tinybird::Endpoint;

// Every mistake here is reported in one build.
#[derive(Endpoint)]
#[tinybird(
    name = "user analytics",
    sql = "%\nSELECT count() FROM events WHERE user_id = {{UInt64(user_di)}} AND org = {{UInt64(org)}}",
    output(n: u64),
    cach_ttl = 5
)]
pub struct UserAnalytics {
    pub user_id: u64,
    #[tinybird(descripton = "unused anyway")]
    pub limit: Option<u32>,
}

fn main() {}
