//! `gateway serve` as a process: configuration errors are one line and exit 64; SIGTERM lets
//! in-flight requests finish and exits 0.

use crate::proxy::{Proxy, ProxyFault};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn gateway() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.env_clear().arg("serve");
    cmd
}

/// Runs `cmd` to completion, or kills it after `limit` and fails: a process that should have
/// refused to start must not hang the suite (or go on serving).
fn output_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}: it should have exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn bad_configuration_is_one_line_and_exit_64() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case<'_>] = &[
        // A bucket with no credentials anywhere (no keys, and the AWS chain finds none) is an
        // error naming what was tried, not a reason to fall back to local.
        (
            &[
                ("BUCKET_NAME", "photos"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ],
            &[],
            "AWS_ACCESS_KEY_ID",
        ),
        // ... and says which variable chose S3, and how to keep the embedded store.
        (
            &[
                ("BUCKET_NAME", "photos"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ],
            &[],
            "S3 is used because BUCKET_NAME is set; DRAFTSTORE_STORAGE=local",
        ),
        (&[("DRAFTSTORE_STORAGE", "disk")], &[], "DRAFTSTORE_STORAGE"),
        (
            &[
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "super-secret"),
                ("HTTP_PORT", "http"),
            ],
            &[],
            "HTTP_PORT",
        ),
        (
            &[
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "super-secret"),
            ],
            &["--upload-ttl", "0"],
            "UPLOAD_TTL",
        ),
        (
            &[
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "super-secret"),
                ("BUCKET_NAME", "UPPER"),
            ],
            &[],
            "BUCKET_NAME",
        ),
        (
            &[
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "super-secret"),
                ("AWS_ENDPOINT_URL", "not a url"),
            ],
            &[],
            "AWS_ENDPOINT_URL",
        ),
        // Settings valid alone that cannot work together are refused before anything starts:
        // virtual-hosted addressing cannot put a bucket in front of an IP address.
        (
            &[
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "super-secret"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
                ("DRAFTSTORE_S3_ADDRESSING", "virtual"),
                ("DRAFTSTORE_AUTH", "none"),
            ],
            &["--bind", "127.0.0.1", "--http-port", "0"],
            "DRAFTSTORE_S3_ADDRESSING=virtual needs a DNS endpoint host, but AWS_ENDPOINT_URL is 127.0.0.1",
        ),
        (
            &[("DRAFTSTORE_API_KEYS", "acme 00")],
            &["--bind", "127.0.0.1", "--http-port", "0"],
            "DRAFTSTORE_AUTH=api-keys",
        ),
        (
            &[],
            &["--public-url", "ftp://files.example", "--http-port", "0"],
            "DRAFTSTORE_PUBLIC_URL",
        ),
        // A log filter that does not parse is refused, not replaced by `info` in silence.
        (
            &[("DRAFTSTORE_LOG", "[[[")],
            &["--bind", "127.0.0.1", "--http-port", "0"],
            "DRAFTSTORE_LOG",
        ),
    ];
    for (env, args, mention) in cases {
        let out = output_within(
            gateway().envs(env.iter().copied()).args(*args),
            Duration::from_secs(20),
        );
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(64), "{env:?} {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(mention), "{err}");
        assert!(!err.contains("super-secret"));
    }
}

#[test]
fn a_port_in_use_is_exit_69() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut out = gateway();
    let out = out
        .envs([
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("DRAFTSTORE_AUTH", "none"),
        ])
        .args(["--bind", "127.0.0.1", "--http-port", &port]);
    let out = output_within(out, Duration::from_secs(20));
    assert_eq!(
        out.status.code(),
        Some(69),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let Some(env) = crate::s3::env(&[]) else {
        return;
    };
    let proxy = Proxy::start(env["AWS_ENDPOINT_URL"].clone()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = gateway()
        .envs(env.iter().filter(|(k, _)| *k != "AWS_ENDPOINT_URL"))
        .env("AWS_ENDPOINT_URL", proxy.url())
        .env("DRAFTSTORE_SHUTDOWN_GRACE_MS", "5000")
        .env("DRAFTSTORE_AUTH", "none")
        .args(["--bind", "127.0.0.1", "--http-port", &port.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "gateway did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A request whose S3 call takes 1.5 s; SIGTERM arrives while it is in flight.
    proxy.push([ProxyFault::Delay(Duration::from_millis(1500))]);
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/api/v1/download-url");
        async move {
            client
                .post(url)
                .json(&serde_json::json!({"object_name": "slow"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(status, 404, "answered normally (the object does not exist)");
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    assert!(
        client.get(format!("{base}/health")).send().await.is_err(),
        "no longer accepting"
    );
}
