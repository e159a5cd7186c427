//! A workspace's state: live resources, tokens, deployments and the engine holding the data.

use super::error::ApiError;
use super::grants::{Grants, JwtClaims, RateHeaders, ScopeKind};
use super::identity::{Identity, static_token, static_token_with_id, timestamp_now};
use super::store::Store;
use crate::engine::{Engine, Value};
use crate::ingest::{IngestColumn, Quarantined};
use crate::resources::{Pipe, Resources};
use crate::types::ChType;
use axum::http::HeaderName;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use tinybird_core::DatasourceDef;
use tinybird_core::datasource::TokenPermission;

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest accepted request body (after gzip decompression), in bytes.
    pub max_body_bytes: usize,
    /// How long a query may run, waiting for a slot included, before it is cancelled.
    pub query_timeout: std::time::Duration,
    /// How many queries run at once; others wait (within their timeout).
    pub max_concurrent_queries: usize,
    /// Memory the engine's operators (joins, sorts, aggregations) may hold at once, in bytes.
    pub memory_limit: usize,
    /// The largest result one query may return, in bytes of its columns.
    pub max_result_bytes: usize,
    /// Whether URL imports may fetch loopback, private and link-local addresses (off: they are refused).
    pub allow_private_urls: bool,
}

impl Default for Config {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(std::num::NonZero::get).unwrap_or(2);
        Config {
            max_body_bytes: 10 * 1024 * 1024,
            query_timeout: std::time::Duration::from_secs(10),
            max_concurrent_queries: (cores * 2).max(4),
            memory_limit: crate::engine::DEFAULT_MEMORY_LIMIT,
            max_result_bytes: crate::engine::DEFAULT_MAX_RESULT_BYTES,
            allow_private_urls: false,
        }
    }
}

/// What is live now.
#[derive(Default)]
pub(super) struct Live {
    /// Deployed connections: listed, and used by sinks to `file://` buckets.
    pub connections: BTreeMap<String, tinybird_core::connections::ConnectionDef>,
    pub datasources: BTreeMap<String, DatasourceDef>,
    pub ingest: HashMap<String, Arc<Vec<IngestColumn>>>,
    pub pipes: BTreeMap<String, Pipe>,
    /// Static resource tokens: token value → grants.
    pub tokens: HashMap<String, Grants>,
    /// When each datasource and pipe was created and last changed (`created_at`, `updated_at` in listings), by
    /// `datasource:<name>` or `pipe:<name>`.
    pub stamps: HashMap<String, (String, String)>,
}

