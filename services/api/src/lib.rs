//! The REST API (`/api/mind/...`), keeping the paths, field names and enum values of the seeds.
//!
//! Tickets created over HTTP travel through ingest like every other channel: the API publishes to
//! `inbound.api` and waits for ingest's answer on a reply subject, then returns the stored ticket.

pub mod ai_agents;
mod attachments;
mod auth;
mod chat;
mod conversation;
mod customers;
mod dlq;
mod doc_rules;
mod error;
mod execution;
mod extract;
mod hooks;
mod mailbox;
pub mod privacy;
pub mod quality;
mod routing;
mod settings;
mod subchannels;
mod tickets;
mod waiters;

pub use auth::LoginLimiter;
pub use error::{ApiError, Problem};
pub use extract::AuthCache;
pub use routing::compute_stats;
pub use waiters::Waiters;

use std::net::SocketAddr;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use switchyard_bus::Bus;
use switchyard_store::settings::SettingsCache;
use switchyard_store::Store;
use switchyard_telemetry::Health;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::extract::Auth;

/// Everything a request handler needs.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub bus: Bus,
    pub settings: SettingsCache,
    pub waiters: Waiters,
    pub auth_cache: AuthCache,
    pub login_limiter: auth::LoginLimiter,
    /// Mark the session cookie `Secure` (behind TLS).
    pub secure_cookies: bool,
    /// Ticket statistics, recomputed in the background.
    pub stats: switchyard_store::reloading::Reloading<serde_json::Value>,
    /// How long `POST /ticket` waits for ingest before answering 202.
    pub reply_timeout: Duration,
    /// Attachments' bytes (`GET /api/mind/attachment/{id}`).
    pub objects: switchyard_objects::Objects,
    /// Outbound HTTP (the OAuth token endpoint).
    pub http: reqwest::Client,
    /// This API's own base URL (`http://127.0.0.1:8080`): where UDF scripts' API calls go.
    pub self_url: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard API",
        description = "Open AI customer-service backend for energy utilities. Paths, fields and enum values follow the reference product's API."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(error::Problem, error::FieldError))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Makes the document say what every route really answers: errors are
/// `application/problem+json`, every authenticated route can answer 401, every route with a body
/// 400.
fn document_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = |what: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            for (code, resp) in op.responses.responses.iter_mut() {
                if let (true, RefOr::T(r)) = (code.starts_with('4') || code.starts_with('5'), resp)
                {
                    if let Some(c) = r.content.shift_remove("application/json") {
                        r.content.insert("application/problem+json".into(), c);
                    }
                }
            }
            let public = op
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
            if !public {
                op.responses
                    .responses
                    .entry("401".into())
                    .or_insert_with(|| problem("Not authenticated"));
            }
            // Ids in paths are positive; saying so keeps generated clients (and fuzzers) from
            // sending ids that can only be a 400.
            let mut has_path_param = false;
            for p in op.parameters.iter_mut().flatten() {
                if p.parameter_in != utoipa::openapi::path::ParameterIn::Path {
                    continue;
                }
                has_path_param = true;
                // A setting's name is one of the known settings.
                if p.name == "name" {
                    let names: Vec<&str> = switchyard_store::settings::DEFINITIONS
                        .iter()
                        .map(|d| d.name)
                        .collect();
                    p.schema = Some(RefOr::T(utoipa::openapi::schema::Schema::Object(
                        utoipa::openapi::schema::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String)
                            .enum_values(Some(names))
                            .build(),
                    )));
                }
                if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(o))) = &mut p.schema {
                    if matches!(
                        o.schema_type,
                        utoipa::openapi::schema::SchemaType::Type(
                            utoipa::openapi::schema::Type::Integer
                        )
                    ) && o.minimum.is_none()
                    {
                        o.minimum = Some(1f64.into());
                    }
                }
            }
            // A path id, or an id in the body (contractId, aiAgentId, …), may name nothing.
            if has_path_param || op.request_body.is_some() {
                op.responses
                    .responses
                    .entry("404".into())
                    .or_insert_with(|| problem("No such resource"));
            }
            // A write may collide with a unique name or id (answered 409 everywhere).
            if op.request_body.is_some() {
                op.responses
                    .responses
                    .entry("409".into())
                    .or_insert_with(|| problem("Conflicts with an existing record"));
            }
            if op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                op.responses
                    .responses
                    .entry("400".into())
                    .or_insert_with(|| problem("Invalid fields"));
            }
        }
    }
}

