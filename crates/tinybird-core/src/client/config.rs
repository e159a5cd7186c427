//! Client configuration: base URL or region, token, timeouts per kind of call, retries, user agent.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use super::{Client, RetryPolicy, Shared, Token, default_headers};
use crate::error::{Error, Result};

/// A Tinybird region, or Tinybird Local. [`Region::from_name`] accepts the names Tinybird uses
/// (`gcp-europe-west3`, `aws-us-east-1`, …) and short aliases (`eu`, `us-east`, `local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Region {
    /// GCP europe-west3: `https://api.tinybird.co` (the default).
    GcpEuropeWest3,
    /// GCP us-east4: `https://api.us-east.tinybird.co`.
    GcpUsEast4,
    /// GCP europe-west2: `https://api.europe-west2.gcp.tinybird.co`.
    GcpEuropeWest2,
    /// GCP northamerica-northeast2: `https://api.northamerica-northeast2.gcp.tinybird.co`.
    GcpNorthamericaNortheast2,
    /// AWS us-east-1: `https://api.us-east.aws.tinybird.co`.
    AwsUsEast1,
    /// AWS us-west-2: `https://api.us-west-2.aws.tinybird.co`.
    AwsUsWest2,
    /// AWS eu-central-1: `https://api.eu-central-1.aws.tinybird.co`.
    AwsEuCentral1,
    /// AWS eu-west-1: `https://api.eu-west-1.aws.tinybird.co`.
    AwsEuWest1,
    /// Tinybird Local (or `tinybird-local`) on `http://localhost:7181`.
    Local,
}

const REGIONS: &[(Region, &[&str], &str)] = &[
    (Region::GcpEuropeWest3, &["gcp-europe-west3", "eu", "europe-west3", "default"], "https://api.tinybird.co"),
    (Region::GcpUsEast4, &["gcp-us-east4", "us-east", "us-east4"], "https://api.us-east.tinybird.co"),
    (Region::GcpEuropeWest2, &["gcp-europe-west2", "europe-west2"], "https://api.europe-west2.gcp.tinybird.co"),
    (
        Region::GcpNorthamericaNortheast2,
        &["gcp-northamerica-northeast2", "northamerica-northeast2"],
        "https://api.northamerica-northeast2.gcp.tinybird.co",
    ),
    (Region::AwsUsEast1, &["aws-us-east-1", "us-east-1"], "https://api.us-east.aws.tinybird.co"),
    (Region::AwsUsWest2, &["aws-us-west-2", "us-west-2"], "https://api.us-west-2.aws.tinybird.co"),
    (Region::AwsEuCentral1, &["aws-eu-central-1", "eu-central-1"], "https://api.eu-central-1.aws.tinybird.co"),
    (Region::AwsEuWest1, &["aws-eu-west-1", "eu-west-1"], "https://api.eu-west-1.aws.tinybird.co"),
    (Region::Local, &["local"], "http://localhost:7181"),
];

impl Region {
    /// The API base URL of this region.
    pub fn base_url(self) -> &'static str {
        REGIONS.iter().find(|(r, _, _)| *r == self).map(|(_, _, url)| *url).unwrap_or("https://api.tinybird.co")
    }

    /// Looks a region up by name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Region> {
        let name = name.trim().to_ascii_lowercase();
        REGIONS.iter().find(|(_, names, _)| names.contains(&name.as_str())).map(|(r, _, _)| *r)
    }

    fn known_names() -> String {
        REGIONS.iter().map(|(_, names, _)| names[0]).collect::<Vec<_>>().join(", ")
    }
}

/// A region name [`Region`]'s `FromStr` does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRegion(String);

impl std::fmt::Display for UnknownRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown region `{}`; known regions: {}", self.0, Region::known_names())
    }
}

impl std::error::Error for UnknownRegion {}

impl std::str::FromStr for Region {
    type Err = UnknownRegion;

    /// As [`Region::from_name`]: Tinybird's names and the short aliases, case-insensitively.
    fn from_str(name: &str) -> std::result::Result<Region, UnknownRegion> {
        Region::from_name(name).ok_or_else(|| UnknownRegion(name.to_owned()))
    }
}

/// What [`ClientBuilder::region`] takes: a [`Region`], or a region's name (`"eu"`, `"aws-us-east-1"`), checked when
/// the client is built.
pub trait IntoRegion {
    /// The region, or why the name is not one.
    fn into_region(self) -> std::result::Result<Region, UnknownRegion>;
}

impl IntoRegion for Region {
    fn into_region(self) -> std::result::Result<Region, UnknownRegion> {
        Ok(self)
    }
}

impl IntoRegion for &str {
    fn into_region(self) -> std::result::Result<Region, UnknownRegion> {
        self.parse()
    }
}

impl IntoRegion for String {
    fn into_region(self) -> std::result::Result<Region, UnknownRegion> {
        self.parse()
    }
}

