//! Prometheus metrics, served at `GET /metrics` in the OpenMetrics text format. Label values
//! come from fixed sets (routes, methods, status codes, S3 operations, outcomes), never from
//! requests (no object names), so cardinality stays bounded.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub protocol: &'static str,
    /// HTTP status for REST, gRPC code for gRPC.
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct S3Labels {
    pub operation: &'static str,
    /// `ok`, or the error kind (`not_found`, `denied`, `unavailable`, …).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RouteLabels, Histogram>,
    pub in_flight: Gauge,
    pub s3_calls: Family<S3Labels, Counter>,
    pub s3_seconds: Family<OperationLabels, Histogram>,
    pub s3_retries: Family<OperationLabels, Counter>,
    pub confirms: Family<OutcomeLabels, Counter>,
    pub confirmed_bytes: Counter,
    /// Background fetches of the AWS chain's credentials, by outcome (`ok`, `error`).
    pub credential_refreshes: Family<OutcomeLabels, Counter>,
    /// Unix seconds when the S3 credentials in use expire (0: they do not).
    pub credentials_expiry: Gauge,
}

fn histogram() -> Histogram {
    // 100 µs .. ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("draftstore");
    let requests = Family::<RequestLabels, Counter>::default();
    registry.register(
        "requests",
        "Requests by route, protocol and status",
        requests.clone(),
    );
    let request_seconds =
        Family::<RouteLabels, Histogram>::new_with_constructor(histogram as fn() -> Histogram);
    registry.register(
        "request_seconds",
        "Time to answer a request",
        request_seconds.clone(),
    );
    let in_flight = Gauge::default();
    registry.register(
        "requests_in_flight",
        "Requests being handled",
        in_flight.clone(),
    );
    let s3_calls = Family::<S3Labels, Counter>::default();
    registry.register(
        "s3_calls",
        "S3 requests by operation and outcome (each attempt)",
        s3_calls.clone(),
    );
    let s3_seconds =
        Family::<OperationLabels, Histogram>::new_with_constructor(histogram as fn() -> Histogram);
    registry.register("s3_seconds", "Time of one S3 request", s3_seconds.clone());
    let s3_retries = Family::<OperationLabels, Counter>::default();
    registry.register(
        "s3_retries",
        "S3 requests retried after a retryable failure",
        s3_retries.clone(),
    );
    let confirms = Family::<OutcomeLabels, Counter>::default();
    registry.register("confirms", "Confirm calls by outcome", confirms.clone());
    let confirmed_bytes = Counter::default();
    registry.register(
        "confirmed_bytes",
        "Bytes moved into the main bucket",
        confirmed_bytes.clone(),
    );
    let credential_refreshes = Family::<OutcomeLabels, Counter>::default();
    registry.register(
        "credential_refreshes",
        "Refreshes of the AWS credentials by outcome",
        credential_refreshes.clone(),
    );
    let credentials_expiry = Gauge::default();
    registry.register(
        "credentials_expiry_unix_seconds",
        "When the S3 credentials in use expire (0: never)",
        credentials_expiry.clone(),
    );
    Metrics {
        registry,
        credential_refreshes,
        credentials_expiry,
        requests,
        request_seconds,
        in_flight,
        s3_calls,
        s3_seconds,
        s3_retries,
        confirms,
        confirmed_bytes,
    }
});

/// The series one kind of call (a route or RPC over one protocol) updates, looked up once when
/// the server starts: a request then touches two atomics and a histogram, not the label maps.
/// Its success series exists (at zero) from the start, as Prometheus likes.
#[derive(Clone, Debug)]
pub struct CallSeries {
    route: &'static str,
    protocol: &'static str,
    ok_status: u16,
    ok: Counter,
    seconds: Histogram,
}

impl CallSeries {
    /// `ok_status`: the status of a success (HTTP 200, gRPC 0), counted without a lookup.
    #[must_use]
    pub fn new(route: &'static str, protocol: &'static str, ok_status: u16) -> Self {
        let m = get();
        Self {
            route,
            protocol,
            ok_status,
            ok: m
                .requests
                .get_or_create(&RequestLabels {
                    route,
                    protocol,
                    status: ok_status,
                })
                .clone(),
            seconds: m
                .request_seconds
                .get_or_create(&RouteLabels { route, protocol })
                .clone(),
        }
    }

    /// Counts one answered request.
    pub fn record(&self, status: u16, elapsed: std::time::Duration) {
        if status == self.ok_status {
            self.ok.inc();
        } else {
            get()
                .requests
                .get_or_create(&RequestLabels {
                    route: self.route,
                    protocol: self.protocol,
                    status,
                })
                .inc();
        }
        self.seconds.observe(elapsed.as_secs_f64());
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

/// The text exposition.
#[must_use]
pub fn render() -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &get().registry);
    out
}

/// The label of a storage error's kind.
#[must_use]
pub const fn outcome(e: &draftstore_core::StorageError) -> &'static str {
    use draftstore_core::StorageError as E;
    match e {
        E::NotFound { .. } => "not_found",
        E::AlreadyExists { .. } => "already_exists",
        E::PreconditionFailed { .. } => "precondition_failed",
        E::Unavailable { .. } => "unavailable",
        E::Denied { .. } => "denied",
        E::Backend { .. } => "error",
    }
}
