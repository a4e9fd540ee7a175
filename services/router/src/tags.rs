//! The tag definitions as the router reads them: from memory, reloaded in the background, so that
//! routing a ticket costs no extra query.

use std::sync::Arc;
use std::time::Duration;

use switchyard_store::reloading::Reloading;
use switchyard_store::routing::{self, Tag};
use switchyard_store::Store;

#[derive(Clone)]
pub struct TagsCache {
    tags: Reloading<Vec<Tag>>,
}

impl TagsCache {
    pub async fn start(store: Store, refresh_every: Duration) -> switchyard_store::Result<Self> {
        let tags = Reloading::start("tags", refresh_every, move || {
            let store = store.clone();
            async move {
                let mut conn = store.pool().acquire().await?;
                routing::list_tags(&mut conn).await
            }
        })
        .await?;
        Ok(TagsCache { tags })
    }

    pub async fn snapshot(&self) -> Arc<Vec<Tag>> {
        self.tags.get().await
    }
}
