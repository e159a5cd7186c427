//! Connections to external systems (Kafka, S3, GCS, DynamoDB) as Rust values, the secrets they use, and the import
//! settings of datasources that read from them.
//!
//! Credentials never appear in code: a key, a password or a credentials file is a [`Secret`], written as a
//! `{{ tb_secret("NAME") }}` placeholder that Tinybird fills from the workspace's secrets when it reads the
//! `.connection` file. Each connection writes that file ([`KafkaConnection::definition`], …); [`Project::connection`]
//! adds it to a project, and [`Project::datasource_from`] adds a datasource that imports through one, with typed
//! settings ([`KafkaImport`], [`BucketImport`], [`DynamoDbImport`]) that can only name a connection of the right kind.
//!
//! ```
//! use tinybird_core::connections::{Connection, KafkaConnection, KafkaSaslMechanism, KafkaSecurityProtocol, Secret};
//!
//! let kafka = KafkaConnection::new("events_kafka", "broker-1:9092,broker-2:9092")
//!     .security_protocol(KafkaSecurityProtocol::SaslSsl)
//!     .sasl_mechanism(KafkaSaslMechanism::ScramSha256)
//!     .key(Secret::new("KAFKA_KEY"))
//!     .secret(Secret::new("KAFKA_SECRET"));
//! let text = tinybird_core::datafile::write_connection(&kafka.definition().unwrap()).unwrap();
//! assert!(text.contains("KAFKA_KEY {{ tb_secret(\"KAFKA_KEY\") }}\n"), "{text}");
//! ```
//!
//! [`Project::connection`]: crate::project::Project::connection
//! [`Project::datasource_from`]: crate::project::Project::datasource_from

use std::fmt;

pub use crate::def::ConnectionDef;
use crate::def::DatafileSetting;

/// A secret of the workspace, by name: written as `{{ tb_secret("NAME") }}` (or `{{ tb_secret("NAME", "default") }}`)
/// wherever a connection needs a credential. Its `Debug` and `Display` show only the placeholder: the value never
/// passes through this SDK.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    name: String,
    default: Option<String>,
}

impl Secret {
    /// The secret named `name` (letters, digits and `_`, not starting with a digit; checked when the connection is
    /// written).
    pub fn new(name: impl Into<String>) -> Self {
        Secret { name: name.into(), default: None }
    }

    /// A value to use where the workspace has no such secret (Tinybird Local, a branch): not for credentials.
    pub fn or_default(mut self, default: impl Into<String>) -> Self {
        self.default = Some(default.into());
        self
    }

    /// The secret's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The placeholder, checked: `{{ tb_secret("NAME") }}`.
    fn placeholder(&self) -> Result<String, ConnectionError> {
        if !tinybird_types::is_valid_name(&self.name) {
            return Err(ConnectionError::new(format!(
                "invalid secret name `{}`: use letters, digits and `_`, not starting with a digit",
                self.name
            )));
        }
        Ok(match &self.default {
            None => format!("{{{{ tb_secret(\"{}\") }}}}", self.name),
            Some(default) => {
                if default.contains(['"', '\\', '\n', '\r']) || default.contains("}}") {
                    return Err(ConnectionError::new(format!(
                        "the default of secret `{}` cannot hold quotes, backslashes, newlines or `}}}}`",
                        self.name
                    )));
                }
                format!("{{{{ tb_secret(\"{}\", \"{default}\") }}}}", self.name)
            }
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.name)
    }
}

/// A connection that cannot be written: a bad name, a bad secret, a missing or malformed setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectionError {
    message: String,
}

impl ConnectionError {
    fn new(message: impl Into<String>) -> Self {
        ConnectionError { message: message.into() }
    }
}

/// What every connection is: a name, and the `.connection` definition it writes.
pub trait Connection {
    /// The connection's name (its `.connection` file's name).
    fn name(&self) -> &str;
    /// The `.connection` definition, checked (names, secrets, one-line values).
    fn definition(&self) -> Result<ConnectionDef, ConnectionError>;
}

/// A connection that blob-storage imports and sinks use: S3 or GCS.
pub trait BucketConnection: Connection {}

