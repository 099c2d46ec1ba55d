//! Issue 18's review, over REST with a webhook receiver, on the embedded store and on
//! SeaweedFS:
//! - a confirm is "already done" only when main holds the copy of *this* draft: the same bytes
//!   uploaded again with another type and metadata and confirmed with `"overwrite": true`
//!   replace main's type and metadata and are announced (they were answered 200 as already
//!   confirmed, the new draft deleted, main left with the old metadata, no event);
//! - each confirmation of a new upload is a new event with a new `webhook-id` (the same bytes
//!   confirmed again after main lost them reused the first id, and a receiver deduplicating
//!   by id dropped a real second confirmation), while a retried confirm sends nothing more.

use crate::events::{announced, confirm_ok, delete_from_main, post, SECRET};
use crate::harness::{start_local, start_s3, Direct, Running};
use crate::stub::{eventually, Stub};
use serde_json::{json, Value};
use std::time::Duration;

/// A receiver taking every event, and a gateway sending it there at once.
async fn serve(s3: bool) -> Option<(Stub, Running)> {
    serve_with(s3, &[]).await
}

/// [`serve`] with more settings.
pub(crate) async fn serve_with(s3: bool, more: &[(&str, &str)]) -> Option<(Stub, Running)> {
    let receiver = Stub::start(Box::new(|_, _| (204, String::new()))).await;
    let hook = receiver.url("/hook");
    let mut settings = vec![
        ("DRAFTSTORE_WEBHOOK_URLS", hook.as_str()),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        ("DRAFTSTORE_WEBHOOK_POLL_MS", "20"),
    ];
    settings.extend_from_slice(more);
    let server = if s3 {
        start_s3(&settings).await?
    } else {
        start_local(&settings).await
    };
    Some((receiver, server))
}

/// Uploads `bytes` as draft `name` with a declared content type and `note` metadata, through a
/// presigned PUT sending the headers it requires.
pub(crate) async fn upload(
    server: &Running,
    name: &str,
    bytes: &str,
    content_type: &str,
    note: &str,
) {
    let (status, _) = post(server, "/api/v1/draft-bucket", json!({})).await;
    assert_eq!(status, 200);
    let (status, up) = post(
        server,
        "/api/v1/upload-url",
        json!({"object_name": name, "content_type": content_type, "metadata": {"note": note}}),
    )
    .await;
    assert_eq!(status, 200, "{up}");
    let mut put = reqwest::Client::new()
        .put(up["upload_url"].as_str().unwrap())
        .body(bytes.to_owned());
    for (header, value) in up["required_headers"].as_object().unwrap() {
        put = put.header(header, value.as_str().unwrap());
    }
    assert_eq!(crate::harness::status_of(put).await, 200);
}

/// Keys of the events still queued (tombstones of delivered ones left out).
pub(crate) async fn queued(server: &Running) -> Vec<String> {
    use draftstore_gateway::events::queue;
    let draft = &server.config.buckets.draft;
    match server.storage() {
        Direct::S3(s3) => queue::keys(&**s3, draft).await.unwrap(),
        Direct::Local(local) => queue::keys(&**local, draft).await.unwrap(),
    }
}

/// Waits until `count` distinct events arrived and none is left in the queue.
async fn delivered(receiver: &Stub, server: &Running, count: usize) {
    eventually(
        Duration::from_secs(30),
        &format!("{count} events delivered and the queue empty"),
        || async { announced(receiver).len() >= count && queued(server).await.is_empty() },
    )
    .await;
    assert_eq!(
        announced(receiver).len(),
        count,
        "{:?}",
        announced(receiver)
    );
}

/// The `data.content_type` of each distinct event id.
pub(crate) fn types(receiver: &Stub) -> std::collections::BTreeMap<String, String> {
    receiver
        .seen()
        .iter()
        .map(|s| {
            let body: Value = serde_json::from_str(&s.body).unwrap();
            let kind = body["data"]["content_type"].as_str().unwrap_or_default();
            (s.headers["webhook-id"].clone(), kind.to_owned())
        })
        .collect()
}

