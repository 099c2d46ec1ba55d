//! Starts the real server in-process on 127.0.0.1:0 against SeaweedFS, with its own buckets.

use draftstore_gateway::config::ServeConfig;
use draftstore_gateway::s3::S3Storage;
use draftstore_gateway::server::Server;
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::sync::oneshot;

pub struct Running {
    pub addr: SocketAddr,
    pub config: ServeConfig,
    /// The test server's settings, for a direct S3 client.
    pub env: HashMap<String, String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A direct S3 client on the same server (no gateway in between).
    pub fn storage(&self) -> S3Storage {
        crate::s3::storage(&self.env)
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

/// `None` (with a printed reason) when no S3 server is configured outside CI.
pub async fn start(extra: &[(&str, &str)]) -> Option<Running> {
    let bucket = crate::s3::prefix("gw");
    let mut pairs: Vec<(&str, &str)> = vec![("BUCKET_NAME", &bucket)];
    pairs.extend_from_slice(extra);
    let env = crate::s3::env(&pairs)?;
    let config = ServeConfig::from_lookup(&|k| env.get(k).cloned()).unwrap();
    let draftstore_gateway::config::StorageChoice::S3(s3) = &config.storage else {
        panic!("the harness runs against S3")
    };
    let storage = S3Storage::new((**s3).clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let auth = draftstore_gateway::auth::Authenticator::new(
        config
            .auth
            .clone()
            .unwrap_or(draftstore_gateway::auth::AuthConfig::None),
    )
    .unwrap()
    .with_public_paths(config.public_paths.clone());
    let server = Server::new(storage, &config, auth);
    let task = tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        server
            .run(vec![listener], stopped, std::future::pending())
            .await
            .map(|_| ())
    });
    Some(Running {
        addr,
        config,
        env,
        stop: Some(stop),
        task: Some(task),
    })
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

pub fn h2c() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}
