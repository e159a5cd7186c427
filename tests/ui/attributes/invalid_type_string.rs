use tinybird::Datasource;

#[derive(serde::Serialize, serde::Deserialize, Datasource)]
pub struct Event {
    #[tinybird(type = "LowCardinality(Strin)")]
    pub event_type: String,
    #[tinybird(type = "DateTime64(12)")]
    pub at: String,
}

fn main() {}
