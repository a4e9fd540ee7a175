//! OAuth for the mailbox tests: a small OAuth 2.0 server (the token endpoint of the Microsoft
//! identity platform's shape, with refresh tokens that are single-use and rotate, and an RFC 7662
//! introspection endpoint), and a private Dovecot whose `oauth2` passdb accepts SASL XOAUTH2 with
//! the tokens this server calls active.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Form, Path, State};
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

pub const TENANT: &str = "contoso.example";
pub const CLIENT_ID: &str = "client-1";
pub const CLIENT_SECRET: &str = "s3cret";

#[derive(Default)]
struct Issued {
    /// access token -> (user, valid until, unix seconds)
    access: HashMap<String, (String, u64)>,
    /// refresh token -> user; removed when used (rotation).
    refresh: HashMap<String, String>,
    next: u64,
    /// Every token request's form.
    token_requests: Vec<HashMap<String, String>>,
    /// Every token introspected.
    introspected: Vec<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Issued {
    fn issue(&mut self, user: &str, ttl_secs: i64) -> (String, String) {
        self.next += 1;
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let (at, rt) = (
            format!("AT{}-{tag}", self.next),
            format!("RT{}-{tag}", self.next),
        );
        let until = (now() as i64 + ttl_secs).max(0) as u64;
        self.access.insert(at.clone(), (user.to_owned(), until));
        self.refresh.insert(rt.clone(), user.to_owned());
        (at, rt)
    }
}

/// The local OAuth server; it stops with the test's runtime.
#[derive(Clone)]
pub struct OAuthServer {
    pub authority: String,
    state: Arc<Mutex<Issued>>,
    /// How long the token endpoint takes to answer (widens races in concurrency tests).
    delay: Arc<Mutex<Duration>>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<Issued>>,
    delay: Arc<Mutex<Duration>>,
}

async fn token(
    State(s): State<Shared>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> (axum::http::StatusCode, Json<Value>) {
    let delay = *s.delay.lock().expect("lock");
    tokio::time::sleep(delay).await;
    let mut st = s.state.lock().expect("lock");
    st.token_requests.push(form.clone());
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let bad = |code: &str| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": code, "error_description": "AADSTS70000: refused"})),
        )
    };
    if tenant != TENANT || get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        );
    }
    if get("grant_type") != "refresh_token" {
        return bad("unsupported_grant_type");
    }
    let Some(user) = st.refresh.remove(get("refresh_token")) else {
        return bad("invalid_grant");
    };
    let (at, rt) = st.issue(&user, 3600);
    (
        axum::http::StatusCode::OK,
        Json(
            json!({"token_type": "Bearer", "access_token": at, "refresh_token": rt,
                    "expires_in": 3600, "scope": get("scope")}),
        ),
    )
}

async fn introspect(
    State(s): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    let token = form.get("token").cloned().unwrap_or_default();
    let mut st = s.state.lock().expect("lock");
    st.introspected.push(token.clone());
    match st.access.get(&token) {
        Some((user, until)) if *until > now() => {
            Json(json!({"active": true, "username": user, "exp": until}))
        }
        _ => Json(json!({"active": false})),
    }
}

impl OAuthServer {
    pub async fn start() -> OAuthServer {
        let shared = Shared {
            state: Arc::new(Mutex::new(Issued::default())),
            delay: Arc::new(Mutex::new(Duration::ZERO)),
        };
        let app = axum::Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/introspect", post(introspect))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let authority = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        OAuthServer {
            authority,
            state: shared.state,
            delay: shared.delay,
        }
    }

    pub fn introspect_url(&self) -> String {
        format!("{}/introspect", self.authority)
    }

    /// Tokens as a sign-in would yield them; `ttl_secs` below zero: already expired.
    pub fn issue(&self, user: &str, ttl_secs: i64) -> (String, String) {
        self.state.lock().expect("lock").issue(user, ttl_secs)
    }

    /// Revokes every token (a password change, an admin's "revoke sessions").
    pub fn revoke_all(&self) {
        let mut st = self.state.lock().expect("lock");
        st.access.clear();
        st.refresh.clear();
    }

    pub fn set_delay(&self, d: Duration) {
        *self.delay.lock().expect("lock") = d;
    }

    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().expect("lock").token_requests.clone()
    }

    pub fn introspected(&self) -> Vec<String> {
        self.state.lock().expect("lock").introspected.clone()
    }

    /// Every token issued so far (to check none of them reached a log).
    pub fn all_tokens(&self) -> Vec<String> {
        let st = self.state.lock().expect("lock");
        let mut all: Vec<String> = st.access.keys().cloned().collect();
        all.extend(st.refresh.keys().cloned());
        for r in &st.token_requests {
            all.extend(r.get("refresh_token").cloned());
        }
        all.extend(st.introspected.iter().cloned());
        all
    }
}

