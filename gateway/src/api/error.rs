//! ONE error type for both protocols, mapped to an HTTP status and a gRPC code here and only
//! here. Messages say what the caller did wrong or what failed; they never carry secrets.

pub use super::code::Code;
use draftstore_core::{ConfirmError, ConstraintError, NameError, PartError, StorageError};

/// gRPC status codes we answer with (grpc/grpc `doc/statuscodes.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum GrpcCode {
    /// Success.
    Ok = 0,
    /// The client cancelled the call (a stream it reset or closed).
    Cancelled = 1,
    /// The request is invalid whatever the server's state.
    InvalidArgument = 3,
    /// The deadline passed before the call finished.
    DeadlineExceeded = 4,
    /// No such object (or service).
    NotFound = 5,
    /// The object exists already (a confirm conflict).
    AlreadyExists = 6,
    /// The object is not in the state the call needs.
    FailedPrecondition = 9,
    /// A size limit or a rate was exceeded.
    ResourceExhausted = 8,
    /// No such method, or not over this transport.
    Unimplemented = 12,
    /// Valid credentials that are not allowed this.
    PermissionDenied = 7,
    /// Missing, wrong or expired credentials.
    Unauthenticated = 16,
    /// The server failed.
    Internal = 13,
    /// Try again later (storage down, overloaded).
    Unavailable = 14,
}

/// The class of an error, which decides its HTTP status and gRPC code (see
/// [`ApiError::http_status`] and [`ApiError::grpc_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400 / `INVALID_ARGUMENT`.
    BadRequest,
    /// 404 / `NOT_FOUND`.
    NotFound,
    /// 405 / `UNIMPLEMENTED`.
    MethodNotAllowed,
    /// 409 / `ALREADY_EXISTS`.
    Conflict,
    /// 413 / `RESOURCE_EXHAUSTED`.
    PayloadTooLarge,
    /// 415 / `INVALID_ARGUMENT`.
    UnsupportedMediaType,
    /// 422 / `FAILED_PRECONDITION`.
    ConstraintMismatch,
    /// 501 / `UNIMPLEMENTED`.
    Unimplemented,
    /// 401 / `UNAUTHENTICATED`.
    Unauthenticated,
    /// 403 / `PERMISSION_DENIED`.
    Forbidden,
    /// 429 / `RESOURCE_EXHAUSTED`.
    TooManyRequests,
    /// 500 / `INTERNAL`.
    Internal,
    /// 503 / `UNAVAILABLE`.
    Unavailable,
    /// 504 / `DEADLINE_EXCEEDED`.
    Timeout,
    /// Every admission place this caller may take is taken: shed at once (503). Counted, not
    /// logged as an error: one client filling its share is not an operator's problem.
    Overloaded,
    /// The request body did not arrive within the body-read timeout (408): the client's fault.
    BodyTimeout,
    /// The deadline the client set (`grpc-timeout`) passed.
    ClientDeadline,
    /// 499 / `CANCELLED`: the client went away before the answer ended (a stream it reset).
    Cancelled,
}

/// An API error: a [`Code`] (which decides the HTTP status and the gRPC code) and a message for
/// the caller. Built only by [`ApiError::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Machine-readable, sent as REST's `error.code` (e.g. `INVALID_OBJECT_NAME`).
    pub code: Code,
    /// What the caller did wrong or what failed; never holds a secret.
    pub message: String,
    /// Seconds to wait before retrying (sent as `Retry-After`).
    pub retry_after: Option<u64>,
    /// The methods a path accepts (sent as `Allow` with 405).
    pub allow: Option<&'static str>,
}

impl ApiError {
    /// This error with its message naming the object as its caller does: `key` (the stored
    /// name, with the caller's tenant folder) written as `name`. A caller sees only its own
    /// names, never its tenant's folder.
    #[must_use]
    pub fn naming(mut self, key: &draftstore_core::ObjectName, name: &str) -> Self {
        if key.as_str() != name {
            self.message = self.message.replace(key.as_str(), name);
        }
        self
    }

    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    /// Adds `Retry-After: secs`.
    #[must_use]
    pub const fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds `Allow: methods` (a 405).
    #[must_use]
    pub const fn with_allow(mut self, methods: &'static str) -> Self {
        self.allow = Some(methods);
        self
    }

