//! Confirm against the in-memory store: call counts, crashes at every step, concurrency.

use crate::block_on;
use draftstore_core::*;

fn setup(caps: Capabilities) -> (MemoryStorage, Buckets) {
    let storage = MemoryStorage::with_capabilities(caps);
    let buckets = Buckets::new("main", None).unwrap();
    block_on(async {
        storage.create_bucket(&buckets.main).await.unwrap();
        storage.create_bucket(&buckets.draft).await.unwrap();
    });
    (storage, buckets)
}

const ALL: Capabilities = Capabilities {
    conditional_copy: true,
    conditional_delete: true,
    conditional_put: true,
    version_conditions: true,
    version_ids: false,
};
const NONE: Capabilities = Capabilities {
    conditional_copy: false,
    conditional_delete: false,
    conditional_put: false,
    version_conditions: false,
    version_ids: false,
};

fn put(storage: &MemoryStorage, bucket: &BucketName, key: &str, body: &[u8]) {
    block_on(storage.put_object(bucket, key, body.to_vec(), &PutOptions::default())).unwrap();
}

#[test]
fn a_small_confirm_is_three_storage_calls() {
    let (storage, buckets) = setup(ALL);
    put(&storage, &buckets.draft, "a.jpg", b"abc");
    let before = storage.calls();
    let name = ObjectName::parse("a.jpg").unwrap();
    let done = block_on(confirm(
        &storage,
        &buckets,
        &name,
        ConfirmOptions::default(),
    ))
    .unwrap();
    assert_eq!(storage.calls() - before, 3, "head draft, copy, delete");
    assert_eq!(done.location, "main/a.jpg");
    assert_eq!(done.outcome, ConfirmOutcome::Moved);
    // Again: head draft (gone), head main.
    let before = storage.calls();
    let again = block_on(confirm(
        &storage,
        &buckets,
        &name,
        ConfirmOptions::default(),
    ))
    .unwrap();
    assert_eq!(storage.calls() - before, 2);
    assert_eq!(again.outcome, ConfirmOutcome::Already);
    assert_eq!(again.etag, done.etag);
}

#[test]
fn without_conditional_copy_confirm_heads_main_first() {
    let (storage, buckets) = setup(NONE);
    put(&storage, &buckets.draft, "a.jpg", b"abc");
    let before = storage.calls();
    block_on(confirm(
        &storage,
        &buckets,
        &ObjectName::parse("a.jpg").unwrap(),
        ConfirmOptions::default(),
    ))
    .unwrap();
    assert_eq!(
        storage.calls() - before,
        6,
        "head draft, head main, head draft again (no version condition), copy, head draft again, delete"
    );
}

/// A crash (or a lost answer) at any call of a confirm leaves the bytes in draft, main or both,
/// and a retry ends Confirmed with the uploaded bytes.
#[test]
fn a_crash_at_any_step_loses_nothing_and_a_retry_converges() {
    for caps in [ALL, NONE] {
        for step in 1..=4 {
            for after in [false, true] {
                let (storage, buckets) = setup(caps);
                put(&storage, &buckets.draft, "k", b"payload");
                let error = StorageError::Unavailable {
                    reason: "injected".into(),
                };
                let fault = if after {
                    Fault::FailAfter(error)
                } else {
                    Fault::FailBefore(error)
                };
                storage.fail_call(step, fault);
                let name = ObjectName::parse("k").unwrap();
                let _ = block_on(confirm(
                    &storage,
                    &buckets,
                    &name,
                    ConfirmOptions::default(),
                ));
                let in_draft = block_on(storage.get_object(&buckets.draft, "k")).ok();
                let in_main = block_on(storage.get_object(&buckets.main, "k")).ok();
                let ctx = format!("caps {caps:?}, call {step}, after {after}");
                assert!(in_draft.is_some() || in_main.is_some(), "lost: {ctx}");
                for copy in [&in_draft, &in_main].into_iter().flatten() {
                    assert_eq!(copy.as_slice(), b"payload", "{ctx}");
                }
                storage.clear_faults();
                let done = block_on(confirm(
                    &storage,
                    &buckets,
                    &name,
                    ConfirmOptions::default(),
                ))
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(done.size, 7);
                assert_eq!(
                    block_on(storage.get_object(&buckets.main, "k")).unwrap(),
                    b"payload",
                    "{ctx}"
                );
                assert!(
                    block_on(storage.head_object(&buckets.draft, "k")).is_err(),
                    "{ctx}: draft gone"
                );
            }
        }
    }
}

#[test]
fn concurrent_confirms_of_one_draft_both_succeed() {
    for caps in [ALL, NONE] {
        let (storage, buckets) = setup(caps);
        put(&storage, &buckets.draft, "k", b"same");
        let name = ObjectName::parse("k").unwrap();
        let (a, b) = block_on(async {
            tokio::join!(
                confirm(&storage, &buckets, &name, ConfirmOptions::default()),
                confirm(&storage, &buckets, &name, ConfirmOptions::default())
            )
        });
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.etag, b.etag, "{caps:?}");
        assert_eq!(
            block_on(storage.get_object(&buckets.main, "k")).unwrap(),
            b"same"
        );
    }
}

