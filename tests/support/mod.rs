//! The test stack: a fresh database and a bus prefix per test, and the real `switchyard` binary
//! started as separate processes against the real NATS and PostgreSQL.

#![allow(dead_code)]

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_bus::{Bus, BusConfig, StreamKind};
use switchyard_domain::Role;
use switchyard_store::{auth, Store};
use tokio::process::{Child, Command};

pub mod oauth;

/// The stages every ticket passes (its activity lists them in this order).
pub const STAGES: [&str; 4] = ["ingest", "ai", "router", "autoexecute"];

/// Every pipeline worker, outbound included: it only runs for tickets that got a reply, so it is
/// not in `STAGES`.
pub const WORKERS: [&str; 5] = ["ingest", "ai", "router", "autoexecute", "outbound"];

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn server_url() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/switchyard".into());
    match url.rsplit_once('/') {
        Some((server, _db)) => server.to_owned(),
        None => url,
    }
}

pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").to_string()
}

/// One isolated installation: its own database and its own streams.
pub struct Stack {
    pub name: String,
    pub db_url: String,
    pub prefix: String,
    pub store: Store,
    pub bus: Bus,
    pub api_addr: String,
    pub admin_token: String,
    pub agent_token: String,
    pub extra_env: HashMap<String, String>,
    procs: HashMap<String, Child>,
    /// Processes started so far: each gets its own replica id, restarts included.
    spawned: usize,
    dir: std::path::PathBuf,
}

impl Stack {
    pub async fn new(name: &str) -> Stack {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let short = &id[..10];
        let db_url = format!("{}/switchyard_test_{name}_{short}", server_url());
        let prefix = format!("t{short}");
        let store = Store::connect(&db_url, 4).await.expect("test database");
        store.migrate().await.expect("migrations");
        let bus = Bus::connect(&BusConfig {
            url: nats_url(),
            prefix: prefix.clone(),
            client_name: format!("test-{name}"),
        })
        .await
        .expect("NATS");
        bus.ensure_streams().await.expect("streams");
        let mut tx = store.begin().await.expect("tx");
        let admin = auth::create_user(&mut tx, "admin@test", Role::Admin, "Ada", "Admin")
            .await
            .expect("admin");
        let admin_token = auth::create_token(&mut tx, admin, "test")
            .await
            .expect("token");
        let agent = auth::create_user(&mut tx, "agent@test", Role::Agent, "Max", "Agent")
            .await
            .expect("agent");
        let agent_token = auth::create_token(&mut tx, agent, "test")
            .await
            .expect("token");
        tx.commit().await.expect("commit");
        let dir = std::env::temp_dir().join(format!("switchyard-test-{name}-{short}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Stack {
            name: name.to_owned(),
            db_url,
            prefix,
            store,
            bus,
            api_addr: free_addr(),
            admin_token,
            agent_token,
            extra_env: HashMap::new(),
            procs: HashMap::new(),
            spawned: 0,
            dir,
        }
    }

    fn binary() -> String {
        std::env::var("SWITCHYARD_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_switchyard").to_owned())
    }

