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

/// Labels of `draftstore_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route or RPC label.
    pub route: &'static str,
    /// `rest` or `grpc`.
    pub protocol: &'static str,
    /// HTTP status for REST, gRPC code for gRPC.
    pub status: u16,
}

/// Labels of `draftstore_request_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route or RPC label.
    pub route: &'static str,
    /// `rest` or `grpc`.
    pub protocol: &'static str,
}

/// Labels of `draftstore_s3_calls_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct S3Labels {
    /// The S3 operation (`PutObject`, `CopyObject`, …).
    pub operation: &'static str,
    /// `ok`, or the error kind (`not_found`, `denied`, `unavailable`, …).
    pub outcome: &'static str,
}

/// Labels of the per-operation S3 series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// The S3 operation.
    pub operation: &'static str,
}

/// Labels of `draftstore_confirms_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `confirmed`, `already_confirmed`, `not_found`, `conflict`, `constraint_mismatch` or `error`.
    pub outcome: &'static str,
}

/// Labels of `draftstore_webhook_deliveries_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// The event type (`object.confirmed`, …).
    pub r#type: &'static str,
    /// `delivered`, `retry`, `disabled` (410), `failed` (schedule used up) or `dropped` (the
    /// confirm it announced never happened).
    pub outcome: &'static str,
}