#[test]
fn a_reupload_during_confirm_is_kept_as_a_new_draft() {
    let (storage, buckets) = setup(ALL);
    put(&storage, &buckets.draft, "k", b"first");
    let name = ObjectName::parse("k").unwrap();
    // The client re-uploads while the delete (call 3) is on its way.
    let base = storage.calls();
    storage.fail_call(3, Fault::Delay(std::time::Duration::from_millis(50)));
    let (done, ()) = block_on(async {
        tokio::join!(
            confirm(&storage, &buckets, &name, ConfirmOptions::default()),
            async {
                while storage.calls() < base + 3 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                storage
                    .put_object(
                        &buckets.draft,
                        "k",
                        b"second".to_vec(),
                        &PutOptions::default(),
                    )
                    .await
                    .unwrap();
            }
        )
    });
    done.unwrap();
    assert_eq!(
        block_on(storage.get_object(&buckets.main, "k")).unwrap(),
        b"first"
    );
    assert_eq!(
        block_on(storage.get_object(&buckets.draft, "k")).unwrap(),
        b"second",
        "the new draft stays"
    );
}

#[test]
fn a_constraint_mismatch_keeps_the_draft() {
    let (storage, buckets) = setup(ALL);
    let options = PutOptions {
        content_type: Some("image/png".into()),
        metadata: Metadata::from([(DECLARED_KEY.to_owned(), "len=100;type=1".to_owned())]),
    };
    block_on(storage.put_object(&buckets.draft, "k", b"short".to_vec(), &options)).unwrap();
    let name = ObjectName::parse("k").unwrap();
    let err = block_on(confirm(
        &storage,
        &buckets,
        &name,
        ConfirmOptions::default(),
    ))
    .unwrap_err();
    assert_eq!(
        err,
        ConfirmError::ConstraintMismatch {
            name: name.clone(),
            violation: ConstraintViolation::Size {
                declared: 100,
                actual: 5
            }
        }
    );
    assert!(
        block_on(storage.head_object(&buckets.draft, "k")).is_ok(),
        "draft stays"
    );
    assert!(
        block_on(storage.head_object(&buckets.main, "k")).is_err(),
        "nothing in main"
    );
    // A constraint given at confirm time is checked too.
    put(&storage, &buckets.draft, "k2", b"abc");
    let expect =
        UploadConstraints::new(Some("text/plain".into()), None, None, Metadata::new()).unwrap();
    let options = ConfirmOptions {
        expect: Some(&expect),
        ..ConfirmOptions::default()
    };
    let err = block_on(confirm(
        &storage,
        &buckets,
        &ObjectName::parse("k2").unwrap(),
        options,
    ))
    .unwrap_err();
    assert!(matches!(err, ConfirmError::ConstraintMismatch { .. }));
}

#[test]
fn storage_errors_other_than_missing_objects_surface() {
    let (storage, buckets) = setup(ALL);
    put(&storage, &buckets.draft, "k", b"x");
    storage.fail_call(
        1,
        Fault::FailBefore(StorageError::Denied {
            reason: "bad key".into(),
        }),
    );
    let err = block_on(confirm(
        &storage,
        &buckets,
        &ObjectName::parse("k").unwrap(),
        ConfirmOptions::default(),
    ))
    .unwrap_err();
    assert!(matches!(
        err,
        ConfirmError::Storage(StorageError::Denied { .. })
    ));
}

/// The hook a pre-confirm check uses: called before the copy, once; a refusal leaves the
/// draft; a confirm that finds the object already moved never calls it. `after_copy` runs once
/// per copy that succeeded, while the draft is still there.
struct Hook {
    calls: std::sync::atomic::AtomicU32,
    copied: std::sync::atomic::AtomicU32,
    abandoned: std::sync::atomic::AtomicU32,
    refuse: bool,
}

impl BeforeCopy for Hook {
    async fn before_copy(&self, name: &ObjectName, draft: &ObjectInfo) -> Result<(), ConfirmError> {
        assert_eq!(draft.size, 3);
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.refuse {
            return Err(ConfirmError::Rejected {
                name: name.clone(),
                reason: "no".into(),
            });
        }
        Ok(())
    }

