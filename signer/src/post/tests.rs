//! Presigned POST against published vectors: the AWS documentation's example and forms made by
//! botocore's `generate_presigned_post` (signer/tests/vectors/post/), plus property tests.

use super::*;
use crate::{Credentials, Signer};
use proptest::prelude::*;

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// "Example: Browser-Based Upload using HTTP POST (Using AWS Signature Version 4)"
/// (docs.aws.amazon.com/AmazonS3/latest/API/sigv4-post-example.html): the policy with CRLF
/// line ends, base64, and its signature.
const AWS_POLICY_B64: &str = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
const AWS_SIGNATURE: &str = "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e";

fn at(amz: &str) -> Timestamp {
    Timestamp::parse_amz(amz).unwrap()
}

fn aws_form<'a>(key: &'a str, content_type: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("key", key),
        ("acl", "public-read"),
        (
            "success_action_redirect",
            "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
        ),
        ("Content-Type", content_type),
        ("x-amz-meta-uuid", "14365123651274"),
        ("x-amz-server-side-encryption", "AES256"),
        (
            "X-Amz-Credential",
            "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
        ),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Date", "20151229T000000Z"),
        ("x-amz-meta-tag", ""),
        ("Policy", AWS_POLICY_B64),
        ("X-Amz-Signature", AWS_SIGNATURE),
    ]
}

fn verifier() -> PostVerifier {
    PostVerifier::new("us-east-1", "s3", 900).unwrap()
}

fn secret(ak: &str) -> Option<&'static str> {
    (ak == AK).then_some(SK)
}

#[test]
fn the_aws_documentation_example_signs_parses_and_verifies() {
    let signer = Signer::new(Credentials::new(AK, SK, None).unwrap(), "us-east-1", "s3").unwrap();
    let key = signer.key_for("20151229");
    assert_eq!(
        key.sign_bytes(AWS_POLICY_B64.as_bytes()).as_str(),
        AWS_SIGNATURE
    );

    let policy = verify::decode_policy(AWS_POLICY_B64).unwrap();
    assert_eq!(policy.expiration, at("20151230T120000Z"));
    assert_eq!(policy.conditions.len(), 11);
    assert!(policy.conditions.contains(&Condition::StartsWith {
        field: "key".into(),
        prefix: "user/user1/".into()
    }));

    let form = aws_form("user/user1/photo.jpg", "image/jpeg");
    let ok = verifier()
        .verify("sigv4examplebucket", &form, at("20151229T120000Z"), secret)
        .unwrap();
    assert_eq!(ok.key, "user/user1/photo.jpg");
    assert_eq!(ok.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(ok.access_key, AK);
    assert_eq!(ok.length_range, (0, u64::MAX));

    let v = verifier();
    let refused = |bucket: &str, form: &[(&str, &str)], now: &str| {
        v.verify(bucket, form, at(now), secret).unwrap_err()
    };
    let now = "20151229T120000Z";
    assert_eq!(
        refused("sigv4examplebucket", &form, "20151230T120001Z"),
        PostError::Expired
    );
    assert_eq!(
        refused("otherbucket", &form, now),
        PostError::ConditionFailed("bucket".into())
    );
    assert_eq!(
        refused(
            "sigv4examplebucket",
            &aws_form("user/user2/a.jpg", "image/jpeg"),
            now
        ),
        PostError::ConditionFailed("key".into())
    );
    assert_eq!(
        refused(
            "sigv4examplebucket",
            &aws_form("user/user1/a", "text/html"),
            now
        ),
        PostError::ConditionFailed("Content-Type".into())
    );
    let mut extra = form.clone();
    extra.push(("x-amz-meta-other", "1"));
    assert_eq!(
        refused("sigv4examplebucket", &extra, now),
        PostError::ExtraField("x-amz-meta-other".into())
    );
    extra.pop();
    extra.push(("x-ignore-anything", "1"));
    extra.push(("file", "ignored"));
    assert!(v
        .verify("sigv4examplebucket", &extra, at(now), secret)
        .is_ok());
}

#[derive(serde::Deserialize)]
struct Fixture {
    now: String,
    access_key: String,
    secret_key: String,
    region: String,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    bucket: String,
    key: String,
    content_type: Option<String>,
    length: Option<(u64, u64)>,
    metadata: Vec<(String, String)>,
    token: Option<String>,
    expires: u64,
    fields: Vec<(String, String)>,
}

#[test]
fn forms_equal_botocore_generate_presigned_post_field_for_field() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("../../tests/vectors/post/botocore.json")).unwrap();
    let now = at(&fixture.now);
    assert_eq!(fixture.cases.len(), 3);
    for case in &fixture.cases {
        let creds = Credentials::new(
            &*fixture.access_key,
            &*fixture.secret_key,
            case.token.clone(),
        )
        .unwrap();
        let signer = Signer::new(creds, &fixture.region, "s3").unwrap();
        let metadata: Vec<(&str, &str)> = case
            .metadata
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let policy = PostPolicy {
            bucket: &case.bucket,
            key: &case.key,
            content_type: case.content_type.as_deref(),
            length_range: case.length,
            metadata: &metadata,
        };
        let form = signer
            .presign_post(&policy, Expiry::new(case.expires).unwrap(), now)
            .unwrap();
        assert_eq!(
            form.clone().into_fields(),
            case.fields,
            "case {:?}",
            case.name
        );
        assert!(form
            .fields()
            .eq(case.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))));
        // One buffer, allocated once at its exact size.
        assert_eq!(
            (form.fields.text.len(), form.fields.spans.len()),
            (form.fields.text.capacity(), form.fields.spans.capacity()),
            "case {:?}",
            case.name
        );

        // And the verifier accepts what botocore made.
        let fields: Vec<(&str, &str)> = case
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let ok = PostVerifier::new(&fixture.region, "s3", 0)
            .unwrap()
            .verify(&case.bucket, &fields, now, |ak| {
                (ak == fixture.access_key).then_some(&fixture.secret_key)
            })
            .unwrap();
        assert_eq!(ok.key, case.key);
        assert_eq!(ok.length_range, case.length.unwrap_or((0, u64::MAX)));
        assert_eq!(ok.metadata, case.metadata, "case {:?}", case.name);
    }
}

