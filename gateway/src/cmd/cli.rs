//! Command-line parsing. Every option takes both `--name value` and `--name=value`, so a key or
//! header value that starts with `-` can be given.

use crate::cmd::exit::Exit;
use crate::config::name;
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;

#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about = "DraftStore: two-stage uploads in front of S3"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `gateway`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the DraftStore API (REST and gRPC) on one port. Every flag overrides the
    /// environment variable named in its help.
    Serve(Box<ServeArgs>),
    /// Delete drafts older than OBJECT_LIFETIME from the draft bucket once, and abort stale
    /// multipart uploads there; never touches the main bucket. Exit 0 when all went, 1 when
    /// some deletes failed, 64 on bad configuration.
    Sweep(SweepArgs),
    /// Print a presigned S3 URL (like `aws s3 presign`). Credentials come from
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optional AWS_SESSION_TOKEN, else from the
    /// AWS credential chain (AWS_PROFILE, web identity, container credentials, IMDSv2); a TTL
    /// cut by their expiry is reported on stderr.
    Presign(PresignArgs),
    /// The webhook event queue: `list` what was never delivered, `replay` failed events (their
    /// retry schedule starts again), `deliver` once now. Reads the variables `serve` reads.
    Events(EventsArgs),
    /// Upload FILE through a DraftStore API, as a client (see `gateway upload --help`).
    #[command(long_about = UPLOAD_HELP)]
    Upload(UploadArgs),
}

/// `gateway events`'s action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsAction {
    /// One line per queued event (JSON with --json).
    List,
    /// Failed events (schedule used up, or all with --all) are tried again from the start.
    Replay,
    /// One delivery pass now.
    Deliver,
}

/// `gateway events`'s flags.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// What to do.
    #[arg(value_enum)]
    pub action: EventsAction,
    /// `list`: JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// `replay`: every queued event, not only failed ones.
    #[arg(long)]
    pub all: bool,
    /// `replay`: only this event id.
    #[arg(long)]
    pub id: Option<String>,
}

/// The long help of `gateway upload`: the size rule, the token, resuming and the exit codes.
const UPLOAD_HELP: &str = "Upload FILE through a DraftStore API, as any client would: ask the API \
for presigned URLs, send the bytes straight to storage, and confirm when asked.

Files smaller than --multipart-threshold (default 16 MiB, at least 5 MiB) go in one PUT; \
larger ones in parts of the server's part size (--part-size asks for one), sent --parallel \
at a time from the file (never read whole into memory), each retried with backoff on a fresh \
URL and, unless --no-checksum, checked by storage against its SHA-256.

An interrupted upload resumes: its state is kept in FILE.draftstore-upload (or --state-file) \
and removed when done; without it the upload is found again through the API's list of \
multipart uploads. Parts already stored (same size, same ETag when known) are not sent again.

The API endpoint is --endpoint, else DRAFTSTORE_ENDPOINT, else http://127.0.0.1:8080. The \
token (sent as `Authorization: Bearer`) is read from --token-file or DRAFTSTORE_TOKEN; there is \
no --token flag, since a flag's value shows in `ps`. It is never printed.

Exit status: 0 done; 1 the upload failed (a refused token, a part that kept failing, a \
rejected confirm; the state file is kept, run again to resume); 2 usage (bad flags, no such \
FILE); 64 bad configuration (endpoint, token file); 69 the API could not be reached.";

/// `gateway upload`'s flags.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The file to upload.
    pub file: std::path::PathBuf,
    /// Object name [default: FILE's name].
    #[arg(long, allow_hyphen_values = true)]
    pub name: Option<String>,
    /// Content-Type the object is stored with.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Confirm (move the draft into the main bucket) once uploaded.
    #[arg(long)]
    pub confirm: bool,
    /// With --confirm: replace a different object of that name in main.
    #[arg(long, requires = "confirm")]
    pub overwrite: bool,
    /// The DraftStore API [env: DRAFTSTORE_ENDPOINT, default http://127.0.0.1:8080].
    #[arg(long)]
    pub endpoint: Option<String>,
    /// A file holding the API token (one line) [else env: DRAFTSTORE_TOKEN].
    #[arg(long)]
    pub token_file: Option<std::path::PathBuf>,
    /// Parts sent at once, 1..=64.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Part size to ask the server for, in bytes (5 MiB..=5 GiB) [default: the server's].
    #[arg(long)]
    pub part_size: Option<u64>,
    /// Smallest file sent in parts, in bytes (at least 5 MiB).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub multipart_threshold: u64,
    /// Where to keep the resume state [default: FILE.draftstore-upload].
    #[arg(long)]
    pub state_file: Option<std::path::PathBuf>,
    /// Attempts per part (and per single PUT) after the first, each on a fresh URL.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,
    /// Send no SHA-256 per part (saves one read of the file; storage then checks only sizes).
    #[arg(long)]
    pub no_checksum: bool,
    /// Print one JSON object on stdout instead of a line.
    #[arg(long)]
    pub json: bool,
}

