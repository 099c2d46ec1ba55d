//! Local stand-ins for the services a pod talks to (a container-credentials endpoint, STS,
//! instance metadata): a small HTTP server on 127.0.0.1 with canned answers that keeps every
//! request; and `gateway serve` as a process, for settings read from the process environment.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a stub received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

pub type Answer = Box<dyn Fn(usize, &Seen) -> (u16, String) + Send + Sync>;

/// A small HTTP server on 127.0.0.1 answering with `answer(n, request)` (n counts from 0) and
/// keeping every request.
pub struct Stub {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    pub async fn start(answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (shared, answer) = (seen.clone(), Arc::new(answer));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, answer) = (shared.clone(), answer.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (seen, answer) = (seen.clone(), answer.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let request = Seen {
                                path: parts.uri.to_string(),
                                headers: parts
                                    .headers
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.to_string(), v.to_str().unwrap_or("").to_owned())
                                    })
                                    .collect(),
                                body: String::from_utf8_lossy(&body).into_owned(),
                            };
                            let n = {
                                let mut all = seen.lock().unwrap();
                                all.push(request.clone());
                                all.len() - 1
                            };
                            let (status, text) = answer(n, &request);
                            Ok::<_, std::io::Error>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(text)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A `gateway serve` process on a free port with `env` only (plus a HOME with no profile and
/// IMDS off, so nothing but 127.0.0.1 is asked), killed on drop.
pub struct Gateway {
    child: Child,
    pub base: String,
    _home: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Starts `gateway serve` on a free port and waits until it answers `/health` itself. A
    /// port picked by binding 0 and letting go can be taken by another test before the gateway
    /// binds it: the gateway then exits 69 ("cannot listen"), and the start is tried again on
    /// another port, so a test never talks to someone else's server. The async twin of
    /// [`crate::harness::spawn_on_free_port`]: it must not block the runtime, whose stub servers
    /// (credentials, receivers) the starting gateway may call.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        for _ in 0..5 {
            if let Some(gateway) = Self::try_start(env).await {
                return gateway;
            }
        }
        panic!("gateway could not listen on 5 free ports in a row");
    }

    async fn try_start(env: &[(&str, &str)]) -> Option<Self> {
        let home = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .env_clear()
            .env("HOME", home.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("DRAFTSTORE_AUTH", "none")
            .env("DRAFTSTORE_LOG", "info")
            .envs(env.iter().copied())
            .args([
                "serve",
                "--bind",
                "127.0.0.1",
                "--http-port",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut gateway = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _home: home,
        };
        gateway.wait_until_serving().await.then_some(gateway)
    }

    /// `true` once this gateway answers `/health` with 200 and is still running; `false` when
    /// it exited because its port was taken (69).
    async fn wait_until_serving(&mut self) -> bool {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                if status.code() == Some(69) {
                    return false;
                }
                panic!("gateway exited at start: {status}");
            }
            let healthy = reqwest::get(format!("{}/health", self.base))
                .await
                .is_ok_and(|r| r.status() == 200);
            if healthy {
                // Another process may have answered while ours failed to bind: ours must
                // still be running.
                tokio::time::sleep(Duration::from_millis(50)).await;
                match self.child.try_wait().unwrap() {
                    None => return true,
                    Some(status) if status.code() == Some(69) => return false,
                    Some(status) => panic!("gateway exited at start: {status}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway did not start serving");
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let answer = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or_default())
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let answer = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    /// The value of the metric line starting with `series` (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

/// Polls `check` every 250 ms until it holds; fails after `limit` (a hang guard, not a speed
/// assertion: the waits below are set by the credentials' lifetimes).
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
