//! `gateway serve`: load the configuration (flags over environment), build the storage, bind
//! the ports, serve until SIGTERM or SIGINT (SIGHUP is logged and survived), then drain: exit
//! 0 when every request finished, [`crate::exit::DRAIN_CUT`] (75) when the grace period or a
//! second SIGTERM/SIGINT cut requests off.

use crate::api::companion::UploadTokens;
use crate::auth::{AuthConfig, Authenticator};
use crate::cmd::cli::ServeArgs;
use crate::cmd::exit::Exit;
use crate::config::{ServeConfig, StorageChoice};
use crate::http::server::Server;
use crate::http::tls::Tls;
use crate::store::local::{self, LocalStorage};
use crate::store::s3::S3Storage;
use crate::store::Presign;
use draftstore_core::Storage;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Time to find credentials through the AWS chain at start.
pub const CREDENTIALS_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The environment with the flags given on the command line layered on top.
///
/// # Errors
/// One line naming the bad variable (exit 64).
pub fn config(args: &ServeArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<ServeConfig, Exit> {
    let overrides = args.overrides();
    let lookup = super::layered(&overrides, env);
    ServeConfig::from_lookup(&lookup).map_err(|e| Exit::usage(e.to_string()))
}

/// # Errors
/// Bad configuration (64); a port that cannot be bound (69).
pub fn run(args: &ServeArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<(), Exit> {
    let config = config(args, env)?;
    let overrides = args.overrides();
    super::init_tracing(config.log_json, &super::layered(&overrides, env))?;
    crate::store::s3::chain::keep_sts_off_the_s3_endpoint();
    // One crypto provider for the whole process (ring): whatever builds a rustls config
    // without naming one gets it. Already installed is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::unavailable(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServeConfig) -> Result<(), Exit> {
    let signals = Signals::listen();
    match &config.storage {
        StorageChoice::S3(s3) => {
            let storage = S3Storage::connect((**s3).clone(), CREDENTIALS_BUDGET)
                .await
                .map_err(|e| Exit::usage(format!("{e}{}", s3_chosen(&config))))?;
            tracing::info!(endpoint = %s3.endpoint.authority(), "storage: S3");
            let storage = Arc::new(storage);
            // In the background: the port answers /health meanwhile, and an S3 that comes up
            // after the gateway still gets its buckets; then the draft bucket's versioning is logged.
            let background = storage.clone();
            let buckets = config.buckets.clone();
            let create = config.create_buckets;
            tokio::spawn(async move {
                if create {
                    create_buckets(background.as_ref(), &buckets, true).await;
                }
                log_draft_versioning(background.as_ref(), &buckets.draft).await;
            });
            let listeners = listen(&config).await?;
            serve_with(
                storage,
                None,
                listeners,
                &config,
                signals.count(1),
                signals.count(2),
            )
            .await
        }
        StorageChoice::Local(local) => {
            let storage = LocalStorage::open(local).map_err(Exit::unavailable)?;
            eprintln!(
                "gateway: no S3 configured: using the embedded local store in {} (not for production: one process, one disk; set AWS_* for S3)",
                local.data_dir.display()
            );
            if config.create_buckets {
                // A folder: one pass, before serving (nothing to wait for).
                create_buckets(&storage, &config.buckets, false).await;
            }
            let storage = Arc::new(storage);
            if config.events.webhooks() {
                announce_uploads(&storage, config.buckets.draft.clone());
            }
            let endpoint = local::Endpoint::new(storage.clone());
            let listeners = listen(&config).await?;
            serve_with(
                storage,
                Some(endpoint),
                listeners,
                &config,
                signals.count(1),
                signals.count(2),
            )
            .await
        }
    }
}

/// Webhooks on the embedded store: each upload into the draft bucket queues `draft.uploaded`.
fn announce_uploads(storage: &Arc<LocalStorage>, draft: draftstore_core::BucketName) {
    let store = Arc::downgrade(storage);
    storage.on_upload(Box::new(move |upload| {
        let (Some(store), draft) = (store.upgrade(), draft.clone()) else {
            return;
        };
        tokio::spawn(async move {
            crate::events::emit::uploaded(store.as_ref(), &draft, upload).await;
        });
    }));
}

/// Creates the buckets that are missing (`DRAFTSTORE_CREATE_BUCKETS`): idempotent, so every
/// replica may do it. With `retry`, storage that does not answer is tried again (1 s doubling
/// to 60 s) until both exist; a refusal (credentials, a name owned by someone else) is logged
/// once and left to `/ready`, which names the missing bucket.
async fn create_buckets<S: Storage>(storage: &S, buckets: &draftstore_core::Buckets, retry: bool) {
    use draftstore_core::StorageError;
    let mut pending = vec![&buckets.main, &buckets.draft];
    let mut pause = std::time::Duration::from_secs(1);
    loop {
        let mut failed = Vec::new();
        for bucket in pending {
            match storage.create_bucket(bucket).await {
                Ok(()) => tracing::info!(bucket = %bucket, "bucket ready"),
                Err(e @ StorageError::Unavailable { .. }) if retry => {
                    tracing::warn!(bucket = %bucket, error = %e, "cannot create the bucket yet; trying again");
                    failed.push(bucket);
                }
                Err(e) => {
                    tracing::error!(bucket = %bucket, error = %e, "cannot create the bucket: /ready reports it missing until it exists")
                }
            }
        }
        if failed.is_empty() {
            return;
        }
        pending = failed;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(60));
    }
}

/// Logs once which confirm the draft bucket allows (README, "How a draft becomes an object"):
/// versioned, confirm copies and deletes exactly the version it looked at (sweep's deletes
/// then leave noncurrent versions and delete markers: a lifecycle rule removes them);
/// unversioned or suspended, a re-upload racing a confirm can reach main with the old type and
/// metadata, or (the same bytes, within one round trip of confirm's last look) be deleted. A missing bucket or a slow store (3 s) logs that it cannot tell.
async fn log_draft_versioning<B: Presign>(storage: &B, draft: &draftstore_core::BucketName) {
    let versioning =
        tokio::time::timeout(std::time::Duration::from_secs(3), storage.versioning(draft)).await;
    match versioning.as_deref() {
        Ok("Enabled") => {
            tracing::info!(bucket = %draft, versioning = %"Enabled", "the draft bucket is versioned: confirm copies and deletes exactly the version it looked at (the gateway needs s3:GetObjectVersion, s3:ListBucketVersions and s3:DeleteObjectVersion); sweep's deletes leave noncurrent versions and delete markers, so give it a lifecycle rule that expires them (see README)")
        }
        Ok(status @ ("Disabled" | "Suspended")) => {
            tracing::warn!(bucket = %draft, versioning = %status, "the draft bucket is not versioned: a re-upload racing a confirm can reach main with the old type and metadata (a re-upload before the copy) or be deleted by that confirm (the same bytes, within one round trip of its last look); enable versioning on the draft bucket to close both (see README)")
        }
        Ok(status) => {
            tracing::warn!(bucket = %draft, versioning = %status, "cannot read the draft bucket's versioning: if it is not versioned, a re-upload racing a confirm can reach main with the old type and metadata or be deleted by that confirm (see README)")
        }
        Err(_) => {
            tracing::warn!(bucket = %draft, "the draft bucket's versioning did not answer within 3 s: if it is not versioned, a re-upload racing a confirm can reach main with the old type and metadata or be deleted by that confirm (see README)")
        }
    }
}

/// The configured port(s), bound.
async fn listen(config: &ServeConfig) -> Result<Vec<TcpListener>, Exit> {
    let mut listeners = vec![bind(config.bind, config.http_port).await?];
    if let Some(port) = config.grpc_port {
        listeners.push(bind(config.bind, port).await?);
    }
    Ok(listeners)
}

/// The whole service on `storage` (with the embedded store's `endpoint` mounted when given):
/// the API, authentication, CORS and limits from `config`, served on `listeners` until
/// `shutdown` completes, then drained for up to the grace period or until `abort` completes
/// (a second signal). `gateway serve` and the tests build it here.
///
/// # Errors
/// Bad authentication settings (64); the server failing (69); requests cut off by the drain
/// ([`crate::cmd::exit::DRAIN_CUT`], 75).
pub async fn serve_with<B: Storage + Presign + 'static>(
    storage: Arc<B>,
    endpoint: Option<local::Endpoint>,
    listeners: Vec<TcpListener>,
    config: &ServeConfig,
    shutdown: impl Future<Output = ()>,
    abort: impl Future<Output = ()>,
) -> Result<(), Exit> {
    let auth = authenticator(config)?;
    let tls = match &config.tls {
        None => None,
        Some(files) => Some(Tls::load(files).map_err(Exit::usage)?),
    };
    let addresses: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    let scheme = if tls.is_some() { "TLS" } else { "plaintext" };
    tracing::info!(addresses = ?addresses, main = %config.buckets.main, draft = %config.buckets.draft, scheme, "serving REST and gRPC");

    let drained = Server::new(storage, endpoint, config, auth)
        .with_tls(tls)
        .run(listeners, shutdown, abort)
        .await
        .map_err(|e| Exit::unavailable(format!("server failed: {e}")))?;
    if drained.cut_off() {
        return Err(Exit {
            code: crate::cmd::exit::DRAIN_CUT,
            message: format!(
                "the drain cut off {} request(s) still in flight and {} connection(s) still \
                 answering",
                drained.cut, drained.connections
            ),
        });
    }
    Ok(())
}

