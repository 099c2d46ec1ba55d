//! Credentials from the AWS chain, as a pod gets them: a local container-credentials endpoint
//! and a local STS (AssumeRoleWithWebIdentity) on 127.0.0.1, profiles in a temporary HOME.
//! The gateway runs as a process with no static keys.
//!
//! SeaweedFS refuses session tokens on its static identities, so the credentials endpoint
//! hands out the two key pairs scripts/seaweedfs.sh registers for this
//! (`DRAFTSTORE_TEST_S3_ROLE_KEYS`), each with an empty `Token` (which the container format
//! requires and the gateway reads as "no token"): a rotation is a change of registered pair.

use crate::stub::{eventually, Gateway, Stub};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(unix: i64) -> String {
    let stamp = draftstore_signer::Timestamp::from_unix(unix).unwrap();
    stamp.rfc3339()
}

fn parse_rfc3339(text: &str) -> i64 {
    let compact: String = text.chars().filter(|c| *c != '-' && *c != ':').collect();
    draftstore_signer::Timestamp::parse_amz(&compact)
        .unwrap()
        .unix()
}

/// The registered role key pairs, or `None` (skip outside CI) without SeaweedFS.
fn role_keys() -> Option<Vec<(String, String)>> {
    crate::s3::env(&[])?;
    let keys = std::env::var("DRAFTSTORE_TEST_S3_ROLE_KEYS")
        .expect("scripts/seaweedfs.sh exports DRAFTSTORE_TEST_S3_ROLE_KEYS");
    Some(
        keys.split(',')
            .map(|pair| {
                let (k, s) = pair.split_once(':').unwrap();
                (k.to_owned(), s.to_owned())
            })
            .collect(),
    )
}

/// Container-credentials JSON for `keys`, expiring `lifetime` seconds from now.
fn container_json(keys: &(String, String), lifetime: i64) -> String {
    serde_json::json!({
        "AccessKeyId": keys.0,
        "SecretAccessKey": keys.1,
        "Token": "",
        "Expiration": rfc3339(unix_now() + lifetime),
    })
    .to_string()
}

