//! S3 answers to typed storage errors, in one place.

use draftstore_core::StorageError;

/// Maps a failed answer (status, S3 error code, message) to a [`StorageError`].
pub fn classify(status: u16, code: &str, message: &str, what: &str) -> StorageError {
    let reason = || {
        if message.is_empty() {
            format!("{what}: {code} (HTTP {status})")
        } else {
            format!("{what}: {code}: {message}")
        }
    };
    match code {
        "NoSuchKey" | "NoSuchBucket" | "NoSuchUpload" | "NotFound" => StorageError::NotFound {
            what: what.to_owned(),
        },
        "AccessDenied"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId"
        | "InvalidToken"
        | "ExpiredToken"
        | "AccountProblem"
        | "AllAccessDisabled" => StorageError::Denied { reason: reason() },
        "PreconditionFailed" | "ConditionalRequestConflict" => StorageError::PreconditionFailed {
            what: what.to_owned(),
        },
        // AWS: a key over 1024 bytes; SeaweedFS: a `/`-separated part over 255. Not the
        // store's fault, and no retry helps: a 400 naming it, not a 500.
        "KeyTooLongError" => StorageError::InvalidArgument { reason: reason() },
        "BucketAlreadyExists" => StorageError::AlreadyExists {
            what: what.to_owned(),
        },
        "SlowDown"
        | "ServiceUnavailable"
        | "InternalError"
        | "RequestTimeout"
        | "RequestTimeTooSkewed"
        | "Throttling"
        | "ThrottlingException" => StorageError::Unavailable { reason: reason() },
        _ => match status {
            404 => StorageError::NotFound {
                what: what.to_owned(),
            },
            401 | 403 => StorageError::Denied { reason: reason() },
            409 => StorageError::PreconditionFailed {
                what: what.to_owned(),
            },
            412 => StorageError::PreconditionFailed {
                what: what.to_owned(),
            },
            408 | 429 | 500..=599 => StorageError::Unavailable { reason: reason() },
            _ => StorageError::Backend { reason: reason() },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        assert!(matches!(
            classify(404, "NoSuchKey", "", "b/k"),
            StorageError::NotFound { .. }
        ));
        assert!(matches!(
            classify(404, "NoSuchBucket", "", "b"),
            StorageError::NotFound { .. }
        ));
        assert!(matches!(
            classify(403, "SignatureDoesNotMatch", "", "b/k"),
            StorageError::Denied { .. }
        ));
        assert!(matches!(
            classify(403, "InvalidAccessKeyId", "", "b/k"),
            StorageError::Denied { .. }
        ));
        assert!(matches!(
            classify(412, "PreconditionFailed", "", "b/k"),
            StorageError::PreconditionFailed { .. }
        ));
        assert!(matches!(
            classify(503, "SlowDown", "", "b/k"),
            StorageError::Unavailable { .. }
        ));
        assert!(matches!(
            classify(500, "InternalError", "", "b/k"),
            StorageError::Unavailable { .. }
        ));
        assert!(matches!(
            classify(502, "", "", "b/k"),
            StorageError::Unavailable { .. }
        ));
        assert!(matches!(
            classify(403, "", "", "b/k"),
            StorageError::Denied { .. }
        ));
        assert!(matches!(
            classify(400, "InvalidArgument", "bad", "b/k"),
            StorageError::Backend { .. }
        ));
        assert!(matches!(
            classify(400, "KeyTooLongError", "Your key is too long.", "b/k"),
            StorageError::InvalidArgument { reason } if reason.contains("KeyTooLongError")
        ));
        assert!(matches!(
            classify(409, "BucketAlreadyExists", "", "b"),
            StorageError::AlreadyExists { .. }
        ));
    }
}