/// Builds a definition from `(KEY, value)` pairs, refusing values that are empty or span lines.
fn definition(name: &str, kind: &str, settings: Vec<(&str, String)>) -> Result<ConnectionDef, ConnectionError> {
    if !tinybird_types::is_valid_name(name) {
        return Err(ConnectionError::new(format!(
            "invalid connection name `{name}`: use letters, digits and `_`, not starting with a digit"
        )));
    }
    let mut out = Vec::with_capacity(settings.len());
    for (key, value) in settings {
        if value.trim().is_empty() || value.contains(['\n', '\r']) {
            return Err(ConnectionError::new(format!("connection `{name}`: {key} needs a one-line value")));
        }
        out.push(DatafileSetting::line(key, value));
    }
    Ok(ConnectionDef { name: name.to_owned(), kind: kind.to_owned(), settings: out })
}

/// `KAFKA_SECURITY_PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaSecurityProtocol {
    /// `PLAINTEXT`.
    Plaintext,
    /// `SASL_PLAINTEXT`.
    SaslPlaintext,
    /// `SASL_SSL` (Tinybird's default).
    SaslSsl,
    /// `SSL`.
    Ssl,
}

impl KafkaSecurityProtocol {
    fn as_str(self) -> &'static str {
        match self {
            KafkaSecurityProtocol::Plaintext => "PLAINTEXT",
            KafkaSecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            KafkaSecurityProtocol::SaslSsl => "SASL_SSL",
            KafkaSecurityProtocol::Ssl => "SSL",
        }
    }
}

/// `KAFKA_SASL_MECHANISM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaSaslMechanism {
    /// `PLAIN` (Tinybird's default).
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER`.
    OAuthBearer,
}

impl KafkaSaslMechanism {
    fn as_str(self) -> &'static str {
        match self {
            KafkaSaslMechanism::Plain => "PLAIN",
            KafkaSaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            KafkaSaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            KafkaSaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// A Kafka connection (`TYPE kafka`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConnection {
    name: String,
    bootstrap_servers: String,
    security_protocol: Option<KafkaSecurityProtocol>,
    sasl_mechanism: Option<KafkaSaslMechanism>,
    key: Option<Secret>,
    secret: Option<Secret>,
    schema_registry_url: Option<String>,
    ssl_ca_pem: Option<Secret>,
}

impl KafkaConnection {
    /// A connection named `name` to the brokers `bootstrap_servers` (`host:port`, comma-separated).
    pub fn new(name: impl Into<String>, bootstrap_servers: impl Into<String>) -> Self {
        KafkaConnection {
            name: name.into(),
            bootstrap_servers: bootstrap_servers.into(),
            security_protocol: None,
            sasl_mechanism: None,
            key: None,
            secret: None,
            schema_registry_url: None,
            ssl_ca_pem: None,
        }
    }

    /// `KAFKA_SECURITY_PROTOCOL`.
    pub fn security_protocol(mut self, protocol: KafkaSecurityProtocol) -> Self {
        self.security_protocol = Some(protocol);
        self
    }

    /// `KAFKA_SASL_MECHANISM`.
    pub fn sasl_mechanism(mut self, mechanism: KafkaSaslMechanism) -> Self {
        self.sasl_mechanism = Some(mechanism);
        self
    }

    /// `KAFKA_KEY`: the SASL user name, from a secret.
    pub fn key(mut self, key: Secret) -> Self {
        self.key = Some(key);
        self
    }

    /// `KAFKA_SECRET`: the SASL password, from a secret.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// `KAFKA_SCHEMA_REGISTRY_URL`, without credentials in it (`https://registry:8081`).
    pub fn schema_registry_url(mut self, url: impl Into<String>) -> Self {
        self.schema_registry_url = Some(url.into());
        self
    }

    /// `KAFKA_SSL_CA_PEM`: the brokers' CA certificate, from a secret.
    pub fn ssl_ca_pem(mut self, pem: Secret) -> Self {
        self.ssl_ca_pem = Some(pem);
        self
    }
}

impl Connection for KafkaConnection {
    fn name(&self) -> &str {
        &self.name
    }

