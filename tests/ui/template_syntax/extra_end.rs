use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(node(name = "a", sql = "%\nSELECT {{UInt64(n)}} AS n"), node(name = "b", sql = "%\nSELECT n FROM a\n{% end %}"), output(n: u64))]
pub struct Nodes {
    pub n: u64,
}

fn main() {}
