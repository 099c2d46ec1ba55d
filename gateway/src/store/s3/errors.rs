//! S3 answers to typed storage errors, in one place.

use draftstore_core::StorageError;

/// Maps a failed answer (status, S3 error code, message) to a [`StorageError`]. A refusal
/// ([`StorageError::Denied`]) keeps S3's message out of its reason, which reaches API callers:
/// AWS's names the account id and the role ("User: arn:aws:sts::<account>:assumed-role/…"), so
/// it goes only to the server's ERROR log.
pub fn classify(status: u16, code: &str, message: &str, what: &str) -> StorageError {
    let denied = || {
        if !message.is_empty() {
            tracing::error!(%what, %code, status, s3_message = %message, "the storage backend refused the gateway");
        }
        let reason = match (code.is_empty(), status) {
            (true, _) => format!("{what}: HTTP {status}"),
            (false, 0) => format!("{what}: {code}"),
            (false, _) => format!("{what}: {code} (HTTP {status})"),
        };
        StorageError::Denied { reason }
    };
    // A HEAD's error has no body: no code, no message; per-key errors of a batch no status.
    let reason = || match (code.is_empty(), message.is_empty()) {
        (true, true) => format!("{what}: HTTP {status}"),
        (true, false) => format!("{what}: {message} (HTTP {status})"),
        (false, true) if status == 0 => format!("{what}: {code}"),
        (false, true) => format!("{what}: {code} (HTTP {status})"),
        (false, false) => format!("{what}: {code}: {message}"),
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
        | "AllAccessDisabled" => denied(),
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
            401 | 403 => denied(),
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
/// `AccessDenied` answer: `versioned` when the request names a version (`versionId`).
pub fn iam_action(op: &str, versioned: bool) -> String {
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
        ("PutBucketPolicy", _) => "s3:PutBucketPolicy",
        _ => return format!("the permission for S3's {op}"),
    };
    action.to_owned()
}

/// What a refused call needs, with its buckets: `{action} on bucket {bucket}`, or for a copy
/// (CopyObject, UploadPartCopy: `copy_source` is its `x-amz-copy-source`, `/bucket/key
/// [?versionId=…]`) the two permissions a copy needs, joined by "or" since S3 does not say
/// which one is missing: `s3:GetObject` (`s3:GetObjectVersion` for a version) on the source's
/// bucket or `s3:PutObject` on `bucket`.
pub fn needed(op: &str, versioned: bool, copy_source: Option<&str>, bucket: &str) -> String {
    let Some(source) = copy_source else {
        return format!("{} on bucket {bucket}", iam_action(op, versioned));
    };
    let from = source
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let read = if versioned {
        "s3:GetObjectVersion"
    } else {
        "s3:GetObject"
    };
    format!("{read} on bucket {from} (the copy's source) or s3:PutObject on bucket {bucket}")
}

/// The reason of a [`StorageError::Denied`] for `code`, `needs` from [`needed`]:
/// - `AccessDenied` (said in a body): a permission the gateway's identity lacks, `needs`
///   named with what to grant;
/// - no code (a 403 to a HEAD has no body): refused, either the credentials or the
///   permission, both named, since nothing tells them apart;
/// - the others (`SignatureDoesNotMatch`, `InvalidAccessKeyId`, …): the credentials.
///
/// Never a credential: S3's own message, the action and the bucket only.
pub fn denied_reason(reason: &str, code: &str, needs: &str) -> String {
    let reason = reason.trim_end_matches(['.', ' ']);
    match code {
        "AccessDenied" => format!("{reason}; the gateway's identity lacks {needs}: grant it in the bucket policy or the gateway's IAM policy"),
        "" => format!("{reason}; refused: check the gateway's credentials (key, secret, token, clock), or that its identity has {needs}"),
        _ => format!("{reason}; check the gateway's credentials (key, secret, token, clock)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_permission_names_the_action_and_the_bucket() {
        assert_eq!(
            iam_action("ListObjectVersions", false),
            "s3:ListBucketVersions"
        );
        assert_eq!(iam_action("DeleteObjects", true), "s3:DeleteObjectVersion");
        assert_eq!(iam_action("Odd", false), "the permission for S3's Odd");
        assert_eq!(
            needed("CopyObject", true, Some("/d/k%2Bx?versionId=v1"), "m"),
            "s3:GetObjectVersion on bucket d (the copy's source) or s3:PutObject on bucket m"
        );
        assert_eq!(
            needed("UploadPartCopy", false, Some("d/k"), "m"),
            "s3:GetObject on bucket d (the copy's source) or s3:PutObject on bucket m"
        );
        let r = denied_reason(
            "d: AccessDenied: Access Denied.",
            "AccessDenied",
            "s3:ListBucketVersions on bucket d",
        );
        assert_eq!(r, "d: AccessDenied: Access Denied; the gateway's identity lacks s3:ListBucketVersions on bucket d: grant it in the bucket policy or the gateway's IAM policy");
        let r = denied_reason(
            "d/k: SignatureDoesNotMatch",
            "SignatureDoesNotMatch",
            "s3:GetObject on bucket d",
        );
        assert!(
            r.contains("credentials") && !r.contains("s3:GetObject"),
            "{r}"
        );
        // A HEAD's 403 has no body: either may be at fault, both are named.
        let r = denied_reason("d/k: HTTP 403", "", "s3:GetObject on bucket d");
        assert_eq!(r, "d/k: HTTP 403; refused: check the gateway's credentials (key, secret, token, clock), or that its identity has s3:GetObject on bucket d");
        assert!(!r.contains("lacks"), "{r}");
    }

    /// AWS's AccessDenied message names the account and the role: it stays in the log.
    #[test]
    fn s3s_refusal_message_is_not_in_the_reason() {
        let arn = "User: arn:aws:sts::123456789012:assumed-role/gw/s1 is not authorized to perform: s3:ListBucketVersions";
        for (status, code) in [(403, "AccessDenied"), (403, ""), (401, "InvalidToken")] {
            let StorageError::Denied { reason } = classify(status, code, arn, "d") else {
                panic!("{status} {code}")
            };
            assert!(
                !reason.contains("123456789012") && !reason.contains("arn:"),
                "{reason}"
            );
            assert!(reason.starts_with("d: "), "{reason}");
        }
    }

    #[test]
    fn an_empty_code_leaves_no_gap() {
        let StorageError::Denied { reason } = classify(403, "", "", "pm1") else {
            panic!()
        };
        assert_eq!(reason, "pm1: HTTP 403");
        let StorageError::Denied { reason } = classify(0, "AccessDenied", "", "d/k?versionId=v")
        else {
            panic!()
        };
        assert_eq!(reason, "d/k?versionId=v: AccessDenied");
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
