//! Logs and OpenTelemetry for `prism serve`: the `tracing` subscriber (text or JSON lines on
//! stderr), and, when `[telemetry]` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) names a collector, the
//! OpenTelemetry SDK with OTLP exporters over gRPC or HTTP: spans through
//! `tracing-opentelemetry`, metrics through the global meter, W3C trace-context propagation.
//! Spans and metrics are batched and exported on their own tasks, never on a request's path.

use anyhow::Context as _;
use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prism_server::config::{OtlpProtocol, TelemetryConfig};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::serve::LogFormat;

/// The installed SDK, flushed and stopped by [`Telemetry::shutdown`].
#[derive(Default)]
pub(crate) struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

/// Installs the subscriber and, when configured, the SDK. Runs inside the tokio runtime.
///
/// # Errors
/// An exporter could not be built (a malformed endpoint).
pub(crate) fn init(format: LogFormat, config: &TelemetryConfig) -> anyhow::Result<Telemetry> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        // One object per line; the request span's fields (id, method, path, model) ride along.
        LogFormat::Json => fmt.json().with_current_span(true).with_span_list(false).boxed(),
    };
    let Some(endpoint) = config.endpoint.as_deref() else {
        let _ = tracing_subscriber::registry().with(filter).with(fmt).try_init();
        return Ok(Telemetry::default());
    };
    let resource = Resource::builder().with_service_name(config.service_name.clone()).build();
    let (spans, metrics) = match config.protocol {
        OtlpProtocol::Grpc => (
            SpanExporter::builder().with_tonic().with_endpoint(endpoint).build(),
            MetricExporter::builder().with_tonic().with_endpoint(endpoint).build(),
        ),
        OtlpProtocol::HttpProtobuf => {
            let base = endpoint.trim_end_matches('/');
            (
                SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(format!("{base}/v1/traces"))
                    .build(),
                MetricExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(format!("{base}/v1/metrics"))
                    .build(),
            )
        }
    };
    let spans = spans.context("building the OTLP span exporter")?;
    let metrics = metrics.context("building the OTLP metric exporter")?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            spans, Tokio,
        )
        .build();
    let tracer = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.clone())
        .build();
    let reader =
        opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader::builder(
            metrics, Tokio,
        )
        .with_interval(config.export_interval)
        .build();
    let meter = SdkMeterProvider::builder().with_reader(reader).with_resource(resource).build();
    global::set_meter_provider(meter.clone());
    global::set_text_map_propagator(TraceContextPropagator::new());
    let otel = tracing_opentelemetry::layer().with_tracer(tracer.tracer("prism"));
    let _ = tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init();
    tracing::info!(endpoint, protocol = ?config.protocol, "exporting OpenTelemetry spans and metrics");
    Ok(Telemetry { tracer: Some(tracer), meter: Some(meter) })
}

impl Telemetry {
    /// Exports what is still batched and stops the exporters (at graceful shutdown).
    pub(crate) async fn shutdown(self) {
        let Telemetry { tracer, meter } = self;
        if tracer.is_none() && meter.is_none() {
            return;
        }
        // The providers' shutdown blocks until their tokio tasks have flushed.
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(t) = tracer
                && let Err(e) = t.shutdown()
            {
                eprintln!("OpenTelemetry span export did not finish: {e}");
            }
            if let Some(m) = meter
                && let Err(e) = m.shutdown()
            {
                eprintln!("OpenTelemetry metric export did not finish: {e}");
            }
        })
        .await;
    }
}
