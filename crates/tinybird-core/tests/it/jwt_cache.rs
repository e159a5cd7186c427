//! The token cache: hits, refresh after a share of the lifetime, one mint for many concurrent callers, a bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::jwt_support::*;
use tinybird_core::jwt::{Jwt, JwtBuilder, JwtCache, JwtError, Scope, WithExpiry};

fn builder_for(org: &str) -> JwtBuilder<WithExpiry> {
    Jwt::builder(format!("org_{org}"))
        .scope(Scope::pipe::<TopPages>().fixed(|p| p.org_id = Some(org.to_owned())))
        .expires_in(Duration::from_secs(3600))
}

/// Mints by signing locally and counts the mints.
async fn get(cache: &JwtCache, tenant: &str, builder: &JwtBuilder<WithExpiry>, mints: &AtomicUsize) -> Jwt {
    cache
        .get_or_mint(tenant, builder, || async {
            mints.fetch_add(1, Ordering::SeqCst);
            builder.sign(&key())
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn returns_the_cached_token_per_tenant_and_content() {
    let cache = JwtCache::new();
    let mints = AtomicUsize::new(0);
    let acme = builder_for("acme");
    let first = get(&cache, "acme", &acme, &mints).await;
    assert_eq!(get(&cache, "acme", &acme, &mints).await, first);
    // A builder rebuilt with the same content hits too.
    assert_eq!(get(&cache, "acme", &builder_for("acme"), &mints).await, first);
    assert_eq!(mints.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get_fresh("acme", &acme), Some(first.clone()));

    // Another tenant, other scopes, another rate limit or another lifetime: another entry.
    get(&cache, "globex", &builder_for("globex"), &mints).await;
    get(&cache, "acme", &builder_for("acme").scope(Scope::datasource_append::<Events>()), &mints).await;
    get(&cache, "acme", &builder_for("acme").rate_limit(5), &mints).await;
    get(&cache, "acme", &builder_for("acme").expires_in(Duration::from_secs(60)), &mints).await;
    // Same content under another tenant key is still kept apart.
    get(&cache, "acme-2", &acme, &mints).await;
    assert_eq!(mints.load(Ordering::SeqCst), 6);
    assert_eq!(cache.len(), 6);

    cache.invalidate("acme");
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.get_fresh("acme", &acme), None);
    cache.clear();
    assert!(cache.is_empty());
}

#[tokio::test]
async fn get_or_sign_signs_with_the_key() {
    let cache = JwtCache::new();
    let builder = builder_for("acme");
    let jwt = cache.get_or_sign("acme", &builder, &key()).await.unwrap();
    assert_eq!(tinybird_core::jwt::verify(jwt.expose(), &key()).unwrap().name, "org_acme");
    assert_eq!(cache.get_or_sign("acme", &builder, &key()).await.unwrap(), jwt);
    // Builder mistakes come back as errors, and nothing is cached.
    let bad = Jwt::builder("").scope(Scope::pipe_named("p")).expires_in(Duration::from_secs(60));
    assert_eq!(cache.get_or_sign("acme", &bad, &key()).await.unwrap_err(), JwtError::EmptyName);
    assert_eq!(cache.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_cause_one_mint() {
    let cache = Arc::new(JwtCache::new());
    let mints = Arc::new(AtomicUsize::new(0));
    let builder = Arc::new(builder_for("acme"));
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cache, mints, builder, barrier) = (cache.clone(), mints.clone(), builder.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .get_or_mint("acme", &builder, || async {
                        mints.fetch_add(1, Ordering::SeqCst);
                        // A slow mint (a Token API call) so that every caller arrives while it runs.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        builder.sign(&key())
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap());
    }
    assert_eq!(mints.load(Ordering::SeqCst), 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

#[tokio::test]
async fn mints_anew_once_the_refresh_share_has_passed() {
    let cache = JwtCache::builder().refresh_share(0.05).build().unwrap();
    let mints = AtomicUsize::new(0);
    // 10 s lifetime, refreshed after 5% of it (0.5 s).
    let builder = Jwt::builder("n").scope(Scope::pipe_named("p")).expires_in(Duration::from_secs(10));
    get(&cache, "t", &builder, &mints).await;
    get(&cache, "t", &builder, &mints).await;
    assert_eq!(mints.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(cache.get_fresh("t", &builder), None, "due for refresh");
    get(&cache, "t", &builder, &mints).await;
    assert_eq!(mints.load(Ordering::SeqCst), 2);
    get(&cache, "t", &builder, &mints).await;
    assert_eq!(mints.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_one_caller_refreshes_the_others_get_the_still_valid_token() {
    let cache = Arc::new(JwtCache::builder().refresh_share(0.05).build().unwrap());
    let builder = Arc::new(Jwt::builder("n").scope(Scope::pipe_named("p")).expires_in(Duration::from_secs(10)));
    let old = cache.get_or_sign("t", &builder, &key()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;

    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let refresher = {
        let (cache, builder) = (cache.clone(), builder.clone());
        tokio::spawn(async move {
            cache
                .get_or_mint("t", &builder, || async {
                    let _ = started_tx.send(());
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    builder.sign(&key())
                })
                .await
        })
    };
    started_rx.await.unwrap();
    let mints = AtomicUsize::new(0);
    let during = tokio::time::timeout(Duration::from_millis(100), get(&cache, "t", &builder, &mints)).await;
    assert_eq!(during.expect("served without waiting for the refresh"), old);
    assert_eq!(mints.load(Ordering::SeqCst), 0);
    refresher.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_failed_mint_is_reported_and_retried_by_the_next_caller() {
    let cache = JwtCache::new();
    let builder = builder_for("acme");
    let failed: Result<Jwt, JwtError> = cache
        .get_or_mint("acme", &builder, || async { Err(JwtError::Signing { reason: "Token API said 503".into() }) })
        .await;
    assert!(matches!(failed, Err(JwtError::Signing { .. })));
    let mints = AtomicUsize::new(0);
    get(&cache, "acme", &builder, &mints).await;
    assert_eq!(mints.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_size_is_bounded_and_least_recently_used_tenants_go_first() {
    let cache = JwtCache::builder().capacity(3).build().unwrap();
    let mints = AtomicUsize::new(0);
    let orgs = ["a", "b", "c", "d", "e"];
    for org in &orgs[..3] {
        get(&cache, org, &builder_for(org), &mints).await;
    }
    // Touch `a`, so `b` is the least recently used.
    get(&cache, "a", &builder_for("a"), &mints).await;
    get(&cache, "d", &builder_for("d"), &mints).await;
    assert_eq!(cache.len(), 3);
    assert!(cache.get_fresh("a", &builder_for("a")).is_some());
    assert!(cache.get_fresh("b", &builder_for("b")).is_none());
    get(&cache, "e", &builder_for("e"), &mints).await;
    assert_eq!(cache.len(), 3);

    // One tenant with more token shapes than the capacity keeps its newest ones.
    let one = JwtCache::builder().capacity(2).build().unwrap();
    for rps in 1..=4 {
        get(&one, "a", &builder_for("a").rate_limit(rps), &mints).await;
    }
    assert_eq!(one.len(), 2);
    assert!(one.get_fresh("a", &builder_for("a").rate_limit(4)).is_some());
    assert!(one.get_fresh("a", &builder_for("a").rate_limit(1)).is_none());
}

#[test]
fn the_configuration_is_checked() {
    assert_eq!(JwtCache::builder().capacity(0).build().unwrap_err(), JwtError::ZeroCacheCapacity);
    for share in [0.0, -0.5, 1.5, f64::NAN] {
        assert!(matches!(JwtCache::builder().refresh_share(share).build(), Err(JwtError::InvalidRefreshShare { .. })));
    }
    assert!(JwtCache::builder().refresh_share(1.0).capacity(1).build().is_ok());
    let debug = format!("{:?}", JwtCache::new());
    assert!(debug.contains("capacity: 10000"), "{debug}");
}

#[tokio::test]
async fn caches_tokens_minted_by_the_token_api_with_any_error_type() {
    let cache = JwtCache::new();
    let builder = builder_for("acme");
    let calls = AtomicUsize::new(0);
    // What `|| client.create_jwt(&builder)` does, with the server's answer faked: the error type is the minter's own.
    let token_api = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        let request = builder.token_api_request().map_err(|e| e.to_string())?;
        Ok::<Jwt, String>(request.into_jwt("eyJ.from-the-token-api.sig"))
    };
    let first = cache.get_or_mint("acme", &builder, token_api).await.unwrap();
    let second = cache.get_or_mint("acme", &builder, token_api).await.unwrap();
    assert_eq!(first.expose(), "eyJ.from-the-token-api.sig");
    assert_eq!(second, first);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // An invalid builder is handed to the minter, which reports it in its own terms; nothing is cached.
    let invalid = Jwt::builder("n").expires_in(Duration::from_secs(60));
    let err = cache
        .get_or_mint("acme", &invalid, || async {
            invalid.token_api_request().map(|r| r.into_jwt("x")).map_err(|e| e.to_string())
        })
        .await
        .unwrap_err();
    assert!(err.contains("has no scope"), "{err}");
    assert_eq!(cache.len(), 1);
}
