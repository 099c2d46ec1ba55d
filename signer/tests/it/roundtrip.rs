//! `verify(presign(x))` accepts every generated x, and rejects signature mutations, changed
//! signed headers and any time past expiry; plus one test per verification failure.

use draftstore_signer::{
    Addressing, Credentials, Endpoint, Expiry, Method, ReceivedRequest, Request, Signer, Timestamp,
    Verified, Verifier, VerifyError,
};
use proptest::prelude::*;

const AK: &str = "AKIDEXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SKEW: u32 = 60;

struct Presigned {
    method: &'static str,
    host: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

fn presign(
    key: &str,
    headers: &[(&str, &str)],
    expires: u64,
    now: i64,
    token: Option<&str>,
) -> Presigned {
    let creds = Credentials::new(AK, SK, token.map(String::from)).unwrap();
    let signer = Signer::new(creds, "us-east-1", "s3").unwrap();
    let endpoint = Endpoint::parse("http://127.0.0.1:9000").unwrap();
    let mut req = Request::new(Method::Put, &endpoint, Addressing::Path, "draft", key);
    req.headers = headers;
    let url = signer
        .presign(
            &req,
            Expiry::new(expires).unwrap(),
            Timestamp::from_unix(now).unwrap(),
        )
        .unwrap();
    let rest = url.strip_prefix("http://").unwrap();
    let (host, target) = rest.split_at(rest.find('/').unwrap());
    let (path, query) = target.split_once('?').unwrap();
    Presigned {
        method: "PUT",
        host: host.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn verify(p: &Presigned, now: i64) -> Result<Verified, VerifyError> {
    let mut headers: Vec<(&str, &str)> = vec![("Host", p.host.as_str())];
    headers.extend(p.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let req = ReceivedRequest {
        method: p.method,
        path: &p.path,
        query: &p.query,
        headers: &headers,
    };
    Verifier::new("us-east-1", "s3", SKEW).unwrap().verify(
        &req,
        Timestamp::from_unix(now).unwrap(),
        |ak| (ak == AK).then_some(SK),
    )
}

fn key_strategy() -> impl Strategy<Value = String> {
    "(\\PC|[ /+%?#&=~]){1,200}"
}

fn headers_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::btree_map(
        prop_oneof![
            Just("content-type"),
            Just("content-length"),
            Just("x-amz-meta-owner"),
            Just("if-none-match")
        ],
        "[!-~]([ -~]{0,20}[!-~])?",
        0..3,
    )
    .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

const NOW: i64 = 1_795_780_800; // 2026-11-27T12:00:00Z

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verify_accepts_every_presigned_request(
        key in key_strategy(), headers in headers_strategy(), expires in 1_u64..=604_800,
        token in proptest::option::of("[A-Za-z0-9/+=]{8,40}"), elapsed in 0_u64..=604_800,
    ) {
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let p = presign(&key, &h, expires, NOW, token.as_deref());
        let at = NOW + i64::try_from(elapsed.min(expires)).unwrap();
        let ok = verify(&p, at).unwrap();
        prop_assert_eq!(ok.access_key, AK);
        prop_assert_eq!(ok.expires_at.unix(), NOW + i64::try_from(expires).unwrap());
        prop_assert!(ok.signed_headers.contains(&"host".to_string()));
    }

    #[test]
    fn verify_rejects_every_signature_mutation(key in key_strategy(), pos in 0_usize..64, delta in 1_u8..16) {
        let mut p = presign(&key, &[], 3600, NOW, None);
        let at = p.query.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len() + pos;
        let old = p.query.as_bytes()[at];
        let nibble = (char::from(old).to_digit(16).unwrap() as u8 + delta) % 16;
        let new = char::from_digit(u32::from(nibble), 16).unwrap();
        p.query.replace_range(at..=at, &new.to_string());
        prop_assert_eq!(verify(&p, NOW), Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn verify_rejects_a_changed_signed_header(key in key_strategy(), value in "[!-~]{1,20}", extra in "[!-~]{1,5}") {
        let mut p = presign(&key, &[("content-type", &value)], 3600, NOW, None);
        p.headers[0].1.push_str(&extra);
        prop_assert_eq!(verify(&p, NOW), Err(VerifyError::SignatureMismatch));
    }

    /// Expiry is exact: the skew allowance does not stretch it, even by one second.
    #[test]
    fn verify_rejects_any_time_past_expiry(expires in 1_u64..=604_800, late in 1_i64..10_000_000) {
        let p = presign("k", &[], expires, NOW, None);
        let expires_at = NOW + i64::try_from(expires).unwrap();
        prop_assert!(verify(&p, expires_at).is_ok());
        prop_assert_eq!(verify(&p, expires_at + late), Err(VerifyError::Expired));
    }

    /// The allowance is for a signer whose clock runs ahead: a request dated up to `SKEW`
    /// seconds in the future is valid, one second more is not yet valid.
    #[test]
    fn the_skew_allowance_applies_only_to_a_date_in_the_future(ahead in 0_i64..=i64::from(SKEW), expires in 1_u64..=604_800) {
        let p = presign("k", &[], expires, NOW, None);
        prop_assert!(verify(&p, NOW - ahead).is_ok());
        prop_assert_eq!(verify(&p, NOW - i64::from(SKEW) - 1), Err(VerifyError::NotYetValid));
    }
}

fn query_without(p: &Presigned, name: &str) -> String {
    p.query
        .split('&')
        .filter(|kv| !kv.starts_with(&format!("{name}=")))
        .collect::<Vec<_>>()
        .join("&")
}

fn with_param(p: &Presigned, name: &str, value: &str) -> Presigned {
    let query = p
        .query
        .split('&')
        .map(|kv| {
            if kv.starts_with(&format!("{name}=")) {
                format!("{name}={value}")
            } else {
                kv.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    Presigned {
        query,
        path: p.path.clone(),
        host: p.host.clone(),
        headers: p.headers.clone(),
        method: p.method,
    }
}

#[test]
fn each_failure_has_its_own_reason() {
    let p = presign(
        "photos/cat.jpg",
        &[("content-type", "image/jpeg")],
        3600,
        NOW,
        None,
    );
    assert!(verify(&p, NOW).is_ok());
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ] {
        let q = Presigned {
            query: query_without(&p, name),
            ..with_param(&p, "", "")
        };
        assert_eq!(
            verify(&q, NOW),
            Err(VerifyError::MissingParameter(match name {
                "X-Amz-Algorithm" => "X-Amz-Algorithm",
                "X-Amz-Credential" => "X-Amz-Credential",
                "X-Amz-Date" => "X-Amz-Date",
                "X-Amz-Expires" => "X-Amz-Expires",
                "X-Amz-SignedHeaders" => "X-Amz-SignedHeaders",
                _ => "X-Amz-Signature",
            })),
            "{name}"
        );
    }
    // No auth parameter at all is an anonymous request, as S3 tells it: 403 AccessDenied.
    let anonymous = Presigned {
        query: "versionId=1".into(),
        ..with_param(&p, "", "")
    };
    assert_eq!(verify(&anonymous, NOW), Err(VerifyError::Anonymous));
    assert_eq!(
        (
            VerifyError::Anonymous.http_status(),
            VerifyError::Anonymous.s3_code()
        ),
        (403, "AccessDenied")
    );
    assert_eq!(
        VerifyError::MissingParameter("X-Amz-Date").http_status(),
        400
    );
    let cases: Vec<(Presigned, i64, VerifyError)> = vec![
        (
            with_param(&p, "X-Amz-Algorithm", "AWS4-HMAC-SHA1"),
            NOW,
            VerifyError::UnsupportedAlgorithm,
        ),
        (
            with_param(&p, "X-Amz-Credential", "AKIDEXAMPLE%2F20261127"),
            NOW,
            VerifyError::MalformedCredential,
        ),
        (
            with_param(
                &p,
                "X-Amz-Credential",
                "AKIDEXAMPLE%2F20261127%2Feu-west-1%2Fs3%2Faws4_request",
            ),
            NOW,
            VerifyError::WrongScope,
        ),
        (
            with_param(
                &p,
                "X-Amz-Credential",
                "AKIDEXAMPLE%2F20261128%2Fus-east-1%2Fs3%2Faws4_request",
            ),
            NOW,
            VerifyError::WrongScope,
        ),
        (
            with_param(
                &p,
                "X-Amz-Credential",
                "OTHER%2F20261127%2Fus-east-1%2Fs3%2Faws4_request",
            ),
            NOW,
            VerifyError::UnknownAccessKey,
        ),
        (
            with_param(&p, "X-Amz-Date", "2026-11-27"),
            NOW,
            VerifyError::MalformedDate,
        ),
        (
            with_param(&p, "X-Amz-Expires", "0"),
            NOW,
            VerifyError::InvalidExpiry,
        ),
        (
            with_param(&p, "X-Amz-Expires", "604801"),
            NOW,
            VerifyError::InvalidExpiry,
        ),
        (
            with_param(&p, "X-Amz-Expires", "+60"),
            NOW,
            VerifyError::InvalidExpiry,
        ),
        (
            with_param(&p, "X-Amz-SignedHeaders", "content-type"),
            NOW,
            VerifyError::HostNotSigned,
        ),
        (
            with_param(&p, "X-Amz-SignedHeaders", "host%3Bcontent-type"),
            NOW,
            VerifyError::MalformedSignedHeaders,
        ),
        (
            with_param(&p, "X-Amz-SignedHeaders", "content-type%3Bhost%3Bx-extra"),
            NOW,
            VerifyError::MissingSignedHeader("x-extra".into()),
        ),
        (
            with_param(&p, "X-Amz-Signature", "ABC"),
            NOW,
            VerifyError::MalformedSignature,
        ),
        (
            with_param(&p, "X-Amz-Signature", &"A".repeat(64)),
            NOW,
            VerifyError::MalformedSignature,
        ),
        (
            with_param(&p, "X-Amz-Signature", &"0".repeat(64)),
            NOW,
            VerifyError::SignatureMismatch,
        ),
        (
            with_param(&p, "X-Amz-Date", "%ZZ"),
            NOW,
            VerifyError::MalformedQuery,
        ),
        (p_dup(&p), NOW, VerifyError::MalformedQuery),
        (
            Presigned {
                path: "/draft/%E1".into(),
                ..with_param(&p, "", "")
            },
            NOW,
            VerifyError::MalformedPath,
        ),
        (
            Presigned {
                path: "/draft/photos/dog.jpg".into(),
                ..with_param(&p, "", "")
            },
            NOW,
            VerifyError::SignatureMismatch,
        ),
        (
            Presigned {
                method: "GET",
                ..with_param(&p, "", "")
            },
            NOW,
            VerifyError::SignatureMismatch,
        ),
        (
            Presigned {
                headers: vec![],
                ..with_param(&p, "", "")
            },
            NOW,
            VerifyError::MissingSignedHeader("content-type".into()),
        ),
        (with_param(&p, "", ""), NOW - 61, VerifyError::NotYetValid),
        (with_param(&p, "", ""), NOW + 3600 + 1, VerifyError::Expired),
    ];
    for (i, (req, at, want)) in cases.into_iter().enumerate() {
        assert_eq!(verify(&req, at), Err(want), "case {i}");
    }
    // A date up to the allowance in the future is accepted; expiry has no allowance.
    assert!(verify(&p, NOW - 60).is_ok());
    assert!(verify(&p, NOW + 3600).is_ok());

    // The embedded store's case: `X-Amz-Expires=1`, checked 2 s later by the same clock.
    let short = presign("a.txt", &[], 1, NOW, None);
    assert!(verify(&short, NOW + 1).is_ok());
    assert_eq!(verify(&short, NOW + 2), Err(VerifyError::Expired));
}

fn p_dup(p: &Presigned) -> Presigned {
    Presigned {
        query: format!("{}&X-Amz-Date=20261127T120000Z", p.query),
        ..with_param(p, "", "")
    }
}

#[test]
fn an_extra_unsigned_query_parameter_breaks_the_signature() {
    let p = presign("k", &[], 3600, NOW, None);
    let q = Presigned {
        query: format!("{}&response-content-type=text%2Fhtml", p.query),
        ..with_param(&p, "", "")
    };
    assert_eq!(verify(&q, NOW), Err(VerifyError::SignatureMismatch));
}

#[test]
fn verify_errors_map_to_s3_codes() {
    assert_eq!(
        VerifyError::SignatureMismatch.s3_code(),
        "SignatureDoesNotMatch"
    );
    assert_eq!(VerifyError::Expired.s3_code(), "AccessDenied");
    assert_eq!(
        VerifyError::UnknownAccessKey.s3_code(),
        "InvalidAccessKeyId"
    );
    assert_eq!(VerifyError::MalformedQuery.http_status(), 400);
    assert_eq!(VerifyError::Expired.http_status(), 403);
}

fn with_extra_headers(p: &Presigned, extra: &[(&str, &str)]) -> Presigned {
    let mut q = with_param(p, "", "");
    q.headers
        .extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    q
}

/// S3 refuses `x-amz-*` headers a presigned request carries without having signed them: they
/// would change what is stored (metadata, checksums, ACLs) without the signer's consent.
#[test]
fn unsigned_amz_headers_are_refused_and_named() {
    let p = presign(
        "k",
        &[
            ("content-type", "image/jpeg"),
            ("x-amz-meta-owner", "alice"),
        ],
        3600,
        NOW,
        None,
    );
    assert!(verify(&p, NOW).is_ok(), "signed x-amz-meta-owner is fine");
    for (extra, named) in [
        (
            vec![("x-amz-meta-note", "60 KB of notes")],
            "x-amz-meta-note",
        ),
        (
            vec![("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")],
            "x-amz-content-sha256",
        ),
        (
            vec![("x-amz-checksum-crc32", "AAAAAA==")],
            "x-amz-checksum-crc32",
        ),
        (
            vec![("x-amz-sdk-checksum-algorithm", "CRC32")],
            "x-amz-sdk-checksum-algorithm",
        ),
        (
            vec![("x-amz-acl", "public-read"), ("x-amz-ACL", "private")],
            "x-amz-acl",
        ),
        (
            vec![("x-amz-meta-a", "1"), ("x-amz-tagging", "t=1")],
            "x-amz-meta-a, x-amz-tagging",
        ),
    ] {
        assert_eq!(
            verify(&with_extra_headers(&p, &extra), NOW),
            Err(VerifyError::UnsignedHeaders(named.into())),
            "{extra:?}"
        );
    }
    let many: Vec<(String, &str)> = (0..20).map(|i| (format!("x-amz-meta-{i}"), "v")).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let Err(VerifyError::UnsignedHeaders(list)) = verify(&with_extra_headers(&p, &many), NOW)
    else {
        panic!("20 unsigned headers accepted");
    };
    assert_eq!(list.split(", ").count(), 9, "8 names, then …: {list}");
    assert!(list.ends_with(", …"), "{list}");

    // Other headers, `x-amzn-*` among them, are not the signer's business.
    let other = with_extra_headers(
        &p,
        &[
            ("x-amzn-trace-id", "Root=1"),
            ("user-agent", "curl"),
            ("x-amz", "v"),
        ],
    );
    assert!(verify(&other, NOW).is_ok());
    let e = VerifyError::UnsignedHeaders("x-amz-meta-a".into());
    assert_eq!((e.s3_code(), e.http_status()), ("AccessDenied", 403));
    assert!(e.to_string().contains("not signed: x-amz-meta-a"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any `x-amz-` header name, in any case, sent unsigned is refused.
    #[test]
    fn any_unsigned_amz_header_is_refused(suffix in "[a-zA-Z0-9-]{1,30}", value in "[!-~]{0,20}") {
        let p = presign("k", &[], 3600, NOW, None);
        let name = format!("X-Amz-{suffix}");
        let got = verify(&with_extra_headers(&p, &[(&name, &value)]), NOW);
        prop_assert_eq!(got, Err(VerifyError::UnsignedHeaders(name.to_ascii_lowercase())));
    }
}
