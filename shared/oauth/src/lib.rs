//! OAuth 2.0 for mailbox subchannels connected through Microsoft's identity platform (or
//! whatever `microsoftAuthorityUrl` points at): the token endpoint, used by the API's callback
//! (authorization code) and by the connectors and outbound (refresh), and [`access_token`], which
//! hands out a token that stays valid for a while yet and refreshes it otherwise.
//!
//! Refreshing happens under a row lock on the subchannel, so replicas never spend the same
//! refresh token twice (providers rotate them and may revoke a token family on reuse), and the
//! stored tokens are always one consistent set. A refresh token the provider refuses
//! (`invalid_grant`: revoked, expired, password changed) is recorded on the subchannel
//! (`data.oauthError`) instead of being tried again and again; connecting the mailbox again
//! clears it. Tokens never appear in logs or errors.

use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use serde::Deserialize;
use switchyard_store::oauth::{self, Stored, Tokens};
use switchyard_store::settings::SettingsCache;
use switchyard_store::{Store, StoreError};

/// IMAP and SMTP on behalf of the signed-in mailbox, and a refresh token.
pub const SCOPES: &str = "offline_access openid email https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send";

/// The provider of mailboxes connected through the Microsoft settings.
pub const MICROSOFT: &str = "microsoft";

/// An access token is refreshed this long before it expires, so a login or a mail never starts
/// with a token about to lapse (and clocks may differ a little).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("setting {0} is not configured")]
    NotConfigured(&'static str),
    #[error("the subchannel is not connected by OAuth")]
    NotConnected,
    #[error("the subchannel does not exist")]
    NoSubchannel,
    /// The tokens can no longer be refreshed; a person must connect the mailbox again.
    #[error("the OAuth connection needs to be renewed: {0}")]
    Revoked(String),
    /// The token endpoint refused the request (4xx with an OAuth error code).
    #[error("token endpoint answered {status}: {code}")]
    Rejected { status: u16, code: String },
    /// The token endpoint could not be reached or answered with a server error: try again later.
    #[error("token endpoint unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OAuthError {
    /// Whether trying again later can help (else a person must act: settings or reconnect).
    pub fn is_transient(&self) -> bool {
        matches!(self, OAuthError::Unavailable(_) | OAuthError::Store(_))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    id_token: Option<String>,
}

/// The `preferred_username` (or `email`) claim of an id token; the token came straight from the
/// token endpoint, so its claims are read without checking the signature.
pub fn account_of(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims
        .get("preferred_username")
        .or_else(|| claims.get("email"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// The token endpoint of the configured authority with the app's credentials. `Debug` omits the
/// client secret.
#[derive(Clone)]
pub struct TokenEndpoint {
    pub url: String,
    client_id: String,
    client_secret: String,
}

impl std::fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// `{microsoftAuthorityUrl}/{microsoftTenant}/oauth2/v2.0`: the authorization and token
/// endpoints live below it.
pub async fn microsoft_base(settings: &SettingsCache) -> Result<String, OAuthError> {
    let authority = settings.get_string("microsoftAuthorityUrl").await?;
    let tenant = settings.get_string("microsoftTenant").await?;
    Ok(format!(
        "{}/{tenant}/oauth2/v2.0",
        authority.trim_end_matches('/')
    ))
}

impl TokenEndpoint {
    /// From the settings `microsoftAuthorityUrl`, `microsoftTenant`, `microsoftClientId` and
    /// `microsoftClientSecret`.
    pub async fn microsoft(settings: &SettingsCache) -> Result<TokenEndpoint, OAuthError> {
        let client_id = settings.get_string("microsoftClientId").await?;
        if client_id.is_empty() {
            return Err(OAuthError::NotConfigured("microsoftClientId"));
        }
        Ok(TokenEndpoint {
            url: format!("{}/token", microsoft_base(settings).await?),
            client_id,
            client_secret: settings.get_string("microsoftClientSecret").await?,
        })
    }

    /// The endpoint of a subchannel's provider.
    pub async fn for_provider(
        provider: Option<&str>,
        settings: &SettingsCache,
    ) -> Result<TokenEndpoint, OAuthError> {
        match provider {
            None | Some(MICROSOFT) => TokenEndpoint::microsoft(settings).await,
            Some(other) => Err(OAuthError::Revoked(format!(
                "unknown OAuth provider {other:?}"
            ))),
        }
    }

    /// Authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        http: &reqwest::Client,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Result<Tokens, OAuthError> {
        self.request(
            http,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", code_verifier),
            ],
        )
        .await
    }

    /// A refresh token for new tokens (the refresh token possibly rotated).
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        refresh_token: &str,
    ) -> Result<Tokens, OAuthError> {
        self.request(
            http,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        grant: &[(&str, &str)],
    ) -> Result<Tokens, OAuthError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("scope", SCOPES),
        ];
        form.extend_from_slice(grant);
        let body = serde_urlencoded::to_string(&form)
            .map_err(|e| OAuthError::Unavailable(format!("cannot encode the request: {e}")))?;
        let resp = http
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(chain(&e.without_url())))?;
        let status = resp.status();
        if !status.is_success() {
            // The provider's error code only: its description may echo the request.
            let err: serde_json::Value = resp.json().await.unwrap_or_default();
            let code = err
                .get("error")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .to_owned();
            if status.is_server_error() || status.as_u16() == 429 {
                return Err(OAuthError::Unavailable(format!("{status}: {code}")));
            }
            return Err(OAuthError::Rejected {
                status: status.as_u16(),
                code,
            });
        }
        let tokens: TokenResponse = resp.json().await.map_err(|e| {
            OAuthError::Unavailable(format!("unreadable answer: {}", chain(&e.without_url())))
        })?;
        Ok(Tokens {
            account: tokens.id_token.as_deref().and_then(account_of),
            expires_at: Utc::now()
                + chrono::Duration::seconds(tokens.expires_in.unwrap_or(3600).max(0)),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token.filter(|t| !t.is_empty()),
        })
    }
}

