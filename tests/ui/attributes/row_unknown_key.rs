use tinybird::Row;

#[derive(serde::Deserialize, Row)]
struct Hits {
    page: String,
    #[tinybird(typ = "UInt64")]
    hits: u64,
    #[tinybird(type = "UInt65")]
    other: u64,
}

fn main() {}
