//! `part-urls` on the embedded store (issue 15): a call reads the upload's own record, never
//! its parts, so what it costs does not grow with the parts already stored; 1000 URLs come
//! back in one call, in the order asked, each for its own part of its own upload.

use crate::harness::{http1, start_local, Running};
use draftstore_gateway::config::StorageChoice;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

async fn ok(server: &Running, path: &str, body: Value) -> Value {
    let resp = http1()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let reply: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{path}: {reply}");
    reply
}

/// The folder named `name` somewhere under `root`.
fn find_dir(root: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if entry.file_name() == name {
            return Some(path);
        }
        if let Some(found) = find_dir(&path, name) {
            return Some(found);
        }
    }
    None
}

#[tokio::test]
async fn part_urls_never_read_the_parts_stored() {
    let server = start_local(&[]).await;
    let StorageChoice::Local(local) = &server.config.storage else {
        panic!("the embedded store")
    };
    let name = "big/many parts.bin";
    let created = ok(
        &server,
        "/api/v1/multipart-upload",
        json!({"object_name": name}),
    )
    .await;
    let id = created["upload_id"].as_str().unwrap().to_owned();
    let asked = ok(
        &server,
        "/api/v1/multipart-upload/part-urls",
        json!({"object_name": name, "upload_id": id, "part_numbers": [1, 2, 3]}),
    )
    .await;
    for part in asked["parts"].as_array().unwrap() {
        let put = http1()
            .put(part["url"].as_str().unwrap())
            .body(vec![7_u8; 10])
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200, "{part}");
    }
    let listed = ok(
        &server,
        "/api/v1/multipart-upload/parts",
        json!({"object_name": name, "upload_id": id}),
    )
    .await;
    assert_eq!(listed["parts"].as_array().unwrap().len(), 3);

    // Every file the parts left beside the upload's own record made unreadable: a call that
    // read any part would fail now.
    let folder = find_dir(&local.data_dir, &id).expect("the upload's folder");
    let mut spoiled = 0;
    for entry in std::fs::read_dir(&folder).unwrap().flatten() {
        if entry.path().is_file() && entry.file_name() != "upload.json" {
            std::fs::write(entry.path(), b"not a part record").unwrap();
            spoiled += 1;
        }
    }
    assert!(
        spoiled >= 3,
        "one record per part at least, found {spoiled}"
    );
    let resp = http1()
        .post(server.url("/api/v1/multipart-upload/parts"))
        .json(&json!({"object_name": name, "upload_id": id}))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 200, "listing the parts reads every record");

    // Part URLs do not read them: 2000 parts asked in two calls of 1000, each in order.
    for first in [1_u32, 1001] {
        let numbers: Vec<u32> = (first..first + 1000).rev().collect();
        let reply = ok(
            &server,
            "/api/v1/multipart-upload/part-urls",
            json!({"object_name": name, "upload_id": id, "part_numbers": numbers}),
        )
        .await;
        let parts = reply["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 1000);
        for (part, n) in parts.iter().zip(&numbers) {
            assert_eq!(part["part_number"], *n);
            assert_eq!(part["method"], "PUT");
            let url = part["url"].as_str().unwrap();
            assert!(
                url.contains(&format!("partNumber={n}&uploadId={id}&")),
                "{url}"
            );
        }
    }

    // An unknown upload is still refused, without any part to read.
    let resp = http1()
        .post(server.url("/api/v1/multipart-upload/part-urls"))
        .json(&json!({"object_name": name, "upload_id": "0".repeat(32), "part_numbers": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    server.stop().await;
}
