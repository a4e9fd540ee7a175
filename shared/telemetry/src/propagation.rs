//! W3C trace context in message headers, independent of the transport.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

struct Setter<'a, F: FnMut(&str, String)>(&'a mut F);

impl<F: FnMut(&str, String)> Injector for Setter<'_, F> {
    fn set(&mut self, key: &str, value: String) {
        (self.0)(key, value)
    }
}

struct Getter<'a>(&'a [(&'a str, String)]);

impl Extractor for Getter<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
}

/// Writes the current span's context (`traceparent`, `tracestate`) through `set`.
pub fn inject_context(mut set: impl FnMut(&str, String)) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut Setter(&mut set))
    });
}

/// Makes `span` a child of the context carried in `headers` (key, value pairs), if any.
pub fn extract_context(span: &tracing::Span, headers: &[(&str, String)]) {
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Getter(headers)));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The trace id of the current span, as 32 hex digits.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}
