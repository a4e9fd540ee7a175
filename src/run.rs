//! Starting services: connect, migrate, run the chosen services until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::FutureExt;
use switchyard_bus::{Bus, BusConfig, ConsumerSettings};
use switchyard_domain::Role;
use switchyard_stage::{run_stage, StageConfig, StageDeps, StageHandler};
use switchyard_store::reloading::Reloading;
use switchyard_store::settings::SettingsCache;
use switchyard_store::{auth, Store};
use switchyard_telemetry::Health;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Api,
    Ingest,
    Ai,
    Router,
    Autoexecute,
    Connectors,
    Outbound,
    Hooks,
}

impl Service {
    pub const ALL: [Service; 8] = [
        Service::Api,
        Service::Ingest,
        Service::Ai,
        Service::Router,
        Service::Autoexecute,
        Service::Connectors,
        Service::Outbound,
        Service::Hooks,
    ];

    fn name(self) -> &'static str {
        match self {
            Service::Api => "api",
            Service::Ingest => "ingest",
            Service::Ai => "ai",
            Service::Router => "router",
            Service::Autoexecute => "autoexecute",
            Service::Connectors => "connectors",
            Service::Outbound => "outbound",
            Service::Hooks => "hooks",
        }
    }

    fn default_health_port(self) -> u16 {
        match self {
            Service::Api => 9100,
            Service::Ingest => 9101,
            Service::Ai => 9102,
            Service::Router => 9103,
            Service::Autoexecute => 9104,
            Service::Connectors => 9105,
            Service::Outbound => 9106,
            Service::Hooks => 9107,
        }
    }
}

async fn connect_store(cfg: &Config) -> Result<Store> {
    Store::connect(&cfg.database_url, cfg.db_max_connections)
        .await
        .context("connecting to PostgreSQL (DATABASE_URL)")
}

pub async fn migrate(cfg: &Config) -> Result<()> {
    let _telemetry = switchyard_telemetry::init("switchyard-migrate");
    let store = connect_store(cfg).await?;
    store.migrate().await.context("applying migrations")?;
    tracing::info!("migrations applied");
    Ok(())
}