fn signed_form(token: Option<String>) -> PostForm {
    let signer = Signer::new(Credentials::new(AK, SK, token).unwrap(), "us-east-1", "s3").unwrap();
    let policy = PostPolicy {
        bucket: "drafts",
        key: "t/abc/file.bin",
        content_type: Some("image/png"),
        length_range: Some((10, 1000)),
        metadata: &[("owner", "alice")],
    };
    signer
        .presign_post(&policy, Expiry::new(600).unwrap(), at("20261130T120000Z"))
        .unwrap()
}

#[test]
fn size_outside_the_range_is_refused_with_s3_codes() {
    let form = signed_form(None);
    let fields: Vec<(&str, &str)> = form.fields().collect();
    let ok = verifier()
        .verify("drafts", &fields, at("20261130T120500Z"), secret)
        .unwrap();
    assert_eq!(ok.length_range, (10, 1000));
    assert_eq!(ok.metadata, vec![("owner".to_owned(), "alice".to_owned())]);
    assert!(ok.check_size(10).is_ok() && ok.check_size(1000).is_ok());
    let small = ok.check_size(9).unwrap_err();
    assert_eq!(
        (small.s3_code(), small.http_status()),
        ("EntityTooSmall", 400)
    );
    let large = ok.check_size(1001).unwrap_err();
    assert_eq!(
        (large.s3_code(), large.http_status()),
        ("EntityTooLarge", 400)
    );
    assert_eq!(ok.expires_at, at("20261130T121000Z"));
    let late = verifier()
        .verify("drafts", &fields, at("20261130T121001Z"), secret)
        .unwrap_err();
    assert_eq!((late.s3_code(), late.http_status()), ("AccessDenied", 403));
    assert!(late.to_string().starts_with("Invalid according to Policy"));
}

#[test]
fn bad_policies_are_refused_by_the_signer() {
    let signer = Signer::new(Credentials::new(AK, SK, None).unwrap(), "us-east-1", "s3").unwrap();
    let now = at("20261130T120000Z");
    let exp = Expiry::new(60).unwrap();
    let mut p = PostPolicy::new("b", "k");
    p.length_range = Some((5, 4));
    assert_eq!(
        signer.presign_post(&p, exp, now),
        Err(Error::InvalidLengthRange { min: 5, max: 4 })
    );
    let p = PostPolicy {
        metadata: &[("Bad Name", "v")],
        ..PostPolicy::new("b", "k")
    };
    assert!(matches!(
        signer.presign_post(&p, exp, now),
        Err(Error::InvalidHeaderName(_))
    ));
    let p = PostPolicy {
        content_type: Some("a\nb"),
        ..PostPolicy::new("b", "k")
    };
    assert!(matches!(
        signer.presign_post(&p, exp, now),
        Err(Error::InvalidHeaderValue(_))
    ));
    assert_eq!(
        signer.presign_post(&PostPolicy::new("", "k"), exp, now),
        Err(Error::InvalidBucket)
    );
}

proptest! {
    /// Changing, dropping or adding any one field is refused; the session token is enforced.
    #[test]
    fn every_field_change_is_refused(which in 0_usize..16, junk in "[a-zA-Z0-9/+=._-]{0,12}", token in any::<bool>()) {
        let form = signed_form(token.then(|| "session-token".to_owned()));
        let now = at("20261130T120500Z");
        let mut fields: Vec<(String, String)> = form.into_fields();
        let n = fields.len();
        match which {
            i if i < n => {
                let slot = &mut fields[i].1;
                let changed = format!("{slot}{}", if junk.is_empty() { "x" } else { &junk });
                *slot = changed;
            }
            i if i < 2 * n.min(8) => { fields.remove(i % n); }
            _ => fields.push((format!("x-amz-meta-{}", junk.to_lowercase()), "v".into())),
        }
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        prop_assert!(verifier().verify("drafts", &fields, now, secret).is_err());
    }

    #[test]
    fn verify_never_panics_on_arbitrary_forms(
        fields in proptest::collection::vec(("[a-zA-Z-]{0,20}", any::<String>()), 0..12),
        policy in any::<String>(),
    ) {
        let mut fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        fields.push(("policy", &policy));
        let _ = verifier().verify("drafts", &fields, at("20261130T120500Z"), secret);
    }
}

#[test]
fn debug_hides_the_session_token_and_shows_the_rest() {
    let form = signed_form(Some("very-secret-session-token".to_owned()));
    assert_eq!(
        form.field("x-amz-security-token"),
        Some("very-secret-session-token")
    );
    let shown = format!("{form:?}");
    assert!(!shown.contains("very-secret-session-token"), "{shown}");
    assert!(
        shown.contains("(\"x-amz-security-token\", \"<redacted>\")"),
        "{shown}"
    );
    assert!(shown.contains("(\"key\", \"t/abc/file.bin\")"), "{shown}");
    assert!(
        shown.contains("(\"x-amz-meta-owner\", \"alice\")"),
        "{shown}"
    );
    let names: Vec<&str> = form.fields().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "x-amz-meta-owner",
            "key",
            "x-amz-algorithm",
            "x-amz-credential",
            "x-amz-date",
            "x-amz-security-token",
            "policy",
            "x-amz-signature"
        ]
    );
}
