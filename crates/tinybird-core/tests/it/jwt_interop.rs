//! Interop with an independent JWT implementation, Python's PyJWT (installed by `scripts/test.sh`):
//! a token minted here verifies there, and one minted there verifies here.

use std::process::Command;
use std::time::Duration;

use crate::jwt_support::*;
use chrono::Utc;
use serde_json::{Value, json};
use tinybird_core::jwt::{self, Jwt, Scope};

/// Runs a Python snippet with PyJWT; fails (never skips) when PyJWT is missing.
fn python(script: &str, args: &[&str]) -> String {
    let check = Command::new("python3").args(["-c", "import jwt"]).output();
    match check {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "PyJWT is not installed (`import jwt` failed: {}); run `python3 -m pip install PyJWT`",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("python3 is not available ({e}); install it, then run `python3 -m pip install PyJWT`"),
    }
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().expect("python3 runs");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}

#[test]
fn pyjwt_verifies_a_token_minted_here() {
    let token = Jwt::builder("org_acme")
        .scope(Scope::pipe::<TopPages>().fixed(|p| p.org_id = Some("acme".into())))
        .scope(Scope::datasource_read::<Events>().filter(|c| c.org_id.eq("acme").and(c.country.in_(["ES", "FR"]))))
        .scope(Scope::datasource_append::<Events>())
        .rate_limit(50)
        .expires_in(Duration::from_secs(3600))
        .sign(&key())
        .unwrap();
    // As Tinybird's server decodes: HS256 only, iat and aud not verified; `exp` required.
    let script = r#"
import json, sys, jwt
claims = jwt.decode(sys.argv[1], sys.argv[2], algorithms=["HS256"],
                    options={"require": ["exp"], "verify_iat": False, "verify_aud": False})
print(json.dumps(claims))
"#;
    let out = python(script, &[token.expose(), ADMIN_TOKEN]);
    let claims: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(claims, payload_of(token.expose()));
    assert_eq!(claims["limits"], json!({"rps": 50}));

    // And PyJWT refuses it under another key.
    let script = r#"
import sys, jwt
try:
    jwt.decode(sys.argv[1], "p.eyJ1IjogIm90aGVyIn0.another-admin-token", algorithms=["HS256"])
    print("accepted")
except jwt.InvalidSignatureError:
    print("refused")
"#;
    assert_eq!(python(script, &[token.expose()]), "refused");
}

#[test]
fn a_token_minted_by_pyjwt_verifies_here() {
    let exp = Utc::now().timestamp() + 600;
    let script = r#"
import json, sys, jwt
payload = {"workspace_id": sys.argv[1], "name": "py_token", "exp": int(sys.argv[2]),
           "scopes": [{"type": "PIPES:READ", "resource": "user_analytics", "fixed_params": {"user_id": 42, "org": "a'b"}},
                      {"type": "DATASOURCES:READ", "resource": "events", "filter": "user_id = 42"}],
           "limits": {"rps": 10}}
print(jwt.encode(payload, sys.argv[3], algorithm="HS256"))
"#;
    let token = python(script, &[WORKSPACE_ID, &exp.to_string(), ADMIN_TOKEN]);
    let claims = jwt::verify(&token, &key()).expect("PyJWT's token verifies here");
    assert_eq!(claims.name, "py_token");
    assert_eq!(claims.exp, exp);
    assert_eq!(claims.scopes[0].fixed_params.as_ref().unwrap()["user_id"], 42);
    assert_eq!(claims.scopes[0].fixed_params.as_ref().unwrap()["org"], "a'b");
    assert_eq!(claims.scopes[1].filter.as_deref(), Some("user_id = 42"));
    assert_eq!(claims.rps(), Some(10));

    // PyJWT's `alg: none` token and an expired one are refused here.
    let script = r#"
import sys, jwt
print(jwt.encode({"workspace_id": sys.argv[1], "name": "n", "exp": 4102444800, "scopes": []}, None, algorithm="none"))
"#;
    let none = python(script, &[WORKSPACE_ID]);
    assert!(matches!(jwt::verify(&none, &key()), Err(jwt::VerifyError::UnsupportedAlgorithm { .. })));
    let script = r#"
import sys, jwt
print(jwt.encode({"workspace_id": sys.argv[1], "name": "n", "exp": 1000, "scopes": []}, sys.argv[2], algorithm="HS256"))
"#;
    let expired = python(script, &[WORKSPACE_ID, ADMIN_TOKEN]);
    assert_eq!(jwt::verify(&expired, &key()), Err(jwt::VerifyError::Expired { exp: 1000 }));
}
