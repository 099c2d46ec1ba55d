//! `part-urls`: presigned PUTs of up to 1000 parts of one upload in one call. Its cost per URL
//! is the signer's plus little (issue 15: at most 1.5× the signer's floor per URL): the numbers
//! are checked once, the upload is looked up once without listing its parts
//! ([`Storage::upload_checksum`]), every URL is signed in one batch into one buffer, and the
//! reply is written from that buffer with the expiry every part shares made once.

use super::{check_upload_id, now};
use crate::api::app::{object_key, ttl_within, App};
use crate::api::error::ApiError;
use crate::auth::Tenant;
use crate::store::{PartBatch, Presign};
use draftstore_core::{part_urls, PartToSign, Storage, UploadChecksum};
use draftstore_signer::PartUrls;
use std::collections::BTreeMap;

/// The header a part's PUT carries its checksum in (signed into the URL).
const CHECKSUM_HEADER: &str = "x-amz-checksum-sha256";

/// The presigned PUTs of one `part-urls` call: the URLs in the signer's one buffer, the parts
/// as checked (their checksums borrowed from the request), and the one expiry they share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParts<'a> {
    /// The parts as checked, in the order asked.
    pub(super) parts: Vec<PartToSign<'a>>,
    /// Their URLs, in the same order.
    pub(super) urls: PartUrls,
    /// RFC 3339 UTC.
    pub(super) expires_at: String,
    /// See [`SignedParts::cut_by_credentials`].
    pub(super) cut_by_credentials: bool,
}

impl SignedParts<'_> {
    /// How many parts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether there are none (a call signs at least one).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// When every URL stops working, RFC 3339 UTC.
    #[must_use]
    pub fn expires_at(&self) -> &str {
        &self.expires_at
    }

    /// Whether the TTL was cut so the URLs do not outlive the credentials they are signed with.
    #[must_use]
    pub fn cut_by_credentials(&self) -> bool {
        self.cut_by_credentials
    }

    /// Bytes of every URL together (to size a reply).
    #[must_use]
    pub fn url_bytes(&self) -> usize {
        self.urls.iter().map(str::len).sum()
    }

    /// Each part, in the order asked.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SignedPart<'_>> + '_ {
        self.parts
            .iter()
            .zip(self.urls.iter())
            .map(|(part, url)| SignedPart {
                part_number: part.part_number,
                url,
                expires_at: &self.expires_at,
                cut_by_credentials: self.cut_by_credentials,
                checksum_sha256: part.checksum_sha256,
            })
    }
}

/// A presigned PUT of one part (borrowed from its [`SignedParts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedPart<'s> {
    /// The part, 1..=10 000.
    pub part_number: u32,
    /// The presigned URL (`?partNumber=N&uploadId=…`).
    pub url: &'s str,
    /// When the URL stops working, RFC 3339 UTC.
    pub expires_at: &'s str,
    /// The TTL was cut so the URL does not outlive the credentials it is signed with.
    pub cut_by_credentials: bool,
    /// The part's base64 SHA-256, signed in: the PUT must send it as `x-amz-checksum-sha256`.
    pub checksum_sha256: Option<&'s str>,
}

impl<'s> SignedPart<'s> {
    /// Headers the PUT must send, as `(lowercase name, value)`, sorted: the part's
    /// `x-amz-checksum-sha256` when it has one.
    pub fn required_headers(&self) -> impl Iterator<Item = (&'static str, &'s str)> {
        self.checksum_sha256
            .map(|sum| (CHECKSUM_HEADER, sum))
            .into_iter()
    }
}

impl<B: Storage + Presign> App<B> {
    /// Presigned PUTs of `numbers` (1..=1000 of them), in the order asked, each with its
    /// checksum signed in when the upload declared SHA-256. The cost does not grow with the
    /// parts already stored: the store is asked whether the upload exists and keeps checksums
    /// ([`Storage::upload_checksum`]), not for its parts.
    ///
    /// # Errors
    /// A part rule (400 naming the part); an unknown upload (404); signing failures.
    pub async fn part_urls<'a>(
        &self,
        tenant: Option<&Tenant>,
        name: &str,
        upload_id: &str,
        numbers: &[u64],
        checksums: &'a BTreeMap<String, String>,
    ) -> Result<SignedParts<'a>, ApiError> {
        let key = object_key(tenant, name)?;
        check_upload_id(upload_id)?;
        // The upload must exist (and be the caller's); whether it keeps checksums decides
        // which part URLs need one (S3 says so only through stored parts).
        let draft = &self.buckets.draft;
        let said = self
            .store
            .upload_checksum(draft, key.as_str(), upload_id)
            .await?;
        let sha256 = self.keeps_sha256(key.as_str(), upload_id, said).await?;
        let parts = part_urls(numbers, checksums, sha256)?;
        if let UploadChecksum::Unknown { .. } = said {
            // The store may not list them at complete: keep what is signed.
            self.keep_signed(key.as_str(), upload_id, &parts).await?;
        }
        if let Some(tenant) = tenant {
            tenant.allow_url().await?;
        }
        let now = now()?;
        let (ttl, cut_by_credentials) =
            ttl_within(now, self.upload_ttl, self.store.url_deadline())?;
        let expires_at = now
            .checked_add(u64::from(ttl.secs()))
            .map(|t| t.rfc3339())
            .unwrap_or_default();
        // One batch: the store signs every URL with one key lookup and one hashed head, into
        // one buffer the reply is written from.
        let batch = PartBatch {
            bucket: draft,
            key: &key,
            upload_id,
            parts: &parts,
        };
        let urls = self.store.presign_upload_parts(&batch, ttl, now)?;
        Ok(SignedParts {
            parts,
            urls,
            expires_at,
            cut_by_credentials,
        })
    }
}
