// A DATASOURCES:READ filter comparing a `u64` column with a string.
use tinybird::jwt::Scope;
use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
#[tinybird(name = "events", engine = "MergeTree", sorting_key = "user_id")]
pub struct Event {
    pub user_id: u64,
    pub page: String,
}

fn main() {
    let _ = Scope::datasource_read::<Event>().filter(|c| c.user_id.eq("42"));
}
