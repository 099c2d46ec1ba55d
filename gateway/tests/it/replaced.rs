//! Issue 18's second review, over REST on the embedded store and on SeaweedFS: a confirm whose
//! pre-confirm check is held while the client uploads the draft again (the same bytes, another
//! type and metadata) copies nothing and deletes nothing: it answers 409 `DRAFT_CHANGED`, the
//! new draft stays, and its own confirm moves it and announces it. (The copy was guarded by the
//! ETag only: the new draft was deleted, main held the old metadata and the new upload's
//! confirm said "already confirmed" with no event.) The refused confirm leaves no queued event
//! behind, and one refused while another confirm of the same draft version goes on to copy it
//! never costs that copy its event.

use crate::events::{confirm_ok, post};
use crate::reconfirm::{queued, serve_with, types, upload};
use crate::stub::eventually;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// A pre-confirm checker that reports each call on `entered` and answers 200 only once the
/// test adds a permit to the returned gate.
async fn held_checker() -> (String, mpsc::UnboundedReceiver<()>, Arc<Semaphore>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/check", listener.local_addr().unwrap());
    let (entered, calls) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let held = gate.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (entered, held) = (entered.clone(), held.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let (entered, held) = (entered.clone(), held.clone());
                    async move {
                        let _ = entered.send(());
                        held.acquire().await.unwrap().forget();
                        Ok::<_, std::io::Error>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, calls, gate)
}

async fn a_draft_replaced_during_the_check_stays(s3: bool) {
    let (url, mut calls, gate) = held_checker().await;
    let settings = [
        ("DRAFTSTORE_PRECONFIRM_URL", url.as_str()),
        ("DRAFTSTORE_PRECONFIRM_TIMEOUT_MS", "20000"),
    ];
    let Some((receiver, server)) = serve_with(s3, &settings).await else {
        return;
    };
    let (main, draft) = (&server.config.buckets.main, &server.config.buckets.draft);
    upload(&server, "r.txt", "the same bytes", "text/plain", "A").await;
    let first = tokio::spawn({
        let url = server.url("/api/v1/confirm-upload");
        async move {
            let answer = reqwest::Client::new()
                .post(url)
                .json(&json!({"object_name": "r.txt"}))
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<serde_json::Value>().await.unwrap())
        }
    });
    calls.recv().await.unwrap();
    // Confirm A is in its check: the client uploads again.
    upload(&server, "r.txt", "the same bytes", "text/csv", "B").await;
    gate.add_permits(1);
    let (status, body) = first.await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("DRAFT_CHANGED")),
        "{body}"
    );
    let kept = server.storage().head_object(draft, "r.txt").await.unwrap();
    assert_eq!(
        (kept.content_type.as_deref(), kept.metadata.get("note")),
        (Some("text/csv"), Some(&"B".to_owned())),
        "the new draft stays"
    );
    assert!(
        server.storage().head_object(main, "r.txt").await.is_err(),
        "nothing was copied"
    );
    assert_eq!(
        queued(&server).await,
        Vec::<String>::new(),
        "A's event, queued before its copy, was withdrawn (it waited an hour, never sent)"
    );

    // B's own confirm: checked, moved, announced.
    gate.add_permits(1);
    confirm_ok(&server, "r.txt", false).await;
    let copy = server.storage().head_object(main, "r.txt").await.unwrap();
    assert_eq!(copy.content_type.as_deref(), Some("text/csv"));
    assert_eq!(copy.metadata.get("note").map(String::as_str), Some("B"));
    assert!(server.storage().head_object(draft, "r.txt").await.is_err());
    eventually(Duration::from_secs(30), "B's event delivered", || async {
        types(&receiver).values().any(|t| t == "text/csv")
    })
    .await;
    assert!(
        types(&receiver).values().all(|t| t == "text/csv"),
        "A was never confirmed: {:?}",
        types(&receiver)
    );
    let (status, _) = post(
        &server,
        "/api/v1/confirm-upload",
        json!({"object_name": "r.txt"}),
    )
    .await;
    assert_eq!(status, 200, "a retry finds B confirmed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_replaced_during_the_check_stays_on_the_embedded_store() {
    a_draft_replaced_during_the_check_stays(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_replaced_during_the_check_stays_on_s3() {
    a_draft_replaced_during_the_check_stays(true).await;
}

/// With the checker down: a retry after a crash between copy and delete finishes (it answered
/// 503, calling the checker for a copy already made), and conflicts are answered 409 without
/// the checker and without queueing an event (each queued one, never delivered).
async fn done_and_conflicting_confirms_skip_the_checker(s3: bool) {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/check", dead.local_addr().unwrap());
    drop(dead);
    let settings = [("DRAFTSTORE_PRECONFIRM_URL", url.as_str())];
    let Some((_receiver, server)) = serve_with(s3, &settings).await else {
        return;
    };
    let (main, draft) = (&server.config.buckets.main, &server.config.buckets.draft);
    upload(&server, "c.txt", "copied", "text/plain", "n").await;
    // The crash: main holds this draft's stamped copy, the draft is still there.
    let info = server.storage().head_object(draft, "c.txt").await.unwrap();
    let copy = draftstore_core::PutOptions {
        content_type: info.content_type.clone(),
        metadata: draftstore_core::promoted_user_metadata(&info),
    };
    server
        .storage()
        .put_object(main, "c.txt", b"copied".to_vec(), &copy)
        .await
        .unwrap();
    confirm_ok(&server, "c.txt", false).await;
    assert!(
        server.storage().head_object(draft, "c.txt").await.is_err(),
        "the retry deleted the draft"
    );

    upload(&server, "c.txt", "another", "text/plain", "n").await;
    for _ in 0..3 {
        let (status, body) = post(
            &server,
            "/api/v1/confirm-upload",
            json!({"object_name": "c.txt"}),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("CONFLICT")),
            "{body}"
        );
    }
    assert_eq!(
        queued(&server).await,
        Vec::<String>::new(),
        "nothing queued"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_and_conflicting_confirms_skip_the_checker_on_the_embedded_store() {
    done_and_conflicting_confirms_skip_the_checker(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_and_conflicting_confirms_skip_the_checker_on_s3() {
    done_and_conflicting_confirms_skip_the_checker(true).await;
}

/// On S3 a draft over `DRAFTSTORE_S3_MULTIPART_THRESHOLD` is copied in parts: main's ETag is
/// the copy's `…-N`, and the event announces it (it announced the draft's), the draft's kept
/// as `source_etag`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_copy_is_announced_with_mains_etag_on_s3() {
    let settings = [("DRAFTSTORE_S3_MULTIPART_THRESHOLD", "5242880")];
    let Some((receiver, server)) = serve_with(true, &settings).await else {
        return;
    };
    let (status, _) = post(&server, "/api/v1/draft-bucket", json!({})).await;
    assert_eq!(status, 200);
    let draft = &server.config.buckets.draft;
    let bytes = vec![7_u8; 5 * 1024 * 1024 + 1];
    let options = draftstore_core::PutOptions::default();
    let draft_etag = server
        .storage()
        .put_object(draft, "big.bin", bytes, &options)
        .await
        .unwrap();
    let (status, done) = post(
        &server,
        "/api/v1/confirm-upload",
        json!({"object_name": "big.bin"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let main_etag = done["etag"].as_str().unwrap().trim_matches('"').to_owned();
    assert!(
        main_etag.contains('-') && main_etag != draft_etag,
        "a multipart copy: {done}"
    );
    eventually(Duration::from_secs(30), "the event arrives", || async {
        !receiver.seen().is_empty()
    })
    .await;
    let body: serde_json::Value = serde_json::from_str(&receiver.seen()[0].body).unwrap();
    assert_eq!(
        (
            body["data"]["etag"].as_str(),
            body["data"]["source_etag"].as_str()
        ),
        (Some(main_etag.as_str()), Some(draft_etag.as_str())),
        "{body}"
    );
    server.stop().await;
}

/// Two confirms of one draft version in the check: A (no `overwrite`) queues the event, finds
/// main taken by another object at its copy and is refused 409 `CONFLICT`, withdrawing the
/// event (it waited an hour, never sent); B (`overwrite`) then copies that version over main
/// and its event is delivered, once. (The repair for a copy that lands after the withdrawal
/// is tested on the queue: `copied`.)
async fn a_confirm_refused_after_its_check_withdraws_its_event(s3: bool) {
    let (url, mut calls, gate) = held_checker().await;
    let settings = [
        ("DRAFTSTORE_PRECONFIRM_URL", url.as_str()),
        ("DRAFTSTORE_PRECONFIRM_TIMEOUT_MS", "20000"),
    ];
    let Some((receiver, server)) = serve_with(s3, &settings).await else {
        return;
    };
    let main = &server.config.buckets.main;
    upload(&server, "w.txt", "the draft", "text/plain", "v").await;
    let confirm = |overwrite: bool| {
        let url = server.url("/api/v1/confirm-upload");
        tokio::spawn(async move {
            let answer = reqwest::Client::new()
                .post(url)
                .json(&json!({"object_name": "w.txt", "overwrite": overwrite}))
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<serde_json::Value>().await.unwrap())
        })
    };
    let a = confirm(false);
    calls.recv().await.unwrap();
    let b = confirm(true);
    calls.recv().await.unwrap();
    // Both are in the check of the draft; main now takes another object.
    let other = draftstore_core::PutOptions::default();
    server
        .storage()
        .put_object(main, "w.txt", b"another".to_vec(), &other)
        .await
        .unwrap();
    gate.add_permits(1);
    let (status, body) = a.await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("CONFLICT")),
        "{body}"
    );
    assert_eq!(
        queued(&server).await,
        Vec::<String>::new(),
        "A withdrew the event: main does not hold the draft"
    );
    gate.add_permits(1);
    let (status, body) = b.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let copy = server.storage().head_object(main, "w.txt").await.unwrap();
    assert_eq!(copy.metadata.get("note").map(String::as_str), Some("v"));
    eventually(Duration::from_secs(30), "B's copy announced", || async {
        types(&receiver).values().any(|t| t == "text/plain")
    })
    .await;
    eventually(Duration::from_secs(30), "the queue empties", || async {
        queued(&server).await.is_empty()
    })
    .await;
    assert_eq!(
        types(&receiver).len(),
        1,
        "one event: {:?}",
        types(&receiver)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_refused_after_its_check_withdraws_its_event_on_the_embedded_store() {
    a_confirm_refused_after_its_check_withdraws_its_event(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_refused_after_its_check_withdraws_its_event_on_s3() {
    a_confirm_refused_after_its_check_withdraws_its_event(true).await;
}