    fn definition(&self) -> Result<ConnectionDef, ConnectionError> {
        let mut settings = vec![("KAFKA_BOOTSTRAP_SERVERS", self.bootstrap_servers.clone())];
        if let Some(p) = self.security_protocol {
            settings.push(("KAFKA_SECURITY_PROTOCOL", p.as_str().to_owned()));
        }
        if let Some(m) = self.sasl_mechanism {
            settings.push(("KAFKA_SASL_MECHANISM", m.as_str().to_owned()));
        }
        for (key, secret) in [("KAFKA_KEY", &self.key), ("KAFKA_SECRET", &self.secret)] {
            if let Some(secret) = secret {
                settings.push((key, secret.placeholder()?));
            }
        }
        if let Some(url) = &self.schema_registry_url {
            if url.contains('@') {
                return Err(ConnectionError::new(format!(
                    "connection `{}`: the schema registry URL carries credentials (`user:password@`); keep them in \
                     secrets",
                    self.name
                )));
            }
            settings.push(("KAFKA_SCHEMA_REGISTRY_URL", url.clone()));
        }
        if let Some(pem) = &self.ssl_ca_pem {
            settings.push(("KAFKA_SSL_CA_PEM", pem.placeholder()?));
        }
        definition(&self.name, "kafka", settings)
    }
}

/// How an S3 connection authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
enum S3Auth {
    /// `S3_ARN`: a role Tinybird assumes.
    Role(String),
    /// `S3_ACCESS_KEY` and `S3_SECRET`.
    Keys(Secret, Secret),
}

/// An S3 connection (`TYPE s3`): a region, and an IAM role Tinybird assumes or an access key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Connection {
    name: String,
    region: String,
    auth: S3Auth,
}

impl S3Connection {
    /// A connection named `name` in `region`, through the IAM role `arn` (`arn:aws:iam::…:role/…`), which Tinybird
    /// assumes: no credentials leave AWS.
    pub fn with_role(name: impl Into<String>, region: impl Into<String>, arn: impl Into<String>) -> Self {
        S3Connection { name: name.into(), region: region.into(), auth: S3Auth::Role(arn.into()) }
    }

    /// A connection named `name` in `region`, with an access key pair from the workspace's secrets.
    pub fn with_keys(name: impl Into<String>, region: impl Into<String>, access_key: Secret, secret: Secret) -> Self {
        S3Connection { name: name.into(), region: region.into(), auth: S3Auth::Keys(access_key, secret) }
    }
}

impl Connection for S3Connection {
    fn name(&self) -> &str {
        &self.name
    }

    fn definition(&self) -> Result<ConnectionDef, ConnectionError> {
        let mut settings = vec![("S3_REGION", self.region.clone())];
        match &self.auth {
            S3Auth::Role(arn) => {
                if !arn.starts_with("arn:") {
                    return Err(ConnectionError::new(format!(
                        "connection `{}`: S3_ARN `{arn}` is not an ARN (`arn:aws:iam::<account>:role/<name>`)",
                        self.name
                    )));
                }
                settings.push(("S3_ARN", arn.clone()));
            }
            S3Auth::Keys(key, secret) => {
                settings.push(("S3_ACCESS_KEY", key.placeholder()?));
                settings.push(("S3_SECRET", secret.placeholder()?));
            }
        }
        definition(&self.name, "s3", settings)
    }
}

impl BucketConnection for S3Connection {}

/// A Google Cloud Storage connection (`TYPE gcs`): a service account's JSON credentials, or an HMAC key pair, from
/// the workspace's secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcsConnection {
    name: String,
    auth: (Secret, Option<Secret>),
}

impl GcsConnection {
    /// A connection named `name` with a service account's credentials (`GCS_SERVICE_ACCOUNT_CREDENTIALS_JSON`).
    pub fn with_service_account(name: impl Into<String>, credentials_json: Secret) -> Self {
        GcsConnection { name: name.into(), auth: (credentials_json, None) }
    }

    /// A connection named `name` with an HMAC key pair (`GCS_HMAC_ACCESS_ID`, `GCS_HMAC_SECRET`).
    pub fn with_hmac(name: impl Into<String>, access_id: Secret, secret: Secret) -> Self {
        GcsConnection { name: name.into(), auth: (access_id, Some(secret)) }
    }
}

