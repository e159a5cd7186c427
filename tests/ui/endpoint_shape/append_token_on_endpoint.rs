use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT {{UInt64(n)}} AS n", output(n: u64), token(name = "writer", append))]
pub struct Nodes {
    pub n: u64,
}

fn main() {}
