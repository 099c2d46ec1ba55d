//! `gateway sweep` as the CronJob runs it, against SeaweedFS: drafts older than a short
//! lifetime go, young drafts and everything in main stay; dry-run deletes nothing; listings
//! span several pages; failed deletes are counted and exit 1.

use crate::proxy::{Proxy, ProxyFault};
use draftstore_core::{BucketName, PutOptions, Storage};
use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::Duration;

fn sweep(env: &HashMap<String, String>, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .envs(env)
        .arg("sweep")
        .args(args)
        .output()
        .unwrap()
}

async fn fill(s3: &impl Storage, bucket: &BucketName, prefix: &str, n: usize) {
    for i in 0..n {
        s3.put_object(
            bucket,
            &format!("{prefix}/{i:03} ሴ+.bin"),
            vec![7; 100],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    }
}

// Multi-threaded: the fault proxy must keep running while the test waits on the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_old_drafts_only_and_reports_in_json() {
    let p = crate::s3::prefix("swc");
    let (main, draft) = (format!("{p}-main"), format!("{p}-drafts"));
    let Some(mut env) = crate::s3::env(&[
        ("BUCKET_NAME", &main),
        ("DRAFT_BUCKET", &draft),
        ("OBJECT_LIFETIME", "2"),
    ]) else {
        return;
    };
    let s3 = crate::s3::storage(&env);
    let (main_bucket, draft_bucket) = (
        BucketName::parse(&main).unwrap(),
        BucketName::parse(&draft).unwrap(),
    );
    s3.create_bucket(&main_bucket).await.unwrap();
    s3.create_bucket(&draft_bucket).await.unwrap();
    fill(&s3, &draft_bucket, "old", 25).await;
    s3.put_object(
        &main_bucket,
        "confirmed.bin",
        b"keep".to_vec(),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    // DraftStore's own records (the event queue) live in the draft bucket: not drafts.
    for id in ["msg_1", "msg_2"] {
        s3.put_object(
            &draft_bucket,
            &draftstore_core::events::queue_key(id),
            b"{}".to_vec(),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    fill(&s3, &draft_bucket, "young", 5).await;

    let dry = sweep(&env, &["--dry-run", "--json", "--page-size", "10"]);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(
        (
            report["scanned"].as_u64(),
            report["reserved"].as_u64(),
            report["expired"].as_u64(),
            report["deleted"].as_u64()
        ),
        (Some(30), Some(2), Some(25), Some(0)),
        "drafts scanned, DraftStore's records apart: {report}"
    );
    assert_eq!(
        (
            report["bytes_expired"].as_u64(),
            report["bytes_freed"].as_u64()
        ),
        (Some(2500), Some(0)),
        "a dry run says what it would free: {report}"
    );
    let stderr = String::from_utf8_lossy(&dry.stderr);
    assert_eq!(stderr.matches("would delete old/").count(), 25);
    assert!(stderr.contains("would delete 25 (2500 bytes)"), "{stderr}");
    assert_eq!(
        s3.list_objects(&draft_bucket, "", None, 1000)
            .await
            .unwrap()
            .objects
            .len(),
        32,
        "dry run deleted nothing"
    );

    // Pages of 10, up to 3 batches in flight while the next page is listed.
    let run = sweep(&env, &["--json", "--page-size", "10", "--concurrency", "3"]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        (
            report["deleted"].as_u64(),
            report["failed"].as_u64(),
            report["bytes_freed"].as_u64()
        ),
        (Some(25), Some(0), Some(2500)),
        "{report}"
    );
    assert_eq!(report["reserved"].as_u64(), Some(2), "{report}");
    for key in [
        "scanned",
        "reserved",
        "expired",
        "bytes_expired",
        "deleted",
        "failed",
        "bytes_freed",
        "multipart_aborted",
        "duration_ms",
    ] {
        assert!(report.get(key).is_some(), "{key} in {report}");
    }
    let left: Vec<String> = s3
        .list_objects(&draft_bucket, "", None, 1000)
        .await
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(left.len(), 7, "{left:?}");
    assert!(left
        .iter()
        .all(|k| k.starts_with("young/") || k.starts_with(".draftstore/events/")));
    assert!(
        s3.head_object(&main_bucket, "confirmed.bin").await.is_ok(),
        "main untouched"
    );

    // Without --json: a human summary on stderr, nothing on stdout.
    let quiet = sweep(&env, &[]);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(quiet.stdout.is_empty());
    assert!(String::from_utf8_lossy(&quiet.stderr).contains("scanned 5"));

    // Failed deletes: the batch delete answers 500 and retries are off.
    fill(&s3, &draft_bucket, "doomed", 3).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let proxy = Proxy::start(env["AWS_ENDPOINT_URL"].clone()).await;
    env.insert("AWS_ENDPOINT_URL".into(), proxy.url());
    env.insert("DRAFTSTORE_S3_MAX_ATTEMPTS".into(), "1".into());
    // The listing passes; the batch delete and the look for stale uploads, which race once
    // the listing is over, both get 500 (one fault for the delete alone hit the uploads'
    // listing instead in some runs).
    proxy.push([
        ProxyFault::Pass,
        ProxyFault::Status(500),
        ProxyFault::Status(500),
    ]);
    let failed = sweep(&env, &["--json"]);
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(report["failed"].as_u64(), Some(8), "{report}");

    let bad = sweep(&env, &["--page-size", "0"]);
    assert_eq!(bad.status.code(), Some(64));
    for concurrency in ["0", "65"] {
        let bad = sweep(&env, &["--concurrency", concurrency]);
        assert_eq!(bad.status.code(), Some(64));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("--concurrency must be 1..=64"));
    }
    env.insert("OBJECT_LIFETIME".into(), "soon".into());
    let bad = sweep(&env, &[]);
    assert_eq!(bad.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("OBJECT_LIFETIME"));
}

fn local_env(dir: &std::path::Path) -> HashMap<String, String> {
    HashMap::from([
        ("DRAFTSTORE_DATA_DIR".to_owned(), dir.display().to_string()),
        ("OBJECT_LIFETIME".to_owned(), "1".to_owned()),
    ])
}

#[test]
fn sweep_in_a_folder_without_a_store_fails_and_makes_none() {
    let dir = tempfile::tempdir().unwrap();
    let out = sweep(&local_env(dir.path()), &[]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no local store in") && stderr.contains("DRAFTSTORE_DATA_DIR"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created"
    );
}

#[tokio::test]
async fn sweep_of_a_local_store_leaves_a_running_servers_uploads_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = draftstore_gateway::config::LocalConfig {
        data_dir: dir.path().to_owned(),
        public_url: "http://127.0.0.1:8080".to_owned(),
        secret: None,
        max_object: 1 << 20,
        stall_timeout: std::time::Duration::from_secs(20),
    };
    let store = draftstore_gateway::store::local::LocalStorage::open(&config).unwrap();
    let draft = BucketName::parse("main-draft").unwrap();
    store.create_bucket(&draft).await.unwrap();
    store
        .put_object(&draft, "old.bin", b"x".to_vec(), &PutOptions::default())
        .await
        .unwrap();
    // An upload the server is writing right now.
    let upload = dir.path().join("tmp").join("upload-in-progress");
    std::fs::write(&upload, b"half").unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let out = sweep(&local_env(dir.path()), &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["deleted"].as_u64(), Some(1), "{report}");
    assert!(upload.exists(), "the in-progress upload was removed");
}

/// The CronJob shares the Deployment's ConfigMap: a serving-only setting that `serve` would
/// refuse (a JWT key file mounted only in the Deployment, a bad port) must not stop a sweep.
#[tokio::test]
async fn sweep_ignores_the_servers_auth_and_port_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = draftstore_gateway::config::LocalConfig {
        data_dir: dir.path().to_owned(),
        public_url: "http://127.0.0.1:8080".to_owned(),
        secret: None,
        max_object: 1 << 20,
        stall_timeout: std::time::Duration::from_secs(20),
    };
    let store = draftstore_gateway::store::local::LocalStorage::open(&config).unwrap();
    let draft = BucketName::parse("main-draft").unwrap();
    store.create_bucket(&draft).await.unwrap();
    store
        .put_object(&draft, "old.bin", b"x".to_vec(), &PutOptions::default())
        .await
        .unwrap();
    drop(store);
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let mut env = local_env(dir.path());
    let missing = dir.path().join("no-such-key.pem");
    for (k, v) in [
        ("DRAFTSTORE_AUTH", "jwt"),
        ("DRAFTSTORE_JWT_PUBLIC_KEY_FILE", missing.to_str().unwrap()),
        ("HTTP_PORT", "eighty"),
        ("DRAFTSTORE_MAX_IN_FLIGHT", "0"),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    let out = sweep(&env, &["--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["deleted"].as_u64(), Some(1), "{report}");
    assert!(!stderr.contains("JWT"), "{stderr}");
}

/// On the embedded store too, `--dry-run` reports the bytes it would free (it said 0 bytes),
/// and frees none.
#[tokio::test]
async fn a_dry_run_on_the_embedded_store_reports_the_bytes_it_would_free() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("draftstore-data");
    let store = draftstore_gateway::store::local::LocalStorage::open(&crate::local_store::config(
        &data,
        "http://127.0.0.1:1",
    ))
    .unwrap();
    let draft = BucketName::parse("main-draft").unwrap();
    store.create_bucket(&draft).await.unwrap();
    fill(&store, &draft, "old", 3).await;
    // Older than a lifetime of 1 s.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let dry = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .env("DRAFTSTORE_DATA_DIR", &data)
        .env("OBJECT_LIFETIME", "1")
        .args(["sweep", "--dry-run", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&dry.stderr);
    assert_eq!(dry.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(
        (
            report["expired"].as_u64(),
            report["bytes_expired"].as_u64(),
            report["deleted"].as_u64(),
            report["bytes_freed"].as_u64()
        ),
        (Some(3), Some(300), Some(0), Some(0)),
        "{report}"
    );
    assert!(stderr.contains("would delete 3 (300 bytes)"), "{stderr}");
    assert_eq!(
        store
            .list_objects(&draft, "", None, 1000)
            .await
            .unwrap()
            .objects
            .len(),
        3,
        "nothing deleted"
    );
}
