//! Starts the real server in-process on 127.0.0.1:0, built by `serve_with` as `gateway serve`
//! builds it, on the store `DRAFTSTORE_TEST_STORE` names: `local` (the default: the embedded
//! store in a temporary folder, so a plain `cargo test` runs the API suites) or `s3` (SeaweedFS,
//! its own buckets; scripts/test runs the suites this way too).

use draftstore_core::{BucketName, ObjectInfo, PutOptions, Storage, StorageError};
use draftstore_gateway::cmd::serve::serve_with;
use draftstore_gateway::config::{ServeConfig, StorageChoice};
use draftstore_gateway::store::local::{Endpoint, LocalStorage};
use draftstore_gateway::store::s3::S3Storage;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A direct handle on the server's store (no gateway in between).
pub enum Direct {
    S3(Box<S3Storage>),
    Local(Arc<LocalStorage>),
}

impl Direct {
    pub async fn put_object(
        &self,
        bucket: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        match self {
            Self::S3(s) => s.put_object(bucket, key, body, options).await,
            Self::Local(s) => s.put_object(bucket, key, body, options).await,
        }
    }

    pub async fn head_object(
        &self,
        bucket: &BucketName,
        key: &str,
    ) -> Result<ObjectInfo, StorageError> {
        match self {
            Self::S3(s) => s.head_object(bucket, key).await,
            Self::Local(s) => s.head_object(bucket, key).await,
        }
    }

    pub async fn head_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        match self {
            Self::S3(s) => s.head_bucket(bucket).await,
            Self::Local(s) => s.head_bucket(bucket).await,
        }
    }

    pub async fn get_object(
        &self,
        bucket: &BucketName,
        key: &str,
    ) -> Result<Vec<u8>, StorageError> {
        match self {
            Self::S3(s) => s.get_object(bucket, key).await,
            Self::Local(s) => s.get_object(bucket, key).await,
        }
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub config: ServeConfig,
    direct: Direct,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), draftstore_gateway::cmd::exit::Exit>>>,
    /// The embedded store's folder, removed when the server is dropped.
    _data: Option<tempfile::TempDir>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A direct client of the same store (no gateway in between).
    pub fn storage(&self) -> &Direct {
        &self.direct
    }

    /// Whether the server runs against S3 (else the embedded store).
    pub fn is_s3(&self) -> bool {
        matches!(self.direct, Direct::S3(_))
    }

    /// Stops accepting, waits for the drain.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// Whether the suites run against S3 (`DRAFTSTORE_TEST_STORE=s3`) or the embedded store.
pub fn wants_s3() -> bool {
    match std::env::var("DRAFTSTORE_TEST_STORE").as_deref() {
        Ok("s3") => true,
        Ok("local") | Err(_) => false,
        Ok(other) => panic!("DRAFTSTORE_TEST_STORE must be local or s3, not {other}"),
    }
}

/// The server on the store `DRAFTSTORE_TEST_STORE` names, with `extra` settings. `None` (with a
/// printed reason) only for S3 when no S3 server is configured outside CI.
pub async fn start(extra: &[(&str, &str)]) -> Option<Running> {
    if wants_s3() {
        start_s3(extra).await
    } else {
        Some(start_local(extra).await)
    }
}

/// The hex SHA-256 of an API key, as `DRAFTSTORE_API_KEYS` lists it.
pub fn key_hash(key: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()))
}

/// [`start`] with API keys checked: `keys` is `DRAFTSTORE_API_KEYS` (`tenant hash [options]`
/// entries, `;`-separated; see [`key_hash`]).
pub async fn start_with_keys(keys: &str) -> Option<Running> {
    start(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", keys),
    ])
    .await
}

/// The server on the embedded store in a new temporary folder.
pub async fn start_local(extra: &[(&str, &str)]) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data = tempfile::tempdir().unwrap();
    // With TLS on, the store's URLs are https:// (plain http:// is refused then).
    let tls = extra.iter().any(|(k, _)| *k == "DRAFTSTORE_TLS_CERT_FILE");
    let public_url = format!("{}://{addr}", if tls { "https" } else { "http" });
    let data_dir = data.path().display().to_string();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("DRAFTSTORE_STORAGE", "local"),
        ("DRAFTSTORE_DATA_DIR", &data_dir),
        ("DRAFTSTORE_PUBLIC_URL", &public_url),
    ];
    pairs.extend_from_slice(extra);
    let config = ServeConfig::from_lookup(&|k| lookup(&pairs, k)).unwrap();
    let StorageChoice::Local(local) = &config.storage else {
        panic!("DRAFTSTORE_STORAGE=local")
    };
    let store = Arc::new(LocalStorage::open(local).unwrap());
    for bucket in [&config.buckets.main, &config.buckets.draft] {
        store.create_bucket(bucket).await.unwrap();
    }
    let endpoint = Endpoint::new(store.clone());
    let direct = Direct::Local(store.clone());
    spawn(store, Some(endpoint), listener, config, direct, Some(data))
}