impl std::fmt::Debug for Live {
    // The token map is keyed by token value: show the grants, never the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("datasources", &self.datasources)
            .field("ingest", &self.ingest)
            .field("pipes", &self.pipes)
            .field("tokens", &self.tokens.values().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What a deploy changed, by name.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(super) struct Changes {
    pub new_datasource_names: Vec<String>,
    pub changed_datasource_names: Vec<String>,
    pub deleted_datasource_names: Vec<String>,
    pub new_pipe_names: Vec<String>,
    pub changed_pipe_names: Vec<String>,
    pub deleted_pipe_names: Vec<String>,
}

/// One deployment.
#[derive(Debug, Clone)]
pub(super) struct Deployment {
    pub id: u64,
    pub status: String,
    pub live: bool,
    pub resources: Resources,
    pub files: Vec<(String, String)>,
    pub changes: Changes,
    pub allow_destructive: bool,
    /// RFC 3339, as `tb deployment ls` parses it.
    pub created_at: String,
}

impl Deployment {
    /// The deployment a workspace starts with: its resources at start, live.
    pub(super) fn initial(resources: Resources) -> Deployment {
        Deployment {
            id: 1,
            status: "data_ready".into(),
            live: true,
            resources,
            files: Vec::new(),
            changes: Changes::default(),
            allow_destructive: false,
            created_at: chrono::Utc::now().to_rfc3339(),
        }
    }
}

/// The boxed future of a (recursive, through materialized views) append: `(successful, quarantined)` rows.
type AppendFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(u64, u64), ApiError>> + Send + 'a>>;

/// A static token as listed: name, value, scopes.
pub(super) type TokenListing = (String, String, Vec<(ScopeKind, String)>);

/// A workspace.
pub(super) struct Workspace {
    pub id: String,
    pub name: String,
    admin_token: String,
    user_token: String,
    created_at: String,
    pub engine: Arc<dyn Engine>,
    pub live: RwLock<Live>,
    /// Resource token values by token name, kept across deploys.
    token_values: Mutex<BTreeMap<String, String>>,
    pub deployments: Mutex<Vec<Deployment>>,
    rate: Mutex<HashMap<String, (i64, i64)>>,
    pub config: Config,
    pub store: Option<Store>,
    pub jobs: Mutex<HashMap<String, serde_json::Value>>,
    /// Copy pipes whose schedule is paused (`POST /v0/pipes/{name}/copy/pause`).
    pub paused_copies: Mutex<std::collections::HashSet<String>>,
    /// Serialises deploys and other whole-workspace changes.
    pub deploy_lock: tokio::sync::Mutex<()>,
    /// Query timeout and concurrency.
    pub limits: crate::engine::runtime::QueryLimits,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace").field("id", &self.id).field("admin_token", &"<redacted>").finish_non_exhaustive()
    }
}

impl Workspace {
    pub(super) fn new(identity: Identity, engine: Arc<dyn Engine>, config: Config, store: Option<Store>) -> Workspace {
        Workspace {
            id: identity.id,
            name: identity.name,
            admin_token: identity.admin_token,
            user_token: identity.user_token,
            created_at: identity.created_at,
            engine,
            live: RwLock::new(Live::default()),
            token_values: Mutex::new(identity.resource_tokens),
            deployments: Mutex::new(Vec::new()),
            rate: Mutex::new(HashMap::new()),
            store,
            jobs: Mutex::new(HashMap::new()),
            paused_copies: Mutex::new(std::collections::HashSet::new()),
            deploy_lock: tokio::sync::Mutex::new(()),
            limits: crate::engine::runtime::QueryLimits::new(config.query_timeout, config.max_concurrent_queries),
            config,
        }
    }

    pub(super) fn identity(&self) -> Identity {
        Identity {
            id: self.id.clone(),
            name: self.name.clone(),
            admin_token: self.admin_token.clone(),
            user_token: self.user_token.clone(),
            resource_tokens: self.token_values.lock().map(|t| t.clone()).unwrap_or_default(),
            created_at: self.created_at.clone(),
        }
    }

    pub(super) fn created_at(&self) -> &str {
        &self.created_at
    }

    /// When a resource (`datasource:<name>`, `pipe:<name>`) was created and last changed.
    pub(super) fn stamps(&self, key: &str) -> (String, String) {
        self.live
            .read()
            .ok()
            .and_then(|l| l.stamps.get(key).cloned())
            .unwrap_or_else(|| (self.created_at.clone(), self.created_at.clone()))
    }

    pub(super) fn admin_token(&self) -> &str {
        &self.admin_token
    }

    pub(super) fn user_token(&self) -> &str {
        &self.user_token
    }

    /// Compared in constant time, so response times reveal nothing of the tokens.
    pub(super) fn is_admin_token(&self, token: &str) -> bool {
        constant_time_eq(token.as_bytes(), self.admin_token.as_bytes())
            | constant_time_eq(token.as_bytes(), self.user_token.as_bytes())
    }

    /// Whether `token` is the user token, compared in constant time.
    pub(super) fn is_user_token(&self, token: &str) -> bool {
        constant_time_eq(token.as_bytes(), self.user_token.as_bytes())
    }

