use tinybird::Endpoint;

pub struct Opaque;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT {{n}} AS n", output(n: u64))]
pub struct Nodes {
    pub n: Opaque,
}

fn main() {}
