//! The stores behind core's `Storage` trait: S3 ([`s3`]) and the embedded local store
//! ([`local`]), and the one thing the API needs from a store beyond `Storage`: presigned URLs
//! ([`Presign`], implemented beside each store).

pub mod local;
pub mod s3;
mod urls;

pub(crate) use urls::Urls;

use draftstore_core::{BucketName, ObjectName, StorageError};
use draftstore_signer::{Expiry, Method, PartUrls, PostForm, PostPolicy, Timestamp};

/// S3's largest single PUT (PutObject): 5 GiB, in bytes.
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;

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

    /// Presigned UploadParts of one upload, one per entry of `batch.parts` and in that order,
    /// all valid `expires` seconds from `now`: each URL is what
    /// [`Presign::presign_upload_part`] gives for the same part. What a `part-urls` call (up to
    /// 1000 parts) hands out. The default signs one part at a time; a store whose URLs come
    /// from one signer overrides it with [`Signer::presign_parts`], which looks the signing key
    /// up once and hashes the canonical request's shared head once.
    ///
    /// # Errors
    /// As [`Presign::presign_upload_part`], for the first part that fails; nothing is returned
    /// then.
    fn presign_upload_parts(
        &self,
        batch: &PartBatch<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<PartUrls, StorageError> {
        let mut urls = PartUrls::default();
        for part in batch.parts {
            let part = PartUrl {
                bucket: batch.bucket,
                key: batch.key,
                upload_id: batch.upload_id,
                part_number: part.part_number,
                checksum_sha256: part.checksum_sha256,
            };
            urls.push(&self.presign_upload_part(&part, expires, now)?);
        }
        Ok(urls)
    }

    /// Unix seconds after which a URL presigned now would stop working (the credentials'
    /// expiry minus a margin); `None` when the credentials do not expire.
    fn url_deadline(&self) -> Option<i64> {
        None
    }

    /// Headers every presigned PUT must carry, signed in (server-side encryption), sorted.
    fn upload_headers(&self) -> &[(String, String)] {
        &[]
    }

    /// The most bytes one presigned PUT may carry: S3's PutObject takes at most
    /// [`MAX_SINGLE_PUT`] (5 GiB), larger objects go in a multipart upload; a store may take
    /// less (the embedded store's `DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES`).
    fn max_single_put(&self) -> u64 {
        MAX_SINGLE_PUT
    }

    /// Makes sure browsers on `origins` may upload into `bucket` (AWS PutBucketCors): when the
    /// bucket has no CORS configuration (GetBucketCors answers `NoSuchCORSConfiguration`) and
    /// `origins` is not empty, sets one rule allowing PUT, POST, GET and HEAD from `origins`
    /// with any request header, exposing `ETag`; existing rules are never changed, only
    /// reported. The embedded store answers CORS itself ([`BucketCors::Gateway`]). Never
    /// fails: a store that cannot be read or written is reported as [`BucketCors::Unknown`]
    /// (and logged).
    fn ensure_cors(
        &self,
        bucket: &BucketName,
        origins: &[String],
    ) -> impl std::future::Future<Output = BucketCors> + Send {
        let _ = (bucket, origins);
        async { BucketCors::Gateway }
    }

    /// `bucket`'s versioning as S3 names it (`Enabled`, `Suspended`, `Disabled`), or
    /// `Unknown` when the store cannot tell. Sweep on a versioned draft bucket leaves
    /// noncurrent versions behind.
    fn versioning(&self, bucket: &BucketName) -> impl std::future::Future<Output = String> + Send {
        let _ = bucket;
        async { "Disabled".to_owned() }
    }
}

/// One CORS rule of a bucket (S3's `CORSRule`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsRule {
    /// `AllowedOrigin`: origins (`https://app.example`, or `*`).
    pub allowed_origins: Vec<String>,
    /// `AllowedMethod`: `GET`, `PUT`, `POST`, `DELETE`, `HEAD`.
    pub allowed_methods: Vec<String>,
    /// `AllowedHeader`: request headers a preflight may ask for (`*`: any).
    pub allowed_headers: Vec<String>,
    /// `ExposeHeader`: response headers a page may read (`ETag`).
    pub expose_headers: Vec<String>,
    /// `MaxAgeSeconds`: how long a browser may cache the preflight, in seconds.
    pub max_age_seconds: Option<u32>,
}

