//! presign and sign_headers with arbitrary inputs: Ok or Err, never a panic. Endpoints come
//! mostly from a valid set so inputs reach the signing code, sometimes raw.
#![no_main]

use arbitrary::Arbitrary;
use draftstore_signer::{Addressing, Credentials, Endpoint, Expiry, Method, Payload, Request, Signer, Timestamp};
use libfuzzer_sys::fuzz_target;

const ENDPOINTS: [&str; 4] = ["https://s3.amazonaws.com", "http://127.0.0.1:9000", "http://[::1]:8333", "https://minio.internal:443"];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    endpoint: Result<u8, &'a str>,
    virtual_host: bool,
    bucket: &'a str,
    key: &'a str,
    region: &'a str,
    token: Option<&'a str>,
    expires: u32,
    now: u32,
    headers: Vec<(&'a str, &'a str)>,
    query: Vec<(&'a str, &'a str)>,
    payload: Option<&'a str>,
    method: u8,
}

fuzz_target!(|i: Input<'_>| {
    let endpoint = match i.endpoint {
        Ok(n) => ENDPOINTS[usize::from(n) % ENDPOINTS.len()],
        Err(raw) => raw,
    };
    let Ok(endpoint) = Endpoint::parse(endpoint) else { return };
    let Ok(creds) = Credentials::new("AKIDEXAMPLE", "secret", i.token.map(String::from)) else { return };
    let region = if i.region.is_empty() { "us-east-1" } else { i.region };
    let Ok(signer) = Signer::new(creds, region, "s3") else { return };
    let (Ok(expires), Ok(now)) = (Expiry::new(u64::from(i.expires)), Timestamp::from_unix(i.now.into())) else { return };
    let methods = [Method::Get, Method::Put, Method::Head, Method::Delete, Method::Post];
    let method = methods[usize::from(i.method) % methods.len()];
    let addressing = if i.virtual_host { Addressing::VirtualHost } else { Addressing::Path };
    let mut req = Request::new(method, &endpoint, addressing, i.bucket, i.key);
    req.headers = &i.headers;
    req.query = &i.query;
    req.payload = i.payload.map_or(Payload::Unsigned, Payload::Sha256Hex);
    let _ = signer.presign(&req, expires, now);
    let _ = signer.sign_headers(&req, now);
});
