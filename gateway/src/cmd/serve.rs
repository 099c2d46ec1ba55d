//! `gateway serve`: load the configuration (flags over environment), build the storage, bind
//! the ports, serve until SIGTERM or SIGINT, then drain and exit 0.

use crate::api::app::App;
use crate::auth::{AuthConfig, Authenticator};
use crate::cmd::cli::ServeArgs;
use crate::cmd::exit::Exit;
use crate::config::{ServeConfig, StorageChoice};
use crate::store::local::{self, LocalStorage};
use crate::store::s3::S3Storage;
use crate::store::Presign;
use draftstore_core::Storage;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

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
    super::init_tracing(config.log_json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::unavailable(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServeConfig) -> Result<(), Exit> {
    match &config.storage {
        StorageChoice::S3(s3) => {
            let storage = S3Storage::new((**s3).clone()).map_err(|e| Exit::usage(e.to_string()))?;
            tracing::info!(endpoint = %s3.endpoint.authority(), "storage: S3");
            if config.create_buckets {
                // In the background, on its own client: the port answers /health meanwhile,
                // and an S3 that comes up after the gateway still gets its buckets.
                let creator =
                    S3Storage::new((**s3).clone()).map_err(|e| Exit::usage(e.to_string()))?;
                let buckets = config.buckets.clone();
                tokio::spawn(async move { create_buckets(&creator, &buckets, true).await });
            }
            let listeners = listen(&config).await?;
            serve_with(
                Arc::new(storage),
                None,
                listeners,
                &config,
                shutdown_signal(),
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
            let endpoint = local::Endpoint::new(storage.clone());
            let listeners = listen(&config).await?;
            serve_with(
                storage,
                Some(endpoint),
                listeners,
                &config,
                shutdown_signal(),
            )
            .await
        }
    }
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
/// `shutdown` completes, then drained. `gateway serve` and the tests build it here.
///
/// # Errors
/// Bad authentication settings (64); the server failing (69).
pub async fn serve_with<B: Storage + Presign + 'static>(
    storage: Arc<B>,
    endpoint: Option<local::Endpoint>,
    listeners: Vec<TcpListener>,
    config: &ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Exit> {
    let auth = authenticator(config)?;
    let addresses: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    tracing::info!(addresses = ?addresses, main = %config.buckets.main, draft = %config.buckets.draft, "serving REST and gRPC");
    let app = App {
        store: storage,
        buckets: config.buckets.clone(),
        upload_ttl: config.upload_ttl,
        download_ttl: config.download_ttl,
    };
    crate::http::server::run(
        listeners,
        app,
        endpoint,
        auth,
        config.cors.clone(),
        config.limits,
        config.shutdown_grace,
        shutdown,
    )
    .await
    .map_err(|e| Exit::unavailable(format!("server failed: {e}")))
}

/// The configured authentication. Unset, it is `none` on the embedded store (with a warning)
/// and an error against S3: opening real storage to anyone must be a choice.
fn authenticator(config: &ServeConfig) -> Result<Authenticator, Exit> {
    let auth = match (&config.auth, &config.storage) {
        (Some(auth), _) => auth.clone(),
        (None, StorageChoice::Local(_)) => AuthConfig::None,
        (None, StorageChoice::S3(_)) => {
            return Err(Exit::usage(
                "against S3, choose who may call: DRAFTSTORE_AUTH=api-keys (with DRAFTSTORE_API_KEYS_FILE or DRAFTSTORE_API_KEYS), or DRAFTSTORE_AUTH=none to let anyone in",
            ))
        }
    };
    if auth == AuthConfig::None {
        tracing::warn!("authentication is off (DRAFTSTORE_AUTH=none): anyone who reaches this port can mint upload and download URLs");
    }
    let auth = Authenticator::new(auth)
        .map(|a| a.with_public_paths(config.public_paths.clone()))
        .map_err(|e| Exit::usage(format!("DRAFTSTORE_AUTH: {e}")))?;
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

async fn bind(ip: std::net::IpAddr, port: u16) -> Result<TcpListener, Exit> {
    let address = SocketAddr::new(ip, port);
    TcpListener::bind(address)
        .await
        .map_err(|e| Exit::unavailable(format!("cannot listen on {address}: {e}")))
}

/// Completes on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
