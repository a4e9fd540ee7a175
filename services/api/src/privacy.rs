//! Personal data: `POST /api/mind/customer/{customerId}/erase` (the right to erasure) and the
//! background deletion of closed tickets after `retentionDaysClosedTickets`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use switchyard_domain::Permission;
use switchyard_objects::Objects;
use switchyard_store::settings::SettingsCache;
use switchyard_store::{privacy, Store};
use tokio::sync::watch;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiResult;
use crate::extract::Auth;
use crate::ApiState;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(erase_customer))
}

#[derive(Serialize, ToSchema)]
struct Erased {
    success: bool,
    erased: privacy::Erasure,
}

/// Erase a customer's personal data
///
/// Removes names, addresses, e-mail addresses, bank data and meter numbers from the customer and
/// its contracts, and the texts, senders, intent parameters and attachments of every ticket of
/// theirs (by customer, contract or sender address). Ticket rows stay, emptied, for the
/// statistics; the audit log records that the erasure happened and how much it touched.
/// Repeating it is harmless. Needs `erasePersonalData`.
#[utoipa::path(post, path = "/api/mind/customer/{customerId}/erase", tag = "customer",
    params(("customerId" = i64, Path)),
    responses((status = 200, body = Erased), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
async fn erase_customer(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Erased>> {
    let user = auth.require(Permission::ErasePersonalData)?;
    let id = crate::path_id("customerId", &id)?;
    let mut tx = state.store.begin().await?;
    let erased = privacy::erase_customer(&mut tx, id, &user.actor()).await?;
    tx.commit().await?;
    delete_objects(&state.objects, &erased.object_keys).await;
    tracing::info!(
        customer_id = id,
        tickets = erased.tickets,
        "customer's personal data erased"
    );
    Ok(Json(Erased {
        success: true,
        erased,
    }))
}

/// Deletes stored files after the rows naming them are gone. A failure leaves an orphaned
/// object, never a row pointing at nothing; it is logged with the key (no personal data).
async fn delete_objects(objects: &Objects, keys: &[String]) {
    for key in keys {
        if let Err(e) = objects.delete(key).await {
            tracing::warn!(key, error = %e, "could not delete an object; delete it by hand");
        }
    }
}

/// Deletes closed tickets older than `retentionDaysClosedTickets` every `every`, in batches, until
/// `stop`. Several API replicas may run it; they skip each other's rows.
pub async fn run_retention(
    store: Store,
    settings: SettingsCache,
    objects: Objects,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let days = match settings.get_f64("retentionDaysClosedTickets").await {
            Ok(d) => d as i64,
            Err(e) => {
                tracing::warn!(error = %e, "retention: reading the setting failed");
                continue;
            }
        };
        if days <= 0 {
            continue;
        }
        loop {
            let batch = async {
                let mut tx = store.begin().await?;
                let purged = privacy::purge_closed_tickets(&mut tx, days, 200).await?;
                tx.commit().await?;
                Ok::<_, switchyard_store::StoreError>(purged)
            }
            .await;
            match batch {
                Ok((0, _)) => break,
                Ok((n, keys)) => {
                    delete_objects(&objects, &keys).await;
                    tracing::info!(tickets = n, days, "retention: closed tickets deleted");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention: a batch failed; trying again later");
                    break;
                }
            }
        }
    }
}
