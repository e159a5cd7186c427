use tinybird::pipes::MaterializedView;
use tinybird::{Datasource, Row};

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
#[tinybird(engine = "SummingMergeTree", sorting_key = "user_id")]
pub struct HitsPerUser {
    pub user_id: u64,
    pub hits: u64,
}

// A row with no `writes = "HitsPerUser"`: nothing checked it against the target.
#[derive(serde::Deserialize, Row)]
pub struct HitsOut {
    pub user_id: u64,
    pub hits: u64,
}

fn main() {
    let _ = MaterializedView::<HitsPerUser>::new("hits_mv")
        .node("agg", "SELECT user_id, count() AS hits FROM hits GROUP BY user_id")
        .output::<HitsOut>();
}
