//! A token cache: one JWT per tenant and token content, reused until a share of its lifetime has passed.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use lru::LruCache;

use super::builder::{Expiry, HasExpiry, JwtBuilder, Prepared};
use super::{Jwt, JwtError, SigningKey};

/// Caches minted JWTs so a backend does not mint one per request.
///
/// A cached token is returned until [`refresh_share`](JwtCacheBuilder::refresh_share) of its lifetime (0.8 by
/// default) has passed; the next caller then mints a new one, while concurrent callers keep getting the old, still
/// valid, token. When there is no usable token, concurrent callers for the same entry wait for a single mint.
///
/// Entries are keyed by a tenant key (any string: an org id, a user id) **and** everything the token says except its
/// `exp`: name, scopes with their fixed params and filters, rate limit, and the builder's expiry. A builder for another
/// tenant or with other scopes never gets this entry's token. The key does not include the signing key: use one cache
/// per workspace. The cache holds at most [`capacity`](JwtCacheBuilder::capacity) entries and evicts the least
/// recently used tenants first.
///
/// ```
/// use std::time::Duration;
/// use tinybird_core::jwt::{Jwt, JwtCache, Scope, SigningKey};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let key = SigningKey::from_admin_token("p.eyJ1IjogImV4YW1wbGUifQ.admin-token-used-as-signing-key")?;
/// let cache = JwtCache::new();
/// let org = "acme";
/// let builder = Jwt::builder(format!("org_{org}"))
///     .scope(Scope::pipe_named("top_pages").fixed_param("org_id", org))
///     .expires_in(Duration::from_secs(3600));
/// let first = cache.get_or_sign(org, &builder, &key).await?;
/// let second = cache.get_or_sign(org, &builder, &key).await?;
/// assert_eq!(first, second);
/// # Ok::<(), tinybird_core::jwt::JwtError>(())
/// # }).unwrap();
/// ```
pub struct JwtCache {
    state: Mutex<State>,
    capacity: usize,
    refresh_share: f64,
}

/// Configures a [`JwtCache`]. Mistakes are reported by [`build`](Self::build).
#[derive(Debug, Clone, Copy, PartialEq)]
#[must_use]
pub struct JwtCacheBuilder {
    capacity: usize,
    refresh_share: f64,
}

struct State {
    /// Least recently used tenants go first; the bound is on entries, counted in `entries`.
    tenants: LruCache<Box<str>, Vec<Entry>>,
    entries: usize,
}

struct Entry {
    content: Arc<str>,
    content_hash: u64,
    expiry: Expiry,
    allow_long_ttl: bool,
    token: Option<Cached>,
    /// Held by the caller that mints, so concurrent callers wait for its token instead of minting their own.
    mint_lock: Arc<tokio::sync::Mutex<()>>,
}

struct Cached {
    jwt: Jwt,
    refresh_at_ms: i64,
    exp_ms: i64,
}

/// What identifies an entry, borrowed from the builder.
struct Lookup<'a> {
    tenant: &'a str,
    prepared: &'a Prepared,
    expiry: Expiry,
    allow_long_ttl: bool,
}

impl Entry {
    fn matches(&self, key: &Lookup<'_>) -> bool {
        self.content_hash == key.prepared.content_hash
            && self.expiry == key.expiry
            && self.allow_long_ttl == key.allow_long_ttl
            && (Arc::ptr_eq(&self.content, &key.prepared.content) || *self.content == *key.prepared.content)
    }
}

enum Found {
    Fresh(Jwt),
    /// No usable token, or one due for refresh that nobody is refreshing yet: mint under this lock.
    Mint(Arc<tokio::sync::Mutex<()>>),
}

impl Default for JwtCacheBuilder {
    fn default() -> Self {
        JwtCacheBuilder { capacity: 10_000, refresh_share: 0.8 }
    }
}

impl JwtCacheBuilder {
    /// The most entries (tenant × token content) kept; 10,000 by default.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The share of a token's lifetime after which it is replaced, in `(0, 1]`; 0.8 by default (a 1 h token is
    /// replaced after 48 min, leaving every caller at least 12 min of validity).
    pub fn refresh_share(mut self, share: f64) -> Self {
        self.refresh_share = share;
        self
    }

    /// The cache, or the first configuration mistake.
    pub fn build(self) -> Result<JwtCache, JwtError> {
        if self.capacity == 0 {
            return Err(JwtError::ZeroCacheCapacity);
        }
        if !(self.refresh_share > 0.0 && self.refresh_share <= 1.0) {
            return Err(JwtError::InvalidRefreshShare { share: self.refresh_share });
        }
        Ok(JwtCache {
            state: Mutex::new(State { tenants: LruCache::unbounded(), entries: 0 }),
            capacity: self.capacity,
            refresh_share: self.refresh_share,
        })
    }
}

impl Default for JwtCache {
    fn default() -> Self {
        JwtCache::new()
    }
}

impl JwtCache {
    /// A cache with the defaults: 10,000 entries, refresh after 80% of a token's lifetime.
    pub fn new() -> JwtCache {
        JwtCache {
            state: Mutex::new(State { tenants: LruCache::unbounded(), entries: 0 }),
            capacity: JwtCacheBuilder::default().capacity,
            refresh_share: JwtCacheBuilder::default().refresh_share,
        }
    }

    /// Configures a cache.
    pub fn builder() -> JwtCacheBuilder {
        JwtCacheBuilder::default()
    }

    /// The cached token for `tenant` and `builder`, minted and signed locally with `key` when there is none or it is
    /// due for refresh.
    pub async fn get_or_sign<X: HasExpiry>(
        &self,
        tenant: &str,
        builder: &JwtBuilder<X>,
        key: &SigningKey,
    ) -> Result<Jwt, JwtError> {
        self.get_or_mint(tenant, builder, || async { builder.sign(key) }).await
    }

