use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(
    sql = "%
SELECT count() AS n
FROM events
WHERE 1
{% if defined(user_id) %} AND user_id = {{UInt64(user_id)}}",
    output(n: u64)
)]
pub struct UserAnalytics {
    pub user_id: Option<u64>,
}

fn main() {}
