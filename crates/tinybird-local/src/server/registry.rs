//! The server's workspaces. The first is the server's own (its admin token is [`super::LocalServer::admin_token`]);
//! clients such as `tb` create more (`POST /v1/workspaces`), each with its own admin token, engine (its own tables),
//! resources, deployments and jobs, and with `--data-dir` its own folder under `workspaces/<id>/`.
//!
//! A request goes to the workspace its token names: a static token's `u` or a JWT's `workspace_id` (both unverified
//! here; the workspace then authenticates the token itself, so a token naming a workspace it was not issued by fails
//! there). A request without a token, or whose token names no workspace, goes to the server's own workspace, where
//! it is refused or answered as before.

use super::auth::request_token;
use super::error::ApiError;
use super::identity::{Identity, static_token};
use super::state::{Config, Deployment, Workspace};
use super::store::Store;
use super::{StartError, params};
use crate::engine::{ClickHouseEngine, ClickHouseOptions, DataFusionEngine, Engine};
use crate::resources::{FileError, Resources};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// How a workspace's engine is started.
#[derive(Debug, Clone)]
pub(super) enum EngineSpec {
    DataFusion,
    ClickHouse(ClickHouseOptions),
}

impl EngineSpec {
    pub(super) async fn start(&self, config: &Config) -> Result<Arc<dyn Engine>, StartError> {
        Ok(match self {
            EngineSpec::DataFusion => {
                Arc::new(DataFusionEngine::with_limits(config.memory_limit, config.max_result_bytes))
            }
            EngineSpec::ClickHouse(options) => {
                let options = options.clone();
                let engine = tokio::task::spawn_blocking(move || ClickHouseEngine::start(options))
                    .await
                    .map_err(|e| StartError::Engine(format!("the ClickHouse engine failed to start: {e}")))?
                    .map_err(StartError::Engine)?;
                Arc::new(engine)
            }
        })
    }
}

/// Every workspace of a server.
pub(super) struct Registry {
    /// `[0]` is the server's own workspace, which is never deleted.
    workspaces: RwLock<Vec<Arc<Workspace>>>,
    engine: EngineSpec,
    config: Config,
    data_dir: Option<PathBuf>,
    /// Serialises creations and deletions (names stay unique).
    change_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> =
            self.workspaces.read().map(|w| w.iter().map(|w| w.id.clone()).collect()).unwrap_or_default();
        f.debug_struct("Registry").field("workspaces", &ids).finish_non_exhaustive()
    }
}

/// The most workspaces a server holds (each has its own engine, query slots and memory budget).
const MAX_WORKSPACES: usize = 100;

/// The longest token whose workspace is looked up (longer ones go to the server's own workspace and fail there).
const MAX_ROUTED_TOKEN: usize = 16 * 1024;

/// The workspace a token names, without verifying anything: a static token's `u`, a JWT's `workspace_id`.
fn token_workspace_id(token: &str) -> Option<String> {
    if token.len() > MAX_ROUTED_TOKEN {
        return None;
    }
    let mut parts = token.split('.');
    let (first, payload) = (parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let key = if first == "p" { "u" } else { "workspace_id" };
    value.get(key)?.as_str().map(str::to_string)
}

/// A valid workspace name: 1 to 128 ASCII letters, digits and underscores, starting with a letter.
pub(super) fn check_workspace_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid workspace name {name:?}: use 1 to 128 letters, digits and underscores, starting with a letter"
        )))
    }
}

