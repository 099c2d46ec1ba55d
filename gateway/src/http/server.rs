//! The one server: hyper-util's auto builder (HTTP/1.1 and h2c on the same listener) serving
//! one tower stack ([`stack`]) through [`PerConnection`] (hyper's service for a connection),
//! gRPC routed by its exact media type, REST otherwise.
//!
//! Every connection state has a timer: a connection whose first request head has not come
//! within the header timeout is dropped, one with no request during
//! `DRAFTSTORE_IDLE_TIMEOUT_MS` gets GOAWAY (HTTP/2) or is closed (HTTP/1.1 keep-alive, whose
//! next head may take up to the idle timeout), and an API body must arrive within the header
//! timeout again (408), read before the request takes a place. Connections are capped
//! (`DRAFTSTORE_MAX_CONNECTIONS`: past it, new ones wait in the kernel's backlog), and so are
//! requests open on all connections together (twice `DRAFTSTORE_MAX_IN_FLIGHT`; past it, 503
//! at once, except for probes, which are answered at once anyway). Accept errors (out of descriptors) are logged at most once a second, with a count.
//!
//! On shutdown: stop accepting, tell every connection to finish (GOAWAY / close when idle),
//! wait for them up to the grace period or a second signal, and report how many requests were
//! cut off and how many connections were closed still sending answers ([`Drained`]). A
//! connection told to finish (by the drain or when idle) that has nothing left to finish (no
//! HTTP/2 stream open, no byte written) for the stall limit, or for a second if it never sent a
//! request, is dropped ([`connection::linger`]): an HTTP/2 client that never answers the PING
//! sent with the GOAWAY holds the drain no longer than that. An HTTP/2 connection with a stream open (a long
//! download) is never idle.

use crate::api::app::App;
use crate::api::{grpc, rest};
use crate::auth::{Authenticator, Tenant};
use crate::config::{Limits, ServeConfig};
use crate::http::activity::Activity;
use crate::http::cors::Cors;
use crate::http::drain::DrainEnd;
use crate::http::layer::admission::{AdmissionLayer, By};
use crate::http::layer::auth::AuthLayer;
use crate::http::layer::body::{self, BodyLayer};
use crate::http::layer::connection::{self, PerConnection, Silence, Streams};
use crate::http::layer::cors::CorsLayer;
use crate::http::layer::observe::ObserveLayer;
use crate::http::layer::protocol::{self, ProtocolLayer};
use crate::http::layer::request_id::RequestIdLayer;
use crate::http::layer::timeout::TimeoutLayer;
use crate::http::layer::transfer::TransferLayer;
use crate::http::layer::unsent::Unsent;
use crate::http::layer::{meta, meta_mut, reply, Meta, Req, Res};
use crate::http::response::{RequestId, REQUEST_ID_NAME};
use crate::http::shares::{Key, Shares};
use crate::http::socket::Socket;
use crate::http::tls::Tls;
use crate::metrics::CallSeries;
use crate::store::{local, Presign};
use draftstore_core::Storage;
use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::{Service, ServiceBuilder};

/// The server: the API and everything the request path needs, built by [`Server::new`].
pub struct Server<B> {
    /// The protocol-free API.
    pub app: App<B>,
    /// The embedded store's presigned URLs, when it is the store.
    store: Option<local::Endpoint>,
    auth: Authenticator,
    cors: Cors,
    limits: Limits,
    grace: Duration,
    tls: Option<Arc<Tls>>,
    /// The upload page, when served (`DRAFTSTORE_UI`).
    ui: Option<crate::ui::Page>,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Requests still open when the grace period ended or a second signal came (over HTTP/2 a
    /// whole answer in its second of grace too; one waiting longer holds a waiting place and
    /// counts in `connections`): cut off.
    pub cut: usize,
    /// Connections still open then (told to finish, so each still had a request open or an
    /// answer being sent, e.g. an HTTP/2 body waiting for its client's window): closed,
    /// their answers cut off even when their requests were logged as answered.
    pub connections: usize,
}

impl Drained {
    /// Whether the drain cut anything off (then `gateway serve` exits 75).
    #[must_use]
    pub fn cut_off(&self) -> bool {
        self.cut > 0 || self.connections > 0
    }
}

impl<B: Storage + Presign + 'static> Server<B> {
    /// The server for `config` on `storage` (with the embedded store's `endpoint` mounted
    /// when given), letting in whom `auth` allows.
    #[must_use]
    pub fn new(
        storage: Arc<B>,
        endpoint: Option<local::Endpoint>,
        config: &ServeConfig,
        auth: Authenticator,
    ) -> Self {
        let ui = config
            .ui
            .then(|| crate::ui::Page::for_store(storage.as_ref(), &config.buckets));
        Self {
            ui,
            store: endpoint,
            app: App {
                store: storage.clone(),
                buckets: config.buckets.clone(),
                upload_ttl: config.upload_ttl,
                download_ttl: config.download_ttl,
                events: crate::events::Events::start(&storage, &config.buckets, &config.events),
                object_lifetime: config.object_lifetime,
                cors_origins: config.cors.origins().to_vec(),
            },
            auth,
            cors: config.cors.clone(),
            limits: config.limits,
            grace: config.shutdown_grace,
            tls: None,
        }
    }

