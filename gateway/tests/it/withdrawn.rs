//! Issue 18: the gateway's confirm hook in the one interleaving a REST test cannot force, on
//! the embedded store and on SeaweedFS. Confirms A and B of one draft version both queued its
//! `object.confirmed`; A fails before copying and withdraws it (main does not hold the copy);
//! then B's copy lands. B's mark finds no record and queues it again, marked copied, so the
//! copy is still announced (withdrawn with no repair, it went unannounced).

use crate::events::SECRET;
use crate::s3::{env, prefix, storage};
use draftstore_core::{
    promoted_metadata, BeforeCopy, Buckets, CopyCondition, CopyRequest, MemoryStorage, ObjectName,
    PutOptions, Storage,
};
use draftstore_gateway::events::{hook::Hook, queue, Events};
use draftstore_gateway::store::Presign;
use std::collections::HashMap;
use std::sync::Arc;

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
    b.before_copy(&name, &draft).await.unwrap();
    a.before_copy(&name, &draft).await.unwrap();
    assert_eq!(queue::keys(store, &buckets.draft).await.unwrap().len(), 1);
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
