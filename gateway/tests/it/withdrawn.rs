//! Issue 18: the gateway's confirm hook in the one interleaving a REST test cannot force, on
//! the embedded store and on SeaweedFS. Confirms A and B of one draft version both queued its
//! `object.confirmed`; A fails before copying and withdraws it (main does not hold the copy);
//! then B's copy lands. B's mark finds no record and queues it again, marked copied, so the
//! copy is still announced (withdrawn with no repair, it went unannounced). A confirm that
//! found the event already queued (B) never withdraws it: it is A's. And a confirm
//! whose copy's outcome is unknown (S3 finishes it after the gateway gave up) keeps its event.

use crate::events::SECRET;
use crate::proxy::{Proxy, ProxyFault};
use crate::s3::{env, prefix, storage};
use draftstore_core::{
    confirm_with, promoted_metadata, BeforeCopy, Buckets, ConfirmError, ConfirmOptions,
    ConfirmOutcome, CopyCondition, CopyRequest, MemoryStorage, ObjectName, PutOptions, Storage,
    StorageError,
};
use draftstore_gateway::events::{hook::Hook, queue, Events};
use draftstore_gateway::store::Presign;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

async fn a_copy_after_the_withdrawal_is_announced<B: Storage + Presign>(
    store: &B,
    buckets: &Buckets,
) {
    store.create_bucket(&buckets.main).await.unwrap();
    store.create_bucket(&buckets.draft).await.unwrap();
    store
        .put_object(
            &buckets.draft,
            "q.txt",
            b"q".to_vec(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let name = ObjectName::parse("q.txt").unwrap();
    let draft = store.head_object(&buckets.draft, "q.txt").await.unwrap();
    let settings: HashMap<&str, &str> = [
        ("DRAFTSTORE_WEBHOOK_URLS", "http://127.0.0.1:9/hook"),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
    ]
    .into();
    let config =
        draftstore_gateway::config::events(&|k| settings.get(k).map(|v| (*v).to_owned())).unwrap();
    // Its deliverer works on another store: the queue here is only what the hooks leave.
    let events = Events::start(&Arc::new(MemoryStorage::new()), buckets, &config).unwrap();
    let hook = || Hook {
        events: &events,
        store,
        buckets,
        tenant: None,
        object_name: "q.txt",
        written: std::sync::Mutex::default(),
    };
    let (a, b) = (hook(), hook());
    a.before_copy(&name, &draft).await.unwrap();
    b.before_copy(&name, &draft).await.unwrap();
    assert_eq!(queue::keys(store, &buckets.draft).await.unwrap().len(), 1);
    // B found A's event queued: B failing leaves it (A's copy, its outcome unknown, may land).
    b.abandoned(&name, &draft).await;
    assert_eq!(
        queue::keys(store, &buckets.draft).await.unwrap().len(),
        1,
        "a confirm withdraws only the event it wrote itself"
    );
    a.abandoned(&name, &draft).await;
    assert_eq!(
        queue::keys(store, &buckets.draft).await.unwrap(),
        Vec::<String>::new(),
        "withdrawn: main does not hold the copy"
    );

    let version = draftstore_core::draft_version(&draft);
    let request = CopyRequest {
        from_bucket: &buckets.draft,
        from_key: "q.txt",
        to_bucket: &buckets.main,
        to_key: "q.txt",
        source_size: draft.size,
        source_etag: Some(&draft.etag),
        source_version: Some(&version),
        source_version_id: None,
        metadata: promoted_metadata(&draft),
        condition: CopyCondition::IfAbsent,
    };
    let copied = store.copy_object(&request).await.unwrap();
    b.after_copy(&name, &draft, &copied.etag).await;
    let keys = queue::keys(store, &buckets.draft).await.unwrap();
    assert_eq!(keys.len(), 1, "queued again: {keys:?}");
    let (record, _) = queue::load(store, &buckets.draft, &keys[0])
        .await
        .unwrap()
        .unwrap();
    assert!(record.copied, "marked: sent whatever main holds later");
    assert_eq!(record.data["etag"].as_str(), Some(copied.etag.as_str()));
    assert_eq!(record.data["object_name"].as_str(), Some("q.txt"));

    // A refusal now (a late confirm of the same version) keeps it: it is marked copied.
    a.abandoned(&name, &draft).await;
    assert_eq!(queue::keys(store, &buckets.draft).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_copy_after_the_withdrawal_is_announced_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = draftstore_gateway::store::local::LocalStorage::open(&crate::local_store::config(
        dir.path(),
        "http://127.0.0.1:1",
    ))
    .unwrap();
    let buckets = Buckets::new("main", None).unwrap();
    a_copy_after_the_withdrawal_is_announced(&store, &buckets).await;
}

#[tokio::test]
async fn a_copy_after_the_withdrawal_is_announced_on_s3() {
    let Some(map) = env(&[]) else {
        return;
    };
    let buckets = Buckets::new(&format!("{}-main", prefix("wdr")), None).unwrap();
    a_copy_after_the_withdrawal_is_announced(&storage(&map), &buckets).await;
}

/// A confirm of `late.txt` through `s3` (behind a relay that breaks copies only) with the hook, with
/// webhooks on (the deliverer works on another store: the queue is only what the hook leaves).
async fn confirm_through_the_relay(
    s3: &draftstore_gateway::store::s3::S3Storage,
    buckets: &Buckets,
) -> Result<draftstore_core::Confirmed, draftstore_core::ConfirmError> {
    let settings: HashMap<&str, &str> = [
        ("DRAFTSTORE_WEBHOOK_URLS", "http://127.0.0.1:9/hook"),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
    ]
    .into();
    let config =
        draftstore_gateway::config::events(&|k| settings.get(k).map(|v| (*v).to_owned())).unwrap();
    let events = Events::start(&Arc::new(MemoryStorage::new()), buckets, &config).unwrap();
    let hook = Hook {
        events: &events,
        store: s3,
        buckets,
        tenant: None,
        object_name: "late.txt",
        written: std::sync::Mutex::default(),
    };
    let name = ObjectName::parse("late.txt").unwrap();
    confirm_with(s3, buckets, &name, ConfirmOptions::default(), &hook).await
}

/// Issue 18, review: a copy the gateway gave up on (its answer lost, then resets until the
/// retry budget is spent) lands in S3 two seconds later. The confirm fails 503, but its
/// `object.confirmed` stays queued (the outcome was unknown), main then holds the stamped copy,
/// a retried confirm answers "already done", and the event is still there for the deliverer,
/// which sends it because main holds the stamped version. A copy S3 refused (403) is known not
/// done: that one is withdrawn.
#[tokio::test]
async fn a_copy_that_lands_after_the_gateway_gave_up_keeps_its_event() {
    let Some(direct_env) = env(&[("DRAFTSTORE_S3_MAX_ATTEMPTS", "4")]) else {
        return;
    };
    let proxy = Proxy::start(direct_env["AWS_ENDPOINT_URL"].clone()).await;
    let mut proxied_env = direct_env.clone();
    proxied_env.insert("AWS_ENDPOINT_URL".into(), proxy.url());
    let (s3, direct) = (storage(&proxied_env), storage(&direct_env));
    let buckets = Buckets::new(&format!("{}-main", prefix("late")), None).unwrap();
    direct.create_bucket(&buckets.main).await.unwrap();
    direct.create_bucket(&buckets.draft).await.unwrap();
    direct
        .put_object(
            &buckets.draft,
            "late.txt",
            b"late".to_vec(),
            &PutOptions::default(),
        )
        .await
        .unwrap();

    // Known: S3 refused the copy. The event is withdrawn, main is empty.
    proxy.push_copies([ProxyFault::Answer(403, "AccessDenied")]);
    let refused = confirm_through_the_relay(&s3, &buckets).await;
    assert!(
        matches!(
            refused,
            Err(ConfirmError::Storage(StorageError::Denied { .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(
        queue::keys(&direct, &buckets.draft).await.unwrap(),
        Vec::<String>::new(),
        "a refused copy's event is withdrawn"
    );

    // Unknown: the first copy's answer is lost and it lands 2 s later; the next 3 are reset.
    proxy.push_copies([
        ProxyFault::DropThenForward(Duration::from_secs(2)),
        ProxyFault::Drop,
        ProxyFault::Drop,
        ProxyFault::Drop,
    ]);
    let failed = confirm_through_the_relay(&s3, &buckets).await;
    assert!(
        matches!(
            failed,
            Err(ConfirmError::Storage(StorageError::Unavailable { .. }))
        ),
        "{failed:?}"
    );
    let keys = queue::keys(&direct, &buckets.draft).await.unwrap();
    assert_eq!(keys.len(), 1, "the event stays queued: {keys:?}");

    // The late copy lands (waited for, not timed).
    let mut landed = None;
    for _ in 0..100 {
        if let Ok(info) = direct.head_object(&buckets.main, "late.txt").await {
            landed = Some(info);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(landed.expect("the held copy landed in main").size, 4);

    let done = confirm_through_the_relay(&s3, &buckets).await.unwrap();
    assert_eq!(done.outcome, ConfirmOutcome::Already);
    let keys = queue::keys(&direct, &buckets.draft).await.unwrap();
    assert_eq!(keys.len(), 1, "still queued after 'already done': {keys:?}");
    let (record, _) = queue::load(&direct, &buckets.draft, &keys[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.data["object_name"].as_str(), Some("late.txt"));
    let requires = record.requires.expect("an unmarked event names its copy");
    assert!(
        requires.holds(&direct, &buckets.main).await.unwrap(),
        "the deliverer sends it: main holds the stamped copy"
    );
}

/// The reviewer's case over REST, end to end: the gateway on SeaweedFS through the relay, the
/// first copy's answer lost and the copy landing 2 s later, the next 3 reset. The confirm
/// answers 503 STORAGE_UNAVAILABLE, and the receiver still gets `object.confirmed` once the
/// copy has landed (the deliverer finds main holding the stamped copy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rest_a_late_copy_is_still_announced() {
    use crate::events::{announced, post};
    let Some(direct) = env(&[]) else {
        return;
    };
    let proxy = Proxy::start(direct["AWS_ENDPOINT_URL"].clone()).await;
    let receiver = crate::stub::Stub::start(Box::new(|_, _| (204, String::new()))).await;
    let hook = receiver.url("/hook");
    let proxied = proxy.url();
    let Some(server) = crate::harness::start_s3(&[
        ("AWS_ENDPOINT_URL", &proxied),
        ("DRAFTSTORE_S3_MAX_ATTEMPTS", "4"),
        ("DRAFTSTORE_WEBHOOK_URLS", &hook),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        ("DRAFTSTORE_WEBHOOK_POLL_MS", "50"),
    ])
    .await
    else {
        return;
    };
    let (status, url) = post(
        &server,
        "/api/v1/upload-url",
        serde_json::json!({"object_name": "late.txt"}),
    )
    .await;
    assert_eq!(status, 200, "{url}");
    let put = crate::harness::put_to(url["upload_url"].as_str().unwrap(), "late".to_owned()).await;
    assert_eq!(put, 200);

    proxy.push_copies([
        ProxyFault::DropThenForward(Duration::from_secs(2)),
        ProxyFault::Drop,
        ProxyFault::Drop,
        ProxyFault::Drop,
    ]);
    let (status, body) = post(
        &server,
        "/api/v1/confirm-upload",
        serde_json::json!({"object_name": "late.txt"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("STORAGE_UNAVAILABLE")),
        "{body}"
    );
    crate::stub::eventually(
        Duration::from_secs(30),
        "the late copy announced",
        || async {
            announced(&receiver)
                .values()
                .any(|(name, _)| name == "late.txt")
        },
    )
    .await;
    assert!(server
        .storage()
        .head_object(&server.config.buckets.main, "late.txt")
        .await
        .is_ok());
    server.stop().await;
}
