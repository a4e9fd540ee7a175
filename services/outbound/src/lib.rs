//! The outbound stage: sends the replies and forwards that autoexecute and the API queued as
//! outbound messages, through the ticket's subchannel (SMTP for mailboxes, the callback of a
//! chat subchannel).
//!
//! Exactly once, as far as a crash allows: the attempt is counted and committed before the mail
//! leaves; once the SMTP server accepted it the message is marked `sent` (with the stage marker
//! and `events.SendEmail`) in one transaction. A redelivery finds `sent` and does nothing. A
//! worker that dies between the server's acceptance and that commit leaves an attempt without a
//! recorded outcome: the redelivery sends again with the same Message-ID (a *resend*, counted in
//! `switchyard_outbound_resends_total`), which mail clients show as one mail.
//!
//! Transient failures (connection refused, timeouts, 4xx) are retried by the stage runtime with
//! its backoff; a permanent one (5xx, no recipient, nothing configured to send with) or the last
//! allowed attempt marks the message `failed`, flags the ticket `replyNotSent` for a person and
//! reopens it if dark processing had closed it. Automatic replies never answer machine mail.
//! A sweep republishes replies still queued a minute after they were queued (the publisher may
//! have died between its commit and its publish); `Nats-Msg-Id` de-duplication keeps that
//! harmless.

pub mod chat;
pub mod smtp;

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use switchyard_bus::Bus;
use switchyard_domain::{Envelope, ProcessingFlag, Stage, TicketStatus, ENVELOPE_VERSION};
use switchyard_stage::{
    envelope_key, EffectMode, StageCx, StageError, StageHandler, StageOutput, WorkKey,
};
use switchyard_store::outbound::{self, Outgoing};
use switchyard_store::settings::SettingsCache;
use switchyard_store::tickets::{self, TicketPatch};
use switchyard_store::Store;
use tracing::Instrument;

use chat::ChatTarget;
use smtp::{Mailer, SmtpTarget};

/// Why a message was not sent, and whether another try can help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

/// Outbound's configuration (environment variables, see the README).
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Attempts before a message that keeps failing transiently is given up (`failed`).
    pub max_attempts: i32,
    /// `SMTP_URL`: the SMTP server for mailboxes without `smtpHost` (and tickets without one).
    pub smtp_url: Option<String>,
    /// `SMTP_FROM`: the sender when neither the reply nor its mailbox names one.
    pub smtp_from: Option<String>,
    /// Connect and command timeout of SMTP and chat calls (`OUTBOUND_TIMEOUT_SECS`).
    pub timeout: Duration,
}

