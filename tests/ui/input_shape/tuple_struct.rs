use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
pub struct Event(u64, String);

fn main() {}