/// `gateway presign`'s flags.
#[derive(Debug, Args)]
pub struct PresignArgs {
    /// HTTP method: GET, PUT, HEAD, DELETE or POST.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// S3 endpoint, e.g. https://s3.amazonaws.com or http://127.0.0.1:9000.
    #[arg(long)]
    pub endpoint: String,
    /// Bucket name, used exactly as given.
    #[arg(long, allow_hyphen_values = true)]
    pub bucket: String,
    /// Object key, used exactly as given (encoded once, never normalized).
    #[arg(long, allow_hyphen_values = true)]
    pub key: String,
    /// Region of the credential scope [default: AWS_REGION, else us-east-1].
    #[arg(long)]
    pub region: Option<String>,
    /// Seconds the URL stays valid, 1..=604800.
    #[arg(long, default_value_t = 3600)]
    pub expires: u64,
    /// Signing time as YYYYMMDDTHHMMSSZ [default: now].
    #[arg(long)]
    pub time: Option<String>,
    /// Use virtual-hosted addressing (bucket.endpoint/key) instead of path-style.
    #[arg(long)]
    pub virtual_host: bool,
    /// A header the client will send, signed into the URL: 'name: value'. Repeatable.
    #[arg(long = "header", allow_hyphen_values = true)]
    pub headers: Vec<String>,
    /// An extra query parameter, signed into the URL: 'name=value'. Repeatable.
    #[arg(long = "query", allow_hyphen_values = true)]
    pub query: Vec<String>,
    /// Signing service name.
    #[arg(long, default_value = "s3")]
    pub service: String,
    /// Also print the canonical request and string to sign on stderr.
    #[arg(long)]
    pub explain: bool,
}

