use tinybird::Endpoint;

// The check sees through aliases: `Timestamp` is a `u32`, which `DateTime()` cannot read.
type Timestamp = u32;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS n FROM events WHERE timestamp >= {{DateTime(start)}}", output(n: u64))]
pub struct UserAnalytics {
    pub start: Option<Timestamp>,
}

fn main() {}