    /// Serves every listener over TLS with `tls` (its files watched while serving).
    #[must_use]
    pub fn with_tls(mut self, tls: Option<Tls>) -> Self {
        self.tls = tls.map(Arc::new);
        self
    }

    /// Serves on `listeners` until `shutdown` completes, then drains for up to the grace
    /// period, or until `abort` completes (a second signal).
    ///
    /// # Errors
    /// Never after start; the signature leaves room for bind-time failures.
    pub async fn run(
        self,
        listeners: Vec<TcpListener>,
        shutdown: impl Future<Output = ()>,
        abort: impl Future<Output = ()>,
    ) -> std::io::Result<Drained> {
        let limits = self.limits;
        let max_connections = limits
            .max_connections
            .unwrap_or_else(default_max_connections);
        // Object bytes flow through this server only when it serves a store's URLs; that
        // decides how replies are written (see `socket`).
        let vectored = self.store.is_some();
        let drain = DrainEnd::default();
        let serving = Serving {
            builder: builder(&limits),
            stack: stack(
                self.app,
                self.store,
                self.auth,
                self.cors,
                limits,
                self.ui,
                drain.clone(),
            ),
            streams: Streams::new(limits.max_in_flight.saturating_mul(2)),
            connections: Arc::new(Semaphore::new(max_connections)),
            peers: Shares::new(max_connections),
            closing: watch::channel(false).0,
            answering: AtomicUsize::new(0),
            limits,
            tls: self.tls.clone(),
        };
        let serving = Arc::new(serving);
        let reloading = self.tls.clone().map(|tls| tokio::spawn(tls.watch()));
        // Through the drain too; ended when this returns.
        let _reporting = Aborting(tokio::spawn(
            crate::http::layer::observe::report_left_out_lines(),
        ));
        let acceptors: Vec<_> = listeners
            .into_iter()
            .map(|listener| tokio::spawn(serving.clone().accept(listener, vectored)))
            .collect();
        shutdown.await;
        for acceptor in acceptors.iter().chain(&reloading) {
            acceptor.abort();
        }
        tracing::info!(
            grace_ms = self.grace.as_millis() as u64,
            "shutting down: finishing in-flight requests"
        );
        serving.closing.send_replace(true);
        let all_closed = serving
            .connections
            .acquire_many(u32::try_from(max_connections).unwrap_or(u32::MAX));
        tokio::select! {
            _ = all_closed => {
                tracing::info!("all connections closed");
                return Ok(Drained { cut: 0, connections: 0 });
            }
            () = tokio::time::sleep(self.grace) => {}
            () = abort => tracing::warn!("second signal: ending the drain now"),
        }
        let cut = serving.streams.open();
        // Every connection was told to finish: one still open that had started a request has
        // work left, perhaps only an answer already logged as answered but not yet taken whole
        // by its client. Silent ones (no request ever, half a head) are not counted.
        let connections = serving.answering.load(Ordering::Relaxed);
        let drained = Drained { cut, connections };
        // Before returning, whatever the counts say: anything still open is dropped with the
        // runtime afterwards and was cut by the server (a connection that first asked after
        // closing began is in neither count, and its download may still be running).
        drain.cut();
        if drained.cut_off() {
            crate::metrics::get()
                .drain_cut
                .inc_by(u64::try_from(connections).unwrap_or(u64::MAX));
            tracing::warn!(
                cut,
                connections,
                "drain over: requests still open and answers still being sent are cut off"
            );
        } else {
            tracing::info!("drain over: no request was cut off");
        }
        Ok(drained)
    }
}