/// The README flow through `gateway`: bucket, upload URL, PUT, confirm, download. Returns the
/// upload reply.
async fn flow(gateway: &Gateway, name: &str) -> serde_json::Value {
    let (status, _) = gateway
        .post("/api/v1/draft-bucket", serde_json::json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, upload) = gateway
        .post(
            "/api/v1/upload-url",
            serde_json::json!({"object_name": name}),
        )
        .await;
    assert_eq!(status, 200, "{upload}");
    let url = upload["upload_url"].as_str().unwrap();
    assert_eq!(crate::harness::put_to(url, name.to_owned()).await, 200);
    let (status, confirmed) = gateway
        .post(
            "/api/v1/confirm-upload",
            serde_json::json!({"object_name": name}),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let (status, download) = gateway
        .post(
            "/api/v1/download-url",
            serde_json::json!({"object_name": name, "source": "main"}),
        )
        .await;
    assert_eq!(status, 200, "{download}");
    let url = download["download_url"].as_str().unwrap();
    assert_eq!(crate::harness::fetch(url).await, name.as_bytes());
    upload
}

fn credential_of(url: &str) -> String {
    let start = url.find("X-Amz-Credential=").unwrap() + "X-Amz-Credential=".len();
    url[start..].split("%2F").next().unwrap().to_owned()
}

#[tokio::test]
async fn container_credentials_rotate_and_urls_never_outlive_them() {
    let Some(keys) = role_keys() else { return };
    let lifetime = 60;
    let handed = keys.clone();
    let endpoint = Stub::start(Box::new(move |n, _| {
        (200, container_json(&handed[n % handed.len()], lifetime))
    }))
    .await;
    let env = crate::s3::env(&[]).unwrap();
    let bucket = crate::s3::prefix("creds");
    let gateway = Gateway::start(&[
        ("AWS_ENDPOINT_URL", &env["AWS_ENDPOINT_URL"]),
        ("BUCKET_NAME", &bucket),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            &endpoint.url("/v1/credentials"),
        ),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-identity-token"),
    ])
    .await;
    let seen = endpoint.seen();
    assert_eq!(seen.len(), 1, "fetched once at start");
    assert_eq!(seen[0].path, "/v1/credentials");
    assert_eq!(
        seen[0].headers.get("authorization").map(String::as_str),
        Some("pod-identity-token")
    );

    let upload = flow(&gateway, "first.txt").await;
    let url = upload["upload_url"].as_str().unwrap();
    assert_eq!(credential_of(url), keys[0].0);
    assert!(
        !url.contains("X-Amz-Security-Token"),
        "an empty token is none"
    );
    // The TTL (3600 s) is cut to the credentials' expiry less the margin, and the reply says so.
    assert_eq!(upload["expires_at_cut_by_credentials"], true);
    let expires_at = parse_rfc3339(upload["expires_at"].as_str().unwrap());
    assert!(expires_at <= unix_now() + lifetime - 15, "{upload}");
    let signed_for: i64 = url
        .split("X-Amz-Expires=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(signed_for <= lifetime - 15, "{url}");
    // gRPC says the same on the same port.
    {
        use draftstore_proto::draft::v1 as pb;
        let addr = gateway.base.trim_start_matches("http://").parse().unwrap();
        let mut grpc = crate::grpc_api::client(addr).await;
        let up: pb::GetUploadUrlResponse = crate::grpc_api::call(
            &mut grpc,
            pb::paths::GET_UPLOAD_URL,
            pb::GetUploadUrlRequest {
                object_name: "grpc.txt".into(),
                constraints: None,
            },
        )
        .await
        .unwrap();
        assert!(up.expires_at_cut_by_credentials, "{up:?}");
        assert!(parse_rfc3339(&up.expires_at) <= unix_now() + lifetime - 15);
        let created: pb::CreateDraftBucketResponse = crate::grpc_api::call(
            &mut grpc,
            pb::paths::CREATE_DRAFT_BUCKET,
            pb::CreateDraftBucketRequest {},
        )
        .await
        .unwrap();
        assert_eq!(created.draft_bucket_versioning, "Disabled");
    }

    // Fetched again before they expire (a third of the lifetime early), with no request to
    // trigger it; the flow still works with the new pair.
    eventually(Duration::from_secs(120), "a background refresh", || async {
        endpoint.seen().len() >= 2
    })
    .await;
    let upload = flow(&gateway, "second.txt").await;
    assert_eq!(
        credential_of(upload["upload_url"].as_str().unwrap()),
        keys[1].0
    );
    assert!(
        gateway
            .metric("draftstore_credential_refreshes_total{outcome=\"ok\"}")
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn a_failing_refresh_is_retried_counted_and_ready_holds_until_expiry() {
    let Some(keys) = role_keys() else { return };
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (handed, fail) = (keys[0].clone(), failing.clone());
    let endpoint = Stub::start(Box::new(move |_, _| {
        if fail.load(std::sync::atomic::Ordering::SeqCst) {
            (500, "{\"Code\":\"InternalError\"}".into())
        } else {
            (200, container_json(&handed, 45))
        }
    }))
    .await;
    let env = crate::s3::env(&[]).unwrap();
    let bucket = crate::s3::prefix("creds-fail");
    let gateway = Gateway::start(&[
        ("AWS_ENDPOINT_URL", &env["AWS_ENDPOINT_URL"]),
        ("BUCKET_NAME", &bucket),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            &endpoint.url("/creds"),
        ),
    ])
    .await;
    let (status, _) = gateway
        .post("/api/v1/draft-bucket", serde_json::json!({}))
        .await;
    assert_eq!(status, 200);
    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let errors = "draftstore_credential_refreshes_total{outcome=\"error\"}";
    eventually(Duration::from_secs(60), "two failed refreshes", || async {
        gateway.metric(errors).await >= 2.0
    })
    .await;
    // Retried, and while the credentials in hand are still valid (S3 calls stop using them
    // 5 s before expiry), ready.
    let expiry = gateway
        .metric("draftstore_credentials_expiry_unix_seconds")
        .await as i64;
    assert!(expiry > 0);
    let (status, body) = gateway.get("/ready").await;
    if unix_now() < expiry - 6 {
        assert_eq!(status, 200, "{body}");
    }
    // Once they expire and nothing replaces them, not ready.
    eventually(
        Duration::from_secs(60),
        "not ready after expiry",
        || async { gateway.get("/ready").await.0 == 503 },
    )
    .await;
    // The endpoint recovers: ready again, without a restart.
    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    eventually(Duration::from_secs(60), "ready after recovery", || async {
        gateway.get("/ready").await.0 == 200
    })
    .await;
}

fn sts_reply(keys: &(&str, &str), token: &str, lifetime: i64) -> String {
    format!(
        r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>{}</AccessKeyId>
      <SecretAccessKey>{}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{}</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>system:serviceaccount:draftstore:draftstore</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::111122223333:assumed-role/draftstore/gateway</Arn>
      <AssumedRoleId>AROAEXAMPLE:gateway</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#,
        keys.0,
        keys.1,
        rfc3339(unix_now() + lifetime)
    )
}

/// `gateway presign` with `env` only (HOME and IMDS as in [`Gateway::start`] unless given).
async fn presign(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.env_clear()
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .arg("presign")
        .args(args);
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().unwrap();
        drop(home);
        out
    })
    .await
    .unwrap()
}

