//! Sending mail over SMTP with lettre: where to (the subchannel's SMTP settings, or `SMTP_URL`),
//! the mail itself (with the Message-ID fixed at queue time), and which failures are worth
//! another try.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use switchyard_store::outbound::Outgoing;

use crate::SendError;

/// How the connection to the SMTP server is secured (`smtpTls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// Plain text (a relay on localhost or in the same pod).
    None,
    /// STARTTLS, required.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// STARTTLS when the server offers it (the default when `smtpTls` is not set).
    Opportunistic,
}

impl TlsMode {
    pub fn parse(s: &str) -> Option<TlsMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "plain" | "off" => Some(TlsMode::None),
            "starttls" => Some(TlsMode::StartTls),
            "tls" | "ssl" | "smtps" => Some(TlsMode::Tls),
            "opportunistic" => Some(TlsMode::Opportunistic),
            _ => None,
        }
    }
}

/// Where a mailbox's mail goes out.
#[derive(Clone)]
pub enum SmtpTarget {
    /// `smtpHost`, `smtpPort`, `smtpTls`, `smtpUser` and the secret `smtpPassword` of the
    /// subchannel. With `oauth`, `password` is the mailbox's OAuth access token (filled in just
    /// before sending) and the login is SASL XOAUTH2.
    Server {
        host: String,
        port: u16,
        tls: TlsMode,
        user: Option<String>,
        password: Option<String>,
        oauth: bool,
    },
    /// `SMTP_URL` (`smtp://[user:pass@]host:port`, `smtps://…`, `?tls=required`).
    Url(String),
}

impl std::fmt::Debug for SmtpTarget {
    // Never prints a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtpTarget::Server {
                host, port, tls, ..
            } => write!(f, "{host}:{port} ({tls:?})"),
            SmtpTarget::Url(_) => write!(f, "SMTP_URL"),
        }
    }
}

impl SmtpTarget {
    /// The subchannel's SMTP server, `None` when it has no `smtpHost`. A mailbox connected by
    /// OAuth logs in with XOAUTH2 (`smtpAuthType`, else `authType`: `oauth2`, or neither set,
    /// no `smtpPassword` and OAuth tokens stored), as `smtpUser`, `user` or the account it
    /// signed in as; an M365 one defaults to `smtp.office365.com:587` with STARTTLS.
    pub fn from_subchannel(data: &Value, secrets: &Value) -> Result<Option<SmtpTarget>, SendError> {
        let text = |k: &str| {
            data.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let password = secrets
            .get("smtpPassword")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let has_tokens = ["oauthAccessToken", "oauthRefreshToken"]
            .iter()
            .any(|k| secrets.get(*k).and_then(Value::as_str).is_some());
        let oauth = match text("smtpAuthType").or_else(|| text("authType")) {
            Some(a) => matches!(
                a.to_ascii_lowercase().as_str(),
                "oauth2" | "xoauth2" | "oauth"
            ),
            None => password.is_none() && has_tokens,
        };
        let m365 = oauth && text("oauthProvider") == Some("microsoft");
        let Some(host) = text("smtpHost").or(m365.then_some("smtp.office365.com")) else {
            return Ok(None);
        };
        let tls = match text("smtpTls") {
            Some(t) => TlsMode::parse(t).ok_or_else(|| {
                SendError::Permanent(format!(
                    "subchannel smtpTls must be none, starttls or tls, not {t:?}"
                ))
            })?,
            None if m365 => TlsMode::StartTls,
            None => TlsMode::Opportunistic,
        };
        let port = match data.get("smtpPort") {
            None | Some(Value::Null) => match tls {
                TlsMode::Tls => 465,
                TlsMode::StartTls => 587,
                _ => 25,
            },
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| {
                    SendError::Permanent(format!("subchannel smtpPort {v} is not a port"))
                })?,
        };
        let user = if oauth {
            let user = text("smtpUser")
                .or_else(|| text("user"))
                .or_else(|| text("oauthAccount"))
                .ok_or_else(|| {
                    SendError::Permanent(
                        "the mailbox connected by OAuth names no account (smtpUser, user)".into(),
                    )
                })?;
            Some(user.to_owned())
        } else {
            text("smtpUser").map(str::to_owned)
        };
        Ok(Some(SmtpTarget::Server {
            host: host.to_owned(),
            port,
            tls,
            user,
            password: if oauth { None } else { password },
            oauth,
        }))
    }

