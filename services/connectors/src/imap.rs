//! One mailbox: connect, pick up where the last run stopped (UIDVALIDITY + last UID in
//! PostgreSQL), fetch every newer mail with `BODY.PEEK[]` (so its \Seen flag is never touched,
//! and mails another client already read are fetched all the same), store the raw MIME, publish
//! `inbound.email`, and only then advance the UID. Then wait with IDLE, or poll.

use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use bytes::Bytes;
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use switchyard_domain::{
    mail_key, Channel, InboundEnvelope, InboundTicket, IngestInput, RawMail, ENVELOPE_VERSION,
};
use switchyard_oauth::OAuthError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::config::{ImapAuth, MailboxConfig};
use crate::{ConnectorDeps, ConnectorError};

/// A connection, TLS or plain, as one type for the IMAP client.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

type ImapSession = Session<Box<dyn Io>>;

/// How many mails, and how many bytes of mail, one FETCH asks for: bounds memory when mails are
/// large (a mail larger than the byte bound is fetched alone).
const FETCH_CHUNK: usize = 20;
const FETCH_CHUNK_BYTES: u64 = 16 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one mailbox until the task is aborted (removed or changed subchannel, shutdown).
/// Connection trouble is retried with a growing pause; nothing is skipped meanwhile, because
/// progress lives in the database.
pub async fn run_mailbox(cfg: MailboxConfig, deps: Arc<ConnectorDeps>) {
    let span = tracing::info_span!("mailbox", subchannel_id = cfg.subchannel_id);
    async move {
        let mut pause = Duration::from_secs(1);
        loop {
            match serve(&cfg, &deps).await {
                Ok(()) => pause = Duration::from_secs(1),
                Err(ConnectorError::OAuth(e @ OAuthError::Revoked(_))) => {
                    // Recorded on the subchannel (`data.oauthError`): polling resumes once the
                    // mailbox is connected again, not by retrying a refused refresh token.
                    metrics::counter!("switchyard_connector_errors_total").increment(1);
                    tracing::error!(error = %e, "mailbox not polled until it is connected again");
                    return;
                }
                Err(e) => {
                    metrics::counter!("switchyard_connector_errors_total").increment(1);
                    tracing::warn!(error = %e, retry_in = ?pause, "mailbox connection failed");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
    .instrument(span)
    .await
}

type ImapClient = Client<Box<dyn Io>>;

/// A connection with the server's greeting read, not yet logged in.
async fn open(cfg: &MailboxConfig, deps: &ConnectorDeps) -> Result<ImapClient, ConnectorError> {
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((cfg.host.as_str(), cfg.port)),
    )
    .await
    .map_err(|_| ConnectorError::Imap("connect timed out".into()))??;
    let stream: Box<dyn Io> = if cfg.tls {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(cfg.host.clone())
            .map_err(|_| ConnectorError::Imap(format!("{} is not a TLS server name", cfg.host)))?;
        Box::new(deps.tls.connect(name, tcp).await?)
    } else {
        Box::new(tcp)
    };
    let mut client = Client::new(stream);
    // The server's greeting comes before any command.
    client
        .read_response()
        .await?
        .ok_or_else(|| ConnectorError::Imap("connection closed before the greeting".into()))?;
    Ok(client)
}

/// SASL XOAUTH2 (`user=…^Aauth=Bearer …^A^A`). When the server refuses the token it sends an
/// error challenge, which the mechanism answers with an empty line; the server then says NO.
struct XOAuth2<'a> {
    user: &'a str,
    token: &'a str,
    sent: bool,
}

impl async_imap::Authenticator for XOAuth2<'_> {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        if std::mem::replace(&mut self.sent, true) {
            return Vec::new();
        }
        xoauth2_response(self.user, self.token)
    }
}

