//! Errors as `application/problem+json` (RFC 9457) that also carry the reference product's
//! `success: false` and `message`, and `errors[]` naming each bad field.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchyard_store::StoreError;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field, e.g. `channel` or `to[2]`.
    pub field: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub success: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String, Vec<FieldError>),
    #[error("authentication required")]
    Unauthorized,
    #[error("missing permission {0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(String),
    /// A field of the request names something that does not exist: 404, naming the field.
    #[error("{0}")]
    UnknownReference(String, Vec<FieldError>),
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but it cannot be carried out (a script that fails).
    #[error("{0}")]
    Unprocessable(String),
    #[error("too many failed attempts; try again in {0} s")]
    TooManyRequests(u64),
    #[error("{0}")]
    Unavailable(String),
    /// An upstream service (an OAuth provider) failed.
    #[error("{0}")]
    BadGateway(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::BadRequest(
            format!("invalid field {field}: {message}"),
            vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        )
    }

    pub fn unknown_reference(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::UnknownReference(
            format!("{field}: {message}"),
            vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        )
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::UnknownReference(..) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Invalid { field, message } => ApiError::field(&field, message),
            StoreError::UnknownReference { field, message } => {
                ApiError::unknown_reference(&field, message)
            }
            StoreError::Db(switchyard_store::SqlxError::Database(db)) => {
                match db.code().as_deref().unwrap_or_default() {
                    // Unique violation: the name or key is taken.
                    "23505" => ApiError::Conflict(format!(
                        "already exists ({})",
                        db.constraint().unwrap_or("unique key")
                    )),
                    // Foreign-key violation: an id in the request names nothing (a check
                    // before the write may lose a race with a delete; the key never does).
                    "23503" => ApiError::NotFound(format!(
                        "a referenced record does not exist ({})",
                        db.constraint().unwrap_or("foreign key")
                    )),
                    // Data exceptions: a NUL character in text, a number out of range, …
                    code if code.starts_with("22") => ApiError::BadRequest(
                        "a value cannot be stored (for example text with a NUL character or a number out of range)"
                            .into(),
                        Vec::new(),
                    ),
                    _ => ApiError::Internal(StoreError::Db(switchyard_store::SqlxError::Database(db)).into()),
                }
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<switchyard_bus::BusError> for ApiError {
    fn from(e: switchyard_bus::BusError) -> Self {
        ApiError::Unavailable(format!("message bus unavailable: {e}"))
    }
}

impl From<switchyard_store::SqlxError> for ApiError {
    fn from(e: switchyard_store::SqlxError) -> Self {
        ApiError::from(StoreError::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(e) = &self {
            // Full chain in the log (ids only, no bodies); a generic text for the caller.
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let errors = match &self {
            ApiError::BadRequest(_, errors) | ApiError::UnknownReference(_, errors) => {
                errors.clone()
            }
            _ => Vec::new(),
        };
        let detail = self.to_string();
        let body = Problem {
            kind: format!("https://switchyard.dev/problems/{}", status.as_u16()),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            message: detail.clone(),
            detail,
            success: false,
            errors,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::TooManyRequests(secs) = &self {
            if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
