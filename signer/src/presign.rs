//! Presigned URLs (query-string authentication), the way S3 clients hand out uploads/downloads.

use crate::canonical::{hash_text, write_canonical_tail, CanonicalHeaders, PrefixHasher};
use crate::encode::{encode, encode_into};
use crate::request::{check_bucket, host, write_origin, write_path};
use crate::signing_key::{DerivedKey, SecondCache};
use crate::string_to_sign::ALGORITHM;
use crate::{Error, Explained, Request, Signer, Timestamp};
use std::borrow::Cow;

/// How long a presigned URL is valid: 1..=604800 seconds (seven days), S3's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expiry(u32);

impl Expiry {
    /// The longest S3 allows: seven days, in seconds.
    pub const MAX_SECS: u32 = 604_800;

    /// # Errors
    /// [`Error::InvalidExpiry`] outside 1..=604800.
    pub fn new(secs: u64) -> Result<Self, Error> {
        u32::try_from(secs)
            .ok()
            .filter(|s| (1..=Self::MAX_SECS).contains(s))
            .map(Self)
            .ok_or(Error::InvalidExpiry(secs))
    }

    /// Seconds.
    #[must_use]
    pub const fn secs(self) -> u32 {
        self.0
    }
}

/// Query parameters the signer owns, compared case-insensitively.
pub(crate) const AUTH_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-Security-Token",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
];

impl Signer {
    /// A presigned URL for `req`, valid from `now` for `expires`.
    ///
    /// The client must send every header in `req.headers` with the same value.
    ///
    /// # Errors
    /// An [`Error`] for a bucket that cannot stand in a URL, a malformed or reserved header or
    /// query parameter, or a malformed payload hash. Never panics.
    pub fn presign(
        &self,
        req: &Request<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, Error> {
        self.presign_traced(req, expires, now, None)
    }

    /// Like [`Signer::presign`], and also returns the canonical request and string to sign: what
    /// to compare with an S3 `SignatureDoesNotMatch` error's `CanonicalRequest`.
    ///
    /// # Errors
    /// As [`Signer::presign`].
    pub fn presign_explained(
        &self,
        req: &Request<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<Explained, Error> {
        let mut trace = Explained::default();
        let url = self.presign_traced(req, expires, now, Some(&mut trace))?;
        trace.url = url;
        Ok(trace)
    }

    fn presign_traced(
        &self,
        req: &Request<'_>,
        expires: Expiry,
        now: Timestamp,
        trace: Option<&mut Explained>,
    ) -> Result<String, Error> {
        check_bucket(req)?;
        let payload = req.payload.as_str()?;
        let user_query = encoded_user_query(req.query)?;
        let amz_date = now.amz_date();
        let host = host(req);
        let headers = CanonicalHeaders::build(&host, req.headers, &[])?;
        let parts = Parts {
            req,
            payload,
            user_query: &user_query,
            amz_date,
            expires,
            host: &host,
            headers: &headers,
        };
        Ok(
            self.with_key(amz_date.get(..8).unwrap_or_default(), |key, second| {
                let mut url = String::new();
                self.presign_with(&parts, key, second, trace, None, &mut url);
                url
            }),
        )
    }

    /// Builds and signs one URL. With `prefix`, the canonical request is hashed from the
    /// SHA-256 state it shares with the previous one (a batch of similar URLs).
    pub(crate) fn presign_with(
        &self,
        parts: &Parts<'_>,
        key: &DerivedKey,
        second: &mut SecondCache,
        trace: Option<&mut Explained>,
        prefix: Option<&mut PrefixHasher>,
        url: &mut String,
    ) {
        let Parts {
            req,
            payload,
            user_query,
            amz_date,
            expires,
            host,
            headers,
        } = *parts;
        let token = self.credentials.session_token();

        // The canonical request, written once into this thread's scratch buffer and hashed in
        // one pass (whole blocks straight from the buffer); the URL then copies its path and
        // query from it in two pieces. Fewer, larger copies than writing both texts piecewise.
        let mut creq = std::mem::take(&mut second.scratch);
        creq.clear();
        creq.push_str(req.method.as_str());
        creq.push('\n');
        let path_start = creq.len();
        write_path(&mut creq, req);
        let path_end = creq.len();
        creq.push('\n');
        let query_start = creq.len();
        if user_query.is_empty() {
            write_auth_query(&mut creq, key, amz_date, expires, token, headers);
        } else {
            let auth: [(&str, AuthValue<'_>); 6] = [
                ("X-Amz-Algorithm", AuthValue::Plain(ALGORITHM)),
                ("X-Amz-Credential", AuthValue::Plain(&key.credential_param)),
                ("X-Amz-Date", AuthValue::Plain(amz_date)),
                ("X-Amz-Expires", AuthValue::Number(expires.secs())),
                (
                    "X-Amz-Security-Token",
                    token.map_or(AuthValue::Absent, AuthValue::Encode),
                ),
                ("X-Amz-SignedHeaders", AuthValue::SignedHeaders(headers)),
            ];
            write_merged_query(&mut creq, &auth, user_query);
        }
        let query_end = creq.len();
        creq.push('\n');
        write_canonical_tail(&mut creq, headers, payload);

        let hash = match prefix {
            Some(prefix) => prefix.hash_text(&creq),
            None => hash_text(&creq),
        };
        if let Some(trace) = trace {
            trace.record(&creq, amz_date, &key.scope, &hash);
        }
        let signature = key.signature_cached(amz_date, &hash, second);
        let path = creq.get(path_start..path_end).unwrap_or_default();
        let query = creq.get(query_start..query_end).unwrap_or_default();
        let origin = req.endpoint.scheme().as_str().len() + 3 + host.len();
        url.reserve(origin + path.len() + 1 + query.len() + 17 + 64);
        write_origin(url, req, host);
        url.push_str(path);
        url.push('?');
        url.push_str(query);
        second.scratch = creq;
        url.push_str("&X-Amz-Signature=");
        url.push_str(signature.as_str());
    }
}

/// A validated presign request, ready to be signed with the day's key.
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub(crate) req: &'a Request<'a>,
    pub(crate) payload: &'a str,
    pub(crate) user_query: &'a [EncodedPair<'a>],
    pub(crate) amz_date: &'a str,
    pub(crate) expires: Expiry,
    pub(crate) host: &'a str,
    pub(crate) headers: &'a CanonicalHeaders<'a>,
}

/// An auth parameter's value, written straight into the URL.
enum AuthValue<'a> {
    Absent,
    /// Needs no encoding.
    Plain(&'a str),
    Number(u32),
    Encode(&'a str),
    /// The signed header names, joined by an encoded `;`.
    SignedHeaders(&'a CanonicalHeaders<'a>),
}

impl AuthValue<'_> {
    fn write(&self, out: &mut String) {
        match *self {
            Self::Absent => {}
            Self::Plain(s) => out.push_str(s),
            Self::Number(n) => push_decimal(out, n),
            Self::Encode(s) => encode_into(out, s, false),
            Self::SignedHeaders(headers) => headers.write_names(out, "%3B"),
        }
    }
}

pub(crate) type EncodedPair<'a> = (Cow<'a, str>, Cow<'a, str>);

pub(crate) fn encoded_user_query<'a>(
    query: &[(&'a str, &'a str)],
) -> Result<Vec<EncodedPair<'a>>, Error> {
    let mut pairs = Vec::with_capacity(query.len());
    for &(k, v) in query {
        if AUTH_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(k)) {
            return Err(Error::ReservedQuery(k.to_owned()));
        }
        pairs.push((encode(k, false), encode(v, false)));
    }
    pairs.sort();
    Ok(pairs)
}