    /// Every table this workspace's engine holds for it: datasources and their quarantine tables.
    pub(super) fn table_names(&self) -> Vec<String> {
        let names: Vec<String> = self.live.read().map(|l| l.datasources.keys().cloned().collect()).unwrap_or_default();
        names.iter().flat_map(|n| [n.clone(), format!("{n}_quarantine")]).collect()
    }

    /// The JWT signing key: the admin token's text.
    pub(super) fn signing_key(&self) -> &[u8] {
        self.admin_token.as_bytes()
    }

    pub(super) fn static_grants(&self, token: &str) -> Option<Grants> {
        self.live.read().ok()?.tokens.get(token).cloned()
    }

    /// A resource token's value by name.
    pub(super) fn token_value(&self, name: &str) -> Option<String> {
        self.token_values.lock().ok()?.get(name).cloned()
    }

    /// Every resource token: (name, value, scopes).
    pub(super) fn resource_tokens(&self) -> Vec<TokenListing> {
        let live = self.live.read().map(|l| l.tokens.clone()).unwrap_or_default();
        let mut out: Vec<_> = live.into_iter().map(|(value, g)| (g.name, value, g.scopes)).collect();
        out.sort();
        out
    }

    /// Creates a named static token with scopes (Token API without `expiration_time`).
    pub(super) fn add_static_token(&self, name: &str, scopes: Vec<(ScopeKind, String)>) -> String {
        let value = self.token_value_for(name);
        if let Ok(mut live) = self.live.write() {
            live.tokens.insert(value.clone(), Grants { name: name.to_string(), scopes });
        }
        self.persist_identity();
        value
    }

    /// Gives a static token (by name) a new value; the old one stops working. None when there is no such token.
    pub(super) fn refresh_static_token(&self, name: &str) -> Option<String> {
        let fresh;
        {
            let mut live = self.live.write().ok()?;
            let old = live.tokens.iter().find(|(_, g)| g.name == name).map(|(v, _)| v.clone())?;
            // The token id (in the value's payload) stays the same.
            let id = Some(super::identity::token_id(&old))
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            fresh = static_token_with_id(&self.id, &id);
            let grants = live.tokens.remove(&old)?;
            live.tokens.insert(fresh.clone(), grants);
        }
        if let Ok(mut values) = self.token_values.lock() {
            values.insert(name.to_string(), fresh.clone());
        }
        self.persist_identity();
        Some(fresh)
    }

    /// Deletes a static token (by name): it stops working. Whether there was one.
    pub(super) fn delete_static_token(&self, name: &str) -> bool {
        let removed = match self.live.write() {
            Ok(mut live) => {
                let before = live.tokens.len();
                live.tokens.retain(|_, g| g.name != name);
                live.tokens.len() != before
            }
            Err(_) => false,
        };
        if removed {
            if let Ok(mut values) = self.token_values.lock() {
                values.remove(name);
            }
            self.persist_identity();
        }
        removed
    }

    fn token_value_for(&self, name: &str) -> String {
        let mut values = self.token_values.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        values.entry(name.to_string()).or_insert_with(|| static_token(&self.id, name)).clone()
    }

    pub(super) fn persist_identity(&self) {
        if let Some(store) = &self.store {
            let _ = store.save_identity(&self.identity());
        }
    }

