//! Minting: the payload Tinybird expects, typed scopes, the builder's rules, the Token API request.

use std::time::Duration;

use crate::jwt_support::*;
use chrono::{TimeZone, Utc};
use serde_json::json;
use tinybird_core::jwt::{self, Jwt, JwtError, Scope, ScopeKind, SigningKey};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn the_spec_test_vector_verifies() {
    let claims = jwt::verify(SPEC_TOKEN, &key()).expect("the test vector verifies");
    assert_eq!(claims.workspace_id, WORKSPACE_ID);
    assert_eq!(claims.name, "frontend_jwt");
    assert_eq!(claims.exp, 4_102_444_800);
    assert_eq!(claims.scopes.len(), 1);
    assert_eq!(claims.scopes[0].kind, ScopeKind::PipesRead);
    assert_eq!(claims.scopes[0].resource, "top_pages");
    assert_eq!(claims.scopes[0].fixed_params.as_ref().unwrap()["org_id"], "acme");
    assert_eq!(claims.scopes[0].filter, None);
    assert_eq!(claims.rps(), Some(10));
}

#[test]
fn signing_the_spec_payload_reproduces_the_spec_token_byte_for_byte() {
    let token = Jwt::builder("frontend_jwt")
        .scope(Scope::pipe::<TopPages>().fixed(|p| p.org_id = Some("acme".into())))
        .rate_limit(10)
        .expires_at(Utc.timestamp_opt(4_102_444_800, 0).unwrap())
        .allow_long_ttl()
        .sign(&key())
        .unwrap();
    assert_eq!(String::from_utf8(payload_bytes(token.expose())).unwrap(), SPEC_PAYLOAD);
    assert_eq!(token.expose(), SPEC_TOKEN);
    assert_eq!(token.exp_unix(), 4_102_444_800);
    assert_eq!(token.name(), "frontend_jwt");

    // The untyped path produces the same bytes.
    let named = Jwt::builder("frontend_jwt")
        .scope(Scope::pipe_named("top_pages").fixed_json(json!({"org_id": "acme"})))
        .rate_limit(10)
        .expires_at(Utc.timestamp_opt(4_102_444_800, 0).unwrap())
        .allow_long_ttl()
        .sign(&key())
        .unwrap();
    assert_eq!(named, token);
}

#[test]
fn the_payload_has_exactly_the_documented_fields_in_order() {
    let before = Utc::now().timestamp();
    let token = Jwt::builder("user_42")
        .scope(Scope::pipe::<UserAnalytics>().fixed(|p| p.user_id = Some(42)))
        .expires_in(HOUR)
        .sign(&key())
        .unwrap();
    let after = Utc::now().timestamp();
    let payload = String::from_utf8(payload_bytes(token.expose())).unwrap();
    let exp = token.exp_unix();
    assert!((before + 3600..=after + 3600).contains(&exp), "exp {exp} not an hour from now");
    assert_eq!(
        payload,
        format!(
            r#"{{"workspace_id":"{WORKSPACE_ID}","name":"user_42","exp":{exp},"scopes":[{{"type":"PIPES:READ","resource":"user_analytics","fixed_params":{{"user_id":42}}}}]}}"#
        )
    );
    assert_eq!(token.exp(), Utc.timestamp_opt(exp, 0).unwrap());
}

