//! presign → verify: every URL the signer produces verifies, with the same access key.
#![no_main]

use arbitrary::Arbitrary;
use draftstore_signer::{Addressing, Credentials, Endpoint, Expiry, Method, ReceivedRequest, Request, Signer, Timestamp, Verifier};
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
    let verified = Verifier::new("us-east-1", "s3", 0).unwrap().verify(&received, now, |_| Some("secret"));
    assert_eq!(verified.map(|v| v.access_key), Ok("AKIDEXAMPLE".to_string()), "{url}");
});
