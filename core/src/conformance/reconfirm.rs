//! Confirm's idempotency against a real backend (issue 18): "already done" only when main
//! holds the copy of *this* draft. The same bytes uploaded again with another content type or
//! metadata are a new draft (a conflict, or with `overwrite` a normal confirm that replaces
//! main's type and metadata); a confirm that stopped between its copy and the draft's delete
//! still completes, once, on retry.

use super::is_not_found;
use crate::{
    confirm, promoted_metadata, Buckets, ConfirmError, ConfirmOptions, ConfirmOutcome,
    CopyCondition, CopyRequest, Metadata, ObjectName, PutOptions, Storage,
};

const BYTES: &[u8] = b"the very same bytes";

fn typed(content_type: &str, version: &str) -> PutOptions {
    PutOptions {
        content_type: Some(content_type.to_owned()),
        metadata: Metadata::from([("v".to_owned(), version.to_owned())]),
    }
}

/// Runs the checks above with buckets made from `prefix`.
pub async fn reconfirm<S: Storage>(storage: &S, prefix: &str) {
    let buckets = Buckets::new(
        &format!("{prefix}-rmain"),
        Some(&format!("{prefix}-rdrafts")),
    )
    .unwrap();
    storage.create_bucket(&buckets.main).await.unwrap();
    storage.create_bucket(&buckets.draft).await.unwrap();
    same_bytes_other_metadata(storage, &buckets).await;
    crashed_between_copy_and_delete(storage, &buckets).await;
}

async fn same_bytes_other_metadata<S: Storage>(storage: &S, buckets: &Buckets) {
    let name = ObjectName::parse("same.txt").unwrap();
    let key = name.as_str();
    let plain = ConfirmOptions::default();
    let over = ConfirmOptions {
        overwrite: true,
        ..plain
    };
    storage
        .put_object(
            &buckets.draft,
            key,
            BYTES.to_vec(),
            &typed("text/plain", "1"),
        )
        .await
        .unwrap();
    let first = confirm(storage, buckets, &name, plain).await.unwrap();
    assert_eq!(first.outcome, ConfirmOutcome::Moved);

    storage
        .put_object(&buckets.draft, key, BYTES.to_vec(), &typed("text/csv", "2"))
        .await
        .unwrap();
    assert!(
        matches!(
            confirm(storage, buckets, &name, plain).await,
            Err(ConfirmError::Conflict { .. })
        ),
        "main holds another upload of the same bytes: a conflict without overwrite"
    );
    assert!(
        storage.head_object(&buckets.draft, key).await.is_ok(),
        "a conflict leaves the draft"
    );
    let second = confirm(storage, buckets, &name, over).await.unwrap();
    assert_eq!(
        second.outcome,
        ConfirmOutcome::Moved,
        "a new draft of the same bytes is moved, not already done"
    );
    let main = storage.head_object(&buckets.main, key).await.unwrap();
    assert_eq!(
        main.content_type.as_deref(),
        Some("text/csv"),
        "main's type"
    );
    assert_eq!(
        main.metadata.get("v").map(String::as_str),
        Some("2"),
        "main's metadata is the new draft's"
    );
    assert_eq!(storage.get_object(&buckets.main, key).await.unwrap(), BYTES);
    assert!(is_not_found(
        &storage.head_object(&buckets.draft, key).await
    ));
    let again = confirm(storage, buckets, &name, over).await.unwrap();
    assert_eq!(again.outcome, ConfirmOutcome::Already, "a plain retry");
    assert_eq!(again.etag, second.etag);
}

/// A confirm that copied and stopped before deleting the draft (the copy made here exactly as
/// confirm makes it): the retry deletes the draft and reports the object already moved, with
/// or without `overwrite`, also over an earlier upload of the same bytes.
async fn crashed_between_copy_and_delete<S: Storage>(storage: &S, buckets: &Buckets) {
    for (key, overwrite) in [("crash/new.txt", false), ("same.txt", true)] {
        let name = ObjectName::parse(key).unwrap();
        storage
            .put_object(
                &buckets.draft,
                key,
                BYTES.to_vec(),
                &typed("image/png", key),
            )
            .await
            .unwrap();
        let draft = storage.head_object(&buckets.draft, key).await.unwrap();
        let copy = CopyRequest {
            from_bucket: &buckets.draft,
            from_key: key,
            to_bucket: &buckets.main,
            to_key: key,
            source_size: draft.size,
            source_etag: Some(&draft.etag),
            metadata: promoted_metadata(&draft),
            condition: CopyCondition::Always,
            source_version: None,
            source_version_id: None,
        };
        storage.copy_object(&copy).await.unwrap();
        let options = ConfirmOptions {
            overwrite,
            ..ConfirmOptions::default()
        };
        let done = confirm(storage, buckets, &name, options)
            .await
            .unwrap_or_else(|e| panic!("retry of {key}: {e}"));
        assert_eq!(
            done.outcome,
            ConfirmOutcome::Already,
            "{key}: copied before"
        );
        assert!(
            is_not_found(&storage.head_object(&buckets.draft, key).await),
            "{key}: the retry deleted the draft"
        );
        let main = storage.head_object(&buckets.main, key).await.unwrap();
        assert_eq!(main.content_type.as_deref(), Some("image/png"), "{key}");
        assert_eq!(main.metadata.get("v").map(String::as_str), Some(key));
    }
}
