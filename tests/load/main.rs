//! `switchyard-load`: a load generator for a running Switchyard.
//!
//! The tests show that the pipeline is correct; this binary shows how fast it is. It creates N
//! tickets through the public API, as a client would, follows each through its activity timeline
//! until `autoexecute` has run, and prints the throughput and per-stage latency percentiles, so a
//! slow stage (or a slow hop between two) shows at once, on a real deployment.
//!
//! Send times come from this machine's clock, stage times from the server's: run it on the host
//! of the pipeline (or with synchronised clocks) for meaningful ingest and end-to-end figures.
//!
//! With `--dark`, every ticket is a German meter reading from a legitimated customer (imported
//! first into the ERP mirror) and dark processing is switched on for `meter_reading`: the report
//! adds how long from the POST to the reply accepted by the SMTP server (the outbound stage's
//! marker is written right after the server accepted the mail).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use futures::stream::{self, FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use reqwest::header::AUTHORIZATION;
use reqwest::{RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout_at, Instant};

/// The stages in pipeline order; a ticket has finished once the last one ran.
const STAGES: [&str; 4] = ["ingest", "ai", "router", "autoexecute"];
/// How long an unfinished ticket waits before its activity is fetched (again). Latencies come
/// from the server's stage timestamps, so polling rarely costs no precision, and keeps the
/// generator's own reads from loading the system it measures.
const REPOLL: Duration = Duration::from_millis(1000);
/// Subject and body templates, alternating German and English; `{i}` and `{kwh}` are filled in.
const MAILS: [(&str, &str); 2] = [
    (
        "Zählerstand {i}",
        "<p>Guten Tag,</p><p>mein Zählerstand ist {kwh} kWh. Zählernummer 1ESY{i}.</p>\
         <p>Viele Grüße</p>",
    ),
    (
        "Meter reading {i}",
        "<p>Hello,</p><p>my meter reading is {kwh} kWh, meter number 1ESY{i}.</p>\
         <p>Kind regards</p>",
    ),
];

#[derive(Parser)]
#[command(about = "Send tickets through a running Switchyard and measure them")]
struct Args {
    /// Base URL of the API.
    #[arg(long, env = "SWITCHYARD_API", default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Bearer token; takes precedence over --token-file.
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the bearer token.
    #[arg(long, default_value = ".local/admin-token")]
    token_file: String,
    /// Number of tickets to send.
    #[arg(long, default_value_t = 1000)]
    tickets: u64,
    /// POSTs in flight.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Activity requests in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    poll_concurrency: u16,
    /// Give up on everything not finished this many seconds after the start.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Meter readings from imported customers, answered in the dark; measures until the reply
    /// is sent. Needs the default AI agents loaded and an admin token.
    #[arg(long)]
    dark: bool,
}

/// The pooled HTTP client, the base URL and the `Authorization` header value.
struct Api {
    http: reqwest::Client,
    base: String,
    auth: String,
}

/// A ticket the API stored (200), with the wall-clock time (unix µs) its POST was sent.
#[derive(Clone, Copy)]
struct Tracked {
    id: i64,
    sent_us: i64,
}

/// One finished ticket: the send time, then when each stage finished (unix µs); and how long
/// each stage worked inside its transaction (µs).
struct Sample {
    at_us: [i64; 5],
    work_us: [u64; 4],
    /// When outbound had the reply accepted by the SMTP server (dark processing only).
    replied_us: Option<i64>,
}

#[derive(Deserialize)]
struct Created {
    id: i64,
}

