//! Same signature as the `aws-sigv4` crate (configured for S3: single encoding, no path
//! normalization, session token signed) over random keys, regions, expiries, tokens, headers
//! and query parameters. The key and query are encoded for aws-sigv4 by the `percent-encoding`
//! crate, so our encoder is compared too.

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody,
    SignableRequest, SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use draftstore_signer::{
    Addressing, Credentials, Endpoint, Expiry, Method, Payload, Request, Signer, Timestamp,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use proptest::prelude::*;
use std::time::{Duration, UNIX_EPOCH};

const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Debug, Clone)]
struct Case {
    method: Method,
    virtual_host: bool,
    key: String,
    region: String,
    expires: u64,
    now: i64,
    token: Option<String>,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

fn key_strategy() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        "[a-zA-Z0-9]{1,8}",
        Just(" ".to_string()),
        Just("/".to_string()),
        Just("+~=&%?#".to_string()),
        Just("😀".to_string()),
        Just("ሴ".to_string()),
        Just("é".to_string()),
        Just("..".to_string()),
        Just("  ".to_string()),
        "\\PC{1,4}",
    ];
    proptest::collection::vec(pieces, 1..64).prop_map(|v| {
        let mut s: String = v.concat();
        while s.len() > 1024 {
            s.pop();
        }
        s
    })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let method = prop_oneof![
        Just(Method::Get),
        Just(Method::Put),
        Just(Method::Head),
        Just(Method::Delete),
        Just(Method::Post)
    ];
    let header_name = prop_oneof![
        Just("content-type".to_string()),
        Just("Content-Length".to_string()),
        Just("x-amz-checksum-sha256".to_string()),
        Just("if-none-match".to_string()),
        "x-amz-meta-[a-z]{1,10}",
    ];
    let header = (header_name, "[ -~]{0,24}");
    let query = (
        prop_oneof![
            Just("response-content-disposition".to_string()),
            Just("uploadId".to_string()),
            Just("partNumber".to_string()),
            "[a-zA-Z][a-zA-Z0-9 _=&]{0,10}",
        ],
        "\\PC{0,16}",
    );
    (
        method,
        any::<bool>(),
        key_strategy(),
        prop_oneof![
            Just("us-east-1"),
            Just("eu-central-1"),
            Just("ap-southeast-2"),
            Just("auto")
        ],
        1_u64..=604_800,
        0_i64..4_102_444_800,
        proptest::option::of("[A-Za-z0-9/+=]{16,64}"),
        proptest::collection::vec(header, 0..4),
        proptest::collection::vec(query, 0..3),
    )
        .prop_map(
            |(method, virtual_host, key, region, expires, now, token, headers, query)| {
                let mut headers = headers;
                // One value per name keeps both libraries on the same header model.
                headers.sort_by_key(|(n, _)| n.to_ascii_lowercase());
                headers.dedup_by_key(|(n, _)| n.to_ascii_lowercase());
                Case {
                    method,
                    virtual_host,
                    key,
                    region: region.into(),
                    expires,
                    now,
                    token,
                    headers,
                    query,
                }
            },
        )
}

fn ours(case: &Case, presign: bool) -> String {
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        case.token.clone(),
    )
    .unwrap();
    let signer = Signer::new(creds, &case.region, "s3").unwrap();
    let endpoint = Endpoint::parse("https://s3.example.com").unwrap();
    let addressing = if case.virtual_host {
        Addressing::VirtualHost
    } else {
        Addressing::Path
    };
    let headers: Vec<(&str, &str)> = case
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let query: Vec<(&str, &str)> = case
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut req = Request::new(
        case.method,
        &endpoint,
        addressing,
        "draft-bucket",
        &case.key,
    );
    req.headers = &headers;
    req.query = &query;
    let now = Timestamp::from_unix(case.now).unwrap();
    if presign {
        let url = signer
            .presign(&req, Expiry::new(case.expires).unwrap(), now)
            .unwrap();
        url.rsplit_once("X-Amz-Signature=").unwrap().1.to_string()
    } else {
        req.payload = Payload::Sha256Hex(draftstore_signer::EMPTY_SHA256);
        let signed = signer.sign_headers(&req, now).unwrap();
        let auth = &signed
            .headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap()
            .1;
        auth.rsplit_once("Signature=").unwrap().1.to_string()
    }
}

fn theirs(case: &Case, presign: bool) -> String {
    let (host, path) = if case.virtual_host {
        ("draft-bucket.s3.example.com".to_string(), String::new())
    } else {
        ("s3.example.com".to_string(), "/draft-bucket".to_string())
    };
    let mut url = format!(
        "https://{host}{path}/{}",
        utf8_percent_encode(&case.key, PATH)
    );
    for (i, (k, v)) in case.query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&format!(
            "{}={}",
            utf8_percent_encode(k, COMPONENT),
            utf8_percent_encode(v, COMPONENT)
        ));
    }
    let identity: Identity = AwsCredentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        case.token.clone(),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.session_token_mode = SessionTokenMode::Include;
    if presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(case.expires));
    } else {
        settings.signature_location = SignatureLocation::Headers;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&case.region)
        .name("s3")
        .time(UNIX_EPOCH + Duration::from_secs(case.now as u64))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let mut headers: Vec<(&str, &str)> = vec![("host", host.as_str())];
    headers.extend(case.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let body = if presign {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Precomputed(draftstore_signer::EMPTY_SHA256.to_string())
    };
    let signable =
        SignableRequest::new(case.method.as_str(), url, headers.into_iter(), body).unwrap();
    sign(signable, &params).unwrap().signature().to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn presigned_urls_match_aws_sigv4(case in case_strategy()) {
        prop_assert_eq!(ours(&case, true), theirs(&case, true));
    }

    #[test]
    fn header_signatures_match_aws_sigv4(case in case_strategy()) {
        prop_assert_eq!(ours(&case, false), theirs(&case, false));
    }
}
