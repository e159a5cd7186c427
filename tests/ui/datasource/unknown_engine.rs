use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
#[tinybird(engine = "ReplacingMergTree", sorting_key = "user_id")]
pub struct User {
    pub user_id: u64,
}

fn main() {}
