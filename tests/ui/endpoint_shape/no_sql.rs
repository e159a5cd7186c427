use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(output(n: u64))]
pub struct NoSql {
    #[tinybird(unused)]
    pub n: u64,
}

fn main() {}
