//! The storage conformance suite: async checks every backend runs (in-memory, the embedded
//! local store, real S3). Each check makes its own buckets from `prefix` (3..=40 characters of
//! a valid bucket name), so checks can run side by side against one server.
//!
//! These are test functions: they assert and panic with a message saying what the backend got
//! wrong.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::{
    confirm, sweep, BucketName, Buckets, ConfirmError, ConfirmOptions, ConfirmOutcome,
    CopyCondition, CopyRequest, DeleteTarget, Metadata, MetadataDirective, ObjectName, PutOptions,
    Storage, StorageError, SweepOptions,
};

mod multipart;
mod reconfirm;
mod sweep_batches;
pub use multipart::{
    multipart, multipart_abort, multipart_checksums, multipart_chosen_parts, multipart_errors,
    multipart_flow,
};
pub use reconfirm::reconfirm;
pub use sweep_batches::sweep_batches;

/// Keys with every character class DraftStore accepts in a name.
pub const ODD_KEYS: &[&str] = &[
    "plain.txt",
    "dir/sub dir/with space.bin",
    "a+b=c&d%e?f#g~h",
    "unicode/ሴ/😀/é",
    "...dots.../x..y",
    "percent%2Fslash%20encoded",
    "semi;colon,comma:colon@at!bang$dollar'quote(paren)*star",
];

/// Runs every check.
pub async fn run_all<S: Storage>(storage: &S, prefix: &str) {
    buckets(storage, prefix).await;
    objects(storage, prefix).await;
    conditional_puts(storage, prefix).await;
    copies(storage, prefix).await;
    deletes(storage, prefix).await;
    listing(storage, prefix).await;
    confirm_flow(storage, prefix).await;
    concurrent_confirms(storage, prefix).await;
    reconfirm(storage, prefix).await;
    sweep_flow(storage, prefix).await;
    sweep_batches(storage, prefix).await;
    multipart(storage, prefix).await;
}

async fn bucket<S: Storage>(storage: &S, prefix: &str, name: &str) -> BucketName {
    let bucket =
        BucketName::parse(&format!("{prefix}-{name}")).expect("prefix makes a valid bucket name");
    storage.create_bucket(&bucket).await.expect("create bucket");
    bucket
}

fn is_not_found<T: std::fmt::Debug>(r: &Result<T, StorageError>) -> bool {
    matches!(r, Err(StorageError::NotFound { .. }))
}

/// Buckets: creating twice succeeds, HEAD sees them, missing ones are `NotFound`.
pub async fn buckets<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "bkt").await;
    storage
        .create_bucket(&b)
        .await
        .expect("creating an existing bucket of ours is a success");
    storage.head_bucket(&b).await.expect("head bucket");
    let missing = BucketName::parse(&format!("{prefix}-missing")).unwrap();
    assert!(
        is_not_found(&storage.head_bucket(&missing).await),
        "head of a missing bucket"
    );
    assert!(
        is_not_found(&storage.head_object(&missing, "k").await),
        "head object in a missing bucket"
    );
}

/// Objects: PUT, HEAD and GET keep bytes, size, content type and metadata, for odd keys too.
pub async fn objects<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "obj").await;
    for (i, key) in ODD_KEYS.iter().enumerate() {
        let body: Vec<u8> = (0..(i * 37 + 1)).map(|n| (n * 7 + i) as u8).collect();
        let options = PutOptions {
            content_type: Some("application/x-test".into()),
            metadata: Metadata::from([("owner".to_owned(), format!("user-{i}"))]),
        };
        let etag = storage
            .put_object(&b, key, body.clone(), &options)
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e}"));
        let info = storage
            .head_object(&b, key)
            .await
            .unwrap_or_else(|e| panic!("head {key:?}: {e}"));
        assert_eq!(info.size, body.len() as u64, "size of {key:?}");
        assert_eq!(info.etag, etag, "etag of {key:?}");
        assert!(
            !etag.is_empty() && !etag.contains('"'),
            "etag without quotes: {etag}"
        );
        assert_eq!(
            info.content_type.as_deref(),
            Some("application/x-test"),
            "content type of {key:?}"
        );
        assert_eq!(
            info.metadata.get("owner"),
            Some(&format!("user-{i}")),
            "metadata of {key:?}"
        );
        assert_eq!(
            storage.get_object(&b, key).await.unwrap(),
            body,
            "bytes of {key:?}"
        );
    }
    assert!(
        is_not_found(&storage.head_object(&b, "no-such-key").await),
        "head of a missing key"
    );
    assert!(
        is_not_found(&storage.get_object(&b, "no-such-key").await),
        "get of a missing key"
    );
}