    /// Starts `switchyard <service>` as a process and waits until it is ready.
    pub async fn start(&mut self, service: &str) {
        let health = if service == "api" {
            self.api_addr.clone()
        } else {
            free_addr()
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{service}.log")))
            .expect("log file");
        self.spawned += 1;
        let mut cmd = Command::new(Self::binary());
        cmd.arg(service)
            .env("DATABASE_URL", &self.db_url)
            .env("NATS_URL", nats_url())
            .env("BUS_PREFIX", &self.prefix)
            .env("API_ADDR", &self.api_addr)
            .env("HEALTH_ADDR", &health)
            .env("ADMIN_TOKEN_FILE", self.dir.join("admin-token"))
            .env("REPLICA_ID", format!("{service}-{}", self.spawned))
            .env(
                "RUST_LOG",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("DB_MAX_CONNECTIONS", "4")
            .env("OBJECT_STORE_URL", self.dir.join("objects"))
            .envs(&self.extra_env)
            // Logs go to stdout, panics to stderr: both into the service's log file.
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let child = cmd.spawn().expect("spawn switchyard");
        self.procs.insert(service.to_owned(), child);
        let path = if service == "api" {
            "healthz"
        } else {
            "readyz"
        };
        wait_http_ok(&format!("http://{health}/{path}"), Duration::from_secs(60)).await;
    }

    /// SIGKILL: no chance to finish anything in flight.
    pub async fn kill(&mut self, service: &str) {
        if let Some(mut c) = self.procs.remove(service) {
            c.kill().await.expect("kill");
        }
    }

    /// SIGTERM, then the exit status (the process must finish what is in flight and exit).
    pub async fn terminate(
        &mut self,
        service: &str,
        timeout: Duration,
    ) -> std::process::ExitStatus {
        let mut c = self.procs.remove(service).expect("process running");
        let pid = c.id().expect("pid");
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        tokio::time::timeout(timeout, c.wait())
            .await
            .unwrap_or_else(|_| panic!("{service} did not exit within {timeout:?} of SIGTERM"))
            .expect("wait")
    }

    /// Sends a signal (e.g. `STOP` to make a worker hang, `CONT` to resume it).
    pub fn signal(&self, service: &str, signal: &str) {
        let pid = self
            .procs
            .get(service)
            .and_then(|c| c.id())
            .expect("process running");
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    pub fn log_dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api_addr)
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub async fn post_ticket(&self, body: &Value) -> reqwest::Response {
        self.http()
            .post(self.url("/api/mind/ticket"))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .expect("POST ticket")
    }

    pub async fn get_json(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The stages a ticket's activity lists, in order.
    pub async fn stages_of(&self, ticket_id: i64) -> Vec<String> {
        let (_, a) = self
            .get_json(
                &format!("/api/mind/ticket/{ticket_id}/activity"),
                &self.admin_token,
            )
            .await;
        a["activity"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|e| e["stage"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the ticket passed autoexecute.
    pub async fn wait_done(&self, ticket_id: i64, timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let s = self.stages_of(ticket_id).await;
            if s.iter().any(|x| x == "autoexecute") || start.elapsed() > timeout {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every stage's consumer has nothing pending or unacknowledged.
    pub async fn wait_drained(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            let mut lag = 0;
            for stage in STAGES {
                let kind = if stage == "ingest" {
                    StreamKind::Inbound
                } else {
                    StreamKind::Pipeline
                };
                lag += self.bus.consumer_lag(kind, stage).await.unwrap_or(1);
            }
            if lag == 0 {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "consumers not drained after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .expect("count query")
    }

    /// Imports the demo ERP customers and loads the default AI agents, then waits until the ai
    /// replica rebuilt its detector (embedding every example takes a few seconds): a plain
    /// meter-reading mail is recognised.
    pub async fn load_demo_customers_and_agents(&self) {
        let customers: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/deploy/local/erp/customers.json"
            ))
            .expect("customers.json"),
        )
        .expect("customers JSON");
        for (path, body) in [
            ("/api/mind/customer/import", Some(customers)),
            ("/api/mind/aiAgents/loadDefaults", None),
        ] {
            let mut r = self
                .http()
                .post(self.url(path))
                .bearer_auth(&self.admin_token);
            if let Some(b) = &body {
                r = r.json(b);
            }
            let r = r.send().await.expect("POST");
            assert_eq!(r.status(), 200, "{path}");
        }
        let probe = serde_json::json!({"channel": "email", "from": "probe@example.org",
            "subject": "Zählerstand", "body": "Hier mein Zählerstand: Zähler 1ESY1160000001, Stand 1234 kWh."});
        for _ in 0..60 {
            let t: Value = self.post_ticket(&probe).await.json().await.expect("ticket");
            let id = t["id"].as_i64().expect("ticket id");
            self.wait_done(id, Duration::from_secs(60)).await;
            let (_, found) = self
                .get_json(
                    &format!("/api/mind/intent/byTicketId/{id}"),
                    &self.admin_token,
                )
                .await;
            if found["intents"]
                .as_array()
                .is_some_and(|l| l.iter().any(|i| i["code"] == "meter_reading"))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("the default agents were never detected");
    }

    /// Stops the processes and removes the streams; the database is dropped by tests/run.
    pub async fn shutdown(mut self) {
        let names: Vec<String> = self.procs.keys().cloned().collect();
        for n in names {
            self.kill(&n).await;
        }
        for kind in StreamKind::ALL {
            let _ = self
                .bus
                .jetstream()
                .delete_stream(self.bus.stream_name(kind))
                .await;
        }
    }
}

pub async fn wait_http_ok(url: &str, timeout: Duration) {
    let start = Instant::now();
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            start.elapsed() < timeout,
            "{url} not ready after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The seed's example mail (Tom Mustermann: meter reading and move).
pub fn seed_mail() -> Value {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/local/samples/tom-mustermann.json"
    ))
    .expect("sample mail");
    serde_json::from_str(&raw).expect("sample JSON")
}

pub fn mail(i: usize) -> Value {
    serde_json::json!({
        "channel": "email",
        "from": format!("kunde{i}@example.org"),
        "subject": format!("Zählerstand {i}"),
        "body": format!("<p>Guten Tag,</p><p>mein Zählerstand ist {} kWh.</p>", 10_000 + i),
    })
}

/// The Python with Debian's `python3-aiosmtpd` (`SMTP_SINK_PYTHON` overrides): a pyenv or venv
/// `python3` earlier on PATH may not have it.
fn sink_python() -> String {
    if let Ok(p) = std::env::var("SMTP_SINK_PYTHON") {
        return p;
    }
    for p in ["/usr/bin/python3", "python3"] {
        let ok = std::process::Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p.to_owned();
        }
    }
    panic!("no python3 with aiosmtpd (apt-get install python3-aiosmtpd; deploy/local/lib.sh ensure_packages does)");
}

/// A real SMTP server (`tests/support/smtp_sink.py`, aiosmtpd) writing each received mail as a
/// JSON line.
pub struct SmtpSink {
    pub port: u16,
    pub file: std::path::PathBuf,
    reject: Vec<String>,
    /// Requires AUTH XOAUTH2, checking tokens with this introspection URL.
    xoauth2_introspect: Option<String>,
    child: Option<Child>,
}

impl SmtpSink {
    /// A port nothing listens on yet, and the file the sink will write; `start` brings it up.
    pub fn new(dir: &std::path::Path, name: &str, reject: &[&str]) -> SmtpSink {
        let port = free_addr()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("free port");
        SmtpSink {
            port,
            file: dir.join(format!("{name}.jsonl")),
            reject: reject.iter().map(|s| (*s).to_owned()).collect(),
            xoauth2_introspect: None,
            child: None,
        }
    }

    /// Requires AUTH XOAUTH2 with a token the OAuth server at `introspect_url` calls active.
    pub fn with_xoauth2(mut self, introspect_url: &str) -> SmtpSink {
        self.xoauth2_introspect = Some(introspect_url.to_owned());
        self
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.file.with_extension("log"))
            .expect("sink log");
        let child = Command::new(sink_python())
            .arg(script)
            .args(["--port", &self.port.to_string()])
            .arg("--out")
            .arg(&self.file)
            .args(["--reject", &self.reject.join(",")])
            .args(
                self.xoauth2_introspect
                    .iter()
                    .flat_map(|u| ["--xoauth2-introspect", u.as_str()]),
            )
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("start smtp_sink.py");
        self.child = Some(child);
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "SMTP sink on port {} did not come up",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Every mail received so far, in order.
    pub fn mails(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("sink JSON line"))
            .collect()
    }

    /// Waits until at least `n` mails arrived; returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let m = self.mails();
            if m.len() >= n {
                return m;
            }
            assert!(
                start.elapsed() < timeout,
                "{} of {n} mails arrived at the SMTP sink within {timeout:?}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One API request with `token` (none: anonymous) and an optional JSON body; the status and the
/// JSON answer (null when it is not JSON).
pub async fn send_as(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut r = stack.http().request(method, stack.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// [`send_as`] with a token.
pub async fn send(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    send_as(stack, method, path, Some(token), body).await
}

/// Marks the first response case of these default agents `autoExecute`, as an operator who lets
/// them answer without a person would.
pub async fn make_auto_executable(stack: &Stack, slugs: &[&str]) {
    let (_, agents) = stack
        .get_json(
            "/api/mind/aiAgents?format=full&limit=100",
            &stack.admin_token,
        )
        .await;
    for slug in slugs {
        let a = agents["aiAgents"]
            .as_array()
            .and_then(|l| l.iter().find(|a| a["slug"] == *slug))
            .cloned()
            .unwrap_or_else(|| panic!("{slug}: {agents}"));
        let mut cases = a["settings"]["responseCases"].clone();
        cases[0]["autoExecute"] = serde_json::json!(true);
        let (status, v) = send(
            stack,
            reqwest::Method::PATCH,
            &format!("/api/mind/aiAgent/{}", a["id"]),
            &stack.admin_token,
            Some(&serde_json::json!({"settings": {"responseCases": cases}})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
    }
}
