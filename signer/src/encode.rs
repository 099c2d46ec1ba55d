//! SigV4 URI encoding: RFC 3986 unreserved characters stay, every other byte becomes `%XX`
//! (uppercase hex). S3 encodes object keys exactly once and keeps `/`.

use std::borrow::Cow;

/// True for `A-Z a-z 0-9 - _ . ~`, the bytes SigV4 never encodes.
#[inline]
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Per byte: 1 = kept, 2 = kept inside a path (`/`), 0 = encoded. A table keeps the hot loop to
/// one load per byte. (Evaluated at compile time: an out-of-range index would fail the build,
/// never a request.)
#[allow(clippy::indexing_slicing)]
const KEPT: [u8; 256] = {
    let mut table = [0_u8; 256];
    let mut i = 0;
    while i < 256 {
        // i < 256, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let b = i as u8;
        table[i] = if is_unreserved(b) {
            1
        } else if b == b'/' {
            2
        } else {
            0
        };
        i += 1;
    }
    table
};

/// `%00%01…%FF`: the escape of byte `b` is at `3b..3b+3`.
const ESCAPES: &str = "%00%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13%14%15%16%17%18%19%1A%1B%1C%1D%1E%1F%20%21%22%23%24%25%26%27%28%29%2A%2B%2C%2D%2E%2F%30%31%32%33%34%35%36%37%38%39%3A%3B%3C%3D%3E%3F%40%41%42%43%44%45%46%47%48%49%4A%4B%4C%4D%4E%4F%50%51%52%53%54%55%56%57%58%59%5A%5B%5C%5D%5E%5F%60%61%62%63%64%65%66%67%68%69%6A%6B%6C%6D%6E%6F%70%71%72%73%74%75%76%77%78%79%7A%7B%7C%7D%7E%7F%80%81%82%83%84%85%86%87%88%89%8A%8B%8C%8D%8E%8F%90%91%92%93%94%95%96%97%98%99%9A%9B%9C%9D%9E%9F%A0%A1%A2%A3%A4%A5%A6%A7%A8%A9%AA%AB%AC%AD%AE%AF%B0%B1%B2%B3%B4%B5%B6%B7%B8%B9%BA%BB%BC%BD%BE%BF%C0%C1%C2%C3%C4%C5%C6%C7%C8%C9%CA%CB%CC%CD%CE%CF%D0%D1%D2%D3%D4%D5%D6%D7%D8%D9%DA%DB%DC%DD%DE%DF%E0%E1%E2%E3%E4%E5%E6%E7%E8%E9%EA%EB%EC%ED%EE%EF%F0%F1%F2%F3%F4%F5%F6%F7%F8%F9%FA%FB%FC%FD%FE%FF";

#[inline]
fn is_kept(b: u8, keep_slash: bool) -> bool {
    match KEPT.get(usize::from(b)) {
        Some(1) => true,
        Some(2) => keep_slash,
        _ => false,
    }
}

/// Appends `input` to `out`, encoded. With `keep_slash`, `/` stays (object keys in a path).
pub(crate) fn encode_into(out: &mut String, input: &str, keep_slash: bool) {
    let bytes = input.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if is_kept(b, keep_slash) {
            continue;
        }
        // Runs hold only ASCII bytes, so both ends are char boundaries.
        out.push_str(input.get(run_start..i).unwrap_or_default());
        let at = usize::from(b) * 3;
        out.push_str(ESCAPES.get(at..at + 3).unwrap_or_default());
        run_start = i + 1;
    }
    out.push_str(input.get(run_start..).unwrap_or_default());
}

/// `input` encoded, borrowed when nothing needed encoding.
pub(crate) fn encode(input: &str, keep_slash: bool) -> Cow<'_, str> {
    if input.bytes().all(|b| is_kept(b, keep_slash)) {
        Cow::Borrowed(input)
    } else {
        let mut out = String::with_capacity(input.len() * 3);
        encode_into(&mut out, input, keep_slash);
        Cow::Owned(out)
    }
}

/// Percent-decodes `input` (no `+` to space: SigV4 never produces `+`). `None` when a `%` is not
/// followed by two hex digits or the bytes are not UTF-8.
pub(crate) fn decode(input: &str) -> Option<Cow<'_, str>> {
    if !input.contains('%') {
        return Some(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = hex_value(bytes.next()?)?;
            let lo = hex_value(bytes.next()?)?;
            out.push(hi << 4 | lo);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `000102…ff`: the lowercase hex of byte `b` is at `2b..2b+2`.
const HEX_PAIRS: &[u8; 512] = b"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/// Lowercase hex of a 32-byte digest, on the stack.
pub(crate) struct Hex32([u8; 64]);

impl Hex32 {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut buf = [b'0'; 64];
        for (out, &b) in buf.chunks_exact_mut(2).zip(bytes) {
            let at = usize::from(b) * 2;
            if let Some(pair) = HEX_PAIRS.get(at..at + 2) {
                out.copy_from_slice(pair);
            }
        }
        Self(buf)
    }

    /// Wraps 64 hex characters (test inputs).
    #[cfg(test)]
    pub(crate) fn from_text(text: &str) -> Self {
        let mut buf = [b'0'; 64];
        buf.copy_from_slice(text.as_bytes());
        Self(buf)
    }

    pub(crate) const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unreserved_bytes_stay_and_everything_else_is_uppercase_percent() {
        assert_eq!(encode("AZaz09-_.~", false), "AZaz09-_.~");
        assert_eq!(
            encode("a b+c=d&e%f?g#h", false),
            "a%20b%2Bc%3Dd%26e%25f%3Fg%23h"
        );
        assert_eq!(encode("a/b", false), "a%2Fb");
        assert_eq!(encode("a/b", true), "a/b");
        assert_eq!(encode("ሴ", true), "%E1%88%B4");
        assert_eq!(encode("😀", true), "%F0%9F%98%80");
        assert_eq!(encode("*", true), "%2A");
        let all: String = (0_u8..128).map(char::from).collect();
        let want: String = all
            .bytes()
            .map(|b| {
                if is_unreserved(b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        assert_eq!(encode(&all, false), want);
    }

    #[test]
    fn encode_borrows_when_nothing_changes() {
        assert!(matches!(encode("plain-key.jpg", true), Cow::Borrowed(_)));
        assert!(matches!(encode("with space", true), Cow::Owned(_)));
    }

    #[test]
    fn decode_rejects_broken_escapes_and_invalid_utf8() {
        assert_eq!(decode("%2").as_deref(), None);
        assert_eq!(decode("%zz").as_deref(), None);
        assert_eq!(decode("%FF").as_deref(), None);
        assert_eq!(decode("a%20b+c").as_deref(), Some("a b+c"));
    }

    #[test]
    fn hex32_is_lowercase() {
        let h = Hex32::new(&[0xab; 32]);
        assert_eq!(h.as_str(), "ab".repeat(32));
        let bytes: Vec<u8> = (0..32).map(|i| i * 8 + 1).collect();
        assert_eq!(Hex32::new(&bytes).as_str(), hex::encode(&bytes));
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(s in "\\PC{0,64}", keep in any::<bool>()) {
            let enc = encode(&s, keep);
            prop_assert!(enc.bytes().all(|b| is_unreserved(b) || b == b'%' || b == b'/'));
            let back = decode(&enc);
            prop_assert_eq!(back.as_deref(), Some(s.as_str()));
        }
    }
}