    /// Applies the JWT's `limits.rps`, counted per JWT name over one-second windows.
    pub(super) fn rate_limit(&self, claims: &JwtClaims) -> Result<RateHeaders, ApiError> {
        let Some(rps) = claims.limits.as_ref().and_then(|l| l.rps).filter(|r| *r > 0) else {
            return Ok(Vec::new());
        };
        let now = super::grants::now_unix();
        let mut rate = self.rate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = rate.entry(claims.name.clone()).or_insert((now, 0));
        if entry.0 != now {
            *entry = (now, 0);
        }
        let limit = HeaderName::from_static("x-ratelimit-limit");
        let remaining = HeaderName::from_static("x-ratelimit-remaining");
        let reset = HeaderName::from_static("x-ratelimit-reset");
        if entry.1 >= rps {
            return Err(ApiError::new(
                429,
                format!("Too many requests: the JWT '{}' is limited to {rps} requests per second", claims.name),
            )
            .with_header(axum::http::header::RETRY_AFTER, "1")
            .with_header(limit, rps.to_string())
            .with_header(remaining, "0")
            .with_header(reset, "1"));
        }
        entry.1 += 1;
        Ok(vec![(limit, rps.to_string()), (remaining, (rps - entry.1).to_string()), (reset, "1".into())])
    }

