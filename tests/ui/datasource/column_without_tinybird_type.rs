use tinybird::Datasource;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Opaque(u64);

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
pub struct Event {
    pub user_id: u64,
    pub payload: Opaque,
}

fn main() {}