/// A background task of [`Server::run`], aborted when dropped (when `run` returns).
struct Aborting(tokio::task::JoinHandle<()>);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connections at once when `DRAFTSTORE_MAX_CONNECTIONS` is unset: three quarters of the
/// open-file limit (`RLIMIT_NOFILE`, soft), leaving the rest for storage connections and files.
#[must_use]
pub fn default_max_connections() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    usize::try_from(soft / 4 * 3)
        .unwrap_or(1 << 16)
        .clamp(16, 1 << 20)
}

/// hyper's connection settings from `limits`. hyper's own HTTP/1.1 head timer is off: it armed
/// a timer for every request of a kept-alive connection (a clock read, an allocation and two
/// timer-wheel updates per request). The connection watcher ([`connection::idle`]) bounds
/// every head instead: the first within the header timeout, a later one by the idle timeout
/// (a kept-alive connection with no new request for a whole idle period is closed, half a
/// head included).
/// The most one HTTP/2 stream's answer h2 holds unsent before hyper hands it another frame
/// (64 KiB; h2's default is 400 KiB). It bounds what a download holds in the server when its
/// client opened wide windows and reads its socket slowly or not at all: this plus the frame
/// that passed it in h2, one frame (32 KiB) waiting in hyper, and the rest of the store's
/// 64 KiB read.
pub const STREAM_SEND_BUFFER: usize = 64 * 1024;

fn builder(limits: &Limits) -> auto::Builder<crate::http::watch::Executor> {
    let executor = crate::http::watch::Executor::stalling(limits.idle_timeout)
        .reporting(crate::http::layer::observe::small_answer_stalled);
    let mut builder = auto::Builder::new(executor);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_send_buf_size(STREAM_SEND_BUFFER)
        .max_header_list_size(limits.max_header_list)
        .max_pending_accept_reset_streams(Some(50));
    builder
}

/// The whole request path, composed once, outermost first (see [`crate::http::layer`]):
/// request id, metrics and log, CORS, protocol rules, the upload page (`GET` of its files,
/// public, answered at once), transfer slots (object transfers only),
/// the API body read whole (shared by peer, before any place is taken), admission by peer,
/// authentication, admission by tenant, the request time limit, then the router. Probes and
/// the embedded store's object transfers take no admission place; object transfers have no
/// request time limit. Calls still open once `drain` is cut are logged as cut by the server.
pub fn stack<B: Storage + Presign + 'static>(
    app: App<B>,
    store: Option<local::Endpoint>,
    auth: Authenticator,
    cors: Cors,
    limits: Limits,
    ui: Option<crate::ui::Page>,
    drain: DrainEnd,
) -> impl Service<Req, Response = Res, Error = Infallible, Future: Send> + Clone + Send + Sync + 'static
{
    let router = Routes(Arc::new(Router { app, store, limits }));
    let unsent = Unsent::for_places(limits.max_in_flight);
    ServiceBuilder::new()
        .layer(RequestIdLayer)
        .layer(ObserveLayer::new(drain))
        .layer(CorsLayer::new(cors))
        .layer(ProtocolLayer)
        .layer(crate::ui::layer::UiLayer::new(ui))
        .layer(TransferLayer::new(limits.max_in_flight).watching(limits.idle_timeout))
        .layer(BodyLayer::new(
            Shares::new(limits.max_in_flight),
            body::Limits {
                json: limits.max_body,
                grpc: limits.max_grpc_message,
                timeout: limits.header_timeout,
            },
        ))
        .layer(
            AdmissionLayer::new(Shares::new(limits.max_in_flight), By::Peer)
                .watching(limits.idle_timeout)
                .budget(unsent.clone()),
        )
        .layer(AuthLayer::new(auth))
        .layer(
            AdmissionLayer::new(Shares::new(limits.max_in_flight), By::Tenant)
                .watching(limits.idle_timeout)
                .budget(unsent),
        )
        .layer(TimeoutLayer::new(limits.request_timeout))
        .service(router)
}

/// The innermost service: one call to the REST or gRPC adapter. `GET /health` is answered at
/// once; other calls run in a future of their own ([`Routed`]), so the future of every request
/// (held by its HTTP/2 stream until it is answered) stays small.
struct Routes<B>(Arc<Router<B>>);

