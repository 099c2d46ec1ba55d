//! The one server: hyper-util's auto builder (HTTP/1.1 and h2c on the same listener), gRPC
//! routed by `content-type: application/grpc*`, REST otherwise. Each request gets a request id
//! (returned in `x-request-id` and on its log line), a place among the in-flight requests, and
//! a time limit. Every error is logged once. On shutdown: stop accepting, let in-flight
//! requests finish within the grace period, return.

use crate::api::app::App;
use crate::api::error::{ApiError, Code};
use crate::api::{grpc, rest};
use crate::auth::Authenticator;
use crate::config::Limits;
use crate::http::cors::Cors;
use crate::http::deadline::within;
use crate::http::response::{Body, RequestId, CONTENT_TYPE, REQUEST_ID};
use crate::http::socket::Socket;
use crate::metrics::CallSeries;
use crate::store::{local, Presign};
use draftstore_core::Storage;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

struct State<B> {
    app: App<B>,
    /// The embedded store's presigned URLs, when it is the store.
    store: Option<local::Endpoint>,
    auth: Authenticator,
    cors: Cors,
    limits: Limits,
    in_flight: Semaphore,
    series: HashMap<Call, CallSeries>,
}

/// Serves `app` on `listeners` until `shutdown` completes, then drains for up to `grace`;
/// `store` (the embedded store's endpoint) is mounted beside the API when given.
///
/// # Errors
/// Never after start; the signature leaves room for bind-time failures.
#[allow(clippy::too_many_arguments)]
pub async fn run<B: Storage + Presign + 'static>(
    listeners: Vec<TcpListener>,
    app: App<B>,
    store: Option<local::Endpoint>,
    auth: Authenticator,
    cors: Cors,
    limits: Limits,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // Object bytes flow through this server only when it serves a store's URLs; that decides
    // how replies are written (see `socket`).
    let streams_objects = store.is_some();
    let state = Arc::new(State {
        app,
        store,
        auth,
        cors,
        limits,
        in_flight: Semaphore::new(limits.max_in_flight),
        series: Call::all().map(|call| (call, call.series())).collect(),
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_list)
        .max_pending_accept_reset_streams(Some(50));
    // Dead peers are found by TCP keepalive (below), for both protocols, at no cost per
    // request: HTTP/2 PING keep-alive made hyper read the clock and take a lock for every frame
    // (4.6% of the CPU per request over h2c, measured).
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);

    let (tx, mut accepted) = mpsc::channel(128);
    let mut acceptors = Vec::new();
    for listener in listeners {
        let tx = tx.clone();
        acceptors.push(tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if tx.send(stream).await.is_err() {
                            return;
                        }
                    }
                    // Out of file descriptors and the like: wait a little rather than spin.
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }));
    }
    drop(tx);

    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            stream = accepted.recv() => {
                let Some(stream) = stream else { break };
                let _ = stream.set_nodelay(true);
                let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
                let state = state.clone();
                let service = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(state.handle(req).await) }
                });
                let socket = Socket::new(stream, streams_objects);
                let connection = builder.serve_connection(socket, service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    for acceptor in &acceptors {
        acceptor.abort();
    }
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutting down: finishing in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
    Ok(())
}

