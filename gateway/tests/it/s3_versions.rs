//! Issue 18's third review, on SeaweedFS with a versioned draft bucket: confirm copies and
//! deletes exactly the version it looked at (`x-amz-copy-source: …?versionId=`, DeleteObjects
//! with `VersionId`). A re-upload of the same bytes with another type made after confirm's last
//! look was deleted (main kept the old type, the new draft's confirm said "already done"); now
//! it stays, and no older upload of the name becomes the draft again.

use crate::s3::{env, prefix, storage};
use draftstore_core::{
    confirm, confirm_with, BeforeCopy, BucketName, Buckets, ConfirmError, ConfirmOptions,
    ConfirmOutcome, CopyCondition, CopyRequest, MetadataDirective, ObjectInfo, ObjectName,
    PutOptions, Storage, StorageError,
};
use draftstore_gateway::store::s3::S3Storage;

/// Both buckets, the draft bucket versioned.
async fn versioned(tag: &str) -> Option<(S3Storage, Buckets)> {
    versioned_with(tag, &[]).await
}

/// [`versioned`] with more settings.
async fn versioned_with(tag: &str, extra: &[(&str, &str)]) -> Option<(S3Storage, Buckets)> {
    let s3 = storage(&env(extra)?);
    let buckets = Buckets::new(&format!("{}-main", prefix(tag)), None).unwrap();
    s3.create_bucket(&buckets.main).await.unwrap();
    s3.create_bucket(&buckets.draft).await.unwrap();
    s3.enable_versioning(&buckets.draft).await.unwrap();
    assert_eq!(s3.versioning(&buckets.draft).await.unwrap(), "Enabled");
    Some((s3, buckets))
}

fn typed(content_type: &str, note: &str) -> PutOptions {
    PutOptions {
        content_type: Some(content_type.to_owned()),
        metadata: [("note".to_owned(), note.to_owned())].into(),
    }
}

/// A bucket policy of one statement: `effect` (`Allow`/`Deny`) of `action` on `resource` for
/// everyone.
fn policy(effect: &str, action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Principal":"*","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}

