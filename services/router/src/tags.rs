//! The tag definitions as the router reads them: from memory, reloaded in the background, so that
//! routing a ticket costs no extra query.

use std::sync::Arc;
use std::time::Duration;

use switchyard_store::routing::{self, Tag};
use switchyard_store::Store;
use tokio::sync::RwLock;

#[derive(Clone)]
pub struct TagsCache {
    store: Store,
    tags: Arc<RwLock<Arc<Vec<Tag>>>>,
}

impl TagsCache {
    /// Loads the tags and keeps them fresh (every `refresh_every`) until the last clone is dropped.
    pub async fn start(store: Store, refresh_every: Duration) -> switchyard_store::Result<Self> {
        let cache = TagsCache {
            store,
            tags: Arc::default(),
        };
        cache.refresh().await?;
        let weak = Arc::downgrade(&cache.tags);
        let store = cache.store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(refresh_every).await;
                let Some(tags) = weak.upgrade() else { return };
                let cache = TagsCache {
                    store: store.clone(),
                    tags,
                };
                if let Err(e) = cache.refresh().await {
                    tracing::warn!(error = %e, "tags not refreshed; keeping the last known ones");
                }
            }
        });
        Ok(cache)
    }

    pub async fn refresh(&self) -> switchyard_store::Result<()> {
        let mut conn = self.store.pool().acquire().await?;
        let tags = routing::list_tags(&mut conn).await?;
        *self.tags.write().await = Arc::new(tags);
        Ok(())
    }

    pub async fn snapshot(&self) -> Arc<Vec<Tag>> {
        self.tags.read().await.clone()
    }
}