    /// Whether the login needs the mailbox's OAuth access token.
    pub fn is_oauth(&self) -> bool {
        matches!(self, SmtpTarget::Server { oauth: true, .. })
    }

    /// The same server with `token` as the XOAUTH2 bearer token.
    pub fn with_token(&self, token: String) -> SmtpTarget {
        let mut t = self.clone();
        if let SmtpTarget::Server { password, .. } = &mut t {
            *password = Some(token);
        }
        t
    }

    /// Identifies a transport in the cache: the server and login, and apart from them a hash
    /// of the secret, so a new token or password replaces the transport instead of adding one.
    fn cache_key(&self) -> (String, u64) {
        use std::hash::{Hash, Hasher};
        let hash = |v: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            v(&mut h);
            h.finish()
        };
        match self {
            SmtpTarget::Server {
                host,
                port,
                tls,
                user,
                password,
                oauth,
            } => (
                format!("{:x}", hash(&|h| (host, port, tls, user, oauth).hash(h))),
                hash(&|h| password.hash(h)),
            ),
            SmtpTarget::Url(u) => (format!("{:x}", hash(&|h| u.hash(h))), 0),
        }
    }

    fn transport(
        &self,
        timeout: Duration,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let builder = match self {
            SmtpTarget::Url(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| SendError::Permanent(format!("SMTP_URL: {e}")))?,
            SmtpTarget::Server {
                host,
                port,
                tls,
                user,
                password,
                oauth,
            } => {
                let params = || {
                    TlsParameters::new(host.clone())
                        .map_err(|e| SendError::Permanent(format!("TLS for {host}: {e}")))
                };
                let tls = match tls {
                    TlsMode::None => Tls::None,
                    TlsMode::StartTls => Tls::Required(params()?),
                    TlsMode::Tls => Tls::Wrapper(params()?),
                    TlsMode::Opportunistic => Tls::Opportunistic(params()?),
                };
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                    .port(*port)
                    .tls(tls);
                if let Some(user) = user {
                    b = b.credentials(Credentials::new(
                        user.clone(),
                        password.clone().unwrap_or_default(),
                    ));
                }
                if *oauth {
                    b = b.authentication(vec![Mechanism::Xoauth2]);
                }
                b
            }
        };
        Ok(builder.timeout(Some(timeout)).build())
    }
}

/// SMTP transports, one per server and login (each with its own small connection pool).
pub struct Mailer {
    transports: Mutex<HashMap<String, (u64, AsyncSmtpTransport<Tokio1Executor>)>>,
    timeout: Duration,
}

impl Mailer {
    pub fn new(timeout: Duration) -> Mailer {
        Mailer {
            transports: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    fn transport(
        &self,
        target: &SmtpTarget,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let (key, secret) = target.cache_key();
        let mut cache = self
            .transports
            .lock()
            .map_err(|_| SendError::Transient("SMTP transport cache poisoned".into()))?;
        if let Some((s, t)) = cache.get(&key) {
            if *s == secret {
                return Ok(t.clone());
            }
        }
        let t = target.transport(self.timeout)?;
        cache.insert(key, (secret, t.clone()));
        Ok(t)
    }

    /// Hands the mail to the SMTP server; `Ok` once the server accepted it.
    pub async fn send(&self, target: &SmtpTarget, mail: Message) -> Result<(), Refused> {
        let transport = self.transport(target).map_err(|e| Refused {
            error: e,
            login: false,
        })?;
        match transport.send(mail).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Refused {
                login: is_login_refused(&e, target.is_oauth()),
                error: classify(&e),
            }),
        }
    }
}

/// Why a mail was not sent, and whether it was the login the server refused (an OAuth token may
/// then be refreshed and the mail sent again).
#[derive(Debug)]
pub struct Refused {
    pub error: SendError,
    pub login: bool,
}

/// 535: authentication credentials invalid. An XOAUTH2 server that answers with an error
/// challenge (334) instead makes lettre fail with a client error saying so.
fn is_login_refused(e: &lettre::transport::smtp::Error, oauth: bool) -> bool {
    e.status().is_some_and(|c| c.to_string() == "535")
        || (oauth && e.to_string().contains("does not expect a challenge"))
}