impl Connection for GcsConnection {
    fn name(&self) -> &str {
        &self.name
    }

    fn definition(&self) -> Result<ConnectionDef, ConnectionError> {
        let settings = match &self.auth {
            (json, None) => vec![("GCS_SERVICE_ACCOUNT_CREDENTIALS_JSON", json.placeholder()?)],
            (id, Some(secret)) => {
                vec![("GCS_HMAC_ACCESS_ID", id.placeholder()?), ("GCS_HMAC_SECRET", secret.placeholder()?)]
            }
        };
        definition(&self.name, "gcs", settings)
    }
}

impl BucketConnection for GcsConnection {}

/// A DynamoDB connection (`TYPE dynamodb`): a region and an IAM role Tinybird assumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoDbConnection {
    name: String,
    region: String,
    arn: String,
}

impl DynamoDbConnection {
    /// A connection named `name` in `region` through the IAM role `arn`.
    pub fn new(name: impl Into<String>, region: impl Into<String>, arn: impl Into<String>) -> Self {
        DynamoDbConnection { name: name.into(), region: region.into(), arn: arn.into() }
    }
}

impl Connection for DynamoDbConnection {
    fn name(&self) -> &str {
        &self.name
    }

    fn definition(&self) -> Result<ConnectionDef, ConnectionError> {
        if !self.arn.starts_with("arn:") {
            return Err(ConnectionError::new(format!(
                "connection `{}`: DYNAMODB_ARN `{}` is not an ARN (`arn:aws:iam::<account>:role/<name>`)",
                self.name, self.arn
            )));
        }
        definition(
            &self.name,
            "dynamodb",
            vec![("DYNAMODB_REGION", self.region.clone()), ("DYNAMODB_ARN", self.arn.clone())],
        )
    }
}

/// A datasource's import settings: which connection it reads through, and how.
pub trait DatasourceImport {
    /// The connection's name.
    fn connection(&self) -> &str;
    /// The `KAFKA_*` or `IMPORT_*` settings, in the order Tinybird's generators write them.
    fn settings(&self) -> Vec<DatafileSetting>;
}

/// `KAFKA_AUTO_OFFSET_RESET`: where a new consumer group starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    /// `earliest`: from the oldest message kept.
    Earliest,
    /// `latest`: from new messages only (Kafka's default).
    Latest,
}

/// A datasource fed from a Kafka topic: `KAFKA_CONNECTION_NAME`, `KAFKA_TOPIC`, `KAFKA_GROUP_ID` (all three required
/// by Tinybird), and optionally where to start and whether to keep the raw message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaImport {
    connection: String,
    topic: String,
    group_id: String,
    auto_offset_reset: Option<AutoOffsetReset>,
    store_raw_value: Option<bool>,
}

impl KafkaImport {
    /// Reads `topic` through `connection` as the consumer group `group_id`.
    pub fn new(connection: &KafkaConnection, topic: impl Into<String>, group_id: impl Into<String>) -> Self {
        KafkaImport {
            connection: connection.name.clone(),
            topic: topic.into(),
            group_id: group_id.into(),
            auto_offset_reset: None,
            store_raw_value: None,
        }
    }

    /// `KAFKA_AUTO_OFFSET_RESET`.
    pub fn auto_offset_reset(mut self, reset: AutoOffsetReset) -> Self {
        self.auto_offset_reset = Some(reset);
        self
    }

    /// `KAFKA_STORE_RAW_VALUE`: also keep each message as it arrived, in `__value`.
    pub fn store_raw_value(mut self, store: bool) -> Self {
        self.store_raw_value = Some(store);
        self
    }
}

impl DatasourceImport for KafkaImport {
    fn connection(&self) -> &str {
        &self.connection
    }

