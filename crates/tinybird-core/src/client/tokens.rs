//! The Token API: static tokens (create, list, refresh, delete) and JWTs created by the server.

use reqwest::Method;
use serde::Deserialize;

use super::{Body, Client, Request, RetryOn, read_body};
use crate::datasource::Datasource;
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::jwt::{HasExpiry, Jwt, JwtBuilder, ScopeKind};

/// The Token API's answer. `Debug` never shows the token.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    token: String,
    /// The token's name, when the server echoes it.
    #[serde(default)]
    pub name: Option<String>,
    /// Expiry (unix seconds), when the server echoes it.
    #[serde(default)]
    pub exp: Option<i64>,
}

impl TokenResponse {
    /// The token itself (a JWT). Handle with care: it grants what its scopes say until it expires.
    pub fn token(&self) -> &str {
        &self.token
    }
    /// Consumes the response, returning the token.
    pub fn into_token(self) -> String {
        self.token
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &"<redacted>")
            .field("name", &self.name)
            .field("exp", &self.exp)
            .finish()
    }
}

impl Client {
    /// Creates a static token with the Token API (`POST /v0/tokens/?name=…&scope=…`): a permanent token, valid until
    /// it is deleted or refreshed, with the scopes of `request`. The client's token needs the ADMIN or TOKENS scope.
    ///
    /// A bad request (an empty or invalid name, no scopes) is a [`ErrorKind::BadRequest`] error and sends nothing. A
    /// 403 is reported as [`ErrorKind::Forbidden`] saying which scope is missing; a 400 as [`ErrorKind::BadRequest`]
    /// with the server's reason (for example a resource that does not exist).
    pub async fn create_static_token(&self, request: &StaticTokenRequest) -> Result<TokenResponse> {
        check_token_name(&request.name)?;
        if let Some(resource) = &request.bad_resource {
            return Err(Error::new(
                ErrorKind::BadRequest,
                format!("the static token {:?} names an invalid resource {resource:?}", request.name),
            ));
        }
        if request.scopes.is_empty() {
            return Err(Error::new(
                ErrorKind::BadRequest,
                format!(
                    "the static token {:?} has no scopes: add one with `read_pipe`, `read_datasource`, …",
                    request.name
                ),
            ));
        }
        let mut pairs = vec![("name", request.name.as_str())];
        pairs.extend(request.scopes.iter().map(|scope| ("scope", scope.as_str())));
        self.post_token("a static token", pairs, Vec::new()).await
    }

    /// Mints a JWT server-side with the Token API, from the same builder that signs locally
    /// ([`JwtBuilder::sign`](crate::jwt::JwtBuilder::sign)). The builder is validated first (an invalid one is a
    /// [`ErrorKind::BadRequest`] error and sends nothing).
    ///
    /// A 403 means the client's token lacks the ADMIN or TOKENS scope ([`ErrorKind::Forbidden`]); a 400 carries
    /// the server's reason ([`ErrorKind::BadRequest`]).
    pub async fn create_jwt<X: HasExpiry>(&self, builder: &JwtBuilder<X>) -> Result<Jwt> {
        let request = builder
            .token_api_request()
            .map_err(|e| Error::new(ErrorKind::BadRequest, format!("invalid JWT request: {e}")))?;
        let pairs: Vec<(&str, &str)> = request.query_pairs().iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = self.post_token("a JWT", pairs, request.body().as_bytes().to_vec()).await?;
        Ok(request.into_jwt(resp.into_token()))
    }

    async fn post_token<'a>(
        &self,
        kind: &str,
        query: impl IntoIterator<Item = (&'a str, &'a str)>,
        data: Vec<u8>,
    ) -> Result<TokenResponse> {
        // The trailing slash is what the official SDK and docs use.
        let url = self.url(&["v0", "tokens", ""], query);
        let req = Request::new(Method::POST, url, RetryOn::NotIdempotent)
            .body(Body::Bytes { data: data.into(), content_type: "application/json", content_encoding: None })
            .timeout(self.timeouts().admin);
        let what = req.what.clone();
        let resp = self.send(req).await.map_err(|e| match e.kind() {
            ErrorKind::Forbidden => e.with_context(&format!(
                "creating {kind} needs a token with the TOKENS or ADMIN scope (this one was refused)"
            )),
            ErrorKind::BadRequest => e.with_context(&format!("the request for {kind} was rejected")),
            _ => e,
        })?;
        let bytes = read_body(&what, resp).await?;
        serde_json::from_slice::<TokenResponse>(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Decode { column: Some("token".into()), row: None },
                format!("{what}: the response has no token: {e}"),
            )
        })
    }
}

/// One scope of a static token, as the Token API lists it: `DATASOURCES:READ` on `events` with a row filter,
/// `PIPES:READ` on a pipe, `ADMIN`, …
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TokenScope {
    /// The scope's type (`DATASOURCES:READ`, `DATASOURCES:APPEND`, `PIPES:READ`, `ADMIN`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The datasource or pipe it applies to, when it applies to one.
    #[serde(default)]
    pub resource: Option<String>,
    /// The SQL row filter of a `DATASOURCES:READ` scope, when it has one.
    #[serde(default)]
    pub filter: Option<String>,
}

/// A static token of the workspace, as `GET /v0/tokens` lists it. `Debug` never shows the token.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct StaticToken {
    /// Its id, when the server gives one.
    #[serde(default)]
    pub id: Option<String>,
    /// Its name.
    #[serde(default)]
    pub name: String,
    token: String,
    /// What it may do.
    #[serde(default)]
    pub scopes: Vec<TokenScope>,
}

