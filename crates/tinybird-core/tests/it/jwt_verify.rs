//! Verification refuses what Tinybird refuses: other algorithms, bad signatures, missing or past `exp`, junk.

use std::time::Duration;

use crate::jwt_support::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tinybird_core::jwt::{self, Jwt, Scope, SigningKey, VerifyError};

fn minted() -> Jwt {
    Jwt::builder("user_42")
        .scope(Scope::pipe::<UserAnalytics>().fixed(|p| p.user_id = Some(42)))
        .expires_in(Duration::from_secs(600))
        .sign(&key())
        .unwrap()
}

/// Signs any JSON payload with the test vector's key, as another implementation would.
fn sign_raw(alg: Algorithm, payload: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), payload, &EncodingKey::from_secret(secret)).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn valid_payload() -> Value {
    json!({"workspace_id": WORKSPACE_ID, "name": "n", "exp": Utc::now().timestamp() + 600,
           "scopes": [{"type": "PIPES:READ", "resource": "p"}]})
}

#[test]
fn a_minted_token_verifies() {
    let claims = jwt::verify(minted().expose(), &key()).unwrap();
    assert_eq!(claims.name, "user_42");
    assert_eq!(claims.scopes[0].fixed_params.as_ref().unwrap()["user_id"], 42);
    assert_eq!(claims.limits, None);
    assert_eq!(claims.rps(), None);
}

#[test]
fn a_tampered_payload_is_refused() {
    let token = minted();
    let parts: Vec<&str> = token.expose().split('.').collect();
    let mut payload = payload_of(token.expose());
    payload["scopes"][0]["fixed_params"]["user_id"] = json!(43);
    let forged = format!("{}.{}.{}", parts[0], b64(payload.to_string().as_bytes()), parts[2]);
    assert_eq!(jwt::verify(&forged, &key()).unwrap_err(), VerifyError::BadSignature);

    // One flipped character in the payload segment.
    let mut bytes = token.expose().as_bytes().to_vec();
    let i = parts[0].len() + 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    assert!(jwt::verify(&flipped, &key()).is_err());
}

