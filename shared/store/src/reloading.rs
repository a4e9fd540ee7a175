//! Data the workers read on every message but that changes rarely (settings, tags): kept in
//! memory and reloaded from Postgres in the background, so that reading it never needs a
//! database connection, least of all inside a stage's transaction.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::RwLock;

use crate::Result;

type Loader<T> = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<T>> + Send>> + Send + Sync>;

/// A value loaded by `load`, reloaded every `every` until the last clone is dropped, and at
/// once by [`Reloading::reload`] (after a change this process made).
pub struct Reloading<T> {
    value: Arc<RwLock<Arc<T>>>,
    load: Loader<T>,
}

impl<T> Clone for Reloading<T> {
    fn clone(&self) -> Self {
        Reloading {
            value: self.value.clone(),
            load: self.load.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> Reloading<T> {
    pub async fn start<F, Fut>(what: &'static str, every: Duration, load: F) -> Result<Self>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let load: Loader<T> = Arc::new(move || Box::pin(load()));
        let first = load().await?;
        let this = Reloading {
            value: Arc::new(RwLock::new(Arc::new(first))),
            load,
        };
        let weak = Arc::downgrade(&this.value);
        let load = this.load.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(value) = weak.upgrade() else { return };
                match load().await {
                    Ok(v) => *value.write().await = Arc::new(v),
                    Err(e) => {
                        tracing::warn!(error = %e, what, "not reloaded; keeping the last known values")
                    }
                }
            }
        });
        Ok(this)
    }

    pub async fn reload(&self) -> Result<()> {
        let v = (self.load)().await?;
        *self.value.write().await = Arc::new(v);
        Ok(())
    }

    pub async fn get(&self) -> Arc<T> {
        self.value.read().await.clone()
    }
}
