use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT {{String(format, 'json')}}", output(n: u64))]
pub struct Export {
    pub format: Option<String>,
}

fn main() {}