/// Timeouts per kind of call. `None` means no timeout for that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Endpoint queries and SQL (whole request). For streams, the wait for response headers.
    pub query: Option<Duration>,
    /// Events API requests (one batch).
    pub ingest: Option<Duration>,
    /// Token, datasource and deployment calls (one request; deploy polling has its own limit).
    pub admin: Option<Duration>,
    /// Establishing a TCP/TLS connection.
    pub connect: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            query: Some(Duration::from_secs(30)),
            ingest: Some(Duration::from_secs(60)),
            admin: Some(Duration::from_secs(120)),
            connect: Some(Duration::from_secs(10)),
        }
    }
}

/// Builds a [`Client`]. Every setter records problems; [`build`](ClientBuilder::build) reports them all at once.
#[must_use]
pub struct ClientBuilder {
    base_url: Option<String>,
    region_error: Option<String>,
    token: Option<SecretString>,
    timeouts: Timeouts,
    retry: RetryPolicy,
    user_agent: String,
    errors: Vec<String>,
}

impl std::fmt::Debug for ClientBuilder {
    // The base URL is shown as an error would show it: a `?token=` or `user:password@` in it is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url.as_deref().map(without_secrets))
            .field("region_error", &self.region_error)
            .field("token", &self.token)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("user_agent", &self.user_agent)
            .field("errors", &self.errors)
            .finish()
    }
}