const PRESIGN: [&str; 8] = [
    "--endpoint",
    "http://127.0.0.1:9",
    "--bucket",
    "b",
    "--key",
    "k.txt",
    "--expires",
    "3600",
];

#[tokio::test]
async fn web_identity_asks_the_sts_endpoint_never_the_object_store() {
    let sts = Stub::start(Box::new(|_, _| {
        (
            200,
            sts_reply(&("ASIASTSEXAMPLE", "sts-secret"), "sts-session-token", 900),
        )
    }))
    .await;
    let object_store = Stub::start(Box::new(|_, _| (500, String::new()))).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "eyJ.web-identity.token").unwrap();
    let token_path = token_file.to_str().unwrap();
    let out = presign(
        &PRESIGN,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_path),
            ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/draftstore"),
            ("AWS_ROLE_SESSION_NAME", "gateway"),
            ("AWS_ENDPOINT_URL_STS", &sts.url("")),
            ("AWS_ENDPOINT_URL", &object_store.url("")),
        ],
    )
    .await;
    let (url, err) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{err}");
    assert_eq!(credential_of(&url), "ASIASTSEXAMPLE");
    assert!(
        url.contains("X-Amz-Security-Token=sts-session-token"),
        "{url}"
    );
    // The hour asked for is cut to the 15 minutes the role's credentials last (less the
    // margin), and said so: signing time + lifetime ends before they do (handed out before now).
    let query = |name: &str| {
        url.split(&format!("{name}="))
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    };
    let signed_at = draftstore_signer::Timestamp::parse_amz(&query("X-Amz-Date"))
        .unwrap()
        .unix();
    let expires: i64 = query("X-Amz-Expires").parse().unwrap();
    assert!(expires < 3600, "{url}");
    assert!(signed_at + expires <= unix_now() + 900 - 15, "{url}");
    assert!(
        err.contains("cut to") && err.contains("--expires 3600"),
        "{err}"
    );
    let calls = sts.seen();
    assert_eq!(calls.len(), 1);
    for part in [
        "Action=AssumeRoleWithWebIdentity",
        "RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fdraftstore",
        "RoleSessionName=gateway",
        "WebIdentityToken=eyJ.web-identity.token",
    ] {
        assert!(calls[0].body.contains(part), "{part}: {}", calls[0].body);
    }
    assert!(
        object_store.seen().is_empty(),
        "STS went to AWS_ENDPOINT_URL"
    );

    // `gateway serve` with the same role, against a signature-checking store: STS hands out a
    // registered key pair (with an empty token, see the module doc) and the README flow works.
    let Some(keys) = role_keys() else { return };
    let handed = keys[1].clone();
    let sts = Stub::start(Box::new(move |_, _| {
        (200, sts_reply(&(&handed.0, &handed.1), "", 900))
    }))
    .await;
    let env = crate::s3::env(&[]).unwrap();
    let bucket = crate::s3::prefix("irsa");
    let gateway = Gateway::start(&[
        ("AWS_ENDPOINT_URL", &env["AWS_ENDPOINT_URL"]),
        ("BUCKET_NAME", &bucket),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_path),
        ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/draftstore"),
        ("AWS_ENDPOINT_URL_STS", &sts.url("")),
    ])
    .await;
    let upload = flow(&gateway, "irsa.txt").await;
    assert_eq!(
        credential_of(upload["upload_url"].as_str().unwrap()),
        keys[1].0
    );
    assert_eq!(sts.seen().len(), 1);
}

