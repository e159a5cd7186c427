use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
pub struct Event {
    pub user_id: u64,
    #[serde(skip)]
    pub cached: u64,
}

fn main() {}