#[test]
fn typed_scopes_render_names_json_types_and_escaped_filters() {
    let at = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
    let token = Jwt::builder("org_acme")
        .scope(Scope::pipe::<UserAnalytics>().fixed(|p| {
            p.user_id = Some(u64::MAX);
            p.days = Some(-7);
        }))
        .scope(Scope::datasource_read::<Events>().filter(|c| {
            c.org_id
                .eq("o'reilly")
                .and(c.country.in_(["ES", "FR"]))
                .and(c.timestamp.ge(at))
                .and(c.referrer.is_not_null())
        }))
        .scope(Scope::datasource_append::<Events>())
        .expires_in(HOUR)
        .sign(&key())
        .unwrap();
    let payload = payload_of(token.expose());
    assert_eq!(
        payload["scopes"],
        json!([
            {"type": "PIPES:READ", "resource": "user_analytics", "fixed_params": {"user_id": u64::MAX, "days": -7}},
            {"type": "DATASOURCES:READ", "resource": "events",
             "filter": r"org_id = 'o\'reilly' AND country IN ('ES', 'FR') AND timestamp >= '2024-05-01 00:00:00' AND referrer IS NOT NULL"},
            {"type": "DATASOURCES:APPEND", "resource": "events"},
        ])
    );
    // u64::MAX survives as a JSON number, not a float or a string.
    assert!(String::from_utf8(payload_bytes(token.expose())).unwrap().contains(r#""user_id":18446744073709551615"#));
}

#[test]
fn several_filters_and_the_raw_escape_hatch_all_apply() {
    let scope: Scope = Scope::datasource_read::<Events>()
        .filter(|c| c.user_id.eq(1).or(c.user_id.eq(2)))
        .filter_sql_unchecked("toDate(timestamp) > today() - 7")
        .into();
    assert_eq!(scope.filter(), Some("(user_id = 1 OR user_id = 2) AND (toDate(timestamp) > today() - 7)"));
    let named: Scope = Scope::datasource_read_named("events").filter_sql_unchecked("org_id = 'testing'").into();
    assert_eq!(named.kind(), ScopeKind::DatasourcesRead);
    assert_eq!(named.filter(), Some("org_id = 'testing'"));
    let unfixed: Scope = Scope::pipe::<UserAnalytics>().into();
    assert_eq!(unfixed.fixed_params(), None, "no fixed params, no `fixed_params` key");
}

#[test]
fn the_seed_examples_are_expressible() {
    let key = key();
    // Single scope.
    let single = Jwt::builder("frontend_jwt").scope(Scope::pipe::<TopPages>()).expires_in(HOUR).sign(&key).unwrap();
    assert_eq!(jwt::verify(single.expose(), &key).unwrap().scopes.len(), 1);

    // Multiple scopes (the docs' complete example).
    let multiple = Jwt::builder("frontend_jwt")
        .scope(Scope::pipe_named("requests_per_day").fixed_param("org_id", "testing"))
        .scope(Scope::datasource_read::<Events>().filter(|c| c.org_id.eq("testing")))
        .rate_limit(10)
        .expires_in(HOUR)
        .sign(&key)
        .unwrap();
    let claims = jwt::verify(multiple.expose(), &key).unwrap();
    assert_eq!(
        claims.scope(ScopeKind::DatasourcesRead, "events").unwrap().filter.as_deref(),
        Some("org_id = 'testing'")
    );

    // The Next.js route's token for a signed-in user.
    let user_id = 7_u64;
    let route = Jwt::builder(format!("user_{user_id}"))
        .scope(Scope::pipe::<UserAnalytics>().fixed(|p| p.user_id = Some(user_id)))
        .scope(Scope::datasource_append::<Events>())
        .rate_limit(10)
        .expires_in(HOUR)
        .sign(&key)
        .unwrap();
    let claims = jwt::verify(route.expose(), &key).unwrap();
    assert_eq!(
        claims.scope(ScopeKind::PipesRead, "user_analytics").unwrap().fixed_params.as_ref().unwrap()["user_id"],
        7
    );
    assert!(claims.scope(ScopeKind::DatasourcesAppend, "events").is_some());

    // `createOrgToken`: two endpoints fixed to an org plus append, 24 h, 50 rps.
    let org = "acme";
    let org_token = Jwt::builder(format!("org_{org}"))
        .scope(Scope::pipe::<TopPages>().fixed(|p| p.org_id = Some(org.to_owned())))
        .scope(Scope::pipe_named("org_usage").fixed_param("org_id", org))
        .scope(Scope::datasource_append::<Events>())
        .rate_limit(50)
        .expires_in(Duration::from_secs(24 * 3600))
        .sign(&key)
        .unwrap();
    let claims = jwt::verify(org_token.expose(), &key).unwrap();
    assert_eq!(claims.scopes.len(), 3);
    assert_eq!(claims.rps(), Some(50));
    assert!(claims.exp - Utc::now().timestamp() > 24 * 3600 - 5);
}

#[test]
fn builder_mistakes_are_reported_at_sign_time() {
    let key = key();
    let pipe = || Scope::pipe_named("p");
    let sign = |b: jwt::JwtBuilder<jwt::WithExpiry>| b.sign(&key).unwrap_err();

    assert_eq!(sign(Jwt::builder(" ").scope(pipe()).expires_in(HOUR)), JwtError::EmptyName);
    assert!(matches!(sign(Jwt::builder("n").expires_in(HOUR)), JwtError::NoScopes { .. }));
    assert!(matches!(
        sign(Jwt::builder("n").scope(pipe()).rate_limit(0).expires_in(HOUR)),
        JwtError::ZeroRateLimit { .. }
    ));
    let long = sign(Jwt::builder("n").scope(pipe()).expires_in(HOUR * 25));
    assert!(matches!(long, JwtError::TtlTooLong { ttl_secs: 90_000, .. }), "{long:?}");
    assert!(long.to_string().contains("allow_long_ttl"));
    let long_at = sign(Jwt::builder("n").scope(pipe()).expires_at(Utc::now() + chrono::Duration::hours(30)));
    assert!(matches!(long_at, JwtError::TtlTooLong { .. }));
    assert!(Jwt::builder("n").scope(pipe()).expires_in(HOUR * 24).sign(&key).is_ok(), "24 h is allowed");
    assert!(Jwt::builder("n").scope(pipe()).expires_in(HOUR * 48).allow_long_ttl().sign(&key).is_ok());
    assert!(matches!(
        sign(Jwt::builder("n").scope(pipe()).expires_in(Duration::ZERO)),
        JwtError::ExpiryNotInFuture { .. }
    ));
    let past = sign(Jwt::builder("n").scope(pipe()).expires_at(Utc::now() - chrono::Duration::seconds(5)));
    assert!(matches!(past, JwtError::ExpiryNotInFuture { .. }));
    assert!(matches!(
        sign(Jwt::builder("n").scope(pipe()).expires_in(Duration::MAX).allow_long_ttl()),
        JwtError::ExpiryOutOfRange { .. }
    ));
    // A sub-second TTL is rounded up, not turned into an expired token.
    let short = Jwt::builder("n").scope(pipe()).expires_in(Duration::from_millis(10)).sign(&key).unwrap();
    assert!(short.exp_unix() > Utc::now().timestamp() - 1);

    assert!(matches!(
        sign(Jwt::builder("n").scope(Scope::pipe_named("")).expires_in(HOUR)),
        JwtError::EmptyResource { kind: ScopeKind::PipesRead }
    ));
    assert!(matches!(
        sign(Jwt::builder("n").scope(pipe().fixed_json(json!([1]))).expires_in(HOUR)),
        JwtError::FixedParamsNotObject { found: "an array", .. }
    ));
    assert!(matches!(
        sign(Jwt::builder("n").scope(pipe().fixed_param("org", json!(null))).expires_in(HOUR)),
        JwtError::FixedParamValue { found: "null", .. }
    ));
    assert!(matches!(
        sign(Jwt::builder("n").scope(pipe().fixed_param("org", json!({"a": 1}))).expires_in(HOUR)),
        JwtError::FixedParamValue { found: "an object", .. }
    ));
    assert!(matches!(
        sign(Jwt::builder("n").scope(pipe().fixed_param("", 1)).expires_in(HOUR)),
        JwtError::EmptyFixedParamName { .. }
    ));
    assert!(matches!(
        sign(Jwt::builder("n").scope(Scope::datasource_read::<Events>().filter_sql_unchecked("  ")).expires_in(HOUR)),
        JwtError::EmptyFilter { .. }
    ));
    assert!(matches!(
        sign(Jwt::builder("n").scope(pipe()).scope(pipe().fixed_param("a", 1)).expires_in(HOUR)),
        JwtError::DuplicateScope { kind: ScopeKind::PipesRead, .. }
    ));
    // Read and append on one datasource are two scopes, not a duplicate.
    assert!(
        Jwt::builder("n")
            .scope(Scope::datasource_read::<Events>())
            .scope(Scope::datasource_append::<Events>())
            .expires_in(HOUR)
            .sign(&key)
            .is_ok()
    );
    // Arrays of scalars are fine for array params.
    assert!(Jwt::builder("n").scope(pipe().fixed_param("ids", json!([1, 2]))).expires_in(HOUR).sign(&key).is_ok());
}

#[test]
fn a_builder_signs_again_with_a_fresh_expiry() {
    let builder = Jwt::builder("n").scope(Scope::pipe_named("p")).expires_in(HOUR);
    let a = builder.sign(&key()).unwrap();
    let b = builder.clone().sign(&key()).unwrap();
    assert!(b.exp_unix() >= a.exp_unix());
    // Adding a scope after a sign is taken into account.
    let more = builder.scope(Scope::pipe_named("q")).sign(&key()).unwrap();
    assert_eq!(payload_of(more.expose())["scopes"].as_array().unwrap().len(), 2);
}

#[test]
fn the_token_api_request_carries_the_same_payload() {
    let builder = Jwt::builder("org_acme")
        .scope(Scope::pipe::<TopPages>().fixed(|p| p.org_id = Some("acme".into())))
        .scope(Scope::datasource_read::<Events>().filter(|c| c.org_id.eq("acme")))
        .rate_limit(5)
        .expires_in(HOUR);
    let request = builder.token_api_request().unwrap();
    let signed = builder.sign(&key()).unwrap();
    let payload = payload_of(signed.expose());

    assert_eq!(jwt::TokenApiRequest::PATH, "/v0/tokens/");
    let exp = request.expiration_time();
    assert!((exp - payload["exp"].as_i64().unwrap()).abs() <= 1);
    assert_eq!(request.query_pairs(), &[("name", "org_acme".to_owned()), ("expiration_time", exp.to_string())]);
    let body: serde_json::Value = serde_json::from_str(request.body()).unwrap();
    assert_eq!(body, json!({"name": "org_acme", "scopes": payload["scopes"], "limits": {"rps": 5}}));
    assert!(request.body().starts_with(r#"{"name":"org_acme","scopes":["#), "{}", request.body());

    let jwt = request.into_jwt("token-from-the-api");
    assert_eq!(jwt.expose(), "token-from-the-api");
    assert_eq!(jwt.exp_unix(), exp);
    assert_eq!(jwt.name(), "org_acme");

    // No limits → no `limits` key; the same validation as signing.
    let plain = Jwt::builder("n").scope(Scope::pipe_named("p")).expires_in(HOUR).token_api_request().unwrap();
    assert_eq!(plain.body(), r#"{"name":"n","scopes":[{"type":"PIPES:READ","resource":"p"}]}"#);
    assert!(matches!(Jwt::builder("n").expires_in(HOUR).token_api_request(), Err(JwtError::NoScopes { .. })));
}

#[test]
fn secrets_never_show_in_debug_or_errors() {
    let key = SigningKey::from_admin_token(ADMIN_TOKEN).unwrap();
    let token = Jwt::builder("n").scope(Scope::pipe_named("p")).expires_in(HOUR).sign(&key).unwrap();
    let debug = format!("{token:?} {key:?}");
    assert!(!debug.contains(token.expose()), "{debug}");
    assert!(!debug.contains(token.expose().split('.').nth(2).unwrap()), "{debug}");
    assert!(!debug.contains("admin-token-used-as-signing-key"), "{debug}");
    assert!(debug.contains("<redacted>"));
    let err =
        jwt::verify(token.expose(), &SigningKey::with_workspace_id("another-key", "example").unwrap()).unwrap_err();
    assert!(!err.to_string().contains(token.expose().split('.').nth(2).unwrap()));
}