fn xoauth2_response(user: &str, token: &str) -> Vec<u8> {
    format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

async fn authenticate(
    client: ImapClient,
    user: &str,
    token: &str,
) -> Result<ImapSession, (async_imap::error::Error, ImapClient)> {
    let auth = XOAuth2 {
        user,
        token,
        sent: false,
    };
    client.authenticate("XOAUTH2", auth).await
}

async fn connect(cfg: &MailboxConfig, deps: &ConnectorDeps) -> Result<ImapSession, ConnectorError> {
    let client = open(cfg, deps).await?;
    match &cfg.auth {
        ImapAuth::Password(password) => client
            .login(&cfg.user, password)
            .await
            .map_err(|(e, _)| ConnectorError::Imap(format!("login failed: {e}"))),
        ImapAuth::OAuth2 => {
            let token = deps.access_token(cfg.subchannel_id, None).await?;
            let client = match authenticate(client, &cfg.user, &token.token).await {
                Ok(session) => return Ok(session),
                // A refused token that was not just refreshed may have been revoked early (or
                // the clocks disagree): refresh it once and try again on this connection.
                Err((async_imap::error::Error::No(why), client)) if !token.refreshed => {
                    tracing::info!(%why, "XOAUTH2 refused the stored access token; refreshing it");
                    client
                }
                Err((e, _)) => {
                    return Err(ConnectorError::Imap(format!("XOAUTH2 login failed: {e}")))
                }
            };
            let token = deps
                .access_token(cfg.subchannel_id, Some(&token.token))
                .await?;
            authenticate(client, &cfg.user, &token.token)
                .await
                .map_err(|(e, _)| {
                    ConnectorError::Imap(format!(
                        "XOAUTH2 login failed with a refreshed token (does the account {} have IMAP access?): {e}",
                        cfg.user
                    ))
                })
        }
    }
}

/// One connection's life: catch up, then wait for news, until an error.
async fn serve(cfg: &MailboxConfig, deps: &ConnectorDeps) -> Result<(), ConnectorError> {
    let mut session = connect(cfg, deps).await?;
    let can_idle = cfg.idle && session.capabilities().await?.has_str("IDLE");
    tracing::info!(idle = can_idle, folder = %cfg.folder, "mailbox connected");
    let wait = Duration::from_secs(cfg.poll_interval_secs);
    loop {
        catch_up(&mut session, cfg, deps).await?;
        if can_idle {
            let mut idle = session.idle();
            idle.init().await?;
            let (news, _stop) = idle.wait_with_timeout(wait);
            news.await?;
            session = idle.done().await?;
        } else {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Fetches and hands on every mail newer than the recorded progress.
async fn catch_up(
    session: &mut ImapSession,
    cfg: &MailboxConfig,
    deps: &ConnectorDeps,
) -> Result<(), ConnectorError> {
    let mailbox = session.select(&cfg.folder).await?;
    let validity = mailbox
        .uid_validity
        .ok_or_else(|| ConnectorError::Imap("the server sent no UIDVALIDITY".into()))?;
    let last_uid = {
        let mut conn = deps
            .store
            .pool()
            .acquire()
            .await
            .map_err(switchyard_store::StoreError::from)?;
        switchyard_store::mail::progress(&mut conn, cfg.subchannel_id, &cfg.folder).await?
    };
    let last_uid: u32 = match last_uid {
        Some((v, last)) if v == i64::from(validity) => u32::try_from(last).unwrap_or(0),
        Some(_) => {
            // The folder was recreated: its UIDs mean nothing any more. Read it again from the
            // start; Message-IDs make the mails already stored a no-op.
            tracing::warn!(validity, "UIDVALIDITY changed; reading the folder again");
            save_progress(deps, cfg, validity, 0).await?;
            0
        }
        None => {
            let start = first_uid(session, cfg, mailbox.uid_next).await?;
            save_progress(deps, cfg, validity, start).await?;
            tracing::info!(since = ?cfg.since, last_uid = start, "mailbox connected for the first time");
            start
        }
    };
    // UIDs and sizes first, so one FETCH never holds more than a bounded amount of mail.
    let mut sizes: Vec<(u32, u32)> = session
        .uid_fetch(
            format!("{}:*", u64::from(last_uid) + 1),
            "(UID RFC822.SIZE)",
        )
        .await?
        .try_filter_map(|f| async move { Ok(f.uid.map(|u| (u, f.size.unwrap_or(0)))) })
        .try_collect()
        .await?;
    // `n:*` always matches the newest mail, even when its UID is below n.
    sizes.retain(|(uid, _)| *uid > last_uid);
    sizes.sort_unstable();
    for chunk in fetch_chunks(&sizes) {
        let set = chunk
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut fetched: Vec<(u32, Vec<u8>)> = session
            .uid_fetch(&set, "(UID BODY.PEEK[])")
            .await?
            .try_filter_map(|f| async move { Ok(f.uid.zip(f.body().map(<[u8]>::to_vec))) })
            .try_collect()
            .await?;
        fetched.sort_unstable_by_key(|(uid, _)| *uid);
        for (uid, raw) in fetched {
            hand_on(cfg, deps, &cfg.folder, validity, uid, raw).await?;
            save_progress(deps, cfg, validity, uid).await?;
        }
    }
    Ok(())
}

/// Groups `(uid, size)` in UID order into FETCH sets within the count and byte bounds.
fn fetch_chunks(sizes: &[(u32, u32)]) -> Vec<Vec<u32>> {
    let mut chunks: Vec<Vec<u32>> = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in sizes {
        let full = chunks
            .last()
            .is_none_or(|c| c.len() >= FETCH_CHUNK || bytes + u64::from(size) > FETCH_CHUNK_BYTES);
        if full {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += u64::from(size);
        if let Some(c) = chunks.last_mut() {
            c.push(uid);
        }
    }
    chunks
}

/// Where a new mailbox starts: after the newest mail, or before the first mail since the
/// configured day (`since`), so adding a mailbox never imports its whole history by surprise.
async fn first_uid(
    session: &mut ImapSession,
    cfg: &MailboxConfig,
    uid_next: Option<u32>,
) -> Result<u32, ConnectorError> {
    if let Some(since) = cfg.since {
        let found = session
            .uid_search(format!("SINCE {}", since.format("%d-%b-%Y")))
            .await?;
        if let Some(min) = found.into_iter().min() {
            return Ok(min.saturating_sub(1));
        }
    }
    match uid_next {
        Some(next) => Ok(next.saturating_sub(1)),
        None => Ok(session
            .uid_search("ALL")
            .await?
            .into_iter()
            .max()
            .unwrap_or(0)),
    }
}

async fn save_progress(
    deps: &ConnectorDeps,
    cfg: &MailboxConfig,
    validity: u32,
    uid: u32,
) -> Result<(), ConnectorError> {
    let mut conn = deps
        .store
        .pool()
        .acquire()
        .await
        .map_err(switchyard_store::StoreError::from)?;
    switchyard_store::mail::set_progress(
        &mut conn,
        cfg.subchannel_id,
        &cfg.folder,
        i64::from(validity),
        i64::from(uid),
    )
    .await?;
    Ok(())
}

/// The mail's identity for de-duplication: its Message-ID, or a hash of its content when it
/// has none (or one too long for a header).
pub fn mail_identity(raw: &[u8]) -> String {
    let id = mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.message_id().map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty() && s.len() <= 512 && !s.chars().any(char::is_control));
    match id {
        Some(id) => id,
        None => format!("sha256:{}", hex::encode(Sha256::digest(raw))),
    }
}

/// Raw MIME to the object store, then `inbound.email` (awaiting JetStream's ack).
async fn hand_on(
    cfg: &MailboxConfig,
    deps: &ConnectorDeps,
    folder: &str,
    validity: u32,
    uid: u32,
    raw: Vec<u8>,
) -> Result<(), ConnectorError> {
    let identity = mail_identity(&raw);
    let key = mail_key(cfg.subchannel_id, &identity);
    let object_key = format!("raw/{}/{validity}/{uid}.eml", cfg.subchannel_id);
    let size = raw.len() as u64;
    deps.objects.put(&object_key, Bytes::from(raw)).await?;
    let envelope = IngestInput {
        inbound: InboundEnvelope {
            v: ENVELOPE_VERSION,
            key: key.clone(),
            received_at: chrono::Utc::now(),
            reply: None,
            ticket: InboundTicket {
                channel: Some(Channel::Email),
                subchannel_id: Some(cfg.subchannel_id),
                ..Default::default()
            },
        },
        mail: Some(RawMail {
            object_key,
            size,
            folder: folder.to_owned(),
            uid_validity: validity,
            uid,
        }),
    };
    let published = deps
        .bus
        .publish_json("inbound.email", &key, &envelope)
        .await?;
    metrics::counter!("switchyard_connector_mails_total").increment(1);
    tracing::debug!(uid, duplicate = published.duplicate, "mail handed on");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_sets_are_bounded_by_count_and_bytes() {
        let small: Vec<(u32, u32)> = (1..=45).map(|u| (u, 1000)).collect();
        let sets = fetch_chunks(&small);
        assert_eq!(
            sets.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![20, 20, 5]
        );
        let big = 20 * 1024 * 1024;
        let sets = fetch_chunks(&[(1, 10), (2, big), (3, 10), (4, 10)]);
        assert_eq!(sets, vec![vec![1], vec![2], vec![3, 4]]);
        assert!(fetch_chunks(&[]).is_empty());
    }

    #[test]
    fn xoauth2_answers_once_and_then_acknowledges_the_error() {
        assert_eq!(
            xoauth2_response("service@contoso.example", "at-1"),
            b"user=service@contoso.example\x01auth=Bearer at-1\x01\x01".to_vec()
        );
        let mut a = XOAuth2 {
            user: "u",
            token: "t",
            sent: false,
        };
        use async_imap::Authenticator as _;
        assert_eq!(a.process(b""), b"user=u\x01auth=Bearer t\x01\x01".to_vec());
        assert!(a.process(br#"{"status":"401"}"#).is_empty());
    }

    #[test]
    fn identity_is_the_message_id_or_a_content_hash() {
        assert_eq!(
            mail_identity(b"Message-ID: <a@b>\r\nSubject: x\r\n\r\nhi"),
            "a@b"
        );
        let hashed = mail_identity(b"Subject: x\r\n\r\nhi");
        assert!(hashed.starts_with("sha256:"));
        assert_eq!(hashed, mail_identity(b"Subject: x\r\n\r\nhi"));
        assert_ne!(hashed, mail_identity(b"Subject: y\r\n\r\nhi"));
    }
}
