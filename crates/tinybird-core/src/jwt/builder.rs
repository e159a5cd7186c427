//! The JWT builder: name, expiry (a type-level requirement), scopes and rate limit; signing and the Token API request.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use super::{Jwt, JwtError, Scope, SigningKey};

/// Longest lifetime accepted without [`JwtBuilder::allow_long_ttl`]: 24 hours.
pub const MAX_TTL_WITHOUT_OPT_IN: Duration = Duration::from_secs(24 * 60 * 60);

/// `base64url({"alg":"HS256","typ":"JWT"})`: the header Tinybird's docs and PyJWT produce; fixed, so encoded once.
pub(crate) const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Builder state: no expiry yet, so the JWT cannot be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoExpiry;

/// Builder state: the expiry is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WithExpiry(pub(crate) Expiry);

/// When a JWT expires: a lifetime counted from the moment it is signed, or a fixed instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expiry {
    /// Expires this long after signing (each mint from the same builder gets a fresh expiry).
    In(Duration),
    /// Expires at this instant (second precision: sub-seconds are dropped).
    At(DateTime<Utc>),
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::WithExpiry {}
}

/// The builder states a JWT can be signed in: only once an expiry is set.
#[diagnostic::on_unimplemented(
    message = "this JWT has no expiry: Tinybird refuses JWTs without `exp`",
    label = "cannot sign a JWT without an expiry",
    note = "call `.expires_in(Duration)` or `.expires_at(DateTime<Utc>)` on the builder first"
)]
pub trait HasExpiry: sealed::Sealed {
    /// The expiry.
    fn expiry(&self) -> Expiry;
}

impl HasExpiry for WithExpiry {
    fn expiry(&self) -> Expiry {
        self.0
    }
}

/// Builds and signs a Tinybird JWT. Start with [`Jwt::builder`].
///
/// The name, one or more scopes and an expiry are required; a builder without an expiry has no usable `sign`
/// (it does not compile). Configuration mistakes are reported once, by [`sign`](Self::sign) or
/// [`token_api_request`](Self::token_api_request). A builder can be kept and signed many times: a lifetime given with
/// [`expires_in`](Self::expires_in) counts from each signing.
///
/// ```
/// use std::time::Duration;
/// use tinybird_core::jwt::{Jwt, Scope, SigningKey};
///
/// let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key")?;
/// let jwt = Jwt::builder("org_acme")
///     .scope(Scope::pipe_named("top_pages").fixed_param("org_id", "acme"))
///     .scope(Scope::datasource_read_named("events").filter_sql_unchecked("org_id = 'acme'"))
///     .rate_limit(10)
///     .expires_in(Duration::from_secs(3600))
///     .sign(&key)?;
/// let claims = tinybird_core::jwt::verify(jwt.expose(), &key).unwrap();
/// assert_eq!(claims.name, "org_acme");
/// # Ok::<(), tinybird_core::jwt::JwtError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a JWT builder does nothing until `.sign(&key)` (or the Token API) uses it"]
pub struct JwtBuilder<X = NoExpiry> {
    name: String,
    scopes: Vec<Scope>,
    rps: Option<u32>,
    allow_long_ttl: bool,
    expiry: X,
    /// The expiry-independent part of the payload, rendered on first use and reused by every later mint.
    prepared: OnceLock<Result<Arc<Prepared>, JwtError>>,
}

/// What does not change from one mint to the next: validated, and rendered as JSON once.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) name: Arc<str>,
    /// `name` as a JSON string literal.
    name_json: String,
    /// `,"scopes":[…],"limits":{…}}`: the end of both the JWT payload and the Token API body.
    tail: String,
    /// `name_json + tail`: what a cached token must match.
    pub(crate) content: Arc<str>,
    pub(crate) content_hash: u64,
}

impl Jwt {
    /// Starts a JWT named `name`. The name is the rate-limit bucket (Tinybird's JWT docs, rate limits) and shows in Tinybird's stats: give
    /// each tenant its own, e.g. `format!("org_{org_id}")`.
    pub fn builder(name: impl Into<String>) -> JwtBuilder<NoExpiry> {
        JwtBuilder {
            name: name.into(),
            scopes: Vec::new(),
            rps: None,
            allow_long_ttl: false,
            expiry: NoExpiry,
            prepared: OnceLock::new(),
        }
    }
}

impl<X> JwtBuilder<X> {
    fn with_expiry(self, expiry: Expiry) -> JwtBuilder<WithExpiry> {
        JwtBuilder {
            name: self.name,
            scopes: self.scopes,
            rps: self.rps,
            allow_long_ttl: self.allow_long_ttl,
            expiry: WithExpiry(expiry),
            prepared: self.prepared,
        }
    }

    /// Expires `ttl` after signing, rounded up to whole seconds. Up to 24 h unless [`allow_long_ttl`](Self::allow_long_ttl).
    pub fn expires_in(self, ttl: Duration) -> JwtBuilder<WithExpiry> {
        self.with_expiry(Expiry::In(ttl))
    }

