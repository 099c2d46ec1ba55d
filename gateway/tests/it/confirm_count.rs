//! `draftstore_confirms_total{outcome="confirmed"}` and `draftstore_confirmed_bytes_total`
//! count each object once, however many confirms race on it: 10 objects × 8 concurrent
//! confirms add exactly 10 and the 10 objects' bytes. Each case runs the `gateway` binary in
//! its own process, so no other test's confirms reach its counters.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

const OBJECTS: usize = 10;
const CONFIRMS: usize = 8;

struct Gateway {
    child: Child,
    port: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn<'a>(dir: &std::path::Path, env: impl IntoIterator<Item = (&'a str, &'a str)>) -> Gateway {
    let env: Vec<(&str, &str)> = env.into_iter().collect();
    let (child, port) = crate::harness::spawn_on_free_port(
        |port| {
            Command::new(env!("CARGO_BIN_EXE_gateway"))
                .env_clear()
                .envs(env.iter().copied())
                .current_dir(dir)
                .args(["serve", "--bind", "127.0.0.1", "--http-port"])
                .arg(port.to_string())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        },
        Duration::from_secs(20),
    );
    Gateway { child, port }
}

async fn post(client: &reqwest::Client, port: u16, path: &str, body: String) -> serde_json::Value {
    let resp = client
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The value of one series of the gateway's `/metrics` (0 when it is not there yet).
async fn metric(client: &reqwest::Client, port: u16, series: &str) -> f64 {
    let text = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Uploads 10 objects (sizes 1..=10 KiB), confirms each 8 times at once, and checks the
/// counters moved by exactly one confirm per object.
async fn ten_objects_eight_confirms_each(gateway: &Gateway) {
    let client = reqwest::Client::new();
    let port = gateway.port;
    post(&client, port, "/api/v1/draft-bucket", "{}".into()).await;
    let confirmed = r#"draftstore_confirms_total{outcome="confirmed"}"#;
    let already = r#"draftstore_confirms_total{outcome="already_confirmed"}"#;
    let bytes = "draftstore_confirmed_bytes_total";
    let before = (
        metric(&client, port, confirmed).await,
        metric(&client, port, already).await,
        metric(&client, port, bytes).await,
    );
    let mut total = 0;
    for i in 0..OBJECTS {
        let name = format!("race/{i}.bin");
        let up = post(
            &client,
            port,
            "/api/v1/upload-url",
            format!(r#"{{"object_name":"{name}"}}"#),
        )
        .await;
        let size = (i + 1) * 1024;
        total += size;
        assert_eq!(
            crate::harness::put_to(up["upload_url"].as_str().unwrap(), vec![b'x'; size]).await,
            200
        );
    }
    let confirms = (0..OBJECTS * CONFIRMS).map(|n| {
        let client = client.clone();
        let body = format!(r#"{{"object_name":"race/{}.bin"}}"#, n / CONFIRMS);
        tokio::spawn(async move { post(&client, port, "/api/v1/confirm-upload", body).await })
    });
    for done in futures_util::future::join_all(confirms).await {
        assert_eq!(done.unwrap()["success"], true);
    }
    let after = (
        metric(&client, port, confirmed).await,
        metric(&client, port, already).await,
        metric(&client, port, bytes).await,
    );
    assert_eq!(
        after.0 - before.0,
        OBJECTS as f64,
        "confirmed: one per object"
    );
    assert_eq!(
        after.1 - before.1,
        (OBJECTS * (CONFIRMS - 1)) as f64,
        "the other confirms found the object moved"
    );
    assert_eq!(after.2 - before.2, total as f64, "each object's bytes once");
}

#[tokio::test]
async fn embedded_store_counts_each_confirmed_object_once() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = spawn(dir.path(), []);
    ten_objects_eight_confirms_each(&gateway).await;
}

/// With conditional writes the store decides which copy wins, across replicas; without them
/// confirms of one name take turns in the process (the counter may over-count across
/// replicas then, as README says).
#[tokio::test]
async fn seaweedfs_counts_each_confirmed_object_once_with_and_without_conditional_writes() {
    for conditional in ["true", "false"] {
        let bucket = crate::s3::prefix("cnt");
        let Some(env) = crate::s3::env(&[
            ("BUCKET_NAME", &bucket),
            ("DRAFTSTORE_AUTH", "none"),
            ("DRAFTSTORE_S3_CONDITIONAL_WRITES", conditional),
        ]) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let gateway = spawn(
            dir.path(),
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        ten_objects_eight_confirms_each(&gateway).await;
    }
}
