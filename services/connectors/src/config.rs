//! A mailbox subchannel's IMAP settings, read from its `data` and secrets.

use chrono::NaiveDate;
use serde_json::Value;
use switchyard_store::mail::MailboxRow;

/// How the connector logs in (`data.authType`).
#[derive(Clone, PartialEq, Eq)]
pub enum ImapAuth {
    /// IMAP LOGIN with the `password` secret.
    Password(String),
    /// SASL XOAUTH2 with the subchannel's OAuth access token (the mailbox was connected through
    /// the API's Microsoft authorization); the token is read, and refreshed when due, at each
    /// connection, so it is not part of the settings.
    OAuth2,
}

/// How to reach and read one mailbox. The password is only ever handed to the IMAP login.
#[derive(Clone, PartialEq, Eq)]
pub struct MailboxConfig {
    pub subchannel_id: i64,
    pub host: String,
    pub port: u16,
    /// Implicit TLS (IMAPS, usually port 993); plain TCP when false (local servers, tests).
    pub tls: bool,
    pub user: String,
    pub auth: ImapAuth,
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
            .field(
                "auth",
                &match self.auth {
                    ImapAuth::Password(_) => "password <redacted>",
                    ImapAuth::OAuth2 => "oauth2",
                },
            )
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
    /// (`INBOX`), `pollIntervalSecs` (60), `idle` (true), `since` (`YYYY-MM-DD`), `authType`
    /// (`password` or `oauth2`); secret: `password`. Without `authType`, the password is used
    /// when there is one, else the OAuth tokens. A mailbox connected by OAuth (the API's
    /// Microsoft authorization sets `authType` `oauth2`) defaults to Microsoft 365's
    /// `outlook.office365.com` and to the account it signed in as user. `Err` says what is
    /// missing, without values.
    pub fn from_row(row: &MailboxRow) -> Result<MailboxConfig, String> {
        let d = &row.data;
        let microsoft = text(d, &["oauthProvider"]).as_deref() == Some("microsoft");
        let password = text(&row.secrets, &["password", "imapPassword"]);
        let has_tokens = text(&row.secrets, &["oauthAccessToken", "oauthRefreshToken"]).is_some();
        let oauth = || {
            if let Some(e) = text(d, &["oauthError"]) {
                return Err(format!("the OAuth connection is broken: {e}"));
            }
            if !has_tokens {
                return Err("data.authType is oauth2, but the mailbox was never connected by OAuth (GET /api/mind/settings/mailbox/microsoft/authorization)".to_owned());
            }
            Ok(ImapAuth::OAuth2)
        };
        let auth = match text(d, &["authType"]).map(|a| a.to_ascii_lowercase()) {
            Some(a) if matches!(a.as_str(), "oauth2" | "xoauth2" | "oauth") => oauth()?,
            Some(a) if matches!(a.as_str(), "password" | "login" | "plain") => {
                ImapAuth::Password(password.ok_or("the password secret is missing")?)
            }
            Some(_) => return Err("data.authType must be password or oauth2".into()),
            None => match password {
                Some(p) => ImapAuth::Password(p),
                None if has_tokens => oauth()?,
                None => return Err("the password secret is missing".into()),
            },
        };
        let host = match text(d, &["host", "imapHost"]) {
            Some(h) => h,
            None if microsoft && auth == ImapAuth::OAuth2 => "outlook.office365.com".into(),
            None => return Err("data.host is missing".into()),
        };
        let tls = flag(d, "tls").unwrap_or(true);
        let port = match text(d, &["port", "imapPort"]) {
            Some(p) => p.parse().map_err(|_| "data.port is not a port number")?,
            None if tls => 993,
            None => 143,
        };
        let mut users = vec!["user", "username", "imapUser"];
        if auth == ImapAuth::OAuth2 {
            users.push("oauthAccount");
        }
        let user = text(d, &users).ok_or("data.user is missing")?;
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
            auth,
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

    #[test]
    fn oauth_connected_mailboxes_log_in_with_xoauth2() {
        let tokens = json!({"oauthAccessToken": "at", "oauthRefreshToken": "rt"});
        // As the API's callback leaves an M365 mailbox: Microsoft's server and the account.
        let m365 = json!({"authType": "oauth2", "oauthProvider": "microsoft",
                          "oauthAccount": "service@contoso.example"});
        let c = MailboxConfig::from_row(&row(m365.clone(), tokens.clone())).expect("valid");
        assert!(c.auth == ImapAuth::OAuth2);
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str()),
            ("outlook.office365.com", 993, "service@contoso.example")
        );
        assert!(!format!("{c:?}").contains("\"at\""));
        // The explicit mode wins over a password that is also there, and the other way round.
        let mut both = tokens.clone();
        both["password"] = json!("p");
        let c = MailboxConfig::from_row(&row(m365.clone(), both.clone())).expect("valid");
        assert!(c.auth == ImapAuth::OAuth2);
        let c = MailboxConfig::from_row(&row(
            json!({"host": "h", "user": "u", "authType": "password"}),
            both.clone(),
        ))
        .expect("valid");
        assert!(c.auth == ImapAuth::Password("p".into()));
        // Without a mode: the password when there is one, else the tokens.
        let c =
            MailboxConfig::from_row(&row(json!({"host": "h", "user": "u"}), both)).expect("valid");
        assert!(matches!(c.auth, ImapAuth::Password(_)));
        let c = MailboxConfig::from_row(&row(json!({"host": "h", "user": "u"}), tokens.clone()))
            .expect("valid");
        assert!(c.auth == ImapAuth::OAuth2);
        // Never connected, or the refresh token was refused: not polled, and why.
        let e = MailboxConfig::from_row(&row(m365.clone(), json!({}))).expect_err("no tokens");
        assert!(e.contains("never connected"), "{e}");
        let mut broken = m365;
        broken["oauthError"] = json!("invalid_grant; connect the mailbox again");
        let e = MailboxConfig::from_row(&row(broken, tokens)).expect_err("broken");
        assert!(e.contains("invalid_grant"), "{e}");
    }
}
