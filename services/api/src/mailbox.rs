//! Connecting an M365 mailbox subchannel by OAuth (authorization code flow with PKCE):
//! `GET /api/mind/settings/mailbox/microsoft/authorization` sends the admin's browser to
//! Microsoft; Microsoft sends it back to `…/microsoft/callback` with a code and our `state`, which
//! alone authenticates the callback (single-use, ten minutes). The tokens are stored as the
//! subchannel's secrets, for the connectors' IMAP XOAUTH2 and outbound SMTP.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchyard_domain::Permission;
use switchyard_oauth::{OAuthError, TokenEndpoint, SCOPES};
use switchyard_store::oauth;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;
use crate::ApiState;

const CALLBACK_PATH: &str = "/api/mind/settings/mailbox/microsoft/callback";
const STATE_TTL_SECS: i64 = 600;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(authorize))
        .routes(routes!(callback))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct AuthorizeParams {
    /// The e-mail subchannel to connect.
    #[param(minimum = 1)]
    subchannel_id: i64,
}

/// Redirect to Microsoft authorization page
///
/// Answers 302 to Microsoft's sign-in page for the e-mail subchannel `subchannelId`; settings
/// `microsoftClientId`, `microsoftClientSecret`, `microsoftTenant` and `publicBaseUrl` must be set.
#[utoipa::path(get, path = "/api/mind/settings/mailbox/microsoft/authorization", tag = "settings",
    params(AuthorizeParams),
    responses((status = 302, description = "to Microsoft's authorization page"),
        (status = 403, body = crate::Problem), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem)))]
async fn authorize(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(p): crate::extract::ApiQuery<AuthorizeParams>,
) -> ApiResult<Response> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    if p.subchannel_id < 1 {
        return Err(ApiError::field(
            "subchannelId",
            "must be a positive integer",
        ));
    }
    let s = &state.settings;
    let client_id = s.get_string("microsoftClientId").await?;
    if client_id.is_empty() {
        return Err(ApiError::Conflict(
            "setting microsoftClientId is not configured".into(),
        ));
    }
    let base = s.get_string("publicBaseUrl").await?;
    let redirect_uri = format!("{}{CALLBACK_PATH}", base.trim_end_matches('/'));
    let mut tx = state.store.begin().await?;
    let (st, verifier) = oauth::begin(
        &mut tx,
        "microsoft",
        p.subchannel_id,
        user.id,
        &redirect_uri,
        STATE_TTL_SECS,
    )
    .await?;
    tx.commit().await?;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let endpoints = switchyard_oauth::microsoft_base(s)
        .await
        .map_err(oauth_error)?;
    let mut url = reqwest::Url::parse(&format!("{endpoints}/authorize"))
        .map_err(|e| ApiError::Conflict(format!("setting microsoftAuthorityUrl: {e}")))?;
    url.query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("response_mode", "query")
        .append_pair("scope", SCOPES)
        .append_pair("state", &st)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Ok((StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackParams {
    /// The authorization code (absent when the user declined).
    code: Option<String>,
    /// Ours, from the redirect: authenticates this request.
    state: String,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Connected {
    success: bool,
    subchannel_id: i64,
    /// The mailbox account Microsoft signed in, when it said.
    account: Option<String>,
}

/// A problem of the token endpoint (or of the settings naming it) as the API reports it.
fn oauth_error(e: OAuthError) -> ApiError {
    match e {
        OAuthError::NotConfigured(name) => {
            ApiError::Conflict(format!("setting {name} is not configured"))
        }
        OAuthError::Store(e) => e.into(),
        other => ApiError::BadGateway(other.to_string()),
    }
}

/// Callback for Microsoft authorization
///
/// Public: authenticated by `state`, which is single-use and expires ten minutes after the
/// redirect. Exchanges the code for tokens and stores them on the subchannel.
#[utoipa::path(get, path = "/api/mind/settings/mailbox/microsoft/callback", tag = "settings",
    params(CallbackParams), security(()),
    responses((status = 200, body = Connected), (status = 400, body = crate::Problem),
        (status = 403, body = crate::Problem), (status = 502, body = crate::Problem)))]
async fn callback(
    State(state): State<ApiState>,
    crate::extract::ApiQuery(p): crate::extract::ApiQuery<CallbackParams>,
) -> ApiResult<Response> {
    let st = p.state;
    let mut tx = state.store.begin().await?;
    let pending = oauth::consume(&mut tx, &st).await?;
    tx.commit().await?;
    let Some(pending) = pending else {
        return Err(ApiError::Forbidden("a valid, unused authorization state"));
    };
    if let Some(err) = p.error {
        let detail = p.error_description.unwrap_or_default();
        return Err(ApiError::BadRequest(
            format!("Microsoft refused the authorization: {err} {detail}"),
            Vec::new(),
        ));
    }
    let code = p
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::field("code", "is required"))?;

    let endpoint = TokenEndpoint::microsoft(&state.settings)
        .await
        .map_err(oauth_error)?;
    let tokens = endpoint
        .exchange_code(
            &state.http,
            &code,
            &pending.redirect_uri,
            &pending.code_verifier,
        )
        .await
        .map_err(oauth_error)?;
    let account = tokens.account.clone();
    let actor = pending
        .user_id
        .map(|id| format!("user:{id}"))
        .unwrap_or_else(|| "oauth".into());
    let mut tx = state.store.begin().await?;
    oauth::store_tokens(
        &mut tx,
        pending.subchannel_id,
        &pending.provider,
        &tokens,
        &actor,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        subchannel_id = pending.subchannel_id,
        "mailbox connected by OAuth"
    );
    Ok(Json(Connected {
        success: true,
        subchannel_id: pending.subchannel_id,
        account,
    })
    .into_response())
}
