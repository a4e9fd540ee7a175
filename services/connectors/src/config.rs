//! A mailbox subchannel's IMAP settings, read from its `data` and secrets.

use chrono::NaiveDate;
use serde_json::Value;
use switchyard_store::mail::MailboxRow;

/// How to reach and read one mailbox. The password is only ever handed to the IMAP login.
#[derive(Clone, PartialEq, Eq)]
pub struct MailboxConfig {
    pub subchannel_id: i64,
    pub host: String,
    pub port: u16,
    /// Implicit TLS (IMAPS, usually port 993); plain TCP when false (local servers, tests).
    pub tls: bool,
    pub user: String,
    pub password: String,
    pub folder: String,
    pub poll_interval_secs: u64,
    /// Use IMAP IDLE when the server offers it (else poll).
    pub idle: bool,
    /// Import mails received on or after this day when the mailbox is first connected; without
    /// it, only mails arriving from then on.
    pub since: Option<NaiveDate>,
}

impl std::fmt::Debug for MailboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxConfig")
            .field("subchannel_id", &self.subchannel_id)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("folder", &self.folder)
            .finish()
    }
}

fn text(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().filter_map(|k| v.get(*k)).find_map(|x| match x {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn flag(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_lowercase().as_str() {
            "true" | "tls" | "ssl" | "yes" | "1" => Some(true),
            "false" | "none" | "plain" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

impl MailboxConfig {
    /// `data`: `host`, `port` (993 with TLS, else 143), `tls` (default true), `user`, `folder`
    /// (`INBOX`), `pollIntervalSecs` (60), `idle` (true), `since` (`YYYY-MM-DD`); secret:
    /// `password`. `Err` says what is missing, without values.
    pub fn from_row(row: &MailboxRow) -> Result<MailboxConfig, String> {
        let d = &row.data;
        let host = text(d, &["host", "imapHost"]).ok_or("data.host is missing")?;
        let tls = flag(d, "tls").unwrap_or(true);
        let port = match text(d, &["port", "imapPort"]) {
            Some(p) => p.parse().map_err(|_| "data.port is not a port number")?,
            None if tls => 993,
            None => 143,
        };
        let user = text(d, &["user", "username", "imapUser"]).ok_or("data.user is missing")?;
        let password = text(&row.secrets, &["password", "imapPassword"])
            .ok_or("the password secret is missing")?;
        let since = match text(d, &["since"]) {
            Some(s) => Some(
                NaiveDate::parse_from_str(s.get(..10).unwrap_or(&s), "%Y-%m-%d")
                    .map_err(|_| "data.since is not a YYYY-MM-DD date")?,
            ),
            None => None,
        };
        Ok(MailboxConfig {
            subchannel_id: row.id,
            host,
            port,
            tls,
            user,
            password,
            folder: text(d, &["folder"]).unwrap_or_else(|| "INBOX".into()),
            poll_interval_secs: text(d, &["pollIntervalSecs", "pollInterval"])
                .and_then(|s| s.parse().ok())
                .filter(|s: &u64| *s > 0)
                .unwrap_or(60),
            idle: flag(d, "idle").unwrap_or(true),
            since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(data: Value, secrets: Value) -> MailboxRow {
        MailboxRow {
            id: 7,
            data,
            secrets,
            modified_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn defaults_and_secrets() {
        let c = MailboxConfig::from_row(&row(
            json!({"host": "imap.example.org", "user": "service"}),
            json!({"password": "hunter2"}),
        ))
        .expect("valid");
        assert_eq!((c.port, c.tls, c.folder.as_str()), (993, true, "INBOX"));
        assert!(!format!("{c:?}").contains("hunter2"));
        let plain = MailboxConfig::from_row(&row(
            json!({"host": "127.0.0.1", "port": 10143, "tls": false, "user": "u", "since": "2026-11-01"}),
            json!({"password": "p"}),
        ))
        .expect("valid");
        assert_eq!((plain.port, plain.tls), (10143, false));
        assert!(plain.since.is_some());
        assert!(
            MailboxConfig::from_row(&row(json!({"host": "h", "user": "u"}), json!({}))).is_err()
        );
    }
}
