//! Connections, secrets, imports and sink pipes: the `.connection` text (golden, as the official SDK writes it),
//! round trips through the parser, a project folder with every kind, and what is refused.

use serde::{Deserialize, Serialize};
use tinybird_core::connections::{
    AutoOffsetReset, BucketImport, Connection, DynamoDbConnection, DynamoDbImport, GcsConnection, ImportSchedule,
    KafkaConnection, KafkaImport, KafkaSaslMechanism, KafkaSecurityProtocol, S3Connection, Secret,
};
use tinybird_core::datafile::{PipeKind, parse_connection, parse_pipe, write_connection, write_pipe};
use tinybird_core::datasource::{ColumnDef, Datasource, DatasourceDef};
use tinybird_core::pipes::{SinkCompression, SinkFormat, SinkPipe, SinkStrategy};
use tinybird_core::project::{Project, ProjectError};

#[derive(Serialize, Deserialize)]
struct Click {
    id: u64,
}

impl Datasource for Click {
    const NAME: &'static str = "clicks";
    type Columns = ();
    fn definition() -> DatasourceDef {
        DatasourceDef {
            name: "clicks".into(),
            columns: vec![ColumnDef { name: "id".into(), ty: "UInt64".into(), ..Default::default() }],
            ..Default::default()
        }
    }
}

fn kafka() -> KafkaConnection {
    KafkaConnection::new("events_kafka", "k:9092")
        .security_protocol(KafkaSecurityProtocol::SaslSsl)
        .sasl_mechanism(KafkaSaslMechanism::Plain)
        .key(Secret::new("KAFKA_KEY"))
        .secret(Secret::new("KAFKA_SECRET"))
}

#[test]
fn a_kafka_connection_is_written_as_the_official_sdk_writes_it() {
    let text = write_connection(&kafka().definition().unwrap()).unwrap();
    assert_eq!(
        text,
        "TYPE kafka\nKAFKA_BOOTSTRAP_SERVERS k:9092\nKAFKA_SECURITY_PROTOCOL SASL_SSL\nKAFKA_SASL_MECHANISM PLAIN\n\
         KAFKA_KEY {{ tb_secret(\"KAFKA_KEY\") }}\nKAFKA_SECRET {{ tb_secret(\"KAFKA_SECRET\") }}\n"
    );
    // Read back: the placeholders stay placeholders.
    assert_eq!(parse_connection("events_kafka", &text).unwrap(), kafka().definition().unwrap());
    assert_eq!(format!("{:?}", Secret::new("KAFKA_SECRET")), "Secret(KAFKA_SECRET)");
}

#[test]
fn every_connection_kind_round_trips() {
    let connections: Vec<Box<dyn Connection>> = vec![
        Box::new(kafka().schema_registry_url("https://registry:8081").ssl_ca_pem(Secret::new("KAFKA_CA"))),
        Box::new(S3Connection::with_role("s3_role", "us-east-1", "arn:aws:iam::123456789012:role/tb")),
        Box::new(S3Connection::with_keys("s3_keys", "eu-west-1", Secret::new("S3_KEY"), Secret::new("S3_SECRET"))),
        Box::new(GcsConnection::with_service_account("gcs_sa", Secret::new("GCS_JSON"))),
        Box::new(GcsConnection::with_hmac("gcs_hmac", Secret::new("GCS_ID"), Secret::new("GCS_SECRET"))),
        Box::new(DynamoDbConnection::new("ddb", "us-east-1", "arn:aws:iam::123456789012:role/ddb")),
        Box::new(S3Connection::with_keys("local", "us-east-1", Secret::new("K").or_default("x"), Secret::new("S"))),
    ];
    for connection in &connections {
        let def = connection.definition().unwrap();
        let text = write_connection(&def).unwrap();
        assert_eq!(parse_connection(connection.name(), &text).unwrap(), def, "{text}");
        assert_eq!(write_connection(&parse_connection(connection.name(), &text).unwrap()).unwrap(), text);
    }
    let text = write_connection(&connections[6].definition().unwrap()).unwrap();
    assert!(text.contains("S3_ACCESS_KEY {{ tb_secret(\"K\", \"x\") }}\n"), "{text}");
}