impl<B> Clone for Routes<B> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<B: Storage + Presign + 'static> Service<Req> for Routes<B> {
    type Response = Res;
    type Error = Infallible;
    type Future = Routed;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Routed {
        let call = Call::from_request(&req);
        if call == Call::Rest(Some(rest::Route::Health))
            && matches!(*req.method(), http::Method::GET | http::Method::HEAD)
        {
            // A body sent anyway is read and thrown away after the answer.
            return Routed::Answered(Some(body::early(rest::health(), req)));
        }
        let router = self.0.clone();
        Routed::Working(Box::pin(async move { router.route(req).await }))
    }
}

/// The future of [`Routes`]: an answer, or the work making it.
pub enum Routed {
    /// Answered at once.
    Answered(Option<Res>),
    /// The adapter's work.
    Working(std::pin::Pin<Box<dyn Future<Output = Res> + Send>>),
}

impl Future for Routed {
    type Output = Result<Res, Infallible>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            // Polled once more after its answer (never): an empty 200.
            Self::Answered(response) => {
                std::task::Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
            Self::Working(work) => work.as_mut().poll(cx).map(Ok),
        }
    }
}

/// The router's state.
struct Router<B> {
    app: App<B>,
    store: Option<local::Endpoint>,
    limits: Limits,
}

impl<B: Storage + Presign + 'static> Router<B> {
    /// The store's transfers, gRPC-Web and Connect are boxed apart: kept inline, their futures
    /// made every call's (boxed once per request by [`Routes`]) 4.9 KB, past the allocator's
    /// small-size cache, and copied whole into the box; native gRPC and REST, the calls
    /// most clients make, stay inline.
    async fn route(&self, mut req: Req) -> Res {
        let call = Call::from_request(&req);
        let tenant = req.extensions_mut().remove::<Tenant>();
        let result = match call {
            Call::Store => match &self.store {
                Some(store) => {
                    // The embedded store logs its failures itself, with this id.
                    if let Some(id) = meta(&req)
                        .and_then(|m| m.id.as_ref())
                        .map(RequestId::header)
                    {
                        req.headers_mut().insert(REQUEST_ID_NAME, id);
                    }
                    return Box::pin(store.serve(req)).await;
                }
                // Parsed as `Store` only by path: without a mounted store it is no route, and
                // answered as REST answers an unknown route (JSON, not the store's XML).
                None => return self.rest(req, None, None).await,
            },
            Call::Grpc(Some(rpc)) if !rpc.is_unary() => grpc::stream(req, &self.limits),
            // Connect's streaming form (server reflection): read message by message.
            // A head refused before any message is read: the body is read and thrown away
            // after the answer, as for every early answer.
            Call::Connect(grpc::connect::Codec::Stream, _) => {
                return match grpc::connect::stream::check(req.headers()) {
                    Ok(deadline) => grpc::connect::stream::serve(req, &self.limits, deadline),
                    Err(e) => body::early(reply(call, e), req),
                };
            }
            Call::Grpc(rpc) => {
                grpc::handle(
                    &self.app,
                    collected(req),
                    rpc,
                    &self.limits,
                    tenant.as_ref(),
                )
                .await
            }
            Call::GrpcWeb(flavor, rpc) => {
                Box::pin(grpc::web::handle(
                    &self.app,
                    collected(req),
                    rpc,
                    flavor,
                    &self.limits,
                    tenant.as_ref(),
                ))
                .await
            }
            Call::Connect(codec, rpc) => {
                Box::pin(grpc::connect::handle(
                    &self.app,
                    collected(req),
                    rpc,
                    codec,
                    tenant.as_ref(),
                ))
                .await
            }
            Call::Rest(route) => return self.rest(req, route, tenant.as_ref()).await,
        };
        result.unwrap_or_else(|e| reply(call, e))
    }

    /// A REST call (`route` `None`: no route, or the store's path with no store mounted)
    /// answered in REST's shape; a body it did not read is read and thrown away after the
    /// answer ([`body::early`]).
    async fn rest(&self, req: Req, route: Option<rest::Route>, tenant: Option<&Tenant>) -> Res {
        let (req, unread) = unread(req);
        let answer = rest::handle(&self.app, req, route, tenant)
            .await
            .unwrap_or_else(|e| reply(Call::Rest(route), e));
        match unread {
            Some(body) => body::early(answer, body),
            None => answer,
        }
    }
}

