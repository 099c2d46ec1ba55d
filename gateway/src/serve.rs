//! `gateway serve`: load the configuration (flags over environment), build the storage, bind
//! the ports, serve until SIGTERM or SIGINT, then drain and exit 0.

use crate::app::App;
use crate::auth::{AuthConfig, Authenticator};
use crate::backend::Backend;
use crate::cli::ServeArgs;
use crate::config::{ServeConfig, StorageChoice};
use crate::exit::Exit;
use crate::local::LocalStorage;
use crate::s3::S3Storage;
use draftstore_core::Storage;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Time to find credentials through the AWS chain at start.
pub const CREDENTIALS_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The environment with the flags given on the command line layered on top.
///
/// # Errors
/// One line naming the bad variable (exit 64).
pub fn config(args: &ServeArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<ServeConfig, Exit> {
    let overrides = args.overrides();
    let lookup = |k: &str| {
        overrides
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
            .or_else(|| env(k))
    };
    ServeConfig::from_lookup(&lookup).map_err(|e| Exit::usage(e.to_string()))
}

/// # Errors
/// Bad configuration (64); a port that cannot be bound (69).
pub fn run(args: &ServeArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<(), Exit> {
    let config = config(args, env)?;
    init_tracing(config.log_json);
    crate::s3::chain::keep_sts_off_the_s3_endpoint();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::unavailable(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServeConfig) -> Result<(), Exit> {
    match &config.storage {
        StorageChoice::S3(s3) => {
            let storage = S3Storage::connect((**s3).clone(), CREDENTIALS_BUDGET)
                .await
                .map_err(|e| Exit::usage(e.to_string()))?;
            tracing::info!(endpoint = %s3.endpoint.authority(), "storage: S3");
            serve_with(storage, &config).await
        }
        StorageChoice::Local(local) => {
            let storage = LocalStorage::open(local).map_err(Exit::unavailable)?;
            eprintln!(
                "gateway: no S3 configured: using the embedded local store in {} (not for production: one process, one disk; set AWS_* for S3)",
                local.data_dir.display()
            );
            for bucket in [&config.buckets.main, &config.buckets.draft] {
                storage.create_bucket(bucket).await.map_err(|e| {
                    Exit::unavailable(format!("cannot create the local buckets: {e}"))
                })?;
            }
            serve_with(storage, &config).await
        }
    }
}

async fn serve_with<B: Backend>(storage: B, config: &ServeConfig) -> Result<(), Exit> {
    let auth = authenticator(config)?;
    let mut listeners = vec![bind(config.bind, config.http_port).await?];
    if let Some(port) = config.grpc_port {
        listeners.push(bind(config.bind, port).await?);
    }
    let addresses: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    tracing::info!(addresses = ?addresses, main = %config.buckets.main, draft = %config.buckets.draft, "serving REST and gRPC");
    let app = App {
        backend: storage,
        buckets: config.buckets.clone(),
        upload_ttl: config.upload_ttl,
        download_ttl: config.download_ttl,
    };
    // Warns when the draft bucket is versioned (a missing bucket or a slow store: no warning).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), app.draft_versioning()).await;
    crate::server::run(
        listeners,
        app,
        auth,
        config.cors.clone(),
        config.limits,
        config.shutdown_grace,
        shutdown_signal(),
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
    Authenticator::new(auth)
        .map(|a| a.with_public_paths(config.public_paths.clone()))
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

pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRAFTSTORE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
