use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
#[tinybird(engine = "CollapsingMergeTree", sorting_key = "user_id")]
pub struct Session {
    pub user_id: u64,
    pub sign: i8,
}

fn main() {}