async fn note(s3: &S3Storage, bucket: &BucketName, key: &str) -> Option<String> {
    match s3.head_object(bucket, key).await {
        Ok(info) => Some(info.metadata.get("note").cloned().unwrap_or_default()),
        Err(StorageError::NotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

/// Uploads the same bytes again with another type and note right after confirm's copy, i.e.
/// after its last look at the draft and before its delete.
struct ReuploadAfterCopy<'a> {
    s3: &'a S3Storage,
    draft: &'a BucketName,
}

impl BeforeCopy for ReuploadAfterCopy<'_> {
    fn is_noop(&self) -> bool {
        true
    }

    fn before_copy(
        &self,
        _name: &ObjectName,
        _draft: &ObjectInfo,
    ) -> impl std::future::Future<Output = Result<(), ConfirmError>> + Send {
        std::future::ready(Ok(()))
    }

    async fn after_copy(&self, name: &ObjectName, _draft: &ObjectInfo, _main_etag: &str) {
        self.s3
            .put_object(
                self.draft,
                name.as_str(),
                b"same".to_vec(),
                &typed("text/csv", "B"),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_reupload_between_the_last_look_and_the_delete_stays() {
    let Some((s3, buckets)) = versioned("ver").await else {
        return;
    };
    let name = ObjectName::parse("r.txt").unwrap();
    s3.put_object(
        &buckets.draft,
        "r.txt",
        b"same".to_vec(),
        &typed("text/plain", "A"),
    )
    .await
    .unwrap();
    assert!(
        s3.head_object(&buckets.draft, "r.txt")
            .await
            .unwrap()
            .version_id
            .is_some(),
        "a versioned bucket's HEAD names the version"
    );
    let hook = ReuploadAfterCopy {
        s3: &s3,
        draft: &buckets.draft,
    };
    let done = confirm_with(&s3, &buckets, &name, ConfirmOptions::default(), &hook)
        .await
        .unwrap();
    assert_eq!(done.outcome, ConfirmOutcome::Moved);
    assert_eq!(
        note(&s3, &buckets.main, "r.txt").await.as_deref(),
        Some("A")
    );
    let kept = s3.head_object(&buckets.draft, "r.txt").await.unwrap();
    assert_eq!(
        (
            kept.content_type.as_deref(),
            kept.metadata.get("note").map(String::as_str)
        ),
        (Some("text/csv"), Some("B")),
        "the re-upload stays the draft"
    );

    // It is a new draft: a conflict with main's A, moved with overwrite; then nothing is left.
    assert!(matches!(
        confirm(&s3, &buckets, &name, ConfirmOptions::default()).await,
        Err(ConfirmError::Conflict { .. })
    ));
    let options = ConfirmOptions {
        overwrite: true,
        ..ConfirmOptions::default()
    };
    let done = confirm(&s3, &buckets, &name, options).await.unwrap();
    assert_eq!(done.outcome, ConfirmOutcome::Moved);
    assert_eq!(
        note(&s3, &buckets.main, "r.txt").await.as_deref(),
        Some("B")
    );
    assert_eq!(note(&s3, &buckets.draft, "r.txt").await, None);
}

/// The copy names the version: an upload made after the HEAD that gave it is not copied.
#[tokio::test]
async fn the_copy_takes_the_version_looked_at() {
    let Some((s3, buckets)) = versioned("vcp").await else {
        return;
    };
    s3.put_object(
        &buckets.draft,
        "c.txt",
        b"same".to_vec(),
        &typed("text/plain", "A"),
    )
    .await
    .unwrap();
    let looked = s3.head_object(&buckets.draft, "c.txt").await.unwrap();
    s3.put_object(
        &buckets.draft,
        "c.txt",
        b"same".to_vec(),
        &typed("text/csv", "B"),
    )
    .await
    .unwrap();
    let request = CopyRequest {
        from_bucket: &buckets.draft,
        from_key: "c.txt",
        to_bucket: &buckets.main,
        to_key: "c.txt",
        source_size: looked.size,
        source_etag: Some(&looked.etag),
        source_version: None,
        source_version_id: looked.version_id.as_deref(),
        metadata: MetadataDirective::Copy,
        condition: CopyCondition::IfAbsent,
    };
    s3.copy_object(&request).await.unwrap();
    let copy = s3.head_object(&buckets.main, "c.txt").await.unwrap();
    assert_eq!(
        (
            copy.content_type.as_deref(),
            copy.metadata.get("note").map(String::as_str)
        ),
        (Some("text/plain"), Some("A"))
    );
}

/// Deleting the copied version by its id would make the upload before it current again (a
/// draft uploaded twice reappeared after its confirm); older versions go with it.
#[tokio::test]
async fn no_older_upload_becomes_the_draft_again() {
    let Some((s3, buckets)) = versioned("vold").await else {
        return;
    };
    for n in ["0", "1"] {
        s3.put_object(
            &buckets.draft,
            "o.txt",
            n.as_bytes().to_vec(),
            &typed("text/plain", n),
        )
        .await
        .unwrap();
    }
    let name = ObjectName::parse("o.txt").unwrap();
    let done = confirm(&s3, &buckets, &name, ConfirmOptions::default())
        .await
        .unwrap();
    assert_eq!(done.outcome, ConfirmOutcome::Moved);
    assert_eq!(
        note(&s3, &buckets.main, "o.txt").await.as_deref(),
        Some("1")
    );
    assert_eq!(
        note(&s3, &buckets.draft, "o.txt").await,
        None,
        "upload 0 stays gone"
    );
    let again = confirm(&s3, &buckets, &name, ConfirmOptions::default())
        .await
        .unwrap();
    assert_eq!(
        again.outcome,
        ConfirmOutcome::Already,
        "a retry finds it done"
    );
}

/// A draft over the multipart threshold is copied part by part (UploadPartCopy): each part
/// names the version too.
#[tokio::test]
async fn a_multipart_copy_takes_the_version_looked_at() {
    let five_mib = (5 * 1024 * 1024).to_string();
    let settings = [
        ("DRAFTSTORE_S3_MULTIPART_THRESHOLD", five_mib.as_str()),
        ("DRAFTSTORE_S3_PART_SIZE", five_mib.as_str()),
    ];
    let Some((s3, buckets)) = versioned_with("vmp", &settings).await else {
        return;
    };
    let first = vec![b'a'; 11 * 1024 * 1024];
    s3.put_object(
        &buckets.draft,
        "m.bin",
        first.clone(),
        &typed("application/x-a", "A"),
    )
    .await
    .unwrap();
    let looked = s3.head_object(&buckets.draft, "m.bin").await.unwrap();
    s3.put_object(
        &buckets.draft,
        "m.bin",
        vec![b'b'; 11 * 1024 * 1024],
        &typed("application/x-b", "B"),
    )
    .await
    .unwrap();
    let request = CopyRequest {
        from_bucket: &buckets.draft,
        from_key: "m.bin",
        to_bucket: &buckets.main,
        to_key: "m.bin",
        source_size: looked.size,
        source_etag: Some(&looked.etag),
        source_version: None,
        source_version_id: looked.version_id.as_deref(),
        metadata: MetadataDirective::Replace {
            content_type: looked.content_type.clone(),
            metadata: looked.metadata.clone(),
        },
        condition: CopyCondition::IfAbsent,
    };
    let copied = s3.copy_object(&request).await.unwrap();
    assert!(copied.etag.ends_with("-3"), "three parts: {}", copied.etag);
    assert!(
        s3.get_object(&buckets.main, "m.bin").await.unwrap() == first,
        "the first upload's bytes"
    );
}

/// Over REST with webhooks, on a versioned draft bucket: an upload made twice is confirmed
/// (the latest), announced once, and leaves neither a draft nor a queued event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_over_rest_on_a_versioned_draft_bucket_is_announced_and_leaves_nothing() {
    use crate::harness::Direct;
    use crate::reconfirm::{queued, serve_with, types, upload};
    let Some((receiver, server)) = serve_with(true, &[]).await else {
        return;
    };
    let (main, draft) = (&server.config.buckets.main, &server.config.buckets.draft);
    let Direct::S3(s3) = server.storage() else {
        panic!("an S3 server");
    };
    s3.create_bucket(draft).await.unwrap();
    s3.enable_versioning(draft).await.unwrap();
    upload(&server, "e.txt", "first", "text/plain", "1").await;
    upload(&server, "e.txt", "second", "text/csv", "2").await;
    crate::events::confirm_ok(&server, "e.txt", false).await;
    assert_eq!(note(s3, main, "e.txt").await.as_deref(), Some("2"));
    assert_eq!(
        note(s3, draft, "e.txt").await,
        None,
        "neither upload is left"
    );
    crate::stub::eventually(
        std::time::Duration::from_secs(30),
        "announced, the queue empty",
        || async { !types(&receiver).is_empty() && queued(&server).await.is_empty() },
    )
    .await;
    assert_eq!(types(&receiver).values().collect::<Vec<_>>(), ["text/csv"]);
    server.stop().await;
}

/// Sweep still deletes by key on a versioned draft bucket (README: a lifecycle rule removes the
/// noncurrent versions and delete markers it leaves): its ETag-conditional batch delete works
/// there, and an expired draft is gone as far as every API sees.
#[tokio::test]
async fn sweep_expires_drafts_on_a_versioned_draft_bucket() {
    let Some((s3, buckets)) = versioned("vsw").await else {
        return;
    };
    s3.put_object(
        &buckets.draft,
        "old.txt",
        b"old".to_vec(),
        &typed("text/plain", "o"),
    )
    .await
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let options = draftstore_core::SweepOptions::new(i64::try_from(now).unwrap() + 7200, 3600);
    let report = draftstore_core::sweep(&s3, &buckets.draft, options, &|| true, &mut |_| {}).await;
    assert_eq!(
        (report.expired, report.deleted, report.failed),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(note(&s3, &buckets.draft, "old.txt").await, None);
}

/// Issue 18, review: with `s3:ListBucketVersions` denied on the draft bucket (a bucket policy),
/// the confirm's answer and its ERROR log name the action, the bucket and what to grant, not
/// "credentials"; once granted, a retry finishes (the draft is deleted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_version_listing_names_the_permission() {
    let Some((s3, buckets)) = versioned("deny").await else {
        return;
    };
    s3.put_object(
        &buckets.draft,
        "d.txt",
        b"d".to_vec(),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    let resource = format!("arn:aws:s3:::{}", buckets.draft);
    let deny = policy("Deny", "s3:ListBucketVersions", &resource);
    s3.put_bucket_policy(&buckets.draft, &deny).await.unwrap();
    let name = ObjectName::parse("d.txt").unwrap();
    let err = confirm(&s3, &buckets, &name, ConfirmOptions::default())
        .await
        .unwrap_err();
    let ConfirmError::Storage(StorageError::Denied { reason }) = &err else {
        panic!("{err:?}");
    };
    assert!(
        reason.contains("s3:ListBucketVersions")
            && reason.contains(&format!("bucket {}", buckets.draft))
            && reason.contains("grant")
            && !reason.contains("credentials"),
        "{reason}"
    );
    assert!(
        s3.head_object(&buckets.main, "d.txt").await.is_ok(),
        "the copy was allowed: only the version listing is denied"
    );

    // Granted (the policy replaced by one that allows it): a retry finishes.
    let allow = policy("Allow", "s3:ListBucketVersions", &resource);
    s3.put_bucket_policy(&buckets.draft, &allow).await.unwrap();
    let done = confirm(&s3, &buckets, &name, ConfirmOptions::default())
        .await
        .unwrap();
    assert_eq!(done.outcome, ConfirmOutcome::Already);
    assert!(matches!(
        s3.head_object(&buckets.draft, "d.txt").await,
        Err(StorageError::NotFound { .. })
    ));
}

/// Issue 18, review: a key with more than one page (1000) of versions. Confirm reads every page
/// and deletes them in batches of at most 1000: no older upload comes back as the draft.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_more_than_1000_versions_leaves_no_older_upload() {
    use futures_util::StreamExt;
    let Some((s3, buckets)) = versioned("v1003").await else {
        return;
    };
    let old = typed("text/plain", "old");
    let (s3_ref, draft, old) = (&s3, &buckets.draft, &old);
    let puts = futures_util::stream::iter(0..1002)
        .map(|_| s3_ref.put_object(draft, "m.txt", b"old".to_vec(), old))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    assert!(puts.iter().all(Result::is_ok));
    s3.put_object(
        &buckets.draft,
        "m.txt",
        b"last".to_vec(),
        &typed("text/plain", "last"),
    )
    .await
    .unwrap();
    let name = ObjectName::parse("m.txt").unwrap();
    let done = confirm(&s3, &buckets, &name, ConfirmOptions::default())
        .await
        .unwrap();
    assert_eq!(done.outcome, ConfirmOutcome::Moved);
    assert_eq!(
        note(&s3, &buckets.main, "m.txt").await.as_deref(),
        Some("last")
    );
    assert_eq!(
        note(&s3, &buckets.draft, "m.txt").await,
        None,
        "none of the 1002 older uploads is the draft again"
    );
}

/// Issue 18, second fresh review: S3 may delete some keys of a DeleteObjects and refuse others
/// per key (`AccessDenied`, `InternalError`, `SlowDown`). With the copied version in the same
/// batch as older ones, S3 deleting it and refusing them made an older upload the draft (a
/// retry then answered 409 and `overwrite` put the old bytes in main). The older versions go
/// first; the copied one alone, last: a per-key refusal leaves the confirmed upload current,
/// the error names the refused version, and a retry finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_refused_for_some_keys_leaves_no_older_upload_current() {
    use crate::proxy::{Proxy, ProxyFault};
    let Some(direct_env) = env(&[]) else {
        return;
    };
    let direct = storage(&direct_env);
    let proxy = Proxy::start(direct_env["AWS_ENDPOINT_URL"].clone()).await;
    let mut proxied_env = direct_env.clone();
    proxied_env.insert("AWS_ENDPOINT_URL".into(), proxy.url());
    let s3 = storage(&proxied_env);
    let buckets = Buckets::new(&format!("{}-main", prefix("vpd")), None).unwrap();
    direct.create_bucket(&buckets.main).await.unwrap();
    direct.create_bucket(&buckets.draft).await.unwrap();
    direct.enable_versioning(&buckets.draft).await.unwrap();
    for n in ["v0", "v1", "final-pd3"] {
        direct
            .put_object(
                &buckets.draft,
                "pd3.txt",
                n.as_bytes().to_vec(),
                &typed("text/plain", n),
            )
            .await
            .unwrap();
    }
    proxy.push_deletes([ProxyFault::PartialDelete]);
    let name = ObjectName::parse("pd3.txt").unwrap();
    let err = confirm(&s3, &buckets, &name, ConfirmOptions::default())
        .await
        .unwrap_err();
    // What S3 would have done: delete the first key of the batch.
    let deleted = proxy.partly_deleted();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    direct
        .delete_one_version(&buckets.draft, "pd3.txt", &deleted[0])
        .await
        .unwrap();
    let ConfirmError::Storage(StorageError::Denied { reason }) = &err else {
        panic!("{err:?}");
    };
    assert!(
        reason.contains("versionId=") && !reason.contains(&format!("versionId={}", deleted[0])),
        "names the refused version, not the deleted one: {reason}"
    );
    assert_eq!(
        note(&direct, &buckets.draft, "pd3.txt").await.as_deref(),
        Some("final-pd3"),
        "the confirmed upload stays the draft, no older one comes back"
    );
    assert_eq!(
        note(&direct, &buckets.main, "pd3.txt").await.as_deref(),
        Some("final-pd3")
    );
    let again = confirm(&s3, &buckets, &name, ConfirmOptions::default())
        .await
        .unwrap();
    assert_eq!(again.outcome, ConfirmOutcome::Already, "a retry finishes");
    assert_eq!(note(&direct, &buckets.draft, "pd3.txt").await, None);
}

/// Issue 18, second fresh review: a refused copy named no permission ("the permission for S3's
/// CopyObject"). S3 does not say which of the two a copy needs is missing, so both are named,
/// joined by "or": reading the draft's version on the draft bucket, writing on the main bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_copy_names_both_permissions_it_needs() {
    let Some((s3, buckets)) = versioned("dcopy").await else {
        return;
    };
    s3.put_object(
        &buckets.draft,
        "c.txt",
        b"c".to_vec(),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    let deny = policy(
        "Deny",
        "s3:PutObject",
        &format!("arn:aws:s3:::{}/*", buckets.main),
    );
    s3.put_bucket_policy(&buckets.main, &deny).await.unwrap();
    let name = ObjectName::parse("c.txt").unwrap();
    let err = confirm(&s3, &buckets, &name, ConfirmOptions::default())
        .await
        .unwrap_err();
    let ConfirmError::Storage(StorageError::Denied { reason }) = &err else {
        panic!("{err:?}");
    };
    assert!(
        reason.contains(&format!(
            "lacks s3:GetObjectVersion on bucket {} (the copy's source) or s3:PutObject on bucket {}",
            buckets.draft, buckets.main
        )) && !reason.contains("the permission for S3's"),
        "{reason}"
    );
    assert_eq!(
        note(&s3, &buckets.draft, "c.txt").await.as_deref(),
        Some("")
    );
}
