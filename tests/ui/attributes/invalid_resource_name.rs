use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
#[tinybird(name = "1events")]
pub struct Event {
    pub user_id: u64,
}

fn main() {}
