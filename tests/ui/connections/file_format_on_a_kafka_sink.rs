use tinybird::connections::KafkaConnection;
use tinybird::pipes::{SinkFormat, SinkPipe};

fn main() {
    // Files have a format; Kafka messages do not.
    let kafka = KafkaConnection::new("events_kafka", "k:9092");
    let _ = SinkPipe::to_kafka("export", &kafka, "topic").format(SinkFormat::Csv);
}
