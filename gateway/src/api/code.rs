//! The catalogue of API error codes: one enum (as s3s's `S3ErrorCode`), each variant with its
//! wire string (`Code::InvalidJson.as_str() == "INVALID_JSON"`, sent in REST's
//! `{"error": {"code"}}` and logged) and its [`Kind`], from which the HTTP status and the gRPC
//! code follow ([`super::error::ApiError::http_status`], [`super::error::ApiError::grpc_code`]).
//! The wire strings are part of the API: never change one.

use super::error::Kind;

macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $name:ident = $wire:literal, $kind:ident;)+) => {
        /// An API error code. See the module doc.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $($(#[doc = $doc])+ $name,)+
        }

        impl Code {
            /// Every code, in catalogue order.
            pub const ALL: &'static [Self] = &[$(Self::$name,)+];

            /// The wire string, `SCREAMING_SNAKE_CASE`.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$name => $wire,)+
                }
            }

            /// Its class, which decides the HTTP status and the gRPC code.
            #[must_use]
            pub const fn kind(self) -> Kind {
                match self {
                    $(Self::$name => Kind::$kind,)+
                }
            }
        }
    };
}

codes! {
    // The request itself.
    /// The REST body is not valid JSON.
    InvalidJson = "INVALID_JSON", BadRequest;
    /// The JSON is well-formed but a field is missing, unknown or of the wrong type.
    InvalidRequest = "INVALID_REQUEST", BadRequest;
    /// The object name breaks the naming rules (core's `ObjectName`).
    InvalidObjectName = "INVALID_OBJECT_NAME", BadRequest;
    /// The declared upload constraints (type, length, checksum, metadata) are invalid.
    InvalidConstraints = "INVALID_CONSTRAINTS", BadRequest;
    /// A gRPC `source` that is neither draft nor main.
    InvalidSource = "INVALID_SOURCE", BadRequest;
    /// The request body could not be read (the connection failed mid-body).
    BodyUnreadable = "BODY_UNREADABLE", BadRequest;
    /// The REST body is over `DRAFTSTORE_MAX_BODY_BYTES`.
    BodyTooLarge = "BODY_TOO_LARGE", PayloadTooLarge;
    /// A REST body that is not `application/json`.
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE", UnsupportedMediaType;
    /// No REST route at this path.
    NoSuchRoute = "NO_SUCH_ROUTE", NotFound;
    /// The route exists but not with this method (sent with `Allow`).
    MethodNotAllowed = "METHOD_NOT_ALLOWED", MethodNotAllowed;

    // gRPC framing.
    /// gRPC over HTTP/1.1.
    NeedsHttp2 = "NEEDS_HTTP2", Unimplemented;
    /// An unknown gRPC method.
    Unimplemented = "UNIMPLEMENTED", Unimplemented;
    /// An unknown gRPC service.
    UnknownService = "UNKNOWN_SERVICE", NotFound;
    /// A compressed gRPC message in an encoding this server does not support (it supports
    /// identity only).
    UnsupportedEncoding = "UNSUPPORTED_ENCODING", Unimplemented;
    /// A gRPC message with its compressed flag set but no `grpc-encoding`: ill-constructed
    /// (the gRPC compression spec answers INTERNAL).
    InvalidCompressedFlag = "INVALID_COMPRESSED_FLAG", Internal;
    /// A malformed `grpc-timeout` (gRPC's grammar: 1 to 8 digits and a unit of `HMSmun`);
    /// INTERNAL, as grpc-go answers it, yet the client's fault.
    InvalidTimeout = "INVALID_TIMEOUT", Internal;
    /// A gRPC message over `DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES`.
    MessageTooLarge = "MESSAGE_TOO_LARGE", PayloadTooLarge;
    /// The gRPC frame ends before its declared length.
    Truncated = "TRUNCATED", BadRequest;
    /// Bytes after the one message of a unary call.
    Trailing = "TRAILING", BadRequest;
    /// A gRPC frame flag other than 0 or 1.
    BadFrame = "BAD_FRAME", BadRequest;
    /// The gRPC message does not decode as its protobuf type.
    MalformedMessage = "MALFORMED_MESSAGE", BadRequest;
    /// The `grpc-timeout` passed (or had passed on arrival).
    DeadlineExceeded = "DEADLINE_EXCEEDED", ClientDeadline;

    // Who may call.
    /// Missing, wrong or expired credentials.
    Unauthenticated = "UNAUTHENTICATED", Unauthenticated;
    /// A valid JWT without the tenant claim.
    NoTenant = "NO_TENANT", Forbidden;
    /// The request breaks one of the tenant's limits (size, type).
    TenantLimit = "TENANT_LIMIT", Forbidden;
    /// A storage key (Companion's `?key=`) outside the caller's tenant folder (403).
    ForeignKey = "FOREIGN_KEY", Forbidden;
    /// `POST /api/v1/upload-token` on a server without a shared token key: against S3 it
    /// needs `DRAFTSTORE_UPLOAD_TOKEN_SECRET` (501).
    UploadTokensOff = "UPLOAD_TOKENS_OFF", Unimplemented;
    /// The tenant minted too many URLs this period (sent with `Retry-After`).
    RateLimited = "RATE_LIMITED", TooManyRequests;
    /// The shared rate limiter (Redis) does not answer and `DRAFTSTORE_RATE_LIMIT_ON_ERROR` is
    /// `reject`.
    RateLimitUnavailable = "RATE_LIMIT_UNAVAILABLE", TooManyRequests;

    // The draft lifecycle.
    /// No such object (draft or main).
    NotFound = "NOT_FOUND", NotFound;
    /// Main already holds a different object of that name.
    Conflict = "CONFLICT", Conflict;
    /// The draft was replaced by a new upload while confirm was checking or copying it:
    /// nothing was copied, the new draft stays; confirm again.
    DraftChanged = "DRAFT_CHANGED", Conflict;
    /// The draft does not match the constraints declared for its upload.
    ConstraintMismatch = "CONSTRAINT_MISMATCH", ConstraintMismatch;
    /// The draft kept changing during confirm; retrying is safe.
    Retry = "RETRY", Unavailable;
    /// The pre-confirm check (`DRAFTSTORE_PRECONFIRM_URL`) refused the draft with a 4xx; the
    /// message carries its reason (cut, sanitised). The draft stays (422 /
    /// `FAILED_PRECONDITION`).
    Rejected = "REJECTED", ConstraintMismatch;
    /// The pre-confirm check did not answer in time, failed (5xx) or could not be reached, and
    /// `DRAFTSTORE_PRECONFIRM_ON_ERROR` is `reject` (503 / `UNAVAILABLE`). The draft stays.
    CheckUnavailable = "CHECK_UNAVAILABLE", Unavailable;

    // Multipart uploads.
    /// No multipart upload with this id for this name (unknown, completed, aborted, or
    /// another tenant's).
    NoSuchUpload = "NO_SUCH_UPLOAD", NotFound;
    /// A `part_size` outside 5 MiB..=5 GiB, or one that needs more than 10 000 parts for the
    /// declared length.
    InvalidPartSize = "INVALID_PART_SIZE", BadRequest;
    /// A part breaks a multipart rule (number outside 1..=10 000, twice, out of order, not
    /// uploaded, wrong ETag, a non-last part under 5 MiB, a part over 5 GiB, none at all, more
    /// than 1000 URLs asked at once); the message names the part and the rule.
    InvalidPart = "INVALID_PART", BadRequest;
    /// A checksum a multipart upload cannot take: a whole-object `checksum_sha256` (checksums
    /// are per part), a part checksum missing, malformed or not declared at create.
    InvalidPartChecksum = "INVALID_PART_CHECKSUM", BadRequest;

    // The server and its storage.
    /// The S3 credentials have expired and no refresh has succeeded yet (503).
    CredentialsExpired = "CREDENTIALS_EXPIRED", Unavailable;
    /// Too many requests in flight.
    Overloaded = "OVERLOADED", Overloaded;
    /// The request body did not arrive within the body-read timeout (408).
    BodyTimeout = "BODY_TIMEOUT", BodyTimeout;
    /// No longer sent (gRPC-Web is served); kept so the wire string is never reused.
    GrpcWebUnsupported = "GRPC_WEB_UNSUPPORTED", UnsupportedMediaType;
    /// A streaming gRPC call (server reflection) that sent no message for the stream idle
    /// limit (`DRAFTSTORE_IDLE_TIMEOUT_MS`), or moved neither way for twice that (a client
    /// that stopped reading): ended with `DEADLINE_EXCEEDED`. The client's doing: logged at
    /// INFO, not ERROR.
    StreamIdle = "STREAM_IDLE", ClientDeadline;
    /// A stream the client ended (`RST_STREAM`, a closed connection) before its status was
    /// sent: never sent (nobody reads it), logged and counted as gRPC `CANCELLED` (1).
    StreamCancelled = "STREAM_CANCELLED", Cancelled;
    /// A call still open when the server's drain ended (its grace period over, or a second
    /// signal): a request not yet answered, an answer or download still being sent, a stream.
    /// The server cut it off, not its client. Never sent (the connection goes); logged and
    /// counted (503 / `UNAVAILABLE`), at INFO: the drain's own summary (WARN) says how many
    /// requests and connections were still open.
    DrainCut = "DRAIN_CUT", Unavailable;
    /// A `application/grpc-web-text` body that is not base64.
    BadBase64 = "BAD_BASE64", BadRequest;
    /// A Connect request whose `Connect-Protocol-Version` is not `1`.
    ConnectVersion = "CONNECT_VERSION", BadRequest;
    /// An HTTP/1.1 request without exactly one `Host` header (400).
    BadHost = "BAD_HOST", BadRequest;
    /// The request took longer than `DRAFTSTORE_REQUEST_TIMEOUT_MS`.
    Timeout = "TIMEOUT", Timeout;
    /// `/ready`: a bucket does not answer.
    NotReady = "NOT_READY", Unavailable;
    /// Storage is unavailable (after retries).
    StorageUnavailable = "STORAGE_UNAVAILABLE", Unavailable;
    /// Storage refused the gateway's own credentials, or one of its permissions (the message
    /// names the S3 action and the bucket to grant it on). 500: the operator, not the caller,
    /// must fix it.
    StorageDenied = "STORAGE_DENIED", Internal;
    /// Storage failed otherwise.
    StorageError = "STORAGE_ERROR", Internal;
    /// The system clock is out of the signer's range.
    Clock = "CLOCK", Internal;
    /// A response could not be encoded.
    Encode = "ENCODE", Internal;
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Each wire string is its variant's name in `SCREAMING_SNAKE_CASE`, and unique.
    #[test]
    fn wire_strings_are_the_names_in_screaming_snake_case() {
        let mut seen = BTreeSet::new();
        for code in Code::ALL {
            let mut snake = String::new();
            for (i, c) in format!("{code:?}").chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_uppercase());
            }
            assert_eq!(code.as_str(), snake);
            assert!(seen.insert(code.as_str()), "{code:?} twice");
        }
        assert_eq!(Code::InvalidJson.as_str(), "INVALID_JSON");
        assert_eq!(Code::NeedsHttp2.to_string(), "NEEDS_HTTP2");
    }
}