/// A flag value that `Debug` never shows: it may hold a secret (a key, or a Redis URL's
/// password).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Hidden(pub String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Hidden {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// `gateway serve`'s flags, each overriding the variable named in its help.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Port serving REST and gRPC [env: HTTP_PORT, default 8080].
    #[arg(long)]
    pub http_port: Option<String>,
    /// Another port serving the same [env: GRPC_PORT].
    #[arg(long)]
    pub grpc_port: Option<String>,
    /// Address to bind [env: DRAFTSTORE_BIND, default 0.0.0.0].
    #[arg(long)]
    pub bind: Option<String>,
    /// Main bucket [env: BUCKET_NAME, default main].
    #[arg(long)]
    pub bucket_name: Option<String>,
    /// Draft bucket [env: DRAFT_BUCKET, default <BUCKET_NAME>-draft].
    #[arg(long)]
    pub draft_bucket: Option<String>,
    /// Seconds an upload URL is valid [env: UPLOAD_TTL, default 3600, max 604800].
    #[arg(long)]
    pub upload_ttl: Option<String>,
    /// Seconds a download URL is valid [env: DOWNLOAD_TTL, default 3600, max 604800].
    #[arg(long)]
    pub download_ttl: Option<String>,
    /// Seconds a draft lives before sweep removes it [env: OBJECT_LIFETIME, default 86400].
    #[arg(long)]
    pub object_lifetime: Option<String>,
    /// Log JSON lines instead of text [env: DRAFTSTORE_LOG_JSON].
    #[arg(long)]
    pub log_json: bool,
    /// Log filter; info,draftstore_gateway::http::server=debug adds an access log
    /// [env: DRAFTSTORE_LOG, default info].
    #[arg(long)]
    pub log: Option<String>,
    /// Who may call: none, api-keys or jwt [env: DRAFTSTORE_AUTH; none on the embedded store,
    /// required against S3].
    #[arg(long)]
    pub auth: Option<String>,
    /// With --auth api-keys: a file of '<tenant> <sha256 hex of key> [limits]' lines, re-read
    /// when it changes [env: DRAFTSTORE_API_KEYS_FILE].
    #[arg(long)]
    pub api_keys_file: Option<String>,
    /// With --auth api-keys, instead of the file: '<tenant> <sha256 hex of key> [limits]'
    /// entries, separated by newlines or ';' [env: DRAFTSTORE_API_KEYS; prefer the variable: a
    /// secret here shows in ps].
    #[arg(long)]
    pub api_keys: Option<Hidden>,
    /// With --auth jwt: the HMAC key of HS256 tokens (or --jwt-public-key-file)
    /// [env: DRAFTSTORE_JWT_SECRET; prefer the variable: a secret here shows in ps].
    #[arg(long)]
    pub jwt_secret: Option<Hidden>,
    /// With --auth jwt: PEM public key of RS256, ES256 or EdDSA tokens (or --jwt-secret)
    /// [env: DRAFTSTORE_JWT_PUBLIC_KEY_FILE].
    #[arg(long)]
    pub jwt_public_key_file: Option<String>,
    /// With --auth jwt: the issuer (`iss`) tokens must name; required
    /// [env: DRAFTSTORE_JWT_ISSUER].
    #[arg(long)]
    pub jwt_issuer: Option<String>,
    /// With --auth jwt: the audience (`aud`) tokens must name; required
    /// [env: DRAFTSTORE_JWT_AUDIENCE].
    #[arg(long)]
    pub jwt_audience: Option<String>,
    /// With --auth jwt: the claim naming the tenant [env: DRAFTSTORE_JWT_TENANT_CLAIM, default
    /// tenant].
    #[arg(long)]
    pub jwt_tenant_claim: Option<String>,
    /// REST paths needing no credentials, comma-separated [env: DRAFTSTORE_PUBLIC_PATHS,
    /// default /health,/ready,/metrics,/openapi.json].
    #[arg(long)]
    pub public_paths: Option<String>,
    /// Origins allowed by CORS, comma-separated: `*` or scheme://host[:port]
    /// [env: DRAFTSTORE_CORS_ORIGINS, default none].
    #[arg(long)]
    pub cors_origins: Option<String>,
    /// local or s3 [env: DRAFTSTORE_STORAGE; default: local when no S3 variable is set].
    #[arg(long)]
    pub storage: Option<String>,
    /// The embedded store's folder [env: DRAFTSTORE_DATA_DIR, default ./draftstore-data].
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Base URL of the embedded store's presigned links [env: DRAFTSTORE_PUBLIC_URL].
    #[arg(long)]
    pub public_url: Option<String>,
    /// Signing key of the embedded store's presigned links [env: DRAFTSTORE_LOCAL_SECRET,
    /// default made at first start and kept in the data folder; prefer the variable: a secret
    /// here shows in ps].
    #[arg(long)]
    pub local_secret: Option<Hidden>,
    /// PEM certificate chain: turns on TLS (ALPN h2 and http/1.1) on every port, re-read when
    /// it changes [env: DRAFTSTORE_TLS_CERT_FILE].
    #[arg(long)]
    pub tls_cert_file: Option<String>,
    /// PEM private key of the certificate [env: DRAFTSTORE_TLS_KEY_FILE].
    #[arg(long)]
    pub tls_key_file: Option<String>,
    /// Create missing buckets at start: true or false [env: DRAFTSTORE_CREATE_BUCKETS,
    /// default true].
    #[arg(long)]
    pub create_buckets: Option<String>,
    /// The gRPC health check and server reflection need no credentials: true or false
    /// [env: DRAFTSTORE_PUBLIC_GRPC_DISCOVERY, default true].
    #[arg(long)]
    pub public_grpc_discovery: Option<String>,
    /// Serve the upload page at `/`: true or false [env: DRAFTSTORE_UI, default true on the
    /// embedded store, false against S3].
    #[arg(long)]
    pub ui: Option<String>,
    /// Milliseconds without a byte after which the embedded store cuts an upload
    /// [env: DRAFTSTORE_STORE_STALL_TIMEOUT_MS, default 20000].
    #[arg(long)]
    pub store_stall_timeout_ms: Option<String>,
    /// Largest object the embedded store accepts in one PUT, in bytes
    /// [env: DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES, default 5368709120].
    #[arg(long)]
    pub local_max_object_bytes: Option<String>,
    /// Count tenant rates in this Redis, shared by every replica: redis:// or rediss://
    /// [env: DRAFTSTORE_RATE_LIMIT_REDIS_URL; prefer the variable: a password here shows in ps].
    #[arg(long)]
    pub rate_limit_redis_url: Option<Hidden>,
    /// Longest wait for Redis per decision, in ms [env: DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS,
    /// default 20].
    #[arg(long)]
    pub rate_limit_timeout_ms: Option<String>,
    /// allow (count locally) or reject (429) while Redis does not answer
    /// [env: DRAFTSTORE_RATE_LIMIT_ON_ERROR, default allow].
    #[arg(long)]
    pub rate_limit_on_error: Option<String>,
    /// Put before the tenant in Redis keys [env: DRAFTSTORE_RATE_LIMIT_KEY_PREFIX, default
    /// draftstore:ratelimit:].
    #[arg(long)]
    pub rate_limit_key_prefix: Option<String>,
    /// The fewest replicas to share a tenant's rate with while counting alone (Redis away):
    /// each replica then refills at rate / max(counted, this); set it to the most replicas
    /// that may run [env: DRAFTSTORE_RATE_LIMIT_REPLICAS, default 1].
    #[arg(long)]
    pub rate_limit_replicas: Option<String>,
    /// Largest REST request body, in bytes, 1024..=1048576 (else 413)
    /// [env: DRAFTSTORE_MAX_BODY_BYTES, default 65536].
    #[arg(long)]
    pub max_body_bytes: Option<String>,
    /// Largest gRPC message, in bytes, 1024..=4194304 (else RESOURCE_EXHAUSTED)
    /// [env: DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES, default 65536].
    #[arg(long)]
    pub max_grpc_message_bytes: Option<String>,
    /// Time for one request, handler included, in ms, 100..=600000
    /// [env: DRAFTSTORE_REQUEST_TIMEOUT_MS, default 30000].
    #[arg(long)]
    pub request_timeout_ms: Option<String>,
    /// Time for a client to send its request head, in ms, 100..=120000
    /// [env: DRAFTSTORE_HEADER_TIMEOUT_MS, default 10000].
    #[arg(long)]
    pub header_timeout_ms: Option<String>,
    /// API requests handled at once, shared fairly between peers and tenants, 1..=1000000
    /// [env: DRAFTSTORE_MAX_IN_FLIGHT, default 4096].
    #[arg(long)]
    pub max_in_flight: Option<String>,
    /// HTTP/2 streams one connection may open at once, 1..=10000
    /// [env: DRAFTSTORE_MAX_CONCURRENT_STREAMS, default 100].
    #[arg(long)]
    pub max_concurrent_streams: Option<String>,
    /// Connections open at once; more wait in the kernel's backlog [env:
    /// DRAFTSTORE_MAX_CONNECTIONS, default 3/4 of the open-file limit].
    #[arg(long)]
    pub max_connections: Option<String>,
    /// Milliseconds without a request before a connection is closed (HTTP/2: GOAWAY, never
    /// while a stream is open); also the stall limit, within which a client must take some of
    /// its answer [env: DRAFTSTORE_IDLE_TIMEOUT_MS, default 60000].
    #[arg(long)]
    pub idle_timeout_ms: Option<String>,
    /// After SIGTERM, time for in-flight requests, in ms, 0..=600000
    /// [env: DRAFTSTORE_SHUTDOWN_GRACE_MS, default 20000].
    #[arg(long)]
    pub shutdown_grace_ms: Option<String>,
    /// Where presigned URLs send clients, when they reach S3 at another address
    /// [env: DRAFTSTORE_S3_PUBLIC_ENDPOINT, default the endpoint].
    #[arg(long)]
    pub s3_public_endpoint: Option<String>,
    /// Bucket addressing, path or virtual [env: DRAFTSTORE_S3_ADDRESSING, default path with
    /// a custom endpoint, virtual on AWS].
    #[arg(long)]
    pub s3_addressing: Option<String>,
    /// Time for one S3 attempt, in ms, 100..=3600000 [env: DRAFTSTORE_S3_TIMEOUT_MS, default
    /// 30000].
    #[arg(long)]
    pub s3_timeout_ms: Option<String>,
    /// Time to connect to S3, in ms, 50..=60000 [env: DRAFTSTORE_S3_CONNECT_TIMEOUT_MS,
    /// default 3000].
    #[arg(long)]
    pub s3_connect_timeout_ms: Option<String>,
    /// Attempts of a retryable S3 call, 1..=10 [env: DRAFTSTORE_S3_MAX_ATTEMPTS, default 4].
    #[arg(long)]
    pub s3_max_attempts: Option<String>,
    /// First backoff between S3 attempts (doubling, full jitter), in ms, 1..=10000
    /// [env: DRAFTSTORE_S3_BACKOFF_MS, default 100].
    #[arg(long)]
    pub s3_backoff_ms: Option<String>,
    /// Longest backoff between S3 attempts, in ms, 1..=60000, at least --s3-backoff-ms
    /// [env: DRAFTSTORE_S3_MAX_BACKOFF_MS, default 5000].
    #[arg(long)]
    pub s3_max_backoff_ms: Option<String>,
    /// Larger objects are copied into main in parts, in bytes, 5 MiB..=5 GiB
    /// [env: DRAFTSTORE_S3_MULTIPART_THRESHOLD, default 5368709120].
    #[arg(long)]
    pub s3_multipart_threshold: Option<String>,
    /// Bytes per part of such a copy, 5 MiB..=5 GiB [env: DRAFTSTORE_S3_PART_SIZE, default
    /// 268435456].
    #[arg(long)]
    pub s3_part_size: Option<String>,
    /// Parts copied at once, 1..=64 [env: DRAFTSTORE_S3_COPY_CONCURRENCY, default 8].
    #[arg(long)]
    pub s3_copy_concurrency: Option<String>,
    /// The store enforces If-None-Match/If-Match on copies and ETags in batch deletes: true
    /// or false [env: DRAFTSTORE_S3_CONDITIONAL_WRITES, default true].
    #[arg(long)]
    pub s3_conditional_writes: Option<String>,
    /// Server-side encryption of the objects, AES256 or aws:kms [env: DRAFTSTORE_S3_SSE].
    #[arg(long)]
    pub s3_sse: Option<String>,
    /// KMS key (id, ARN or alias) for aws:kms [env: DRAFTSTORE_S3_SSE_KMS_KEY_ID].
    #[arg(long)]
    pub s3_sse_kms_key_id: Option<String>,
    /// S3 Bucket Key for aws:kms, true or false [env: DRAFTSTORE_S3_SSE_BUCKET_KEY].
    #[arg(long)]
    pub s3_sse_bucket_key: Option<String>,
    /// Webhook endpoints, comma-separated; `#type+type` after a URL filters its events
    /// [env: DRAFTSTORE_WEBHOOK_URLS].
    #[arg(long)]
    pub webhook_urls: Option<String>,
    /// Signing secrets, whsec_…, space-separated for rotation [env: DRAFTSTORE_WEBHOOK_SECRET;
    /// prefer the variable: a secret here shows in ps].
    #[arg(long)]
    pub webhook_secret: Option<Hidden>,
    /// Key of upload tokens, 32+ bytes, the same on every replica [env:
    /// DRAFTSTORE_UPLOAD_TOKEN_SECRET; prefer the variable: a secret here shows in ps].
    #[arg(long)]
    pub upload_token_secret: Option<Hidden>,
    /// Waits before each delivery attempt, comma-separated ms
    /// [env: DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS, default
    /// 0,5000,300000,1800000,7200000,18000000,36000000,36000000].
    #[arg(long)]
    pub webhook_retry_schedule_ms: Option<String>,
    /// How often the queue is looked at, in ms [env: DRAFTSTORE_WEBHOOK_POLL_MS, default 5000].
    #[arg(long)]
    pub webhook_poll_ms: Option<String>,
    /// Where confirm POSTs its pre-confirm check [env: DRAFTSTORE_PRECONFIRM_URL].
    #[arg(long)]
    pub preconfirm_url: Option<String>,
    /// Longest wait for the check, in ms [env: DRAFTSTORE_PRECONFIRM_TIMEOUT_MS, default 5000].
    #[arg(long)]
    pub preconfirm_timeout_ms: Option<String>,
    /// reject (503) or allow when the check does not answer [env:
    /// DRAFTSTORE_PRECONFIRM_ON_ERROR, default reject].
    #[arg(long)]
    pub preconfirm_on_error: Option<String>,
}