#[derive(Deserialize)]
struct Activity {
    activity: Vec<StageRun>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StageRun {
    stage: String,
    finished_at: String,
    duration_ms: f64,
    #[serde(default)]
    outcome: Value,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    tickets: u64,
    concurrency: u16,
    posts: PostStats,
    polls: PollStats,
    send_secs: f64,
    completed: u64,
    end_to_end_secs: f64,
    latency_ms: Vec<Percentiles>,
    work_ms: Vec<Percentiles>,
    /// `--dark`: tickets answered without a person, and POST to reply sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    answered_in_the_dark: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_ms: Option<Percentiles>,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct PostStats {
    created: u64,
    accepted_only: u64,
    errors: u64,
    first_error: Option<String>,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct PollStats {
    incomplete: Vec<i64>,
    errors: u64,
    first_error: Option<String>,
}

#[derive(Serialize)]
struct Percentiles {
    stage: &'static str,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let token = match &args.token {
        Some(token) => token.clone(),
        None => std::fs::read_to_string(&args.token_file)
            .with_context(|| format!("reading {} (or pass --token)", args.token_file))?,
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.into())
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let base = args.api.trim_end_matches('/').to_owned();
    let auth = format!("Bearer {}", token.trim());
    let api = Api { http, base, auth };
    if args.dark {
        prepare_dark(&api, args.tickets).await?;
    }

    let mut report = Report::default();
    (report.tickets, report.concurrency) = (args.tickets, args.concurrency);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let (tx, rx) = mpsc::unbounded_channel();
    let sending = async {
        // Cancelled at the deadline; what was counted so far stays in the report.
        let _ = timeout_at(deadline, send_all(&api, &args, tx, &mut report.posts)).await;
        started.elapsed()
    };
    let in_flight = args.poll_concurrency.into();
    let polling = poll_all(&api, rx, in_flight, deadline, args.dark, &mut report.polls);
    let (send_elapsed, samples) = tokio::join!(sending, polling);
    report.send_secs = send_elapsed.as_secs_f64();
    summarize(&mut report, &samples, args.dark)?;

    if args.json {
        let json = serde_json::to_string(&report).context("serializing the report")?;
        println!("{json}");
    } else {
        print_table(&report);
    }
    let posts = &report.posts;
    let failed = posts.errors > 0
        || posts.created + posts.accepted_only < report.tickets
        || !report.polls.incomplete.is_empty();
    Ok(ExitCode::from(u8::from(failed)))
}

/// POSTs every ticket with `--concurrency` in flight and hands the stored ones to the poller.
async fn send_all(api: &Api, args: &Args, tx: mpsc::UnboundedSender<Tracked>, s: &mut PostStats) {
    let mut posts = stream::iter(0..args.tickets)
        .map(|i| post_ticket(api, i, args.dark))
        .buffer_unordered(args.concurrency.into());
    while let Some(result) = posts.next().await {
        match result {
            Ok(Some(ticket)) => {
                s.created += 1;
                let _ = tx.send(ticket); // fails only once the poller gave up at the deadline
            }
            Ok(None) => s.accepted_only += 1,
            Err(e) => {
                s.errors += 1;
                s.first_error.get_or_insert(format!("{e:#}"));
            }
        }
    }
}

/// `Some` for a stored ticket (200), `None` when accepted but not confirmed in time (202).
async fn post_ticket(api: &Api, i: u64, dark: bool) -> Result<Option<Tracked>> {
    let request = api.http.post(format!("{}/api/mind/ticket", api.base));
    let body = if dark { dark_body(i) } else { ticket_body(i) };
    let (sent_us, status, body) = call(api, request.json(&body)).await?;
    if status == StatusCode::ACCEPTED {
        return Ok(None);
    }
    let created: Created = serde_json::from_str(&body).context("parsing the ticket")?;
    let id = created.id;
    Ok(Some(Tracked { id, sent_us }))
}

/// Sends `request` with the token: when it was sent (unix µs), the status (200 or 202), the body.
async fn call(api: &Api, request: RequestBuilder) -> Result<(i64, StatusCode, String)> {
    let request = request.header(AUTHORIZATION, &api.auth).build()?;
    let what = format!("{} {}", request.method(), request.url());
    let sent_us = unix_micros_now();
    let response = api.http.execute(request).await.context(what.clone())?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("reading {what}"))?;
    if !matches!(status, StatusCode::OK | StatusCode::ACCEPTED) {
        bail!("{what} returned {status}: {body}");
    }
    Ok((sent_us, status, body))
}

/// A plausible customer mail.
fn ticket_body(i: u64) -> Value {
    let kwh = 1_000 + (i * 7_919) % 89_000;
    let (subject, body) = MAILS[i as usize % MAILS.len()];
    let fill = |t: &str| {
        t.replace("{i}", &i.to_string())
            .replace("{kwh}", &kwh.to_string())
    };
    json!({
        "channel": "email",
        "from": format!("kunde{i}@example.org"),
        "fromName": format!("Kunde {i}"),
        "to": ["service@stadtwerke.example"],
        "subject": fill(subject),
        "body": fill(body),
    })
}

/// First id of the customers and contracts `--dark` imports (far from real ones).
const DARK_IDS: u64 = 900_000_000;

fn dark_meter(i: u64) -> String {
    format!("1LDG{i:010}")
}

