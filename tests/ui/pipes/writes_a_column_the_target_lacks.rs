use tinybird::{Datasource, Row};

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
#[tinybird(engine = "SummingMergeTree", sorting_key = "user_id")]
pub struct HitsPerUser {
    pub user_id: u64,
    pub hits: u64,
}

// `hits` as text, and a `pages` column the target does not have.
#[derive(serde::Deserialize, Row)]
#[tinybird(writes = "HitsPerUser")]
pub struct HitsOut {
    pub user_id: u64,
    pub hits: String,
    pub pages: u64,
}

fn main() {}