impl ServeArgs {
    /// The flags given, as the environment variables they override.
    #[must_use]
    pub fn overrides(&self) -> Vec<(&'static str, String)> {
        let pairs = [
            (name::HTTP_PORT, &self.http_port),
            (name::GRPC_PORT, &self.grpc_port),
            (name::DRAFTSTORE_BIND, &self.bind),
            (name::BUCKET_NAME, &self.bucket_name),
            (name::DRAFT_BUCKET, &self.draft_bucket),
            (name::UPLOAD_TTL, &self.upload_ttl),
            (name::DOWNLOAD_TTL, &self.download_ttl),
            (name::OBJECT_LIFETIME, &self.object_lifetime),
            (name::DRAFTSTORE_STORAGE, &self.storage),
            (name::DRAFTSTORE_AUTH, &self.auth),
            (name::DRAFTSTORE_DATA_DIR, &self.data_dir),
            (name::DRAFTSTORE_PUBLIC_URL, &self.public_url),
            (name::DRAFTSTORE_CREATE_BUCKETS, &self.create_buckets),
            (name::DRAFTSTORE_UI, &self.ui),
            (name::DRAFTSTORE_TLS_CERT_FILE, &self.tls_cert_file),
            (name::DRAFTSTORE_TLS_KEY_FILE, &self.tls_key_file),
            (
                name::DRAFTSTORE_PUBLIC_GRPC_DISCOVERY,
                &self.public_grpc_discovery,
            ),
            (
                name::DRAFTSTORE_STORE_STALL_TIMEOUT_MS,
                &self.store_stall_timeout_ms,
            ),
            (
                name::DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES,
                &self.local_max_object_bytes,
            ),
            (
                name::DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS,
                &self.rate_limit_timeout_ms,
            ),
            (
                name::DRAFTSTORE_RATE_LIMIT_ON_ERROR,
                &self.rate_limit_on_error,
            ),
            (
                name::DRAFTSTORE_RATE_LIMIT_KEY_PREFIX,
                &self.rate_limit_key_prefix,
            ),
            (
                name::DRAFTSTORE_RATE_LIMIT_REPLICAS,
                &self.rate_limit_replicas,
            ),
            (name::DRAFTSTORE_MAX_CONNECTIONS, &self.max_connections),
            (name::DRAFTSTORE_IDLE_TIMEOUT_MS, &self.idle_timeout_ms),
            (name::DRAFTSTORE_LOG, &self.log),
            (name::DRAFTSTORE_API_KEYS_FILE, &self.api_keys_file),
            (
                name::DRAFTSTORE_JWT_PUBLIC_KEY_FILE,
                &self.jwt_public_key_file,
            ),
            (name::DRAFTSTORE_JWT_ISSUER, &self.jwt_issuer),
            (name::DRAFTSTORE_JWT_AUDIENCE, &self.jwt_audience),
            (name::DRAFTSTORE_JWT_TENANT_CLAIM, &self.jwt_tenant_claim),
            (name::DRAFTSTORE_PUBLIC_PATHS, &self.public_paths),
            (name::DRAFTSTORE_CORS_ORIGINS, &self.cors_origins),
            (name::DRAFTSTORE_MAX_BODY_BYTES, &self.max_body_bytes),
            (
                name::DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES,
                &self.max_grpc_message_bytes,
            ),
            (
                name::DRAFTSTORE_REQUEST_TIMEOUT_MS,
                &self.request_timeout_ms,
            ),
            (name::DRAFTSTORE_HEADER_TIMEOUT_MS, &self.header_timeout_ms),
            (name::DRAFTSTORE_MAX_IN_FLIGHT, &self.max_in_flight),
            (
                name::DRAFTSTORE_MAX_CONCURRENT_STREAMS,
                &self.max_concurrent_streams,
            ),
            (name::DRAFTSTORE_SHUTDOWN_GRACE_MS, &self.shutdown_grace_ms),
            (
                name::DRAFTSTORE_S3_PUBLIC_ENDPOINT,
                &self.s3_public_endpoint,
            ),
            (name::DRAFTSTORE_S3_ADDRESSING, &self.s3_addressing),
            (name::DRAFTSTORE_S3_TIMEOUT_MS, &self.s3_timeout_ms),
            (
                name::DRAFTSTORE_S3_CONNECT_TIMEOUT_MS,
                &self.s3_connect_timeout_ms,
            ),
            (name::DRAFTSTORE_S3_MAX_ATTEMPTS, &self.s3_max_attempts),
            (name::DRAFTSTORE_S3_BACKOFF_MS, &self.s3_backoff_ms),
            (name::DRAFTSTORE_S3_MAX_BACKOFF_MS, &self.s3_max_backoff_ms),
            (
                name::DRAFTSTORE_S3_MULTIPART_THRESHOLD,
                &self.s3_multipart_threshold,
            ),
            (name::DRAFTSTORE_S3_PART_SIZE, &self.s3_part_size),
            (
                name::DRAFTSTORE_S3_COPY_CONCURRENCY,
                &self.s3_copy_concurrency,
            ),
            (
                name::DRAFTSTORE_S3_CONDITIONAL_WRITES,
                &self.s3_conditional_writes,
            ),
            (name::DRAFTSTORE_S3_SSE, &self.s3_sse),
            (name::DRAFTSTORE_S3_SSE_KMS_KEY_ID, &self.s3_sse_kms_key_id),
            (name::DRAFTSTORE_S3_SSE_BUCKET_KEY, &self.s3_sse_bucket_key),
            (name::DRAFTSTORE_WEBHOOK_URLS, &self.webhook_urls),
            (
                name::DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS,
                &self.webhook_retry_schedule_ms,
            ),
            (name::DRAFTSTORE_WEBHOOK_POLL_MS, &self.webhook_poll_ms),
            (name::DRAFTSTORE_PRECONFIRM_URL, &self.preconfirm_url),
            (
                name::DRAFTSTORE_PRECONFIRM_TIMEOUT_MS,
                &self.preconfirm_timeout_ms,
            ),
            (
                name::DRAFTSTORE_PRECONFIRM_ON_ERROR,
                &self.preconfirm_on_error,
            ),
        ];
        let mut out: Vec<(&'static str, String)> = pairs
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v.clone())))
            .collect();
        let hidden = [
            (
                name::DRAFTSTORE_RATE_LIMIT_REDIS_URL,
                &self.rate_limit_redis_url,
            ),
            (name::DRAFTSTORE_WEBHOOK_SECRET, &self.webhook_secret),
            (
                name::DRAFTSTORE_UPLOAD_TOKEN_SECRET,
                &self.upload_token_secret,
            ),
            (name::DRAFTSTORE_API_KEYS, &self.api_keys),
            (name::DRAFTSTORE_JWT_SECRET, &self.jwt_secret),
            (name::DRAFTSTORE_LOCAL_SECRET, &self.local_secret),
        ];
        out.extend(
            hidden
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|Hidden(v)| (*k, v.clone()))),
        );
        if self.log_json {
            out.push((name::DRAFTSTORE_LOG_JSON, "true".into()));
        }
        out
    }
}

