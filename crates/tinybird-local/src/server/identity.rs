//! A workspace's identity: its ids and token values, in Tinybird's static token format, as the store persists them.

use base64::Engine as _;
use std::collections::BTreeMap;

/// Identity of a workspace: ids and tokens.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Identity {
    pub id: String,
    pub name: String,
    pub admin_token: String,
    pub user_token: String,
    #[serde(default)]
    pub resource_tokens: BTreeMap<String, String>,
    /// When the workspace was created, as Tinybird's listings write times (`2026-12-06 16:07:16.123456`).
    #[serde(default = "timestamp_now")]
    pub created_at: String,
}

/// Now, as Tinybird's listings write times: `2026-12-06 16:07:16.123456` (UTC).
pub(super) fn timestamp_now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

impl Identity {
    /// A fresh workspace identity with random tokens.
    pub(super) fn generate() -> Identity {
        let id = uuid::Uuid::new_v4().to_string();
        Identity {
            admin_token: static_token(&id, "workspace admin token"),
            user_token: static_token(&id, "user token"),
            name: "local".into(),
            id,
            resource_tokens: BTreeMap::new(),
            created_at: timestamp_now(),
        }
    }
}

/// Tinybird's static token format: `p.<base64url json {"u": workspace, "id": uuid, "host": …}>.<signature>`.
pub(super) fn static_token(workspace_id: &str, _purpose: &str) -> String {
    static_token_with_id(workspace_id, &uuid::Uuid::new_v4().to_string())
}

/// A new static token value with a given token id (a refreshed token keeps its id).
pub(super) fn static_token_with_id(workspace_id: &str, id: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = serde_json::json!({ "u": workspace_id, "id": id, "host": "local" });
    let sig = [*uuid::Uuid::new_v4().as_bytes(), *uuid::Uuid::new_v4().as_bytes()].concat();
    format!("p.{}.{}", b64.encode(payload.to_string()), b64.encode(sig))
}

/// A static token's id: the `id` its payload carries.
pub(super) fn token_id(token: &str) -> String {
    use base64::Engine as _;
    token
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .unwrap_or_default()
}