/// The server on SeaweedFS with its own buckets; `None` (with a printed reason) when no S3
/// server is configured outside CI. For tests about S3 itself, whatever DRAFTSTORE_TEST_STORE says.
pub async fn start_s3(extra: &[(&str, &str)]) -> Option<Running> {
    let bucket = crate::s3::prefix("gw");
    // Against S3, `serve` wants the choice of authentication made explicitly.
    let mut pairs: Vec<(&str, &str)> = vec![("BUCKET_NAME", &bucket), ("DRAFTSTORE_AUTH", "none")];
    pairs.extend_from_slice(extra);
    let env = crate::s3::env(&pairs)?;
    let config = ServeConfig::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let StorageChoice::S3(s3) = &config.storage else {
        panic!("the S3 harness runs against S3")
    };
    let storage = Arc::new(S3Storage::new((**s3).clone()).unwrap());
    // As `gateway serve` does at start (DRAFTSTORE_CREATE_BUCKETS, default true), and as
    // start_local does: without it only the draft bucket exists (SeaweedFS makes a bucket on
    // the first PUT into it) and a confirm's CopyObject into the missing main bucket is
    // answered 500 InternalError by SeaweedFS, not 404 NoSuchBucket (README, SeaweedFS notes).
    // A refusal (tests with wrong credentials) is left to the test, as serve leaves it to /ready.
    if config.create_buckets {
        for bucket in [&config.buckets.main, &config.buckets.draft] {
            if let Err(e) = storage.create_bucket(bucket).await {
                eprintln!("harness: cannot create {bucket}: {e}");
            }
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let direct = Direct::S3(Box::new(crate::s3::storage(&env)));
    Some(spawn(storage, None, listener, config, direct, None))
}

/// The last value `pairs` gives `key` (later pairs override earlier ones).
fn lookup(pairs: &[(&str, &str)], key: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| (*v).to_owned())
}

fn spawn<B: Storage + draftstore_gateway::store::Presign + 'static>(
    storage: Arc<B>,
    endpoint: Option<Endpoint>,
    listener: tokio::net::TcpListener,
    config: ServeConfig,
    direct: Direct,
    data: Option<tempfile::TempDir>,
) -> Running {
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = config.clone();
    let task = tokio::spawn(async move {
        serve_with(
            storage,
            endpoint,
            vec![listener],
            &served,
            async {
                let _ = stopped.await;
            },
            std::future::pending(),
        )
        .await
    });
    Running {
        addr,
        config,
        direct,
        stop: Some(stop),
        task: Some(task),
        _data: data,
    }
}

pub fn http1() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().unwrap()
}

/// A plain PUT of `body` to a presigned URL, as a client holding only the URL sends it: the
/// HTTP status.
pub async fn put_to(url: &str, body: impl Into<reqwest::Body>) -> u16 {
    status_of(reqwest::Client::new().put(url).body(body)).await
}

