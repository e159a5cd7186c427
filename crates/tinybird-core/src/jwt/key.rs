//! The workspace signing key: the workspace admin token, used as the HMAC secret (Tinybird's JWT docs, signing).

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};

use super::JwtError;

/// The key JWTs are signed with: the **workspace** admin token (`p.eyJ…`), exactly as Tinybird shows it.
///
/// Tinybird verifies a JWT with the admin token of the workspace named in its `workspace_id`, so the key also knows
/// that id: read from the token's own payload (`{"u": "<workspace id>", …}`) or given explicitly.
///
/// The key never appears in `Debug` output or errors, and has no `Display`.
///
/// ```
/// use tinybird_core::jwt::SigningKey;
///
/// let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key")?;
/// assert_eq!(key.workspace_id(), "example");
/// assert!(!format!("{key:?}").contains("admin-token"));
///
/// // Empty and placeholder keys are refused with a clear error.
/// assert!(SigningKey::from_admin_token("<your-signing-key>").is_err());
/// # Ok::<(), tinybird_core::jwt::JwtError>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<KeyInner>,
}

struct KeyInner {
    workspace_id: Box<str>,
    /// `workspace_id` as a JSON string literal, escaped once here rather than at every mint.
    workspace_id_json: Box<str>,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    /// A key from the workspace admin token, reading the workspace id from the token's payload.
    ///
    /// Fails on an empty or placeholder key, on whitespace, and on text that is not `p.<payload>.<signature>` with a
    /// payload holding the workspace id (`"u"`).
    pub fn from_admin_token(admin_token: impl AsRef<str>) -> Result<Self, JwtError> {
        let token = admin_token.as_ref();
        check_secret(token)?;
        let workspace_id = workspace_id_of(token)?;
        Self::build(token, workspace_id)
    }

    /// A key from the workspace admin token with the workspace id given explicitly.
    ///
    /// The secret is used as given; when it starts with `p.` it must be a whole admin token (`p.<payload>.<signature>`).
    pub fn with_workspace_id(admin_token: impl AsRef<str>, workspace_id: impl Into<String>) -> Result<Self, JwtError> {
        let token = admin_token.as_ref();
        check_secret(token)?;
        if token.starts_with("p.") {
            split_admin_token(token)?;
        }
        let workspace_id = workspace_id.into();
        if workspace_id.trim().is_empty() {
            return Err(JwtError::EmptyWorkspaceId);
        }
        Self::build(token, workspace_id)
    }

    fn build(secret: &str, workspace_id: String) -> Result<Self, JwtError> {
        let workspace_id_json = serde_json::to_string(&workspace_id)
            .map_err(|e| JwtError::Signing { reason: e.to_string() })?
            .into_boxed_str();
        Ok(SigningKey {
            inner: Arc::new(KeyInner {
                workspace_id: workspace_id.into_boxed_str(),
                workspace_id_json,
                encoding: EncodingKey::from_secret(secret.as_bytes()),
                decoding: DecodingKey::from_secret(secret.as_bytes()),
            }),
        })
    }

    /// The workspace the JWTs are for (the payload's `workspace_id`).
    pub fn workspace_id(&self) -> &str {
        &self.inner.workspace_id
    }

    pub(crate) fn workspace_id_json(&self) -> &str {
        &self.inner.workspace_id_json
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.inner.encoding
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.inner.decoding
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("workspace_id", &self.workspace_id()).field("secret", &"<redacted>").finish()
    }
}

/// Refuses keys that cannot be a real admin token: empty, whitespace, placeholders from docs and templates.
fn check_secret(secret: &str) -> Result<(), JwtError> {
    if secret.trim().is_empty() {
        return Err(JwtError::EmptySigningKey);
    }
    if secret.chars().any(char::is_whitespace) {
        return Err(JwtError::SigningKeyWhitespace);
    }
    if let Some(hint) = placeholder_hint(secret) {
        return Err(JwtError::PlaceholderSigningKey { hint });
    }
    Ok(())
}

fn placeholder_hint(secret: &str) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    if secret.starts_with('<') && secret.ends_with('>') {
        return Some("`<…>`");
    }
    if secret.starts_with("${") || secret.starts_with("$(") || secret.starts_with("{{") {
        return Some("an unexpanded variable");
    }
    if lower.contains("your") && (lower.contains("key") || lower.contains("token")) {
        return Some("`your…key`");
    }
    const WORDS: &[&str] = &[
        "changeme",
        "change-me",
        "change_me",
        "placeholder",
        "undefined",
        "null",
        "none",
        "todo",
        "xxx",
        "secret",
        "token",
        "key",
        "admin_token",
        "signing_key",
        "tinybird_signing_key",
        "tinybird_token",
        "...",
        "…",
    ];
    if WORDS.contains(&lower.as_str()) || (lower.len() >= 3 && lower.chars().all(|c| c == 'x' || c == '*')) {
        return Some("a template word");
    }
    None
}