/// Imports one legitimated customer per ticket (their address is the sender's) and switches dark
/// processing on for meter readings.
async fn prepare_dark(api: &Api, n: u64) -> Result<()> {
    let customers: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": DARK_IDS + i, "email": format!("last{i}@example.org"), "firstname": "Last",
                   "lastname": format!("Kunde {i}"),
                   "contracts": [{"id": DARK_IDS + i, "email": format!("last{i}@example.org"),
                                  "energy": "electricity", "counterNumber": dark_meter(i)}]})
        })
        .collect();
    for chunk in customers.chunks(1000) {
        let r = api
            .http
            .post(format!("{}/api/mind/customer/import", api.base))
            .json(&chunk);
        call(api, r).await.context("importing the load customers")?;
    }
    for (name, value) in [
        ("enableAiAutoProcessing", json!(true)),
        ("immediateAiAgents", json!(["meter_reading"])),
    ] {
        let r = api
            .http
            .put(format!("{}/api/mind/settings/{name}", api.base))
            .json(&value);
        call(api, r)
            .await
            .with_context(|| format!("setting {name}"))?;
    }
    // Workers read settings every two seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(())
}

/// A meter reading from customer `i`, who is legitimated by the sender address.
fn dark_body(i: u64) -> Value {
    let kwh = 1_000 + (i * 7_919) % 89_000;
    json!({
        "channel": "email",
        "from": format!("last{i}@example.org"),
        "fromName": format!("Last Kunde {i}"),
        "to": ["service@stadtwerke.example"],
        "subject": "Zählerstand",
        "body": format!("<p>Guten Tag,</p><p>mein Zählerstand für den Zähler {} ist heute {kwh} kWh.</p><p>Viele Grüße</p>", dark_meter(i)),
    })
}

/// Polls each ticket's activity as it arrives, `in_flight` requests at most. An unfinished ticket
/// goes back into a queue ordered by due time, to be asked again after [`REPOLL`]. Ends when the
/// sender is done and every ticket finished, or at the deadline.
async fn poll_all(
    api: &Api,
    mut rx: mpsc::UnboundedReceiver<Tracked>,
    in_flight: usize,
    deadline: Instant,
    dark: bool,
    stats: &mut PollStats,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut queue: BinaryHeap<Reverse<(Instant, i64, i64)>> = BinaryHeap::new();
    let mut outstanding = HashSet::new();
    let mut polls = FuturesUnordered::new();
    let mut receiving = true;
    loop {
        let now = Instant::now();
        while polls.len() < in_flight && queue.peek().is_some_and(|Reverse(e)| e.0 <= now) {
            if let Some(Reverse((_, id, sent_us))) = queue.pop() {
                let ticket = Tracked { id, sent_us };
                polls.push(async move { (ticket, poll_ticket(api, ticket, dark).await) });
            }
        }
        if !receiving && queue.is_empty() && polls.is_empty() {
            break;
        }
        let next_due = queue.peek().map(|Reverse(e)| e.0);
        let can_start = polls.len() < in_flight;
        tokio::select! {
            _ = sleep_until(deadline) => break,
            _ = sleep_until(next_due.unwrap_or(deadline)), if can_start && next_due.is_some() => {}
            received = rx.recv(), if receiving => match received {
                Some(t) => {
                    outstanding.insert(t.id);
                    queue.push(Reverse((Instant::now() + REPOLL, t.id, t.sent_us)));
                }
                None => receiving = false,
            },
            Some((t, result)) = polls.next(), if !polls.is_empty() => match result {
                Ok(Some(sample)) => {
                    outstanding.remove(&t.id);
                    samples.push(sample);
                }
                Ok(None) => queue.push(Reverse((Instant::now() + REPOLL, t.id, t.sent_us))),
                Err(e) => {
                    stats.errors += 1;
                    stats.first_error.get_or_insert(format!("{e:#}"));
                    queue.push(Reverse((Instant::now() + REPOLL, t.id, t.sent_us)));
                }
            },
        }
    }
    while let Ok(t) = rx.try_recv() {
        outstanding.insert(t.id);
    }
    stats.incomplete = outstanding.into_iter().collect();
    stats.incomplete.sort_unstable();
    samples
}

/// `Some` once the ticket's activity shows `autoexecute` (and, when it answered in the dark,
/// `outbound`).
async fn poll_ticket(api: &Api, ticket: Tracked, dark: bool) -> Result<Option<Sample>> {
    let url = format!("{}/api/mind/ticket/{}/activity", api.base, ticket.id);
    let (_, _, body) = call(api, api.http.get(&url)).await?;
    let activity: Activity =
        serde_json::from_str(&body).with_context(|| format!("parsing {url}"))?;
    let sample = sample_from(ticket.sent_us, &activity.activity, dark);
    sample.with_context(|| format!("ticket {}", ticket.id))
}

