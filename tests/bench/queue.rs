//! `switchyard-bench-queue`: how fast the queue answers on a database of realistic size.
//!
//! Acceptance criterion of the routing work: with one million tickets, 50,000 of them open,
//! `POST /api/mind/ticket/getLatest` and `GET /api/mind/ticket/stats` answer in under 50 ms at
//! p99. This binary seeds such a database (set-based SQL, under a minute; later runs reuse it),
//! starts the real API on it as a child process and measures both endpoints over HTTP, with
//! authentication and the very SQL the product runs. It exits with 1 when a gated p99 (getLatest
//! at `--concurrency`, stats one at a time) is 50 ms or more; stats at `--concurrency` is shown
//! for information (on a small machine it measures throughput rather than response time).
//!
//! Needs PostgreSQL and NATS (the API connects to the bus). From the workspace root:
//!
//! ```text
//! cargo build --release --bin switchyard --bin switchyard-bench-queue
//! target/release/switchyard-bench-queue          # --reseed rebuilds the data, --help for more
//! ```
//!
//! Seeded: tags, agents with skills, tickets with their tag arrays (besides the open ones, 3 % of
//! the rest pending or waiting on the customer, which the statistics count too). Not seeded:
//! `ticket_tags` rows (the queue and the statistics read the arrays only), messages, customers.

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use futures::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use switchyard_domain::Role;
use switchyard_store::{auth, Store};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The acceptance limit for p99, in microseconds.
const LIMIT_US: u64 = 50_000;
const WARMUP: usize = 50;
const TAGS: i64 = 30;