/// `p.<payload>.<signature>` → (payload, signature), each non-empty.
fn split_admin_token(token: &str) -> Result<(&str, &str), JwtError> {
    let Some(rest) = token.strip_prefix("p.") else {
        return Err(JwtError::MalformedAdminToken { reason: "it does not start with `p.`" });
    };
    let mut parts = rest.split('.');
    let (Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::MalformedAdminToken { reason: "it does not have three `.`-separated parts" });
    };
    if payload.is_empty() {
        return Err(JwtError::MalformedAdminToken { reason: "its payload part is empty" });
    }
    if signature.is_empty() {
        return Err(JwtError::MalformedAdminToken { reason: "its signature part is empty" });
    }
    Ok((payload, signature))
}

fn workspace_id_of(token: &str) -> Result<String, JwtError> {
    let (payload, _) = split_admin_token(token)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| JwtError::MalformedAdminToken { reason: "its payload is not base64url" })?;
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| JwtError::MalformedAdminToken { reason: "its payload is not JSON" })?;
    match json.get("u") {
        Some(serde_json::Value::String(id)) if !id.trim().is_empty() => Ok(id.clone()),
        Some(serde_json::Value::String(_)) => Err(JwtError::EmptyWorkspaceId),
        _ => Err(JwtError::MalformedAdminToken {
            reason: "its payload has no workspace id (`u`); use `SigningKey::with_workspace_id`",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key";

    #[test]
    fn reads_the_workspace_id_from_the_admin_token() {
        assert_eq!(SigningKey::from_admin_token(KEY).unwrap().workspace_id(), "example");
        let padded = format!("p.{}=.sig", URL_SAFE_NO_PAD.encode(br#"{"u":"ws-1","id":"x","host":"eu"}"#));
        assert_eq!(SigningKey::from_admin_token(padded).unwrap().workspace_id(), "ws-1");
    }

    #[test]
    fn refuses_empty_placeholder_and_malformed_keys() {
        use JwtError::*;
        type Check = fn(&JwtError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, EmptySigningKey)),
            ("   ", |e| matches!(e, EmptySigningKey)),
            ("<your-signing-key>", |e| matches!(e, PlaceholderSigningKey { .. })),
            ("${TINYBIRD_SIGNING_KEY}", |e| matches!(e, PlaceholderSigningKey { .. })),
            ("your_admin_token_here", |e| matches!(e, PlaceholderSigningKey { .. })),
            ("changeme", |e| matches!(e, PlaceholderSigningKey { .. })),
            ("xxxxxxxx", |e| matches!(e, PlaceholderSigningKey { .. })),
            ("p.", |e| matches!(e, MalformedAdminToken { .. })),
            ("p..sig", |e| matches!(e, MalformedAdminToken { .. })),
            ("p.eyJ1IjogImV4YW1wbGUifQ", |e| matches!(e, MalformedAdminToken { .. })),
            ("p.eyJ1IjogImV4YW1wbGUifQ.", |e| matches!(e, MalformedAdminToken { .. })),
            ("p.!!!.sig", |e| matches!(e, MalformedAdminToken { .. })),
            ("p.bm90IGpzb24.sig", |e| matches!(e, MalformedAdminToken { .. })),
            ("p.e30.sig", |e| matches!(e, MalformedAdminToken { .. })),
            ("not-an-admin-token", |e| matches!(e, MalformedAdminToken { .. })),
        ];
        for (key, check) in cases {
            let err = SigningKey::from_admin_token(key).unwrap_err();
            assert!(check(&err), "{key:?} gave {err:?}");
        }
        let err = SigningKey::from_admin_token(format!("{KEY}\n")).unwrap_err();
        assert_eq!(err, SigningKeyWhitespace);
        assert!(SigningKey::with_workspace_id("p..x", "ws").unwrap_err().to_string().contains("payload"));
        assert_eq!(SigningKey::with_workspace_id("a-real-secret", " ").unwrap_err(), EmptyWorkspaceId);
        assert_eq!(SigningKey::with_workspace_id("a-real-secret", "ws").unwrap().workspace_id(), "ws");
    }

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let key = SigningKey::from_admin_token(KEY).unwrap();
        let debug = format!("{key:?}");
        assert!(!debug.contains("admin-token-used"), "{debug}");
        assert!(debug.contains("<redacted>"));
        for bad in ["p.c2VjcmV0LXBheWxvYWQ.secret-sig", "p.secretpart", "secret value"] {
            let msg = SigningKey::from_admin_token(bad).unwrap_err().to_string();
            assert!(!msg.contains("secret"), "{msg}");
        }
    }
}
