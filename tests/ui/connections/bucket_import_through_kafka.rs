use tinybird::connections::{BucketImport, KafkaConnection};

fn main() {
    // A bucket import reads through an S3 or GCS connection, not a Kafka one.
    let kafka = KafkaConnection::new("events_kafka", "k:9092");
    let _ = BucketImport::new(&kafka, "s3://bucket/*.csv");
}
