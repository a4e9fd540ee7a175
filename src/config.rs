//! Configuration from environment variables, with working local defaults (see README).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};

#[derive(Debug, Clone)]
pub struct Config {
    pub nats_url: String,
    pub bus_prefix: String,
    pub database_url: String,
    pub db_max_connections: u32,
    pub api_addr: SocketAddr,
    /// Health/metrics address of a worker process; `None` picks the per-service default.
    pub health_addr: Option<SocketAddr>,
    pub admin_token_file: String,
    pub replica: String,
    pub concurrency: usize,
    pub batch_size: usize,
    /// Messages the ai stage works on at once (each in its own transaction).
    pub ai_concurrency: usize,
    pub max_deliver: i64,
    pub ack_wait: Duration,
    pub max_ack_pending: i64,
    pub retry_delays: Vec<Duration>,
    pub api_reply_timeout: Duration,
    /// How often the router looks for tickets whose due time passed.
    pub overdue_scan: Duration,
    /// How often the API recomputes the ticket statistics snapshot.
    pub stats_refresh: Duration,
    pub secure_cookies: bool,
    /// How often the connectors re-read the mailbox subchannels (added, changed, removed).
    pub connectors_reload: Duration,
    /// How often the API deletes closed tickets past `retentionDaysClosedTickets`.
    pub retention_scan: Duration,
    /// Messages the outbound stage sends at once (each in its own transaction).
    pub outbound_concurrency: usize,
    /// How often outbound looks for replies still queued, and how old they must be.
    pub outbound_sweep: Duration,
    pub outbound_sweep_age: Duration,
    /// Events the hooks service handles at once per replica.
    pub hooks_concurrency: usize,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn parsed<T: std::str::FromStr>(name: &str, default: &str) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    var(name, default)
        .parse()
        .with_context(|| format!("environment variable {name}"))
}

impl Config {
    pub fn from_env() -> Result<Config> {
        let retry_delays = var("STAGE_RETRY_DELAYS_MS", "1000,5000,30000,120000")
            .split(',')
            .map(|s| s.trim().parse::<u64>().map(Duration::from_millis))
            .collect::<Result<Vec<_>, _>>()
            .context("environment variable STAGE_RETRY_DELAYS_MS")?;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        Ok(Config {
            nats_url: var("NATS_URL", "nats://127.0.0.1:4222"),
            bus_prefix: var("BUS_PREFIX", ""),
            database_url: var(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/switchyard",
            ),
            db_max_connections: parsed("DB_MAX_CONNECTIONS", "8")?,
            api_addr: parsed("API_ADDR", "127.0.0.1:8080")?,
            health_addr: match std::env::var("HEALTH_ADDR") {
                Ok(v) if !v.is_empty() => {
                    Some(v.parse().context("environment variable HEALTH_ADDR")?)
                }
                _ => None,
            },
            admin_token_file: var("ADMIN_TOKEN_FILE", ".local/admin-token"),
            replica: var("REPLICA_ID", &format!("{host}-{}", std::process::id())),
            concurrency: parsed("STAGE_CONCURRENCY", "64")?,
            batch_size: parsed("STAGE_BATCH_SIZE", "16")?,
            ai_concurrency: parsed("AI_STAGE_CONCURRENCY", "8")?,
            max_deliver: parsed("STAGE_MAX_DELIVER", "5")?,
            ack_wait: Duration::from_secs(parsed("STAGE_ACK_WAIT_SECS", "30")?),
            max_ack_pending: parsed("STAGE_MAX_ACK_PENDING", "4096")?,
            retry_delays,
            api_reply_timeout: Duration::from_millis(parsed("API_REPLY_TIMEOUT_MS", "5000")?),
            overdue_scan: Duration::from_secs(parsed("OVERDUE_SCAN_SECS", "30")?),
            stats_refresh: Duration::from_secs(parsed("STATS_REFRESH_SECS", "5")?),
            secure_cookies: parsed("COOKIE_SECURE", "false")?,
            connectors_reload: Duration::from_secs(parsed("CONNECTORS_RELOAD_SECS", "5")?),
            retention_scan: Duration::from_secs(parsed("RETENTION_SCAN_SECS", "600")?),
            outbound_concurrency: parsed("OUTBOUND_CONCURRENCY", "16")?,
            outbound_sweep: Duration::from_secs(parsed("OUTBOUND_SWEEP_SECS", "15")?),
            outbound_sweep_age: Duration::from_secs(parsed("OUTBOUND_SWEEP_AGE_SECS", "60")?),
            hooks_concurrency: parsed("HOOKS_CONCURRENCY", "16")?,
        })
    }
}