/// The configured authentication. Unset, it is `none` on the embedded store (with a warning)
/// and an error against S3: opening real storage to anyone must be a choice.
fn authenticator(config: &ServeConfig) -> Result<Authenticator, Exit> {
    let auth = match (&config.auth, &config.storage) {
        (Some(auth), _) => auth.clone(),
        (None, StorageChoice::Local(_)) => AuthConfig::None,
        (None, StorageChoice::S3(_)) => {
            return Err(Exit::usage(format!(
                "against S3, choose who may call: DRAFTSTORE_AUTH=api-keys (with DRAFTSTORE_API_KEYS_FILE or DRAFTSTORE_API_KEYS), or DRAFTSTORE_AUTH=none to let anyone in{}",
                s3_chosen(config)
            )))
        }
    };
    if auth == AuthConfig::None {
        tracing::warn!("authentication is off (DRAFTSTORE_AUTH=none): anyone who reaches this port can mint upload and download URLs");
    }
    let auth = Authenticator::new(auth)
        .map(|a| {
            a.with_public_paths(config.public_paths.clone())
                .with_public_grpc_discovery(config.public_grpc_discovery)
        })
        .map_err(|e| Exit::usage(format!("DRAFTSTORE_AUTH: {e}")))?
        .with_upload_tokens(upload_tokens(config)?);
    let Some(redis) = &config.rate_limit_redis else {
        return Ok(auth);
    };
    if !auth.has_limits() {
        tracing::warn!("DRAFTSTORE_RATE_LIMIT_REDIS_URL is set but only API-key tenants have rate limits (DRAFTSTORE_AUTH=api-keys): Redis is not used");
        return Ok(auth);
    }
    let shared = crate::auth::RedisLimiter::start(redis).map_err(Exit::usage)?;
    tracing::info!(timeout_ms = redis.timeout.as_millis(), on_error = ?redis.on_error, "rate limits: counted in Redis, shared by every replica");
    auth.with_shared_limits(shared)
        .map_err(|e| Exit::usage(format!("DRAFTSTORE_AUTH: {e}")))
}

