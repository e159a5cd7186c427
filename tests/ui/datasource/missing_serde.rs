use tinybird::Datasource;

#[derive(Datasource)]
pub struct Event {
    pub user_id: u64,
}

fn main() {}
