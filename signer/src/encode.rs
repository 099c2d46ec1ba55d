//! SigV4 URI encoding: RFC 3986 unreserved characters stay, every other byte becomes `%XX`
//! (uppercase hex). S3 encodes object keys exactly once and keeps `/`.

use std::borrow::Cow;

/// True for `A-Z a-z 0-9 - _ . ~`, the bytes SigV4 never encodes.
#[inline]
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

#[inline]
const fn is_kept(b: u8, keep_slash: bool) -> bool {
    is_unreserved(b) || (keep_slash && b == b'/')
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
        push_percent(out, b);
        run_start = i + 1;
    }
    out.push_str(input.get(run_start..).unwrap_or_default());
}

#[inline]
fn push_percent(out: &mut String, b: u8) {
    out.push('%');
    out.push(hex_upper(b >> 4));
    out.push(hex_upper(b & 0x0f));
}

/// The uppercase hex digit of a nibble (`n < 16`).
#[inline]
fn hex_upper(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'A' - 10 + n })
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

/// Lowercase hex of a 32-byte digest, on the stack.
pub(crate) struct Hex32([u8; 64]);

impl Hex32 {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut buf = [b'0'; 64];
        // Only fails when the lengths disagree; digests are always 32 bytes.
        let _ = hex::encode_to_slice(bytes, &mut buf);
        Self(buf)
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
