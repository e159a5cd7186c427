use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS n FROM events WHERE id IN {{Array(ids, 'UInt64')}}", output(n: u64))]
pub struct ByIds {
    pub ids: u64,
}

fn main() {}
