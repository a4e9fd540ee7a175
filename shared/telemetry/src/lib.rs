//! Telemetry for every Switchyard process.
//!
//! Spans always carry OpenTelemetry trace ids, exported or not, so that one ticket is one trace
//! across services (the id travels in the `traceparent` header of each bus message) and the
//! activity timeline can name the trace. Export over OTLP/HTTP is switched on by
//! `OTEL_EXPORTER_OTLP_ENDPOINT`; a broken exporter never stops the service.

mod health;
mod propagation;

pub use health::{serve_health, Health};
pub use propagation::{current_trace_id, extract_context, inject_context};

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider, Resource};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Flushes buffered spans when dropped (at the end of `main`).
pub struct TelemetryGuard;

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = PROVIDER.get() {
            let _ = p.force_flush();
        }
    }
}

/// Installs the global subscriber once per process; later calls are no-ops, so tests that start
/// several services in one process may all call it.
pub fn init(service_name: &str) -> TelemetryGuard {
    if PROVIDER.get().is_some() {
        return TelemetryGuard;
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let mut builder = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(service_name.to_owned())
            .build(),
    );
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    let mut export_error = None;
    let mut exporting = false;
    if endpoint.as_deref().is_some_and(|e| !e.is_empty()) {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => {
                builder = builder.with_batch_exporter(exporter);
                exporting = true;
            }
            Err(e) => export_error = Some(e.to_string()),
        }
    }
    if !exporting {
        // Nothing to export to: spans still get (and propagate) trace ids, but are not recorded.
        builder = builder.with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff);
    }
    let provider = builder.build();
    let tracer = provider.tracer(service_name.to_owned());
    let _ = PROVIDER.set(provider.clone());
    opentelemetry::global::set_tracer_provider(provider);

    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,async_nats=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer().json().boxed()
    } else {
        tracing_subscriber::fmt::layer().compact().boxed()
    };
    // Spans are traced at info whatever RUST_LOG says: a quiet log must not break the one trace
    // per ticket (nor the trace ids the activity timeline shows).
    let otel_filter = EnvFilter::try_from_env("OTEL_TRACES_FILTER")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,async_nats=warn,h2=warn,hyper=warn"));
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(otel_filter);
    let _ = tracing_subscriber::registry()
        .with(fmt_layer.with_filter(filter))
        .with(otel_layer)
        .try_init();

    if let Some(e) = export_error {
        tracing::warn!(error = %e, "OTLP exporter could not be built; logging only");
    }
    TelemetryGuard
}
