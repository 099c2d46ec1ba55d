//! verify on arbitrary request bytes: Ok or a typed error, never a panic. Half the inputs start
//! from a valid presigned request and splice arbitrary bytes into its query, path or headers,
//! so the deep checks (scope, time, headers, signature) are reached. Whatever is accepted must
//! be within its life: expiry exact, the skew allowance only for a date in the future.
#![no_main]

use arbitrary::Arbitrary;
use draftstore_signer::{Addressing, Credentials, Endpoint, Expiry, Method, ReceivedRequest, Request, Signer, Timestamp, Verified, Verifier, VerifyError};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    mutate_valid: bool,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    splice_at: u16,
    splice_len: u8,
    now_offset: i32,
    skew: u16,
}

fuzz_target!(|i: Input<'_>| {
    let base = 1_795_780_800_i64;
    let Ok(now) = Timestamp::from_unix(base + i64::from(i.now_offset)) else { return };
    let verifier = Verifier::new("us-east-1", "s3", u32::from(i.skew)).unwrap();
    let lookup = |ak: &str| (ak == "AKIDEXAMPLE").then_some("secret");
    if !i.mutate_valid {
        let req = ReceivedRequest { method: i.method, path: i.path, query: i.query, headers: &i.headers };
        check_time(verifier.verify(&req, now, lookup), now, i.skew);
        return;
    }
    let signer = Signer::new(Credentials::new("AKIDEXAMPLE", "secret", None).unwrap(), "us-east-1", "s3").unwrap();
    let endpoint = Endpoint::parse("http://127.0.0.1:9000").unwrap();
    let mut req = Request::new(Method::Put, &endpoint, Addressing::Path, "draft", "a/b c.jpg");
    req.headers = &[("content-type", "image/jpeg")];
    let url = signer.presign(&req, Expiry::new(3600).unwrap(), Timestamp::from_unix(base).unwrap()).unwrap();
    let target = url.strip_prefix("http://127.0.0.1:9000").unwrap();
    let (path, query) = target.split_once('?').unwrap();
    let splice = |s: &str, with: &str| -> String {
        let at = usize::from(i.splice_at) % (s.len() + 1);
        let end = (at + usize::from(i.splice_len)).min(s.len());
        let (Some(a), Some(b)) = (s.get(..at), s.get(end..)) else { return s.to_string() };
        format!("{a}{with}{b}")
    };
    let (path, query) = match i.splice_len % 3 {
        0 => (splice(path, i.path), query.to_string()),
        _ => (path.to_string(), splice(query, i.query)),
    };
    let mut headers = vec![("host", "127.0.0.1:9000"), ("content-type", "image/jpeg")];
    headers.extend(i.headers.iter().copied());
    let received = ReceivedRequest { method: "PUT", path: &path, query: &query, headers: &headers };
    check_time(verifier.verify(&received, now, lookup), now, i.skew);
});

/// Whatever is accepted is within its life: dated at most `skew` seconds ahead of `now`, and
/// `now` not past its expiry (exact, no allowance).
fn check_time(result: Result<Verified, VerifyError>, now: Timestamp, skew: u16) {
    if let Ok(v) = result {
        assert!(v.signed_at.unix() <= now.unix() + i64::from(skew), "{v:?}");
        assert!(now.unix() <= v.expires_at.unix(), "{v:?}");
    }
}
