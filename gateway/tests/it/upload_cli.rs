//! `gateway upload` as a user runs it: the real binary against the real server (embedded store,
//! and SeaweedFS for one case), checked by what a user would look at: the exit status, the line
//! printed, and the bytes in the main bucket.

use crate::harness::{start, start_s3, Running};
use draftstore_core::BucketName;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `gateway upload ARGS` with only `env` in its environment, on a blocking thread (the
/// server runs on the test's runtime meanwhile).
pub async fn upload(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.arg("upload").args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `len` bytes no two runs share, written to `dir/name`.
pub fn random_file(dir: &Path, name: &str, len: usize) -> (std::path::PathBuf, Vec<u8>) {
    let mut bytes = vec![0u8; len];
    let mut rng = fastrand::Rng::new();
    rng.fill(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

pub fn main_bucket(server: &Running) -> BucketName {
    server.config.buckets.main.clone()
}

/// A small file: one PUT, confirmed; main holds the exact bytes and the line says so.
async fn small_file_round_trip(server: &Running) {
    // Both buckets, as a user's first call does (the embedded store made them at start).
    let made = crate::harness::http1()
        .post(server.url("/api/v1/draft-bucket"))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{made:?}");
    let dir = tempfile::tempdir().unwrap();
    let name = format!("small-{}.bin", fastrand::u32(..));
    let (path, bytes) = random_file(dir.path(), &name, 3 * 1024 * 1024 + 17);
    let endpoint = server.url("");
    let out = upload(
        &[
            path.to_str().unwrap(),
            "--confirm",
            "--json",
            "--content-type",
            "application/octet-stream",
        ],
        &[("DRAFTSTORE_ENDPOINT", &endpoint)],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["object_name"], name.as_str(), "{reply}");
    assert_eq!(reply["method"], "single", "{reply}");
    assert_eq!(reply["confirmed"], true, "{reply}");
    assert_eq!(reply["size"], bytes.len(), "{reply}");
    let stored = server
        .storage()
        .get_object(&main_bucket(server), &name)
        .await
        .unwrap();
    assert!(stored == bytes, "main holds other bytes");
    assert!(
        !dir.path()
            .join(format!("{name}.draftstore-upload"))
            .exists(),
        "a single PUT leaves no state file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_goes_in_one_put_and_is_confirmed() {
    let Some(server) = start(&[]).await else {
        return;
    };
    small_file_round_trip(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_reaches_seaweedfs() {
    let Some(server) = start_s3(&[]).await else {
        return;
    };
    small_file_round_trip(&server).await;
}

/// A file in three parts (5 MiB, 5 MiB, 1 MiB + 3), each PUT with its SHA-256 signed in (the
/// default), completed and confirmed: main holds the exact bytes. On SeaweedFS, whose ListParts
/// lists no checksums, the completion takes the checksums the gateway kept when signing.
/// `extra` flags are added to the command.
async fn sha256_parts_round_trip(server: &Running, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("parts-{}.bin", fastrand::u32(..));
    let (path, bytes) = random_file(dir.path(), &name, 11 * 1024 * 1024 + 3);
    let endpoint = server.url("");
    let five = (5 * 1024 * 1024).to_string();
    let mut args = vec![
        path.to_str().unwrap(),
        "--confirm",
        "--json",
        "--part-size",
        five.as_str(),
        "--multipart-threshold",
        five.as_str(),
    ];
    args.extend_from_slice(extra);
    let out = upload(&args, &[("DRAFTSTORE_ENDPOINT", &endpoint)]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["method"], "multipart", "{reply}");
    assert_eq!(reply["parts_sent"], 3, "{reply}");
    assert_eq!(reply["confirmed"], true, "{reply}");
    let stored = server
        .storage()
        .get_object(&main_bucket(server), &name)
        .await
        .unwrap();
    assert!(stored == bytes, "main holds other bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_parts_complete_on_the_embedded_store() {
    let server = crate::harness::start_local(&[]).await;
    sha256_parts_round_trip(&server, &[]).await;
}

/// 64 parts of 5 MiB in flight would hold 320 MiB, over the client's 256 MiB for parts in
/// memory: each part is then hashed in one pass over the file and streamed from it in another,
/// and the store still gets (and checks) the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_too_large_to_hold_are_streamed_from_the_file() {
    let server = crate::harness::start_local(&[]).await;
    sha256_parts_round_trip(&server, &["--parallel", "64"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_parts_complete_on_seaweedfs() {
    let Some(server) = start_s3(&[]).await else {
        return;
    };
    sha256_parts_round_trip(&server, &[]).await;
}

/// Without --confirm the object stays a draft, and the plain line names it and its ETag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_confirm_the_draft_is_named_with_its_etag() {
    let server = crate::harness::start_local(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = random_file(dir.path(), "draft.txt", 1000);
    let endpoint = server.url("");
    let out = upload(
        &[path.to_str().unwrap(), "--name", "docs/d.txt"],
        &[("DRAFTSTORE_ENDPOINT", &endpoint)],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let md5 = hex::encode(md5_of(&bytes));
    assert!(line.starts_with("docs/d.txt 1000 bytes, etag "), "{line}");
    assert!(line.contains(&md5), "{line}");
    assert!(line.contains("not confirmed"), "{line}");
    let draft = server.config.buckets.draft.clone();
    assert!(
        server
            .storage()
            .get_object(&draft, "docs/d.txt")
            .await
            .unwrap()
            == bytes,
        "the draft holds the file"
    );
}

fn md5_of(bytes: &[u8]) -> Vec<u8> {
    use md5::Digest as _;
    md5::Md5::digest(bytes).to_vec()
}

#[tokio::test]
async fn an_unreachable_endpoint_is_exit_69() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = random_file(dir.path(), "f", 10);
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = upload(&[path.to_str().unwrap(), "--endpoint", &endpoint], &[]).await;
    assert_eq!(out.status.code(), Some(69), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("cannot reach the DraftStore API"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A wrong token is exit 1 saying the token was refused, and never shows the token; the right
/// one, from the variable or a file, uploads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_exit_1_and_the_token_is_never_printed() {
    let keys = format!("acme {}", hash("acme-key"));
    let server = crate::harness::start_local(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", &keys),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = random_file(dir.path(), "t.bin", 100);
    let path = path.to_str().unwrap();
    let endpoint = server.url("");
    let wrong = "wrong-key-d0n7-sh0w";
    let out = upload(
        &[path],
        &[
            ("DRAFTSTORE_ENDPOINT", &endpoint),
            ("DRAFTSTORE_TOKEN", wrong),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("401") && err.contains("token"), "{err}");
    assert!(!err.contains(wrong) && !text(&out.stdout).contains(wrong));
    // No token at all: the same refusal.
    let out = upload(&[path], &[("DRAFTSTORE_ENDPOINT", &endpoint)]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // The right one, from the variable and from a file (which wins over the variable).
    let out = upload(
        &[path, "--confirm"],
        &[
            ("DRAFTSTORE_ENDPOINT", &endpoint),
            ("DRAFTSTORE_TOKEN", "acme-key"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "acme-key\n").unwrap();
    let out = upload(
        &[
            path,
            "--token-file",
            token_file.to_str().unwrap(),
            "--confirm",
            "--overwrite",
        ],
        &[
            ("DRAFTSTORE_ENDPOINT", &endpoint),
            ("DRAFTSTORE_TOKEN", wrong),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("acme-key") && !text(&out.stderr).contains("acme-key"));
}

#[tokio::test]
async fn usage_errors_are_exit_2_and_bad_configuration_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = random_file(dir.path(), "f", 10);
    let path = path.to_str().unwrap();
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap().to_owned();
    for (args, code, says) in [
        (vec![], 2, "FILE"),
        (vec![path, "--no-such-flag"], 2, "--no-such-flag"),
        (vec![path, "--parallel", "0"], 2, "--parallel"),
        (vec![path, "--part-size", "1024"], 2, "--part-size"),
        (vec![missing], 2, "missing"),
        (vec![dir.path().to_str().unwrap()], 2, "not a regular file"),
        (vec![path, path], 2, "unexpected argument"),
        (vec![path, "--parallel", "65"], 2, "--parallel"),
        (vec![path, "--retries", "101"], 2, "--retries"),
        (
            vec![path, "--multipart-threshold", "1"],
            2,
            "--multipart-threshold",
        ),
        (vec![path, "--name"], 2, "--name"),
        (vec![path, "--overwrite"], 2, "--confirm"),
        (vec![path, "--token-file", &empty], 64, "holds no token"),
        (
            vec![path, "--endpoint", "ftp://127.0.0.1"],
            64,
            "--endpoint",
        ),
        (vec![path, "--token-file", missing], 64, "--token-file"),
    ] {
        let out = upload(&args, &[]).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    for env in [
        ("DRAFTSTORE_ENDPOINT", "not a url"),
        ("DRAFTSTORE_TOKEN", "a\u{1}b"),
        ("DRAFTSTORE_TOKEN", ""),
    ] {
        let out = upload(&[path], &[env]).await;
        assert_eq!(
            out.status.code(),
            Some(64),
            "{env:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains(env.0), "{env:?}");
    }
    // --help documents the exit statuses and the size rule.
    let out = upload(&["--help"], &[]).await;
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in [
        "0 done",
        "1 the upload failed",
        "69 the API could not be reached",
        "2 usage",
        "64 bad configuration",
        "--multipart-threshold",
        "DRAFTSTORE_TOKEN",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}

/// The client's variables are in README's table, and `serve` reads none of them.
#[test]
fn client_variables_are_documented_and_only_the_client_reads_them() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    for variable in draftstore_gateway::cmd::upload::VARIABLES {
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with("| `") && l.contains(variable)),
            "{variable} is in README's table"
        );
        assert!(!draftstore_gateway::config::VARIABLES.contains(variable));
    }
}
