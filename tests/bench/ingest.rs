//! `switchyard-bench-ingest`: mails per second through ingest alone.
//!
//! Publishes `--mails` raw mails to `inbound.email` first (raw MIME in a temporary object store
//! folder, exactly what the connector hands on), then starts the real `switchyard ingest` process
//! and measures until every mail is stored: parsing, threading look-ups, attachments to the
//! object store, ticket, message and attachment rows, stage marker, hand-on to the ai stage. The
//! mix: plain-text mails, HTML-only mails, mails with a small PNG and a PDF attachment, and one in
//! five a reply to an earlier mail (In-Reply-To). Needs PostgreSQL and NATS; uses its own database
//! (dropped and recreated) and bus prefix.
//!
//! ```text
//! cargo build --release --bin switchyard --bin switchyard-bench-ingest
//! target/release/switchyard-bench-ingest --mails 5000
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use futures::StreamExt;
use switchyard_bus::{Bus, BusConfig, StreamKind};
use switchyard_domain::{
    mail_key, Channel, InboundEnvelope, InboundTicket, IngestInput, RawMail, ENVELOPE_VERSION,
};
use switchyard_objects::Objects;
use switchyard_store::Store;
use tokio::process::Command;
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "Measure mails per second through the ingest stage alone")]
struct Args {
    #[arg(
        long,
        env = "BENCH_INGEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/switchyard_bench_ingest"
    )]
    database_url: String,
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    #[arg(long, default_value_t = 5000)]
    mails: usize,
    /// The `switchyard` binary (default: next to this one).
    #[arg(long)]
    bin: Option<PathBuf>,
}

const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// The i-th mail of the mix.
fn mail(i: usize) -> String {
    let head = format!(
        "From: Kunde {i} <kunde{i}@example.org>\r\nTo: service@stadtwerke.example\r\n\
         Message-ID: <bench-{i}@example.org>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
    );
    let reply = if i % 5 == 4 {
        format!("In-Reply-To: <bench-{}@example.org>\r\n", i - 1)
    } else {
        String::new()
    };
    match i % 3 {
        0 => format!(
            "{head}{reply}Subject: Zählerstand {i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Guten Tag,\r\n\r\nmein Zählerstand ist {} kWh.\r\n\r\nViele Grüße\r\n-- \r\nKunde {i}\r\n",
            10_000 + i
        ),
        1 => format!(
            "{head}{reply}Subject: Abschlag {i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
             <html><body><p>Sehr geehrte Damen und Herren,</p><p>bitte passen Sie meinen <b>Abschlag</b> an.</p>\
             <blockquote>Alte Nachricht</blockquote></body></html>\r\n"
        ),
        _ => format!(
            "{head}{reply}Subject: Foto {i}\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAnbei das Foto vom Zähler.\r\n\
             --b\r\nContent-Type: image/png; name=\"zaehler.png\"\r\nContent-Disposition: attachment; filename=\"zaehler.png\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{PNG_1X1}\r\n\
             --b\r\nContent-Type: application/pdf; name=\"rechnung.pdf\"\r\nContent-Disposition: attachment; filename=\"rechnung.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
        ),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("benchingest{}", &run[..8]);
    let dir = std::env::temp_dir().join(format!("switchyard-bench-ingest-{}", &run[..8]));
    std::fs::create_dir_all(&dir)?;

    drop_database(&args.database_url).await?;
    let store = Store::connect(&args.database_url, 4)
        .await
        .context("PostgreSQL")?;
    store.migrate().await?;
    let sub: i64 = sqlx::query_scalar(
        "INSERT INTO subchannels (channel, name) VALUES ('email', 'bench') RETURNING id",
    )
    .fetch_one(store.pool())
    .await?;
    let bus = Bus::connect(&BusConfig {
        url: args.nats_url.clone(),
        prefix: prefix.clone(),
        client_name: "bench-ingest".into(),
    })
    .await
    .context("NATS")?;
    bus.ensure_streams().await?;
    let objects = Objects::open(&dir.join("objects").to_string_lossy())?;

    println!("publishing {} mails to inbound.email …", args.mails);
    let published = futures::stream::iter(0..args.mails)
        .map(|i| {
            let (objects, bus) = (objects.clone(), bus.clone());
            async move {
                let raw = mail(i);
                let key = mail_key(sub, &format!("bench-{i}@example.org"));
                let object_key = format!("raw/{sub}/1/{i}.eml");
                let size = raw.len() as u64;
                objects.put(&object_key, raw.into_bytes().into()).await?;
                let input = IngestInput {
                    inbound: InboundEnvelope {
                        v: ENVELOPE_VERSION,
                        key: key.clone(),
                        received_at: chrono::Utc::now(),
                        reply: None,
                        ticket: InboundTicket {
                            channel: Some(Channel::Email),
                            subchannel_id: Some(sub),
                            ..Default::default()
                        },
                    },
                    mail: Some(RawMail {
                        object_key,
                        size,
                        folder: "INBOX".into(),
                        uid_validity: 1,
                        uid: i as u32 + 1,
                    }),
                };
                bus.publish_json("inbound.email", &key, &input).await?;
                anyhow::Ok(())
            }
        })
        .buffered(64)
        .collect::<Vec<_>>()
        .await;
    if let Some(Err(e)) = published.into_iter().find(Result::is_err) {
        bail!("publishing failed: {e:#}");
    }

    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("switchyard"),
    };
    let health = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let log = std::fs::File::create(dir.join("ingest.log"))?;
    let started = Instant::now();
    let mut child = Command::new(&bin)
        .arg("ingest")
        .env("DATABASE_URL", &args.database_url)
        .env("NATS_URL", &args.nats_url)
        .env("BUS_PREFIX", &prefix)
        .env("OBJECT_STORE_URL", dir.join("objects"))
        .env("HEALTH_ADDR", health.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let want = args.mails as i64;
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM stage_runs WHERE stage = 'ingest'")
            .fetch_one(store.pool())
            .await?;
        if n >= want {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!("ingest exited ({status}); log in {}", dir.display());
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("only {n} of {want} mails after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = started.elapsed();
    // From the first mail ingest started to the last it finished: without process start-up.
    let (busy, tickets, messages, attachments): (f64, i64, i64, i64) = sqlx::query_as(
        "SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8,
                (SELECT count(*) FROM tickets), (SELECT count(*) FROM messages),
                (SELECT count(*) FROM attachments)
           FROM stage_runs WHERE stage = 'ingest'",
    )
    .fetch_one(store.pool())
    .await?;
    child.start_kill()?;
    child.wait().await?;
    for kind in StreamKind::ALL {
        let _ = bus.jetstream().delete_stream(bus.stream_name(kind)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "load average before the run: {}",
        load.split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    println!("{want} mails: {tickets} tickets, {messages} messages, {attachments} attachments");
    println!(
        "ingest alone: {:.0} mails/s while processing ({busy:.2} s), {:.0} mails/s including process start ({:.2} s)",
        want as f64 / busy.max(1e-9),
        want as f64 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    Ok(())
}

/// A fresh database for every run.
async fn drop_database(url: &str) -> Result<()> {
    use sqlx::postgres::PgConnectOptions;
    use sqlx::{ConnectOptions, Connection};
    let options: PgConnectOptions = url.parse()?;
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = options.database("postgres").connect().await?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    sqlx::query(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}
