//! The Token API: JWTs created by the server (spec §1.7, official SDK §2.7).

use reqwest::Method;
use serde::Deserialize;

use super::{Body, Client, Request, RetryOn, read_body};
use crate::error::{Error, ErrorKind, Result};
use crate::jwt::{HasExpiry, Jwt, JwtBuilder};

/// The Token API's answer. `Debug` never shows the token.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    token: String,
    /// The token's name, when the server echoes it.
    #[serde(default)]
    pub name: Option<String>,
    /// Expiry (unix seconds), when the server echoes it.
    #[serde(default)]
    pub exp: Option<i64>,
}

impl TokenResponse {
    /// The token itself (a JWT). Handle with care: it grants what its scopes say until it expires.
    pub fn token(&self) -> &str {
        &self.token
    }
    /// Consumes the response, returning the token.
    pub fn into_token(self) -> String {
        self.token
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &"<redacted>")
            .field("name", &self.name)
            .field("exp", &self.exp)
            .finish()
    }
}

impl Client {
    /// Creates a token with the Token API: `POST /v0/tokens/?{query}` with a JSON `body`
    /// (`{"name","scopes","limits"}`). `query` holds `name` and `expiration_time` (a JWT is created when
    /// `expiration_time` is present). The client's token needs the ADMIN or TOKENS scope.
    ///
    /// A 403 is reported as [`ErrorKind::Forbidden`] saying which scope is missing; a 400 as
    /// [`ErrorKind::BadRequest`] with the server's reason (for example a past expiration time).
    pub async fn create_token(&self, query: &[(String, String)], body: &serde_json::Value) -> Result<TokenResponse> {
        let data = serde_json::to_vec(body)
            .map_err(|e| Error::new(ErrorKind::Encode, format!("cannot serialise the token request: {e}")))?;
        self.post_token(query.iter().map(|(k, v)| (k.as_str(), v.as_str())), data).await
    }

    /// Mints a JWT server-side with the Token API, from the same builder that signs locally
    /// ([`JwtBuilder::sign`](crate::jwt::JwtBuilder::sign)). The builder is validated first (an invalid one is a
    /// [`ErrorKind::BadRequest`] error and sends nothing).
    ///
    /// A 403 means the client's token lacks the ADMIN or TOKENS scope ([`ErrorKind::Forbidden`]); a 400 carries
    /// the server's reason ([`ErrorKind::BadRequest`]).
    pub async fn create_jwt<X: HasExpiry>(&self, builder: &JwtBuilder<X>) -> Result<Jwt> {
        let request = builder
            .token_api_request()
            .map_err(|e| Error::new(ErrorKind::BadRequest, format!("invalid JWT request: {e}")).with_source(e))?;
        let pairs: Vec<(&str, &str)> = request.query_pairs().iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = self.post_token(pairs, request.body().as_bytes().to_vec()).await?;
        Ok(request.into_jwt(resp.into_token()))
    }

    async fn post_token<'a>(
        &self,
        query: impl IntoIterator<Item = (&'a str, &'a str)>,
        data: Vec<u8>,
    ) -> Result<TokenResponse> {
        // The trailing slash is what the official SDK and docs use.
        let url = self.url(&["v0", "tokens", ""], query);
        let req = Request::new(Method::POST, url, RetryOn::NotIdempotent)
            .body(Body::Bytes { data: data.into(), content_type: "application/json", content_encoding: None })
            .timeout(self.timeouts().admin);
        let what = req.what.clone();
        let resp = self.send(req).await.map_err(|e| match e.kind() {
            ErrorKind::Forbidden => {
                e.with_context("creating a JWT needs a token with the TOKENS or ADMIN scope (this one was refused)")
            }
            ErrorKind::BadRequest => e.with_context("the JWT request was rejected"),
            _ => e,
        })?;
        let bytes = read_body(&what, resp).await?;
        serde_json::from_slice::<TokenResponse>(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Decode { column: Some("token".into()), row: None },
                format!("{what}: the response has no token: {e}"),
            )
        })
    }
}
