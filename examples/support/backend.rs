//! Where an example runs: an in-process `tinybird-local`, or a Tinybird workspace named by the environment. Shared
//! by the quickstart, `multi_tenant` and `rollup` (each includes this file).

use std::error::Error;

use tinybird::client::Client;
use tinybird::jwt::SigningKey;

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

/// A backend ready to use: an admin client (`admin.base_url()` is the API's), the key that signs JWTs, and the local
/// server when there is one (it stops when this is dropped).
pub struct Connected {
    /// A client with a token that may deploy and append.
    pub admin: Client,
    /// The workspace's JWT signing key.
    pub key: SigningKey,
    _local: Option<tinybird_local::LocalServer>,
}

impl Backend {
    /// Starts `local` (for [`Backend::Local`]) or uses the workspace, saying which.
    pub async fn connect(self, local: tinybird_local::LocalServerBuilder) -> Result<Connected, Box<dyn Error>> {
        let (local, url, admin_token, signing_key) = match self {
            Backend::Local => {
                let server = local.start().await.map_err(|e| format!("tinybird-local does not start: {e}"))?;
                let (url, token) = (server.url().to_owned(), server.admin_token().to_owned());
                println!(
                    "Started tinybird-local ({:?} engine) at {url} (set TINYBIRD_TOKEN to use your Tinybird workspace \
                     instead)",
                    server.engine()
                );
                (Some(server), url, token.clone(), token)
            }
            Backend::Tinybird { url, token, signing_key } => {
                println!("Using Tinybird at {url}");
                (None, url, token, signing_key)
            }
        };
        let admin = Client::builder().base_url(&url).token(admin_token).build()?;
        let key = SigningKey::from_admin_token(&signing_key)?;
        Ok(Connected { admin, key, _local: local })
    }
}

/// An example's `main`: its run with the backend the environment names, and the exit code. Errors are printed
/// (the client's and the JWT module's errors never contain tokens or keys).
pub async fn main<T, F>(run: impl FnOnce(Backend) -> F) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<T, Box<dyn Error>>>,
{
    let result = match Backend::from_env() {
        Ok(backend) => run(backend).await.map(drop),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
