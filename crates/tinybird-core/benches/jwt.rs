//! JWT minting against a bare HMAC-SHA256 over the same bytes, and a token cache hit.
//!
//! `cargo bench -p tinybird-core --bench jwt`; throughput is reported in tokens (elements) per second.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tinybird_core::jwt::{Jwt, JwtCache, Scope, SigningKey};

const ADMIN_TOKEN: &str = "p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key";

fn minting(c: &mut Criterion) {
    let key = SigningKey::with_workspace_id(ADMIN_TOKEN, "00000000-0000-0000-0000-000000000001").unwrap();
    // 3 scopes, one with 2 fixed params: the seed's `createOrgToken` shape.
    let builder = Jwt::builder("org_acme")
        .scope(Scope::pipe_named("user_analytics").fixed_param("org_id", "acme").fixed_param("user_id", 42))
        .scope(Scope::datasource_read_named("events").filter_sql_unchecked("org_id = 'acme'"))
        .scope(Scope::datasource_append_named("events"))
        .rate_limit(50)
        .expires_in(Duration::from_secs(3600));
    let token = builder.sign(&key).unwrap();
    let signing_input = token.expose().rsplit_once('.').unwrap().0.as_bytes().to_vec();

    let mut group = c.benchmark_group("jwt");
    group.throughput(Throughput::Elements(1));
    group.bench_function("mint_3_scopes", |b| b.iter(|| builder.sign(std::hint::black_box(&key)).unwrap()));
    group.bench_function("bare_hmac_sha256_same_bytes", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(ADMIN_TOKEN.as_bytes()).unwrap();
            mac.update(std::hint::black_box(&signing_input));
            mac.finalize().into_bytes()
        });
    });

    let cache = JwtCache::new();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(cache.get_or_sign("acme", &builder, &key)).unwrap();
    group.bench_function("cache_hit_get_fresh", |b| {
        b.iter(|| cache.get_fresh(std::hint::black_box("acme"), &builder).unwrap());
    });
    group.bench_function("cache_hit_get_or_sign", |b| {
        b.iter(|| {
            futures::executor::block_on(cache.get_or_sign(std::hint::black_box("acme"), &builder, &key)).unwrap()
        });
    });
    // The floor under any cache hit: an uncontended lock and a wall-clock read.
    let lock = std::sync::Mutex::new(0_u64);
    group.bench_function("floor_mutex_and_clock", |b| {
        b.iter(|| {
            let now = std::time::SystemTime::now();
            let guard = lock.lock().unwrap();
            std::hint::black_box((*guard, now))
        });
    });
    group.finish();
}

criterion_group!(benches, minting);
criterion_main!(benches);
