use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT * FROM events LIMIT {{Int32(limit, 10)}}", output(n: u64))]
pub struct Recent {
    #[tinybird(default = "ten")]
    pub limit: Option<i32>,
}

fn main() {}
