//! Presigned UploadPart URLs in a batch ([`Signer::presign_parts`]): what a `part-urls` call
//! hands out, up to 1000 at once, for one multipart upload of one object.
//!
//! Every URL of a batch shares the timestamp, the signing key, the encoded target and all of
//! the canonical request up to `partNumber=`: the key is looked up once, the query pairs are
//! encoded once, and the canonical request's shared head is hashed once (its SHA-256 state is
//! kept; see `canonical::PrefixHasher`), so a URL costs about its own tail plus one HMAC.

use crate::canonical::{CanonicalHeaders, PrefixHasher};
use crate::presign::{encoded_user_query, push_decimal, EncodedPair, Parts};
use crate::request::{check_bucket, host};
use crate::{Error, Expiry, Request, Signer, Timestamp};
use std::borrow::Cow;

/// S3's part numbers: 1..=10000.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// One UploadPart URL to presign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part<'a> {
    /// The part number, 1..=[`MAX_PART_NUMBER`].
    pub number: u32,
    /// Headers signed into this part's URL only, on top of the request's own (e.g. the part's
    /// `x-amz-checksum-sha256`, base64): the client must send them with the same values.
    pub headers: &'a [(&'a str, &'a str)],
}

impl Part<'_> {
    /// Part `number` with no headers of its own.
    #[must_use]
    pub const fn new(number: u32) -> Self {
        Self {
            number,
            headers: &[],
        }
    }
}

/// The URLs of [`Signer::presign_parts`], in the order of its parts, kept in one buffer (a
/// thousand separate strings cost more to allocate and free than to sign).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartUrls {
    text: String,
    /// Where each URL ends in `text`.
    ends: Vec<usize>,
}

impl PartUrls {
    /// How many URLs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The URL of the `i`-th part given (0-based), if there is one.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&str> {
        let start = match i.checked_sub(1) {
            Some(before) => *self.ends.get(before)?,
            None => 0,
        };
        self.text.get(start..*self.ends.get(i)?)
    }

    /// Every URL, in the order of the parts given.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or_default())
    }

    /// Appends `url` after the others: for a caller that signs its parts one at a time and
    /// hands them out in the same shape as [`Signer::presign_parts`].
    pub fn push(&mut self, url: &str) {
        self.text.push_str(url);
        self.ends.push(self.text.len());
    }
}

impl Signer {
    /// Presigned UploadPart URLs ([`PartUrls`]), one per entry of `parts` and in the same order: `req` (its
    /// method, `PUT` for S3's UploadPart; its target, headers and extra query) with the query
    /// parameters `partNumber=<n>&uploadId=<upload_id>` added, all signed at `now` for
    /// `expires` (SigV4 query authentication, as [`Signer::presign`]; each URL is exactly what
    /// `presign` gives for the same request). The headers of `req` are signed into every URL,
    /// a [`Part`]'s headers into its own only.
    ///
    /// # Errors
    /// [`Error::InvalidPartNumber`] for a part number outside 1..=10000;
    /// [`Error::ReservedQuery`] when `req.query` already holds `partNumber` or `uploadId`; and
    /// every error of [`Signer::presign`]. Nothing is returned when any part fails.
    pub fn presign_parts(
        &self,
        req: &Request<'_>,
        upload_id: &str,
        parts: &[Part<'_>],
        expires: Expiry,
        now: Timestamp,
    ) -> Result<PartUrls, Error> {
        check_bucket(req)?;
        if let Some(part) = parts
            .iter()
            .find(|p| !(1..=MAX_PART_NUMBER).contains(&p.number))
        {
            return Err(Error::InvalidPartNumber(part.number));
        }
        if let Some((k, _)) = req
            .query
            .iter()
            .find(|(k, _)| *k == "partNumber" || *k == "uploadId")
        {
            return Err(Error::ReservedQuery((*k).to_owned()));
        }
        let payload = req.payload.as_str()?;
        let mut query: Vec<(&str, &str)> = Vec::with_capacity(req.query.len() + 2);
        query.extend_from_slice(req.query);
        query.extend([("partNumber", "0"), ("uploadId", upload_id)]);
        let mut user_query = encoded_user_query(&query)?;
        // The number's slot: its position in the sorted pairs does not depend on its value.
        let number_at = user_query
            .iter()
            .position(|(k, _)| k == "partNumber")
            .unwrap_or_default();
        let amz_date = now.amz_date();
        let host = host(req);
        let shared = CanonicalHeaders::build(&host, req.headers, &[])?;
        let own_headers: Vec<Option<CanonicalHeaders<'_>>> = parts
            .iter()
            .map(|p| part_headers(&host, req.headers, p.headers))
            .collect::<Result<_, _>>()?;
        let date = amz_date.get(..8).unwrap_or_default();
        Ok(self.with_key(date, |key, second| {
            let mut prefix = PrefixHasher::default();
            let mut urls = PartUrls {
                text: String::new(),
                ends: Vec::with_capacity(parts.len()),
            };
            let count = parts.len();
            for (part, own) in parts.iter().zip(&own_headers) {
                set_number(&mut user_query, number_at, part.number);
                let parts = Parts {
                    req,
                    payload,
                    user_query: &user_query,
                    amz_date,
                    expires,
                    host: &host,
                    headers: own.as_ref().unwrap_or(&shared),
                };
                self.presign_with(&parts, key, second, None, Some(&mut prefix), &mut urls.text);
                urls.ends.push(urls.text.len());
                if urls.ends.len() == 1 {
                    // The first URL's length times the count: one allocation for all of them.
                    urls.text.reserve(urls.text.len().saturating_mul(count));
                }
            }
            urls
        }))
    }
}

/// The canonical headers of a part with headers of its own; `None` when it has none.
fn part_headers<'a>(
    host: &'a str,
    shared: &[(&'a str, &'a str)],
    own: &[(&'a str, &'a str)],
) -> Result<Option<CanonicalHeaders<'a>>, Error> {
    if own.is_empty() {
        return Ok(None);
    }
    let all: Vec<(&str, &str)> = shared.iter().chain(own).copied().collect();
    CanonicalHeaders::build(host, &all, &[]).map(Some)
}

