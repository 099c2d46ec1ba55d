//! `gateway presign`: the URL alone on stdout; bad input is one line on stderr and exit 64.

use std::process::{Command, Output};

const DOC_URL: &str = "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

fn gateway(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const CREDS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
];

fn doc_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "presign",
        "--endpoint",
        "https://s3.amazonaws.com",
        "--bucket",
        "examplebucket",
        "--key",
        "test.txt",
        "--expires",
        "86400",
        "--time",
        "20130524T000000Z",
        "--virtual-host",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn prints_the_documented_url_and_nothing_else() {
    let out = gateway(&doc_args(&[]), &CREDS);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{DOC_URL}\n")
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn equals_form_lets_values_start_with_a_dash() {
    let args = [
        "presign",
        "--method=PUT",
        "--endpoint=http://127.0.0.1:9000",
        "--bucket=b",
        "--key=-dash key",
        "--time=20261127T120000Z",
        "--header=content-type: image/jpeg",
        "--query=x-id=-1",
    ];
    let out = gateway(&args, &CREDS);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:9000/b/-dash%20key?"),
        "{url}"
    );
    assert!(
        url.contains("X-Amz-SignedHeaders=content-type%3Bhost"),
        "{url}"
    );
    assert!(url.contains("&x-id=-1"), "{url}");
    // The space-separated form gives the same URL.
    let spaced = gateway(
        &[
            "presign",
            "--method",
            "PUT",
            "--endpoint",
            "http://127.0.0.1:9000",
            "--bucket",
            "b",
            "--key",
            "-dash key",
            "--time",
            "20261127T120000Z",
            "--header",
            "content-type: image/jpeg",
            "--query",
            "x-id=-1",
        ],
        &CREDS,
    );
    assert_eq!(String::from_utf8(spaced.stdout).unwrap(), url);
}

#[test]
fn session_token_and_region_come_from_the_environment() {
    let mut env = CREDS.to_vec();
    env.push(("AWS_SESSION_TOKEN", "tok"));
    env.push(("AWS_REGION", "eu-west-3"));
    let args = [
        "presign",
        "--endpoint",
        "https://s3.amazonaws.com",
        "--bucket",
        "b",
        "--key",
        "k",
        "--time",
        "20261127T120000Z",
    ];
    let url = String::from_utf8(gateway(&args, &env).stdout).unwrap();
    assert!(url.contains("%2Feu-west-3%2Fs3%2F"), "{url}");
    assert!(url.contains("X-Amz-Security-Token=tok&"), "{url}");
}

#[test]
fn bad_input_is_one_line_and_exit_64() {
    type Case<'a> = (Vec<&'a str>, &'a [(&'a str, &'a str)], &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            doc_args(&[]),
            &[("AWS_EC2_METADATA_DISABLED", "true")],
            "AWS_ACCESS_KEY_ID",
        ),
        (doc_args(&["--expires", "0"]), &CREDS, "--expires"),
        (doc_args(&["--expires", "604801"]), &CREDS, "--expires"),
        (doc_args(&["--time", "yesterday"]), &CREDS, "--time"),
        (doc_args(&["--method", "PATCH"]), &CREDS, "--method"),
        (doc_args(&["--header", "no-colon"]), &CREDS, "--header"),
        (doc_args(&["--header", "host: evil"]), &CREDS, "host"),
        (
            doc_args(&["--query", "X-Amz-Signature=0"]),
            &CREDS,
            "X-Amz-Signature",
        ),
        (
            doc_args(&["--endpoint", "s3.amazonaws.com"]),
            &CREDS,
            "--endpoint",
        ),
        (doc_args(&["--bucket", "a/b"]), &CREDS, "bucket"),
        (vec!["presign", "--bucket", "b"], &CREDS, "--endpoint"),
        (vec!["presign", "--nope"], &CREDS, "--nope"),
        (vec!["frobnicate"], &CREDS, "frobnicate"),
    ];
    for (args, env, mention) in cases {
        let out = gateway(&args, env);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(mention), "{args:?}: {err}");
        assert!(!err.contains("wJalrXUtnFEMI"), "secret leaked: {err}");
    }
}

#[test]
fn help_exits_zero() {
    let out = gateway(&["presign", "--help"], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("--virtual-host"));
}
