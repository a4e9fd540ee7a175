//! Large bodies (raw MIME, attachments) live in an object store, not in PostgreSQL or on the bus:
//! the bus carries keys, the database metadata. Local default: a folder under `.local/`;
//! production: any S3-compatible store, chosen by `OBJECT_STORE_URL` alone so the services never
//! need to know which.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

/// Where objects go when `OBJECT_STORE_URL` is unset.
pub const DEFAULT_DIR: &str = ".local/objects";

#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("object store URL {0:?} is not a folder or an s3:// URL")]
    Url(String),
    #[error("creating {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("object {0} not found")]
    NotFound(String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

impl ObjectsError {
    /// Whether trying again may succeed (network or service trouble, not a missing object or a
    /// bad configuration).
    pub fn is_transient(&self) -> bool {
        matches!(self, ObjectsError::Store(e) if !matches!(e, object_store::Error::NotFound { .. }))
    }
}

/// A handle on the configured object store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// For logs: the URL without credentials (S3 credentials come from `AWS_*` variables).
    location: String,
}

impl Objects {
    /// From `OBJECT_STORE_URL`, else the local default folder.
    pub fn from_env() -> Result<Objects, ObjectsError> {
        let url = std::env::var("OBJECT_STORE_URL")
            .ok()
            .filter(|v| !v.is_empty());
        Objects::open(url.as_deref().unwrap_or(DEFAULT_DIR))
    }

    /// `s3://bucket/prefix` (credentials, region and a custom endpoint for S3-compatible stores
    /// from the usual `AWS_*` variables, e.g. `AWS_ENDPOINT`), `file:///abs/dir`, or a plain
    /// folder path (created if missing).
    pub fn open(url: &str) -> Result<Objects, ObjectsError> {
        if url.starts_with("s3://") || url.starts_with("s3a://") {
            let parsed = url::Url::parse(url).map_err(|_| ObjectsError::Url(url.to_owned()))?;
            let bucket = parsed
                .host_str()
                .ok_or_else(|| ObjectsError::Url(url.to_owned()))?;
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()?;
            let prefix = parsed.path().trim_matches('/').to_owned();
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(store)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
            };
            return Ok(Objects {
                store,
                location: format!("s3://{bucket}{}", parsed.path()),
            });
        }
        let dir = match url.strip_prefix("file://") {
            Some(p) => p,
            None if url.contains("://") => return Err(ObjectsError::Url(url.to_owned())),
            None => url,
        };
        std::fs::create_dir_all(dir).map_err(|source| ObjectsError::Folder {
            path: dir.to_owned(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
        Ok(Objects {
            store: Arc::new(store),
            location: dir.to_owned(),
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Writes an object; writing the same key again replaces it, so a retried writer with a
    /// deterministic key never leaves two copies.
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), ObjectsError> {
        self.store
            .put(&Path::from(key), PutPayload::from_bytes(body))
            .await?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, ObjectsError> {
        match self.store.get(&Path::from(key)).await {
            Ok(r) => Ok(r.bytes().await?),
            Err(object_store::Error::NotFound { .. }) => Err(ObjectsError::NotFound(key.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an object; one already gone is not an error (erasure and retention may retry).
    pub async fn delete(&self, key: &str) -> Result<(), ObjectsError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object exists (a connector's retry after a crash may skip the upload).
    pub async fn exists(&self, key: &str) -> Result<bool, ObjectsError> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_folder_stores_and_returns_bytes() -> Result<(), ObjectsError> {
        let dir = std::env::temp_dir().join(format!("objects-test-{}", std::process::id()));
        let objects = Objects::open(&dir.to_string_lossy())?;
        objects
            .put("raw/1/2/3.eml", Bytes::from_static(b"Subject: x\r\n\r\nhi"))
            .await?;
        assert!(objects.exists("raw/1/2/3.eml").await?);
        assert_eq!(
            objects.get("raw/1/2/3.eml").await?,
            Bytes::from_static(b"Subject: x\r\n\r\nhi")
        );
        assert!(matches!(
            objects.get("raw/missing").await,
            Err(ObjectsError::NotFound(_))
        ));
        assert!(Objects::open("ftp://nope").is_err());
        let _ = std::fs::remove_dir_all(dir);
        Ok(())
    }
}
