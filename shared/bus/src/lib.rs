//! The message bus (NATS JetStream).
//!
//! Four streams: `INBOUND` (`inbound.>`), `PIPELINE` (`pipeline.>`, work queue), `EVENTS`
//! (`events.>`, kept for several subscribers) and `DLQ` (`dlq.>`). A prefix isolates installations
//! and test runs sharing one server: prefix `t1` gives stream `t1_PIPELINE` on `t1.pipeline.>`.
//! Every publish waits for the stream's acknowledgement and carries `Nats-Msg-Id`, so a retried
//! publish inside the two-minute window is dropped by the server; the lasting guard against
//! duplicates is the database.

use std::time::Duration;

use async_nats::header::{HeaderMap, NATS_MESSAGE_ID};
use async_nats::jetstream::{self, consumer::pull, stream};
use bytes::Bytes;

pub use async_nats::jetstream::message::{AckKind, Message};
pub use async_nats::{Client, Subscriber};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("JetStream {what}: {message}")]
    JetStream { what: &'static str, message: String },
    #[error("cannot encode message: {0}")]
    Encode(#[from] serde_json::Error),
}

impl BusError {
    fn js(what: &'static str, e: impl std::fmt::Display) -> Self {
        BusError::JetStream {
            what,
            message: e.to_string(),
        }
    }
}

/// The streams and what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Inbound,
    Pipeline,
    Events,
    Dlq,
}

impl StreamKind {
    pub const ALL: [StreamKind; 4] = [
        StreamKind::Inbound,
        StreamKind::Pipeline,
        StreamKind::Events,
        StreamKind::Dlq,
    ];

    fn base_name(self) -> &'static str {
        match self {
            StreamKind::Inbound => "INBOUND",
            StreamKind::Pipeline => "PIPELINE",
            StreamKind::Events => "EVENTS",
            StreamKind::Dlq => "DLQ",
        }
    }

    fn subject_root(self) -> &'static str {
        match self {
            StreamKind::Inbound => "inbound",
            StreamKind::Pipeline => "pipeline",
            StreamKind::Events => "events",
            StreamKind::Dlq => "dlq",
        }
    }

    /// Which stream holds an unprefixed subject such as `pipeline.routed`.
    pub fn for_subject(subject: &str) -> Option<StreamKind> {
        let root = subject.split('.').next()?;
        StreamKind::ALL
            .into_iter()
            .find(|k| k.subject_root() == root)
    }
}

/// Bus configuration (`NATS_URL`, `BUS_PREFIX`).
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub url: String,
    pub prefix: String,
    /// Connection name shown by the server (`nats server report connections`).
    pub client_name: String,
}

/// A connected bus. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    client: Client,
    js: jetstream::Context,
    prefix: String,
}