/// `gateway sweep`'s flags.
#[derive(Debug, Args, Default)]
pub struct SweepArgs {
    /// List what would be deleted (keys on stdout, or stderr with --json); delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object with the counts on stdout.
    #[arg(long)]
    pub json: bool,
    /// Stop cleanly after this many seconds, reporting how far it got.
    #[arg(long)]
    pub max_duration: Option<u64>,
    /// Keys per listing page (1..=1000).
    #[arg(long, default_value_t = 1000)]
    pub page_size: u16,
    /// Batch deletes (of up to 1000 keys) in flight at once, while the next page is listed
    /// (1..=64).
    #[arg(long, default_value_t = draftstore_core::DEFAULT_SWEEP_CONCURRENCY)]
    pub concurrency: usize,
    /// Seconds a draft lives [env: OBJECT_LIFETIME, default 86400].
    #[arg(long)]
    pub object_lifetime: Option<String>,
    /// Main bucket [env: BUCKET_NAME, default main].
    #[arg(long)]
    pub bucket_name: Option<String>,
    /// Draft bucket [env: DRAFT_BUCKET, default <BUCKET_NAME>-draft].
    #[arg(long)]
    pub draft_bucket: Option<String>,
}

impl SweepArgs {
    /// The flags given, as the variables they override.
    #[must_use]
    pub fn overrides(&self) -> Vec<(&'static str, String)> {
        [
            (name::OBJECT_LIFETIME, &self.object_lifetime),
            (name::BUCKET_NAME, &self.bucket_name),
            (name::DRAFT_BUCKET, &self.draft_bucket),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v.clone())))
        .collect()
    }
}