/// A string that never shows in `Debug`.
struct SecretString(String);

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientBuilder {
    /// Defaults: `https://api.tinybird.co`, no token (a `Config` error at `build` unless one is set), the default
    /// [`Timeouts`] and [`RetryPolicy`], user agent `tinybird-rust/<version>`.
    pub fn new() -> Self {
        ClientBuilder {
            base_url: None,
            region_error: None,
            token: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            user_agent: format!("tinybird-rust/{}", env!("CARGO_PKG_VERSION")),
            errors: Vec::new(),
        }
    }

    /// A builder preloaded from `TINYBIRD_TOKEN` and `TINYBIRD_URL` (or `TINYBIRD_HOST`). Unset variables are left
    /// to later setters; a missing token is reported at `build`.
    pub fn from_env() -> Self {
        let mut b = Self::new();
        if let Some(token) = env_var("TINYBIRD_TOKEN") {
            b = b.token(token);
        }
        if let Some(url) = env_var("TINYBIRD_URL").or_else(|| env_var("TINYBIRD_HOST")) {
            b = b.base_url(url);
        }
        b
    }

    /// Any base URL: `https://api.us-east.tinybird.co`, `http://localhost:7181`, or a proxy with a path prefix
    /// (`https://proxy.example.com/tinybird`, kept in every request). A value without a scheme gets `https://`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self.region_error = None;
        self
    }

    /// A known region: a [`Region`], or its name (see [`Region::from_name`]); an unknown name is reported at `build`
    /// with the known ones.
    pub fn region(mut self, region: impl IntoRegion) -> Self {
        match region.into_region() {
            Ok(r) => {
                self.base_url = Some(r.base_url().to_owned());
                self.region_error = None;
            }
            Err(e) => self.region_error = Some(e.to_string()),
        }
        self
    }

    /// The token sent as `Authorization: Bearer <token>`: an admin or resource token, or a JWT.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString(token.into()));
        self
    }

    /// All timeouts at once.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Timeout of endpoint queries and SQL.
    pub fn query_timeout(mut self, t: Duration) -> Self {
        self.timeouts.query = Some(t);
        self
    }

    /// Timeout of one Events API request.
    pub fn ingest_timeout(mut self, t: Duration) -> Self {
        self.timeouts.ingest = Some(t);
        self
    }

    /// Timeout of token, datasource and deployment calls.
    pub fn admin_timeout(mut self, t: Duration) -> Self {
        self.timeouts.admin = Some(t);
        self
    }

    /// Timeout for establishing a connection.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.timeouts.connect = Some(t);
        self
    }

    /// The default retry policy (each call can override it).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Checks everything and builds the client. All configuration problems are reported together in one `Config`
    /// error.
    pub fn build(self) -> Result<Client> {
        let mut errors = self.errors;
        if let Some(e) = self.region_error {
            errors.push(e);
        }
        let base = match parse_base(self.base_url.as_deref().unwrap_or("https://api.tinybird.co")) {
            Ok(u) => Some(u),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let token = match &self.token {
            None => {
                errors.push("no token: set one with `.token(…)` or the TINYBIRD_TOKEN variable".to_owned());
                None
            }
            Some(t) => match Token::new(t.0.trim()) {
                Ok(t) => Some(t),
                Err(e) => {
                    errors.push(e.to_string());
                    None
                }
            },
        };
        if let Err(e) = self.retry.validate() {
            errors.push(e);
        }
        let headers = match default_headers(&self.user_agent) {
            Ok(h) => Some(h),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        };
        if !errors.is_empty() {
            return Err(Error::config(format!("invalid client configuration: {}", errors.join("; "))));
        }
        let (Some(base), Some(token), Some(headers)) = (base, token, headers) else {
            return Err(Error::config("invalid client configuration"));
        };
        let mut http = reqwest::Client::builder().default_headers(headers).gzip(true).use_rustls_tls();
        if let Some(t) = self.timeouts.connect {
            http = http.connect_timeout(t);
        }
        let http = http.build().map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { shared: Arc::new(Shared { http, base, timeouts: self.timeouts, retry: self.retry }), token })
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn parse_base(raw: &str) -> std::result::Result<Url, String> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("https://{raw}") };
    let shown = without_secrets(raw);
    let mut url = Url::parse(&with_scheme).map_err(|e| format!("invalid base URL `{shown}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("invalid base URL `{shown}`: the scheme must be http or https"));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(format!("invalid base URL `{shown}`: no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        // A token in `?token=` would otherwise ride along in every URL (and every log line of a proxy).
        return Err(format!(
            "invalid base URL `{}`: it must not have a query string or fragment",
            url.origin().ascii_serialization()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("invalid base URL: it must not contain credentials".to_owned());
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

/// A raw URL as it may be shown in an error: without query string, fragment or `user:password@`, any of which may
/// hold a token. Textual, since the URL may not parse.
fn without_secrets(raw: &str) -> String {
    let cut = raw.find(['?', '#']).map_or(raw, |i| &raw[..i]);
    let (scheme, rest) = match cut.find("://") {
        Some(i) => cut.split_at(i + 3),
        None => ("", cut),
    };
    let (authority, path) = rest.split_at(rest.find(['/', '\\']).unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_resolve_by_name() {
        assert_eq!(Region::from_name("EU"), Some(Region::GcpEuropeWest3));
        assert_eq!(
            Region::from_name("aws-us-east-1").map(Region::base_url),
            Some("https://api.us-east.aws.tinybird.co")
        );
        assert_eq!(Region::from_name("mars"), None);
    }

    #[test]
    fn base_url_keeps_prefix_and_drops_trailing_slash() {
        assert_eq!(parse_base("https://proxy.example.com/tb/").unwrap().as_str(), "https://proxy.example.com/tb");
        assert_eq!(parse_base("api.tinybird.co").unwrap().as_str(), "https://api.tinybird.co/");
        assert!(parse_base("ftp://x").is_err());
        assert!(parse_base("https://x/?token=p.abc").unwrap_err().contains("query string"));
        assert!(!parse_base("https://x/?token=p.abc").unwrap_err().contains("p.abc"));
    }

    #[test]
    fn builder_debug_hides_credentials_in_the_base_url() {
        let b = ClientBuilder::new().base_url("https://user:p.secret-a@api.tinybird.co/?token=p.secret-b");
        let shown = format!("{b:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("api.tinybird.co"), "{shown}");
    }

    #[test]
    fn invalid_base_urls_never_echo_credentials_or_query() {
        for raw in [
            "https://user:p.secret-token@/",
            "ftp://host/?token=p.secret-token",
            "https://bad host/?token=p.secret-token",
            "https://[::1/?token=p.secret-token",
            "mailto:p.secret-token@example.com",
        ] {
            let err = parse_base(raw).unwrap_err();
            assert!(!err.contains("secret"), "{raw} -> {err}");
            let built = ClientBuilder::new().token("p.t").base_url(raw).build().unwrap_err();
            assert!(!built.to_string().contains("secret"), "{raw} -> {built}");
        }
    }

    #[test]
    fn build_reports_every_problem_once() {
        assert_eq!("AWS-EU-WEST-1".parse::<Region>(), Ok(Region::AwsEuWest1));
        assert_eq!("mars".parse::<Region>().unwrap_err().to_string().split(';').next(), Some("unknown region `mars`"));
        let built = ClientBuilder::new().region(Region::Local).token("p.x").build().unwrap();
        assert_eq!(built.base_url().as_str(), "http://localhost:7181/");
        let err = ClientBuilder::new().region("mars").build().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unknown region `mars`"), "{msg}");
        assert!(msg.contains("no token"), "{msg}");
        assert_eq!(err.kind(), &crate::error::ErrorKind::Config);
    }

    #[test]
    fn debug_redacts_the_token() {
        let b = ClientBuilder::new().token("p.secret-token");
        assert!(!format!("{b:?}").contains("secret"));
        let c = b.build().unwrap();
        assert!(!format!("{c:?}").contains("secret"));
        let bad = ClientBuilder::new().token("p.secret\ntoken").build().unwrap_err();
        assert!(!bad.to_string().contains("secret"), "{bad}");
    }
}
