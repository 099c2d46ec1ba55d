//! A fault-injecting HTTP proxy for tests: forwards each request to the real S3 server
//! unchanged (the `Host` header included, so signatures still hold), unless a queued fault says
//! to answer with a status, drop the connection, or wait first.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub enum ProxyFault {
    Pass,
    /// Answer with this status and an S3-style error body, without forwarding.
    Status(u16),
    /// Close the connection without answering.
    Drop,
    /// Forward after a pause.
    Delay(Duration),
    /// Forward, then drop the connection instead of answering (the work is done, the answer lost).
    DropAfter,
    /// Forward, then replace the answer with this status and S3 error code (the work is done,
    /// the answer is another server's dialect).
    Rewrite(u16, &'static str),
    /// Answer with this status and S3 error code, without forwarding.
    Answer(u16, &'static str),
    /// Close the connection without answering, then forward after a pause (the client gave up;
    /// the work still lands later).
    DropThenForward(Duration),
    /// For a DeleteObjects: answer, without forwarding, that the first key listed was deleted
    /// and every other one refused (`AccessDenied` per key), and record the first one's
    /// version id ([`Proxy::partly_deleted`]) for the test to delete, as S3 would have.
    PartialDelete,
}

/// A request as the store received it through the proxy.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    faults: Mutex<VecDeque<ProxyFault>>,
    /// Faults for copies only (requests with `x-amz-copy-source`), taken before `faults`.
    copy_faults: Mutex<VecDeque<ProxyFault>>,
    /// Faults for DeleteObjects only (`POST ?delete`), taken before `faults`.
    delete_faults: Mutex<VecDeque<ProxyFault>>,
    /// Version ids a [`ProxyFault::PartialDelete`] said it deleted.
    partly_deleted: Mutex<Vec<String>>,
    requests: AtomicU64,
    recorded: Mutex<Vec<Recorded>>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let client = reqwest::Client::builder().build().unwrap();
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (state, client, upstream) = (shared.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        handle(req, state.clone(), client.clone(), upstream.clone())
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for the next requests, in order.
    pub fn push(&self, faults: impl IntoIterator<Item = ProxyFault>) {
        self.state.faults.lock().unwrap().extend(faults);
    }

    /// Queues faults for the next copies (`x-amz-copy-source`), in order; other requests pass.
    pub fn push_copies(&self, faults: impl IntoIterator<Item = ProxyFault>) {
        self.state.copy_faults.lock().unwrap().extend(faults);
    }

    /// Queues faults for the next DeleteObjects (`POST ?delete`), in order.
    pub fn push_deletes(&self, faults: impl IntoIterator<Item = ProxyFault>) {
        self.state.delete_faults.lock().unwrap().extend(faults);
    }

    /// The version ids [`ProxyFault::PartialDelete`] answered as deleted, in order.
    pub fn partly_deleted(&self) -> Vec<String> {
        self.state.partly_deleted.lock().unwrap().clone()
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Every request received so far, in order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.recorded.lock().unwrap().clone()
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    client: reqwest::Client,
    upstream: String,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    state.recorded.lock().unwrap().push(Recorded {
        method: req.method().to_string(),
        target: req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
    });
    let copy = req.headers().contains_key("x-amz-copy-source");
    let copy_fault = copy
        .then(|| state.copy_faults.lock().unwrap().pop_front())
        .flatten();
    let delete = req.method() == hyper::Method::POST
        && req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "delete" || p == "delete="));
    let delete_fault = delete
        .then(|| state.delete_faults.lock().unwrap().pop_front())
        .flatten();
    let fault = copy_fault
        .or(delete_fault)
        .or_else(|| state.faults.lock().unwrap().pop_front())
        .unwrap_or(ProxyFault::Pass);
    match fault {
        ProxyFault::Status(code) => {
            let body = format!(
                "<Error><Code>{}</Code><Message>injected</Message></Error>",
                if code == 503 {
                    "SlowDown"
                } else {
                    "InternalError"
                }
            );
            return Ok(Response::builder()
                .status(code)
                .body(Full::new(Bytes::from(body)))
                .unwrap());
        }
        ProxyFault::Answer(code, s3_code) => return Ok(s3_error(code, s3_code)),
        ProxyFault::PartialDelete => {
            let body = req
                .into_body()
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes();
            return Ok(partial_delete(&state, &String::from_utf8_lossy(&body)));
        }
        ProxyFault::Drop => return Err(std::io::Error::other("injected drop")),
        ProxyFault::Delay(d) => tokio::time::sleep(d).await,
        ProxyFault::Pass
        | ProxyFault::DropAfter
        | ProxyFault::Rewrite(..)
        | ProxyFault::DropThenForward(_) => {}
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let url = format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
    let mut forward = client.request(method, url).body(body);
    for (name, value) in &parts.headers {
        forward = forward.header(name.as_str(), value.as_bytes());
    }
    if let ProxyFault::DropThenForward(pause) = fault {
        tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            let _ = forward.send().await;
        });
        return Err(std::io::Error::other("injected drop, forwarded later"));
    }
    let answer = forward.send().await.map_err(std::io::Error::other)?;
    if matches!(fault, ProxyFault::DropAfter) {
        return Err(std::io::Error::other("injected drop after forwarding"));
    }
    if let ProxyFault::Rewrite(code, s3_code) = fault {
        return Ok(s3_error(code, s3_code));
    }
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        response = response.header(name.as_str(), value.as_bytes());
    }
    let bytes = answer.bytes().await.map_err(std::io::Error::other)?;
    Ok(response.body(Full::new(bytes)).unwrap())
}

/// The DeleteResult of [`ProxyFault::PartialDelete`] for the DeleteObjects `body`.
fn partial_delete(state: &State, body: &str) -> Response<Full<Bytes>> {
    let between = |s: &str, open: &str, close: &str| -> Vec<String> {
        s.split(open)
            .skip(1)
            .filter_map(|rest| rest.split(close).next())
            .map(str::to_owned)
            .collect()
    };
    let objects: Vec<(String, String)> = between(body, "<Object>", "</Object>")
        .iter()
        .map(|o| {
            (
                between(o, "<Key>", "</Key>").concat(),
                between(o, "<VersionId>", "</VersionId>").concat(),
            )
        })
        .collect();
    let mut out = String::from("<DeleteResult>");
    for (i, (key, version)) in objects.iter().enumerate() {
        if i == 0 {
            state.partly_deleted.lock().unwrap().push(version.clone());
            out.push_str(&format!(
                "<Deleted><Key>{key}</Key><VersionId>{version}</VersionId></Deleted>"
            ));
        } else {
            out.push_str(&format!(
                "<Error><Key>{key}</Key><VersionId>{version}</VersionId><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>"
            ));
        }
    }
    out.push_str("</DeleteResult>");
    Response::builder()
        .status(200)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(out)))
        .unwrap()
}

/// An S3-style error answer.
fn s3_error(status: u16, code: &str) -> Response<Full<Bytes>> {
    let body = format!("<Error><Code>{code}</Code><Message>injected</Message></Error>");
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}
