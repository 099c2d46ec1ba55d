//! The `gateway` binary and its library driven as a user would, over real sockets with real
//! clients. The API suites (`rest_api`, `grpc_api`, `auth`, `hostile`) run on the embedded store
//! by default and on SeaweedFS with `DRAFTSTORE_TEST_STORE=s3` (see `harness`); tests about S3
//! itself need SeaweedFS (`scripts/test` starts it; a failure under `CI=true` without it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

/// Issue 13: the byte budget of HTTP/2 answers not yet sent, shared fairly, never shedding a
/// client that reads.
mod answer_budget;
/// Issue 13's attacks, scaled down, against the real binary on the embedded store.
mod attacks;
/// API keys, JWTs, tenants, CORS and public paths.
mod auth;
/// Buckets created by `gateway serve` at start (DRAFTSTORE_CREATE_BUCKETS).
mod buckets_at_start;
/// Issue 16: Uppy's Companion S3 protocol, upload tokens, tenants.
mod companion;
/// Each confirmed object counted once in the metrics, however many confirms race.
mod confirm_count;
/// The S3 requests one confirm makes, with and without webhooks, versioned or not.
mod confirm_requests;
/// Connect's JSON on the wire (proto3 JSON details), and connect-es calling with it.
mod connect_json;
/// Connect's streaming form: server reflection with buf's defaults, envelopes, refusals.
mod connect_stream;
/// S3 credentials from the AWS chain, refreshed before they expire.
mod credentials;
/// Answers given before the body is read reach curl whole, over h2c and HTTP/1.1.
mod early_answers;
/// Issue 18: the pre-confirm check and webhooks delivered at least once.
mod events;
/// The gRPC API with tonic and raw h2: the README flow, every status, hostile frames.
mod grpc_api;
/// grpcurl and buf over reflection, gRPC-Web and Connect; raw gRPC-Web and Connect frames.
mod grpc_clients;
/// Calls refused by path and protocol are answered from their head, body still open.
mod grpc_refusals;
/// The in-process server on the embedded store or S3, and small client helpers.
mod harness;
/// Clients that misbehave: huge bodies, slowloris, HTTP/2 rapid reset, dead peers.
mod hostile;
/// The original DraftStore's routes and messages, decoded with its own definitions.
mod legacy;
/// Issue 16: the caller's drafts listed over REST and gRPC.
mod list_drafts;
/// Multipart uploads on the embedded store: parts over HTTP, crashes, sweep.
mod local_multipart;
/// The embedded store: conformance, its presigned URLs, crashes, one server per folder.
mod local_store;
/// Names with a part over 255 bytes: SeaweedFS refuses them, with a clear 400 each way.
mod long_segments;
/// The Kubernetes manifests and the Dockerfile agree with the configuration.
mod manifests;
/// Multipart uploads over REST and gRPC: parts out of order, resume, every error, tenants.
mod multipart;
/// Bodies past their limit, of every kind and protocol, get their answer before a reset.
mod over_limit;
/// `part-urls` on the embedded store reads no part: its cost does not grow with the parts.
mod part_urls;
/// `gateway presign`.
mod presign_cli;
/// A fault-injecting TCP proxy in front of SeaweedFS.
mod proxy;
/// Tenant rate limits, in process and shared through Redis.
mod ratelimit;
/// A charge answered with a fuller bucket (Redis lost writes) never raises a replica's bucket.
mod ratelimit_crash;
/// Damaged keys stay one tenant's; a connection that stops answering is dialled anew.
mod ratelimit_damage;
/// The shared rate limiter while Redis is frozen, flapping, refusing or not speaking TLS.
mod ratelimit_faults;
/// The shared rate limiter's fallback starts from what Redis left; recovery is a decision.
mod ratelimit_recovery;
/// Several replicas through Redis outages: debts charged at once, a flapping Redis bounded.
mod ratelimit_replicas;
/// A replica restarted during a Redis outage starts each tenant's fallback empty: no burst.
mod ratelimit_restarts;
/// A replica started during a Redis outage assumes the configured replicas until counted.
mod ratelimit_scaleup;
/// Issue 18's review: confirm is done only for the copy of this very draft; one event id per
/// confirmation.
mod reconfirm;
/// Issue 18's second review: a draft replaced while its confirm checks or copies it stays.
mod replaced;
/// The REST API: the README flow, constraints, every error status, metrics, the routes.
mod rest_api;
/// The S3 store against SeaweedFS, the conformance suite included.
mod s3;
/// The S3 store behind the fault proxy: retries, timeouts, failures.
mod s3_faults;
/// Multipart uploads on SeaweedFS: presigned parts with curl, checksums, sweep.
mod s3_multipart;
/// Issue 18: confirm on a versioned draft bucket copies and deletes the version it looked at.
mod s3_versions;
/// `gateway serve` as a process: flags, exit statuses, signals.
mod serve_cli;
/// Server-side encryption signed into uploads and carried by the confirm copy.
mod sse;
/// Streams whose client stops reading are reset at the idle limit, freeing their place.
mod stalled_streams;
/// A connection whose client takes no byte of its answer for the stall limit is closed.
mod stalled_writes;
/// A stream is logged and counted when it ends, with its final status and whole duration.
mod stream_outcomes;
/// Local stand-ins for AWS endpoints (container credentials, STS) and the gateway process.
mod stub;
/// `gateway sweep` as the CronJob runs it.
mod sweep_cli;
/// TLS on the one port: ALPN, gRPC, the store's URLs, certificate rotation and bad pairs.
mod tls;
/// Issue 16: the upload page at `/`, public, under a strict Content-Security-Policy.
mod ui;
/// Unsigned `x-amz-*` headers on presigned requests are refused, as S3 does.
mod unsigned_headers;
/// `gateway upload`, DraftStore's own client, against the real server.
mod upload_cli;
/// Presigned POST forms: upload-form, GetUploadForm, the store's form uploads.
mod upload_form;
/// `gateway upload` killed half-way and resumed; failed parts retried.
mod upload_resume;
/// Issue 18: a confirm that fails withdraws its event; a concurrent copy after that queues it again.
mod withdrawn;