    /// Its class, from its code.
    #[must_use]
    pub const fn kind(&self) -> Kind {
        self.code.kind()
    }

    /// The REST status, from the kind.
    #[must_use]
    pub const fn http_status(&self) -> u16 {
        match self.kind() {
            Kind::BadRequest => 400,
            Kind::NotFound => 404,
            Kind::MethodNotAllowed => 405,
            Kind::Conflict => 409,
            Kind::PayloadTooLarge => 413,
            Kind::UnsupportedMediaType => 415,
            Kind::ConstraintMismatch => 422,
            Kind::Unimplemented => 501,
            Kind::Unauthenticated => 401,
            Kind::Forbidden => 403,
            Kind::TooManyRequests => 429,
            Kind::Internal => 500,
            Kind::Unavailable | Kind::Overloaded => 503,
            Kind::Timeout | Kind::ClientDeadline => 504,
            Kind::BodyTimeout => 408,
            Kind::Cancelled => 499,
        }
    }

    /// The gRPC status code, from the kind.
    #[must_use]
    pub const fn grpc_code(&self) -> GrpcCode {
        match self.kind() {
            Kind::BadRequest | Kind::UnsupportedMediaType => GrpcCode::InvalidArgument,
            Kind::NotFound => GrpcCode::NotFound,
            Kind::MethodNotAllowed | Kind::Unimplemented => GrpcCode::Unimplemented,
            Kind::Conflict => GrpcCode::AlreadyExists,
            Kind::ConstraintMismatch => GrpcCode::FailedPrecondition,
            Kind::PayloadTooLarge => GrpcCode::ResourceExhausted,
            Kind::Unauthenticated => GrpcCode::Unauthenticated,
            Kind::Forbidden => GrpcCode::PermissionDenied,
            Kind::TooManyRequests => GrpcCode::ResourceExhausted,
            Kind::Internal => GrpcCode::Internal,
            Kind::Unavailable | Kind::Overloaded => GrpcCode::Unavailable,
            Kind::Timeout | Kind::ClientDeadline | Kind::BodyTimeout => GrpcCode::DeadlineExceeded,
            Kind::Cancelled => GrpcCode::Cancelled,
        }
    }

    /// Worth a log line at error level (the server's fault, not the caller's). A message with
    /// the compressed flag and no encoding is INTERNAL by the gRPC spec, but the client built
    /// it: anyone could otherwise write ERROR lines at will. An answer cut by the drain's end
    /// is not either: the drain's summary (WARN) is the operator's line, one per drain.
    #[must_use]
    pub const fn is_server_side(&self) -> bool {
        matches!(
            self.kind(),
            Kind::Internal | Kind::Unavailable | Kind::Timeout
        ) && !matches!(
            self.code,
            Code::InvalidCompressedFlag | Code::InvalidTimeout | Code::DrainCut
        )
    }
}

/// What a call was doing when it failed: the original DraftStore's [`ErrorType`] names the
/// failed step (a presign, a copy), which the [`Code`] alone does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum During {
    /// Creating the buckets.
    Buckets,
    /// Presigning an upload or download URL.
    Presign,
    /// Confirming: copying the draft into main.
    Confirm,
}

/// The `ErrorType` of `draft.proto`: the original DraftStore's values 0..=11, ours from 12.
pub use draftstore_proto::draft::v1::ErrorType;