#[derive(Parser)]
#[command(about = "Seed a large ticket database and measure getLatest and ticket/stats")]
struct Args {
    #[arg(
        long,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/switchyard_bench"
    )]
    database_url: String,
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Tickets in the database.
    #[arg(long, default_value_t = 1_000_000)]
    tickets: i64,
    /// Of which open.
    #[arg(long, default_value_t = 50_000)]
    open: i64,
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    agents: u16,
    /// Measured getLatest calls.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Measured ticket/stats calls (per concurrency level).
    #[arg(long, default_value_t = 300)]
    stats_calls: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Drop and seed the database even if it already holds the data asked for.
    #[arg(long)]
    reseed: bool,
    /// The `switchyard` binary (default: next to this one).
    #[arg(long)]
    api_bin: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let args = Args::parse();
    // Other work on the machine skews the figures: show the load average before the run.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split(' ').take(3).collect();
    ensure!(args.open <= args.tickets, "--open exceeds --tickets");
    let store = prepare_database(&args).await?;
    let tokens = agent_tokens(&store, args.agents).await?;
    sqlx::query(
        "UPDATE tickets SET held_by = NULL, held_until = NULL WHERE held_until IS NOT NULL",
    )
    .execute(store.pool())
    .await?;

    let (mut api, base) = start_api(&args).await?;
    let http = reqwest::Client::new();
    let get_latest = |i: usize| {
        let req = http
            .post(format!("{base}/api/mind/ticket/getLatest"))
            .bearer_auth(&tokens[i % tokens.len()])
            .json(&json!({}));
        call(req)
    };
    let stats = |_| {
        call(
            http.get(format!("{base}/api/mind/ticket/stats"))
                .bearer_auth(&tokens[0]),
        )
    };
    let conc = usize::from(args.concurrency);

    let (_, warm) = measure(WARMUP, conc, get_latest).await?;
    measure(WARMUP, conc, stats).await?;
    let (latest_h, latest) = measure(args.calls, conc, get_latest).await?;
    let (stats1_h, last_stats) = measure(args.stats_calls, 1, stats).await?;
    let (statsn_h, _) = measure(args.stats_calls, conc, stats).await?;
    api.start_kill()?;
    api.wait().await?;

    // Every call holds its ticket for 60 s, so no ticket may be handed out twice.
    let ids: Vec<i64> = warm
        .iter()
        .chain(&latest)
        .filter_map(|v| v["ticketId"].as_i64())
        .collect();
    let distinct = ids.iter().collect::<HashSet<_>>().len();
    let nulls = latest.iter().filter(|v| v["ticketId"].is_null()).count();
    // Holds were cleared at the start, so every one left (lapsed or not) is this run's.
    let (total, open, not_done, own, size): (i64, i64, i64, i64, String) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'open'),
                count(*) FILTER (WHERE status NOT IN ('closed', 'resolved')),
                count(*) FILTER (WHERE held_by = agent_id),
                pg_size_pretty(pg_total_relation_size('tickets')) FROM tickets",
    )
    .fetch_one(store.pool())
    .await?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let stats_total = last_stats
        .last()
        .map_or(Value::Null, |v| v["stats"]["total"].clone());
    println!("\nmachine: {cores} cores, load before {}; tickets: {total} ({size}), {open} open, {not_done} not closed or resolved (stats total {stats_total})", load.join(" "));
    println!("getLatest: {} agents, {} tickets handed out ({distinct} distinct, {own} assigned to the caller), {nulls} of {} measured calls null\n",
        tokens.len(), ids.len(), args.calls);
    println!(
        "{:<14} {:>6} {:>5} {:>8} {:>8} {:>8} {:>8}",
        "endpoint", "calls", "conc", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    let mut ok = distinct == ids.len();
    for (name, c, h, gated) in [
        ("getLatest", conc, &latest_h, true),
        ("ticket/stats", 1, &stats1_h, true),
        ("ticket/stats", conc, &statsn_h, false),
    ] {
        let ms = |us: u64| us as f64 / 1000.0;
        let p99 = h.value_at_quantile(0.99);
        let verdict = match (gated, p99 < LIMIT_US) {
            (false, _) => "(not gated)",
            (true, true) => "ok",
            (true, false) => "OVER 50 ms",
        };
        ok &= !gated || p99 < LIMIT_US;
        let [p50, p95] = [0.5, 0.95].map(|q| ms(h.value_at_quantile(q)));
        println!(
            "{name:<14} {:>6} {c:>5} {p50:>8.2} {p95:>8.2} {:>8.2} {:>8.2}  {verdict}",
            h.len(),
            ms(p99),
            ms(h.max())
        );
    }
    if distinct != ids.len() {
        println!(
            "FAILURE: getLatest handed out {} tickets, only {distinct} distinct",
            ids.len()
        );
    }
    println!(
        "\nresult: {}",
        if ok { "PASS (p99 < 50 ms)" } else { "FAIL" }
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `n` requests with `concurrency` in flight; their latencies (µs) and JSON answers.
async fn measure<F, Fut>(n: usize, concurrency: usize, f: F) -> Result<(Histogram<u64>, Vec<Value>)>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<Value>>,
{
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut answers = Vec::with_capacity(n);
    let mut calls = stream::iter(0..n)
        .map(|i| {
            let fut = f(i);
            async move {
                let start = Instant::now();
                let answer = fut.await;
                (start.elapsed(), answer)
            }
        })
        .buffer_unordered(concurrency);
    while let Some((took, answer)) = calls.next().await {
        hist.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        answers.push(answer?);
    }
    Ok((hist, answers))
}

async fn call(req: reqwest::RequestBuilder) -> Result<Value> {
    let resp = req.send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    ensure!(status.is_success(), "HTTP {status}: {body}");
    Ok(serde_json::from_str(&body)?)
}

/// Connects to the bench database, seeding it unless it already holds the data asked for.
async fn prepare_database(args: &Args) -> Result<Store> {
    let options: PgConnectOptions = args.database_url.parse()?;
    let name = options.get_database().unwrap_or_default().to_owned();
    if args.reseed {
        ensure!(
            name.contains("bench"),
            "refusing to drop {name:?}: --reseed drops only databases named *bench*"
        );
        let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            name.replace('"', "\"\"")
        ))
        .execute(&mut admin)
        .await?;
    }
    let store = Store::connect(&args.database_url, 4).await?;
    store.migrate().await?;
    let (tickets, open): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE status = 'open') FROM tickets")
            .fetch_one(store.pool())
            .await?;
    if (tickets, open) == (args.tickets, args.open) {
        println!("reusing {name}: {tickets} tickets, {open} open (--reseed to rebuild)");
        return Ok(store);
    }
    ensure!(
        tickets == 0,
        "{name} holds {tickets} tickets ({open} open), not {} ({} open): run with --reseed",
        args.tickets,
        args.open
    );
    let started = Instant::now();
    println!(
        "seeding {name}: {} tickets, {} open ...",
        args.tickets, args.open
    );
    seed(&store, args).await?;
    for table in ["tickets", "tags", "users"] {
        sqlx::query(&format!("VACUUM (ANALYZE) {table}"))
            .execute(store.pool())
            .await?;
    }
    println!("seeded in {:.0} s", started.elapsed().as_secs_f64());
    Ok(store)
}

