use tinybird::Endpoint;

#[derive(Endpoint)]
#[tinybird(sql = "%\nSELECT count() AS n FROM events WHERE country = {{String(country)}}", output(n: u64))]
pub struct ByCountry {
    pub country: Option<bool>,
}

fn main() {}
