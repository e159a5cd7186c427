use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS n FROM events WHERE id IN {{Array(ids, 'Int33')}}", output(n: u64))]
pub struct ByIds {
    pub ids: Vec<i32>,
}

fn main() {}