fn sample_from(sent_us: i64, runs: &[StageRun], dark: bool) -> Result<Option<Sample>> {
    let Some(decision) = runs.iter().find(|r| r.stage == "autoexecute") else {
        return Ok(None);
    };
    let mut replied_us = None;
    if dark && decision.outcome["result"] == "executed" {
        let Some(sent) = runs.iter().find(|r| r.stage == "outbound") else {
            return Ok(None);
        };
        replied_us = Some(parse_utc_micros(&sent.finished_at).context("outbound: bad finishedAt")?);
    }
    let (mut at_us, mut work_us) = ([sent_us; 5], [0; 4]);
    for (k, stage) in STAGES.iter().enumerate() {
        let run = runs.iter().find(|r| r.stage == *stage);
        let run = run.with_context(|| format!("autoexecute ran but {stage} did not"))?;
        let at = parse_utc_micros(&run.finished_at);
        at_us[k + 1] = at.with_context(|| format!("{stage}: bad {:?}", run.finished_at))?;
        work_us[k] = (run.duration_ms * 1000.0).round().max(0.0) as u64;
    }
    Ok(Some(Sample {
        at_us,
        work_us,
        replied_us,
    }))
}

/// Fills in completion, throughput and the percentiles.
fn summarize(r: &mut Report, samples: &[Sample], dark: bool) -> Result<()> {
    let histogram = |_| Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).context("histogram");
    let mut latency = (0..5).map(histogram).collect::<Result<Vec<_>>>()?;
    let mut work = (0..4).map(histogram).collect::<Result<Vec<_>>>()?;
    let micros = |span: i64| span.max(0) as u64; // negative only with skewed clocks
    let (mut first_sent, mut last_finished) = (i64::MAX, i64::MIN);
    for s in samples {
        for k in 0..4 {
            latency[k].saturating_record(micros(s.at_us[k + 1] - s.at_us[k]));
            work[k].saturating_record(s.work_us[k]);
        }
        latency[4].saturating_record(micros(s.at_us[4] - s.at_us[0]));
        first_sent = first_sent.min(s.at_us[0]);
        last_finished = last_finished.max(s.at_us[4]);
    }
    r.completed = samples.len() as u64;
    if r.completed > 0 {
        r.end_to_end_secs = (last_finished - first_sent) as f64 / 1e6;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    let row = |(&stage, h): (&&'static str, &Histogram<u64>)| Percentiles {
        stage,
        p50: ms(h.value_at_quantile(0.50)),
        p95: ms(h.value_at_quantile(0.95)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    };
    let names = ["ingest", "ai", "router", "autoexecute", "end-to-end"];
    r.latency_ms = names.iter().zip(&latency).map(row).collect();
    r.work_ms = STAGES.iter().zip(&work).map(row).collect();
    if dark {
        let mut replies = histogram(0)?;
        for s in samples {
            if let Some(at) = s.replied_us {
                replies.saturating_record(micros(at - s.at_us[0]));
            }
        }
        r.answered_in_the_dark = Some(replies.len());
        if !replies.is_empty() {
            r.reply_ms = Some(row((&"mail to reply", &replies)));
        }
    }
    Ok(())
}

fn print_table(r: &Report) {
    let (tickets, posts, polls) = (r.tickets, &r.posts, &r.polls);
    let (send_secs, e2e_secs) = (r.send_secs, r.end_to_end_secs);
    let per_sec = |n: u64, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let (sent, errors) = (posts.created + posts.accepted_only, posts.errors);
    println!(
        "switchyard-load: {tickets} tickets, concurrency {}",
        r.concurrency
    );
    let post_rate = per_sec(sent, send_secs);
    print!("sent {sent} in {send_secs:.1} s ({post_rate:.0}/s); ");
    print!(
        "{} accepted-only (202), {errors} errors",
        posts.accepted_only
    );
    if sent + errors < tickets {
        print!(", {} not sent before the timeout", tickets - sent - errors);
    }
    println!();
    if let Some(e) = &posts.first_error {
        println!("first error: {e}");
    }
    let throughput = per_sec(r.completed, e2e_secs);
    print!(
        "completed {}/{} in {e2e_secs:.1} s: ",
        r.completed, posts.created
    );
    println!("{throughput:.0} tickets/s end to end");
    if let Some(first) = polls.incomplete.first() {
        let n = polls.incomplete.len();
        println!("incomplete: {n} (the first is ticket {first})");
    }
    if let Some(e) = &polls.first_error {
        println!("{} activity requests failed; first: {e}", polls.errors);
    }
    if r.completed == 0 {
        return;
    }
    println!("latency (ms)            p50       p95       p99       max");
    for p in &r.latency_ms {
        let (stage, p50, p95, p99, max) = (p.stage, p.p50, p.p95, p.p99, p.max);
        println!("  {stage:<15} {p50:>9.1} {p95:>9.1} {p99:>9.1} {max:>9.1}");
    }
    if let Some(n) = r.answered_in_the_dark {
        println!("answered in the dark: {n} of {}", r.completed);
    }
    if let Some(p) = &r.reply_ms {
        let (p50, p95, p99, max) = (p.p50, p.p95, p.p99, p.max);
        println!("  POST to reply sent {p50:>9.1} {p95:>9.1} {p99:>9.1} {max:>9.1}");
    }
    let work = r
        .work_ms
        .iter()
        .map(|p| format!("{} {:.1}/{:.1}", p.stage, p.p50, p.p99));
    let work = work.collect::<Vec<_>>().join(", ");
    println!("stage work (ms, inside the transaction) p50/p99: {work}");
}

fn unix_micros_now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.map_or(0, |d| d.as_micros() as i64)
}

