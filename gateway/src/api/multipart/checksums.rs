//! Per-part SHA-256 checksums for stores whose ListParts does not list them (SeaweedFS): the
//! gateway keeps each checksum it signs into a part URL beside the upload (core's
//! `kept_parts`), and a complete sends, for every part, the checksum the store listed, else the
//! one kept, else refuses with 400 naming the part. Stores that list them (AWS S3, the embedded
//! store) are never asked for what was kept, and a store that says what the upload keeps
//! ([`UploadChecksum::Known`]: the embedded store) keeps nothing beside it.

use crate::api::app::App;
use crate::api::error::ApiError;
use crate::store::Presign;
use draftstore_core::{
    kept_parts, CompletedPart, Part, PartError, PartToSign, Storage, UploadChecksum,
};

impl<B: Storage + Presign> App<B> {
    /// Whether the upload keeps SHA-256 checksums: as the store `said` when it knows;
    /// otherwise `Some(true)` when it was recorded so at create, `None` when nothing tells yet
    /// (no part stored, no record: an upload created before the gateway kept records), else
    /// `Some(false)`.
    pub(super) async fn keeps_sha256(
        &self,
        key: &str,
        upload_id: &str,
        said: UploadChecksum,
    ) -> Result<Option<bool>, ApiError> {
        let parts_stored = match said {
            UploadChecksum::Known(sha256) => return Ok(Some(sha256)),
            UploadChecksum::Unknown { parts_stored } => parts_stored,
        };
        if kept_parts::keeps_sha256(&*self.store, &self.buckets.draft, key, upload_id).await? {
            return Ok(Some(true));
        }
        Ok(parts_stored.then_some(false))
    }

    /// Records the checksums about to be signed (none: nothing written).
    pub(super) async fn keep_signed(
        &self,
        key: &str,
        upload_id: &str,
        wanted: &[PartToSign<'_>],
    ) -> Result<(), ApiError> {
        let sums: Vec<(u32, &str)> = wanted
            .iter()
            .filter_map(|p| p.checksum_sha256.map(|s| (p.part_number, s)))
            .collect();
        if sums.is_empty() {
            return Ok(());
        }
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        kept_parts::keep_signed(&*self.store, &self.buckets.draft, key, upload_id, &sums, at)
            .await?;
        Ok(())
    }

    /// Gives every part of a SHA-256 upload its checksum: as listed, else as kept when signed.
    ///
    /// # Errors
    /// `INVALID_PART_CHECKSUM` naming the first part whose checksum is known to neither;
    /// storage failures.
    pub(super) async fn fill_checksums(
        &self,
        key: &str,
        upload_id: &str,
        listed: &[Part],
        parts: &mut [CompletedPart],
    ) -> Result<(), ApiError> {
        if parts.iter().all(|p| p.checksum_sha256.is_some()) {
            return Ok(());
        }
        // One GET for an upload without checksums; the signed records are read only for one
        // that keeps them.
        let said = UploadChecksum::of_parts(listed);
        if self.keeps_sha256(key, upload_id, said).await? != Some(true) {
            return Ok(());
        }
        let kept = kept_parts::kept(&*self.store, &self.buckets.draft, key, upload_id).await?;
        for part in parts.iter_mut().filter(|p| p.checksum_sha256.is_none()) {
            let sum = kept
                .checksums
                .get(&part.part_number)
                .ok_or(PartError::ChecksumUnknown {
                    number: part.part_number,
                })?;
            part.checksum_sha256 = Some(sum.clone());
        }
        Ok(())
    }
}
