//! Stage 1: the canonical request. Written to a [`Sink`], so the same code builds a `String`
//! (for tests and debugging) or streams straight into SHA-256 (the hot path, no copy).

use crate::encode::{encode, Hex32};
use crate::Error;
use hmac::digest::Update;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

impl Sink for hmac::Hmac<Sha256> {
    fn put(&mut self, s: &str) {
        Update::update(self, s.as_bytes());
    }

    fn put_hex(&mut self, hex: &Hex32) {
        Update::update(self, hex.as_bytes());
    }
}

impl Sink for Sha256 {
    fn put(&mut self, s: &str) {
        Update::update(self, s.as_bytes());
    }

    fn put_hex(&mut self, hex: &Hex32) {
        Update::update(self, hex.as_bytes());
    }
}

/// Somewhere canonical text goes: a `String`, a `sha2::Sha256`, or an `hmac::Hmac<Sha256>`.
pub(crate) trait Sink {
    fn put(&mut self, s: &str);

    /// Hex text we produced ourselves; hashing sinks take its bytes without re-validating.
    fn put_hex(&mut self, hex: &Hex32) {
        self.put(hex.as_str());
    }
}

impl Sink for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// Headers the signer sets itself; callers may not pass them.
const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// The signed headers, sorted by lowercase name, values normalized. `HostOnly` is the common
/// presigned case and needs no allocation.
#[derive(Debug)]
pub(crate) enum CanonicalHeaders<'a> {
    HostOnly(&'a str),
    /// (lowercase name, normalized value); both borrowed when the input already was.
    List(Vec<(Cow<'a, str>, Cow<'a, str>)>),
}

impl<'a> CanonicalHeaders<'a> {
    /// `host` plus the caller's extra headers (validated, lowercased, merged, sorted), plus the
    /// signer's own `x-amz-*` headers in `own`.
    pub(crate) fn build(
        host: &'a str,
        extra: &[(&'a str, &'a str)],
        own: &[(&'static str, &'a str)],
    ) -> Result<Self, Error> {
        if extra.is_empty() && own.is_empty() {
            return Ok(Self::HostOnly(host));
        }
        let mut list: Vec<(Cow<'a, str>, Cow<'a, str>)> =
            Vec::with_capacity(extra.len() + own.len() + 1);
        list.push((Cow::Borrowed("host"), Cow::Borrowed(host)));
        for &(name, value) in own {
            list.push((Cow::Borrowed(name), Cow::Borrowed(value)));
        }
        for &(name, value) in extra {
            let lower = checked_name(name)?;
            if RESERVED_HEADERS.contains(&lower.as_ref()) {
                return Err(Error::ReservedHeader(lower.into_owned()));
            }
            if value
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
            {
                return Err(Error::InvalidHeaderValue(lower.into_owned()));
            }
            push_merged(&mut list, lower, value);
        }
        list.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self::List(list))
    }

    /// Headers as received by a server, restricted to `names` (already lowercase and sorted).
    /// `None` names the first signed header the request lacks.
    pub(crate) fn from_received<'n>(
        names: &[&'n str],
        received: &[(&'n str, &'n str)],
    ) -> Result<CanonicalHeaders<'n>, &'n str> {
        let mut list = Vec::with_capacity(names.len());
        for &name in names {
            let mut found = false;
            for &(n, v) in received {
                if n.eq_ignore_ascii_case(name) {
                    if found {
                        push_merged(&mut list, Cow::Borrowed(name), v);
                    } else {
                        list.push((Cow::Borrowed(name), normalize_value(v)));
                        found = true;
                    }
                }
            }
            if !found {
                return Err(name);
            }
        }
        Ok(CanonicalHeaders::List(list))
    }

    /// `name:value\n` for each header.
    pub(crate) fn write_canonical(&self, sink: &mut impl Sink) {
        match self {
            Self::HostOnly(host) => {
                sink.put("host:");
                sink.put(host);
                sink.put("\n");
            }
            Self::List(list) => {
                for (name, value) in list {
                    sink.put(name);
                    sink.put(":");
                    sink.put(value);
                    sink.put("\n");
                }
            }
        }
    }

    /// The signed-headers list, names joined by `sep` (`;`, or `%3B` inside a query).
    pub(crate) fn write_names(&self, sink: &mut impl Sink, sep: &str) {
        match self {
            Self::HostOnly(_) => sink.put("host"),
            Self::List(list) => {
                for (i, (name, _)) in list.iter().enumerate() {
                    if i > 0 {
                        sink.put(sep);
                    }
                    sink.put(name);
                }
            }
        }
    }
}