impl<B: Storage + Presign + 'static> State<B> {
    async fn handle(&self, mut req: Request<Incoming>) -> Response<Body> {
        let id = RequestId::of(req.headers().get(REQUEST_ID));
        if let Some(mut preflight) = self.cors.preflight(req.method(), req.headers()) {
            preflight.headers_mut().insert(REQUEST_ID, id.header());
            return preflight;
        }
        let origin = req.headers().get(http::header::ORIGIN).cloned();
        let method = req.method().clone();
        // Cheap: the URI shares the request head's buffer.
        let uri = req.uri().clone();
        let path = uri.path();
        // At debug level every line of this request (S3 retries included) carries its id; at
        // the default level the one line per error names it explicitly, and the span is free.
        let started = std::time::Instant::now();
        let call = Call::of(path, req.headers(), self.store.as_ref());
        if call == Call::Store {
            // The embedded store logs its failures itself, with this id.
            req.headers_mut().insert(REQUEST_ID, id.header());
        }
        let metrics = crate::metrics::get();
        metrics.in_flight.inc();
        let span = tracing::debug_span!("request", request_id = %id);
        let result = tracing::Instrument::instrument(self.run(req, call), span).await;
        let mut response = match result {
            Ok(response) => {
                tracing::debug!(request_id = %id, %method, %path, status = response.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "ok");
                response
            }
            Err(e) => {
                if e.is_server_side() {
                    tracing::error!(request_id = %id, %method, %path, status = e.http_status(), code = e.code.as_str(), elapsed_us = started.elapsed().as_micros() as u64, "{}", e.message);
                } else {
                    tracing::info!(request_id = %id, %method, %path, status = e.http_status(), code = e.code.as_str(), elapsed_us = started.elapsed().as_micros() as u64, "{}", e.message);
                }
                if call.is_grpc() {
                    grpc::status::error(e.grpc_code(), &e.message)
                } else {
                    rest::error_response(&e)
                }
            }
        };
        metrics.in_flight.dec();
        let status = if call.is_grpc() {
            grpc_status(&response)
        } else {
            response.status().as_u16()
        };
        match self.series.get(&call) {
            Some(series) => series.record(status, started.elapsed()),
            // Every call has its series from the start; this is never taken.
            None => call.series().record(status, started.elapsed()),
        }
        response.headers_mut().insert(REQUEST_ID, id.header());
        self.cors.decorate(origin.as_ref(), &mut response);
        response
    }

    async fn run(&self, req: Request<Incoming>, call: Call) -> Result<Response<Body>, ApiError> {
        let timeout = self.limits.request_timeout;
        let overloaded = || ApiError::new(Code::Overloaded, "too many requests in flight; retry");
        // Without waiting (and without arming a timer) when a place is free, as it nearly always is.
        let _permit = match self.in_flight.try_acquire() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout(timeout, self.in_flight.acquire())
                .await
                .map_err(|_| overloaded())?
                .map_err(|_| overloaded())?,
        };
        let tenant = if let Call::Store = call {
            // Presigned URLs carry their own signature, checked by the store.
            None
        } else if self.auth.is_public(req.uri().path(), call.is_grpc()) {
            None
        } else {
            self.auth
                .authenticate(req.headers().get(http::header::AUTHORIZATION))?
        };
        within(timeout, async {
            match (call, &self.store) {
                (Call::Store, Some(store)) => Ok(Box::pin(store.serve(req)).await),
                (Call::Grpc(rpc), _) => {
                    grpc::handle(&self.app, req, rpc, &self.limits, tenant.as_ref()).await
                }
                (Call::Rest(route), _) => {
                    rest::handle(&self.app, req, route, &self.limits, tenant.as_ref()).await
                }
                // Parsed as `Store` only when a store is mounted.
                (Call::Store, None) => rest::handle(&self.app, req, None, &self.limits, None).await,
            }
        })
        .await
        .map_err(|_| ApiError::new(Code::Timeout, "the request took too long"))?
    }
}

/// What a request asks for, parsed once from its path: the mounted store's presigned URLs, a
/// gRPC method or a REST route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Call {
    Store,
    Grpc(Option<grpc::Rpc>),
    Rest(Option<rest::Route>),
}

impl Call {
    /// The store's when it owns the path, else gRPC by `content-type: application/grpc*`, else
    /// REST.
    fn of(path: &str, headers: &http::HeaderMap, store: Option<&local::Endpoint>) -> Self {
        if store.is_some_and(|s| s.owns(path)) {
            return Self::Store;
        }
        let is_grpc = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"));
        if is_grpc {
            Self::Grpc(grpc::Rpc::of(path))
        } else {
            Self::Rest(rest::Route::of(path))
        }
    }

    /// Every call there is, unknown ones included.
    fn all() -> impl Iterator<Item = Self> {
        let grpc = std::iter::once(None).chain(grpc::Rpc::ALL.map(Some));
        let rest = std::iter::once(None).chain(rest::Route::ALL.map(Some));
        let calls = grpc.map(Self::Grpc).chain(rest.map(Self::Rest));
        std::iter::once(Self::Store).chain(calls)
    }

    /// Its metrics series.
    fn series(self) -> CallSeries {
        match self {
            Self::Grpc(_) => CallSeries::new(self.label(), "grpc", 0),
            Self::Rest(_) | Self::Store => CallSeries::new(self.label(), "rest", 200),
        }
    }

    fn is_grpc(self) -> bool {
        matches!(self, Self::Grpc(_))
    }

    /// A bounded metrics label: the route or method, else `unknown` / `other`.
    fn label(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Grpc(rpc) => rpc.map_or("unknown", grpc::Rpc::label),
            Self::Rest(route) => route.map_or("other", rest::Route::label),
        }
    }
}

/// The gRPC status of a response: in its headers (errors), else 0 (success, in trailers).
fn grpc_status(response: &Response<Body>) -> u16 {
    response
        .headers()
        .get(grpc::header::GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