    /// Expires at `at` (whole seconds). At most 24 h from signing unless [`allow_long_ttl`](Self::allow_long_ttl).
    pub fn expires_at(self, at: DateTime<Utc>) -> JwtBuilder<WithExpiry> {
        self.with_expiry(Expiry::At(at))
    }

    /// Adds a scope: a typed one (`Scope::pipe::<E>()…`, `Scope::datasource_read::<D>()…`) or a named one.
    pub fn scope(mut self, scope: impl Into<Scope>) -> Self {
        self.scopes.push(scope.into());
        self.prepared = OnceLock::new();
        self
    }

    /// Adds several scopes.
    pub fn scopes<S: Into<Scope>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self.prepared = OnceLock::new();
        self
    }

    /// Limits requests made with this JWT's name to `rps` per second (`limits.rps`, Tinybird's JWT docs, rate limits); at least 1.
    pub fn rate_limit(mut self, rps: u32) -> Self {
        self.rps = Some(rps);
        self.prepared = OnceLock::new();
        self
    }

    /// Accepts a lifetime above 24 hours. Long-lived JWTs cannot be revoked short of refreshing the admin token, so
    /// this is an explicit opt-in.
    pub fn allow_long_ttl(mut self) -> Self {
        self.allow_long_ttl = true;
        self
    }

    /// The JWT's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scopes added so far.
    pub fn scope_list(&self) -> &[Scope] {
        &self.scopes
    }

    /// The rate limit, when set.
    pub fn rps(&self) -> Option<u32> {
        self.rps
    }

    pub(crate) fn prepared(&self) -> Result<Arc<Prepared>, JwtError> {
        self.prepared_ref().cloned().map_err(Clone::clone)
    }

    /// The prepared payload parts without touching reference counts (the token cache's hit path).
    pub(crate) fn prepared_ref(&self) -> Result<&Arc<Prepared>, &JwtError> {
        self.prepared.get_or_init(|| self.prepare().map(Arc::new)).as_ref()
    }

    fn prepare(&self) -> Result<Prepared, JwtError> {
        if self.name.trim().is_empty() {
            return Err(JwtError::EmptyName);
        }
        if self.scopes.is_empty() {
            return Err(JwtError::NoScopes { name: self.name.clone() });
        }
        if self.rps == Some(0) {
            return Err(JwtError::ZeroRateLimit { name: self.name.clone() });
        }
        for (i, scope) in self.scopes.iter().enumerate() {
            scope.check()?;
            if self.scopes[..i].iter().any(|s| s.kind() == scope.kind() && s.resource() == scope.resource()) {
                return Err(JwtError::DuplicateScope { kind: scope.kind(), resource: scope.resource().to_owned() });
            }
        }
        let json = |e: serde_json::Error| JwtError::Signing { reason: e.to_string() };
        let name_json = serde_json::to_string(&self.name).map_err(json)?;
        let mut tail = String::with_capacity(64 + 96 * self.scopes.len());
        tail.push_str(r#","scopes":"#);
        tail.push_str(&serde_json::to_string(&self.scopes).map_err(json)?);
        if let Some(rps) = self.rps {
            let _ = write!(tail, r#","limits":{{"rps":{rps}}}"#);
        }
        tail.push('}');
        let content: Arc<str> = format!("{name_json}{tail}").into();
        let content_hash = {
            use std::hash::{DefaultHasher, Hash, Hasher};
            let mut h = DefaultHasher::new();
            content.hash(&mut h);
            h.finish()
        };
        Ok(Prepared { name: self.name.as_str().into(), name_json, tail, content, content_hash })
    }
}

// `where X: HasExpiry` on each method rather than on the impl, so that calling one without an expiry reports
// `HasExpiry`'s own message instead of a generic "method exists but its trait bounds were not satisfied".
impl<X> JwtBuilder<X> {
    /// The expiry as set on the builder.
    pub fn expiry(&self) -> Expiry
    where
        X: HasExpiry,
    {
        self.expiry.expiry()
    }

    pub(crate) fn allows_long_ttl(&self) -> bool {
        self.allow_long_ttl
    }

    /// Signs the JWT locally (HS256, no network) with the workspace signing key.
    ///
    /// The payload is exactly `{"workspace_id","name","exp","scopes","limits"?}` (Tinybird's JWT payload), compact JSON, under
    /// the header `{"alg":"HS256","typ":"JWT"}`. Fails on an empty name, no scope, a zero rate limit, an expiry that
    /// is not in the future, a lifetime above 24 h without [`allow_long_ttl`](Self::allow_long_ttl), or a mistake in
    /// a scope.
    pub fn sign(&self, key: &SigningKey) -> Result<Jwt, JwtError>
    where
        X: HasExpiry,
    {
        let prepared = self.prepared()?;
        let exp = self.resolve_exp(Utc::now().timestamp())?;

        let mut payload = String::with_capacity(64 + key.workspace_id_json().len() + prepared.tail.len());
        payload.push_str(r#"{"workspace_id":"#);
        payload.push_str(key.workspace_id_json());
        payload.push_str(r#","name":"#);
        payload.push_str(&prepared.name_json);
        let _ = write!(payload, r#","exp":{exp}"#);
        payload.push_str(&prepared.tail);

        let mut token = String::with_capacity(HEADER_B64.len() + 2 + payload.len() * 4 / 3 + 48);
        token.push_str(HEADER_B64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload.as_bytes(), &mut token);
        let signature = jsonwebtoken::crypto::sign(token.as_bytes(), key.encoding(), jsonwebtoken::Algorithm::HS256)
            .map_err(|e| JwtError::Signing { reason: e.to_string() })?;
        token.push('.');
        token.push_str(&signature);
        Ok(Jwt::new(token, prepared.name.clone(), exp))
    }

    /// The request that asks Tinybird's Token API to mint the same JWT server-side (Tinybird's Token API):
    /// `POST /v0/tokens/?name=…&expiration_time=…` with the JSON body `{"name","scopes","limits"?}`.
    ///
    /// Validated like [`sign`](Self::sign); the expiry is resolved now. The client sends it; the token in the answer
    /// becomes a [`Jwt`] with [`TokenApiRequest::into_jwt`].
    pub fn token_api_request(&self) -> Result<TokenApiRequest, JwtError>
    where
        X: HasExpiry,
    {
        let prepared = self.prepared()?;
        let exp = self.resolve_exp(Utc::now().timestamp())?;
        let mut body = String::with_capacity(16 + prepared.content.len());
        body.push_str(r#"{"name":"#);
        body.push_str(&prepared.content);
        Ok(TokenApiRequest {
            query: [("name", self.name.clone()), ("expiration_time", exp.to_string())],
            body,
            name: prepared.name.clone(),
            exp,
        })
    }

    /// The `exp` to use when signing at `now` (Unix seconds), with the lifetime rules applied.
    pub(crate) fn resolve_exp(&self, now: i64) -> Result<i64, JwtError>
    where
        X: HasExpiry,
    {
        let out_of_range = || JwtError::ExpiryOutOfRange { name: self.name.clone() };
        let exp = match self.expiry() {
            Expiry::In(ttl) => {
                // Rounded up so that a sub-second TTL is not silently turned into an already-expired token.
                let secs = ttl.as_secs().checked_add(u64::from(ttl.subsec_nanos() > 0)).ok_or_else(out_of_range)?;
                i64::try_from(secs).ok().and_then(|s| now.checked_add(s)).ok_or_else(out_of_range)?
            }
            Expiry::At(at) => at.timestamp(),
        };
        // Beyond year 9999 nothing downstream (chrono, Tinybird, PyJWT) can represent the instant.
        if exp > 253_402_300_799 {
            return Err(out_of_range());
        }
        if exp <= now {
            return Err(JwtError::ExpiryNotInFuture { name: self.name.clone(), exp, now });
        }
        let ttl_secs = exp - now;
        if !self.allow_long_ttl && ttl_secs > MAX_TTL_WITHOUT_OPT_IN.as_secs() as i64 {
            return Err(JwtError::TtlTooLong { name: self.name.clone(), ttl_secs });
        }
        Ok(exp)
    }
}

/// A Token API request for a JWT (Tinybird's Token API), built by [`JwtBuilder::token_api_request`].
///
/// Send `POST {host}`[`PATH`](Self::PATH)`?`[`query_pairs`](Self::query_pairs) with `Content-Type: application/json`
/// and [`body`](Self::body), authenticated with an admin (or TOKENS-scope) token. The name travels in the query and
/// the body, as Tinybird's CLI and TypeScript SDK each send it in one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenApiRequest {
    query: [(&'static str, String); 2],
    body: String,
    name: Arc<str>,
    exp: i64,
}

impl TokenApiRequest {
    /// The Token API path.
    pub const PATH: &'static str = "/v0/tokens/";

    /// `name` and `expiration_time` (Unix seconds), to URL-encode into the query string.
    pub fn query_pairs(&self) -> &[(&'static str, String)] {
        &self.query
    }

    /// The JSON body: `{"name":…,"scopes":[…],"limits":{"rps":…}}` (`limits` only with a rate limit).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The JWT's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The requested expiry, Unix seconds.
    pub fn expiration_time(&self) -> i64 {
        self.exp
    }

    /// Wraps the token the Token API answered (`{"token": "…"}`) as a [`Jwt`] carrying this request's name and expiry.
    pub fn into_jwt(self, token: impl Into<String>) -> Jwt {
        Jwt::new(token.into(), self.name, self.exp)
    }
}
