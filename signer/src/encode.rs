//! SigV4 URI encoding: RFC 3986 unreserved characters stay, every other byte becomes `%XX`
//! (uppercase hex). S3 encodes object keys exactly once and keeps `/`.

use std::borrow::Cow;

/// True for `A-Z a-z 0-9 - _ . ~`, the bytes SigV4 never encodes.
#[inline]
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Per byte: whether SigV4 keeps it as is, outside a path (`[0]`: every byte but the
/// unreserved ones is encoded) and inside one (`[1]`: `/` is kept too). Two plain tables keep
/// the hot loop to one load per byte and no branch on the mode. (Evaluated at compile time:
/// an out-of-range index would fail the build, never a request.)
#[allow(clippy::indexing_slicing)]
const KEPT: [[bool; 256]; 2] = {
    let mut table = [[false; 256]; 2];
    let mut i = 0;
    while i < 256 {
        // i < 256, so the cast is exact.
        #[allow(clippy::cast_possible_truncation)]
        let b = i as u8;
        table[0][i] = is_unreserved(b);
        table[1][i] = is_unreserved(b) || b == b'/';
        i += 1;
    }
    table
};

/// `%XX` (uppercase hex) for each byte value.
#[allow(clippy::indexing_slicing)]
const ESCAPES: [[u8; 3]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut table = [[0_u8; 3]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [b'%', DIGITS[i >> 4], DIGITS[i & 15]];
        i += 1;
    }
    table
};

/// The table of bytes kept for this mode.
#[inline]
const fn kept_table(keep_slash: bool) -> &'static [bool; 256] {
    if keep_slash {
        &KEPT[1]
    } else {
        &KEPT[0]
    }
}

#[inline]
fn is_kept(table: &[bool; 256], b: u8) -> bool {
    // A u8 always indexes a 256-entry table: the compiler drops the check.
    table.get(usize::from(b)).copied().unwrap_or(false)
}

/// Appends `input` to `out`, encoded. With `keep_slash`, `/` stays (object keys in a path).
/// Input that needs no encoding (the usual key or value) is copied in one piece; otherwise
/// the rest is encoded a chunk at a time into a stack buffer and appended in one copy per
/// chunk (many tiny appends cost more than the encoding).
pub(crate) fn encode_into(out: &mut String, input: &str, keep_slash: bool) {
    const CHUNK: usize = 64;
    let table = kept_table(keep_slash);
    let Some(first) = input.bytes().position(|b| !is_kept(table, b)) else {
        out.push_str(input);
        return;
    };
    // Bytes before `first` are ASCII, so `first` is a char boundary.
    let (plain, rest) = input.split_at_checked(first).unwrap_or(("", input));
    out.reserve(plain.len() + rest.len() * 3);
    out.push_str(plain);
    let mut buf = [0_u8; CHUNK * 3];
    for chunk in rest.as_bytes().chunks(CHUNK) {
        let mut n = 0;
        for &b in chunk {
            if is_kept(table, b) {
                if let Some(slot) = buf.get_mut(n) {
                    *slot = b;
                }
                n += 1;
            } else {
                if let (Some(dst), Some(escape)) =
                    (buf.get_mut(n..n + 3), ESCAPES.get(usize::from(b)))
                {
                    dst.copy_from_slice(escape);
                }
                n += 3;
            }
        }
        // Only unreserved ASCII, `/` and `%XX` were written: always UTF-8.
        out.push_str(std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default());
    }
}

/// `input` encoded, borrowed when nothing needed encoding.
pub(crate) fn encode(input: &str, keep_slash: bool) -> Cow<'_, str> {
    let table = kept_table(keep_slash);
    if input.bytes().all(|b| is_kept(table, b)) {
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

/// The two lowercase hex digits of each byte, by byte value.
#[allow(clippy::indexing_slicing)]
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0_u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [DIGITS[i >> 4], DIGITS[i & 15]];
        i += 1;
    }
    table
};

/// Lowercase hex of a 32-byte digest, on the stack.
pub(crate) struct Hex32([u8; 64]);

impl Hex32 {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut buf = [b'0'; 64];
        for (out, &b) in buf.chunks_exact_mut(2).zip(bytes) {
            // A u8 always indexes the 256 pairs: the compiler drops the check.
            if let Some(pair) = HEX_PAIRS.get(usize::from(b)) {
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

    /// The encoding byte by byte, as the SigV4 documentation states it (`/` encoded too): an
    /// unreserved byte (`A-Z a-z 0-9 - _ . ~`, RFC 3986) stays, every other is `%XX` in
    /// uppercase hex. Written apart from the code under test, `is_unreserved` included.
    fn reference(input: &str) -> String {
        input
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

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
        assert_eq!(encode(&all, false), reference(&all));
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

    #[test]
    fn long_input_is_encoded_across_chunks() {
        let input = format!("{}é{} /~", "a".repeat(63), "b c".repeat(70));
        assert_eq!(encode(&input, false), reference(&input));
        let mut out = String::from("x");
        encode_into(&mut out, &"%".repeat(200), true);
        assert_eq!(out, format!("x{}", "%25".repeat(200)));
    }

    proptest! {
        #[test]
        fn encode_is_the_reference(s in "\\PC{0,200}") {
            prop_assert_eq!(encode(&s, false), reference(&s));
        }

        #[test]
        fn decode_inverts_encode(s in "\\PC{0,64}", keep in any::<bool>()) {
            let enc = encode(&s, keep);
            prop_assert!(enc.bytes().all(|b| is_unreserved(b) || b == b'%' || b == b'/'));
            let back = decode(&enc);
            prop_assert_eq!(back.as_deref(), Some(s.as_str()));
        }
    }
}
