use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
pub struct Event {
    #[tinybird(json = "user.id")]
    pub user_id: u64,
}

fn main() {}
