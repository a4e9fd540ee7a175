//! Requests waiting for a stage's answer. One wildcard subscription per API process; each
//! request listens on its own subject under it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use switchyard_bus::Client;
use tokio::sync::oneshot;

#[derive(Clone)]
pub struct Waiters {
    prefix: String,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<serde_json::Value>>>>,
}

impl Waiters {
    /// Subscribes to this process's reply subjects and dispatches answers until the connection
    /// closes.
    pub async fn start(client: &Client) -> anyhow::Result<Waiters> {
        let prefix = client.new_inbox();
        let mut sub = client.subscribe(format!("{prefix}.*")).await?;
        let waiters = Waiters {
            prefix,
            pending: Arc::default(),
        };
        let w = waiters.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Ok(value) = serde_json::from_slice(&msg.payload) else {
                    continue;
                };
                let tx = w
                    .pending
                    .lock()
                    .ok()
                    .and_then(|mut p| p.remove(msg.subject.as_str()));
                if let Some(tx) = tx {
                    let _ = tx.send(value);
                }
            }
        });
        Ok(waiters)
    }

    /// A subject to hand to the pipeline and the receiver of its answer. Registered before the
    /// request is published, so an answer cannot overtake it.
    pub fn register(&self, id: &str) -> (String, Waiting) {
        let subject = format!("{}.{id}", self.prefix);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(subject.clone(), tx);
        }
        (
            subject.clone(),
            Waiting {
                subject,
                rx: Some(rx),
                waiters: self.clone(),
            },
        )
    }
}

/// Removes its registration when dropped (answered, timed out or the client went away).
pub struct Waiting {
    subject: String,
    rx: Option<oneshot::Receiver<serde_json::Value>>,
    waiters: Waiters,
}

impl Waiting {
    pub async fn wait(mut self, timeout: std::time::Duration) -> Option<serde_json::Value> {
        let rx = self.rx.take()?;
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Ok(mut p) = self.waiters.pending.lock() {
            p.remove(&self.subject);
        }
    }
}
