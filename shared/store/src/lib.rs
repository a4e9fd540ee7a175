//! PostgreSQL, Switchyard's system of record.
//!
//! Functions take a `&mut PgConnection` where they may run inside a stage's transaction, so a
//! stage's results and its stage marker commit together. SQL goes through bound parameters only.

pub mod ai_agents;
pub mod audit;
pub mod auth;
pub mod conditions;
pub mod customers;
pub mod dead_letters;
pub mod execution;
pub mod extraction;
pub mod hooks;
pub mod intents;
pub mod mail;
pub mod oauth;
pub mod outbound;
pub mod privacy;
pub mod quality;
pub mod reloading;
pub mod replies;
pub mod routing;
pub mod search;
pub mod settings;
pub mod stage_runs;
pub mod subchannels;
pub mod tickets;
pub mod users;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub use sqlx::{PgConnection, Postgres, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// A field names something that does not exist (a team, a tag).
    #[error("{field}: {message}")]
    UnknownReference { field: String, message: String },
}

impl StoreError {
    /// Whether trying again later may succeed (connection trouble, serialization conflicts,
    /// deadlocks, a database that is restarting) rather than the same failure every time.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_)
                | sqlx::Error::Tls(_) => true,
                sqlx::Error::Database(db) => {
                    // Class 40 (rollback: serialization, deadlock), 53 (resources), 57 (operator
                    // intervention, e.g. shutdown), 08 (connection), P0 (raised by a trigger or
                    // function: an operator's guard that may be lifted), 23505 (a concurrent
                    // duplicate won a unique key: the retry finds its result).
                    let code = db.code().unwrap_or_default();
                    ["40", "53", "57", "08", "P0", "23505"]
                        .iter()
                        .any(|c| code.starts_with(c))
                }
                _ => false,
            },
            StoreError::Migrate(_) => true,
            StoreError::NotFound(_)
            | StoreError::Invalid { .. }
            | StoreError::UnknownReference { .. } => false,
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A connection pool. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects, creating the database first if the server has none of that name (the local
    /// default and every test start from an empty server).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        ensure_database(url).await?;
        let options: PgConnectOptions = url.parse()?;
        let options = options.log_statements(tracing::log::LevelFilter::Trace);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Store { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations. Safe to run from every replica at once: sqlx takes an
    /// advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Creates the database named in `url` if it does not exist.
pub async fn ensure_database(url: &str) -> Result<()> {
    let options: PgConnectOptions = url.parse()?;
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        // Identifiers cannot be bound; quote it as an identifier instead.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut admin)
            .await
        {
            Ok(_) => {}
            // Another replica created it first.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    admin.close().await?;
    Ok(())
}
pub use sqlx::Error as SqlxError;