/// An error with its causes ("error sending request: … : invalid URL, scheme is not http"):
/// reqwest's own message alone rarely says what went wrong. Never holds the request's body, and
/// the URL was taken out.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// An access token for the mailbox. `Debug` omits the token.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    /// The mailbox account the provider named when it was connected.
    pub account: Option<String>,
    /// Whether this call refreshed it.
    pub refreshed: bool,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("account", &self.account)
            .field("refreshed", &self.refreshed)
            .finish()
    }
}

fn usable(t: &Stored, rejected: Option<&str>) -> Option<AccessToken> {
    let margin = chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_default();
    let token = t.access_token.as_deref()?;
    let fresh = t.expires_at.is_some_and(|e| e > Utc::now() + margin);
    (fresh && Some(token) != rejected).then(|| AccessToken {
        token: token.to_owned(),
        account: t.account.clone(),
        refreshed: false,
    })
}

/// The subchannel's access token, refreshed first when it expires within [`REFRESH_MARGIN`] or
/// when it is `rejected` (the server refused it: revoked, or the clocks disagree). Replicas
/// asking at once wait for the one refreshing and then use its tokens. A refresh token the
/// provider refuses for good marks the subchannel broken (`Err(Revoked)`), as does an expired
/// access token without a refresh token. `actor` is recorded in the audit log when that happens.
pub async fn access_token(
    store: &Store,
    http: &reqwest::Client,
    settings: &SettingsCache,
    subchannel_id: i64,
    rejected: Option<&str>,
    actor: &str,
) -> Result<AccessToken, OAuthError> {
    {
        let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
        let t = oauth::tokens(&mut conn, subchannel_id)
            .await?
            .ok_or(OAuthError::NoSubchannel)?;
        if let Some(e) = t.error {
            return Err(OAuthError::Revoked(e));
        }
        if t.access_token.is_none() && t.refresh_token.is_none() {
            return Err(OAuthError::NotConnected);
        }
        if let Some(a) = usable(&t, rejected) {
            return Ok(a);
        }
    }
    let mut tx = store.begin().await?;
    let t = oauth::lock_tokens(&mut tx, subchannel_id)
        .await?
        .ok_or(OAuthError::NoSubchannel)?;
    if let Some(e) = t.error {
        return Err(OAuthError::Revoked(e));
    }
    // Another replica may have refreshed while this one waited for the lock.
    if let Some(a) = usable(&t, rejected) {
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(a);
    }
    let Some(refresh_token) = t.refresh_token.clone() else {
        let reason =
            "the access token expired and there is no refresh token; connect the mailbox again";
        oauth::mark_broken(&mut tx, subchannel_id, reason, actor).await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Err(OAuthError::Revoked(reason.into()));
    };
    let endpoint = TokenEndpoint::for_provider(t.provider.as_deref(), settings).await?;
    // The row stays locked during the call; the HTTP client's timeout bounds it.
    match endpoint.refresh(http, &refresh_token).await {
        Ok(tokens) => {
            oauth::store_refreshed(&mut tx, subchannel_id, &tokens).await?;
            tx.commit().await.map_err(StoreError::from)?;
            tracing::info!(
                subchannel_id,
                rotated = tokens.refresh_token.is_some(),
                expires_at = %tokens.expires_at,
                "mailbox access token refreshed"
            );
            Ok(AccessToken {
                token: tokens.access_token,
                account: t.account,
                refreshed: true,
            })
        }
        Err(OAuthError::Rejected { status, code }) if code == "invalid_grant" => {
            let reason = format!(
                "the token endpoint refused the refresh token ({status} {code}): it was revoked or expired; connect the mailbox again"
            );
            oauth::mark_broken(&mut tx, subchannel_id, &reason, actor).await?;
            tx.commit().await.map_err(StoreError::from)?;
            tracing::warn!(subchannel_id, %reason, "mailbox OAuth connection broken");
            Err(OAuthError::Revoked(reason))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's token endpoint is HTTPS: the client must speak TLS (here to a server that
    /// hangs up, so the handshake fails instead of the URL being refused outright).
    #[tokio::test]
    async fn an_https_token_endpoint_is_reached_over_tls() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                drop(stream);
            }
        });
        let endpoint = TokenEndpoint {
            url: format!("https://127.0.0.1:{port}/token"),
            client_id: "id".into(),
            client_secret: "secret".into(),
        };
        let http = reqwest::Client::new();
        match endpoint.refresh(&http, "rt").await {
            Err(OAuthError::Unavailable(reason)) => {
                assert!(!reason.contains("scheme is not http"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_account_is_read_from_the_id_token() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"preferred_username":"service@stadtwerke.example"}"#);
        let token = format!("e30.{claims}.sig");
        assert_eq!(
            account_of(&token).as_deref(),
            Some("service@stadtwerke.example")
        );
        assert_eq!(account_of("not-a-jwt"), None);
    }

    #[test]
    fn a_token_is_used_only_while_it_is_fresh_and_not_rejected() {
        let mut t = Stored {
            access_token: Some("at".into()),
            expires_at: Some(Utc::now() + chrono::Duration::hours(1)),
            ..Default::default()
        };
        assert!(usable(&t, None).is_some());
        assert!(usable(&t, Some("at")).is_none(), "rejected by the server");
        assert!(
            usable(&t, Some("older")).is_some(),
            "another token was rejected"
        );
        t.expires_at = Some(Utc::now() + chrono::Duration::seconds(60));
        assert!(usable(&t, None).is_none(), "within the margin");
        t.expires_at = None;
        assert!(usable(&t, None).is_none(), "unknown expiry");
        assert!(!format!(
            "{:?}",
            usable(
                &Stored {
                    access_token: Some("secret-at".into()),
                    expires_at: Some(Utc::now() + chrono::Duration::hours(1)),
                    ..Default::default()
                },
                None
            )
            .expect("usable")
        )
        .contains("secret-at"));
    }
}