    fn settings(&self) -> Vec<DatafileSetting> {
        let mut out = vec![
            DatafileSetting::line("KAFKA_CONNECTION_NAME", &self.connection),
            DatafileSetting::line("KAFKA_TOPIC", &self.topic),
            DatafileSetting::line("KAFKA_GROUP_ID", &self.group_id),
        ];
        if let Some(reset) = self.auto_offset_reset {
            let value = match reset {
                AutoOffsetReset::Earliest => "earliest",
                AutoOffsetReset::Latest => "latest",
            };
            out.push(DatafileSetting::line("KAFKA_AUTO_OFFSET_RESET", value));
        }
        if let Some(store) = self.store_raw_value {
            out.push(DatafileSetting::line("KAFKA_STORE_RAW_VALUE", if store { "True" } else { "False" }));
        }
        out
    }
}

/// `IMPORT_SCHEDULE`: when a bucket import runs (Tinybird allows only these three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportSchedule {
    /// `@auto`: new files are imported as they land (the default here).
    #[default]
    Auto,
    /// `@on-demand`: when an import is requested.
    OnDemand,
    /// `@once`: once, at deploy.
    Once,
}

/// A datasource fed from files in an S3 or GCS bucket: `IMPORT_CONNECTION_NAME`, `IMPORT_BUCKET_URI`,
/// `IMPORT_SCHEDULE`, and optionally `IMPORT_FROM_TIMESTAMP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketImport {
    connection: String,
    bucket_uri: String,
    schedule: ImportSchedule,
    from_timestamp: Option<String>,
}

impl BucketImport {
    /// Imports the files matching `bucket_uri` (`s3://bucket/prefix/*.ndjson`) through `connection`.
    pub fn new(connection: &impl BucketConnection, bucket_uri: impl Into<String>) -> Self {
        BucketImport {
            connection: connection.name().to_owned(),
            bucket_uri: bucket_uri.into(),
            schedule: ImportSchedule::default(),
            from_timestamp: None,
        }
    }

    /// `IMPORT_SCHEDULE` (default `@auto`).
    pub fn schedule(mut self, schedule: ImportSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// `IMPORT_FROM_TIMESTAMP`: skip files older than this (`2024-01-01T00:00:00Z`).
    pub fn from_timestamp(mut self, timestamp: impl Into<String>) -> Self {
        self.from_timestamp = Some(timestamp.into());
        self
    }
}

impl DatasourceImport for BucketImport {
    fn connection(&self) -> &str {
        &self.connection
    }

    fn settings(&self) -> Vec<DatafileSetting> {
        let schedule = match self.schedule {
            ImportSchedule::Auto => "@auto",
            ImportSchedule::OnDemand => "@on-demand",
            ImportSchedule::Once => "@once",
        };
        let mut out = vec![
            DatafileSetting::line("IMPORT_CONNECTION_NAME", &self.connection),
            DatafileSetting::line("IMPORT_BUCKET_URI", &self.bucket_uri),
            DatafileSetting::line("IMPORT_SCHEDULE", schedule),
        ];
        if let Some(from) = &self.from_timestamp {
            out.push(DatafileSetting::line("IMPORT_FROM_TIMESTAMP", from));
        }
        out
    }
}

/// A datasource fed from a DynamoDB table: `IMPORT_CONNECTION_NAME`, `IMPORT_TABLE_ARN`, `IMPORT_EXPORT_BUCKET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoDbImport {
    connection: String,
    table_arn: String,
    export_bucket: String,
}

impl DynamoDbImport {
    /// Imports the table `table_arn` through `connection`, staging its export in `export_bucket`.
    pub fn new(
        connection: &DynamoDbConnection,
        table_arn: impl Into<String>,
        export_bucket: impl Into<String>,
    ) -> Self {
        DynamoDbImport {
            connection: connection.name.clone(),
            table_arn: table_arn.into(),
            export_bucket: export_bucket.into(),
        }
    }
}

impl DatasourceImport for DynamoDbImport {
    fn connection(&self) -> &str {
        &self.connection
    }

    fn settings(&self) -> Vec<DatafileSetting> {
        vec![
            DatafileSetting::line("IMPORT_CONNECTION_NAME", &self.connection),
            DatafileSetting::line("IMPORT_TABLE_ARN", &self.table_arn),
            DatafileSetting::line("IMPORT_EXPORT_BUCKET", &self.export_bucket),
        ]
    }
}
