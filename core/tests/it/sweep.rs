//! Sweep against the in-memory store: pages, batches, failures, dry run, deadline, uploads.

use crate::block_on;
use draftstore_core::*;

fn setup(n: usize, at: i64) -> (MemoryStorage, BucketName) {
    let storage = MemoryStorage::new();
    storage.set_time(at);
    let bucket = BucketName::parse("main-draft").unwrap();
    block_on(storage.create_bucket(&bucket)).unwrap();
    for i in 0..n {
        block_on(storage.put_object(
            &bucket,
            &format!("d/{i:04}"),
            vec![0; 10],
            &PutOptions::default(),
        ))
        .unwrap();
    }
    (storage, bucket)
}

fn run(storage: &MemoryStorage, bucket: &BucketName, options: SweepOptions) -> SweepReport {
    block_on(sweep(storage, bucket, options, &|| true, &mut |_| {}))
}

#[test]
fn deletes_expired_drafts_in_bounded_batches_across_pages() {
    let (storage, bucket) = setup(25, 1000);
    storage.set_time(5000);
    for i in 0..5 {
        block_on(storage.put_object(
            &bucket,
            &format!("young/{i}"),
            vec![0; 3],
            &PutOptions::default(),
        ))
        .unwrap();
    }
    let before = storage.calls();
    let options = SweepOptions {
        page_size: 7,
        batch_size: 10,
        ..SweepOptions::new(5000, 3600)
    };
    let report = run(&storage, &bucket, options);
    assert_eq!(
        (
            report.scanned,
            report.expired,
            report.deleted,
            report.failed
        ),
        (30, 25, 25, 0),
        "{report:?}"
    );
    assert_eq!(report.bytes_freed, 250);
    // 5 list pages + 3 batch deletes (10, 10, 5) + 1 multipart listing + 1 listing of
    // DraftStore's own records (none was among the drafts: a store may hide them there).
    assert_eq!(storage.calls() - before, 5 + 3 + 1 + 1);
    let left = block_on(storage.list_objects(&bucket, "", None, 1000)).unwrap();
    assert!(left.objects.iter().all(|o| o.key.starts_with("young/")) && left.objects.len() == 5);
}

#[test]
fn per_key_failures_are_counted_and_the_sweep_goes_on() {
    let (storage, bucket) = setup(20, 0);
    // Calls: list page 1 (10 keys), delete batch 1, list page 2, delete batch 2...
    storage.fail_call(
        2,
        Fault::FailBefore(StorageError::Unavailable {
            reason: "503".into(),
        }),
    );
    let options = SweepOptions {
        page_size: 10,
        batch_size: 10,
        ..SweepOptions::new(100, 10)
    };
    let report = run(&storage, &bucket, options);
    assert_eq!(
        (report.expired, report.deleted, report.failed),
        (20, 10, 10),
        "{report:?}"
    );
    assert!(!report.is_clean());
    assert_eq!(report.failures.len(), 10);
    assert!(report.failures.iter().all(|f| f.error.is_retryable()));
}

#[test]
fn dry_run_reports_and_deletes_nothing() {
    let (storage, bucket) = setup(12, 0);
    let mut listed = Vec::new();
    let options = SweepOptions {
        dry_run: true,
        ..SweepOptions::new(100, 10)
    };
    let report = block_on(sweep(&storage, &bucket, options, &|| true, &mut |o| {
        listed.push(o.key.clone())
    }));
    assert_eq!((report.expired, report.deleted), (12, 0));
    assert_eq!(
        (report.expired_bytes, report.bytes_freed),
        (120, 0),
        "a dry run reports the bytes it would free, and frees none"
    );
    assert_eq!(listed.len(), 12);
    assert_eq!(
        block_on(storage.list_objects(&bucket, "", None, 1000))
            .unwrap()
            .objects
            .len(),
        12
    );
}

#[test]
fn a_deadline_stops_cleanly_and_says_how_far_it_got() {
    let (storage, bucket) = setup(30, 0);
    let pages = std::sync::atomic::AtomicUsize::new(0);
    let keep_going = || pages.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2;
    let options = SweepOptions {
        page_size: 10,
        ..SweepOptions::new(100, 10)
    };
    let report = block_on(sweep(&storage, &bucket, options, &keep_going, &mut |_| {}));
    assert!(report.stopped_early);
    assert_eq!((report.scanned, report.deleted), (20, 20), "{report:?}");
}

#[test]
fn stale_multipart_uploads_are_aborted_young_ones_kept() {
    let (storage, bucket) = setup(0, 0);
    storage.create_upload(&bucket, "old-upload");
    storage.set_time(500);
    storage.create_upload(&bucket, "new-upload");
    let report = run(&storage, &bucket, SweepOptions::new(600, 200));
    assert_eq!(report.multipart_aborted, 1);
    let left = block_on(storage.list_uploads(&bucket, "", None)).unwrap();
    assert_eq!(
        left.uploads
            .iter()
            .map(|u| u.key.as_str())
            .collect::<Vec<_>>(),
        ["new-upload"]
    );
}

