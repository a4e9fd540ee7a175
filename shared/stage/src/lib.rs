//! The stage runtime shared by ingest, ai, router and autoexecute.
//!
//! Per message: load state, skip work already recorded for this input and stage, write the
//! stage's results and its marker in one transaction, publish the next envelope and the events
//! (awaiting JetStream's acknowledgement), then acknowledge the input. Transient failures are
//! retried in-process a few times (`backoff`), then nak'ed with a delay; after MaxDeliver, or at
//! once for a permanent error, the message is stored as a dead letter, copied to `dlq.<stage>`,
//! its ticket flagged for a person, and only then acknowledged. Nothing is dropped.

mod backstop;
mod context;
mod error;
mod runner;

pub use backstop::run_backstop;
pub use context::{EffectMode, PendingEvent, StageCx};
pub use error::StageError;
pub use runner::{run_stage, StageConfig, StageDeps};

use std::future::Future;

use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard_domain::{Envelope, ReplyPoint, Stage};

/// How the runtime identifies one piece of work.
#[derive(Debug, Clone)]
pub struct WorkKey {
    /// Stable across redeliveries: the message id, or the inbound key for ingest.
    pub input_key: String,
    /// Empty outside AI quality check runs.
    pub test_run_key: String,
    /// Known for pipeline envelopes; ingest learns it while processing.
    pub ticket_id: Option<i64>,
    pub reply: Option<ReplyPoint>,
}

/// What a stage hands back to the runtime.
#[derive(Debug, Clone)]
pub struct StageOutput {
    pub ticket_id: i64,
    pub message_id: i64,
    /// Shown in the ticket's activity: at least `{"result": "..."}`.
    pub outcome: Value,
    /// The envelope for the next stage, `None` at the end of the pipeline.
    pub next: Option<Envelope>,
}

/// One pipeline stage: its input type and its work inside the transaction.
pub trait StageHandler: Send + Sync + 'static {
    const STAGE: Stage;
    type Input: DeserializeOwned + Send + Sync + 'static;

    fn key(input: &Self::Input) -> WorkKey;

    /// Does the stage's work. Everything it changes goes through `cx`, inside the transaction
    /// that also holds the stage marker.
    fn process<'a>(
        &'a self,
        cx: &'a mut StageCx,
        input: &'a Self::Input,
    ) -> impl Future<Output = Result<StageOutput, StageError>> + Send + 'a;
}

/// The work key of a pipeline envelope.
pub fn envelope_key(e: &Envelope) -> WorkKey {
    WorkKey {
        input_key: e.message_id.to_string(),
        test_run_key: e.test_run_id.map(|r| r.to_string()).unwrap_or_default(),
        ticket_id: Some(e.ticket_id),
        reply: e.reply.clone(),
    }
}