impl CorsRule {
    /// The rule DraftStore sets on a draft bucket for `origins`: PUT, POST, GET, HEAD; any
    /// request header; `ETag` exposed (Uppy needs it); preflights cached 3000 s.
    #[must_use]
    pub fn for_uploads(origins: &[String]) -> Self {
        let all = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        Self {
            allowed_origins: origins.to_vec(),
            allowed_methods: all(&["PUT", "POST", "GET", "HEAD"]),
            allowed_headers: all(&["*"]),
            expose_headers: all(&["ETag"]),
            max_age_seconds: Some(3000),
        }
    }
}

/// What bucket creation found or did about the draft bucket's CORS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketCors {
    /// The bucket had none; these rules were set.
    Set(Vec<CorsRule>),
    /// The bucket already had these rules; left as they are.
    Existing(Vec<CorsRule>),
    /// The bucket has none and no origins are configured (`DRAFTSTORE_CORS_ORIGINS`).
    None,
    /// The embedded store: the gateway answers CORS on `/_store/` itself.
    Gateway,
    /// The store did not answer GetBucketCors or PutBucketCors (see the log).
    Unknown,
}

impl BucketCors {
    /// `set`, `existing`, `none`, `gateway` or `unknown`.
    #[must_use]
    pub const fn status(&self) -> &'static str {
        match self {
            Self::Set(_) => "set",
            Self::Existing(_) => "existing",
            Self::None => "none",
            Self::Gateway => "gateway",
            Self::Unknown => "unknown",
        }
    }

    /// The rules set or found (empty otherwise).
    #[must_use]
    pub fn rules(&self) -> &[CorsRule] {
        match self {
            Self::Set(rules) | Self::Existing(rules) => rules,
            Self::None | Self::Gateway | Self::Unknown => &[],
        }
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

/// Several parts of one multipart upload to presign at once
/// ([`Presign::presign_upload_parts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartBatch<'a> {
    /// The upload's bucket.
    pub bucket: &'a BucketName,
    /// The upload's key.
    pub key: &'a ObjectName,
    /// The id CreateMultipartUpload answered.
    pub upload_id: &'a str,
    /// The parts, in the order their URLs are wanted.
    pub parts: &'a [BatchPart<'a>],
}

/// One part of a [`PartBatch`]: core's [`PartToSign`](draftstore_core::PartToSign), as the
/// API's checks leave it (its number, and the checksum to sign in), so a batch is signed from
/// the checked parts without copying them.
pub type BatchPart<'a> = draftstore_core::PartToSign<'a>;

#[cfg(test)]
mod tests {
    use super::*;
    use draftstore_signer::{Addressing, Credentials, Endpoint, Signer};

    /// A store that signs part by part: the trait's default batch.
    struct OneByOne {
        signer: Signer,
        endpoint: Endpoint,
    }