/// A private Dovecot for one test: plain IMAP on a free loopback port, SASL XOAUTH2 only, the
/// `oauth2` passdb asking `introspect_url`. Stopped (SIGTERM) when dropped.
pub struct OAuthDovecot {
    pub host: String,
    pub port: u16,
    dir: std::path::PathBuf,
    child: std::process::Child,
}

fn dovecot_bin() -> String {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| (*p).to_owned())
        .unwrap_or_else(|| "dovecot".into())
}

fn id(flag: &str) -> String {
    std::process::Command::new("id")
        .arg(flag)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

impl OAuthDovecot {
    pub async fn start(introspect_url: &str) -> OAuthDovecot {
        let port: u16 = super::free_addr()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("free port");
        let short = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let dir = std::env::temp_dir().join(format!("switchyard-dovecot-oauth-{short}"));
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(dir.join(sub)).expect("dovecot dirs");
        }
        // Dovecot's unprivileged processes must reach the config and the maildirs.
        let chmod = |p: &std::path::Path, mode: &str| {
            std::process::Command::new("chmod")
                .arg(mode)
                .arg(p)
                .status()
                .expect("chmod");
        };
        chmod(&dir, "755");
        // As root, mail is stored as Dovecot's own user (as deploy/local/lib.sh does).
        let root = id("-u") == "0";
        let mail_user = if root {
            "dovecot".to_owned()
        } else {
            id("-un")
        };
        let mail_group = std::process::Command::new("id")
            .args(["-gn", &mail_user])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .expect("id -gn");
        let login_user = if root { "dovenull" } else { mail_user.as_str() };
        if root {
            std::process::Command::new("chown")
                .args(["-R", &mail_user])
                .arg(dir.join("mail"))
                .status()
                .expect("chown");
        }
        let ext = dir.join("oauth2.conf.ext");
        std::fs::write(
            &ext,
            format!(
                "introspection_mode = post\nintrospection_url = {introspect_url}\n\
                 force_introspection = yes\nusername_attribute = username\n\
                 active_attribute = active\nactive_value = true\ntimeout_msecs = 10000\n"
            ),
        )
        .expect("oauth2 conf");
        chmod(&ext, "644");
        let d = dir.display();
        let conf = format!(
            "# A private test instance of tests/support/oauth.rs.
base_dir = {d}/run
state_dir = {d}/state
instance_name = switchyard-dovecot-oauth-{short}
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = xoauth2
auth_verbose = yes
default_internal_user = {mail_user}
default_internal_group = {mail_group}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
mail_uid = {mail_user}
mail_gid = {mail_group}
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {ext}
}}
userdb {{
  driver = static
  args = home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
",
            ext = ext.display()
        );
        let conf_path = dir.join("dovecot.conf");
        std::fs::write(&conf_path, conf).expect("dovecot.conf");
        chmod(&conf_path, "644");
        let child = std::process::Command::new(dovecot_bin())
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("dovecot (apt-get install dovecot-imapd; deploy/local/lib.sh ensure_dovecot installs it)");
        let dovecot = OAuthDovecot {
            host: "127.0.0.1".into(),
            port,
            dir,
            child,
        };
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the OAuth Dovecot did not come up: {}",
                std::fs::read_to_string(dovecot.dir.join("dovecot.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        dovecot
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for OAuthDovecot {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SASL XOAUTH2 for the tests' own IMAP client.
pub struct XOAuth2 {
    pub user: String,
    pub token: String,
    pub sent: bool,
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        if std::mem::replace(&mut self.sent, true) {
            return Vec::new();
        }
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token).into_bytes()
    }
}

/// Another mail client of the OAuth Dovecot, logged in with XOAUTH2.
pub async fn imap_session(
    addr: &str,
    user: &str,
    token: &str,
) -> Result<async_imap::Session<tokio::net::TcpStream>, async_imap::error::Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?;
    client
        .authenticate(
            "XOAUTH2",
            XOAuth2 {
                user: user.to_owned(),
                token: token.to_owned(),
                sent: false,
            },
        )
        .await
        .map_err(|(e, _)| e)
}