impl Bus {
    pub async fn connect(cfg: &BusConfig) -> Result<Bus, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name(&cfg.client_name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(&cfg.url)
            .await
            .map_err(|source| BusError::Connect {
                url: cfg.url.clone(),
                source,
            })?;
        let js = jetstream::new(client.clone());
        Ok(Bus {
            client,
            js,
            prefix: cfg.prefix.clone(),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `pipeline.routed` → `<prefix>.pipeline.routed`.
    pub fn subject(&self, s: &str) -> String {
        if self.prefix.is_empty() {
            s.to_owned()
        } else {
            format!("{}.{s}", self.prefix)
        }
    }

    /// Removes the prefix from a received subject.
    pub fn unprefixed<'a>(&self, s: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            s
        } else {
            s.strip_prefix(&self.prefix)
                .and_then(|r| r.strip_prefix('.'))
                .unwrap_or(s)
        }
    }

    pub fn stream_name(&self, kind: StreamKind) -> String {
        if self.prefix.is_empty() {
            kind.base_name().to_owned()
        } else {
            let p: String = self
                .prefix
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("{p}_{}", kind.base_name())
        }
    }

    /// Creates the four streams, or leaves them as they are: every service calls this at start-up.
    pub async fn ensure_streams(&self) -> Result<(), BusError> {
        for kind in StreamKind::ALL {
            let (retention, max_age) = match kind {
                // Consumed by exactly one durable each, deleted once acknowledged.
                StreamKind::Inbound | StreamKind::Pipeline => {
                    (stream::RetentionPolicy::WorkQueue, Duration::ZERO)
                }
                // Several independent subscribers (hooks, load generator, UIs): keep a week.
                StreamKind::Events => (
                    stream::RetentionPolicy::Limits,
                    Duration::from_secs(7 * 24 * 3600),
                ),
                // Dead letters stay until an operator handles them (Postgres holds them too).
                StreamKind::Dlq => (
                    stream::RetentionPolicy::Limits,
                    Duration::from_secs(90 * 24 * 3600),
                ),
            };
            let config = stream::Config {
                name: self.stream_name(kind),
                subjects: vec![self.subject(&format!("{}.>", kind.subject_root()))],
                retention,
                max_age,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            };
            self.js
                .get_or_create_stream(config)
                .await
                .map_err(|e| BusError::js("create stream", e))?;
        }
        Ok(())
    }

    /// Publishes and waits for the stream's acknowledgement. `msg_id` makes a re-publish within
    /// the de-duplication window a no-op; the current span's trace context goes along.
    pub async fn publish(
        &self,
        subject: &str,
        msg_id: &str,
        payload: Bytes,
    ) -> Result<Published, BusError> {
        self.publish_with(subject, msg_id, payload, None).await
    }

    /// As [`Bus::publish`], plus a core-NATS reply subject the consumer may answer on.
    pub async fn publish_with(
        &self,
        subject: &str,
        msg_id: &str,
        payload: Bytes,
        extra_headers: Option<&[(&str, &str)]>,
    ) -> Result<Published, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, msg_id);
        switchyard_telemetry::inject_context(|k, v| headers.insert(k, v.as_str()));
        for (k, v) in extra_headers.unwrap_or_default() {
            headers.insert(*k, *v);
        }
        let ack = self
            .js
            .publish_with_headers(self.subject(subject), headers, payload)
            .await
            .map_err(|e| BusError::js("publish", e))?
            .await
            .map_err(|e| BusError::js("publish ack", e))?;
        Ok(Published {
            duplicate: ack.duplicate,
            sequence: ack.sequence,
        })
    }

    /// JSON-encodes and publishes.
    pub async fn publish_json<T: serde::Serialize>(
        &self,
        subject: &str,
        msg_id: &str,
        value: &T,
    ) -> Result<Published, BusError> {
        let body = serde_json::to_vec(value)?;
        self.publish(subject, msg_id, Bytes::from(body)).await
    }

    /// Fire-and-forget core NATS publish, for answers to waiting API requests.
    pub async fn notify(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.client
            .publish(subject.to_owned(), payload)
            .await
            .map_err(|e| BusError::js("notify", e))
    }

    /// The durable pull consumer shared by every replica of a stage.
    pub async fn durable_consumer(
        &self,
        kind: StreamKind,
        durable: &str,
        filter_subject: &str,
        settings: &ConsumerSettings,
    ) -> Result<jetstream::consumer::Consumer<pull::Config>, BusError> {
        let stream = self
            .js
            .get_stream(self.stream_name(kind))
            .await
            .map_err(|e| BusError::js("get stream", e))?;
        let config = pull::Config {
            durable_name: Some(durable.to_owned()),
            filter_subject: self.subject(filter_subject),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: settings.ack_wait,
            max_deliver: settings.max_deliver,
            max_ack_pending: settings.max_ack_pending,
            ..Default::default()
        };
        // create_consumer updates a durable whose settings changed (e.g. a new MaxAckPending).
        stream
            .create_consumer(config)
            .await
            .map_err(|e| BusError::js("create consumer", e))
    }

    /// Messages not yet delivered plus those delivered but not yet acknowledged: the lag that
    /// autoscaling reads.
    pub async fn consumer_lag(&self, kind: StreamKind, durable: &str) -> Result<u64, BusError> {
        let stream = self
            .js
            .get_stream(self.stream_name(kind))
            .await
            .map_err(|e| BusError::js("get stream", e))?;
        let mut consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .get_consumer(durable)
            .await
            .map_err(|e| BusError::js("get consumer", e))?;
        let info = consumer
            .info()
            .await
            .map_err(|e| BusError::js("consumer info", e))?;
        Ok(info.num_pending + info.num_ack_pending as u64)
    }

    /// The JetStream context, for what the bus does not wrap (reading a stream message by
    /// sequence, deleting one, stream info).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }
}

/// The stream's acknowledgement of a publish.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    /// The server had already stored a message with this id inside the window.
    pub duplicate: bool,
    pub sequence: u64,
}

/// Knobs of a stage's durable consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub ack_wait: Duration,
    pub max_deliver: i64,
    /// Across all replicas: the back-pressure limit.
    pub max_ack_pending: i64,
}

/// The headers of a received message as (name, value) pairs, for trace extraction.
pub fn header_pairs(msg: &async_nats::Message) -> Vec<(&str, String)> {
    msg.headers
        .as_ref()
        .map(|h| {
            h.iter()
                .filter_map(|(k, vs)| vs.first().map(|v| (k.as_ref(), v.as_str().to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_map_to_their_streams() {
        assert_eq!(
            StreamKind::for_subject("pipeline.routed"),
            Some(StreamKind::Pipeline)
        );
        assert_eq!(
            StreamKind::for_subject("inbound.api"),
            Some(StreamKind::Inbound)
        );
        assert_eq!(StreamKind::for_subject("dlq.ai"), Some(StreamKind::Dlq));
        assert_eq!(StreamKind::for_subject("other.x"), None);
    }
}
