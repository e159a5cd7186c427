//! What can go wrong when minting (`JwtError`) and when verifying (`VerifyError`) a JWT.
//!
//! Neither error ever carries a signing key, an admin token or a JWT: only names, numbers and reasons.

use super::scope::ScopeKind;

/// Why a JWT could not be minted, or why a signing key or token cache was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The signing key is empty or only whitespace.
    #[error("the JWT signing key is empty: set it to the workspace admin token (`p.eyJ…`)")]
    EmptySigningKey,
    /// The signing key is a placeholder such as `<your-signing-key>`.
    #[error("the JWT signing key looks like a placeholder ({hint}): set it to the workspace admin token (`p.eyJ…`)")]
    PlaceholderSigningKey {
        /// Which placeholder pattern matched (never the key itself).
        hint: &'static str,
    },
    /// The signing key has leading or trailing whitespace, typically a newline read from a file.
    #[error(
        "the JWT signing key has leading or trailing whitespace (a newline from an env file?); \
         Tinybird signs with the exact token text, so trim it first"
    )]
    SigningKeyWhitespace,
    /// The signing key is not a well-formed workspace admin token `p.<payload>.<signature>`.
    #[error("the JWT signing key is not a workspace admin token (`p.<payload>.<signature>`): {reason}")]
    MalformedAdminToken {
        /// What is wrong with it (never the token itself).
        reason: &'static str,
    },
    /// The workspace id, given or read from the admin token, is empty.
    #[error("the workspace id is empty")]
    EmptyWorkspaceId,
    /// The JWT name is empty or only whitespace.
    #[error("the JWT name is empty: Tinybird needs a name (it is the rate-limit bucket), e.g. `tenant_42`")]
    EmptyName,
    /// The builder has no scope.
    #[error("JWT `{name}` has no scope: add at least one with `.scope(…)`")]
    NoScopes {
        /// The JWT's name.
        name: String,
    },
    /// `rate_limit(0)`.
    #[error("JWT `{name}`: the rate limit must be at least 1 request per second (0 would mean no limit)")]
    ZeroRateLimit {
        /// The JWT's name.
        name: String,
    },
    /// The lifetime is above 24 hours and `.allow_long_ttl()` was not called.
    #[error(
        "JWT `{name}` would live {ttl_secs} s, more than 24 h; short-lived tokens limit the damage of a leak, \
         call `.allow_long_ttl()` if this is intended"
    )]
    TtlTooLong {
        /// The JWT's name.
        name: String,
        /// The requested lifetime in seconds.
        ttl_secs: i64,
    },
    /// The expiry is now or in the past (or a zero TTL).
    #[error("JWT `{name}` would already be expired: exp {exp} is not after now ({now})")]
    ExpiryNotInFuture {
        /// The JWT's name.
        name: String,
        /// The requested expiry, Unix seconds.
        exp: i64,
        /// The current time, Unix seconds.
        now: i64,
    },
    /// The expiry does not fit a Unix timestamp.
    #[error("JWT `{name}`: the expiry is out of range")]
    ExpiryOutOfRange {
        /// The JWT's name.
        name: String,
    },
    /// A scope names no resource.
    #[error("a {kind} scope has an empty resource name")]
    EmptyResource {
        /// The scope's type.
        kind: ScopeKind,
    },
    /// Untyped fixed params that are not a JSON object.
    #[error("the fixed params of scope `{resource}` must be a JSON object, not {found}")]
    FixedParamsNotObject {
        /// The pipe.
        resource: String,
        /// The JSON type that was given.
        found: &'static str,
    },
    /// A fixed param whose value Tinybird cannot use (null, an object, a nested array).
    #[error(
        "fixed param `{param}` of scope `{resource}` is {found}: Tinybird takes strings, numbers, booleans or arrays of them"
    )]
    FixedParamValue {
        /// The pipe.
        resource: String,
        /// The parameter.
        param: String,
        /// What was given.
        found: &'static str,
    },
    /// A fixed param with an empty name.
    #[error("scope `{resource}` fixes a parameter with an empty name")]
    EmptyFixedParamName {
        /// The pipe.
        resource: String,
    },
    /// A raw filter that is empty.
    #[error("the filter of scope `{resource}` is empty: omit it to give access to every row")]
    EmptyFilter {
        /// The datasource.
        resource: String,
    },
    /// Two scopes of the same type on the same resource: which fixed params or filter would apply is ambiguous.
    #[error("JWT has two {kind} scopes on `{resource}`: merge them into one")]
    DuplicateScope {
        /// The scope's type.
        kind: ScopeKind,
        /// The resource.
        resource: String,
    },
    /// The HMAC signature could not be computed (a crypto backend failure, not a user error).
    #[error("signing the JWT failed: {reason}")]
    Signing {
        /// The backend's message.
        reason: String,
    },
    /// A token cache built with capacity 0.
    #[error("a JWT cache needs a capacity of at least 1")]
    ZeroCacheCapacity,
    /// A refresh share outside `(0, 1]`.
    #[error("the refresh share must be in (0, 1], got {share}")]
    InvalidRefreshShare {
        /// The share that was given.
        share: f64,
    },
}

/// Why a JWT was refused by [`verify`](super::verify).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not three base64url segments with a JSON header and payload.
    #[error("malformed JWT: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The header names an algorithm other than HS256 (including `none`).
    #[error("JWT algorithm `{alg}` is refused: Tinybird JWTs are HS256")]
    UnsupportedAlgorithm {
        /// The header's `alg` (cut to 32 characters).
        alg: String,
    },
    /// The signature does not match: a tampered token, or one signed with another key.
    #[error("JWT signature does not match (tampered, or signed with another key)")]
    BadSignature,
    /// The payload has no `exp`.
    #[error("JWT has no `exp` claim: Tinybird refuses JWTs without an expiry")]
    MissingExp,
    /// `exp` is not a non-negative integer.
    #[error("JWT `exp` claim is not a Unix timestamp in seconds")]
    InvalidExp,
    /// `exp` is in the past.
    #[error("JWT expired at {exp} (Unix seconds)")]
    Expired {
        /// The token's `exp`.
        exp: i64,
    },
    /// Signed correctly, but the payload is not a Tinybird JWT payload.
    #[error("JWT payload is not a Tinybird JWT payload: {reason}")]
    InvalidClaims {
        /// What is wrong.
        reason: String,
    },
    /// Signed with this workspace's key but naming another workspace.
    #[error("JWT is for workspace `{found}`, not `{expected}`")]
    WorkspaceMismatch {
        /// The key's workspace.
        expected: String,
        /// The token's `workspace_id`.
        found: String,
    },
}