#[test]
fn bad_connections_are_refused_naming_what_is_wrong() {
    let cases: Vec<(Box<dyn Connection>, &str)> = vec![
        (Box::new(KafkaConnection::new("1kafka", "k:9092")), "invalid connection name `1kafka`"),
        (Box::new(KafkaConnection::new("k", "")), "KAFKA_BOOTSTRAP_SERVERS needs a one-line value"),
        (Box::new(KafkaConnection::new("k", "a:1\nb:2")), "KAFKA_BOOTSTRAP_SERVERS needs a one-line value"),
        (Box::new(kafka().key(Secret::new("my key"))), "invalid secret name `my key`"),
        (Box::new(kafka().secret(Secret::new("S").or_default("a\"b"))), "the default of secret `S`"),
        (Box::new(kafka().schema_registry_url("https://user:pw@registry")), "carries credentials"),
        (Box::new(S3Connection::with_role("s3", "us-east-1", "my-role")), "is not an ARN"),
        (Box::new(DynamoDbConnection::new("d", "us-east-1", "role")), "is not an ARN"),
    ];
    for (connection, message) in cases {
        let err = connection.definition().expect_err(message).to_string();
        assert!(err.contains(message), "{err} (wanted {message})");
        // In a project, the error is reported when the files are made (so a deploy refuses it).
        let err = match Project::new().connection(&*connection).files() {
            Err(ProjectError::Connection(e)) => e.to_string(),
            other => panic!("{other:?}"),
        };
        assert!(err.contains(message), "{err}");
    }
    for (text, message) in [
        ("KAFKA_BOOTSTRAP_SERVERS k:9092\n", "a connection needs a TYPE"),
        ("TYPE kafka\nKAFKA_TOPIC t\n", "KAFKA_TOPIC is not a valid option in connection files."),
        ("TYPE kafka\nKAFKA_KEY a\nKAFKA_KEY b\n", "KAFKA_KEY is given twice"),
    ] {
        let err = parse_connection("c", text).expect_err(text).to_string();
        assert!(err.contains(message), "{err}");
    }
}

#[test]
fn imports_and_sinks_name_their_connection_and_write_tinybirds_keys() {
    let kafka = kafka();
    let s3 = S3Connection::with_role("exports", "eu-west-1", "arn:aws:iam::123456789012:role/tb");
    let import = KafkaImport::new(&kafka, "clicks", "tb_clicks").auto_offset_reset(AutoOffsetReset::Earliest);
    let sink = SinkPipe::to_bucket("clicks_export", &s3, "s3://exports/clicks", "clicks_{date}")
        .node("all", "SELECT * FROM clicks")
        .schedule(tinybird_core::cron!("0 3 * * *"))
        .format(SinkFormat::Ndjson)
        .compression(SinkCompression::Gzip)
        .strategy(SinkStrategy::CreateNew);
    let to_kafka = SinkPipe::to_kafka("clicks_stream", &kafka, "clicks_out").node("all", "SELECT * FROM clicks");
    let project = Project::new()
        .connection(&kafka)
        .connection(&s3)
        .datasource_from::<Click>(&import)
        .sink_pipe(&sink)
        .sink_pipe(&to_kafka);
    assert_eq!(project.validate().unwrap(), []);
    let files = project.files().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "connections/events_kafka.connection",
            "connections/exports.connection",
            "datasources/clicks.datasource",
            "pipes/clicks_export.pipe",
            "pipes/clicks_stream.pipe"
        ]
    );
    let ds = &files[2].content;
    assert!(
        ds.contains(
            "KAFKA_CONNECTION_NAME events_kafka\nKAFKA_TOPIC clicks\nKAFKA_GROUP_ID tb_clicks\nKAFKA_AUTO_OFFSET_RESET earliest"
        ),
        "{ds}"
    );
    let export = &files[3].content;
    assert!(
        export.contains(
            "TYPE sink\nEXPORT_CONNECTION_NAME \"exports\"\nEXPORT_BUCKET_URI \"s3://exports/clicks\"\n\
             EXPORT_FILE_TEMPLATE \"clicks_{date}\"\nEXPORT_SCHEDULE \"0 3 * * *\"\nEXPORT_FORMAT \"ndjson\"\n\
             EXPORT_STRATEGY \"create_new\"\nEXPORT_COMPRESSION \"gzip\""
        ),
        "{export}"
    );
    let stream = parse_pipe("clicks_stream", &files[4].content).unwrap();
    let PipeKind::Sink { settings } = &stream.kind else { panic!("{stream:?}") };
    let keys: Vec<&str> = settings.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["EXPORT_CONNECTION_NAME", "EXPORT_KAFKA_TOPIC", "EXPORT_SCHEDULE"]);
    assert_eq!(write_pipe(&stream).unwrap(), files[4].content);

    // The folder reads back whole, connections included.
    let dir = std::env::temp_dir().join(format!("tb-connections-{}", std::process::id()));
    project.write_to(&dir).unwrap();
    let read = Project::from_dir(&dir).unwrap();
    assert_eq!(read.connections(), project.connections());
    assert_eq!(read.files().unwrap(), files);
    std::fs::remove_dir_all(&dir).unwrap();

    // A connection the project does not define is a warning: it may exist in the workspace.
    let gcs = GcsConnection::with_service_account("archive", Secret::new("GCS_JSON"));
    let ddb = DynamoDbConnection::new("ddb", "us-east-1", "arn:aws:iam::1:role/r");
    let lonely = Project::new()
        .datasource_from::<Click>(&BucketImport::new(&gcs, "gs://archive/*.csv").schedule(ImportSchedule::OnDemand));
    let warnings: Vec<String> = lonely.validate().unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(warnings, ["clicks: uses the connection `archive`, which is not a connection of this project"]);
    let ddb_project = Project::new().connection(&ddb).datasource_from::<Click>(&DynamoDbImport::new(
        &ddb,
        "arn:aws:dynamodb:us-east-1:1:table/clicks",
        "s3://staging",
    ));
    assert_eq!(ddb_project.validate().unwrap(), []);
    let twice = Project::new().connection(&kafka).connection(&kafka);
    assert!(matches!(twice.validate(), Err(ProjectError::DuplicateName { .. })));
}
