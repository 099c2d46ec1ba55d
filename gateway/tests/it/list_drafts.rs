//! Issue 16: `POST /api/v1/list-drafts` and gRPC `ListDrafts` list the caller's drafts, with
//! their size and expiry, on the store `DRAFTSTORE_TEST_STORE` names: each tenant sees only its
//! own (names without its folder), a prefix narrows the list, DraftStore's `.draftstore/` keys
//! never show, a confirmed draft leaves the list, and a bad prefix or no key is refused, alike
//! on every listing that takes a prefix (multipart-upload/list too).

use crate::grpc_api::{call, client};
use crate::harness::{put_to, start, Running};
use draftstore_core::PutOptions;
use draftstore_proto::draft::v1 as pb;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const LIST: &str = "/api/v1/list-drafts";

async fn post(server: &Running, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = crate::harness::http1().post(server.url(path)).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Uploads `bytes` as the draft `name` for the holder of `key`.
async fn draft(server: &Running, key: &str, name: &str, bytes: &[u8]) {
    let (status, made) = post(
        server,
        "/api/v1/upload-url",
        Some(key),
        json!({"object_name": name}),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let url = made["upload_url"].as_str().unwrap();
    assert_eq!(put_to(url, bytes.to_vec()).await, 200);
}

fn names(reply: &Value) -> Vec<&str> {
    reply["drafts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["object_name"].as_str().unwrap())
        .collect()
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SSZ` (days from the civil date, H. Hinnant's algorithm).
fn unix(rfc3339: &str) -> i64 {
    assert_eq!(rfc3339.len(), 20, "{rfc3339}");
    let n = |r: std::ops::Range<usize>| rfc3339[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(since.unwrap().as_secs()).unwrap()
}

#[tokio::test]
async fn each_tenant_lists_its_own_drafts_with_their_expiry() {
    let hash = |key: &str| hex::encode(Sha256::digest(key.as_bytes()));
    let keys = format!("acme {};globex {}", hash("acme-key"), hash("globex-key"));
    let Some(server) = start(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", &keys),
        ("OBJECT_LIFETIME", "600"),
    ])
    .await
    else {
        return;
    };
    draft(&server, "acme-key", "photos/cat.jpg", b"meow").await;
    draft(&server, "acme-key", "notes.txt", &[7; 1000]).await;
    draft(&server, "globex-key", "photos/dog.jpg", b"woof").await;

    let (status, reply) = post(&server, LIST, None, json!({})).await;
    assert_eq!(status, 401, "{reply}");
    let (status, mine) = post(&server, LIST, Some("acme-key"), json!({})).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(
        names(&mine),
        ["notes.txt", "photos/cat.jpg"],
        "in name order, no folder"
    );
    assert_eq!(mine["truncated"], false);
    let notes = &mine["drafts"][0];
    assert_eq!(notes["size"], 1000);
    let stored = unix(notes["last_modified"].as_str().unwrap());
    let expires = unix(notes["expires_at"].as_str().unwrap());
    assert_eq!(expires - stored, 600, "expiry is stored + OBJECT_LIFETIME");
    let now = now();
    assert!(
        (now - 120..=now + 5).contains(&stored),
        "stored just now: {stored} vs {now}"
    );

    let (_, photos) = post(
        &server,
        LIST,
        Some("acme-key"),
        json!({"prefix": "photos/"}),
    )
    .await;
    assert_eq!(names(&photos), ["photos/cat.jpg"]);
    let (_, theirs) = post(&server, LIST, Some("globex-key"), json!({"prefix": null})).await;
    assert_eq!(names(&theirs), ["photos/dog.jpg"]);

    for bad in [
        json!({"prefix": "../"}),
        json!({"prefix": "a\u{1}"}),
        json!({"prefix": 3}),
    ] {
        let (status, reply) = post(&server, LIST, Some("acme-key"), bad.clone()).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (400, Some("INVALID_REQUEST")),
            "{bad}: {reply}"
        );
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("prefix"),
            "{reply}"
        );
    }

    // A confirmed draft leaves the list.
    let (status, done) = post(
        &server,
        "/api/v1/confirm-upload",
        Some("acme-key"),
        json!({"object_name": "notes.txt"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let (_, after) = post(&server, LIST, Some("acme-key"), json!({})).await;
    assert_eq!(names(&after), ["photos/cat.jpg"]);
    server.stop().await;
}

#[tokio::test]
async fn reserved_keys_never_show_and_grpc_lists_the_same() {
    let Some(server) = start(&[]).await else {
        return;
    };
    draft(&server, "unused", "a.bin", b"0123456789").await;
    // DraftStore's own event queue lives in the draft bucket.
    server
        .storage()
        .put_object(
            &server.config.buckets.draft,
            ".draftstore/events/e1.json",
            b"{}".to_vec(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let (status, listed) = post(&server, LIST, None, json!({})).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(names(&listed), ["a.bin"]);
    let (status, reply) = post(&server, LIST, None, json!({"prefix": ".draftstore/"})).await;
    assert_eq!(status, 400, "{reply}");

    let mut grpc = client(server.addr).await;
    let reply: pb::ListDraftsResponse = call(
        &mut grpc,
        pb::paths::LIST_DRAFTS,
        pb::ListDraftsRequest::default(),
    )
    .await
    .unwrap();
    assert!(reply.result.unwrap().success);
    assert_eq!(reply.drafts.len(), 1);
    let one = &reply.drafts[0];
    assert_eq!((one.object_name.as_str(), one.size), ("a.bin", 10));
    assert_eq!(one.expires_at, listed["drafts"][0]["expires_at"]);
    let refused = call::<_, pb::ListDraftsResponse>(
        &mut grpc,
        pb::paths::LIST_DRAFTS,
        pb::ListDraftsRequest {
            prefix: "../".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("prefix"),
        "{}",
        refused.message()
    );
    server.stop().await;
}

/// Every route that takes a prefix checks it the same way (one shared check): the reserved
/// `.draftstore/`, `../` and an empty segment are 400 `INVALID_REQUEST` with one message on
/// list-drafts and multipart-upload/list, over REST and gRPC (multipart-upload/list ignored the
/// prefix and answered 200 with every upload); a valid prefix narrows the uploads listed.
#[tokio::test]
async fn every_listing_refuses_the_reserved_prefix_alike_and_multipart_uploads_narrow_by_prefix() {
    const UPLOADS: &str = "/api/v1/multipart-upload/list";
    let Some(server) = start(&[]).await else {
        return;
    };
    post(&server, "/api/v1/draft-bucket", None, json!({})).await;
    let mut ids = Vec::new();
    for name in ["photos/big.bin", "video/big.bin"] {
        let (status, made) = post(
            &server,
            "/api/v1/multipart-upload",
            None,
            json!({"object_name": name}),
        )
        .await;
        assert_eq!(status, 200, "{made}");
        ids.push(made["upload_id"].as_str().unwrap().to_owned());
    }
    for bad in [".draftstore/", ".draftstore/events/", "../", "a//"] {
        let (status, drafts) = post(&server, LIST, None, json!({"prefix": bad})).await;
        let (status_mp, uploads) = post(&server, UPLOADS, None, json!({"prefix": bad})).await;
        assert_eq!((status, status_mp), (400, 400), "{bad}: {drafts} {uploads}");
        assert_eq!(drafts["error"]["code"], "INVALID_REQUEST", "{bad}");
        assert_eq!(drafts["error"], uploads["error"], "{bad}: the same refusal");
    }
    let (status, photos) = post(&server, UPLOADS, None, json!({"prefix": "photos/"})).await;
    assert_eq!(status, 200, "{photos}");
    let listed: Vec<(&str, &str)> = photos["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["object_name"].as_str().unwrap(),
                u["upload_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("photos/big.bin", ids[0].as_str())]);
    let (_, all) = post(&server, UPLOADS, None, json!({"prefix": null})).await;
    assert_eq!(all["uploads"].as_array().unwrap().len(), 2, "{all}");
    let (_, named) = post(
        &server,
        UPLOADS,
        None,
        json!({"object_name": "video/big.bin", "prefix": "photos/"}),
    )
    .await;
    assert_eq!(named["uploads"], json!([]), "both must match: {named}");

    let mut grpc = client(server.addr).await;
    let refused = call::<_, pb::ListMultipartUploadsResponse>(
        &mut grpc,
        pb::paths::LIST_MULTIPART_UPLOADS,
        pb::ListMultipartUploadsRequest {
            prefix: ".draftstore/".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let refused_drafts = call::<_, pb::ListDraftsResponse>(
        &mut grpc,
        pb::paths::LIST_DRAFTS,
        pb::ListDraftsRequest {
            prefix: ".draftstore/".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.message(), refused_drafts.message());
    let found: pb::ListMultipartUploadsResponse = call(
        &mut grpc,
        pb::paths::LIST_MULTIPART_UPLOADS,
        pb::ListMultipartUploadsRequest {
            prefix: "video/".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let names: Vec<&str> = found
        .uploads
        .iter()
        .map(|u| u.object_name.as_str())
        .collect();
    assert_eq!(names, ["video/big.bin"]);
    for (name, id) in ["photos/big.bin", "video/big.bin"].iter().zip(&ids) {
        let (status, _) = post(
            &server,
            "/api/v1/multipart-upload/abort",
            None,
            json!({"object_name": name, "upload_id": id}),
        )
        .await;
        assert_eq!(status, 200);
    }
    server.stop().await;
}