#[test]
fn a_swapped_or_missing_signature_is_refused() {
    let a = minted();
    let b =
        Jwt::builder("other").scope(Scope::pipe_named("p")).expires_in(Duration::from_secs(60)).sign(&key()).unwrap();
    let (a_msg, _) = a.expose().rsplit_once('.').unwrap();
    let (_, b_sig) = b.expose().rsplit_once('.').unwrap();
    assert_eq!(jwt::verify(&format!("{a_msg}.{b_sig}"), &key()).unwrap_err(), VerifyError::BadSignature);
    assert_eq!(jwt::verify(&format!("{a_msg}."), &key()).unwrap_err(), VerifyError::BadSignature);
    assert_eq!(jwt::verify(&format!("{a_msg}.AAAA"), &key()).unwrap_err(), VerifyError::BadSignature);
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let payload = b64(valid_payload().to_string().as_bytes());
    for header in
        [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None"}"#, r#"{"alg":"HS512","typ":"JWT"}"#, r#"{"alg":"RS256"}"#]
    {
        let token = format!("{}.{payload}.", b64(header.as_bytes()));
        let err = jwt::verify(&token, &key()).unwrap_err();
        assert!(matches!(err, VerifyError::UnsupportedAlgorithm { .. }), "{header}: {err:?}");
    }
    // Properly signed with HS384/HS512 and the right key: still refused, Tinybird JWTs are HS256.
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token = sign_raw(alg, &valid_payload(), ADMIN_TOKEN.as_bytes());
        assert!(
            matches!(jwt::verify(&token, &key()).unwrap_err(), VerifyError::UnsupportedAlgorithm { alg } if alg.starts_with("HS"))
        );
    }
    let no_alg = format!("{}.{payload}.sig", b64(br#"{"typ":"JWT"}"#));
    assert!(matches!(jwt::verify(&no_alg, &key()).unwrap_err(), VerifyError::Malformed { .. }));
}

#[test]
fn a_token_signed_with_another_key_is_refused() {
    let other = SigningKey::with_workspace_id("p.eyJ1IjogIm90aGVyIn0.another-admin-token", WORKSPACE_ID).unwrap();
    let token =
        Jwt::builder("n").scope(Scope::pipe_named("p")).expires_in(Duration::from_secs(60)).sign(&other).unwrap();
    assert_eq!(jwt::verify(token.expose(), &key()).unwrap_err(), VerifyError::BadSignature);
    assert!(jwt::verify(token.expose(), &other).is_ok());
}

#[test]
fn expired_and_missing_or_bad_exp_are_refused() {
    let mut expired = valid_payload();
    let exp = Utc::now().timestamp() - 1;
    expired["exp"] = json!(exp);
    let token = sign_raw(Algorithm::HS256, &expired, ADMIN_TOKEN.as_bytes());
    assert_eq!(jwt::verify(&token, &key()).unwrap_err(), VerifyError::Expired { exp });

    let mut missing = valid_payload();
    missing.as_object_mut().unwrap().remove("exp");
    let token = sign_raw(Algorithm::HS256, &missing, ADMIN_TOKEN.as_bytes());
    assert_eq!(jwt::verify(&token, &key()).unwrap_err(), VerifyError::MissingExp);

    let mut text = valid_payload();
    text["exp"] = json!("tomorrow");
    let token = sign_raw(Algorithm::HS256, &text, ADMIN_TOKEN.as_bytes());
    assert_eq!(jwt::verify(&token, &key()).unwrap_err(), VerifyError::InvalidExp);

    // An expired token with a bad signature is a bad signature first.
    let token = sign_raw(Algorithm::HS256, &expired, b"wrong key");
    assert_eq!(jwt::verify(&token, &key()).unwrap_err(), VerifyError::BadSignature);
}

#[test]
fn signed_payloads_that_are_not_tinybird_claims_are_refused() {
    let mut no_scopes = valid_payload();
    no_scopes.as_object_mut().unwrap().remove("scopes");
    let token = sign_raw(Algorithm::HS256, &no_scopes, ADMIN_TOKEN.as_bytes());
    assert!(matches!(jwt::verify(&token, &key()).unwrap_err(), VerifyError::InvalidClaims { .. }));

    let mut bad_type = valid_payload();
    bad_type["scopes"][0]["type"] = json!("ADMIN");
    let token = sign_raw(Algorithm::HS256, &bad_type, ADMIN_TOKEN.as_bytes());
    assert!(matches!(jwt::verify(&token, &key()).unwrap_err(), VerifyError::InvalidClaims { .. }));

    let mut other_ws = valid_payload();
    other_ws["workspace_id"] = json!("someone-else");
    let token = sign_raw(Algorithm::HS256, &other_ws, ADMIN_TOKEN.as_bytes());
    assert_eq!(
        jwt::verify(&token, &key()).unwrap_err(),
        VerifyError::WorkspaceMismatch { expected: WORKSPACE_ID.into(), found: "someone-else".into() }
    );

    // Extra claims (iat, aud) are ignored, as Tinybird does; rps <= 0 means no limit.
    let mut extra = valid_payload();
    extra["iat"] = json!(1);
    extra["aud"] = json!("x");
    extra["limits"] = json!({"rps": 0});
    let token = sign_raw(Algorithm::HS256, &extra, ADMIN_TOKEN.as_bytes());
    let claims = jwt::verify(&token, &key()).unwrap();
    assert_eq!(claims.rps(), None);
}

#[test]
fn malformed_tokens_are_refused() {
    let valid = minted();
    let (h, rest) = valid.expose().split_once('.').unwrap();
    for junk in ["", ".", "..", "a.b", "a.b.c.d", "not a jwt", "!!!.???.###", h, &format!("{h}.{rest}.extra")] {
        let err = jwt::verify(junk, &key()).unwrap_err();
        assert!(matches!(err, VerifyError::Malformed { .. }), "{junk:?}: {err:?}");
    }
    let not_json = format!("{}.{}.sig", b64(b"not json"), b64(b"{}"));
    assert!(matches!(jwt::verify(&not_json, &key()).unwrap_err(), VerifyError::Malformed { .. }));
}
