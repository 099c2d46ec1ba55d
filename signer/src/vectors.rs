//! The AWS SigV4 test suites (aws-c-auth's per-case folders with header and presigned variants,
//! botocore's `.creq/.sts/.authz`), run through the public API. Each case checks every stage so a
//! failure names it: canonical request, string to sign, signature.
//! Data: `signer/tests/vectors/` (copied, Apache-2.0). Service `service`, empty-body hash.

use crate::{
    Addressing, Credentials, Endpoint, Expiry, Method, Payload, Request, Signer, Timestamp,
};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// A raw request from a test-suite file.
struct RawRequest {
    method: Method,
    host: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: String,
}

fn parse_request(text: &str) -> RawRequest {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let start = lines.next().unwrap();
    let mut parts = start.splitn(2, ' ');
    let method = Method::parse(parts.next().unwrap()).unwrap();
    let target = parts.next().unwrap().rsplit_once(' ').unwrap().0;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let d = |s: &str| crate::encode::decode(s).unwrap().into_owned();
            (d(k), d(v))
        })
        .collect();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push('\n');
            last.1.push_str(line);
        } else {
            let (n, v) = line.split_once(':').unwrap();
            headers.push((n.to_string(), v.to_string()));
        }
    }
    let host_at = headers
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case("host"))
        .unwrap();
    let host = headers.remove(host_at).1;
    RawRequest {
        method,
        host,
        path: path.to_string(),
        query,
        headers,
        body: body.to_string(),
    }
}

/// RFC 3986 dot-segment removal plus slash collapsing: what generic (non-S3) services do. Only
/// cases that say `normalize` use it; the S3 signer itself never normalizes.
fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut p = format!("/{}", out.join("/"));
    if path.ends_with('/') && p != "/" {
        p.push('/');
    }
    p
}

struct Case {
    name: String,
    raw: RawRequest,
    token: Option<String>,
    region: String,
    service: String,
    now: Timestamp,
    normalize: bool,
    sign_body: bool,
    expires: u64,
    /// aws-c-auth sends `x-amz-content-sha256` when it signs the body; botocore never does.
    content_sha256_header: bool,
}

impl Case {
    fn signer(&self) -> Signer {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, self.token.clone()).unwrap();
        Signer::new(creds, &self.region, &self.service)
            .unwrap()
            .with_content_sha256_header(self.sign_body && self.content_sha256_header)
    }

    /// Runs `f` with the case as a public-API request.
    fn with_request<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
        let endpoint = Endpoint::parse(&format!("https://{}", self.raw.host)).unwrap();
        let path = if self.normalize {
            normalize_path(&self.raw.path)
        } else {
            self.raw.path.clone()
        };
        let key = path.strip_prefix('/').unwrap();
        let headers: Vec<(&str, &str)> = self
            .raw
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let query: Vec<(&str, &str)> = self
            .raw
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body_hash = hex::encode(Sha256::digest(self.raw.body.as_bytes()));
        let payload = if self.sign_body {
            body_hash.as_str()
        } else {
            crate::EMPTY_SHA256
        };
        let mut req = Request::new(self.raw.method, &endpoint, Addressing::Path, "", key);
        req.headers = &headers;
        req.query = &query;
        req.payload = Payload::Sha256Hex(payload);
        f(&req)
    }
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

fn aws_c_auth_cases() -> Vec<(PathBuf, Case)> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root().join("aws-c-auth-v4"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let ctx: serde_json::Value = serde_json::from_str(&read(&dir, "context.json")).unwrap();
            let ts = ctx["timestamp"].as_str().unwrap().replace(['-', ':'], "");
            let case = Case {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                raw: parse_request(&read(&dir, "request.txt")),
                token: ctx["credentials"]["token"].as_str().map(String::from),
                region: ctx["region"].as_str().unwrap().into(),
                service: ctx["service"].as_str().unwrap().into(),
                now: Timestamp::parse_amz(&ts).unwrap(),
                normalize: ctx["normalize"].as_bool().unwrap(),
                sign_body: ctx["sign_body"].as_bool().unwrap(),
                expires: ctx["expiration_in_seconds"].as_u64().unwrap(),
                content_sha256_header: true,
            };
            assert_eq!(ctx["credentials"]["secret_access_key"], SECRET);
            (dir, case)
        })
        .collect()
}

#[test]
fn aws_c_auth_presigned_variants() {
    let mut checked = 0;
    for (dir, case) in aws_c_auth_cases() {
        // The suite's README: form bodies and a token added after signing are not presignable.
        if case.name.starts_with("post-x-www-form-urlencoded")
            || case.name == "post-sts-header-after"
        {
            continue;
        }
        let got = case.with_request(|req| {
            case.signer()
                .presign_explained(req, Expiry::new(case.expires).unwrap(), case.now)
                .unwrap()
        });
        let name = &case.name;
        assert_eq!(
            got.canonical_request,
            read(&dir, "query-canonical-request.txt"),
            "{name}: canonical request"
        );
        assert_eq!(
            got.string_to_sign,
            read(&dir, "query-string-to-sign.txt"),
            "{name}: string to sign"
        );
        let sig = read(&dir, "query-signature.txt");
        assert!(
            got.url
                .ends_with(&format!("&X-Amz-Signature={}", sig.trim())),
            "{name}: signature"
        );
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} presigned cases ran");
}