pub async fn create_token(cfg: &Config, name: &str, role: &str) -> Result<()> {
    let role = Role::parse(role).context("--role must be admin or agent")?;
    let store = connect_store(cfg).await?;
    store.migrate().await?;
    let mut tx = store.begin().await?;
    let email = if name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}@localhost")
    };
    let user = auth::create_user(&mut tx, &email, role, name, "").await?;
    let token = auth::create_token(&mut tx, user, name).await?;
    tx.commit().await?;
    println!("{token}");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub async fn services(cfg: &Config, which: &[Service]) -> Result<()> {
    let name = if which.len() == 1 {
        which[0].name()
    } else {
        "all"
    };
    let _telemetry = switchyard_telemetry::init(&format!("switchyard-{name}"));
    let store = connect_store(cfg).await?;
    store.migrate().await.context("applying migrations")?;
    let bus = Bus::connect(&BusConfig {
        url: cfg.nats_url.clone(),
        prefix: cfg.bus_prefix.clone(),
        client_name: format!("switchyard-{name}@{}", cfg.replica),
    })
    .await
    .context("connecting to NATS (NATS_URL)")?;
    bus.ensure_streams().await.context("creating streams")?;

    // Scripts (hooks, agents' sourceCode executors) call the REST API with a service token.
    let service_token = if which
        .iter()
        .any(|s| matches!(s, Service::Hooks | Service::Autoexecute))
    {
        Some(service_token(&store, name, &cfg.replica).await?)
    } else {
        None
    };
    let sandbox = match &service_token {
        Some(token) => Some(
            switchyard_script::Sandbox::new(switchyard_script::Limits::default()).with_host(
                switchyard_script::Host::new(
                    &api_url(cfg),
                    &token.value,
                    tokio::runtime::Handle::current(),
                )
                .map_err(anyhow::Error::msg)
                .context("script host")?,
            ),
        ),
        None => None,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let health = Health::new();
    let settings = SettingsCache::start(store.clone(), Duration::from_secs(2))
        .await
        .context("loading settings")?;
    let deps = StageDeps {
        bus: bus.clone(),
        store: store.clone(),
        replica: cfg.replica.clone(),
        health: health.clone(),
    };
    let stage_config = StageConfig {
        concurrency: cfg.concurrency,
        batch_size: cfg.batch_size,
        consumer: ConsumerSettings {
            ack_wait: cfg.ack_wait,
            max_deliver: cfg.max_deliver,
            max_ack_pending: cfg.max_ack_pending,
        },
        retry_delays: cfg.retry_delays.clone(),
        ..Default::default()
    };

    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    let workers: Vec<Service> = which
        .iter()
        .copied()
        .filter(|s| *s != Service::Api)
        .collect();
    for service in &workers {
        let (deps, config, stop) = (deps.clone(), stage_config.clone(), stop_rx.clone());
        let settings = settings.clone();
        match service {
            Service::Ingest => {
                let ingest = switchyard_ingest::Ingest::new(
                    objects()?,
                    settings,
                    switchyard_ingest::Limits::from_env(),
                );
                spawn_stage(&mut tasks, ingest, deps, config, stop)
            }
            Service::Connectors => {
                let connectors = switchyard_connectors::ConnectorDeps::new(
                    store.clone(),
                    bus.clone(),
                    objects()?,
                    settings,
                    reqwest::Client::builder()
                        .timeout(Duration::from_secs(20))
                        .build()
                        .context("HTTP client for the OAuth token endpoint")?,
                )
                .context("setting up the mailbox connectors")?;
                let (health, every) = (health.clone(), cfg.connectors_reload);
                tasks.spawn(async move {
                    switchyard_connectors::run(connectors, health, every, stop)
                        .await
                        .map_err(anyhow::Error::from)
                });
            }
            Service::Ai => {
                let agents = switchyard_ai::Agents::start(
                    store.clone(),
                    switchyard_ai::embedding::builder()
                        .map_err(anyhow::Error::msg)
                        .context("loading the intent model")?,
                    Duration::from_secs(30),
                )
                .await
                .context("loading AI agents")?;
                let llm = switchyard_ai::llm::Llm::from_env().context("LLM configuration")?;
                let reader = switchyard_attachments::MeterReader::load(
                    &switchyard_attachments::default_models_dir(),
                )
                .context("loading the OCR models (run deploy/local/fetch-models)")?;
                let extraction = switchyard_ai::Extraction {
                    objects: objects()?,
                    lanes: Arc::new(switchyard_attachments::ExtractionPool::new(
                        Arc::new(reader),
                        switchyard_attachments::PoolConfig::default(),
                    )),
                    store: store.clone(),
                };
                let ai = switchyard_ai::Ai::new(settings, agents.clone(), llm, Some(extraction));
                // Each message in its own short transaction: the CPU work of one (a photo) never
                // holds up the others of a batch, and few transactions wait on the cores.
                let config = StageConfig {
                    batch_size: 1,
                    concurrency: cfg.ai_concurrency,
                    ..config
                };
                let (b, s, a, st) = (
                    bus.clone(),
                    store.clone(),
                    Arc::new(ai.clone()),
                    stop.clone(),
                );
                tasks.spawn(switchyard_ai::preview::serve(b, s, a, st));
                tasks.spawn(switchyard_ai::follow_changes(
                    bus.clone(),
                    agents,
                    stop.clone(),
                ));
                spawn_stage(&mut tasks, ai, deps, config, stop)
            }
            Service::Router => {
                let tags =
                    switchyard_router::TagsCache::start(store.clone(), Duration::from_secs(2))
                        .await
                        .context("loading tags")?;
                let (store, bus, every) = (store.clone(), bus.clone(), cfg.overdue_scan);
                let scanner_stop = stop.clone();
                tasks.spawn(async move {
                    switchyard_router::run_overdue_scanner(store, bus, every, scanner_stop).await;
                    Ok(())
                });
                let router = switchyard_router::Router::new(settings, tags);
                spawn_stage(&mut tasks, router, deps, config, stop)
            }
            Service::Autoexecute => {
                let engine = Arc::new(switchyard_autoexecute::Engine {
                    settings,
                    http: reqwest::Client::builder()
                        .timeout(Duration::from_secs(15))
                        .build()
                        .context("HTTP client for ERP calls")?,
                    scripts: sandbox
                        .clone()
                        .map(|s| Arc::new(s) as Arc<dyn switchyard_autoexecute::ScriptRunner>),
                });
                let (b, s, e, r) = (
                    bus.clone(),
                    store.clone(),
                    engine.clone(),
                    cfg.replica.clone(),
                );
                tasks.spawn(switchyard_autoexecute::rpc::serve(b, s, e, r, stop.clone()));
                let (s, b, e, r, st) = (
                    store.clone(),
                    bus.clone(),
                    engine.clone(),
                    cfg.replica.clone(),
                    stop.clone(),
                );
                tasks.spawn(async move {
                    switchyard_autoexecute::run_schedule(e, s, b, r, Duration::from_secs(5), st)
                        .await;
                    Ok(())
                });
                spawn_stage(
                    &mut tasks,
                    switchyard_autoexecute::Autoexecute::new(engine),
                    deps,
                    config,
                    stop,
                )
            }
            Service::Outbound => {
                // The attempt counter commits on connections of its own while the stage's
                // transaction holds one of the main pool during the send.
                let attempts = Store::connect(&cfg.database_url, 2)
                    .await
                    .context("connecting to PostgreSQL for outbound's attempt counter")?;
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .context("HTTP client for chat replies")?;
                let outbound = switchyard_outbound::Outbound::new(
                    attempts,
                    http,
                    settings,
                    switchyard_outbound::OutboundConfig::from_env(
                        i32::try_from(cfg.max_deliver).unwrap_or(5),
                    ),
                );
                let (s, b, st) = (store.clone(), bus.clone(), stop.clone());
                let (every, age) = (cfg.outbound_sweep, cfg.outbound_sweep_age);
                tasks.spawn(async move {
                    switchyard_outbound::run_sweeper(s, b, every, age, st).await;
                    Ok(())
                });
                // One message per transaction, and one try per delivery: every try is counted
                // before the mail leaves, and the runtime's backoff spaces the retries.
                let config = StageConfig {
                    batch_size: 1,
                    concurrency: cfg.outbound_concurrency,
                    in_process_retry: Duration::ZERO,
                    ..config
                };
                spawn_stage(&mut tasks, outbound, deps, config, stop)
            }
            Service::Hooks => {
                let hooks = Arc::new(switchyard_hooks::Hooks {
                    store: store.clone(),
                    bus: bus.clone(),
                    sandbox: sandbox.clone().context("script sandbox")?,
                    http: reqwest::Client::builder()
                        .timeout(Duration::from_secs(30))
                        .build()
                        .context("HTTP client for webhooks")?,
                    config: switchyard_hooks::HooksConfig {
                        concurrency: cfg.hooks_concurrency,
                        ..Default::default()
                    },
                });
                tasks.spawn(switchyard_hooks::run(hooks, health.clone(), stop));
            }
            Service::Api => {}
        }
    }

    if workers
        .iter()
        .any(|w| !matches!(w, Service::Connectors | Service::Hooks))
    {
        tasks.spawn(switchyard_stage::run_backstop(deps.clone(), stop_rx.clone()).map(Ok));
    }

    if which.contains(&Service::Api) {
        let mut tx = store.begin().await?;
        if let Some(token) = auth::ensure_admin(&mut tx).await? {
            write_token_file(&cfg.admin_token_file, &token)?;
            tracing::info!(file = %cfg.admin_token_file, "created the local admin; token written to file");
        }
        tx.commit().await?;
        let state = switchyard_api::ApiState {
            store: store.clone(),
            bus: bus.clone(),
            settings: settings.clone(),
            waiters: switchyard_api::Waiters::start(bus.client()).await?,
            auth_cache: switchyard_api::AuthCache::new(Duration::from_secs(5)),
            login_limiter: switchyard_api::LoginLimiter::default(),
            secure_cookies: cfg.secure_cookies,
            objects: objects()?,
            stats: {
                let store = store.clone();
                Reloading::start("ticket stats", cfg.stats_refresh, move || {
                    let store = store.clone();
                    async move { switchyard_api::compute_stats(&store).await }
                })
                .await
                .context("computing ticket stats")?
            },
            reply_timeout: cfg.api_reply_timeout,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .context("building the HTTP client")?,
            self_url: api_url(cfg),
        };
        let api_health = if workers.is_empty() {
            health.clone()
        } else {
            Health::new()
        };
        let (s, b, st) = (store.clone(), bus.clone(), stop_rx.clone());
        tasks.spawn(async move {
            switchyard_api::quality::run_collector(s, b, Duration::from_secs(1), st).await;
            Ok(())
        });
        let (s, set, o, st) = (store.clone(), settings.clone(), objects()?, stop_rx.clone());
        let every = cfg.retention_scan;
        tasks.spawn(async move {
            switchyard_api::privacy::run_retention(s, set, o, every, st).await;
            Ok(())
        });
        let mut stop = stop_rx.clone();
        let addr = cfg.api_addr;
        tasks.spawn(async move {
            switchyard_api::serve(addr, state, api_health, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        });
    }
    if !workers.is_empty() {
        let port = if workers.len() == 1 {
            workers[0].default_health_port()
        } else {
            9100
        };
        let addr = cfg
            .health_addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], port)));
        let mut stop = stop_rx.clone();
        let h = health.clone();
        tasks.spawn(async move {
            switchyard_telemetry::serve_health(addr, h, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        });
    }

    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down: finishing messages in flight"),
        Some(res) = tasks.join_next() => {
            let _ = stop_tx.send(true);
            return match res {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e.into()),
            };
        }
    }
    let _ = stop_tx.send(true);
    while let Some(res) = tasks.join_next().await {
        if let Ok(Err(e)) = res {
            tracing::warn!(error = format!("{e:#}"), "service ended with an error");
        }
    }
    if let Some(token) = service_token.filter(|t| t.created) {
        if let Ok(mut conn) = store.pool().acquire().await {
            let _ = auth::revoke_token(&mut conn, &token.value).await;
        }
    }
    Ok(())
}