/// Conditional puts (the event queue's claims): `IfAbsent` creates once, `IfMatch` replaces
/// only the version it names; where the store enforces them, the losers get
/// `PreconditionFailed` and the object keeps the winner's bytes.
pub async fn conditional_puts<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "cput").await;
    let options = PutOptions::default();
    let key = ".draftstore/events/msg_1.json";
    let first = storage
        .put_object_if(&b, key, b"one".to_vec(), &options, &CopyCondition::IfAbsent)
        .await
        .expect("IfAbsent on a missing key writes");
    assert_eq!(storage.get_object(&b, key).await.unwrap(), b"one");
    let second = storage
        .put_object_if(
            &b,
            key,
            b"two".to_vec(),
            &options,
            &CopyCondition::IfMatch(first.clone()),
        )
        .await
        .expect("IfMatch with the current ETag writes");
    assert_eq!(storage.get_object(&b, key).await.unwrap(), b"two");
    let always = storage
        .put_object_if(&b, "plain", b"x".to_vec(), &options, &CopyCondition::Always)
        .await
        .expect("Always writes");
    assert!(!always.is_empty());
    if !storage.capabilities().conditional_put {
        return;
    }
    let again = storage
        .put_object_if(
            &b,
            key,
            b"three".to_vec(),
            &options,
            &CopyCondition::IfAbsent,
        )
        .await;
    assert!(
        matches!(again, Err(StorageError::PreconditionFailed { .. })),
        "IfAbsent on an existing key: {again:?}"
    );
    let stale = storage
        .put_object_if(
            &b,
            key,
            b"four".to_vec(),
            &options,
            &CopyCondition::IfMatch(first),
        )
        .await;
    assert!(
        matches!(stale, Err(StorageError::PreconditionFailed { .. })),
        "IfMatch with an old ETag: {stale:?}"
    );
    assert_eq!(
        storage.get_object(&b, key).await.unwrap(),
        b"two",
        "refused puts leave the object as it was"
    );
    assert_eq!(storage.head_object(&b, key).await.unwrap().etag, second);
    let missing = storage
        .put_object_if(
            &b,
            "absent",
            b"five".to_vec(),
            &options,
            &CopyCondition::IfMatch(second),
        )
        .await;
    assert!(
        matches!(
            missing,
            Err(StorageError::PreconditionFailed { .. } | StorageError::NotFound { .. })
        ),
        "IfMatch on a missing key: {missing:?}"
    );
}