/// A plain GET of a presigned URL: the bytes it answers.
pub async fn fetch(url: &str) -> Vec<u8> {
    reqwest::get(url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// Sends `request` and returns its HTTP status.
pub async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

/// Sends `request` and returns its body as text, whatever its status: e.g. a `/metrics` scrape.
pub async fn text_of(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

pub fn h2c() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// A raw HTTP/2 client over `tcp` whose stream and connection windows are `window` bytes
/// (reopened only by releasing capacity), ready to send; with the task driving its connection
/// (abort it to close the connection).
pub async fn h2_windowed(
    tcp: tokio::net::TcpStream,
    window: u32,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<()>,
) {
    h2_with_windows(tcp, window, window).await
}

/// A raw HTTP/2 client over `io` (a TCP stream, or a wrapper pacing its reads) whose initial
/// stream window is `stream` bytes and connection window `connection` bytes (reopened only by
/// releasing capacity), ready to send; with the task driving its connection (abort it to close
/// the connection).
pub async fn h2_with_windows<T>(
    io: T,
    stream: u32,
    connection: u32,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<()>,
)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, driver) = h2::client::Builder::new()
        .initial_window_size(stream)
        .initial_connection_window_size(connection)
        .handshake::<_, bytes::Bytes>(io)
        .await
        .unwrap();
    let driving = tokio::spawn(async move {
        let _ = driver.await;
    });
    (client.ready().await.unwrap(), driving)
}

/// Sends `request`, with no body, on a clone of `client` once it has room for a stream: the
/// answer's head, its body still to be read (`into_body`). `client` keeps the connection.
pub async fn h2_send(
    client: &h2::client::SendRequest<bytes::Bytes>,
    request: http::Request<()>,
) -> http::Response<h2::RecvStream> {
    let mut ready = client.clone().ready().await.unwrap();
    let (response, _) = ready.send_request(request, true).unwrap();
    response.await.unwrap()
}

/// Sends on `client`, to `uri` (a `part-urls` URL), a call for 1000 parts of `upload` (an answer
/// of about 468 KB, over one frame), its body whole; returns its response and its send stream.
pub fn send_part_urls(
    client: &mut h2::client::SendRequest<bytes::Bytes>,
    uri: &str,
    upload: &serde_json::Value,
) -> (h2::client::ResponseFuture, h2::SendStream<bytes::Bytes>) {
    let request = http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(
        serde_json::to_vec(&part_urls_call(upload)).unwrap().into(),
        true,
    )
    .unwrap();
    (response, send)
}

/// The JSON body of a `part-urls` call for parts 1 to 1000 of `upload` (a `create_multipart`
/// answer): an answer of about 468 KB, the big answer the stall and budget tests ask for.
pub fn part_urls_call(upload: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "object_name": upload["object_name"],
        "upload_id": upload["upload_id"],
        "part_numbers": (1..=1000).collect::<Vec<u32>>(),
    })
}

/// Starts the child `spawn(port)` makes on a port just found free and waits (up to `within`)
/// until it accepts connections; returns it with its port. A port found by binding 0 and
/// letting go can be taken by another test before the child binds it: a child that then exits
/// 69 ("cannot listen") is started again on another port, and a connection counts only while
/// the child still runs, so a test never talks to another test's server.
pub fn spawn_on_free_port(
    mut spawn: impl FnMut(u16) -> std::process::Child,
    within: std::time::Duration,
) -> (std::process::Child, u16) {
    use std::time::{Duration, Instant};
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = spawn(port);
        let started = Instant::now();
        let taken = loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert_eq!(
                    status.code(),
                    Some(69),
                    "the child exited at start: {status}"
                );
                break true;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Someone accepted: it must be ours, still running.
                std::thread::sleep(Duration::from_millis(50));
                match child.try_wait().unwrap() {
                    None => return (child, port),
                    Some(status) => {
                        assert_eq!(
                            status.code(),
                            Some(69),
                            "the child exited at start: {status}"
                        );
                        break true;
                    }
                }
            }
            assert!(
                started.elapsed() < within,
                "the child did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(taken);
    }
    panic!("no free port held long enough for the child to bind it, 5 times in a row");
}

/// A plain HTTP/2 client (h2c with prior knowledge, the `h2` crate) connected to `server`,
/// its connection driven in the background, ready for its first request.
pub async fn h2_client(server: &Running) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    client.ready().await.unwrap()
}

/// Creates a multipart upload of `mp.bin` by POSTing to `url` (a gateway's
/// `/api/v1/multipart-upload`, no authentication) and returns its JSON answer (`upload_id`,
/// `object_name`, …): the setup of the tests that ask for big `part-urls` answers.
pub async fn create_multipart(url: &str) -> serde_json::Value {
    post_json(url, &serde_json::json!({"object_name": "mp.bin"}))
        .await
        .1
}

/// POSTs `body` as JSON to `url` (a plain client, no authentication): the answer's status and
/// its body parsed as JSON (a panic when it is not JSON).
pub async fn post_json(
    url: &str,
    body: &serde_json::Value,
) -> (reqwest::StatusCode, serde_json::Value) {
    json_answer(reqwest::Client::new().post(url).json(body)).await
}

/// Sends `request`: its answer's status and its body parsed as JSON (a panic when it is not
/// JSON). For a call that needs its own client, e.g. from a given peer address.
pub async fn json_answer(
    request: reqwest::RequestBuilder,
) -> (reqwest::StatusCode, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// A TCP connection to `addr` from the loopback address `source` (e.g. `[127, 0, 0, 2]`), so
/// that a test's attacker and victim are different peers to the gateway's per-peer rules.
pub async fn connect_from(addr: std::net::SocketAddr, source: [u8; 4]) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .unwrap();
    socket.connect(addr).await.unwrap()
}