impl Registry {
    /// Starts the server's own workspace and every workspace saved under `data_dir/workspaces/`.
    pub(super) async fn start(
        engine: EngineSpec,
        config: Config,
        data_dir: Option<PathBuf>,
        resources: Resources,
    ) -> Result<Registry, StartError> {
        let store = data_dir.as_ref().map(Store::open).transpose()?;
        let identity = store.as_ref().and_then(Store::load_identity).unwrap_or_else(Identity::generate);
        let user_token = identity.user_token.clone();
        let own = load(&engine, &config, identity, store, resources).await?;
        let mut workspaces = vec![own];
        if let Some(dir) = &data_dir {
            for (path, identity) in saved_workspaces(&dir.join("workspaces")) {
                let mut identity = identity;
                identity.user_token = user_token.clone();
                let name = identity.name.clone();
                let loaded = match Store::open(&path) {
                    Ok(store) => load(&engine, &config, identity, Some(store), Resources::default()).await,
                    Err(e) => Err(StartError::Io(e)),
                };
                match loaded {
                    Ok(ws) => workspaces.push(ws),
                    // One workspace that no longer loads does not keep the others from starting; its folder stays.
                    Err(e) => eprintln!("tinybird-local: workspace '{name}' ({}) not loaded: {e}", path.display()),
                }
            }
        }
        Ok(Registry {
            workspaces: RwLock::new(workspaces),
            engine,
            config,
            data_dir,
            change_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The server's own workspace.
    pub(super) fn own(&self) -> Arc<Workspace> {
        self.all().swap_remove(0)
    }

    /// Every workspace, the server's own first.
    pub(super) fn all(&self) -> Vec<Arc<Workspace>> {
        self.workspaces.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The workspace a request's token names, else the server's own.
    pub(super) fn resolve(&self, token: Option<&str>) -> Arc<Workspace> {
        let all = self.workspaces.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        token
            .and_then(token_workspace_id)
            .and_then(|id| all.iter().find(|w| w.id == id).cloned())
            .unwrap_or_else(|| all[0].clone())
    }

    /// Whether `token` is the user token (the same in every workspace), compared in constant time.
    pub(super) fn is_user_token(&self, token: &str) -> bool {
        self.own().is_user_token(token)
    }

    /// Creates an empty workspace named `name`.
    pub(super) async fn create(&self, name: &str) -> Result<Arc<Workspace>, ApiError> {
        check_workspace_name(name)?;
        let _lock = self.change_lock.lock().await;
        let all = self.all();
        if all.iter().any(|w| w.name == name) {
            return Err(ApiError::bad_request(format!("A workspace named '{name}' already exists")));
        }
        if all.len() >= MAX_WORKSPACES {
            return Err(ApiError::bad_request(format!(
                "This server holds {MAX_WORKSPACES} workspaces, its limit: delete one first (DELETE /v1/workspaces/{{id}})"
            )));
        }
        let own = self.own();
        let id = uuid::Uuid::new_v4().to_string();
        let identity = Identity {
            admin_token: static_token(&id, "workspace admin token"),
            user_token: own.user_token().to_string(),
            name: name.to_string(),
            id,
            resource_tokens: Default::default(),
            created_at: super::identity::timestamp_now(),
        };
        let store = match &self.data_dir {
            Some(dir) => Some(
                Store::open(dir.join("workspaces").join(&identity.id))
                    .map_err(|e| ApiError::internal(format!("could not create the workspace's folder: {e}")))?,
            ),
            None => None,
        };
        let ws =
            load(&self.engine, &self.config, identity, store, Resources::default()).await.map_err(|e| match e {
                StartError::Engine(why) => ApiError::new(503, why),
                other => ApiError::internal(other.to_string()),
            })?;
        self.workspaces.write().unwrap_or_else(std::sync::PoisonError::into_inner).push(ws.clone());
        Ok(ws)
    }

    /// Deletes a workspace other than the server's own, with its data.
    pub(super) async fn delete(&self, id: &str) -> Result<Arc<Workspace>, ApiError> {
        let _lock = self.change_lock.lock().await;
        let removed = {
            let mut all = self.workspaces.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(pos) = all.iter().position(|w| w.id == id || w.name == id) else {
                return Err(ApiError::new(404, format!("Workspace '{id}' not found")));
            };
            if pos == 0 {
                return Err(ApiError::bad_request(
                    "The server's own workspace cannot be deleted (stop the server, or start it with another --data-dir)",
                ));
            }
            all.remove(pos)
        };
        // Nothing is written for it any more: deploys and appends under way finish in memory only.
        let deploy = removed.deploy_lock.lock().await;
        if let Some(store) = &removed.store {
            let _writes = store.lock().await;
            store.close();
            // Renamed first, so that a folder half removed is never loaded as a workspace.
            let dir = store.dir().to_path_buf();
            let trash = dir.with_file_name(format!(".deleted-{}", uuid::Uuid::new_v4().simple()));
            std::fs::rename(&dir, &trash)
                .and_then(|()| std::fs::remove_dir_all(&trash))
                .map_err(|e| ApiError::internal(format!("the workspace was deleted, but not its folder: {e}")))?;
        }
        for name in removed.table_names() {
            let _ = removed.engine.drop_table(&name).await;
        }
        drop(deploy);
        Ok(removed)
    }
}

/// The workspaces saved under `root`: real folders (not links) whose name is a workspace id and holds that
/// workspace's identity. Anything else there is reported and left alone.
fn saved_workspaces(root: &std::path::Path) -> Vec<(PathBuf, Identity)> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            // A deletion that did not finish.
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let identity = is_dir
            .then(|| std::fs::read_to_string(path.join("workspace.json")).ok())
            .flatten()
            .and_then(|text| serde_json::from_str::<Identity>(&text).ok());
        match identity {
            Some(identity) if identity.id == name => found.push((path, identity)),
            _ => eprintln!("tinybird-local: {} is not a workspace folder; ignored", path.display()),
        }
    }
    found.sort_by(|a, b| a.1.created_at.cmp(&b.1.created_at).then_with(|| a.0.cmp(&b.0)));
    found
}

/// Starts one workspace: its engine, its resources (the saved project when there is one), its saved rows.
async fn load(
    engine: &EngineSpec,
    config: &Config,
    identity: Identity,
    store: Option<Store>,
    resources: Resources,
) -> Result<Arc<Workspace>, StartError> {
    let mut resources = resources;
    if let Some(store) = &store {
        let files = store.project_files();
        if !files.is_empty() {
            resources = Resources::from_files(files).map_err(|e| StartError::Project(e.0))?;
        }
    }
    let engine = engine.start(config).await?;
    let ws = Arc::new(Workspace::new(identity, engine, config.clone(), store));
    ws.apply(&resources, true).await.map_err(|e| {
        StartError::Project(vec![FileError {
            filename: "project".into(),
            error: e.body["error"].as_str().unwrap_or("invalid resources").to_string(),
        }])
    })?;
    if let Some(store) = &ws.store {
        let defs: Vec<_> = ws.live.read().map(|l| l.ingest.clone()).unwrap_or_default().into_iter().collect();
        for (name, columns) in defs {
            let rows = store.load_rows(&name, &columns)?;
            if !rows.is_empty() {
                ws.engine.append(&name, rows).await.map_err(|e| std::io::Error::other(e.to_string()))?;
            }
        }
    }
    ws.persist_identity();
    if let Ok(mut list) = ws.deployments.lock() {
        list.push(Deployment::initial(resources));
    }
    Ok(ws)
}

/// The workspace a request is for (see the module documentation).
pub(super) struct Ws(pub(super) Arc<Workspace>);

impl FromRequestParts<Arc<Registry>> for Ws {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, registry: &Arc<Registry>) -> Result<Self, Self::Rejection> {
        let query_token = parts.uri.query().and_then(|q| {
            params::form_pairs(q.as_bytes()).into_iter().find(|(k, _)| k == "token").and_then(|(_, v)| match v {
                tinybird_template::ParamValue::Str(s) => Some(s),
                _ => None,
            })
        });
        let token = request_token(&parts.headers, query_token.as_deref());
        Ok(Ws(registry.resolve(token.as_deref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_workspace() {
        let token = static_token("ws-1", "x");
        assert_eq!(token_workspace_id(&token).as_deref(), Some("ws-1"));
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwt = format!("{}.{}.sig", b64.encode(r#"{"alg":"HS256"}"#), b64.encode(r#"{"workspace_id":"ws-2"}"#));
        assert_eq!(token_workspace_id(&jwt).as_deref(), Some("ws-2"));
        for bad in ["", "p.", "p.!!!.x", "abc", &format!("p.{}.x", b64.encode("[1]")), &"p.x".repeat(10_000)] {
            assert_eq!(token_workspace_id(bad), None, "{bad:.40}");
        }
    }

    #[test]
    fn workspace_names() {
        for ok in ["local", "Tinybird_Local_Build_3f2a", "a", &"a".repeat(128)] {
            assert!(check_workspace_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "_x", "a-b", "a b", "a/b", "ñ", &"a".repeat(129)] {
            assert!(check_workspace_name(bad).is_err(), "{bad}");
        }
    }
}