    /// The cached token for `tenant` and `builder`, minted by `mint` when there is none or it is due for refresh:
    /// for example a Token API call made from the same builder (`|| client.create_jwt(&builder)`). Concurrent
    /// callers for the same entry share one `mint`; when it fails, its caller gets the error and the next waiter
    /// tries again. An invalid builder is not cached: `mint` runs and reports the mistake in its own error type.
    pub async fn get_or_mint<X, F, Fut, E>(&self, tenant: &str, builder: &JwtBuilder<X>, mint: F) -> Result<Jwt, E>
    where
        X: HasExpiry,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Jwt, E>>,
    {
        let Ok(prepared) = builder.prepared_ref() else {
            return mint().await;
        };
        let key = Lookup { tenant, prepared, expiry: builder.expiry(), allow_long_ttl: builder.allows_long_ttl() };

        let mint_lock = match self.find_or_insert(&key, true) {
            Found::Fresh(jwt) => return Ok(jwt),
            Found::Mint(lock) => lock,
        };
        let _minting = mint_lock.lock().await;
        // Whoever held the lock before us may have minted what we need.
        if let Found::Fresh(jwt) = self.find_or_insert(&key, false) {
            return Ok(jwt);
        }
        let jwt = mint().await?;
        self.store(&key, &jwt);
        Ok(jwt)
    }

    /// The cached token for `tenant` and `builder` if there is one that is not due for refresh; never mints.
    pub fn get_fresh<X: HasExpiry>(&self, tenant: &str, builder: &JwtBuilder<X>) -> Option<Jwt> {
        let prepared = builder.prepared_ref().ok()?;
        let key = Lookup { tenant, prepared, expiry: builder.expiry(), allow_long_ttl: builder.allows_long_ttl() };
        let now = now_ms();
        let mut state = self.lock();
        let entry = state.tenants.get(tenant)?.iter().find(|e| e.matches(&key))?;
        entry.token.as_ref().filter(|c| now < c.refresh_at_ms).map(|c| c.jwt.clone())
    }

    /// Drops every token cached for `tenant` (for example when its permissions change).
    pub fn invalidate(&self, tenant: &str) {
        let mut state = self.lock();
        if let Some(entries) = state.tenants.pop(tenant) {
            state.entries -= entries.len();
        }
    }

    /// Drops every cached token.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.tenants.clear();
        state.entries = 0;
    }

    /// The number of entries (tenant × token content).
    pub fn len(&self) -> usize {
        self.lock().entries
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the map consistent (every update is a single assignment), so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn find_or_insert(&self, key: &Lookup<'_>, serve_stale: bool) -> Found {
        let now = now_ms();
        let mut state = self.lock();
        if let Some(entry) = state.tenants.get(key.tenant).and_then(|v| v.iter().find(|e| e.matches(key))) {
            if let Some(cached) = &entry.token {
                if now < cached.refresh_at_ms {
                    return Found::Fresh(cached.jwt.clone());
                }
                // Due for refresh but still valid while someone else mints the next one: no one waits.
                if serve_stale && now < cached.exp_ms && entry.mint_lock.try_lock().is_err() {
                    return Found::Fresh(cached.jwt.clone());
                }
            }
            return Found::Mint(entry.mint_lock.clone());
        }
        let entry = state.insert(key, self.capacity);
        Found::Mint(entry.mint_lock.clone())
    }

    fn store(&self, key: &Lookup<'_>, jwt: &Jwt) {
        let now = now_ms();
        let exp_ms = jwt.exp_unix().saturating_mul(1000);
        let lifetime = (exp_ms - now).max(0) as f64;
        let cached = Cached { jwt: jwt.clone(), refresh_at_ms: now + (lifetime * self.refresh_share) as i64, exp_ms };
        let mut state = self.lock();
        // The entry may have been evicted while minting: put it back.
        let found = state.tenants.get_mut(key.tenant).and_then(|v| v.iter_mut().find(|e| e.matches(key)));
        match found {
            Some(entry) => entry.token = Some(cached),
            None => state.insert(key, self.capacity).token = Some(cached),
        }
    }
}

impl State {
    /// Adds an empty entry for `key`, evicting the least recently used tenants to stay within `capacity`.
    fn insert(&mut self, key: &Lookup<'_>, capacity: usize) -> &mut Entry {
        while self.entries >= capacity {
            let own = self.tenants.peek(key.tenant).map_or(0, Vec::len);
            if own < self.entries {
                // Another tenant is least recently used, unless it is us: then skip past ourselves.
                match self.tenants.peek_lru() {
                    Some((lru, _)) if &**lru == key.tenant => {
                        self.tenants.promote(key.tenant);
                        continue;
                    }
                    _ => {}
                }
                if let Some((_, entries)) = self.tenants.pop_lru() {
                    self.entries -= entries.len();
                }
            } else if let Some(entries) = self.tenants.get_mut(key.tenant) {
                // This tenant alone fills the cache: drop its oldest entry.
                entries.remove(0);
                self.entries -= 1;
            } else {
                break;
            }
        }
        let entries = self.tenants.get_or_insert_mut(key.tenant.into(), Vec::new);
        entries.push(Entry {
            content: key.prepared.content.clone(),
            content_hash: key.prepared.content_hash,
            expiry: key.expiry,
            allow_long_ttl: key.allow_long_ttl,
            token: None,
            mint_lock: Arc::new(tokio::sync::Mutex::new(())),
        });
        self.entries += 1;
        let last = entries.len() - 1;
        &mut entries[last]
    }
}

impl fmt::Debug for JwtCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("refresh_share", &self.refresh_share)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