    async fn after_copy(&self, _name: &ObjectName, draft: &ObjectInfo, main_etag: &str) {
        assert!(!main_etag.is_empty());
        assert_eq!(draft.size, 3);
        self.copied
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    async fn abandoned(&self, _name: &ObjectName, draft: &ObjectInfo) {
        assert_eq!(draft.size, 3);
        self.abandoned
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A confirm that ends without its own copy after the hook accepted the draft (here the store
/// refused its copy) tells the hook once, so the gateway withdraws its event; one whose copy's
/// outcome is unknown (S3 may still finish it) does not; one that copied does not.
#[test]
fn the_hook_hears_of_a_confirm_that_ends_without_its_copy() {
    use std::sync::atomic::Ordering::SeqCst;
    for caps in [ALL, NONE] {
        let (storage, buckets) = setup(caps);
        put(&storage, &buckets.draft, "a.jpg", b"abc");
        let name = ObjectName::parse("a.jpg").unwrap();
        let hook = Hook {
            calls: 0.into(),
            copied: 0.into(),
            abandoned: 0.into(),
            refuse: false,
        };
        let seen = |h: &Hook| {
            (
                h.calls.load(SeqCst),
                h.copied.load(SeqCst),
                h.abandoned.load(SeqCst),
            )
        };
        // HEAD draft, HEAD main, (S3: HEAD draft again), the copy.
        let copy = if caps.version_conditions { 3 } else { 4 };
        let failures = [
            (
                StorageError::Unavailable {
                    reason: "injected".into(),
                },
                (1, 0, 0),
            ),
            (
                StorageError::Backend {
                    reason: "injected".into(),
                },
                (2, 0, 0),
            ),
            (
                StorageError::Denied {
                    reason: "injected".into(),
                },
                (3, 0, 1),
            ),
        ];
        for (error, expected) in failures {
            let unknown = error.outcome_unknown();
            storage.fail_call(copy, Fault::FailBefore(error));
            let e = block_on(confirm_with(
                &storage,
                &buckets,
                &name,
                ConfirmOptions::default(),
                &hook,
            ))
            .unwrap_err();
            assert!(matches!(e, ConfirmError::Storage(_)), "{e:?}");
            assert_eq!(seen(&hook), expected, "outcome unknown: {unknown}");
            storage.clear_faults();
        }
        let done = block_on(confirm_with(
            &storage,
            &buckets,
            &name,
            ConfirmOptions::default(),
            &hook,
        ))
        .unwrap();
        assert_eq!(done.outcome, ConfirmOutcome::Moved);
        assert_eq!(
            seen(&hook),
            (4, 1, 1),
            "the confirm that copied is not abandoned"
        );
    }
}

#[test]
fn the_hook_runs_once_before_the_copy_and_a_refusal_keeps_the_draft() {
    for caps in [ALL, NONE] {
        let (storage, buckets) = setup(caps);
        put(&storage, &buckets.draft, "a.jpg", b"abc");
        let name = ObjectName::parse("a.jpg").unwrap();
        let refuse = Hook {
            calls: 0.into(),
            copied: 0.into(),
            abandoned: 0.into(),
            refuse: true,
        };
        let e = block_on(confirm_with(
            &storage,
            &buckets,
            &name,
            ConfirmOptions::default(),
            &refuse,
        ))
        .unwrap_err();
        assert!(matches!(e, ConfirmError::Rejected { .. }), "{e:?}");
        assert!(block_on(storage.head_object(&buckets.draft, "a.jpg")).is_ok());
        assert!(block_on(storage.head_object(&buckets.main, "a.jpg")).is_err());
        let allow = Hook {
            calls: 0.into(),
            copied: 0.into(),
            abandoned: 0.into(),
            refuse: false,
        };
        for _ in 0..2 {
            block_on(confirm_with(
                &storage,
                &buckets,
                &name,
                ConfirmOptions::default(),
                &allow,
            ))
            .unwrap();
        }
        assert_eq!(
            allow.calls.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the second confirm finds it done and does not check again"
        );
        assert_eq!(
            refuse.copied.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "a refused confirm copied nothing"
        );
        assert_eq!(
            allow.copied.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "told once, after the one copy"
        );
    }
}

/// A retry after a crash between the copy and the delete finishes without the hook (the
/// checker may be down: the copy is already done), and a conflict is answered before it (no
/// check, no event queued for a copy that cannot happen).
#[test]
fn done_and_conflicting_confirms_never_call_the_hook() {
    for caps in [ALL, NONE] {
        let (storage, buckets) = setup(caps);
        let hook = Hook {
            calls: 0.into(),
            copied: 0.into(),
            abandoned: 0.into(),
            refuse: true,
        };
        put(&storage, &buckets.draft, "a.jpg", b"abc");
        let draft = block_on(storage.head_object(&buckets.draft, "a.jpg")).unwrap();
        let copy = PutOptions {
            content_type: draft.content_type.clone(),
            metadata: promoted_user_metadata(&draft),
        };
        block_on(storage.put_object(&buckets.main, "a.jpg", b"abc".to_vec(), &copy)).unwrap();
        let name = ObjectName::parse("a.jpg").unwrap();
        let done = block_on(confirm_with(
            &storage,
            &buckets,
            &name,
            ConfirmOptions::default(),
            &hook,
        ))
        .unwrap();
        assert_eq!(done.outcome, ConfirmOutcome::Already);
        assert!(
            block_on(storage.head_object(&buckets.draft, "a.jpg")).is_err(),
            "the draft left by the crash is deleted"
        );

        put(&storage, &buckets.draft, "a.jpg", b"xyz");
        let e = block_on(confirm_with(
            &storage,
            &buckets,
            &name,
            ConfirmOptions::default(),
            &hook,
        ))
        .unwrap_err();
        assert!(matches!(e, ConfirmError::Conflict { .. }), "{e:?}");
        assert_eq!(
            hook.calls.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "neither called the refusing hook"
        );
    }
}
