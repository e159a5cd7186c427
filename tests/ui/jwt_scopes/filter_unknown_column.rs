// A DATASOURCES:READ filter on a column the datasource does not have.
use tinybird::jwt::Scope;
use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
#[tinybird(name = "events", engine = "MergeTree", sorting_key = "user_id")]
pub struct Event {
    pub user_id: u64,
    pub page: String,
}

fn main() {
    let _ = Scope::datasource_read::<Event>().filter(|c| c.org_id.eq("acme"));
}