/// Copies: metadata replaced, source condition, destination conditions where supported.
pub async fn copies<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "cpy").await;
    for key in ODD_KEYS {
        let etag = storage
            .put_object(&b, key, key.as_bytes().to_vec(), &PutOptions::default())
            .await
            .unwrap();
        let to = format!("copy/{key}");
        let request = CopyRequest {
            from_bucket: &b,
            from_key: key,
            to_bucket: &b,
            to_key: &to,
            source_size: key.len() as u64,
            source_etag: Some(&etag),
            metadata: MetadataDirective::Replace {
                content_type: Some("text/plain".into()),
                metadata: Metadata::from([("copied".to_owned(), "yes".to_owned())]),
            },
            condition: CopyCondition::Always,
            source_version: None,
            source_version_id: None,
        };
        storage
            .copy_object(&request)
            .await
            .unwrap_or_else(|e| panic!("copy {key:?}: {e}"));
        let info = storage.head_object(&b, &to).await.unwrap();
        assert_eq!(
            info.metadata.get("copied").map(String::as_str),
            Some("yes"),
            "replaced metadata of {key:?}"
        );
        assert_eq!(info.content_type.as_deref(), Some("text/plain"));
        assert_eq!(
            storage.get_object(&b, &to).await.unwrap(),
            key.as_bytes(),
            "copied bytes of {key:?}"
        );
    }
    let key = ODD_KEYS[0];
    let base = CopyRequest {
        from_bucket: &b,
        from_key: key,
        to_bucket: &b,
        to_key: "dest",
        source_size: key.len() as u64,
        source_etag: Some("0123456789abcdef0123456789abcdef"),
        metadata: MetadataDirective::Copy,
        condition: CopyCondition::Always,
        source_version: None,
        source_version_id: None,
    };
    assert!(
        matches!(
            storage.copy_object(&base).await,
            Err(StorageError::PreconditionFailed { .. })
        ),
        "copy with a stale source etag"
    );
    let missing = CopyRequest {
        from_key: "no-such-key",
        source_etag: None,
        ..base.clone()
    };
    assert!(
        is_not_found(&storage.copy_object(&missing).await),
        "copy of a missing source"
    );
    if storage.capabilities().conditional_copy {
        let first = CopyRequest {
            source_etag: None,
            condition: CopyCondition::IfAbsent,
            ..base.clone()
        };
        storage
            .copy_object(&first)
            .await
            .expect("copy if absent onto nothing");
        assert!(
            matches!(
                storage.copy_object(&first).await,
                Err(StorageError::PreconditionFailed { .. })
            ),
            "copy if absent onto an existing object"
        );
        let wrong = CopyRequest {
            source_etag: None,
            condition: CopyCondition::IfMatch("0".repeat(32)),
            ..base
        };
        assert!(
            matches!(
                storage.copy_object(&wrong).await,
                Err(StorageError::PreconditionFailed { .. })
            ),
            "copy if-match with a wrong etag"
        );
    }
}

/// Deletes: idempotent, batches with missing keys, conditional where supported.
pub async fn deletes<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "del").await;
    storage
        .put_object(&b, "one", b"1".to_vec(), &PutOptions::default())
        .await
        .unwrap();
    storage.delete_object(&b, "one").await.expect("delete");
    storage
        .delete_object(&b, "one")
        .await
        .expect("deleting a missing key is a success");
    assert!(is_not_found(&storage.head_object(&b, "one").await));

    let mut targets = Vec::new();
    for key in ODD_KEYS {
        storage
            .put_object(&b, key, b"x".to_vec(), &PutOptions::default())
            .await
            .unwrap();
        targets.push(DeleteTarget {
            key: (*key).to_owned(),
            etag: None,
            version: None,
        });
        targets.push(DeleteTarget {
            key: format!("missing/{key}"),
            etag: None,
            version: None,
        });
    }
    let outcomes = storage
        .delete_objects(&b, &targets)
        .await
        .expect("batch delete");
    for target in &targets {
        let outcome = outcomes
            .iter()
            .find(|o| o.key == target.key)
            .unwrap_or_else(|| panic!("no outcome for {:?}", target.key));
        assert_eq!(outcome.result, Ok(()), "outcome for {:?}", target.key);
    }
    for key in ODD_KEYS {
        assert!(
            is_not_found(&storage.head_object(&b, key).await),
            "{key:?} deleted in the batch"
        );
    }
    if storage.capabilities().conditional_delete {
        let etag = storage
            .put_object(&b, "kept", b"v1".to_vec(), &PutOptions::default())
            .await
            .unwrap();
        let stale = [DeleteTarget {
            key: "kept".into(),
            etag: Some("0".repeat(32)),
            version: None,
        }];
        let outcomes = storage.delete_objects(&b, &stale).await.unwrap();
        assert!(
            matches!(
                outcomes[0].result,
                Err(StorageError::PreconditionFailed { .. })
            ),
            "delete with a stale etag"
        );
        assert!(
            storage.head_object(&b, "kept").await.is_ok(),
            "object kept after a stale conditional delete"
        );
        let fresh = [DeleteTarget {
            key: "kept".into(),
            etag: Some(etag),
            version: None,
        }];
        assert_eq!(
            storage.delete_objects(&b, &fresh).await.unwrap()[0].result,
            Ok(())
        );
    }
}