async fn same_bytes_with_new_metadata_overwrite_main_and_are_announced(s3: bool) {
    let Some((receiver, server)) = serve(s3).await else {
        return;
    };
    let (main, draft) = (&server.config.buckets.main, &server.config.buckets.draft);
    upload(&server, "doc.txt", "identical bytes", "text/plain", "first").await;
    confirm_ok(&server, "doc.txt", false).await;
    delivered(&receiver, &server, 1).await;

    upload(&server, "doc.txt", "identical bytes", "text/csv", "second").await;
    let (status, body) = post(
        &server,
        "/api/v1/confirm-upload",
        json!({"object_name": "doc.txt"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("CONFLICT")),
        "main holds another upload: {body}"
    );
    assert!(
        server.storage().head_object(draft, "doc.txt").await.is_ok(),
        "a conflict keeps the draft"
    );

    confirm_ok(&server, "doc.txt", true).await;
    let copy = server.storage().head_object(main, "doc.txt").await.unwrap();
    assert_eq!(
        copy.content_type.as_deref(),
        Some("text/csv"),
        "main's type"
    );
    assert_eq!(
        copy.metadata.get("note").map(String::as_str),
        Some("second"),
        "main's metadata"
    );
    assert_eq!(
        server.storage().get_object(main, "doc.txt").await.unwrap(),
        b"identical bytes"
    );
    assert!(
        server
            .storage()
            .head_object(draft, "doc.txt")
            .await
            .is_err(),
        "the confirmed draft is gone"
    );
    delivered(&receiver, &server, 2).await;
    let mut announced_types: Vec<String> = types(&receiver).into_values().collect();
    announced_types.sort();
    assert_eq!(announced_types, ["text/csv", "text/plain"]);

    // A plain retry of the same confirm: already done, nothing queued or sent.
    confirm_ok(&server, "doc.txt", true).await;
    assert_eq!(
        queued(&server).await,
        Vec::<String>::new(),
        "no event queued"
    );
    assert_eq!(announced(&receiver).len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_bytes_with_new_metadata_overwrite_main_on_the_embedded_store() {
    same_bytes_with_new_metadata_overwrite_main_and_are_announced(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_bytes_with_new_metadata_overwrite_main_on_s3() {
    same_bytes_with_new_metadata_overwrite_main_and_are_announced(true).await;
}

async fn a_new_upload_of_the_same_bytes_is_a_new_event(s3: bool) {
    let Some((receiver, server)) = serve(s3).await else {
        return;
    };
    let draft = &server.config.buckets.draft;
    upload(&server, "again.txt", "same bytes", "text/plain", "n").await;
    let first = server
        .storage()
        .head_object(draft, "again.txt")
        .await
        .unwrap();
    confirm_ok(&server, "again.txt", false).await;
    confirm_ok(&server, "again.txt", false).await;
    delivered(&receiver, &server, 1).await;
    confirm_ok(&server, "again.txt", false).await;
    assert!(queued(&server).await.is_empty(), "retries queue nothing");

    delete_from_main(&server, "again.txt").await;
    // A new upload. The embedded store tells every upload apart, even within the second of
    // the first (whose webhook-id it reused); an unversioned S3 bucket keeps Last-Modified in
    // whole seconds only, so there it is made in a later second (uploads of the same bytes,
    // type and metadata within one second are one version there, see README).
    while s3 && draftstore_gateway::clock::unix_now().unwrap() <= first.last_modified {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    upload(&server, "again.txt", "same bytes", "text/plain", "n").await;
    let second = server
        .storage()
        .head_object(draft, "again.txt")
        .await
        .unwrap();
    assert_eq!(second.etag, first.etag, "the same bytes");
    confirm_ok(&server, "again.txt", false).await;
    confirm_ok(&server, "again.txt", false).await;
    delivered(&receiver, &server, 2).await;
    let ids = announced(&receiver);
    assert!(
        ids.values()
            .all(|(name, etag)| name == "again.txt" && *etag == first.etag),
        "two confirmations of the same bytes, two ids: {ids:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_upload_of_the_same_bytes_is_a_new_event_on_the_embedded_store() {
    a_new_upload_of_the_same_bytes_is_a_new_event(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_upload_of_the_same_bytes_is_a_new_event_on_s3() {
    a_new_upload_of_the_same_bytes_is_a_new_event(true).await;
}
