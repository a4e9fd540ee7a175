//! The connectors service: one IMAP poller per enabled mailbox subchannel. Subchannels added,
//! changed or removed are picked up without a restart (the list is re-read every few seconds).
//! Raw mails go to the object store and `inbound.email` carries their key to ingest.

pub mod config;
pub mod imap;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_bus::{Bus, BusError};
use switchyard_oauth::{AccessToken, OAuthError};
use switchyard_objects::{Objects, ObjectsError};
use switchyard_store::settings::SettingsCache;
use switchyard_store::{Store, StoreError};
use switchyard_telemetry::Health;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::config::MailboxConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("imap: {0}")]
    Imap(String),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Objects(#[from] ObjectsError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("tls: {0}")]
    Tls(String),
    #[error("oauth: {0}")]
    OAuth(#[from] OAuthError),
}

impl From<async_imap::error::Error> for ConnectorError {
    fn from(e: async_imap::error::Error) -> Self {
        ConnectorError::Imap(e.to_string())
    }
}

/// What every mailbox task shares.
pub struct ConnectorDeps {
    pub store: Store,
    pub bus: Bus,
    pub objects: Objects,
    pub tls: TlsConnector,
    /// The Microsoft settings, for refreshing the tokens of mailboxes connected by OAuth.
    pub settings: SettingsCache,
    /// For the token endpoint.
    pub http: reqwest::Client,
}

impl ConnectorDeps {
    /// TLS trusts the system's root certificates.
    pub fn new(
        store: Store,
        bus: Bus,
        objects: Objects,
        settings: SettingsCache,
        http: reqwest::Client,
    ) -> Result<Self, ConnectorError> {
        use tokio_rustls::rustls;
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A single unreadable system certificate must not disable TLS altogether.
            let _ = roots.add(cert);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectorError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ConnectorDeps {
            store,
            bus,
            objects,
            tls: TlsConnector::from(Arc::new(config)),
            settings,
            http,
        })
    }

    /// The mailbox's OAuth access token, refreshed when due or when the server `rejected` it.
    pub async fn access_token(
        &self,
        subchannel_id: i64,
        rejected: Option<&str>,
    ) -> Result<AccessToken, OAuthError> {
        switchyard_oauth::access_token(
            &self.store,
            &self.http,
            &self.settings,
            subchannel_id,
            rejected,
            "service:connectors",
        )
        .await
    }
}

/// Keeps one poller per enabled mailbox subchannel until `stop`.
pub async fn run(
    deps: ConnectorDeps,
    health: Health,
    reload_every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectorError> {
    let deps = Arc::new(deps);
    let mut running: HashMap<i64, (MailboxConfig, JoinHandle<()>)> = HashMap::new();
    // Bad settings are reported once per change, not on every reload.
    let mut reported: HashMap<i64, chrono::DateTime<chrono::Utc>> = HashMap::new();
    loop {
        match load(&deps).await {
            Ok(rows) => {
                let mut wanted: HashMap<i64, MailboxConfig> = HashMap::new();
                for row in rows {
                    match MailboxConfig::from_row(&row) {
                        Ok(cfg) => {
                            wanted.insert(row.id, cfg);
                        }
                        Err(why) => {
                            if reported.insert(row.id, row.modified_at) != Some(row.modified_at) {
                                tracing::warn!(subchannel_id = row.id, %why, "mailbox not polled");
                            }
                        }
                    }
                }
                running.retain(|id, (cfg, task)| {
                    let keep = wanted.get(id) == Some(cfg) && !task.is_finished();
                    if !keep {
                        tracing::info!(subchannel_id = id, "mailbox poller stopped");
                        task.abort();
                    }
                    keep
                });
                for (id, cfg) in wanted {
                    if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(id) {
                        let task = tokio::spawn(imap::run_mailbox(cfg.clone(), deps.clone()));
                        slot.insert((cfg, task));
                    }
                }
                health.set_ready(true);
            }
            Err(e) => tracing::warn!(error = %e, "reading mailbox subchannels failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(reload_every) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    health.set_ready(false);
    // Progress advances only after a mail was handed on, so stopping mid-mail is safe: the next
    // start fetches that mail again and its Message-ID makes it a no-op.
    for (_, (_, task)) in running {
        task.abort();
    }
    Ok(())
}

async fn load(
    deps: &ConnectorDeps,
) -> Result<Vec<switchyard_store::mail::MailboxRow>, ConnectorError> {
    let mut conn = deps
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    Ok(switchyard_store::mail::mailboxes(&mut conn).await?)
}