/// The API's routes and the OpenAPI document generated from them.
pub fn routes() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(tickets::routes())
        .merge(settings::routes())
        .merge(dlq::routes())
        .merge(routing::routes())
        .merge(customers::routes())
        .merge(auth::routes())
        .merge(subchannels::routes())
        .merge(chat::routes())
        .merge(ai_agents::routes())
        .merge(quality::routes())
        .merge(attachments::routes())
        .merge(execution::routes())
        .merge(conversation::routes())
        .merge(mailbox::routes())
        .merge(privacy::routes())
        .merge(hooks::routes())
        .split_for_parts();
    document_errors(&mut doc);
    (router, doc)
}

/// The whole HTTP application: the API, its OpenAPI document, health and metrics.
pub fn app(state: ApiState, health: Health) -> Router {
    let (api, openapi) = routes();
    let doc = std::sync::Arc::new(doc_rules::finish(&openapi));
    api.route(
        "/api/mind/docs/open-api",
        get(move |_auth: Auth| {
            let doc = doc.clone();
            async move { axum::Json((*doc).clone()).into_response() }
        }),
    )
    .route("/api/mind/health", get(|| async { axum::Json(serde_json::json!({"success": true, "status": "ok"})) }))
    .with_state(state)
    .merge(health.router())
    .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(
        |req: &axum::http::Request<_>| {
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), user_id = tracing::field::Empty)
        },
    ))
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    state: ApiState,
    health: Health,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "API listening");
    health.set_ready(true);
    axum::serve(
        listener,
        app(state, health).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

/// A positive integer id from the path. Anything else (`/ticket/0`, `/ticket/None`) names no
/// resource, so it is a 404 like an id that does not exist, as the document says.
pub(crate) fn path_id(field: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::NotFound(format!("{field} {raw:?}: ids are positive integers")))
}

/// `limit`/`offset` of list endpoints.
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// 1 to 1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl Page {
    pub fn resolve(&self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::field("limit", "must be between 1 and 1000"));
        }
        if offset < 0 {
            return Err(ApiError::field("offset", "must not be negative"));
        }
        Ok((limit, offset))
    }
}

#[cfg(test)]
mod tests {
    /// Every endpoint of the seed's list is in the served OpenAPI document, with its method.
    #[test]
    fn the_seed_endpoints_are_all_in_the_openapi_document() {
        let (_, doc) = super::routes();
        let doc = super::doc_rules::finish(&doc);
        let list = include_str!("../seed_endpoints.tsv");
        let mut missing = Vec::new();
        let mut count = 0;
        for line in list
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let cols: Vec<&str> = line.split('\t').collect();
            let [title, method, path] = cols[..] else {
                panic!("bad line in seed_endpoints.tsv: {line}");
            };
            count += 1;
            if doc["paths"][path][method].is_null() {
                missing.push(format!("{title}: {} {path}", method.to_uppercase()));
            }
        }
        assert_eq!(count, 51, "the seed lists 51 endpoints");
        assert!(
            missing.is_empty(),
            "missing from the OpenAPI document:\n{}",
            missing.join("\n")
        );
    }

    /// Building the router panics on conflicting routes; catch that here, not at start-up.
    #[test]
    fn every_route_registers_and_is_documented() {
        let (_, doc) = super::routes();
        for path in [
            "/api/mind/aiAgents",
            "/api/mind/aiAgent/{id}/preview",
            "/api/mind/aiQualityCheck/testCase/{id}",
            "/api/mind/intent/byTicketId/{ticketId}",
            "/api/mind/ticket/{ticketId}/autoexecute",
            "/api/mind/intent/{id}/execute",
            "/api/mind/ticket/{ticketId}/conversation/reply",
            "/api/mind/ticket/{ticketId}/forward",
            "/api/mind/settings/event-hook",
            "/api/mind/settings/event-hook/{id}",
            "/api/mind/event/search",
            "/api/mind/event/getEventTypes",
            "/api/mind/executor/execute/{name}",
        ] {
            assert!(doc.paths.paths.contains_key(path), "{path} not documented");
        }
    }
}
