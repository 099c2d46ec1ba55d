//! presign → verify: every URL the signer produces verifies, with the same access key, for
//! exactly its life (`X-Amz-Date` through `X-Amz-Date + X-Amz-Expires`).
#![no_main]

use arbitrary::Arbitrary;
use draftstore_signer::{Addressing, Credentials, Endpoint, Expiry, Method, ReceivedRequest, Request, Signer, Timestamp, Verifier, VerifyError};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    query: Vec<(&'a str, &'a str)>,
    expires: u32,
    now: u32,
}

fuzz_target!(|i: Input<'_>| {
    let signer = Signer::new(Credentials::new("AKIDEXAMPLE", "secret", None).unwrap(), "us-east-1", "s3").unwrap();
    let endpoint = Endpoint::parse("http://127.0.0.1:9000").unwrap();
    let mut req = Request::new(Method::Put, &endpoint, Addressing::Path, "draft", i.key);
    req.headers = &i.headers;
    req.query = &i.query;
    let (Ok(expires), Ok(now)) = (Expiry::new(u64::from(i.expires)), Timestamp::from_unix(i.now.into())) else { return };
    let Ok(url) = signer.presign(&req, expires, now) else { return };
    let target = url.strip_prefix("http://127.0.0.1:9000").unwrap();
    let (path, query) = target.split_once('?').unwrap();
    let mut headers = vec![("host", "127.0.0.1:9000")];
    headers.extend(i.headers.iter().copied());
    let received = ReceivedRequest { method: "PUT", path, query, headers: &headers };
    let verifier = Verifier::new("us-east-1", "s3", 60).unwrap();
    let at = |t: i64| Timestamp::from_unix(t).unwrap();
    let verified = verifier.verify(&received, now, |_| Some("secret"));
    assert_eq!(verified.map(|v| v.access_key), Ok("AKIDEXAMPLE".to_string()), "{url}");
    // Valid through the last second of its life, expired one second later: the clock-skew
    // allowance never stretches expiry.
    let last = now.unix() + i64::from(expires.secs());
    assert!(verifier.verify(&received, at(last), |_| Some("secret")).is_ok(), "{url}");
    assert_eq!(verifier.verify(&received, at(last + 1), |_| Some("secret")), Err(VerifyError::Expired), "{url}");
    // Dated up to the allowance in the future (the signer's clock ahead of ours): accepted.
    if now.unix() >= 60 {
        assert!(verifier.verify(&received, at(now.unix() - 60), |_| Some("secret")).is_ok(), "{url}");
    }
});
