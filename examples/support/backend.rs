//! Where an example runs: an in-process `tinybird-local`, or a Tinybird workspace named by the environment. Shared
//! by the quickstart, `multi_tenant` and `rollup` (each includes this file).

use std::error::Error;

/// Where to run: an in-process `tinybird-local`, or a Tinybird workspace.
#[derive(Clone)]
pub enum Backend {
    /// Start `tinybird-local` in-process on a free port.
    Local,
    /// A Tinybird workspace.
    Tinybird {
        /// API base URL, e.g. `https://api.tinybird.co`.
        url: String,
        /// A token that may deploy and append.
        token: String,
        /// The workspace admin token, used to sign JWTs.
        signing_key: String,
    },
}

impl std::fmt::Debug for Backend {
    // Tokens stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Local => f.write_str("Local"),
            Backend::Tinybird { url, .. } => f.debug_struct("Tinybird").field("url", url).finish_non_exhaustive(),
        }
    }
}

impl Backend {
    /// `Local` unless `TINYBIRD_TOKEN` is set; then `TINYBIRD_SIGNING_KEY` is required and `TINYBIRD_URL` defaults
    /// to `https://api.tinybird.co`.
    pub fn from_env() -> Result<Backend, Box<dyn Error>> {
        let Some(token) = non_empty_var("TINYBIRD_TOKEN") else {
            return Ok(Backend::Local);
        };
        let signing_key = non_empty_var("TINYBIRD_SIGNING_KEY").ok_or(
            "TINYBIRD_TOKEN is set but TINYBIRD_SIGNING_KEY is not: set it to the workspace admin token, which signs \
             the JWTs (or unset TINYBIRD_TOKEN to run against tinybird-local)",
        )?;
        let url = non_empty_var("TINYBIRD_URL").unwrap_or_else(|| "https://api.tinybird.co".to_owned());
        Ok(Backend::Tinybird { url, token, signing_key })
    }
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