impl StaticToken {
    /// The token itself. Handle with care: it grants its scopes until it is refreshed or deleted.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticToken")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// A static token to create with [`Client::create_static_token`]: a name and what it may do.
///
/// Scopes name their resource through its Rust declaration (`read_pipe::<TopPages>()`), or by name for resources
/// declared elsewhere. Static tokens carry no row filter and pin no parameters: for row-level security mint a JWT
/// ([`Jwt::builder`]), whose scopes take `fixed_params` and filters.
///
/// ```
/// use tinybird_core::client::StaticTokenRequest;
///
/// let request = StaticTokenRequest::new("dashboard_backend")
///     .read_pipe_named("top_pages")
///     .append_datasource_named("events");
/// assert_eq!(request.scopes(), ["PIPES:READ:top_pages", "DATASOURCES:APPEND:events"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticTokenRequest {
    name: String,
    scopes: Vec<String>,
    /// The first resource name that cannot be a scope's (reported when the request is sent).
    bad_resource: Option<String>,
}

impl StaticTokenRequest {
    /// A token named `name` (letters, digits and `_` are safe everywhere), with no scopes yet.
    pub fn new(name: impl Into<String>) -> Self {
        StaticTokenRequest { name: name.into(), scopes: Vec::new(), bad_resource: None }
    }

    /// `PIPES:READ` on endpoint `E`: call it, with any parameters.
    pub fn read_pipe<E: Endpoint>(self) -> Self {
        self.read_pipe_named(E::NAME)
    }

    /// `DATASOURCES:READ` on datasource `D`: read every row of it.
    pub fn read_datasource<D: Datasource>(self) -> Self {
        self.read_datasource_named(D::NAME)
    }

    /// `DATASOURCES:APPEND` on datasource `D`: send rows to it (Events API, appends).
    pub fn append_datasource<D: Datasource>(self) -> Self {
        self.append_datasource_named(D::NAME)
    }

    /// `PIPES:READ` on a pipe given by name.
    pub fn read_pipe_named(self, pipe: impl AsRef<str>) -> Self {
        self.with_scope(ScopeKind::PipesRead, pipe.as_ref())
    }

    /// `DATASOURCES:READ` on a datasource given by name.
    pub fn read_datasource_named(self, datasource: impl AsRef<str>) -> Self {
        self.with_scope(ScopeKind::DatasourcesRead, datasource.as_ref())
    }

    /// `DATASOURCES:APPEND` on a datasource given by name.
    pub fn append_datasource_named(self, datasource: impl AsRef<str>) -> Self {
        self.with_scope(ScopeKind::DatasourcesAppend, datasource.as_ref())
    }

    /// The token's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scopes as the Token API takes them (`PIPES:READ:top_pages`), in the order they were added.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    fn with_scope(mut self, kind: ScopeKind, resource: &str) -> Self {
        // Tinybird's names have letters, digits and `_` only; anything else (a `:` above all) would change the scope's
        // meaning on the wire.
        if !tinybird_types::is_valid_name(resource) {
            self.bad_resource.get_or_insert_with(|| resource.to_owned());
            return self;
        }
        let scope = format!("{kind}:{resource}");
        if !self.scopes.contains(&scope) {
            self.scopes.push(scope);
        }
        self
    }
}

/// A token's name or id as one URL path segment: refused when it could name another route.
fn check_token_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().any(|c| c == '/' || c == '?' || c == '#' || c.is_control()) || name == ".." {
        return Err(Error::new(ErrorKind::BadRequest, format!("invalid token name {name:?}")));
    }
    Ok(())
}

impl Client {
    /// The workspace's static tokens (`GET /v0/tokens`), with their scopes. Needs an admin token.
    pub async fn tokens(&self) -> Result<Vec<StaticToken>> {
        #[derive(Deserialize)]
        struct List {
            tokens: Vec<StaticToken>,
        }
        let url = self.url(&["v0", "tokens"], []);
        let req = Request::new(Method::GET, url, RetryOn::Idempotent).timeout(self.timeouts().admin);
        let what = req.what.clone();
        let bytes = read_body(&what, self.send(req).await?).await?;
        let list: List = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(ErrorKind::Decode { column: Some("tokens".into()), row: None }, format!("{what}: {e}"))
        })?;
        Ok(list.tokens)
    }

    /// Gives a static token a new value (`POST /v0/tokens/{name}/refresh`, by name or id): the old value stops
    /// working at once. Returns the token with its new value. Needs an admin token.
    pub async fn refresh_token(&self, name: &str) -> Result<StaticToken> {
        check_token_name(name)?;
        let url = self.url(&["v0", "tokens", name, "refresh"], []);
        let req = Request::new(Method::POST, url, RetryOn::NotIdempotent).timeout(self.timeouts().admin);
        let what = req.what.clone();
        let bytes = read_body(&what, self.send(req).await?).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Decode { column: Some("token".into()), row: None },
                format!("{what}: the response has no token: {e}"),
            )
        })
    }

    /// Deletes a static token (`DELETE /v0/tokens/{name}`, by name or id): it stops working at once. Needs an admin
    /// token. A token declared in a datafile (`TOKEN name READ`) comes back, with a new value, on the next deployment
    /// that declares it.
    pub async fn delete_token(&self, name: &str) -> Result<()> {
        check_token_name(name)?;
        let url = self.url(&["v0", "tokens", name], []);
        let req = Request::new(Method::DELETE, url, RetryOn::NotIdempotent).timeout(self.timeouts().admin);
        let what = req.what.clone();
        read_body(&what, self.send(req).await?).await?;
        Ok(())
    }
}
