//! Issue 18: the S3 requests one confirm makes, counted by the store's own client: five
//! (HEAD draft, HEAD draft again before the copy, the copy, then HEAD and DeleteObjects, or on
//! a versioned draft bucket ListObjectVersions and DeleteObjects), and with webhooks three
//! more: HEAD main first, the event's record written before the copy, and one conditional PUT
//! over that write marking it copied (it was a HEAD, a GET and a PUT: ten in all).

use crate::events::SECRET;
use crate::s3::{env, prefix, storage};
use draftstore_core::events::queue_key;
use draftstore_core::{
    confirm, confirm_with, Buckets, ConfirmOptions, ConfirmOutcome, MemoryStorage, ObjectName,
    PutOptions, Storage,
};
use draftstore_gateway::events::{hook::Hook, queue, Events};
use std::collections::HashMap;
use std::sync::Arc;

/// The requests of one confirm of a fresh draft, and whether its event is queued marked copied.
async fn requests(versioned: bool, webhooks: bool) -> Option<(u64, Option<bool>)> {
    let s3 = storage(&env(&[])?);
    let buckets = Buckets::new(&format!("{}-main", prefix("req")), None).unwrap();
    s3.create_bucket(&buckets.main).await.unwrap();
    s3.create_bucket(&buckets.draft).await.unwrap();
    if versioned {
        s3.enable_versioning(&buckets.draft).await.unwrap();
    }
    s3.put_object(
        &buckets.draft,
        "n.txt",
        b"n".to_vec(),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    let name = ObjectName::parse("n.txt").unwrap();
    let before = s3.attempts();
    if !webhooks {
        let done = confirm(&s3, &buckets, &name, ConfirmOptions::default())
            .await
            .unwrap();
        assert_eq!(done.outcome, ConfirmOutcome::Moved);
        return Some((s3.attempts() - before, None));
    }
    let settings: HashMap<&str, &str> = [
        ("DRAFTSTORE_WEBHOOK_URLS", "http://127.0.0.1:9/hook"),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
    ]
    .into();
    let config =
        draftstore_gateway::config::events(&|k| settings.get(k).map(|v| (*v).to_owned())).unwrap();
    // Its deliverer works on another store: only the confirm's requests reach SeaweedFS.
    let elsewhere = Arc::new(MemoryStorage::new());
    let events = Events::start(&elsewhere, &buckets, &config).unwrap();
    let hook = Hook {
        events: &events,
        store: &s3,
        buckets: &buckets,
        tenant: None,
        object_name: "n.txt",
        written: std::sync::Mutex::default(),
    };
    let done = confirm_with(&s3, &buckets, &name, ConfirmOptions::default(), &hook)
        .await
        .unwrap();
    assert_eq!(done.outcome, ConfirmOutcome::Moved);
    let counted = s3.attempts() - before;
    let keys = queue::keys(&s3, &buckets.draft).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (record, _) = queue::load(&s3, &buckets.draft, &keys[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queue_key(&record.id), keys[0]);
    Some((counted, Some(record.copied)))
}

#[tokio::test]
async fn a_confirm_on_s3_makes_five_requests_and_eight_with_webhooks() {
    let Some(plain) = requests(false, false).await else {
        return;
    };
    assert_eq!(plain, (5, None), "unversioned draft bucket");
    assert_eq!(requests(true, false).await.unwrap(), (5, None), "versioned");
    assert_eq!(
        requests(false, true).await.unwrap(),
        (8, Some(true)),
        "with webhooks: the event queued and marked copied"
    );
    assert_eq!(
        requests(true, true).await.unwrap(),
        (8, Some(true)),
        "versioned, webhooks"
    );
}
