use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT 1", output(n: u64))]
pub enum UserAnalytics {
    A,
    B,
}

fn main() {}
