use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(node(name = "a", sql = "%\nSELECT {{UInt64(n)}} AS n"), node(name = "a", sql = "SELECT n FROM a"), output(n: u64))]
pub struct Nodes {
    pub n: u64,
}

fn main() {}
