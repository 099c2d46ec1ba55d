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

/// The IAM action an S3 operation needs (AWS's "Actions defined by Amazon S3"), for an
/// `AccessDenied` answer: `versioned` when the request names a version (`versionId`), `copy`
/// when it copies (`x-amz-copy-source`: the source also needs `s3:GetObject`, or
/// `s3:GetObjectVersion` for a version).
pub fn iam_action(op: &str, versioned: bool, copy: bool) -> String {
    let action = match (op, versioned) {
        ("HeadObject" | "GetObject", false) => "s3:GetObject",
        ("HeadObject" | "GetObject", true) => "s3:GetObjectVersion",
        ("DeleteObject" | "DeleteObjects", false) => "s3:DeleteObject",
        ("DeleteObject" | "DeleteObjects", true) => "s3:DeleteObjectVersion",
        ("PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload", _) => {
            "s3:PutObject"
        }
        ("AbortMultipartUpload", _) => "s3:AbortMultipartUpload",
        ("ListMultipartUploads", _) => "s3:ListBucketMultipartUploads",
        ("ListParts", _) => "s3:ListMultipartUploadParts",
        ("ListObjectsV2" | "HeadBucket", _) => "s3:ListBucket",
        ("ListObjectVersions", _) => "s3:ListBucketVersions",
        ("CreateBucket", _) => "s3:CreateBucket",
        ("GetBucketCors", _) => "s3:GetBucketCORS",
        ("PutBucketCors", _) => "s3:PutBucketCORS",
        ("GetBucketVersioning", _) => "s3:GetBucketVersioning",
        ("PutBucketVersioning", _) => "s3:PutBucketVersioning",
        _ => return format!("the permission for S3's {op}"),
    };
    match (copy, versioned) {
        (false, _) => action.to_owned(),
        (true, false) => format!("{action} (and s3:GetObject on the source)"),
        (true, true) => format!("{action} (and s3:GetObjectVersion on the source)"),
    }
}

/// The reason of a [`StorageError::Denied`] for `code`: a permission the gateway's identity
/// lacks (`AccessDenied`: names `action` and `bucket`, what to grant), or its credentials
/// (the others). Never a credential: S3's own message, the action and the bucket only.
pub fn denied_reason(reason: &str, code: &str, action: &str, bucket: &str) -> String {
    if code == "AccessDenied" || code.is_empty() {
        format!("{reason}: the gateway's identity lacks {action} on bucket {bucket}: grant it in the bucket policy or the gateway's IAM policy")
    } else {
        format!("{reason}: check the gateway's credentials (key, secret, token, clock)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_permission_names_the_action_and_the_bucket() {
        assert_eq!(
            iam_action("ListObjectVersions", false, false),
            "s3:ListBucketVersions"
        );
        assert_eq!(
            iam_action("DeleteObjects", true, false),
            "s3:DeleteObjectVersion"
        );
        assert_eq!(
            iam_action("PutObject", true, true),
            "s3:PutObject (and s3:GetObjectVersion on the source)"
        );
        assert_eq!(
            iam_action("Odd", false, false),
            "the permission for S3's Odd"
        );
        let r = denied_reason(
            "d: AccessDenied: Access Denied",
            "AccessDenied",
            "s3:ListBucketVersions",
            "d",
        );
        assert!(r.contains("lacks s3:ListBucketVersions on bucket d"), "{r}");
        let r = denied_reason(
            "d/k: SignatureDoesNotMatch",
            "SignatureDoesNotMatch",
            "s3:GetObject",
            "d",
        );
        assert!(
            r.contains("credentials") && !r.contains("s3:GetObject"),
            "{r}"
        );
    }

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
