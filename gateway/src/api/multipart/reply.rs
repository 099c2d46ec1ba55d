//! The `part-urls` reply as JSON text, written by hand: at 1000 URLs a call, building a
//! `serde_json` value (a map per part, every key and URL copied) cost more than signing. The
//! text is byte for byte what `serde_json` writes for the same members (a test holds it to
//! that), so clients and tests see no change.

use super::SignedParts;
use crate::api::rest::CUT_BY_CREDENTIALS;
use crate::http::json::push_str;

/// The reply of `part-urls`, `{"parts": [{"expires_at", "method", "part_number",
/// "required_headers", "url"}, …]}` (plus `expires_at_cut_by_credentials: true` when cut), the
/// members of each part sorted by name as a `serde_json` object keeps them, and byte for byte
/// what `serde_json` writes for them. Written once into a buffer of its size: what every part
/// shares (its expiry, the method) is written once and copied, each URL is copied once from
/// the signer's buffer.
#[must_use]
pub fn part_urls_reply(signed: &SignedParts<'_>) -> Vec<u8> {
    let head = part_head(signed);
    let mut out = Vec::with_capacity(reply_capacity(&head, signed));
    out.extend_from_slice(br#"{"parts":["#);
    for (i, part) in signed.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&head);
        // Writing a number into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &part.part_number);
        out.extend_from_slice(PART_HEADERS);
        for (j, (name, value)) in part.required_headers().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            push_str(&mut out, name);
            out.push(b':');
            push_str(&mut out, value);
        }
        out.extend_from_slice(PART_URL);
        push_str(&mut out, part.url);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// Between a part's number and its headers.
const PART_HEADERS: &[u8] = br#","required_headers":{"#;
/// Between a part's headers and its URL.
const PART_URL: &[u8] = br#"},"url":"#;

/// What every part of a reply starts with: `{"expires_at":"…"` (the flag when cut)
/// `,"method":"PUT","part_number":`.
fn part_head(signed: &SignedParts<'_>) -> Vec<u8> {
    let mut head = Vec::with_capacity(128);
    head.push(b'{');
    push_str(&mut head, "expires_at");
    head.push(b':');
    push_str(&mut head, signed.expires_at());
    if signed.cut_by_credentials() {
        head.push(b',');
        push_str(&mut head, CUT_BY_CREDENTIALS);
        head.extend_from_slice(b":true");
    }
    head.extend_from_slice(br#","method":"PUT","part_number":"#);
    head
}

/// Bytes the reply takes at most (URLs and checksums never need escaping; anything that
/// does only grows the buffer once).
fn reply_capacity(head: &[u8], signed: &SignedParts<'_>) -> usize {
    // Each part: the head, 5 digits, the two joints, the URL's quotes, `}` and `,`.
    let per_part = head.len() + 5 + PART_HEADERS.len() + PART_URL.len() + 4;
    // `"x-amz-checksum-sha256":"<sum>"`.
    let sums: usize = signed
        .iter()
        .filter_map(|p| p.checksum_sha256)
        .map(|sum| sum.len() + 26)
        .sum();
    12 + per_part * signed.len() + signed.url_bytes() + sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json as value;

    /// The reply `serde_json` would write for the same parts (the shape clients and tests
    /// read), for each combination of flags and headers.
    #[test]
    fn the_part_urls_reply_is_what_serde_json_writes() {
        use draftstore_core::PartToSign;
        use draftstore_signer::PartUrls;
        let sum = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let all = [
            "http://127.0.0.1:8080/_store/d/a%20b?partNumber=1&uploadId=x&X-Amz-Signature=ab",
            "https://s3.example/d/k?partNumber=10000&uploadId=2~a%2B&X-Amz-Signature=cd",
            "odd \"quoted\" \\ \u{1} é",
        ];
        let numbers = [1, 10_000, 42];
        for (cut, with_sums, odd) in (0..8).map(|i| (i & 1 == 1, i & 2 == 2, i & 4 == 4)) {
            let urls = if odd { &all[..] } else { &all[..2] };
            {
                let mut signed = SignedParts {
                    parts: Vec::new(),
                    urls: PartUrls::default(),
                    expires_at: "2026-11-27T13:00:00Z".into(),
                    cut_by_credentials: cut,
                };
                for (i, (url, n)) in urls.iter().zip(numbers).enumerate() {
                    signed.urls.push(url);
                    signed.parts.push(PartToSign {
                        part_number: n,
                        checksum_sha256: (with_sums && i != 1).then_some(sum),
                    });
                }
                let oracle: Vec<serde_json::Value> = signed
                    .iter()
                    .map(|made| {
                        let headers: serde_json::Map<String, serde_json::Value> = made
                            .required_headers()
                            .map(|(n, v)| (n.to_owned(), v.into()))
                            .collect();
                        let mut reply = value!({
                            "part_number": made.part_number,
                            "url": made.url,
                            "method": "PUT",
                            "expires_at": made.expires_at,
                            "required_headers": headers,
                        });
                        if made.cut_by_credentials {
                            reply[CUT_BY_CREDENTIALS] = true.into();
                        }
                        reply
                    })
                    .collect();
                let want = serde_json::to_vec(&value!({ "parts": oracle })).unwrap();
                let got = part_urls_reply(&signed);
                assert_eq!(
                    String::from_utf8(got.clone()).unwrap(),
                    String::from_utf8(want).unwrap()
                );
                if !odd {
                    assert!(reply_capacity(&part_head(&signed), &signed) >= got.len());
                }
            }
        }
    }
}