impl ApiError {
    /// The closest original DraftStore [`ErrorType`] (0..=11) when one fits, else ours (12..):
    /// a bad name is `INVALID_OBJECT_NAME`, a missing object `OBJECT_NOT_FOUND`, refused
    /// credentials (the caller's or the gateway's at S3) `ACCESS_DENIED`, storage that does not
    /// answer `NETWORK_ERROR`, a storage failure `PRESIGNED_URL_FAILED` or `COPY_FAILED` by the
    /// step `during` which it happened; other invalid requests `INVALID_ARGUMENT` (12).
    #[must_use]
    pub const fn error_type(&self, during: During) -> ErrorType {
        match self.code {
            Code::InvalidObjectName => ErrorType::InvalidObjectName,
            Code::NotFound => ErrorType::ObjectNotFound,
            Code::Unauthenticated | Code::NoTenant | Code::TenantLimit | Code::StorageDenied => {
                ErrorType::AccessDenied
            }
            Code::StorageUnavailable => ErrorType::NetworkError,
            Code::StorageError | Code::Clock => match during {
                During::Presign => ErrorType::PresignedUrlFailed,
                During::Confirm => ErrorType::CopyFailed,
                During::Buckets => ErrorType::InternalError,
            },
            Code::Conflict => ErrorType::Conflict,
            Code::ConstraintMismatch => ErrorType::ConstraintMismatch,
            Code::RateLimited | Code::RateLimitUnavailable => ErrorType::RateLimited,
            // The rest by class, so that a new code always has a value.
            _ => match self.kind() {
                Kind::BadRequest
                | Kind::MethodNotAllowed
                | Kind::PayloadTooLarge
                | Kind::UnsupportedMediaType
                | Kind::Unimplemented => ErrorType::InvalidArgument,
                Kind::NotFound => ErrorType::ObjectNotFound,
                Kind::Conflict => ErrorType::Conflict,
                Kind::ConstraintMismatch => ErrorType::ConstraintMismatch,
                Kind::Unauthenticated | Kind::Forbidden => ErrorType::AccessDenied,
                Kind::TooManyRequests => ErrorType::RateLimited,
                Kind::Internal => ErrorType::InternalError,
                Kind::Unavailable | Kind::Overloaded => ErrorType::Unavailable,
                Kind::Timeout | Kind::BodyTimeout | Kind::ClientDeadline => ErrorType::Timeout,
                Kind::Cancelled => ErrorType::NetworkError,
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        Self::new(Code::InvalidObjectName, e.to_string())
    }
}

impl From<ConstraintError> for ApiError {
    fn from(e: ConstraintError) -> Self {
        Self::new(Code::InvalidConstraints, e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound { what } => {
                Self::new(Code::NotFound, format!("not found: {what}"))
            }
            StorageError::AlreadyExists { .. } | StorageError::PreconditionFailed { .. } => {
                Self::new(Code::Conflict, e.to_string())
            }
            StorageError::Unavailable { .. } => Self::new(Code::StorageUnavailable, e.to_string()),
            // The reason names the S3 action and bucket (a missing permission) or says to check
            // the credentials; the store never puts a secret nor S3's own message in it (AWS's
            // names the account and role: the store logs it at ERROR).
            StorageError::Denied { reason } => Self::new(
                Code::StorageDenied,
                format!("the storage backend refused the gateway: {reason}"),
            ),
            StorageError::NoSuchUpload { upload_id } => Self::new(
                Code::NoSuchUpload,
                format!(
                    "no multipart upload {upload_id:?} for this name: unknown, completed or aborted"
                ),
            ),
            StorageError::InvalidPart { .. }
            | StorageError::InvalidPartOrder { .. }
            | StorageError::EntityTooSmall { .. } => Self::new(Code::InvalidPart, e.to_string()),
            StorageError::InvalidArgument { .. } => Self::new(Code::InvalidRequest, e.to_string()),
            StorageError::Backend { .. } => Self::new(Code::StorageError, e.to_string()),
        }
    }
}

impl From<PartError> for ApiError {
    fn from(e: PartError) -> Self {
        let code = match e {
            PartError::PartSize { .. } | PartError::TooManyParts { .. } => Code::InvalidPartSize,
            PartError::WholeObjectChecksum
            | PartError::ChecksumUnrequested { .. }
            | PartError::ChecksumNotDeclared
            | PartError::ChecksumMissing { .. }
            | PartError::ChecksumUnknown { .. }
            | PartError::ChecksumFormat { .. } => Code::InvalidPartChecksum,
            PartError::PartNumber { .. }
            | PartError::Duplicate { .. }
            | PartError::Order { .. }
            | PartError::UrlCount { .. }
            | PartError::NoParts
            | PartError::NotUploaded { .. }
            | PartError::ETag { .. }
            | PartError::TooSmall { .. }
            | PartError::TooLarge { .. } => Code::InvalidPart,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ConfirmError> for ApiError {
    fn from(e: ConfirmError) -> Self {
        match e {
            ConfirmError::NotFound { .. } => Self::new(Code::NotFound, e.to_string()),
            ConfirmError::Conflict { .. } => Self::new(
                Code::Conflict,
                format!("{e}; confirm with overwrite to replace it"),
            ),
            ConfirmError::DraftChanged { .. } => Self::new(Code::DraftChanged, e.to_string()),
            ConfirmError::ConstraintMismatch { .. } => {
                Self::new(Code::ConstraintMismatch, e.to_string())
            }
            ConfirmError::NotConverged { .. } => Self::new(Code::Retry, e.to_string()),
            ConfirmError::Rejected { .. } => Self::new(Code::Rejected, e.to_string()),
            ConfirmError::CheckUnavailable { .. } => {
                Self::new(Code::CheckUnavailable, e.to_string())
            }
            ConfirmError::Storage(s) => s.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_built_internal_is_not_logged_as_the_servers_fault() {
        let e = ApiError::new(Code::InvalidCompressedFlag, "compressed flag, no encoding");
        assert_eq!(e.grpc_code(), GrpcCode::Internal, "as the gRPC spec says");
        assert!(!e.is_server_side());
        assert!(ApiError::new(Code::StorageError, "s3 failed").is_server_side());
    }

    /// A refused permission's answer carries the store's reason (the action, the bucket).
    #[test]
    fn a_denied_permission_is_named_in_the_answer() {
        let e = ApiError::from(StorageError::Denied {
            reason:
                "d: AccessDenied: the gateway's identity lacks s3:ListBucketVersions on bucket d"
                    .into(),
        });
        assert_eq!(e.code, Code::StorageDenied);
        assert!(
            e.message.contains("s3:ListBucketVersions on bucket d"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("credentials"), "{}", e.message);
    }

    /// The original's numbers for what it had; ours after them.
    #[test]
    fn error_types_are_the_originals_where_one_fits() {
        let of = |code: Code, during: During| ApiError::new(code, "").error_type(during) as i32;
        assert_eq!(of(Code::InvalidObjectName, During::Presign), 6);
        assert_eq!(of(Code::NotFound, During::Confirm), 2);
        assert_eq!(of(Code::Unauthenticated, During::Presign), 3);
        assert_eq!(of(Code::StorageDenied, During::Buckets), 3);
        assert_eq!(of(Code::StorageUnavailable, During::Confirm), 4);
        assert_eq!(of(Code::StorageError, During::Presign), 10);
        assert_eq!(of(Code::StorageError, During::Confirm), 8);
        assert_eq!(of(Code::StorageError, During::Buckets), 11);
        assert_eq!(of(Code::Encode, During::Presign), 11);
        assert_eq!(of(Code::InvalidJson, During::Presign), 12);
        assert_eq!(of(Code::Conflict, During::Confirm), 13);
        assert_eq!(of(Code::ConstraintMismatch, During::Confirm), 14);
        assert_eq!(of(Code::Overloaded, During::Presign), 15);
        assert_eq!(of(Code::RateLimited, During::Presign), 16);
        assert_eq!(of(Code::Timeout, During::Confirm), 17);
        // Never UNSPECIFIED for an error.
        for code in Code::ALL {
            for during in [During::Buckets, During::Presign, During::Confirm] {
                assert_ne!(of(*code, during), 0, "{code:?}");
            }
        }
    }

    #[test]
    fn one_mapping_for_both_protocols() {
        let cases = [
            (
                ApiError::from(NameError::Empty),
                400,
                GrpcCode::InvalidArgument,
            ),
            (
                ApiError::from(StorageError::NotFound { what: "b/k".into() }),
                404,
                GrpcCode::NotFound,
            ),
            (
                ApiError::from(StorageError::Unavailable {
                    reason: "503".into(),
                }),
                503,
                GrpcCode::Unavailable,
            ),
            (
                ApiError::from(StorageError::Denied {
                    reason: "SignatureDoesNotMatch".into(),
                }),
                500,
                GrpcCode::Internal,
            ),
            (
                ApiError::new(Code::BodyTooLarge, ""),
                413,
                GrpcCode::ResourceExhausted,
            ),
            (
                ApiError::new(Code::ConstraintMismatch, ""),
                422,
                GrpcCode::FailedPrecondition,
            ),
            (
                ApiError::new(Code::Conflict, ""),
                409,
                GrpcCode::AlreadyExists,
            ),
        ];
        for (e, http, grpc) in cases {
            assert_eq!((e.http_status(), e.grpc_code()), (http, grpc), "{e}");
        }
    }
}
