//! Verifying a JWT as Tinybird does (Tinybird's JWT docs): HS256 only, a valid signature, an `exp` in the future.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ScopeKind, SigningKey, VerifyError};

/// The payload of a verified Tinybird JWT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Claims {
    /// The workspace the token is for.
    pub workspace_id: String,
    /// The token's name (the rate-limit bucket).
    pub name: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// What the token may access.
    pub scopes: Vec<ClaimScope>,
    /// The rate limit, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// One scope of a verified JWT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClaimScope {
    /// The scope's type.
    #[serde(rename = "type")]
    pub kind: ScopeKind,
    /// The pipe or datasource name (or id).
    pub resource: String,
    /// Pinned endpoint parameters (`PIPES:READ`), with their JSON types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_params: Option<Map<String, Value>>,
    /// Row filter, a SQL condition (`DATASOURCES:READ`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// The `limits` object of a JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// Requests per second for this token's name; `None` or `<= 0` means no limit (Tinybird's JWT docs, payload).
    #[serde(default)]
    pub rps: Option<i64>,
}

impl Claims {
    /// The scope of type `kind` on `resource`, if the token has one.
    pub fn scope(&self, kind: ScopeKind, resource: &str) -> Option<&ClaimScope> {
        self.scopes.iter().find(|s| s.kind == kind && s.resource == resource)
    }

    /// The effective rate limit: `limits.rps` when it is at least 1 (`rps <= 0` means no limit, as Tinybird's JWT docs say).
    pub fn rps(&self) -> Option<u64> {
        self.limits.and_then(|l| l.rps).and_then(|rps| u64::try_from(rps).ok()).filter(|&rps| rps > 0)
    }
}

/// Verifies a JWT with the workspace signing key and returns its claims.
///
/// Refused: anything but three base64url segments; an `alg` other than `HS256` (including `none`); a signature that
/// does not match (tampered, or another key); a missing, non-integer or past `exp` (no leeway, as Tinybird); a
/// payload that is not a Tinybird JWT payload; a `workspace_id` other than the key's.
///
/// ```
/// use tinybird_core::jwt::{verify, SigningKey, VerifyError};
///
/// // A test vector: its workspace id is not the one in the key's payload, so it is given explicitly.
/// let key = SigningKey::with_workspace_id(
///     "p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key",
///     "00000000-0000-0000-0000-000000000001",
/// ).unwrap();
/// let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ3b3Jrc3BhY2VfaWQiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDEiLCJuYW1lIjoiZnJvbnRlbmRfand0IiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZXMiOlt7InR5cGUiOiJQSVBFUzpSRUFEIiwicmVzb3VyY2UiOiJ0b3BfcGFnZXMiLCJmaXhlZF9wYXJhbXMiOnsib3JnX2lkIjoiYWNtZSJ9fV0sImxpbWl0cyI6eyJycHMiOjEwfX0.AgMnvPopLuP3P5aSCiJ83yoGdhuQMQGgtmNU-NwwAy4";
/// let claims = verify(token, &key).unwrap();
/// assert_eq!(claims.name, "frontend_jwt");
/// assert_eq!(claims.rps(), Some(10));
/// assert!(verify("not.a.jwt", &key).unwrap_err().to_string().starts_with("malformed"));
/// ```
pub fn verify(token: &str, key: &SigningKey) -> Result<Claims, VerifyError> {
    check_header(token)?;

    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);

    // Decoded as a JSON object first so that `exp` is checked by the validator before the claims' own shape.
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key.decoding(), &validation)
        .map_err(|e| map_error(e, token))?;
    let claims: Claims = serde_json::from_value(Value::Object(data.claims))
        .map_err(|e| VerifyError::InvalidClaims { reason: e.to_string() })?;
    if claims.workspace_id != key.workspace_id() {
        return Err(VerifyError::WorkspaceMismatch {
            expected: key.workspace_id().to_owned(),
            found: claims.workspace_id,
        });
    }
    Ok(claims)
}

/// Reads the header ourselves so that `alg: none` and other algorithms get a precise error, not a parse error.
fn check_header(token: &str) -> Result<(), VerifyError> {
    let malformed = |reason: &str| VerifyError::Malformed { reason: reason.to_owned() };
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a JWT has three `.`-separated parts"));
    };
    if header.is_empty() || payload.is_empty() {
        return Err(malformed("empty header or payload"));
    }
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| malformed("the header is not base64url"))?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| malformed("the header is not JSON"))?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        Some(Value::String(alg)) => {
            return Err(VerifyError::UnsupportedAlgorithm { alg: alg.chars().take(32).collect() });
        }
        _ => return Err(malformed("the header has no `alg`")),
    }
    if signature.is_empty() {
        return Err(VerifyError::BadSignature);
    }
    Ok(())
}

fn map_error(e: jsonwebtoken::errors::Error, token: &str) -> VerifyError {
    match e.kind() {
        ErrorKind::InvalidSignature => VerifyError::BadSignature,
        ErrorKind::ExpiredSignature => VerifyError::Expired { exp: payload_exp(token).unwrap_or_default() },
        // The validator also calls an `exp` that is present but not an integer "missing".
        ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => match payload_field(token, "exp") {
            Some(_) => VerifyError::InvalidExp,
            None => VerifyError::MissingExp,
        },
        ErrorKind::InvalidClaimFormat(claim) if claim == "exp" => VerifyError::InvalidExp,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
            VerifyError::UnsupportedAlgorithm { alg: "unknown".to_owned() }
        }
        ErrorKind::Base64(_) => VerifyError::Malformed { reason: "a part is not base64url".to_owned() },
        ErrorKind::Json(err) => VerifyError::Malformed { reason: format!("not JSON: {err}") },
        ErrorKind::Utf8(_) => VerifyError::Malformed { reason: "not UTF-8".to_owned() },
        ErrorKind::InvalidToken => VerifyError::Malformed { reason: "not a JWT".to_owned() },
        other => VerifyError::Malformed { reason: format!("{other:?}") },
    }
}

/// The `exp` of a token whose signature was already checked, for the error message.
fn payload_exp(token: &str) -> Option<i64> {
    payload_field(token, "exp")?.as_i64()
}

/// A field of the payload of a token whose signature was already checked.
fn payload_field(token: &str, field: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?.get_mut(field).map(Value::take)
}
