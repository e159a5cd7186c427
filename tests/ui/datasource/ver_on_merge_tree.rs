use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
#[tinybird(engine = "MergeTree", sorting_key = "user_id", ver = "updated_at")]
pub struct User {
    pub user_id: u64,
    pub updated_at: u32,
}

fn main() {}