#[tokio::test]
async fn aws_profile_picks_the_profile_from_the_credentials_file() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    let (key, secret) = role_keys()
        .map(|k| k[0].clone())
        .unwrap_or_else(|| ("AKIDPROFILEDEV".into(), "dev-secret".into()));
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n\
             [dev]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
        ),
    )
    .unwrap();
    let home_path = home.path().to_str().unwrap();
    let out = presign(&PRESIGN, &[("HOME", home_path), ("AWS_PROFILE", "dev")]).await;
    let url = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(credential_of(&url), key);
    assert!(out.stderr.is_empty(), "static profile keys never cut a URL");

    let Some(env) = crate::s3::env(&[]) else {
        return;
    };
    let bucket = crate::s3::prefix("profile");
    let gateway = Gateway::start(&[
        ("AWS_ENDPOINT_URL", &env["AWS_ENDPOINT_URL"]),
        ("BUCKET_NAME", &bucket),
        ("HOME", home_path),
        ("AWS_PROFILE", "dev"),
    ])
    .await;
    let upload = flow(&gateway, "profile.txt").await;
    assert!(upload.get("expires_at_cut_by_credentials").is_none());
}

#[tokio::test]
async fn presign_without_credentials_fails_fast_naming_what_it_tried() {
    // An instance-metadata endpoint that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let imds = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let out = presign(
        &PRESIGN,
        &[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds),
        ],
    )
    .await;
    // A guard against hanging, not a speed assertion: the command gives up by itself.
    assert!(started.elapsed() < Duration::from_secs(30));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for tried in [
        "AWS_ACCESS_KEY_ID",
        "profile",
        "web identity",
        "container",
        "IMDSv2",
    ] {
        assert!(err.contains(tried), "{tried}: {err}");
    }
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn sweep_takes_its_credentials_from_the_chain_too() {
    let Some(keys) = role_keys() else { return };
    let handed = keys[0].clone();
    let endpoint = Stub::start(Box::new(move |_, _| (200, container_json(&handed, 900)))).await;
    let env = crate::s3::env(&[]).unwrap();
    let bucket = crate::s3::prefix("creds-sweep");
    let storage = crate::s3::storage(&env);
    let draft = draftstore_core::BucketName::parse(&format!("{bucket}-draft")).unwrap();
    draftstore_core::Storage::create_bucket(&storage, &draft)
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.env_clear()
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", &env["AWS_ENDPOINT_URL"])
        .env("BUCKET_NAME", &bucket)
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url("/creds"))
        .args(["sweep", "--json"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(endpoint.seen().len(), 1);
}

#[tokio::test]
async fn a_failing_credentials_endpoint_at_start_is_exit_64_naming_it() {
    let endpoint = Stub::start(Box::new(|_, _| {
        (500, "{\"Code\":\"InternalError\"}".into())
    }))
    .await;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.env_clear()
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("BUCKET_NAME", "photos")
        .env("DRAFTSTORE_AUTH", "none")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url("/creds"))
        .args(["serve", "--bind", "127.0.0.1", "--http-port", "0"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(64), "{err}");
    let last = err.lines().last().unwrap();
    assert!(last.contains("container failed"), "{err}");
    assert!(
        last.contains("profile") && last.contains("web identity"),
        "{err}"
    );
    assert!(!endpoint.seen().is_empty());
}