/// The canonical query when there are no user parameters: the auth parameters in their fixed
/// order, the day-constant head in one piece (the hot path: fewer, larger copies).
fn write_auth_query(
    out: &mut String,
    key: &DerivedKey,
    amz_date: &str,
    expires: Expiry,
    token: Option<&str>,
    headers: &CanonicalHeaders<'_>,
) {
    out.push_str(&key.query_head);
    out.push_str(amz_date);
    out.push_str("&X-Amz-Expires=");
    push_decimal(out, expires.secs());
    if let Some(token) = token {
        out.push_str("&X-Amz-Security-Token=");
        encode_into(out, token, false);
    }
    out.push_str("&X-Amz-SignedHeaders=");
    headers.write_names(out, "%3B");
}

/// Writes the canonical query: the (sorted) auth parameters merged with the (sorted) user pairs.
fn write_merged_query(out: &mut String, auth: &[(&str, AuthValue<'_>)], user: &[EncodedPair<'_>]) {
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push('&');
        }
        first = false;
    };
    let mut user = user.iter().peekable();
    for (name, value) in auth {
        if matches!(value, AuthValue::Absent) {
            continue;
        }
        while let Some((k, v)) = user.next_if(|(k, _)| k.as_ref() < *name) {
            sep(out);
            push_pair(out, k, v);
        }
        sep(out);
        out.push_str(name);
        out.push('=');
        value.write(out);
    }
    for (k, v) in user {
        sep(out);
        push_pair(out, k, v);
    }
}

