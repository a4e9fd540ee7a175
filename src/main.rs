//! `switchyard`: one binary, one subcommand per service. Only wiring lives here; each service is
//! a library crate under `services/`.

mod config;
mod run;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Open AI customer-service backend for energy utilities"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The REST API.
    Api,
    /// The ingest stage worker.
    Ingest,
    /// The ai stage worker.
    Ai,
    /// The router stage worker.
    Router,
    /// The autoexecute stage worker.
    Autoexecute,
    /// The mailbox connectors (one IMAP poller per enabled mailbox subchannel).
    Connectors,
    /// The outbound stage worker (sends replies over SMTP and to chat callbacks).
    Outbound,
    /// The event hooks: records every event and runs the configured webhooks and scripts.
    Hooks,
    /// Every service in one process (the simplest local setup).
    All,
    /// Applies the database migrations and exits.
    Migrate,
    /// Creates a user (if needed) and prints a new API token for it.
    CreateToken {
        /// User e-mail / name of the token's owner.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "agent")]
        role: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let cfg = config::Config::from_env()?;
    match cli.command {
        Command::Migrate => run::migrate(&cfg).await,
        Command::CreateToken { name, role } => run::create_token(&cfg, &name, &role).await,
        Command::Api => run::services(&cfg, &[run::Service::Api]).await,
        Command::Ingest => run::services(&cfg, &[run::Service::Ingest]).await,
        Command::Ai => run::services(&cfg, &[run::Service::Ai]).await,
        Command::Router => run::services(&cfg, &[run::Service::Router]).await,
        Command::Autoexecute => run::services(&cfg, &[run::Service::Autoexecute]).await,
        Command::Connectors => run::services(&cfg, &[run::Service::Connectors]).await,
        Command::Outbound => run::services(&cfg, &[run::Service::Outbound]).await,
        Command::Hooks => run::services(&cfg, &[run::Service::Hooks]).await,
        Command::All => run::services(&cfg, &run::Service::ALL).await,
    }
}