/// Listing: key order across more than three pages, no duplicates, prefixes honoured.
pub async fn listing<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "lst").await;
    let mut keys: Vec<String> = (0..9).map(|i| format!("p/{i:02} item")).collect();
    keys.push("q/other".into());
    for key in &keys {
        storage
            .put_object(&b, key, b"x".to_vec(), &PutOptions::default())
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut next = None;
    loop {
        let page = storage
            .list_objects(&b, "p/", next.as_deref(), 2)
            .await
            .expect("list");
        assert!(page.objects.len() <= 2, "page size honoured");
        pages += 1;
        seen.extend(page.objects.into_iter().map(|o| o.key));
        next = page.next;
        if next.is_none() {
            break;
        }
        assert!(pages < 20, "listing does not end");
    }
    assert!(pages > 3, "more than three pages, got {pages}");
    keys.pop();
    assert_eq!(seen, keys, "all keys under the prefix, in order, once");
}

/// Confirm on this backend: promote, idempotent again, conflict, overwrite.
pub async fn confirm_flow<S: Storage>(storage: &S, prefix: &str) {
    let buckets =
        Buckets::new(&format!("{prefix}-main"), Some(&format!("{prefix}-drafts"))).unwrap();
    storage.create_bucket(&buckets.main).await.unwrap();
    storage.create_bucket(&buckets.draft).await.unwrap();
    for key in ODD_KEYS {
        let name = ObjectName::parse(key).unwrap();
        let body = format!("bytes of {key}").into_bytes();
        storage
            .put_object(&buckets.draft, key, body.clone(), &PutOptions::default())
            .await
            .unwrap();
        let done = confirm(storage, &buckets, &name, ConfirmOptions::default())
            .await
            .unwrap_or_else(|e| panic!("confirm {key:?}: {e}"));
        assert_eq!(done.outcome, ConfirmOutcome::Moved);
        assert_eq!(done.size, body.len() as u64);
        assert_eq!(
            storage.get_object(&buckets.main, key).await.unwrap(),
            body,
            "main bytes of {key:?}"
        );
        assert!(
            is_not_found(&storage.head_object(&buckets.draft, key).await),
            "draft of {key:?} gone"
        );
        let again = confirm(storage, &buckets, &name, ConfirmOptions::default())
            .await
            .unwrap();
        assert_eq!(
            again.outcome,
            ConfirmOutcome::Already,
            "second confirm of {key:?} is idempotent"
        );
        assert_eq!((again.size, &again.etag), (done.size, &done.etag));
    }
    let name = ObjectName::parse(ODD_KEYS[0]).unwrap();
    storage
        .put_object(
            &buckets.draft,
            name.as_str(),
            b"different".to_vec(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            confirm(storage, &buckets, &name, ConfirmOptions::default()).await,
            Err(ConfirmError::Conflict { .. })
        ),
        "a different draft over a confirmed object is a conflict"
    );
    let over = ConfirmOptions {
        overwrite: true,
        ..ConfirmOptions::default()
    };
    confirm(storage, &buckets, &name, over)
        .await
        .expect("overwrite");
    assert_eq!(
        storage
            .get_object(&buckets.main, name.as_str())
            .await
            .unwrap(),
        b"different"
    );
    let missing = ObjectName::parse("never/uploaded").unwrap();
    assert!(matches!(
        confirm(storage, &buckets, &missing, ConfirmOptions::default()).await,
        Err(ConfirmError::NotFound { .. })
    ));
}