/// `req` split from a body the body layer did not read (a REST call with no API body: an
/// unknown route, a `GET` sending one anyway), kept as a request of its own (version and
/// `Expect`, the peer) for [`body::early`] to read and throw away after the answer; `None` when the body
/// was read or there is none.
fn unread(mut req: Req) -> (http::Request<bytes::Bytes>, Option<Req>) {
    use hyper::body::Body as _;
    let read = meta_mut(&mut req).body.take();
    let waiting = read.is_none() && !req.body().is_end_stream();
    let (parts, incoming) = req.into_parts();
    let left = waiting.then(|| {
        let mut body = http::Request::new(incoming);
        *body.version_mut() = parts.version;
        if let Some(expect) = parts.headers.get(http::header::EXPECT) {
            body.headers_mut()
                .insert(http::header::EXPECT, expect.clone());
        }
        // The peer, whose share of the lingering slots it takes.
        let peer = parts.extensions.get::<Meta>().and_then(|m| m.peer);
        body.extensions_mut().insert(Meta {
            peer,
            ..Meta::default()
        });
        body
    });
    (
        http::Request::from_parts(parts, read.unwrap_or_default().0),
        left,
    )
}

/// `req` with the body the body layer read (empty for a call that has none: a `GET`, an
/// unknown path).
fn collected(mut req: Req) -> http::Request<bytes::Bytes> {
    let body = meta_mut(&mut req).body.take().unwrap_or_default().0;
    req.map(|_| body)
}

/// What every connection shares.
struct Serving<S> {
    builder: auto::Builder<crate::http::watch::Executor>,
    stack: S,
    streams: Arc<Streams>,
    /// One permit per open connection.
    connections: Arc<Semaphore>,
    /// The open connections shared by peer address, as admission shares its places: a peer
    /// alone holds at most half of them, so one address cannot take every connection.
    peers: Arc<Shares>,
    /// Set once, when the server starts draining.
    closing: watch::Sender<bool>,
    /// Connections that had started a request when the drain told them to finish, and are
    /// still open.
    answering: AtomicUsize,
    limits: Limits,
    /// TLS on every connection, when configured.
    tls: Option<Arc<Tls>>,
}

impl<S> Serving<S>
where
    S: Service<Req, Response = Res, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    /// Accepts connections while there is room for them; past the cap they wait in the
    /// kernel's backlog.
    async fn accept(self: Arc<Self>, listener: TcpListener, vectored: bool) {
        // Dead peers are found by TCP keepalive, for both protocols, at no cost per request:
        // HTTP/2 PING keep-alive made hyper read the clock and take a lock for every frame
        // (4.6% of the CPU per request over h2c, measured).
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(30))
            .with_interval(Duration::from_secs(10))
            .with_retries(3);
        let mut failures = OncePerSecond::default();
        let mut refused = OncePerSecond::default();
        loop {
            let Ok(permit) = self.connections.clone().acquire_owned().await else {
                return;
            };
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let peer = peer.ip().to_canonical();
                    // A peer holding its share of the connections: this one is closed at once.
                    let Some(place) = self.peers.place(Key::Peer(peer)) else {
                        drop((stream, permit));
                        if let Some(refused) = refused.note() {
                            tracing::info!(%peer, refused, "connection closed at once: its address holds its share of the connections (logged at most once a second)");
                        }
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
                    crate::http::socket::bound_unsent(&stream);
                    let this = self.clone();
                    // The TLS handshake runs in the connection's own task, within the header
                    // timeout: a client that never sends its ClientHello holds no one up.
                    tokio::spawn(async move {
                        let stall = this.limits.idle_timeout;
                        match &this.tls {
                            None => {
                                let socket = Socket::new(stream, vectored).stalling(stall, peer);
                                this.serve(socket, peer).await;
                            }
                            Some(tls) => {
                                let within = this.limits.header_timeout;
                                if let Some(stream) = tls.accept(stream, within).await {
                                    let socket =
                                        Socket::new(stream, vectored).stalling(stall, peer);
                                    this.serve(socket, peer).await;
                                }
                            }
                        }
                        drop((place, permit));
                    });
                }
                Err(e) => {
                    drop(permit);
                    if let Some(failures) = failures.note() {
                        tracing::warn!(error = %e, failures, "accept failed (logged at most once a second)");
                    }
                    // Out of descriptors and the like: the listener stays readable, so wait a
                    // moment rather than spin; accepting resumes as soon as one is free.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Serves one connection until it ends, closing it when idle or when the server drains.
    async fn serve<T>(&self, socket: Socket<T>, peer: IpAddr)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::waiting_in(self.streams.waiting(), peer));
        let written = socket.written().clone();
        let service = PerConnection::new(
            self.stack.clone(),
            peer,
            activity.clone(),
            self.streams.clone(),
        )
        .pacing(written.clone());
        let connection = self.builder.serve_connection(socket, service);
        tokio::pin!(connection);
        let idle = connection::idle(
            &activity,
            self.limits.header_timeout,
            self.limits.idle_timeout,
        );
        tokio::pin!(idle);
        let mut closing = self.closing.subscribe();
        let mut closed = false;
        let mut answering = None;
        loop {
            tokio::select! {
                _ = connection.as_mut() => {
                    drop(answering);
                    return;
                }
                silence = &mut idle, if !closed => {
                    if silence == Silence::NoRequest {
                        // Nothing in flight, perhaps half a head: dropped, not waited for.
                        return;
                    }
                    connection.as_mut().graceful_shutdown();
                    closed = true;
                }
                _ = closing.wait_for(|c| *c), if !closed => {
                    connection.as_mut().graceful_shutdown();
                    closed = true;
                    if activity.started_any() {
                        answering = Some(Answering::new(&self.answering));
                    }
                }
                // Told to finish, with nothing left to finish, and still open (an HTTP/2
                // client that does not answer the PING of the GOAWAY): dropped.
                () = connection::linger(&activity, &written, self.limits.idle_timeout), if closed => return,
            }
        }
    }
}