impl OutboundConfig {
    pub fn from_env(max_attempts: i32) -> OutboundConfig {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        OutboundConfig {
            max_attempts: var("OUTBOUND_MAX_ATTEMPTS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(max_attempts)
                .max(1),
            smtp_url: var("SMTP_URL"),
            smtp_from: var("SMTP_FROM"),
            timeout: Duration::from_secs(
                var("OUTBOUND_TIMEOUT_SECS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(15),
            ),
        }
    }
}

pub struct Outbound {
    /// A pool of its own for the attempt counter, committed outside the stage's transaction
    /// (which holds a connection of the main pool while the mail is sent).
    attempts: Store,
    mailer: Mailer,
    http: reqwest::Client,
    /// The Microsoft settings, for refreshing the tokens of mailboxes connected by OAuth.
    settings: SettingsCache,
    config: OutboundConfig,
}

impl Outbound {
    /// `http` serves chat callbacks and the OAuth token endpoint; `attempts` also serves the
    /// OAuth token refresh (it locks the mailbox's row outside the stage's transaction).
    pub fn new(
        attempts: Store,
        http: reqwest::Client,
        settings: SettingsCache,
        config: OutboundConfig,
    ) -> Outbound {
        Outbound {
            attempts,
            mailer: Mailer::new(config.timeout),
            http,
            settings,
            config,
        }
    }

    /// The mailbox's OAuth access token (refreshed when due, or when the server `rejected` it).
    /// A broken connection is a permanent reason not to send; an unreachable token endpoint a
    /// transient one.
    async fn oauth_token(
        &self,
        subchannel_id: i64,
        rejected: Option<&str>,
    ) -> Result<String, SendError> {
        match switchyard_oauth::access_token(
            &self.attempts,
            &self.http,
            &self.settings,
            subchannel_id,
            rejected,
            "service:outbound",
        )
        .await
        {
            Ok(t) => Ok(t.token),
            Err(e) if e.is_transient() => Err(SendError::Transient(format!("mailbox OAuth: {e}"))),
            Err(e) => Err(SendError::Permanent(format!("mailbox OAuth: {e}"))),
        }
    }

    /// Sends the mail; when the server refuses an OAuth login, once more with a refreshed token.
    async fn send_mail(
        &self,
        target: SmtpTarget,
        subchannel_id: Option<i64>,
        mail: lettre::Message,
    ) -> Result<(), SendError> {
        let again = mail.clone();
        match self.mailer.send(&target, mail).await {
            Ok(()) => Ok(()),
            Err(r) if r.login && target.is_oauth() => {
                let (Some(id), SmtpTarget::Server { password, .. }) = (subchannel_id, &target)
                else {
                    return Err(r.error);
                };
                tracing::info!("the SMTP server refused the access token; refreshing it");
                let token = self.oauth_token(id, password.as_deref()).await?;
                self.mailer
                    .send(&target.with_token(token), again)
                    .await
                    .map_err(|r| r.error)
            }
            Err(r) => Err(r.error),
        }
    }
}

/// How one message goes out, decided before the attempt is counted.
enum Prepared {
    Mail(SmtpTarget, Box<lettre::Message>),
    Chat(ChatTarget),
}

impl StageHandler for Outbound {
    const STAGE: Stage = Stage::Outbound;
    type Input = Envelope;

    fn key(input: &Envelope) -> WorkKey {
        envelope_key(input)
    }

    async fn process(&self, cx: &mut StageCx, input: &Envelope) -> Result<StageOutput, StageError> {
        let span = tracing::info_span!(
            "outbound",
            ticket_id = input.ticket_id,
            message_id = input.message_id
        );
        self.work(cx, input).instrument(span).await
    }
}

impl Outbound {
    async fn work(&self, cx: &mut StageCx, input: &Envelope) -> Result<StageOutput, StageError> {
        let (ticket_id, message_id) = (input.ticket_id, input.message_id);
        let done = |outcome: Value| StageOutput {
            ticket_id,
            message_id,
            outcome,
            next: None,
        };
        let m = outbound::load(cx.conn(), message_id)
            .await?
            .ok_or_else(|| StageError::Permanent(format!("message {message_id} does not exist")))?;
        if m.ticket_id != ticket_id {
            return Err(StageError::Permanent(format!(
                "message {message_id} belongs to ticket {}, not {ticket_id}",
                m.ticket_id
            )));
        }
        if m.direction != "out" {
            return Ok(done(json!({"result": "notOutbound"})));
        }
        match m.send_status.as_deref() {
            Some("queued") => {}
            Some("sent") => {
                tracing::info!("already sent");
                return Ok(done(json!({"result": "alreadySent"})));
            }
            other => return Ok(done(json!({"result": "notQueued", "sendStatus": other}))),
        }
        if *cx.mode() == EffectMode::RecordOnly {
            return Ok(done(json!({"result": "recordOnly"})));
        }
        // Machine mail (out-of-office, bounces, auto_programmatic tickets) is never answered
        // automatically: that is how reply loops start.
        if m.is_automated() && !m.is_forward() {
            let machine = m.answers_auto_reply.clone().or_else(|| {
                (m.ticket_spam_status.as_deref() == Some("auto_programmatic"))
                    .then(|| "auto_programmatic".to_owned())
            });
            if let Some(kind) = machine {
                let reason = format!(
                    "the customer's message is machine mail ({kind}): an automatic reply is never sent to it"
                );
                return self.give_up(cx, &m, &reason, 0).await.map(done);
            }
        }
        let prepared = match self.prepare(cx, &m).await? {
            Ok(p) => p,
            Err(e) => return self.give_up(cx, &m, &e.to_string(), 0).await.map(done),
        };

        // Counted and committed before anything leaves: a crash after this is seen on redelivery.
        let Some(attempt) = outbound::begin_attempt(self.attempts.pool(), m.id).await? else {
            return Ok(done(json!({"result": "notQueued"})));
        };
        let resend = m.send_attempts > 0 && m.send_error.is_none();
        if resend {
            metrics::counter!("switchyard_outbound_resends_total").increment(1);
            tracing::warn!(
                attempt,
                mail_message_id = m.mail_message_id.as_deref().unwrap_or(""),
                "an earlier attempt ended without a recorded outcome; sending again with the same Message-ID"
            );
        } else if m.send_attempts > 0 {
            metrics::counter!("switchyard_outbound_retries_total").increment(1);
            tracing::info!(attempt, "retrying after a failed attempt");
        }
        let channel = match &prepared {
            Prepared::Mail(..) => "email",
            Prepared::Chat(_) => "chat",
        };
        let result = match prepared {
            Prepared::Mail(target, mail) => self.send_mail(target, m.subchannel_id, *mail).await,
            Prepared::Chat(target) => {
                chat::post(&self.http, &target, &m, self.config.timeout).await
            }
        };
        match result {
            Ok(()) => {
                outbound::mark_sent(cx.conn(), m.id).await?;
                if channel == "email" {
                    cx.emit(
                        "SendEmail",
                        json!({"ticketId": ticket_id, "messageId": m.id, "to": m.to_addrs,
                               "cc": m.cc_addrs, "mailMessageId": m.mail_message_id}),
                    );
                }
                metrics::counter!("switchyard_outbound_sent_total", "channel" => channel)
                    .increment(1);
                tracing::info!(attempt, resend, channel, "sent");
                Ok(done(
                    json!({"result": "sent", "channel": channel, "attempt": attempt,
                               "resend": resend, "mailMessageId": m.mail_message_id}),
                ))
            }
            Err(SendError::Transient(e)) if attempt < self.config.max_attempts => {
                if let Err(store) =
                    outbound::note_failed_attempt(self.attempts.pool(), m.id, &e).await
                {
                    tracing::warn!(error = %store, "could not record the failed attempt");
                }
                metrics::counter!("switchyard_outbound_failures_total", "kind" => "transient")
                    .increment(1);
                Err(StageError::Transient(e))
            }
            Err(SendError::Transient(e)) => {
                let reason = format!("gave up after {attempt} attempts: {e}");
                self.give_up(cx, &m, &reason, attempt).await.map(done)
            }
            Err(SendError::Permanent(e)) => self.give_up(cx, &m, &e, attempt).await.map(done),
        }
    }

    /// Where and how the message goes; the inner error is a permanent reason not to send it.
    async fn prepare(
        &self,
        cx: &mut StageCx,
        m: &Outgoing,
    ) -> Result<Result<Prepared, SendError>, StageError> {
        let sub = match m.subchannel_id {
            Some(id) => outbound::subchannel(cx.conn(), id).await?,
            None => None,
        };
        if m.channel.as_deref() == Some("chat") {
            let Some(sub) = sub.filter(|s| s.channel == "chat") else {
                return Ok(Err(SendError::Permanent(
                    "a chat reply needs the ticket's chat subchannel".into(),
                )));
            };
            let Some(url) = sub
                .data
                .get("callbackUrl")
                .and_then(Value::as_str)
                .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            else {
                return Ok(Err(SendError::Permanent(
                    "the chat subchannel has no callbackUrl".into(),
                )));
            };
            let Some(channel_id) = m.ticket_channel_id.clone() else {
                return Ok(Err(SendError::Permanent(
                    "the chat ticket has no channelId".into(),
                )));
            };
            return Ok(Ok(Prepared::Chat(ChatTarget {
                url: url.to_owned(),
                secret: sub
                    .secrets
                    .get("signingSecret")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                channel_id,
            })));
        }
        let mailbox = sub.as_ref().filter(|s| s.channel == "email");
        let target =
            match mailbox.map(|s| SmtpTarget::from_subchannel(&s.data, &s.secrets)) {
                Some(Err(e)) => return Ok(Err(e)),
                Some(Ok(Some(t))) => t,
                _ => match &self.config.smtp_url {
                    Some(url) => SmtpTarget::Url(url.clone()),
                    None => return Ok(Err(SendError::Permanent(
                        "no SMTP server configured: neither the mailbox's smtpHost nor SMTP_URL"
                            .into(),
                    ))),
                },
            };
        let target = match (target.is_oauth(), m.subchannel_id) {
            (true, Some(id)) => match self.oauth_token(id, None).await {
                Ok(token) => target.with_token(token),
                Err(SendError::Transient(e)) => return Err(StageError::Transient(e)),
                Err(e) => return Ok(Err(e)),
            },
            _ => target,
        };
        let from = m
            .from_addr
            .clone()
            .filter(|f| !f.trim().is_empty())
            .or_else(|| {
                mailbox.and_then(|s| {
                    s.data
                        .get("fromAddress")
                        .or_else(|| s.data.get("email"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
            })
            .or_else(|| self.config.smtp_from.clone());
        let Some(from) = from else {
            return Ok(Err(SendError::Permanent(
                "no sender address: neither the mailbox's fromAddress/email nor SMTP_FROM".into(),
            )));
        };
        Ok(smtp::build_mail(m, &from).map(|mail| Prepared::Mail(target, Box::new(mail))))
    }

    /// The message will not be sent: `failed` with the reason, the ticket flagged for a person
    /// and reopened if dark processing had closed it.
    async fn give_up(
        &self,
        cx: &mut StageCx,
        m: &Outgoing,
        reason: &str,
        attempts: i32,
    ) -> Result<Value, StageError> {
        tracing::warn!(reason, attempts, "reply not sent; flagged for a person");
        metrics::counter!("switchyard_outbound_failures_total", "kind" => "permanent").increment(1);
        outbound::mark_failed(cx.conn(), m.id, reason).await?;
        let actor = cx.actor().to_owned();
        let flag = ProcessingFlag {
            code: "replyNotSent".into(),
            message: format!("reply {} was not sent: {reason}", m.id),
            stage: Some(Stage::Outbound.as_str().to_owned()),
            at: Some(Utc::now()),
        };
        tickets::add_processing_flag(cx.conn(), m.ticket_id, &flag, &actor).await?;
        let closed = matches!(m.ticket_status.as_str(), "closed" | "resolved");
        let reopen = closed && m.is_automated();
        if reopen {
            cx.patch_ticket(
                m.ticket_id,
                &TicketPatch {
                    status: Some(TicketStatus::Open),
                    ..Default::default()
                },
            )
            .await?;
        }
        Ok(json!({"result": "failed", "error": reason, "attempts": attempts, "reopened": reopen}))
    }
}

/// Republishes replies still queued `age` after they were queued whose hand-over to outbound
/// was probably lost, every `every`, until `stop`. The Message-ID-like `Nats-Msg-Id`
/// (`outbound:<id>`) makes a republish of a message still in the stream a no-op.
pub async fn run_sweeper(
    store: Store,
    bus: Bus,
    every: Duration,
    age: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // A reply being retried is left to its backoff; only one whose last attempt is this old is
    // handed over again.
    let quiet = chrono::Duration::minutes(10);
    let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::seconds(60));
    loop {
        match outbound::stale_queued(store.pool(), age, quiet, 500).await {
            Ok(stale) => {
                let mut republished = 0u64;
                for (message_id, ticket_id) in stale {
                    let env = Envelope {
                        v: ENVELOPE_VERSION,
                        ticket_id,
                        message_id,
                        test_run_id: None,
                        reply: None,
                    };
                    match bus
                        .publish_json(
                            Stage::Outbound.input_subject(),
                            &env.msg_id(Stage::Outbound),
                            &env,
                        )
                        .await
                    {
                        Ok(_) => republished += 1,
                        Err(e) => {
                            tracing::warn!(error = %e, ticket_id, message_id, "sweep could not republish");
                            break;
                        }
                    }
                }
                if republished > 0 {
                    metrics::counter!("switchyard_outbound_swept_total").increment(republished);
                    tracing::info!(republished, "queued replies handed to outbound again");
                }
            }
            Err(e) => tracing::warn!(error = %e, "sweep of queued replies failed"),
        }
        if tokio::time::timeout(every, stop.wait_for(|s| *s))
            .await
            .is_ok()
        {
            return;
        }
    }
}