/// Header names are limited to `A-Z a-z 0-9 - _ .`: every real S3 header, and none needs
/// encoding inside `X-Amz-SignedHeaders`. Lowercased (borrowed when it already was).
fn checked_name(name: &str) -> Result<Cow<'_, str>, Error> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Error::InvalidHeaderName(name.chars().take(64).collect()));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Ok(Cow::Owned(name.to_ascii_lowercase()))
    } else {
        Ok(Cow::Borrowed(name))
    }
}

fn push_merged<'a>(
    list: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
    name: Cow<'a, str>,
    value: &'a str,
) {
    if let Some(slot) = list.iter_mut().find(|(n, _)| *n == name) {
        let joined = slot.1.to_mut();
        joined.push(',');
        joined.push_str(&normalize_value(value));
    } else {
        list.push((name, normalize_value(value)));
    }
}

/// Trims and folds every run of white space (including obs-fold line breaks) into one space;
/// borrowed when `value` already is (the usual case: no allocation).
pub(crate) fn normalize_value(value: &str) -> Cow<'_, str> {
    let bytes = value.as_bytes();
    let folded = bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && !bytes.windows(2).any(|w| w == b"  ")
        && !bytes
            .iter()
            .any(|&b| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r'));
    if folded {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    for (i, word) in value.split_ascii_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    Cow::Owned(out)
}

/// The canonical query string of unencoded pairs: each side encoded, sorted by key then value.
pub(crate) fn canonical_query(pairs: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(Cow<'_, str>, Cow<'_, str>)> = pairs
        .iter()
        .map(|&(k, v)| (encode(k, false), encode(v, false)))
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The six parts of a canonical request; `path` and `query` are already canonical (encoded).
pub(crate) struct CanonicalRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a CanonicalHeaders<'a>,
    pub payload: &'a str,
}

impl CanonicalRequest<'_> {
    pub(crate) fn write(&self, sink: &mut impl Sink) {
        sink.put(self.method);
        sink.put("\n");
        sink.put(self.path);
        sink.put("\n");
        sink.put(self.query);
        sink.put("\n");
        write_canonical_tail(sink, self.headers, self.payload);
    }

    #[cfg(test)]
    pub(crate) fn text(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    /// Lowercase hex SHA-256 of the canonical request, without building it.
    pub(crate) fn hash(&self) -> Hex32 {
        let mut hasher = Sha256::new();
        self.write(&mut hasher);
        Hex32::new(&hasher.finalize())
    }
}

/// What follows the query line of a canonical request: the headers, a blank line, the signed
/// header names and the payload line.
pub(crate) fn write_canonical_tail(
    sink: &mut impl Sink,
    headers: &CanonicalHeaders<'_>,
    payload: &str,
) {
    headers.write_canonical(sink);
    sink.put("\n");
    headers.write_names(sink, ";");
    sink.put("\n");
    sink.put(payload);
}

/// Lowercase hex SHA-256 of a canonical request already written out.
pub(crate) fn hash_text(text: &str) -> Hex32 {
    Hex32::new(&Sha256::digest(text.as_bytes()))
}

/// Hashes a run of canonical requests that share long heads (a batch of part URLs differs only
/// from `partNumber=` on): keeps the previous text and a clone of the `sha2::Sha256` hasher at
/// each of its 64-byte block boundaries, and resumes from the last boundary inside the common
/// head. The digest is exactly SHA-256 of the text; only the blocks past the shared head are
/// compressed again.
#[derive(Default)]
pub(crate) struct PrefixHasher {
    /// The canonical request hashed last.
    prev: String,
    /// `states[i]`: the hasher after the first `64 * i` bytes of `prev` (`states[0]` is fresh).
    states: Vec<Sha256>,
}

impl PrefixHasher {
    /// Lowercase hex SHA-256 of `creq`'s text.
    #[cfg(test)]
    pub(crate) fn hash(&mut self, creq: &CanonicalRequest<'_>) -> Hex32 {
        self.hash_text(&creq.text())
    }

    /// Lowercase hex SHA-256 of `text`, a canonical request.
    pub(crate) fn hash_text(&mut self, text: &str) -> Hex32 {
        // Whole blocks the two texts share (compared a block at a time: one memcmp each).
        let common = self
            .prev
            .as_bytes()
            .chunks_exact(64)
            .zip(text.as_bytes().chunks_exact(64))
            .take_while(|(a, b)| a == b)
            .count();
        let blocks = common.min(self.states.len().saturating_sub(1));
        self.states.truncate(blocks + 1);
        let mut hasher = self.states.last().cloned().unwrap_or_default();
        if self.states.is_empty() {
            self.states.push(hasher.clone());
        }
        let rest = text.as_bytes().get(blocks * 64..).unwrap_or_default();
        for chunk in rest.chunks(64) {
            Digest::update(&mut hasher, chunk);
            if chunk.len() == 64 {
                self.states.push(hasher.clone());
            }
        }
        self.prev.clear();
        self.prev.push_str(text);
        Hex32::new(&hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_request_layout() {
        let headers = CanonicalHeaders::build(
            "example.amazonaws.com",
            &[("My-Header1", "  a   b \n  c "), ("my-header1", "d")],
            &[("x-amz-date", "20150830T123600Z")],
        )
        .unwrap();
        let creq = CanonicalRequest {
            method: "GET",
            path: "/",
            query: "a=b",
            headers: &headers,
            payload: "UNSIGNED-PAYLOAD",
        };
        assert_eq!(
            creq.text(),
            "GET\n/\na=b\nhost:example.amazonaws.com\nmy-header1:a b c,d\n\
             x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\nUNSIGNED-PAYLOAD"
        );
        let expected = hex::encode(Sha256::digest(creq.text().as_bytes()));
        assert_eq!(creq.hash().as_str(), expected);
    }

    #[test]
    fn prefix_hasher_gives_plain_sha256_for_any_sequence() {
        let headers = CanonicalHeaders::build("h", &[], &[]).unwrap();
        let mut prefix = PrefixHasher::default();
        let long = "q".repeat(300);
        let queries: Vec<String> = [
            "a",
            "a",
            "",
            "partNumber=1",
            "partNumber=10",
            "partNumber=2",
            &long,
        ]
        .iter()
        .map(|q| format!("{long}{q}"))
        .chain(["x".into(), String::new(), long.clone() + "&uploadId=z"])
        .collect();
        for query in &queries {
            for path in ["/b/k", "/b/other"] {
                let creq = CanonicalRequest {
                    method: "PUT",
                    path,
                    query,
                    headers: &headers,
                    payload: "UNSIGNED-PAYLOAD",
                };
                assert_eq!(
                    prefix.hash(&creq).as_str(),
                    creq.hash().as_str(),
                    "{path} {query}"
                );
            }
        }
    }

    #[test]
    fn host_only_needs_no_list() {
        let h = CanonicalHeaders::build("h", &[], &[]).unwrap();
        assert!(matches!(h, CanonicalHeaders::HostOnly("h")));
        let mut names = String::new();
        h.write_names(&mut names, "%3B");
        assert_eq!(names, "host");
    }

    #[test]
    fn reserved_and_malformed_headers_are_errors() {
        for name in [
            "Host",
            "authorization",
            "X-Amz-Date",
            "x-amz-security-token",
        ] {
            assert!(matches!(
                CanonicalHeaders::build("h", &[(name, "v")], &[]),
                Err(Error::ReservedHeader(_))
            ));
        }
        for name in ["", "a b", "a:b", "é", "a\nb"] {
            assert!(matches!(
                CanonicalHeaders::build("h", &[(name, "v")], &[]),
                Err(Error::InvalidHeaderName(_))
            ));
        }
        assert_eq!(
            CanonicalHeaders::build("h", &[("x-a", "v\0")], &[]).unwrap_err(),
            Error::InvalidHeaderValue("x-a".into())
        );
    }

    #[test]
    fn received_headers_are_matched_case_insensitively() {
        let got = CanonicalHeaders::from_received(
            &["content-type", "host"],
            &[("Host", "h"), ("Content-Type", " image/png ")],
        )
        .unwrap();
        let mut s = String::new();
        got.write_canonical(&mut s);
        assert_eq!(s, "content-type:image/png\nhost:h\n");
        assert_eq!(
            CanonicalHeaders::from_received(&["x-missing"], &[("host", "h")]).unwrap_err(),
            "x-missing"
        );
    }

    proptest::proptest! {
        #[test]
        fn normalize_borrows_exactly_when_nothing_folds(value in "[ \t\r\n\x0ca-c]{0,12}") {
            let folded = value.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
            let got = normalize_value(&value);
            proptest::prop_assert_eq!(got.as_ref(), folded.as_str());
            proptest::prop_assert_eq!(matches!(got, Cow::Borrowed(_)), folded == value);
        }
    }

    #[test]
    fn query_is_encoded_then_sorted() {
        assert_eq!(
            canonical_query(&[("b", "2"), ("a", "z y"), ("a", "x"), ("ሴ", "")]),
            "%E1%88%B4=&a=x&a=z%20y&b=2"
        );
        assert_eq!(canonical_query(&[]), "");
    }
}