#[test]
fn aws_c_auth_header_variants() {
    let mut checked = 0;
    for (dir, case) in aws_c_auth_cases() {
        // S3 signs the session token; this case adds it after signing (the suite's README).
        if case.name == "post-sts-header-after" {
            continue;
        }
        let (signed, got) =
            case.with_request(|req| case.signer().sign_headers_explained(req, case.now).unwrap());
        let name = &case.name;
        assert_eq!(
            got.canonical_request,
            read(&dir, "header-canonical-request.txt"),
            "{name}: canonical request"
        );
        assert_eq!(
            got.string_to_sign,
            read(&dir, "header-string-to-sign.txt"),
            "{name}: string to sign"
        );
        let sig = read(&dir, "header-signature.txt");
        let auth = &signed
            .headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap()
            .1;
        assert!(
            auth.ends_with(&format!("Signature={}", sig.trim())),
            "{name}: signature"
        );
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} header cases ran");
}

fn botocore_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            botocore_dirs(&path, out);
        } else if path.extension().is_some_and(|e| e == "req") {
            out.push(path);
        }
    }
}

#[test]
fn botocore_header_suite() {
    let mut reqs = Vec::new();
    botocore_dirs(&root().join("botocore-aws4_testsuite"), &mut reqs);
    reqs.sort();
    for req_path in &reqs {
        let name = req_path.file_stem().unwrap().to_string_lossy().into_owned();
        let dir = req_path.parent().unwrap();
        let mut raw = parse_request(&fs::read_to_string(req_path).unwrap());
        let take = |raw: &mut RawRequest, h: &str| {
            let at = raw
                .headers
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(h))?;
            Some(raw.headers.remove(at).1)
        };
        let date = take(&mut raw, "x-amz-date").unwrap();
        // A token the signer adds shows in the signed request (.sreq), not in .req; it is signed
        // only where the canonical request says so (post-sts-header-after adds it later).
        let signed_token = read(dir, &format!("{name}.creq")).contains("x-amz-security-token");
        let token = take(&mut raw, "x-amz-security-token").or_else(|| {
            let sreq = parse_request(&read(dir, &format!("{name}.sreq")));
            let found = sreq
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"));
            found.filter(|_| signed_token).map(|(_, v)| v.clone())
        });
        let case = Case {
            normalize: dir.to_string_lossy().contains("normalize-path"),
            sign_body: true,
            raw,
            token,
            region: "us-east-1".into(),
            service: "service".into(),
            now: Timestamp::parse_amz(&date).unwrap(),
            expires: 3600,
            content_sha256_header: false,
            name: name.clone(),
        };
        let (signed, got) =
            case.with_request(|req| case.signer().sign_headers_explained(req, case.now).unwrap());
        assert_eq!(
            got.canonical_request,
            read(dir, &format!("{name}.creq")),
            "{name}: canonical request"
        );
        assert_eq!(
            got.string_to_sign,
            read(dir, &format!("{name}.sts")),
            "{name}: string to sign"
        );
        let auth = &signed
            .headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap()
            .1;
        assert_eq!(
            auth.as_str(),
            read(dir, &format!("{name}.authz")).trim(),
            "{name}: authorization"
        );
    }
    assert!(reqs.len() >= 28, "only {} botocore cases", reqs.len());
}

#[test]
fn aws_documentation_example() {
    let doc: serde_json::Value =
        serde_json::from_str(&read(&root(), "aws_docs_example.json")).unwrap();
    let input = &doc["inputs"];
    let creds = Credentials::new(
        input["access_key"].as_str().unwrap(),
        input["secret_key"].as_str().unwrap(),
        None,
    )
    .unwrap();
    let signer = Signer::new(creds, input["region"].as_str().unwrap(), "s3").unwrap();
    let endpoint = Endpoint::parse("https://s3.amazonaws.com").unwrap();
    let now = Timestamp::parse_amz(input["timestamp"].as_str().unwrap()).unwrap();
    let expires = Expiry::new(input["expires"].as_u64().unwrap()).unwrap();
    for (style, addressing) in [
        ("virtual", Addressing::VirtualHost),
        ("path", Addressing::Path),
    ] {
        let want = &doc["botocore"][style];
        let req = Request::new(
            Method::Get,
            &endpoint,
            addressing,
            "examplebucket",
            "test.txt",
        );
        let got = signer.presign_explained(&req, expires, now).unwrap();
        assert_eq!(
            got.canonical_request,
            want["canonical_request"].as_str().unwrap(),
            "{style}"
        );
        assert_eq!(
            got.string_to_sign,
            want["string_to_sign"].as_str().unwrap(),
            "{style}"
        );
        assert_eq!(got.url, want["url"].as_str().unwrap(), "{style}");
    }
    assert!(doc["botocore"]["virtual"]["url"]
        .as_str()
        .unwrap()
        .ends_with(doc["documented_signature"].as_str().unwrap()));
}
