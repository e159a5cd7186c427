use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT {{UInt64(n) ** 2}} AS n", output(n: u64))]
pub struct Square {
    pub n: u64,
}

fn main() {}
