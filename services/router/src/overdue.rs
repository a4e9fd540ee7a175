//! `TicketDueByOverdue`: emitted once per due time when an open ticket's `dueBy` passes.

use std::time::Duration;

use serde_json::json;
use switchyard_bus::Bus;
use switchyard_store::{routing, Store};
use tokio::sync::watch;

/// Scans every `every` until shutdown. Marks and publishes in one transaction: a crash before
/// the commit publishes again (same message id, de-duplicated within two minutes).
pub async fn run_overdue_scanner(
    store: Store,
    bus: Bus,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = scan_once(&store, &bus).await {
            tracing::warn!(error = %e, "overdue scan failed; trying again later");
        }
        if tokio::time::timeout(every, shutdown.wait_for(|s| *s))
            .await
            .is_ok()
        {
            return;
        }
    }
}

/// One scan; returns how many tickets became overdue.
pub async fn scan_once(store: &Store, bus: &Bus) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let mut tx = store.begin().await?;
        let overdue = routing::take_overdue(&mut tx, 500).await?;
        for (ticket_id, due_by) in &overdue {
            let body = json!({"event": "TicketDueByOverdue", "ticketId": ticket_id, "data": {"ticketId": ticket_id, "dueBy": due_by}});
            bus.publish_json(
                "events.TicketDueByOverdue",
                &format!("TicketDueByOverdue:{ticket_id}:{}", due_by.timestamp()),
                &body,
            )
            .await?;
        }
        tx.commit().await?;
        total += overdue.len();
        if overdue.len() < 500 {
            return Ok(total);
        }
    }
}
