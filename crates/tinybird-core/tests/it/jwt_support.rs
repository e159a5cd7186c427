//! Shared by the `jwt_*` integration tests: the test vector's key and hand-written resource declarations.
#![allow(dead_code)]

include!("jwt_decls.rs");

use tinybird_core::jwt::SigningKey;

/// The test vector's signing key (an admin token used as the HMAC secret, as Tinybird signs JWTs).
pub(crate) const ADMIN_TOKEN: &str = "p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key";
/// The test vector's workspace id.
pub(crate) const WORKSPACE_ID: &str = "00000000-0000-0000-0000-000000000001";
/// The test vector: a JWT (HS256) over [`SPEC_PAYLOAD`] with [`ADMIN_TOKEN`].
pub(crate) const SPEC_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ3b3Jrc3BhY2VfaWQiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDEiLCJuYW1lIjoiZnJvbnRlbmRfand0IiwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZXMiOlt7InR5cGUiOiJQSVBFUzpSRUFEIiwicmVzb3VyY2UiOiJ0b3BfcGFnZXMiLCJmaXhlZF9wYXJhbXMiOnsib3JnX2lkIjoiYWNtZSJ9fV0sImxpbWl0cyI6eyJycHMiOjEwfX0.AgMnvPopLuP3P5aSCiJ83yoGdhuQMQGgtmNU-NwwAy4";
/// The test vector's payload.
pub(crate) const SPEC_PAYLOAD: &str = r#"{"workspace_id":"00000000-0000-0000-0000-000000000001","name":"frontend_jwt","exp":4102444800,"scopes":[{"type":"PIPES:READ","resource":"top_pages","fixed_params":{"org_id":"acme"}}],"limits":{"rps":10}}"#;

/// The test vector's key, for its workspace.
pub(crate) fn key() -> SigningKey {
    SigningKey::with_workspace_id(ADMIN_TOKEN, WORKSPACE_ID).expect("the test vector's key is valid")
}

/// The JSON payload of a token (its middle segment), parsed.
pub(crate) fn payload_of(token: &str) -> serde_json::Value {
    serde_json::from_slice(&payload_bytes(token)).expect("payload is JSON")
}

/// The raw payload bytes of a token.
pub(crate) fn payload_bytes(token: &str) -> Vec<u8> {
    use base64::Engine as _;
    let segment = token.split('.').nth(1).expect("three segments");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).expect("base64url")
}