/// One connection counted in [`Serving::answering`] while it lives.
struct Answering<'a>(&'a AtomicUsize);

impl<'a> Answering<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Events of the accept loop logged at most once a second, with how many there were: accept
/// errors (WARN) and connections closed at once for their peer's share (INFO, a client's
/// doing).
#[derive(Default)]
struct OncePerSecond {
    logged: Option<Instant>,
    since: u64,
}

impl OncePerSecond {
    /// Counts one event; `Some(events since the last line)` when a line is due now.
    fn note(&mut self) -> Option<u64> {
        self.since += 1;
        if self
            .logged
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
        {
            return None;
        }
        self.logged = Some(Instant::now());
        Some(std::mem::take(&mut self.since))
    }
}

/// What a request asks for, parsed once from its path and media type: a gRPC method (over
/// native gRPC, gRPC-Web or Connect) or a REST route (`None`: unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// Native gRPC (see [`protocol::media`]).
    Grpc(Option<grpc::Rpc>),
    /// gRPC-Web, in one of its media types.
    GrpcWeb(grpc::web::Flavor, Option<grpc::Rpc>),
    /// Connect (unary), JSON or protobuf.
    Connect(grpc::connect::Codec, Option<grpc::Rpc>),
    /// REST.
    Rest(Option<rest::Route>),
    /// An object transfer on the embedded store's presigned URLs.
    Store,
}

impl Call {
    /// The local store's object paths; else gRPC and gRPC-Web by their exact media types,
    /// Connect by its media types on a gRPC service path; REST otherwise.
    #[must_use]
    pub fn of(path: &str, headers: &http::HeaderMap) -> Self {
        use protocol::Media;
        if local::Endpoint::owns_path(path) {
            return Self::Store;
        }
        match protocol::media(headers) {
            Media::Grpc => Self::Grpc(grpc::Rpc::of(path)),
            Media::GrpcWeb(flavor) => Self::GrpcWeb(flavor, grpc::Rpc::of(path)),
            Media::Connect(codec) if grpc::is_service_path(path) => {
                Self::Connect(codec, grpc::Rpc::of(path))
            }
            _ => Self::Rest(rest::Route::of(path)),
        }
    }

    /// The gRPC method of a gRPC, gRPC-Web or Connect call.
    #[must_use]
    pub fn rpc(self) -> Option<grpc::Rpc> {
        match self {
            Self::Grpc(rpc) | Self::GrpcWeb(_, rpc) | Self::Connect(_, rpc) => rpc,
            Self::Rest(_) | Self::Store => None,
        }
    }