async fn seed(store: &Store, args: &Args) -> Result<()> {
    let mut tx = store.begin().await?;
    for sql in [
        "SET LOCAL synchronous_commit = off",
        "SET LOCAL work_mem = '256MB'",
        "SELECT setseed(0.42)",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    // 30 tags; 3 without SLA; the 5 brands take no part in skill matching.
    sqlx::query(
        "INSERT INTO tags (name, type, sla, priority, routing_relevant)
         SELECT 'bench tag ' || i, CASE WHEN i > 25 THEN 'brand' WHEN i > 20 THEN 'product' ELSE 'skill' END,
                CASE WHEN i IN (7, 17, 27) THEN NULL ELSE 4 * (1 + i % 5) END, 'do-not-change', i <= 25
           FROM generate_series(1, $1) i",
    )
    .bind(TAGS)
    .execute(&mut *tx)
    .await?;
    ensure_agents(&mut tx, args.agents).await?;
    // Ids follow creation time (two years up to now). Open are the newest `--open` tickets, give
    // or take a tenth of the range; then 3 % pending or waiting; the rest closed or resolved.
    // Tag i1 is skewed (the first three tags are on ~40 % of tickets), the second one uniform.
    sqlx::query(&format!(
        "WITH tg AS (SELECT array_agg(id ORDER BY id) ids, array_agg(routing_relevant ORDER BY id) rel FROM tags),
              ag AS (SELECT array_agg(id ORDER BY id) ids FROM users WHERE email LIKE 'bench-agent-%'),
              s AS (
                SELECT g, now() - make_interval(days => 730) * (1 - g / $1::float8) AS at,
                       row_number() OVER (ORDER BY g + random() * $1::float8 * 0.1 DESC) AS rn,
                       random() rs, random() rc, random() rp, random() rl, random() ra, random() rt,
                       1 + floor({TAGS} * power(random(), 2.5))::int AS i1, floor(random() * ({TAGS} - 1))::int AS k,
                       1 + floor(random() * 72)::int AS h
                  FROM generate_series(1, $1) g),
              t AS (
                SELECT s.*, 1 + (i1 + k) % {TAGS} AS i2,
                       CASE WHEN rt < 0.05 THEN 0 WHEN rt < 0.65 THEN 1 ELSE 2 END AS n,
                       CASE WHEN rn <= $2 THEN 'open'
                            WHEN rn <= $2 + ($1 - $2) * 0.03 THEN CASE WHEN rs < 0.67 THEN 'pending' ELSE 'waitingOnCustomer' END
                            WHEN rs < 0.9 THEN 'closed' ELSE 'resolved' END AS status
                  FROM s)
         INSERT INTO tickets (channel, status, priority, ai_support_level, agent_id, tag_ids, routing_tag_ids,
                              from_addr, subject, body_plain, created_at, due_by, last_customer_message_at, closed_at)
         SELECT CASE WHEN rc < 0.55 THEN 'email' WHEN rc < 0.75 THEN 'portal' WHEN rc < 0.85 THEN 'chat'
                     WHEN rc < 0.95 THEN 'phone' ELSE 'letter' END,
                status,
                CASE WHEN rp < 0.2 THEN 'low' WHEN rp < 0.75 THEN 'medium' WHEN rp < 0.95 THEN 'high' ELSE 'urgent' END,
                CASE WHEN rl < 0.05 THEN 'unprocessed' WHEN rl < 0.65 THEN 'human' WHEN rl < 0.85 THEN 'bot' ELSE 'automated' END,
                CASE WHEN ra < CASE WHEN status = 'open' THEN 0.01 ELSE 0.5 END
                     THEN ag.ids[1 + floor(random() * cardinality(ag.ids))::int] END,
                array_remove(ARRAY[CASE WHEN n >= 1 THEN tg.ids[i1] END, CASE WHEN n = 2 THEN tg.ids[i2] END], NULL),
                array_remove(ARRAY[CASE WHEN n >= 1 AND tg.rel[i1] THEN tg.ids[i1] END,
                                   CASE WHEN n = 2 AND tg.rel[i2] THEN tg.ids[i2] END], NULL),
                'kunde' || g % 200000 || '@example.org', 'Frage zu Vertrag ' || g,
                repeat('Guten Tag, ich habe eine Frage zu meiner letzten Abrechnung. ', 7),
                at, at + make_interval(hours => h), at,
                CASE WHEN status IN ('closed', 'resolved') THEN at + make_interval(hours => h) END
           FROM t, tg, ag ORDER BY g"
    ))
    .bind(args.tickets)
    .bind(args.open)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Creates the agents `bench-agent-<i>@bench.local` if missing, each with 3–8 tags as skills.
async fn ensure_agents(conn: &mut PgConnection, agents: u16) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for i in 1..=agents {
        let email = format!("bench-agent-{i}@bench.local");
        ids.push(
            auth::create_user(conn, &email, Role::Agent, "Bench", &format!("Agent {i}")).await?,
        );
    }
    sqlx::query(
        "UPDATE users u SET skills = ARRAY(SELECT g.id FROM tags g ORDER BY md5(u.id || ':' || g.id) LIMIT 3 + u.id % 6)
          WHERE u.id = ANY($1) AND u.skills = '{}'",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    Ok(ids)
}

/// Fresh tokens for the agents (only hashes are stored, so earlier runs' tokens are revoked).
async fn agent_tokens(store: &Store, agents: u16) -> Result<Vec<String>> {
    let mut tx = store.begin().await?;
    let ids = ensure_agents(&mut tx, agents).await?;
    sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE name = 'bench' AND revoked_at IS NULL",
    )
    .execute(&mut *tx)
    .await?;
    let mut tokens = Vec::new();
    for id in ids {
        tokens.push(auth::create_token(&mut tx, id, "bench").await?);
    }
    tx.commit().await?;
    Ok(tokens)
}

/// Starts `switchyard api` on a free port and waits until it answers `/healthz`.
async fn start_api(args: &Args) -> Result<(Child, String)> {
    let bin = match &args.api_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("switchyard"),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // The API's warnings (slow statements, say) go to a file, not between the figures.
    let tmp = |what: &str| {
        std::env::temp_dir().join(format!("switchyard-bench-{}-{what}", std::process::id()))
    };
    let log = tmp("api.log");
    let out = std::fs::File::create(&log)?;
    let mut child = Command::new(&bin)
        .arg("api")
        .env("DATABASE_URL", &args.database_url)
        .env("NATS_URL", &args.nats_url)
        .env("BUS_PREFIX", "bench")
        .env("API_ADDR", format!("127.0.0.1:{port}"))
        .env("ADMIN_TOKEN_FILE", tmp("admin-token"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} (build it, or pass --api-bin)", bin.display()))?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("the API exited at start ({status}); see {}", log.display());
        }
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            println!("API at {base}, log in {}", log.display());
            return Ok((child, base));
        }
        ensure!(
            Instant::now() < deadline,
            "the API did not answer /healthz within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