/// The upload tokens' key: `DRAFTSTORE_UPLOAD_TOKEN_SECRET`, else on the embedded store (one
/// process per data folder) a random key of this process; against S3 without the secret,
/// tokens are off (replicas must share the key).
fn upload_tokens(config: &ServeConfig) -> Result<Option<UploadTokens>, Exit> {
    let ttl = u64::from(config.upload_ttl.secs());
    let mut tokens = match (&config.upload_token_secret, &config.storage) {
        (Some(secret), _) => UploadTokens::new(secret.bytes(), ttl),
        (None, StorageChoice::Local(_)) => UploadTokens::random(ttl),
        (None, StorageChoice::S3(_)) => return Ok(None),
    }
    .map_err(Exit::usage)?;
    let base = match &config.storage {
        StorageChoice::Local(local) => Some(local.public_url.clone()),
        StorageChoice::S3(_) => None,
    };
    tokens.base = base;
    tokens.https = config.tls.is_some();
    Ok(Some(tokens))
}

/// Why S3 is in use, for an error about it: S3 may have been chosen by a variable set for
/// another reason (`BUCKET_NAME`), and the embedded store is one variable away.
fn s3_chosen(config: &ServeConfig) -> String {
    match config.storage_chosen_by {
        Some(name) if name != crate::config::name::DRAFTSTORE_STORAGE => format!(
            " (S3 is used because {name} is set; DRAFTSTORE_STORAGE=local keeps the embedded \
             store)"
        ),
        _ => String::new(),
    }
}

async fn bind(ip: std::net::IpAddr, port: u16) -> Result<TcpListener, Exit> {
    let address = SocketAddr::new(ip, port);
    TcpListener::bind(address)
        .await
        .map_err(|e| Exit::unavailable(format!("cannot listen on {address}: {e}")))
}

/// The stop signals received so far: SIGTERM (Kubernetes) and SIGINT (Ctrl-C) count; SIGHUP
/// is logged and otherwise ignored (nothing is reloaded by it yet), never fatal.
#[derive(Clone)]
pub struct Signals(tokio::sync::watch::Receiver<u32>);

impl Signals {
    /// Starts listening (on the current runtime).
    #[must_use]
    pub fn listen() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(0);
        tokio::spawn(async move {
            let Ok(mut listening) = Listening::new() else {
                // No signal handling (not Unix, or no handler could be set): Ctrl-C only.
                while tokio::signal::ctrl_c().await.is_ok() {
                    tx.send_modify(|n| *n += 1);
                }
                return;
            };
            loop {
                let stop = listening.next().await;
                if stop {
                    tx.send_modify(|n| *n += 1);
                }
            }
        });
        Self(rx)
    }

    /// Completes once `n` stop signals have come: 1 starts the drain, 2 ends it.
    pub fn count(&self, n: u32) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            if rx.wait_for(|seen| *seen >= n).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(unix)]
struct Listening {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Listening {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal: `true` for a stop signal.
    async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.terminate.recv() => {
                tracing::info!("SIGTERM received");
                true
            }
            _ = self.interrupt.recv() => {
                tracing::info!("SIGINT received");
                true
            }
            _ = self.hangup.recv() => {
                tracing::info!("SIGHUP received: nothing to reload, still serving");
                false
            }
        }
    }
}

#[cfg(not(unix))]
struct Listening;

#[cfg(not(unix))]
impl Listening {
    fn new() -> std::io::Result<Self> {
        Err(std::io::Error::other("no Unix signals"))
    }

    async fn next(&mut self) -> bool {
        std::future::pending().await
    }
}