/// Where scripts reach the REST API: `SWITCHYARD_API_URL`, else this installation's `API_ADDR`.
fn api_url(cfg: &Config) -> String {
    match std::env::var("SWITCHYARD_API_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            let addr = cfg.api_addr;
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                addr.ip().to_string()
            };
            format!("http://{host}:{}", addr.port())
        }
    }
}

/// The token scripts call the API with.
struct ServiceToken {
    value: String,
    /// Created by this process (revoked when it stops), not given in `SWITCHYARD_SERVICE_TOKEN`.
    created: bool,
}

/// `SWITCHYARD_SERVICE_TOKEN`, or a new admin token of the service user for this process.
async fn service_token(store: &Store, service: &str, replica: &str) -> Result<ServiceToken> {
    if let Ok(t) = std::env::var("SWITCHYARD_SERVICE_TOKEN") {
        if !t.is_empty() {
            return Ok(ServiceToken {
                value: t,
                created: false,
            });
        }
    }
    let mut tx = store.begin().await?;
    let user = auth::create_user(
        &mut tx,
        auth::SERVICE_USER_EMAIL,
        Role::Admin,
        "Switchyard",
        "Service",
    )
    .await?;
    let value = auth::create_token(&mut tx, user, &format!("{service}@{replica}")).await?;
    tx.commit().await?;
    Ok(ServiceToken {
        value,
        created: true,
    })
}

/// The object store of raw mails and attachments (`OBJECT_STORE_URL`).
fn objects() -> Result<switchyard_objects::Objects> {
    switchyard_objects::Objects::from_env().context("opening the object store (OBJECT_STORE_URL)")
}

fn spawn_stage<H: StageHandler>(
    tasks: &mut JoinSet<Result<()>>,
    handler: H,
    deps: StageDeps,
    config: StageConfig,
    stop: watch::Receiver<bool>,
) {
    tasks.spawn(async move {
        run_stage(Arc::new(handler), deps, config, stop)
            .await
            .map_err(anyhow::Error::from)
    });
}

/// Writes the admin token readable by the owner only.
fn write_token_file(path: &str, token: &str) -> Result<()> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    std::fs::write(path, format!("{token}\n")).with_context(|| format!("writing {path}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