/// Parses the arguments; help and version come back as an `Exit` with code 0.
///
/// A usage error is exit 64, except for `gateway upload`, whose usage errors are exit 2 (a
/// client's convention; it keeps 64 for bad configuration).
pub fn parse(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<Command, Exit> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let upload = args.get(1).is_some_and(|a| a == "upload");
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(cli.command),
        Err(err) => match err.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Err(Exit {
                code: 0,
                message: err.render().to_string(),
            }),
            _ => {
                // clap's message, folded to one line, without its usage block.
                let text = err.render().to_string();
                let line = text
                    .lines()
                    .take_while(|l| !l.starts_with("Usage:"))
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                let line = line.strip_prefix("error: ").unwrap_or(&line);
                let message = format!("{line} (see gateway --help)");
                if upload {
                    Err(Exit {
                        code: crate::cmd::upload::EXIT_USAGE,
                        message,
                    })
                } else {
                    Err(Exit::usage(message))
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_url_flag_overrides_the_variable_and_debug_hides_it() {
        let command = parse([
            "gateway",
            "serve",
            "--rate-limit-redis-url=redis://:hunter2@127.0.0.1:6379/2",
        ])
        .unwrap();
        assert!(!format!("{command:?}").contains("hunter2"), "{command:?}");
        let Command::Serve(args) = command else {
            panic!("not serve: {command:?}");
        };
        assert_eq!(
            args.overrides(),
            vec![(
                name::DRAFTSTORE_RATE_LIMIT_REDIS_URL,
                "redis://:hunter2@127.0.0.1:6379/2".to_owned()
            )]
        );
    }

    /// `serve`'s flag for a variable: the name without `DRAFTSTORE_`, lowercased, `_` → `-`.
    fn flag_of(variable: &str) -> String {
        let bare = variable.strip_prefix("DRAFTSTORE_").unwrap_or(variable);
        format!("--{}", bare.to_ascii_lowercase().replace('_', "-"))
    }

    fn serve_overrides(args: &[&str]) -> Result<Vec<(&'static str, String)>, String> {
        let argv = ["gateway", "serve"].iter().chain(args).copied();
        match parse(argv) {
            Ok(Command::Serve(serve)) => Ok(serve.overrides()),
            Ok(other) => Err(format!("not serve: {other:?}")),
            Err(exit) => Err(exit.message),
        }
    }

    /// Every variable the gateway reads (but the AWS SDKs' own) has a `serve` flag overriding
    /// exactly it, and every `serve` flag is named after the variable it overrides.
    #[test]
    fn every_variable_has_a_serve_flag() {
        let mut wrong = Vec::new();
        for &variable in crate::config::VARIABLES {
            if variable.starts_with("AWS_") {
                continue;
            }
            let flag = flag_of(variable);
            let (args, value) = if variable == name::DRAFTSTORE_LOG_JSON {
                (vec![flag.clone()], "true".to_owned())
            } else {
                let value = format!("value of {variable}");
                (vec![flag.clone(), value.clone()], value)
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match serve_overrides(&args) {
                Ok(got) if got == vec![(variable, value.clone())] => {}
                Ok(got) => wrong.push(format!(
                    "{flag} gives {got:?}, not [({variable}, {value:?})]"
                )),
                Err(e) => wrong.push(format!("{variable}: {flag}: {e}")),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));

        let cli = <Cli as clap::CommandFactory>::command();
        let serve = cli.find_subcommand("serve").expect("serve");
        for long in serve.get_arguments().filter_map(clap::Arg::get_long) {
            if long == "help" {
                continue;
            }
            let named = crate::config::VARIABLES
                .iter()
                .any(|v| !v.starts_with("AWS_") && flag_of(v) == format!("--{long}"));
            assert!(named, "--{long} is named after no variable in VARIABLES");
        }
    }

    #[test]
    fn secret_flags_never_show_in_debug() {
        let command = parse([
            "gateway",
            "serve",
            "--api-keys=acme 0123456789abcdef",
            "--jwt-secret=jwt-hunter2",
            "--local-secret=local-hunter2",
        ])
        .unwrap();
        let shown = format!("{command:?}");
        for secret in ["0123456789abcdef", "jwt-hunter2", "local-hunter2"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn a_replicas_flag_overrides_the_variable() {
        let Command::Serve(args) =
            parse(["gateway", "serve", "--rate-limit-replicas", "12"]).unwrap()
        else {
            panic!("not serve");
        };
        assert_eq!(
            args.overrides(),
            vec![(name::DRAFTSTORE_RATE_LIMIT_REPLICAS, "12".to_owned())]
        );
    }
}
