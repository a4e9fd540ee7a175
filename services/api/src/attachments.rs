//! `GET /api/mind/attachment/{id}`: an attachment's bytes, authenticated like every ticket read.
//! The ticket's `attachments[].url` points here; the bytes live in the object store.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use switchyard_domain::Permission;
use switchyard_objects::ObjectsError;
use switchyard_store::mail;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;
use crate::ApiState;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get_attachment))
}

/// Download an attachment
#[utoipa::path(get, path = "/api/mind/attachment/{attachmentId}", tag = "ticket",
    params(("attachmentId" = i64, Path)),
    responses((status = 200, description = "the attachment's bytes", content_type = "application/octet-stream"),
        (status = 404, body = crate::Problem)))]
async fn get_attachment(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    auth.require(Permission::ReadTickets)?;
    let id = crate::path_id("attachmentId", &id)?;
    let found = {
        let mut conn = state.store.pool().acquire().await?;
        mail::attachment_object(&mut conn, id).await?
    };
    let (key, name, content_type) =
        found.ok_or_else(|| ApiError::NotFound(format!("attachment {id}")))?;
    let bytes = state.objects.get(&key).await.map_err(|e| match e {
        ObjectsError::NotFound(_) => ApiError::NotFound(format!("attachment {id}")),
        e => ApiError::Internal(e.into()),
    })?;
    // The name came from a mail: keep only characters that cannot break the header.
    let safe: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                content_type.unwrap_or_else(|| "application/octet-stream".into()),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
        ],
        bytes,
    )
        .into_response())
}
