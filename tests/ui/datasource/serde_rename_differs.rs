use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
pub struct Event {
    #[serde(rename(serialize = "uid"))]
    pub user_id: u64,
}

fn main() {}
