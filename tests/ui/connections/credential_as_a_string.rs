use tinybird::connections::KafkaConnection;

fn main() {
    // A credential is a `Secret` (a `tb_secret` placeholder), never text in the code.
    let _ = KafkaConnection::new("events_kafka", "k:9092").key("my-user").secret("my-password");
}
