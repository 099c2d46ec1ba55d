//! The stores behind core's `Storage` trait: S3 ([`s3`]) and the embedded local store
//! ([`local`]), and the one thing the API needs from a store beyond `Storage`: presigned URLs
//! ([`Presign`], implemented beside each store).

pub mod local;
pub mod s3;

use draftstore_core::{BucketName, ObjectName, StorageError};
use draftstore_signer::{
    Addressing, Endpoint, Expiry, Method, PostForm, PostPolicy, Request, Signer, Timestamp,
};

/// Makes presigned URLs for a store's objects (object_store's `Signer` shape): a client holding
/// the URL may send `method` to `bucket/key` until it expires, with no other credentials.
pub trait Presign {
    /// A presigned URL (SigV4 query authentication, AWS "Authenticating Requests: Using Query
    /// Parameters") for `method` on `bucket/key`, valid `expires` seconds from `now`, with
    /// `headers` (lowercase names) signed in: the client must send them with these values.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the request cannot be signed.
    fn presign(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &ObjectName,
        headers: &[(&str, &str)],
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError>;

    /// A presigned UploadPart (AWS "UploadPart": `PUT <object>?partNumber=N&uploadId=ID`) for
    /// `part`, valid `expires` seconds from `now`. With `part.checksum_sha256` the URL carries
    /// `x-amz-checksum-sha256` signed in: the client must send that header with that value,
    /// and the store refuses bytes that do not match it.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for a part number outside 1..=10000 or an empty
    /// upload id; [`StorageError::Backend`] when the request cannot be signed.
    fn presign_upload_part(
        &self,
        part: &PartUrl<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError>;

    /// A presigned POST (AWS "Browser-based uploads using POST", SigV4): the URL a browser
    /// form posts to (the bucket's URL) and the signed form fields allowing `policy`, valid
    /// `expires` seconds from `now`. `policy.bucket` names the bucket.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] when the policy cannot be signed (a malformed
    /// metadata name or value, `min > max`).
    fn presign_post(
        &self,
        policy: &PostPolicy<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<(String, PostForm), StorageError>;

    /// Unix seconds after which a URL presigned now would stop working (the credentials'
    /// expiry minus a margin); `None` when the credentials do not expire.
    fn url_deadline(&self) -> Option<i64> {
        None
    }

    /// Headers every presigned PUT must carry, signed in (server-side encryption), sorted.
    fn upload_headers(&self) -> &[(String, String)] {
        &[]
    }

    /// `bucket`'s versioning as S3 names it (`Enabled`, `Suspended`, `Disabled`), or
    /// `Unknown` when the store cannot tell. Sweep on a versioned draft bucket leaves
    /// noncurrent versions behind.
    fn versioning(&self, bucket: &BucketName) -> impl std::future::Future<Output = String> + Send {
        let _ = bucket;
        async { "Disabled".to_owned() }
    }
}

/// Which part of which multipart upload a presigned UploadPart is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartUrl<'a> {
    /// The upload's bucket.
    pub bucket: &'a BucketName,
    /// The upload's key.
    pub key: &'a ObjectName,
    /// The id CreateMultipartUpload answered.
    pub upload_id: &'a str,
    /// 1..=10000.
    pub part_number: u32,
    /// Base64 SHA-256 of the part, to sign in as `x-amz-checksum-sha256`.
    pub checksum_sha256: Option<&'a str>,
}

/// Signs `request` as an UploadPart of `part` (its query and checksum header added).
fn sign_part(
    signer: &Signer,
    request: Request<'_>,
    part: &PartUrl<'_>,
    expires: Expiry,
    now: Timestamp,
) -> Result<String, StorageError> {
    draftstore_core::check_part_number(part.part_number)?;
    if part.upload_id.is_empty() {
        return Err(StorageError::InvalidArgument {
            reason: "an upload id is needed".into(),
        });
    }
    let number = part.part_number.to_string();
    let query = [
        ("partNumber", number.as_str()),
        ("uploadId", part.upload_id),
    ];
    let checksum;
    let headers: &[(&str, &str)] = match part.checksum_sha256 {
        Some(sum) => {
            checksum = [("x-amz-checksum-sha256", sum)];
            &checksum
        }
        None => &[],
    };
    let request = Request {
        query: &query,
        ..request
    };
    sign(signer, request, headers, expires, now)
}

/// `scheme://authority/<path_prefix><bucket>` (path-style) or `scheme://<bucket>.authority/`
/// (virtual-hosted): where a POST form for `bucket` is sent.
fn bucket_url(
    endpoint: &Endpoint,
    addressing: Addressing,
    path_prefix: &str,
    bucket: &str,
) -> String {
    let scheme = endpoint.scheme().as_str();
    match addressing {
        Addressing::Path => format!("{scheme}://{}/{path_prefix}{bucket}", endpoint.authority()),
        Addressing::VirtualHost => format!("{scheme}://{bucket}.{}/", endpoint.authority()),
    }
}

/// Signs a POST policy with `signer`, its URL at `endpoint` (see [`bucket_url`]).
fn sign_post(
    signer: &Signer,
    url: String,
    policy: &PostPolicy<'_>,
    expires: Expiry,
    now: Timestamp,
) -> Result<(String, PostForm), StorageError> {
    let form =
        signer
            .presign_post(policy, expires, now)
            .map_err(|e| StorageError::InvalidArgument {
                reason: format!("cannot sign the POST policy: {e}"),
            })?;
    Ok((url, form))
}

/// Signs `request` (its headers set to `headers`) into a presigned URL.
fn sign<'a>(
    signer: &Signer,
    mut request: Request<'a>,
    headers: &'a [(&'a str, &'a str)],
    expires: Expiry,
    now: Timestamp,
) -> Result<String, StorageError> {
    request.headers = headers;
    signer
        .presign(&request, expires, now)
        .map_err(|e| StorageError::Backend {
            reason: format!("cannot presign: {e}"),
        })
}