    impl OneByOne {
        fn urls(&self) -> Urls<'_> {
            Urls {
                signer: &self.signer,
                endpoint: &self.endpoint,
                addressing: Addressing::Path,
                under: None,
            }
        }
    }

    impl Presign for OneByOne {
        fn presign(
            &self,
            method: Method,
            bucket: &BucketName,
            key: &ObjectName,
            headers: &[(&str, &str)],
            expires: Expiry,
            now: Timestamp,
        ) -> Result<String, StorageError> {
            self.urls()
                .presign(method, bucket, key, headers, expires, now)
        }

        fn presign_upload_part(
            &self,
            part: &PartUrl<'_>,
            expires: Expiry,
            now: Timestamp,
        ) -> Result<String, StorageError> {
            self.urls().part(part, expires, now)
        }

        fn presign_post(
            &self,
            policy: &PostPolicy<'_>,
            expires: Expiry,
            now: Timestamp,
        ) -> Result<(String, PostForm), StorageError> {
            self.urls().post(policy, expires, now)
        }
    }

    fn store() -> OneByOne {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", Some("token".into())).unwrap();
        OneByOne {
            signer: Signer::new(credentials, "us-east-1", "s3").unwrap(),
            endpoint: Endpoint::parse("http://127.0.0.1:9000").unwrap(),
        }
    }

    #[test]
    fn the_one_call_batch_gives_the_urls_of_the_part_by_part_default() {
        let store = store();
        let bucket = BucketName::parse("main-draft").unwrap();
        let key = ObjectName::parse("t/video of cat.mp4").unwrap();
        let sum = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let parts: Vec<BatchPart<'_>> = [1, 3, 2, 10_000, 9, 10, 11]
            .into_iter()
            .enumerate()
            .map(|(i, part_number)| BatchPart {
                part_number,
                checksum_sha256: (i % 2 == 1).then_some(sum),
            })
            .collect();
        let batch = PartBatch {
            bucket: &bucket,
            key: &key,
            upload_id: "2~id+/=",
            parts: &parts,
        };
        let expires = Expiry::new(900).unwrap();
        let now = Timestamp::parse_amz("20261127T120000Z").unwrap();
        let default = store.presign_upload_parts(&batch, expires, now).unwrap();
        let batched = store.urls().parts(&batch, expires, now).unwrap();
        assert_eq!(batched.len(), parts.len());
        assert_eq!(
            batched.iter().collect::<Vec<_>>(),
            default.iter().collect::<Vec<_>>()
        );
        let second = batched.get(1).unwrap();
        assert!(
            second.contains("partNumber=3&uploadId=2~id%2B%2F%3D"),
            "{second}"
        );
        assert!(second.contains("X-Amz-SignedHeaders=host%3Bx-amz-checksum-sha256"));
        assert!(batched
            .get(0)
            .unwrap()
            .contains("X-Amz-SignedHeaders=host&"));
    }

    #[test]
    fn a_bad_part_number_or_upload_id_is_refused_as_part_by_part() {
        let store = store();
        let bucket = BucketName::parse("main-draft").unwrap();
        let key = ObjectName::parse("k").unwrap();
        let expires = Expiry::new(60).unwrap();
        let now = Timestamp::from_unix(1_800_000_000).unwrap();
        for (upload_id, numbers) in [("id", &[1, 0][..]), ("id", &[10_001]), ("", &[1])] {
            let parts: Vec<BatchPart<'_>> = numbers
                .iter()
                .map(|&part_number| BatchPart {
                    part_number,
                    checksum_sha256: None,
                })
                .collect();
            let batch = PartBatch {
                bucket: &bucket,
                key: &key,
                upload_id,
                parts: &parts,
            };
            let batched = store.urls().parts(&batch, expires, now);
            let default = store.presign_upload_parts(&batch, expires, now);
            assert!(
                matches!(batched, Err(StorageError::InvalidArgument { .. })),
                "{batched:?}"
            );
            assert_eq!(batched, default);
        }
    }

    /// Every kind of URL of one store starts from the same request: the same origin and path
    /// (under `_store/` on the embedded store; the bucket in the host when virtual-hosted).
    #[test]
    fn every_kind_of_url_of_a_store_points_at_the_same_place() {
        let signer = store().signer;
        let bucket = BucketName::parse("main-draft").unwrap();
        let key = ObjectName::parse("a b/c.txt").unwrap();
        let expires = Expiry::new(60).unwrap();
        let now = Timestamp::parse_amz("20261127T120000Z").unwrap();
        let policy = PostPolicy::new("main-draft", "a b/c.txt");
        for (endpoint, addressing, under, object, form) in [
            (
                "http://127.0.0.1:8080",
                Addressing::Path,
                Some("_store"),
                "http://127.0.0.1:8080/_store/main-draft/a%20b/c.txt?",
                "http://127.0.0.1:8080/_store/main-draft",
            ),
            (
                "https://s3.example.com",
                Addressing::Path,
                None,
                "https://s3.example.com/main-draft/a%20b/c.txt?",
                "https://s3.example.com/main-draft",
            ),
            (
                "https://s3.example.com",
                Addressing::VirtualHost,
                None,
                "https://main-draft.s3.example.com/a%20b/c.txt?",
                "https://main-draft.s3.example.com/",
            ),
        ] {
            let endpoint = Endpoint::parse(endpoint).unwrap();
            let urls = Urls {
                signer: &signer,
                endpoint: &endpoint,
                addressing,
                under,
            };
            let get = urls
                .presign(Method::Get, &bucket, &key, &[], expires, now)
                .unwrap();
            let part = PartUrl {
                bucket: &bucket,
                key: &key,
                upload_id: "id",
                part_number: 7,
                checksum_sha256: None,
            };
            let one = urls.part(&part, expires, now).unwrap();
            let batch = PartBatch {
                bucket: &bucket,
                key: &key,
                upload_id: "id",
                parts: &[BatchPart {
                    part_number: 7,
                    checksum_sha256: None,
                }],
            };
            let batched = urls.parts(&batch, expires, now).unwrap();
            assert!(get.starts_with(object), "{get}");
            assert!(one.starts_with(object), "{one}");
            assert!(one.contains("&partNumber=7&uploadId=id&"), "{one}");
            assert_eq!(batched.get(0), Some(one.as_str()));
            assert_eq!(urls.post(&policy, expires, now).unwrap().0, form);
        }
    }
}