    /// The call the observe layer put in `req`'s [`Meta`](crate::http::layer::Meta) (parsed
    /// again if missing).
    #[must_use]
    pub fn from_request<T>(req: &http::Request<T>) -> Self {
        meta(req)
            .and_then(|m| m.call)
            .unwrap_or_else(|| Self::of(req.uri().path(), req.headers()))
    }

    /// Every call there is, unknown ones included.
    pub fn all() -> impl Iterator<Item = Self> {
        let rpcs = || std::iter::once(None).chain(grpc::Rpc::ALL.map(Some));
        let rest = std::iter::once(None).chain(rest::Route::ALL.map(Some));
        let web = grpc::web::Flavor::ALL
            .into_iter()
            .flat_map(move |f| rpcs().map(move |rpc| Self::GrpcWeb(f, rpc)));
        let connect = [
            grpc::connect::Codec::Json,
            grpc::connect::Codec::Proto,
            grpc::connect::Codec::Stream,
        ]
        .into_iter()
        .flat_map(move |c| rpcs().map(move |rpc| Self::Connect(c, rpc)));
        let calls = rpcs()
            .map(Self::Grpc)
            .chain(web)
            .chain(connect)
            .chain(rest.map(Self::Rest));
        std::iter::once(Self::Store).chain(calls)
    }

    /// Its metrics series.
    #[must_use]
    pub fn series(self) -> CallSeries {
        match self {
            Self::Grpc(_) => CallSeries::new(self.label(), "grpc", 0),
            Self::GrpcWeb(..) => CallSeries::new(self.label(), "grpc-web", 0),
            Self::Connect(..) => CallSeries::new(self.label(), "connect", 0),
            Self::Rest(_) | Self::Store => CallSeries::new(self.label(), "rest", 200),
        }
    }

    /// A gRPC method, over native gRPC, gRPC-Web or Connect (each answers in its own form;
    /// metrics count their status as a gRPC code).
    #[must_use]
    pub fn is_grpc(self) -> bool {
        matches!(self, Self::Grpc(_) | Self::GrpcWeb(..) | Self::Connect(..))
    }

    /// An object transfer on the embedded store (`/_store/`): not an API call.
    #[must_use]
    pub fn is_store(self) -> bool {
        self == Self::Store
    }

    /// A probe: `/health`, `/ready`, the gRPC health check.
    #[must_use]
    pub fn is_probe(self) -> bool {
        self.rpc() == Some(grpc::Rpc::HealthCheck)
            || matches!(
                self,
                Self::Rest(Some(rest::Route::Health | rest::Route::Ready))
            )
    }

    /// Takes no admission place: a probe or an object transfer.
    #[must_use]
    pub fn is_exempt(self) -> bool {
        self.is_probe() || self.is_store()
    }

    /// A bounded metrics label: the route or method, else `unknown` / `other`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Grpc(rpc) | Self::GrpcWeb(_, rpc) | Self::Connect(_, rpc) => {
                rpc.map_or("unknown", grpc::Rpc::label)
            }
            Self::Rest(route) => route.map_or("other", rest::Route::label),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthConfig;
    use crate::config::StorageChoice;
    use crate::store::local::LocalStorage;

    fn future_size<S: Service<Req>>(_: &S) -> usize {
        std::mem::size_of::<S::Future>()
    }

    #[test]
    fn the_future_of_a_request_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().display().to_string();
        let pairs = [
            ("DRAFTSTORE_STORAGE", "local"),
            ("DRAFTSTORE_DATA_DIR", data.as_str()),
        ];
        let config = ServeConfig::from_lookup(&|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        let StorageChoice::Local(local) = &config.storage else {
            panic!("local")
        };
        let store = Arc::new(LocalStorage::open(local).unwrap());
        let endpoint = local::Endpoint::new(store.clone());
        let auth = Authenticator::new(AuthConfig::None).unwrap();
        let server = Server::new(store, Some(endpoint), &config, auth);
        let service = stack(
            server.app,
            server.store,
            server.auth,
            server.cors,
            server.limits,
            server.ui,
            DrainEnd::default(),
        );
        // Every open HTTP/2 stream holds its request's future until it is answered: under a
        // flood of streams (400 connections x 256 streams) this is most of the memory.
        let size = future_size(&service);
        assert!(size <= 1024, "the stack's future is {size} bytes");
    }
}