/// Writes `number` into the `partNumber` pair's value (digits need no encoding).
fn set_number(pairs: &mut [EncodedPair<'_>], at: usize, number: u32) {
    if let Some((_, value)) = pairs.get_mut(at) {
        let mut text = match std::mem::take(value) {
            Cow::Owned(text) => text,
            Cow::Borrowed(_) => String::with_capacity(5),
        };
        text.clear();
        push_decimal(&mut text, number);
        *value = Cow::Owned(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Addressing, Credentials, Endpoint, Method};

    fn signer() -> Signer {
        let creds = Credentials::new("AKIAIOSFODNN7EXAMPLE", "secret", Some("tok".into())).unwrap();
        Signer::new(creds, "us-east-1", "s3").unwrap()
    }

    #[test]
    fn each_part_url_is_the_single_presign_of_the_same_request() {
        let ep = Endpoint::parse("https://s3.amazonaws.com").unwrap();
        let mut req = Request::new(Method::Put, &ep, Addressing::Path, "b", "big/file name.bin");
        req.headers = &[("content-type", "video/mp4")];
        let upload_id = "2~aZ+/ Upload.ID=";
        let now = Timestamp::parse_amz("20261127T120000Z").unwrap();
        let exp = Expiry::new(900).unwrap();
        let sums: Vec<String> = (0..40).map(|i| format!("c{i}==")).collect();
        let mut parts: Vec<Part<'_>> = [1, 2, 9, 10, 11, 99, 100, 101, 999, 1000, 9999, 10_000, 2]
            .into_iter()
            .map(Part::new)
            .collect();
        let checks: Vec<[(&str, &str); 1]> = sums
            .iter()
            .map(|s| [("x-amz-checksum-sha256", s.as_str())])
            .collect();
        for (i, check) in checks.iter().enumerate().take(5) {
            parts.push(Part {
                number: u32::try_from(i).unwrap() + 3,
                headers: check,
            });
        }
        parts.push(Part::new(7));
        let urls = signer()
            .presign_parts(&req, upload_id, &parts, exp, now)
            .unwrap();
        assert_eq!(urls.len(), parts.len());
        assert_eq!(urls.iter().len(), parts.len());
        assert_eq!(urls.get(parts.len()), None);
        for (part, url) in parts.iter().zip(urls.iter()) {
            let number = part.number.to_string();
            let query = [("partNumber", number.as_str()), ("uploadId", upload_id)];
            let all: Vec<(&str, &str)> = req.headers.iter().chain(part.headers).copied().collect();
            let single = Request {
                query: &query,
                headers: &all,
                ..req
            };
            assert_eq!(
                url,
                &signer().presign(&single, exp, now).unwrap(),
                "{part:?}"
            );
        }
        assert!(urls
            .get(0)
            .unwrap()
            .contains("&partNumber=1&uploadId=2~aZ%2B%2F%20Upload.ID%3D&X-Amz-Signature="));
    }

    #[test]
    fn bad_part_numbers_and_clashing_query_are_refused() {
        let ep = Endpoint::parse("https://s3.amazonaws.com").unwrap();
        let req = Request::new(Method::Put, &ep, Addressing::Path, "b", "k");
        let now = Timestamp::from_unix(0).unwrap();
        let exp = Expiry::new(60).unwrap();
        for n in [0, 10_001, u32::MAX] {
            assert_eq!(
                signer().presign_parts(&req, "u", &[Part::new(1), Part::new(n)], exp, now),
                Err(Error::InvalidPartNumber(n))
            );
        }
        for name in ["partNumber", "uploadId"] {
            let query = [(name, "1")];
            let clash = Request {
                query: &query,
                ..req
            };
            assert_eq!(
                signer().presign_parts(&clash, "u", &[Part::new(1)], exp, now),
                Err(Error::ReservedQuery(name.into()))
            );
        }
        let bad = [("Host", "x")];
        assert!(matches!(
            signer().presign_parts(
                &req,
                "u",
                &[Part {
                    number: 1,
                    headers: &bad
                }],
                exp,
                now
            ),
            Err(Error::ReservedHeader(_))
        ));
        assert!(signer()
            .presign_parts(&req, "u", &[], exp, now)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn pushed_urls_read_back_in_order() {
        let mut urls = PartUrls::default();
        assert_eq!(urls.get(0), None);
        for url in ["https://a/1", "", "https://a/3?x=1"] {
            urls.push(url);
        }
        assert_eq!(urls.len(), 3);
        assert_eq!(
            urls.iter().collect::<Vec<_>>(),
            ["https://a/1", "", "https://a/3?x=1"]
        );
        assert_eq!(urls.get(3), None);
    }
}