/// Confirms racing on one name: 10 drafts, 8 confirms of each at once. All succeed, main holds
/// every draft's bytes, and exactly one confirm per object reports [`ConfirmOutcome::Moved`]
/// (on a store without conditional copies, confirms in one process take turns).
pub async fn concurrent_confirms<S: Storage>(storage: &S, prefix: &str) {
    const OBJECTS: usize = 10;
    const CONFIRMS: usize = 8;
    let buckets = Buckets::new(
        &format!("{prefix}-cmain"),
        Some(&format!("{prefix}-cdrafts")),
    )
    .unwrap();
    storage.create_bucket(&buckets.main).await.unwrap();
    storage.create_bucket(&buckets.draft).await.unwrap();
    let names: Vec<ObjectName> = (0..OBJECTS)
        .map(|i| ObjectName::parse(&format!("race/{i}.bin")).unwrap())
        .collect();
    for (i, name) in names.iter().enumerate() {
        let body = vec![b'r'; i + 1];
        storage
            .put_object(&buckets.draft, name.as_str(), body, &PutOptions::default())
            .await
            .unwrap();
    }
    let results = futures_util::future::join_all(
        names
            .iter()
            .flat_map(|name| std::iter::repeat_n(name, CONFIRMS))
            .map(|name| confirm(storage, &buckets, name, ConfirmOptions::default())),
    )
    .await;
    let mut moved = vec![0_usize; OBJECTS];
    for (i, result) in results.into_iter().enumerate() {
        let object = i / CONFIRMS;
        let done = result.unwrap_or_else(|e| panic!("confirm of object {object}: {e}"));
        assert_eq!(done.size, object as u64 + 1, "size of object {object}");
        if done.outcome == ConfirmOutcome::Moved {
            moved[object] += 1;
        }
    }
    assert_eq!(
        moved,
        vec![1; OBJECTS],
        "each object is moved by exactly one of {CONFIRMS} concurrent confirms"
    );
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            storage
                .get_object(&buckets.main, name.as_str())
                .await
                .unwrap(),
            vec![b'r'; i + 1]
        );
        assert!(is_not_found(
            &storage.head_object(&buckets.draft, name.as_str()).await
        ));
    }
}

/// Sweep on this backend: dry run deletes nothing; a sweep removes expired drafts only.
pub async fn sweep_flow<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "swp").await;
    let main = bucket(storage, prefix, "swp-main").await;
    for key in ODD_KEYS {
        storage
            .put_object(&b, key, b"draft".to_vec(), &PutOptions::default())
            .await
            .unwrap();
    }
    storage
        .put_object(&main, "confirmed", b"keep".to_vec(), &PutOptions::default())
        .await
        .unwrap();
    let queued = crate::events::queue_key("msg_sweep");
    storage
        .put_object(&b, &queued, b"{}".to_vec(), &PutOptions::default())
        .await
        .unwrap();
    let stored_at = storage
        .head_object(&b, ODD_KEYS[0])
        .await
        .unwrap()
        .last_modified;
    let later = SweepOptions {
        page_size: 3,
        batch_size: 2,
        ..SweepOptions::new(stored_at + 3600, 60)
    };
    let never_stop = || true;

    let dry = sweep(
        storage,
        &b,
        SweepOptions {
            dry_run: true,
            ..later
        },
        &never_stop,
        &mut |_| {},
    )
    .await;
    assert_eq!(
        (dry.expired, dry.deleted),
        (ODD_KEYS.len() as u64, 0),
        "dry run: {dry:?}"
    );
    assert!(
        storage.head_object(&b, ODD_KEYS[0]).await.is_ok(),
        "dry run deleted nothing"
    );

    let young = sweep(
        storage,
        &b,
        SweepOptions::new(stored_at, 60),
        &never_stop,
        &mut |_| {},
    )
    .await;
    assert_eq!(young.deleted, 0, "young drafts stay: {young:?}");

    let report = sweep(storage, &b, later, &never_stop, &mut |_| {}).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.deleted, ODD_KEYS.len() as u64, "{report:?}");
    for key in ODD_KEYS {
        assert!(
            is_not_found(&storage.head_object(&b, key).await),
            "{key:?} swept"
        );
    }
    assert!(
        storage.head_object(&main, "confirmed").await.is_ok(),
        "main untouched"
    );
    assert!(
        storage.head_object(&b, &queued).await.is_ok(),
        "sweep never deletes the reserved event queue"
    );
}
