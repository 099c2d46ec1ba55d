//! TLS on the one port (RFC 8446 / 5246 through rustls with the ring provider): ALPN offers
//! `h2` and `http/1.1` (RFC 7301), so REST, gRPC and the embedded store's URLs are served over
//! TLS exactly as they are over plaintext; hyper's auto builder still tells the two protocols
//! apart by the HTTP/2 preface.
//!
//! The certificate chain and key come from PEM files ([`TlsFiles`]). They are checked when
//! loaded (the key must match the leaf, the leaf must not have expired) and read again every
//! [`RELOAD_EVERY`] through their path as given, so a Kubernetes Secret, which rotates by
//! swapping a symlink, is followed: a changed pair that loads replaces the certificate for new
//! connections (open ones keep theirs); one that does not is logged and the previous one kept.
//!
//! Not done here: client certificates (no mutual TLS), OCSP stapling, SNI-based choice between
//! several certificates.

use crate::config::TlsFiles;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How often the PEM files are read again to notice a rotation.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The ALPN protocols offered, most preferred first: HTTP/2, then HTTP/1.1.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// TLS for every listener: the acceptor and the certificate it currently presents.
pub struct Tls {
    acceptor: TlsAcceptor,
    certs: Arc<Current>,
    files: TlsFiles,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

/// The certificate presented to new connections, replaced on reload.
struct Current {
    key: ArcSwap<CertifiedKey>,
    /// The file contents last looked at (loaded or refused), to act once per change.
    seen: Mutex<Contents>,
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of Debug.
        f.write_str("Current { .. }")
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key.load_full())
    }
}

/// The bytes of both files as last read.
#[derive(Default, PartialEq, Eq)]
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl Tls {
    /// Reads and checks `files`, and makes the acceptor (ring provider, TLS 1.2 and 1.3, ALPN
    /// [`ALPN`], no client certificates).
    ///
    /// # Errors
    /// One line naming the variable and file at fault: unreadable, no PEM certificate or key,
    /// a key that does not match the certificate, an expired certificate.
    pub fn load(files: &TlsFiles) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let contents = read(files)?;
        let key = certified(files, &contents, &provider, SystemTime::now())?;
        let certs = Arc::new(Current {
            key: ArcSwap::from_pointee(key),
            seen: Mutex::new(contents),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certs,
            files: files.clone(),
        })
    }

    /// The TLS handshake on `stream`, given `within` to finish (the header timeout: a client
    /// that never sends its ClientHello is dropped as a silent plaintext one is). `None` when
    /// it failed or took too long (logged at debug: a client's fault).
    pub async fn accept<S>(&self, stream: S, within: Duration) -> Option<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(within, self.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(
                    timeout_ms = within.as_millis() as u64,
                    "TLS handshake timed out"
                );
                None
            }
        }
    }

    /// Reads the files again and, when they changed, loads them: a pair that loads replaces
    /// the certificate for new connections; one that does not is logged once (at ERROR: an
    /// operator must act before the old certificate expires) and the old one kept. Returns
    /// whether the certificate was replaced.
    pub fn reload(&self) -> bool {
        let contents = match read(&self.files) {
            Ok(contents) => contents,
            Err(e) => {
                // A file missing for a moment (a swap in progress) is looked at again later.
                tracing::debug!(error = %e, "TLS files not readable now; keeping the current certificate");
                return false;
            }
        };
        let mut seen = self
            .certs
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *seen == contents {
            return false;
        }
        let provider = rustls::crypto::ring::default_provider();
        let result = certified(&self.files, &contents, &provider, SystemTime::now());
        *seen = contents;
        match result {
            Ok(key) => {
                self.certs.key.store(Arc::new(key));
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded: new connections get it");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS files changed but cannot be used: keeping the previous certificate");
                false
            }
        }
    }

    /// Reloads every [`RELOAD_EVERY`] until the task is dropped or aborted.
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let this = self.clone();
            // File reads block: off the runtime's worker threads.
            let _ = tokio::task::spawn_blocking(move || this.reload()).await;
        }
    }
}

fn read(files: &TlsFiles) -> Result<Contents, String> {
    let read = |var: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("{var} {}: cannot read: {e}", path.display()))
    };
    Ok(Contents {
        cert: read("DRAFTSTORE_TLS_CERT_FILE", &files.cert)?,
        key: read("DRAFTSTORE_TLS_KEY_FILE", &files.key)?,
    })
}

/// The chain and key in `contents`, checked at `now`.
fn certified(
    files: &TlsFiles,
    contents: &Contents,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<CertifiedKey, String> {
    let cert_file = format!("DRAFTSTORE_TLS_CERT_FILE {}", files.cert.display());
    let key_file = format!("DRAFTSTORE_TLS_KEY_FILE {}", files.key.display());
    let chain = CertificateDer::pem_slice_iter(&contents.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{cert_file}: not PEM certificates: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("{cert_file}: holds no PEM CERTIFICATE block"));
    };
    expiry(leaf, now).map_err(|e| format!("{cert_file}: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&contents.key)
        .map_err(|e| format!("{key_file}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{key_file}: unusable private key: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| format!("{key_file} does not match the certificate in {cert_file} ({e})"))?;
    Ok(certified)
}

/// Refuses a leaf certificate that has expired at `now` (every client would refuse it).
fn expiry(leaf: &CertificateDer<'_>, now: SystemTime) -> Result<(), String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(leaf)
        .map_err(|e| format!("the first certificate is not X.509 DER: {e}"))?;
    let not_after = cert.tbs_certificate.validity.not_after;
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    if not_after.to_unix_duration() < now {
        return Err(format!("the certificate expired at {not_after}"));
    }
    Ok(())
}