/// 5xx answers are permanent (the server will refuse the same mail again); 4xx answers,
/// connection trouble, TLS and timeouts are worth another try.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    if e.is_permanent() {
        SendError::Permanent(format!("SMTP server refused: {text}"))
    } else {
        SendError::Transient(format!("SMTP: {text}"))
    }
}

fn mailbox(addr: &str, what: &str) -> Result<Mailbox, SendError> {
    addr.trim()
        .parse::<Mailbox>()
        .map_err(|e| SendError::Permanent(format!("{what} address is not valid: {e}")))
}

/// A msg-id as RFC 5322 writes it: inbound Message-IDs are stored without the angle brackets.
fn msg_id(id: &str) -> String {
    let id = id.trim();
    if id.starts_with('<') && id.ends_with('>') {
        id.to_owned()
    } else {
        format!("<{}>", id.trim_matches(|c| c == '<' || c == '>'))
    }
}

const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

/// The mail of an outbound message: the stored Message-ID, threaded to the customer's message,
/// `Auto-Submitted: auto-replied` when no person wrote it (RFC 3834), plain text.
pub fn build_mail(m: &Outgoing, from: &str) -> Result<Message, SendError> {
    if m.to_addrs.iter().all(|a| a.trim().is_empty()) {
        return Err(SendError::Permanent("the reply has no recipient".into()));
    }
    let message_id = m
        .mail_message_id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| SendError::Permanent("the reply has no Message-ID".into()))?;
    let mut b = Message::builder()
        .from(mailbox(from, "sender")?)
        .subject(m.subject.clone().unwrap_or_default())
        .message_id(Some(msg_id(&message_id)))
        .date_now();
    for to in m.to_addrs.iter().filter(|a| !a.trim().is_empty()) {
        b = b.to(mailbox(to, "recipient")?);
    }
    for cc in m.cc_addrs.iter().filter(|a| !a.trim().is_empty()) {
        b = b.cc(mailbox(cc, "cc")?);
    }
    if let Some(parent) = m.in_reply_to.as_deref().filter(|p| !p.is_empty()) {
        b = b.in_reply_to(msg_id(parent));
    }
    let references: Vec<String> = m
        .references
        .iter()
        .filter(|r| !r.trim().is_empty())
        .map(|r| msg_id(r))
        .collect();
    if !references.is_empty() {
        b = b.references(references.join(" "));
    }
    if m.is_automated() {
        b = b.raw_header(HeaderValue::new(AUTO_SUBMITTED, "auto-replied".to_owned()));
    }
    b.header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| SendError::Permanent(format!("cannot build the mail: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outgoing() -> Outgoing {
        Outgoing {
            id: 1,
            ticket_id: 7,
            direction: "out".into(),
            send_status: Some("queued".into()),
            send_attempts: 0,
            send_error: None,
            from_addr: Some("service@stadtwerke.example".into()),
            to_addrs: vec!["sarah.miller@example.com".into()],
            cc_addrs: vec![],
            subject: Some("Re: Zählerstand [#7]".into()),
            body: "Vielen Dank, wir haben Ihren Zählerstand erhalten.".into(),
            mail_message_id: Some("<reply.abc@stadtwerke.example>".into()),
            in_reply_to: Some("in.1@example.com".into()),
            references: vec!["in.0@example.com".into(), "<in.1@example.com>".into()],
            channel: Some("email".into()),
            subchannel_id: None,
            intent_id: Some(3),
            created_by: Some("service:autoexecute@a".into()),
            created_at: chrono::Utc::now(),
            ticket_channel_id: None,
            ticket_status: "closed".into(),
            ticket_spam_status: None,
            answers_auto_reply: None,
        }
    }

    fn text(m: &Message) -> String {
        String::from_utf8_lossy(&m.formatted()).into_owned()
    }

    #[test]
    fn a_dark_reply_is_threaded_and_marked_automatic() {
        let m = build_mail(&outgoing(), "service@stadtwerke.example").expect("mail");
        let t = text(&m);
        assert!(
            t.contains("Message-ID: <reply.abc@stadtwerke.example>"),
            "{t}"
        );
        assert!(t.contains("In-Reply-To: <in.1@example.com>"), "{t}");
        assert!(
            t.contains("References: <in.0@example.com> <in.1@example.com>"),
            "{t}"
        );
        assert!(t.contains("Auto-Submitted: auto-replied"), "{t}");
    }

    #[test]
    fn a_persons_reply_is_not_auto_submitted() {
        let mut o = outgoing();
        o.created_by = Some("user:2".into());
        let t = text(&build_mail(&o, "service@stadtwerke.example").expect("mail"));
        assert!(!t.contains("Auto-Submitted"), "{t}");
    }

    #[test]
    fn no_recipient_is_permanent() {
        let mut o = outgoing();
        o.to_addrs.clear();
        assert!(matches!(
            build_mail(&o, "a@b.example"),
            Err(SendError::Permanent(_))
        ));
        let mut o = outgoing();
        o.to_addrs = vec!["not an address".into()];
        assert!(matches!(
            build_mail(&o, "a@b.example"),
            Err(SendError::Permanent(_))
        ));
    }

    #[test]
    fn subchannel_settings() {
        let t = SmtpTarget::from_subchannel(
            &json!({"smtpHost": "mail.example", "smtpPort": "2525", "smtpTls": "none", "smtpUser": "u"}),
            &json!({"smtpPassword": "p"}),
        )
        .expect("valid")
        .expect("configured");
        let SmtpTarget::Server {
            host,
            port,
            tls,
            user,
            password,
            ..
        } = &t
        else {
            panic!("server expected");
        };
        assert_eq!(
            (host.as_str(), *port, *tls),
            ("mail.example", 2525, TlsMode::None)
        );
        assert_eq!(
            (user.as_deref(), password.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!(format!("{t:?}"), "mail.example:2525 (None)");
        assert!(
            SmtpTarget::from_subchannel(&json!({"imapHost": "x"}), &json!({}))
                .expect("valid")
                .is_none()
        );
        assert!(SmtpTarget::from_subchannel(
            &json!({"smtpHost": "x", "smtpTls": "maybe"}),
            &json!({})
        )
        .is_err());
        let SmtpTarget::Server { port, .. } =
            SmtpTarget::from_subchannel(&json!({"smtpHost": "x", "smtpTls": "tls"}), &json!({}))
                .expect("valid")
                .expect("configured")
        else {
            panic!("server expected");
        };
        assert_eq!(port, 465);
    }

    #[test]
    fn oauth_mailboxes_send_with_xoauth2() {
        let tokens = json!({"oauthAccessToken": "at", "oauthRefreshToken": "rt"});
        let m365 = json!({"authType": "oauth2", "oauthProvider": "microsoft",
                          "oauthAccount": "service@contoso.example"});
        let t = SmtpTarget::from_subchannel(&m365, &tokens)
            .expect("valid")
            .expect("M365 implies its SMTP server");
        assert!(t.is_oauth());
        let SmtpTarget::Server {
            host,
            port,
            tls,
            user,
            password,
            ..
        } = &t
        else {
            panic!("server expected");
        };
        assert_eq!(
            (
                host.as_str(),
                *port,
                *tls,
                user.as_deref(),
                password.as_deref()
            ),
            (
                "smtp.office365.com",
                587,
                TlsMode::StartTls,
                Some("service@contoso.example"),
                None
            )
        );
        let with = t.with_token("at-2".into());
        assert_ne!(
            t.cache_key().1,
            with.cache_key().1,
            "a new token, a new transport"
        );
        assert_eq!(t.cache_key().0, with.cache_key().0, "replacing the old one");
        assert!(!format!("{with:?}").contains("at-2"));
        // A password mailbox stays one; an explicit smtpAuthType wins.
        let t = SmtpTarget::from_subchannel(
            &json!({"smtpHost": "relay", "smtpUser": "u"}),
            &json!({"smtpPassword": "p", "oauthAccessToken": "at"}),
        )
        .expect("valid")
        .expect("configured");
        assert!(!t.is_oauth());
        let t = SmtpTarget::from_subchannel(
            &json!({"smtpHost": "relay", "smtpUser": "u", "smtpAuthType": "oauth2"}),
            &json!({"smtpPassword": "p", "oauthAccessToken": "at"}),
        )
        .expect("valid")
        .expect("configured");
        assert!(t.is_oauth());
        // Without a password or mode, stored tokens mean OAuth; then an account is required.
        assert!(SmtpTarget::from_subchannel(&json!({"smtpHost": "relay"}), &tokens).is_err());
    }
}
