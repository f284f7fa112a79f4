//! OpenTelemetry export of the tracing spans (one per turn, agent operation
//! and request) over OTLP/HTTP, compiled in with the `otel` cargo feature.
//!
//! The exporter is configured by the standard environment variables:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! names the collector, such as `http://127.0.0.1:4318`, and
//! `OTEL_EXPORTER_OTLP_HEADERS` adds headers. Without an endpoint nothing is
//! exported, so a build with the feature sends no data until it is configured.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetryLayer;

/// The environment variables that name a collector; export is off without one.
const ENDPOINT_VARIABLES: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// Returns the filter of the spans exported: INFO and above, which includes
/// the span of every turn, without the spans of the HTTP and OpenTelemetry
/// crates, whose export requests would otherwise be traced in turn.
pub fn span_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::new("info,h2=off,hyper=off,hyper_util=off,reqwest=off,tonic=off,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,opentelemetry_http=off")
}

/// Keeps the exporter running; dropping it sends the spans still buffered.
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("lepton: cannot flush the OpenTelemetry spans: {error}");
        }
    }
}

/// Builds the tracing layer that exports spans to the collector named in
/// the environment, with the guard to keep until the process exits. Returns
/// `None` when no endpoint is set.
pub fn layer<S>() -> anyhow::Result<Option<(OpenTelemetryLayer<S, SdkTracer>, OtelGuard)>>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let configured = ENDPOINT_VARIABLES.iter().any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()));
    if !configured {
        return Ok(None);
    }

    // The builder reads the endpoint, headers and timeout from the environment.
    let exporter = SpanExporter::builder().with_http().with_protocol(opentelemetry_otlp::Protocol::HttpBinary).build()?;
    let resource = Resource::builder().with_service_name("lepton").build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer("lepton");
    Ok(Some((tracing_opentelemetry::layer().with_tracer(tracer), OtelGuard { provider })))
}
