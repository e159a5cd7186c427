use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
#[tinybird(sorting_key = "user, timestamp")]
pub struct Event {
    pub user_id: u64,
    pub timestamp: u32,
}

fn main() {}
