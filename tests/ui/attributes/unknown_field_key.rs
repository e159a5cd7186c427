use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT 1 LIMIT {{Int32(limit, 10)}}", output(n: u64))]
pub struct TopEvents {
    #[tinybird(defualt = 10)]
    pub limit: Option<i32>,
}

fn main() {}