    /// Makes `resources` live. Datasources whose schema is unchanged keep their rows; changed ones are recreated;
    /// datasources missing from `resources` are dropped only when `destructive`.
    pub(super) async fn apply(&self, resources: &Resources, destructive: bool) -> Result<Changes, ApiError> {
        // What this server does not simulate is refused however the resources came (datafiles, or a `Project`).
        let unsimulated = crate::resources::unsimulated(resources);
        if !unsimulated.is_empty() {
            let text: Vec<String> = unsimulated.iter().map(ToString::to_string).collect();
            return Err(ApiError::bad_request(text.join("; ")));
        }
        let mut changes = Changes::default();
        // An engine's own materialized views go first (they read and write the tables about to change), and come
        // back at the end for the new set of pipes.
        if self.engine.native_views() {
            self.engine.set_views(Vec::new(), &[]).await.map_err(ApiError::from)?;
        }
        let (old_ds, old_pipes) = {
            let live = self.live.read().map_err(|_| ApiError::internal("state lock poisoned"))?;
            (live.datasources.clone(), live.pipes.clone())
        };
        let mut datasources = BTreeMap::new();
        let mut ingest = HashMap::new();
        for def in &resources.datasources {
            let columns = ingest_columns_for(def, self.engine.flavor())
                .map_err(|e| ApiError::bad_request(format!("[{}.datasource] {e}", def.name)))?;
            match old_ds.get(&def.name) {
                Some(old) if old.columns == def.columns => {
                    if old != def {
                        changes.changed_datasource_names.push(def.name.clone());
                    }
                }
                old => {
                    self.engine.create_table(def).await.map_err(|e| ApiError::bad_request(e.to_string()))?;
                    if old.is_some() {
                        // The schema changed: the stored rows no longer fit it.
                        if let Some(store) = &self.store {
                            store.remove_rows(&def.name);
                        }
                        changes.changed_datasource_names.push(def.name.clone());
                    } else {
                        changes.new_datasource_names.push(def.name.clone());
                    }
                }
            }
            ingest.insert(def.name.clone(), Arc::new(columns));
            datasources.insert(def.name.clone(), def.clone());
        }
        for (name, def) in &old_ds {
            if datasources.contains_key(name) {
                continue;
            }
            if destructive {
                let _ = self.engine.drop_table(name).await;
                let _ = self.engine.drop_table(&format!("{name}_quarantine")).await;
                if let Some(store) = &self.store {
                    store.remove_rows(name);
                }
                changes.deleted_datasource_names.push(name.clone());
            } else {
                // Kept: deleting data needs `allow_destructive_operations=true`.
                ingest
                    .insert(name.clone(), Arc::new(ingest_columns_for(def, self.engine.flavor()).unwrap_or_default()));
                datasources.insert(name.clone(), def.clone());
            }
        }
        let mut pipes = BTreeMap::new();
        for pipe in &resources.pipes {
            match old_pipes.get(&pipe.name) {
                Some(old) if old == pipe => {}
                Some(_) => changes.changed_pipe_names.push(pipe.name.clone()),
                None => changes.new_pipe_names.push(pipe.name.clone()),
            }
            pipes.insert(pipe.name.clone(), pipe.clone());
        }
        changes.deleted_pipe_names = old_pipes.keys().filter(|n| !pipes.contains_key(*n)).cloned().collect();
        // Tokens: one per TOKEN name, with every scope the datafiles give it.
        let mut grants: BTreeMap<String, Vec<(ScopeKind, String)>> = BTreeMap::new();
        for def in datasources.values() {
            for t in &def.tokens {
                let kind = match t.permission {
                    TokenPermission::Read => ScopeKind::DatasourcesRead,
                    TokenPermission::Append => ScopeKind::DatasourcesAppend,
                };
                grants.entry(t.name.clone()).or_default().push((kind, def.name.clone()));
            }
        }
        for pipe in pipes.values() {
            for t in &pipe.tokens {
                grants.entry(t.name.clone()).or_default().push((ScopeKind::PipesRead, pipe.name.clone()));
            }
        }
        let mut tokens: HashMap<String, Grants> = {
            let live = self.live.read().map_err(|_| ApiError::internal("state lock poisoned"))?;
            // Tokens created through the Token API stay.
            let datafile_names: Vec<String> = grants.keys().cloned().collect();
            live.tokens
                .iter()
                .filter(|(_, g)| {
                    !datafile_names.contains(&g.name)
                        && g.scopes.iter().all(|(_, r)| datasources.contains_key(r) || pipes.contains_key(r))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        for (name, scopes) in grants {
            tokens.insert(self.token_value_for(&name), Grants { name, scopes });
        }
        {
            let mut live = self.live.write().map_err(|_| ApiError::internal("state lock poisoned"))?;
            let now = timestamp_now();
            let touched: std::collections::HashSet<String> = changes
                .new_datasource_names
                .iter()
                .chain(&changes.changed_datasource_names)
                .map(|n| format!("datasource:{n}"))
                .chain(changes.new_pipe_names.iter().chain(&changes.changed_pipe_names).map(|n| format!("pipe:{n}")))
                .collect();
            let keys =
                datasources.keys().map(|n| format!("datasource:{n}")).chain(pipes.keys().map(|n| format!("pipe:{n}")));
            let stamps = keys
                .map(|key| {
                    let stamp = match live.stamps.get(&key) {
                        Some((created, _)) if touched.contains(&key) => (created.clone(), now.clone()),
                        Some(old) => old.clone(),
                        None => (now.clone(), now.clone()),
                    };
                    (key, stamp)
                })
                .collect();
            let connections = resources.connections.iter().map(|c| (c.name.clone(), c.clone())).collect();
            *live = Live { connections, datasources, ingest, pipes, tokens, stamps };
        }
        self.persist_identity();
        if self.engine.native_views() {
            let pipes: Vec<Pipe> = self
                .live
                .read()
                .map(|l| l.pipes.values().filter(|p| p.materialized_target.is_some()).cloned().collect())
                .unwrap_or_default();
            let mut views = Vec::with_capacity(pipes.len());
            for pipe in pipes {
                let query = super::compose::pipe_query(
                    &pipe,
                    &tinybird_template::Variables::new(),
                    false,
                    self.engine.flavor(),
                )?;
                views.push((pipe.name.clone(), pipe.materialized_target.clone().unwrap_or_default(), query));
            }
            self.engine
                .set_views(views, &changes.new_pipe_names)
                .await
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        } else {
            self.backfill(&changes.new_pipe_names).await?;
        }
        Ok(changes)
    }

    /// New materialized views start with the rows their datasources already hold, as Tinybird backfills them.
    async fn backfill(&self, new_pipes: &[String]) -> Result<(), ApiError> {
        for name in new_pipes {
            let Some(pipe) = self.pipe(name).filter(|p| p.materialized_target.is_some()) else { continue };
            let query =
                super::compose::pipe_query(&pipe, &tinybird_template::Variables::new(), false, self.engine.flavor())?;
            for ds in crate::engine::compat::referenced_tables(&query) {
                if !self.is_datasource(&ds) {
                    continue;
                }
                let rows = self.engine.dump(&ds).await?;
                if !rows.is_empty() {
                    self.materialize(&pipe, &ds, rows, true, 0).await.map_err(|e| {
                        let why = e.body["error"].as_str().unwrap_or("failed").to_string();
                        ApiError::bad_request(format!(
                            "The resources were applied, but backfilling materialized view '{name}' from '{ds}' failed: {why}"
                        ))
                    })?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn datasource(&self, name: &str) -> Option<(DatasourceDef, Arc<Vec<IngestColumn>>)> {
        let live = self.live.read().ok()?;
        Some((live.datasources.get(name)?.clone(), live.ingest.get(name)?.clone()))
    }

    pub(super) fn pipe(&self, name: &str) -> Option<Pipe> {
        self.live.read().ok()?.pipes.get(name).cloned()
    }

    /// Parses a caller's query for this workspace's engine.
    pub(super) fn parse(
        &self,
        sql: &str,
    ) -> Result<datafusion::sql::sqlparser::ast::Query, crate::engine::EngineError> {
        crate::engine::compat::parse_for(sql, self.engine.flavor())
    }

    pub(super) fn is_datasource(&self, name: &str) -> bool {
        self.live.read().map(|l| l.datasources.contains_key(name)).unwrap_or(false)
    }

    /// Appends rows to a datasource and quarantined rows to `<ds>_quarantine`, persisting when a data dir is set,
    /// then feeds the materialized views that read the datasource. A failing view gives 422 (rows partially
    /// ingested), as Tinybird does.
    pub(super) async fn append(
        &self,
        ds: &str,
        rows: Vec<Vec<Value>>,
        quarantined: Vec<Quarantined>,
        durable: bool,
    ) -> Result<(u64, u64), ApiError> {
        self.append_at(ds, rows, quarantined, durable, 0).await
    }

    fn append_at<'a>(
        &'a self,
        ds: &'a str,
        rows: Vec<Vec<Value>>,
        quarantined: Vec<Quarantined>,
        durable: bool,
        depth: usize,
    ) -> AppendFuture<'a> {
        Box::pin(async move {
            let q = quarantined.len() as u64;
            if !quarantined.is_empty() {
                self.quarantine(ds, quarantined).await?;
            }
            let n = rows.len() as u64;
            if rows.is_empty() {
                return Ok((0, q));
            }
            // An engine with its own materialized views feeds them on insert.
            let views = if self.engine.native_views() { Vec::new() } else { self.views_reading(ds) };
            let source = (!views.is_empty()).then(|| rows.clone());
            match &self.store {
                Some(store) => {
                    let columns = self.datasource(ds).map(|(_, c)| c).ok_or_else(|| ApiError::not_found(ds))?;
                    let _guard = store.lock().await;
                    store
                        .append_rows(ds, &columns, &rows, durable)
                        .map_err(|e| ApiError::new(503, format!("could not persist rows: {e}")))?;
                    self.engine.append(ds, rows).await?;
                }
                None => {
                    self.engine.append(ds, rows).await?;
                }
            }
            if let Some(source) = source {
                for view in views {
                    self.materialize(&view, ds, source.clone(), durable, depth).await.map_err(|e| {
                        let why = e.body["error"].as_str().unwrap_or("failed").to_string();
                        ApiError::new(
                            422,
                            format!(
                                "Rows were ingested into '{ds}', but materialized view '{}' failed: {why}",
                                view.name
                            ),
                        )
                    })?;
                }
            }
            Ok((n, q))
        })
    }

    /// Materialized pipes whose SQL reads `ds`.
    fn views_reading(&self, ds: &str) -> Vec<Pipe> {
        let pipes: Vec<Pipe> = self
            .live
            .read()
            .map(|l| l.pipes.values().filter(|p| p.materialized_target.is_some()).cloned().collect())
            .unwrap_or_default();
        pipes.into_iter().filter(|p| p.nodes.iter().any(|n| n.sql.contains(ds))).collect()
    }

    /// Runs a materialized view's SQL over just-ingested rows and appends the result to its target.
    async fn materialize(
        &self,
        view: &Pipe,
        ds: &str,
        rows: Vec<Vec<Value>>,
        durable: bool,
        depth: usize,
    ) -> Result<(), ApiError> {
        const MAX_DEPTH: usize = 8;
        if depth >= MAX_DEPTH {
            return Err(ApiError::bad_request(format!("materialized views chain more than {MAX_DEPTH} levels deep")));
        }
        let Some(target) = view.materialized_target.clone() else { return Ok(()) };
        let mut query =
            super::compose::pipe_query(view, &tinybird_template::Variables::new(), false, self.engine.flavor())?;
        if !crate::engine::compat::referenced_tables(&query).iter().any(|t| t == ds) {
            return Ok(());
        }
        let columns: Vec<(String, ChType)> = self
            .engine
            .table_columns(ds)
            .ok_or_else(|| ApiError::not_found(ds))?
            .into_iter()
            .map(|c| (c.name, c.ty))
            .collect();
        // The view sees only the new rows: a scratch table stands in for the datasource.
        let scratch = format!("__tb_mv_{}", uuid::Uuid::new_v4().simple());
        self.engine.create_table_with_columns(&scratch, &columns).await?;
        let result = async {
            self.engine.append(&scratch, rows).await?;
            crate::engine::compat::rename_table(&mut query, ds, &scratch);
            let engine = self.engine.clone();
            crate::engine::runtime::run(&self.limits, async move {
                engine.run_query(query, &crate::engine::TableScope::All).await
            })
            .await
        }
        .await;
        let _ = self.engine.drop_table(&scratch).await;
        let result = result?;
        let out = self.rows_for(&target, &result, "the view")?;
        self.append_at(&target, out, Vec::new(), durable, depth + 1).await?;
        Ok(())
    }

    /// A query's result as rows of a datasource: columns matched by name, a missing one given its default (or NULL
    /// when `Nullable`), values of another type converted as the Events API would convert them. `what` names the
    /// query in errors ("the view", "copy pipe 'p'").
    pub(super) fn rows_for(
        &self,
        target: &str,
        result: &crate::engine::QueryResult,
        what: &str,
    ) -> Result<Vec<Vec<Value>>, ApiError> {
        let (_, target_columns) = self.datasource(target).ok_or_else(|| ApiError::not_found(target))?;
        let mut positions = Vec::with_capacity(target_columns.len());
        for c in target_columns.iter() {
            let pos = result.columns.iter().position(|r| r.name == c.name);
            if pos.is_none() && c.default.is_none() && !c.ty.is_nullable() {
                return Err(ApiError::bad_request(format!(
                    "{what} does not produce column '{}' of '{target}'",
                    c.name
                )));
            }
            positions.push(pos);
        }
        const EXACT: crate::format::OutputOptions =
            crate::format::OutputOptions { quote_64bit: true, quote_denormals: true };
        let mut out = Vec::with_capacity(result.num_rows());
        for row in result.rows() {
            let mut converted = Vec::with_capacity(target_columns.len());
            for (c, pos) in target_columns.iter().zip(&positions) {
                let value = match pos {
                    None => c.default.clone().unwrap_or(Value::Null),
                    Some(i) if result.columns[*i].ty == c.ty => row[*i].clone(),
                    Some(i) => {
                        let mut text = String::new();
                        crate::format::json_value(&mut text, &row[*i], &result.columns[*i].ty, EXACT);
                        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                        crate::ingest::convert(&json, &c.ty).map_err(|_| {
                            ApiError::bad_request(format!(
                                "value {text} of column '{}' does not fit type {} in '{target}'",
                                c.name, c.ty
                            ))
                        })?
                    }
                };
                converted.push(value);
            }
            out.push(converted);
        }
        Ok(out)
    }

    async fn quarantine(&self, ds: &str, rows: Vec<Quarantined>) -> Result<(), ApiError> {
        let table = format!("{ds}_quarantine");
        let (def, _) = self.datasource(ds).ok_or_else(|| ApiError::not_found(ds))?;
        let mut columns: Vec<(String, ChType)> =
            def.columns.iter().map(|c| (c.name.clone(), ChType::Nullable(Box::new(ChType::String)))).collect();
        columns.push(("c__error_column".into(), ChType::Array(Box::new(ChType::String))));
        columns.push(("c__error".into(), ChType::Array(Box::new(ChType::String))));
        columns.push(("c__import_id".into(), ChType::Nullable(Box::new(ChType::String))));
        columns.push(("insertion_date".into(), ChType::DateTime { precision: None, tz: None }));
        if self.engine.table_columns(&table).is_none() {
            self.engine.create_table_with_columns(&table, &columns).await?;
        }
        let now = chrono::Utc::now().timestamp() * 1_000_000_000;
        let import_id = uuid::Uuid::new_v4().to_string();
        let rows = rows
            .into_iter()
            .map(|q| {
                let mut row: Vec<Value> =
                    q.values.into_iter().map(|v| v.map(Value::Str).unwrap_or(Value::Null)).collect();
                row.push(Value::Array(q.error_columns.into_iter().map(Value::Str).collect()));
                row.push(Value::Array(q.errors.into_iter().map(Value::Str).collect()));
                row.push(Value::Str(import_id.clone()));
                row.push(Value::DateTime(i128::from(now)));
                row
            })
            .collect();
        self.engine.append(&table, rows).await?;
        Ok(())
    }

    /// Holds off appends while a delete, truncate or replace rewrites the stored rows (no-op without a data dir).
    pub(super) async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.store {
            Some(store) => Some(store.lock().await),
            None => None,
        }
    }

    /// Rewrites a datasource's persisted rows from the engine (after delete, truncate, replace). Call it under
    /// [`Workspace::write_guard`], with the change that needs it.
    pub(super) async fn snapshot(&self, ds: &str) -> Result<(), ApiError> {
        if let Some(store) = &self.store {
            let columns = self.datasource(ds).map(|(_, c)| c).ok_or_else(|| ApiError::not_found(ds))?;
            let rows = self.engine.dump(ds).await?;
            store
                .write_rows(ds, &columns, &rows)
                .map_err(|e| ApiError::new(503, format!("could not persist rows: {e}")))?;
        }
        Ok(())
    }
}

/// Whether two byte strings are equal, taking the same time for every pair of the same length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The ingestion view of a datasource's columns on an engine (the ClickHouse engine also stores types the server does
/// not model).
pub(super) fn ingest_columns_for(
    def: &DatasourceDef,
    flavor: crate::engine::Flavor,
) -> Result<Vec<IngestColumn>, String> {
    def.columns
        .iter()
        .map(|c| {
            let ty = match flavor {
                crate::engine::Flavor::DataFusion => ChType::parse(&c.ty),
                crate::engine::Flavor::ClickHouse => ChType::parse_for_clickhouse(&c.ty),
            }
            .map_err(|e| format!("column '{}': {e}", c.name))?;
            Ok(IngestColumn::new(&c.name, ty, c.json_path.as_deref(), c.default.as_deref()))
        })
        .collect()
}

#[cfg(test)]
mod audit_tests {
    use super::*;

    #[test]
    fn live_debug_never_shows_token_values() {
        let mut live = Live::default();
        live.tokens.insert("p.secret-token-value".into(), Grants { name: "reader".into(), scopes: Vec::new() });
        let shown = format!("{live:?}");
        assert!(shown.contains("reader"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
