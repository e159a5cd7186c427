//! JWTs for Tinybird: typed scopes, local HS256 signing, the Token API request, verification and a token cache.
//!
//! A backend mints short-lived JWTs so browsers can call Tinybird endpoints directly, each JWT limited to some
//! resources, with `fixed_params` pinning the tenant (row-level security) and an optional rate limit (Tinybird's JWT docs).
//!
//! ```
//! use std::time::Duration;
//! use tinybird_core::jwt::{self, Jwt, Scope, SigningKey};
//!
//! let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key")?;
//! // With declared resources: `Scope::pipe::<UserAnalytics>().fixed(|p| p.user_id = Some(42))`.
//! let builder = Jwt::builder("user_42")
//!     .scope(Scope::pipe_named("user_analytics").fixed_param("user_id", 42))
//!     .scope(Scope::datasource_append_named("events"))
//!     .rate_limit(10)
//!     .expires_in(Duration::from_secs(15 * 60));
//! let token = builder.sign(&key)?;
//! let claims = jwt::verify(token.expose(), &key).expect("a token minted here verifies here");
//! assert_eq!(claims.scopes[0].fixed_params.as_ref().unwrap()["user_id"], 42);
//! assert!(!format!("{token:?}").contains(token.expose()));
//! # Ok::<(), jwt::JwtError>(())
//! ```
//!
//! A builder without an expiry cannot be signed: it does not compile.
//!
//! ```compile_fail
//! # use tinybird_core::jwt::{Jwt, Scope, SigningKey};
//! # let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key").unwrap();
//! let token = Jwt::builder("user_42").scope(Scope::pipe_named("user_analytics")).sign(&key);
//! ```

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

mod builder;
mod cache;
mod error;
mod key;
mod scope;
mod verify;

pub use builder::{Expiry, HasExpiry, JwtBuilder, MAX_TTL_WITHOUT_OPT_IN, NoExpiry, TokenApiRequest, WithExpiry};
pub use cache::{JwtCache, JwtCacheBuilder};
pub use error::{JwtError, VerifyError};
pub use key::SigningKey;
pub use scope::{DatasourceReadScope, NamedDatasourceReadScope, NamedPipeScope, PipeScope, Scope, ScopeKind};
pub use verify::{ClaimScope, Claims, Limits, verify};

/// A minted JWT: the token text, its name and its expiry.
///
/// The token is a bearer credential: `Debug` redacts it and there is no `Display`; read it with
/// [`expose`](Self::expose) where it is handed over (an HTTP response, an `Authorization` header). Cloning is cheap
/// (one reference count), which is what a token cache hit returns.
#[derive(Clone)]
pub struct Jwt {
    inner: Arc<JwtInner>,
}

#[derive(PartialEq, Eq)]
struct JwtInner {
    token: String,
    name: Arc<str>,
    exp: i64,
}

impl Jwt {
    pub(crate) fn new(token: String, name: Arc<str>, exp: i64) -> Jwt {
        Jwt { inner: Arc::new(JwtInner { token, name, exp }) }
    }

    /// The token text, to hand to the browser or put in `Authorization: Bearer …`.
    pub fn expose(&self) -> &str {
        &self.inner.token
    }

    /// The token text; the same as [`expose`](Self::expose).
    pub fn as_str(&self) -> &str {
        &self.inner.token
    }

    /// The JWT's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// When the token expires.
    pub fn exp(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.inner.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// When the token expires, Unix seconds (the payload's `exp`).
    pub fn exp_unix(&self) -> i64 {
        self.inner.exp
    }
}

impl PartialEq for Jwt {
    fn eq(&self, other: &Jwt) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner == other.inner
    }
}

impl Eq for Jwt {}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("name", &self.inner.name)
            .field("exp", &self.inner.exp)
            .field("token", &"<redacted>")
            .finish()
    }
}
