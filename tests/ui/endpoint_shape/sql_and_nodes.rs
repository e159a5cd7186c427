use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT {{UInt64(n)}} AS n", node(name = "a", sql = "SELECT 1"), output(n: u64))]
pub struct Both {
    pub n: u64,
}

fn main() {}