/// Every series the gateway records, in one registry.
pub struct Metrics {
    registry: Registry,
    /// `draftstore_requests_total`.
    pub requests: Family<RequestLabels, Counter>,
    /// `draftstore_request_seconds`.
    pub request_seconds: Family<RouteLabels, Histogram>,
    /// `draftstore_requests_in_flight`.
    pub in_flight: Gauge,
    /// `draftstore_s3_calls_total`.
    pub s3_calls: Family<S3Labels, Counter>,
    /// `draftstore_s3_seconds`.
    pub s3_seconds: Family<OperationLabels, Histogram>,
    /// `draftstore_s3_retries_total`.
    pub s3_retries: Family<OperationLabels, Counter>,
    /// `draftstore_confirms_total`.
    pub confirms: Family<OutcomeLabels, Counter>,
    /// `draftstore_confirmed_bytes_total`.
    pub confirmed_bytes: Counter,
    /// Shared rate-limit calls to Redis: `granted`, `limited`, `error`, `timeout`, `skipped`,
    /// `late` (answered, but past its deadline: nothing spent), `refunded` (a grant answered
    /// after the decision was given up on, given back), `slow` (a probe answered while Redis was
    /// failing, but slower than a decision's bound: not a recovery).
    pub rate_limit_redis_calls: Family<OutcomeLabels, Counter>,
    /// Round trip of one rate-limit decision in Redis.
    pub rate_limit_redis_seconds: Histogram,
    /// Decisions made without Redis: `local_granted`, `local_limited`, `rejected`.
    pub rate_limit_fallbacks: Family<OutcomeLabels, Counter>,
    /// Replicas a replica counting alone shares a tenant's rate with: max(R counted in Redis
    /// at the last count, `DRAFTSTORE_RATE_LIMIT_REPLICAS`); 0 without Redis.
    pub rate_limit_replicas: Gauge,
    /// Background fetches of the AWS chain's credentials, by outcome (`ok`, `error`).
    pub credential_refreshes: Family<OutcomeLabels, Counter>,
    /// Unix seconds when the S3 credentials in use expire (0: they do not).
    pub credentials_expiry: Gauge,
    /// Webhook delivery attempts by event type and outcome.
    pub webhook_deliveries: Family<DeliveryLabels, Counter>,
    /// Events in the queue at the last pass.
    pub webhook_queue_depth: Gauge,
    /// Age in seconds of the oldest event in the queue at the last pass (0: empty).
    pub webhook_oldest_pending_seconds: Gauge,
    /// Endpoints disabled after a 410.
    pub webhook_endpoints_disabled: Counter,
    /// Pre-confirm checks by outcome: `allowed`, `rejected`, `unavailable_rejected`,
    /// `unavailable_allowed`.
    pub preconfirm_checks: Family<OutcomeLabels, Counter>,
    /// `draftstore_small_answers_stalled_total`: HTTP/2 answers of one frame or less (16 KiB)
    /// whose stream was reset at the stall limit, their client not having taken them whole, or
    /// after a second's grace for want of a place among the answers waiting to be taken (their request is
    /// counted in `requests` with the status it was answered with).
    pub small_answers_stalled: Counter,
    /// `draftstore_answer_bytes_unsent`: bytes of big answers (over 16 KiB, HTTP/1.1 and
    /// HTTP/2) charged to the byte budget and not yet taken by their clients (see
    /// `http::layer::unsent`).
    pub answer_bytes_unsent: Gauge,
    /// Connections closed because a write waited the stall limit (the idle timeout) for a
    /// client that took too little of its answers (see `http::socket`).
    pub write_stalls: Counter,
    /// Connections the drain closed at its end (grace period over or a second signal) while
    /// they still had requests open or answers being sent: answers cut off.
    pub drain_cut: Counter,
    /// `draftstore_transfers_shed_total`: transfers on the embedded store's URLs (`/_store/`)
    /// refused with 503 `SlowDown`, their peer or URL holding its share of the transfer slots
    /// (see `http::layer::transfer`).
    pub transfers_shed: Counter,
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
    let rate_limit_redis_calls = Family::<OutcomeLabels, Counter>::default();
    registry.register(
        "rate_limit_redis_calls",
        "Shared rate-limit decisions asked of Redis, by outcome",
        rate_limit_redis_calls.clone(),
    );
    // 25 µs .. ~80 ms: a decision is bounded by DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS (20 ms).
    let rate_limit_redis_seconds = Histogram::new(exponential_buckets(0.000_025, 1.5, 20));
    registry.register(
        "rate_limit_redis_seconds",
        "Round trip of one rate-limit decision in Redis",
        rate_limit_redis_seconds.clone(),
    );
    let rate_limit_fallbacks = Family::<OutcomeLabels, Counter>::default();
    registry.register(
        "rate_limit_fallbacks",
        "Rate-limit decisions made without Redis (DRAFTSTORE_RATE_LIMIT_ON_ERROR), by outcome",
        rate_limit_fallbacks.clone(),
    );
    let rate_limit_replicas = Gauge::default();
    registry.register(
        "rate_limit_replicas",
        "Replicas a replica counting alone shares a tenant's rate with: the most of those counted in Redis and DRAFTSTORE_RATE_LIMIT_REPLICAS (0: no Redis)",
        rate_limit_replicas.clone(),
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
    let webhook_deliveries = Family::<DeliveryLabels, Counter>::default();
    registry.register(
        "webhook_deliveries",
        "Webhook delivery attempts by event type and outcome",
        webhook_deliveries.clone(),
    );
    let webhook_queue_depth = Gauge::default();
    registry.register(
        "webhook_queue_depth",
        "Events waiting in the queue (at the last pass)",
        webhook_queue_depth.clone(),
    );
    let webhook_oldest_pending_seconds = Gauge::default();
    registry.register(
        "webhook_oldest_pending_seconds",
        "Age of the oldest event waiting in the queue (at the last pass)",
        webhook_oldest_pending_seconds.clone(),
    );
    let webhook_endpoints_disabled = Counter::default();
    registry.register(
        "webhook_endpoints_disabled",
        "Webhook endpoints disabled after answering 410 Gone",
        webhook_endpoints_disabled.clone(),
    );
    let preconfirm_checks = Family::<OutcomeLabels, Counter>::default();
    registry.register(
        "preconfirm_checks",
        "Pre-confirm checks by outcome",
        preconfirm_checks.clone(),
    );
    let small_answers_stalled = Counter::default();
    registry.register(
        "small_answers_stalled",
        "HTTP/2 answers of one frame or less reset at the stall limit, not taken whole, or after a second for want of a waiting place",
        small_answers_stalled.clone(),
    );
    let answer_bytes_unsent = Gauge::default();
    registry.register(
        "answer_bytes_unsent",
        "Bytes of answers over 16 KiB handed towards their clients and not yet taken by them (the byte budget's charge)",
        answer_bytes_unsent.clone(),
    );
    let write_stalls = Counter::default();
    registry.register(
        "write_stalls",
        "Connections closed because the client took too little of its answers within the stall limit",
        write_stalls.clone(),
    );
    let drain_cut = Counter::default();
    registry.register(
        "drain_cut_connections",
        "Connections closed at the end of a drain with answers still open or being sent",
        drain_cut.clone(),
    );
    let transfers_shed = Counter::default();
    registry.register(
        "transfers_shed",
        "Transfers on the embedded store's URLs refused with 503 SlowDown (no transfer slot)",
        transfers_shed.clone(),
    );
    Metrics {
        registry,
        transfers_shed,
        small_answers_stalled,
        answer_bytes_unsent,
        write_stalls,
        drain_cut,
        webhook_deliveries,
        webhook_queue_depth,
        webhook_oldest_pending_seconds,
        webhook_endpoints_disabled,
        preconfirm_checks,
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
        rate_limit_redis_calls,
        rate_limit_redis_seconds,
        rate_limit_fallbacks,
        rate_limit_replicas,
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
        E::NoSuchUpload { .. } => "no_such_upload",
        E::InvalidPart { .. }
        | E::InvalidPartOrder { .. }
        | E::EntityTooSmall { .. }
        | E::InvalidArgument { .. } => "invalid",
        E::Backend { .. } => "error",
    }
}
