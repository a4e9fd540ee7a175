//! What the ai stage reads out of attachments: meter photos (`extractionData {meterValue,
//! confidence}`) and PDF text (`extractedData`), with `extractionStatus` moving from
//! `notStarted` through `inProgress` to `success` or `error`.

use serde_json::Value;
use sqlx::PgConnection;

use crate::Result;

/// An attachment of a message that may hold something to read.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub id: i64,
    pub content_type: Option<String>,
    pub file_ending: Option<String>,
    pub object_key: String,
    pub size: i64,
}

impl Pending {
    pub fn is_image(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("image/"))
            || matches!(self.file_ending.as_deref(), Some("jpg" | "jpeg" | "png"))
    }

    pub fn is_pdf(&self) -> bool {
        self.content_type.as_deref() == Some("application/pdf")
            || self.file_ending.as_deref() == Some("pdf")
    }
}

/// The message's images and PDFs not yet read.
pub async fn pending(conn: &mut PgConnection, message_id: i64) -> Result<Vec<Pending>> {
    Ok(sqlx::query_as(
        "SELECT id, content_type, file_ending, object_key, size FROM attachments
          WHERE message_id = $1 AND extraction_status IN ('notStarted', 'inProgress')
            AND (content_type LIKE 'image/%' OR content_type = 'application/pdf'
                 OR file_ending IN ('jpg', 'jpeg', 'png', 'pdf'))
          ORDER BY id",
    )
    .bind(message_id)
    .fetch_all(conn)
    .await?)
}

/// Shows that reading has started (outside the stage's transaction, so the API sees it).
pub async fn mark_in_progress(conn: &mut PgConnection, ids: &[i64]) -> Result<()> {
    sqlx::query(
        "UPDATE attachments SET extraction_status = 'inProgress'
          WHERE id = ANY($1) AND extraction_status = 'notStarted'",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// The outcome: `success` with the data, or `error`.
pub async fn finish(
    conn: &mut PgConnection,
    id: i64,
    success: bool,
    extracted_data: Option<&Value>,
    extraction_data: Option<&Value>,
) -> Result<()> {
    sqlx::query(
        "UPDATE attachments SET extraction_status = $2, extracted_data = $3, extraction_data = $4
          WHERE id = $1",
    )
    .bind(id)
    .bind(if success { "success" } else { "error" })
    .bind(extracted_data)
    .bind(extraction_data)
    .execute(conn)
    .await?;
    Ok(())
}
