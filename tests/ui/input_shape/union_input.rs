use tinybird::Datasource;

#[derive(Datasource)]
pub union Event {
    a: u64,
    b: f64,
}

fn main() {}
