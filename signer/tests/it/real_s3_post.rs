//! Presigned POST against a real S3 server (SeaweedFS): a form from `Signer::presign_post`,
//! sent as multipart/form-data, is stored; one over the size range, of another content type or
//! to another key is refused, and nothing is stored. `PostVerifier` gives the same verdicts.

use super::real_s3::{now, server, unique_bucket, Server};
use draftstore_signer::{Expiry, Method, PostForm, PostPolicy, PostVerifier};
use reqwest::blocking::multipart::{Form, Part};

const KEY: &str = "tenant/01J/photo (1).png";

fn signed(s3: &Server, bucket: &str) -> PostForm {
    let policy = PostPolicy {
        bucket,
        key: KEY,
        content_type: Some("image/png"),
        length_range: Some((1, 1000)),
        metadata: &[("owner", "alice")],
    };
    s3.signer
        .presign_post(&policy, Expiry::new(300).unwrap(), now())
        .unwrap()
}

/// POSTs `fields` (with `key`/`Content-Type` replaced when given) and `body` as the file;
/// returns the status and the response body. Also returns our own verifier's verdict.
fn post(
    s3: &Server,
    bucket: &str,
    form: &PostForm,
    replace: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String, Result<(), String>) {
    let fields: Vec<(String, String)> = form
        .fields()
        .map(|(n, v)| {
            let v = replace
                .iter()
                .find(|(r, _)| *r == n)
                .map_or(v, |(_, nv)| *nv);
            (n.to_owned(), v.to_owned())
        })
        .collect();
    let mut multipart = Form::new();
    for (n, v) in &fields {
        multipart = multipart.text(n.clone(), v.clone());
    }
    let size = body.len() as u64;
    multipart = multipart.part("file", Part::bytes(body).file_name("photo.png"));
    let base = std::env::var("DRAFTSTORE_TEST_S3_ENDPOINT").unwrap();
    let url = format!("{}/{bucket}", base.trim_end_matches('/'));
    let resp = s3.client.post(url).multipart(multipart).send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();

    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let secret = std::env::var("DRAFTSTORE_TEST_S3_SECRET_KEY").unwrap();
    let ours = PostVerifier::new(s3.signer.region(), "s3", 900)
        .unwrap()
        .verify(bucket, &pairs, now(), |_| Some(secret.as_str()))
        .and_then(|v| v.check_size(size))
        .map_err(|e| e.s3_code().to_owned());
    (status, text, ours)
}

/// (what, fields replaced, file size, expected S3 code).
type Refusal<'a> = (&'a str, &'a [(&'a str, &'a str)], usize, &'a str);

#[test]
fn presigned_post_uploads_within_the_policy_and_is_refused_outside_it() {
    let Some(s3) = server() else { return };
    let bucket = unique_bucket("signer-post");
    assert_eq!(s3.call(Method::Put, &bucket, ""), 200);
    let form = signed(&s3, &bucket);

    let refusals: [Refusal; 4] = [
        ("over the size range", &[], 1001, "EntityTooLarge"),
        ("empty file under the minimum", &[], 0, "EntityTooSmall"),
        (
            "another content type",
            &[("Content-Type", "text/html")],
            10,
            "AccessDenied",
        ),
        (
            "another key",
            &[("key", "tenant/01J/other.png")],
            10,
            "AccessDenied",
        ),
    ];
    for (what, replace, size, code) in refusals {
        let (status, text, ours) = post(&s3, &bucket, &form, replace, vec![7; size]);
        assert!(
            (400..500).contains(&status),
            "{what}: SeaweedFS answered {status}: {text}"
        );
        assert_eq!(ours, Err(code.to_owned()), "{what}: our verifier");
        assert_eq!(s3.call(Method::Head, &bucket, KEY), 404, "{what}: stored");
        assert_eq!(
            s3.call(Method::Head, &bucket, "tenant/01J/other.png"),
            404,
            "{what}: stored under the other key"
        );
    }

    let bytes: Vec<u8> = (0..1000_u32).map(|i| (i * 7 % 251) as u8).collect();
    let (status, text, ours) = post(&s3, &bucket, &form, &[], bytes.clone());
    assert!(
        (200..300).contains(&status),
        "allowed upload: {status}: {text}"
    );
    assert_eq!(ours, Ok(()));
    let mut req = draftstore_signer::Request::new(
        Method::Get,
        &s3.endpoint,
        draftstore_signer::Addressing::Path,
        &bucket,
        KEY,
    );
    req.headers = &[];
    let url = s3
        .signer
        .presign(&req, Expiry::new(60).unwrap(), now())
        .unwrap();
    let got = s3.client.get(url).send().unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(
        got.headers().get("content-type").unwrap().to_str().unwrap(),
        "image/png"
    );
    assert_eq!(got.bytes().unwrap().as_ref(), bytes.as_slice());

    assert_eq!(s3.call(Method::Delete, &bucket, KEY), 204);
    assert_eq!(s3.call(Method::Delete, &bucket, ""), 204);
}
