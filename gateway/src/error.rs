//! ONE error type for both protocols, mapped to an HTTP status and a gRPC code here and only
//! here. Messages say what the caller did wrong or what failed; they never carry secrets.

use draftstore_core::{ConfirmError, ConstraintError, NameError, StorageError};
use draftstore_proto::draft::v1::ErrorType;

/// gRPC status codes we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum GrpcCode {
    Ok = 0,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    FailedPrecondition = 9,
    ResourceExhausted = 8,
    Unimplemented = 12,
    PermissionDenied = 7,
    Unauthenticated = 16,
    Internal = 13,
    Unavailable = 14,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    ConstraintMismatch,
    Unimplemented,
    Unauthenticated,
    Forbidden,
    TooManyRequests,
    Internal,
    Unavailable,
    Timeout,
    /// Every admission place this caller may take is taken: shed at once (503). Counted, not
    /// logged as an error: one client filling its share is not an operator's problem.
    Overloaded,
    /// The request body did not arrive within the body-read timeout (408): the client's fault.
    BodyTimeout,
    /// The deadline the client set (`grpc-timeout`) passed.
    ClientDeadline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: Kind,
    /// Machine-readable, e.g. `INVALID_OBJECT_NAME`.
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before retrying (sent as `Retry-After`).
    pub retry_after: Option<u64>,
    /// The methods a path accepts (sent as `Allow` with 405).
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    #[must_use]
    pub const fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    #[must_use]
    pub const fn with_allow(mut self, methods: &'static str) -> Self {
        self.allow = Some(methods);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, code, message)
    }

    #[must_use]
    pub const fn http_status(&self) -> u16 {
        match self.kind {
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
        }
    }

    #[must_use]
    pub const fn grpc_code(&self) -> GrpcCode {
        match self.kind {
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
        }
    }

    /// The original API's error type, for clients that read `Result.error_type`.
    #[must_use]
    pub const fn error_type(&self) -> ErrorType {
        match self.kind {
            Kind::BadRequest | Kind::UnsupportedMediaType | Kind::PayloadTooLarge => {
                ErrorType::InvalidArgument
            }
            Kind::NotFound => ErrorType::NotFound,
            Kind::Conflict => ErrorType::Conflict,
            Kind::ConstraintMismatch => ErrorType::ConstraintMismatch,
            Kind::Unavailable
            | Kind::Timeout
            | Kind::TooManyRequests
            | Kind::Overloaded
            | Kind::BodyTimeout
            | Kind::ClientDeadline => ErrorType::StorageUnavailable,
            Kind::MethodNotAllowed
            | Kind::Unimplemented
            | Kind::Internal
            | Kind::Unauthenticated
            | Kind::Forbidden => ErrorType::Internal,
        }
    }

    /// Worth a log line at error level (the server's fault, not the caller's).
    #[must_use]
    pub const fn is_server_side(&self) -> bool {
        matches!(
            self.kind,
            Kind::Internal | Kind::Unavailable | Kind::Timeout
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        Self::bad_request("INVALID_OBJECT_NAME", e.to_string())
    }
}

impl From<ConstraintError> for ApiError {
    fn from(e: ConstraintError) -> Self {
        Self::bad_request("INVALID_CONSTRAINTS", e.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound { what } => {
                Self::new(Kind::NotFound, "NOT_FOUND", format!("not found: {what}"))
            }
            StorageError::AlreadyExists { .. } | StorageError::PreconditionFailed { .. } => {
                Self::new(Kind::Conflict, "CONFLICT", e.to_string())
            }
            StorageError::Unavailable { .. } => {
                Self::new(Kind::Unavailable, "STORAGE_UNAVAILABLE", e.to_string())
            }
            StorageError::Denied { .. } => Self::new(
                Kind::Internal,
                "STORAGE_DENIED",
                "the storage backend refused the gateway's credentials",
            ),
            StorageError::Backend { .. } => {
                Self::new(Kind::Internal, "STORAGE_ERROR", e.to_string())
            }
        }
    }
}

impl From<ConfirmError> for ApiError {
    fn from(e: ConfirmError) -> Self {
        match e {
            ConfirmError::NotFound { .. } => Self::new(Kind::NotFound, "NOT_FOUND", e.to_string()),
            ConfirmError::Conflict { .. } => Self::new(Kind::Conflict, "CONFLICT", e.to_string()),
            ConfirmError::ConstraintMismatch { .. } => Self::new(
                Kind::ConstraintMismatch,
                "CONSTRAINT_MISMATCH",
                e.to_string(),
            ),
            ConfirmError::NotConverged { .. } => {
                Self::new(Kind::Unavailable, "RETRY", e.to_string())
            }
            ConfirmError::Storage(s) => s.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                ApiError::new(Kind::PayloadTooLarge, "TOO_LARGE", ""),
                413,
                GrpcCode::ResourceExhausted,
            ),
            (
                ApiError::new(Kind::ConstraintMismatch, "CONSTRAINT_MISMATCH", ""),
                422,
                GrpcCode::FailedPrecondition,
            ),
            (
                ApiError::new(Kind::Conflict, "CONFLICT", ""),
                409,
                GrpcCode::AlreadyExists,
            ),
        ];
        for (e, http, grpc) in cases {
            assert_eq!((e.http_status(), e.grpc_code()), (http, grpc), "{e}");
        }
    }
}