#[test]
fn stale_uploads_are_looked_for_while_the_last_batch_is_deleted() {
    let (storage, bucket) = setup(1, 0);
    storage.create_upload(&bucket, "old-upload");
    storage.set_time(1000);
    // Calls: the listing, then the batch delete (held 500 ms), then the uploads' listing.
    let base = storage.calls();
    storage.fail_call(2, Fault::Delay(std::time::Duration::from_millis(500)));
    let mut ignore = |_: &ListedObject| {};
    let (report, draft_when_uploads_listed) = block_on(async {
        tokio::join!(
            sweep(
                &storage,
                &bucket,
                SweepOptions::new(1000, 10),
                &|| true,
                &mut ignore
            ),
            async {
                while storage.calls() < base + 3 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                storage.get_object(&bucket, "d/0000").await.is_ok()
            }
        )
    });
    assert_eq!(
        (report.deleted, report.multipart_aborted),
        (1, 1),
        "{report:?}"
    );
    assert!(
        draft_when_uploads_listed,
        "the uploads were listed before the batch delete answered"
    );
}

#[test]
fn a_draft_reuploaded_after_the_listing_is_not_deleted() {
    let (storage, bucket) = setup(1, 0);
    storage.set_time(1000);
    // The re-upload lands while the batch delete (call 2) is on its way.
    let base = storage.calls();
    storage.fail_call(2, Fault::Delay(std::time::Duration::from_millis(50)));
    let mut ignore = |_: &ListedObject| {};
    let (report, ()) = block_on(async {
        tokio::join!(
            sweep(
                &storage,
                &bucket,
                SweepOptions::new(1000, 10),
                &|| true,
                &mut ignore
            ),
            async {
                while storage.calls() < base + 2 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                storage
                    .put_object(&bucket, "d/0000", b"fresh".to_vec(), &PutOptions::default())
                    .await
                    .unwrap();
            }
        )
    });
    assert_eq!(
        (report.expired, report.deleted, report.changed),
        (1, 0, 1),
        "{report:?}"
    );
    assert_eq!(
        block_on(storage.get_object(&bucket, "d/0000")).unwrap(),
        b"fresh"
    );
}

/// Records what the sweep told it.
#[derive(Default)]
struct Told {
    batches: std::sync::Mutex<Vec<(usize, usize)>>,
    aborted: std::sync::Mutex<Vec<String>>,
}

impl SweepObserver for Told {
    async fn deleted(&self, _: &BucketName, targets: &[DeleteTarget], outcomes: &[DeleteOutcome]) {
        let ok = outcomes.iter().filter(|o| o.result.is_ok()).count();
        self.batches.lock().unwrap().push((targets.len(), ok));
    }

    async fn aborted(&self, _: &BucketName, key: &str, _: &str) {
        self.aborted.lock().unwrap().push(key.to_owned());
    }
}

#[test]
fn an_observer_is_told_each_answered_batch_and_each_aborted_upload() {
    let (storage, bucket) = setup(25, 0);
    storage.create_upload(&bucket, "stale");
    storage.set_time(1000);
    // Calls: list, delete, list, delete… The second batch fails as a whole: no answer to tell.
    storage.fail_call(
        4,
        Fault::FailBefore(StorageError::Unavailable {
            reason: "503".into(),
        }),
    );
    let told = Told::default();
    let options = SweepOptions {
        page_size: 10,
        batch_size: 10,
        ..SweepOptions::new(1000, 10)
    };
    let report = block_on(sweep_with(
        &storage,
        &bucket,
        options,
        &|| true,
        &mut |_| {},
        &told,
    ));
    assert_eq!((report.deleted, report.failed), (15, 10), "{report:?}");
    let mut batches = told.batches.lock().unwrap().clone();
    batches.sort_unstable();
    assert_eq!(batches, [(5, 5), (10, 10)]);
    assert_eq!(*told.aborted.lock().unwrap(), ["stale"]);
}

/// DraftStore's own records under `.draftstore/` (the event queue) are listed but are not
/// drafts: counted apart as `reserved`, never in `scanned` or `expired`, never deleted.
#[test]
fn reserved_records_are_counted_apart_and_kept() {
    let (storage, bucket) = setup(4, 0);
    for key in [
        ".draftstore/events/msg_1.json",
        ".draftstore/events/msg_2.json",
    ] {
        block_on(storage.put_object(&bucket, key, vec![1; 7], &PutOptions::default())).unwrap();
    }
    for dry_run in [true, false] {
        let options = SweepOptions {
            dry_run,
            page_size: 3,
            ..SweepOptions::new(100, 10)
        };
        let report = run(&storage, &bucket, options);
        assert_eq!(
            (
                report.reserved,
                report.scanned,
                report.expired,
                report.expired_bytes
            ),
            (2, 4, 4, 40),
            "dry run {dry_run}: {report:?}"
        );
        assert_eq!(report.bytes_freed, if dry_run { 0 } else { 40 });
    }
    let left = block_on(storage.list_objects(&bucket, "", None, 1000)).unwrap();
    let keys: Vec<&str> = left.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            ".draftstore/events/msg_1.json",
            ".draftstore/events/msg_2.json"
        ]
    );
}