/// Appends `n` in decimal without the formatting machinery (this is on the hot path).
pub(crate) fn push_decimal(out: &mut String, mut n: u32) {
    let mut digits = [b'0'; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(d) = digits.get_mut(start) {
            // n % 10 < 10, so the cast keeps the value.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(digits.get(start..).unwrap_or_default()).unwrap_or_default());
}

fn push_pair(out: &mut String, k: &str, v: &str) {
    out.push_str(k);
    out.push('=');
    out.push_str(v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Addressing, Credentials, Endpoint, Method};

    fn signer(token: Option<&str>) -> Signer {
        let creds = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            token.map(String::from),
        )
        .unwrap();
        Signer::new(creds, "us-east-1", "s3").unwrap()
    }

    #[test]
    fn aws_documentation_example_virtual_and_path() {
        let now = Timestamp::parse_amz("20130524T000000Z").unwrap();
        let ep = Endpoint::parse("https://s3.amazonaws.com").unwrap();
        let s = signer(None);
        let exp = Expiry::new(86_400).unwrap();
        let v = Request::new(
            Method::Get,
            &ep,
            Addressing::VirtualHost,
            "examplebucket",
            "test.txt",
        );
        assert_eq!(
            s.presign(&v, exp, now).unwrap(),
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        let p = Request::new(
            Method::Get,
            &ep,
            Addressing::Path,
            "examplebucket",
            "test.txt",
        );
        assert!(s.presign(&p, exp, now).unwrap().ends_with(
            "X-Amz-Signature=733255ef022bec3f2a8701cd61d4b371f3f28c9f193a1f02279211d48d5193d7"
        ));
    }

    #[test]
    fn the_fast_auth_query_equals_the_merged_one() {
        let key = DerivedKey::new("s", "20261127", "us-east-1", "s3").with_access_key("AK/x");
        let headers = CanonicalHeaders::build("h", &[("content-type", "a")], &[]).unwrap();
        let expires = Expiry::new(3600).unwrap();
        for token in [None, Some("t+/=")] {
            let mut fast = String::new();
            write_auth_query(
                &mut fast,
                &key,
                "20261127T120000Z",
                expires,
                token,
                &headers,
            );
            let auth = [
                ("X-Amz-Algorithm", AuthValue::Plain(ALGORITHM)),
                ("X-Amz-Credential", AuthValue::Plain(&key.credential_param)),
                ("X-Amz-Date", AuthValue::Plain("20261127T120000Z")),
                ("X-Amz-Expires", AuthValue::Number(3600)),
                (
                    "X-Amz-Security-Token",
                    token.map_or(AuthValue::Absent, AuthValue::Encode),
                ),
                ("X-Amz-SignedHeaders", AuthValue::SignedHeaders(&headers)),
            ];
            let mut merged = String::new();
            write_merged_query(&mut merged, &auth, &[]);
            assert_eq!(fast, merged);
        }
    }

    #[test]
    fn decimals() {
        for n in [0, 1, 9, 10, 3600, 604_800, u32::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn expiry_bounds() {
        assert!(Expiry::new(0).is_err());
        assert!(Expiry::new(1).is_ok());
        assert!(Expiry::new(604_800).is_ok());
        assert_eq!(Expiry::new(604_801), Err(Error::InvalidExpiry(604_801)));
        assert!(Expiry::new(u64::MAX).is_err());
    }

    #[test]
    fn user_query_is_merged_in_sorted_position() {
        let mut out = String::new();
        let auth = [
            ("X-Amz-Algorithm", AuthValue::Plain("A")),
            ("X-Amz-Date", AuthValue::Plain("D")),
            ("X-Amz-Security-Token", AuthValue::Absent),
        ];
        let user =
            encoded_user_query(&[("x-id", "1"), ("A", "b c"), ("X-Amz-Checksum", "z")]).unwrap();
        write_merged_query(&mut out, &auth, &user);
        assert_eq!(
            out,
            "A=b%20c&X-Amz-Algorithm=A&X-Amz-Checksum=z&X-Amz-Date=D&x-id=1"
        );
    }

    #[test]
    fn reserved_query_names_are_refused_in_any_case() {
        let ep = Endpoint::parse("https://s3.amazonaws.com").unwrap();
        let mut req = Request::new(Method::Get, &ep, Addressing::Path, "b", "k");
        req.query = &[("x-amz-signature", "0")];
        let now = Timestamp::from_unix(0).unwrap();
        assert_eq!(
            signer(None).presign(&req, Expiry::new(1).unwrap(), now),
            Err(Error::ReservedQuery("x-amz-signature".into()))
        );
    }

    #[test]
    fn session_token_is_signed_in_the_query() {
        let ep = Endpoint::parse("https://s3.amazonaws.com").unwrap();
        let req = Request::new(Method::Put, &ep, Addressing::Path, "b", "k");
        let now = Timestamp::from_unix(1_800_000_000).unwrap();
        let url = signer(Some("tok/en+="))
            .presign(&req, Expiry::new(60).unwrap(), now)
            .unwrap();
        assert!(url.contains("&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-SignedHeaders=host&"));
    }
}