/// Parses a UTC RFC 3339 timestamp as the API writes it, `2026-11-23T19:42:34.789835Z` (any
/// number of fraction digits, or none), to microseconds since the Unix epoch.
fn parse_utc_micros(s: &str) -> Option<i64> {
    let num = |field: &str, len: usize| {
        let digits = field.len() == len && field.bytes().all(|c| c.is_ascii_digit());
        digits.then(|| field.parse::<i64>().ok()).flatten()
    };
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let (hms, fraction) = match time.split_once('.') {
        Some((_, "")) => return None,
        Some(parts) => parts,
        None => (time, ""),
    };
    let mut d = date.split('-').chain(hms.split(':'));
    let mut field = |len| d.next().and_then(|f| num(f, len));
    let (year, month, day) = (field(4)?, field(2)?, field(2)?);
    let (hour, minute, second) = (field(2)?, field(2)?, field(2)?);
    let valid = d.next().is_none()
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second <= 60
        && fraction.bytes().all(|c| c.is_ascii_digit());
    // Microseconds: the first six fraction digits, padded with zeros; finer digits are dropped.
    let padded = fraction.bytes().chain(std::iter::repeat(b'0')).take(6);
    let micros = padded.fold(0, |us, c| us * 10 + i64::from(c - b'0'));
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    valid.then_some(secs * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    era * 146_097 + year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_timestamps_the_api_writes() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59Z", -1_000_000),
            ("2000-02-29T11:00:00Z", 951_822_000_000_000),
            ("2026-11-23T19:42:34Z", 1_795_462_954_000_000),
            ("2026-11-23T19:42:34.5Z", 1_795_462_954_500_000),
            ("2026-11-23T19:42:34.789835Z", 1_795_462_954_789_835),
            ("2026-11-23T19:42:34.789835999Z", 1_795_462_954_789_835),
        ];
        for (s, micros) in cases {
            assert_eq!(parse_utc_micros(s), Some(micros), "{s}");
        }
        let bad = "|2026-11-23|2026-11-23 19:42:34Z|2026-13-01T00:00:00Z|2026-11-23T19:42:34|\
                   2026-11-23T19:42:34.Z|2026-11-23T19:42:34+01:00|2026-1a-23T19:42:34Z";
        for s in bad.split('|') {
            assert_eq!(parse_utc_micros(s), None, "{s}");
        }
    }

    #[test]
    fn a_ticket_has_finished_once_autoexecute_ran() {
        let runs: Vec<StageRun> = STAGES
            .iter()
            .zip(["01", "02", "03", "04.25"])
            .map(|(stage, s)| StageRun {
                stage: stage.to_string(),
                finished_at: format!("1970-01-01T00:00:{s}Z"),
                duration_ms: 1.5,
                outcome: Value::Null,
            })
            .collect();
        assert!(sample_from(0, &runs[..3], false).expect("parses").is_none());
        let sample = sample_from(5, &runs, false)
            .expect("parses")
            .expect("finished");
        assert_eq!(
            sample.at_us,
            [5, 1_000_000, 2_000_000, 3_000_000, 4_250_000]
        );
        assert_eq!(sample.work_us, [1_500; 4]);
        assert!(
            sample_from(0, &runs[1..], false).is_err(),
            "autoexecute without ingest"
        );
    }
}
