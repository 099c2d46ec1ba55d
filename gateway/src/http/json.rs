//! JSON text written straight into one buffer, for the reply of `upload-url`: answered with no
//! storage call, it is the request whose cost shows, and escaping its presigned URL byte by
//! byte was the largest part of encoding it. A string is copied as it is when nothing in it
//! needs escaping (one pass the compiler vectorizes; a presigned URL never needs any) and goes
//! through `serde_json` otherwise, so the text is byte for byte what `serde_json` writes — a
//! property test holds it to that.

/// A JSON object, its members written in the order given.
pub struct Object {
    out: Vec<u8>,
    empty: bool,
}

impl Object {
    /// An object whose text is expected to take about `capacity` bytes.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        Self { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        push_str(&mut self.out, key);
        self.out.push(b':');
    }

    /// A string member.
    #[must_use]
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_str(&mut self.out, value);
        self
    }

    /// A `true` member when `on`; nothing otherwise (an optional flag).
    #[must_use]
    pub fn flag(mut self, key: &str, on: bool) -> Self {
        if on {
            self.key(key);
            self.out.extend_from_slice(b"true");
        }
        self
    }

    /// A member holding an object of strings.
    #[must_use]
    pub fn strings<'a>(
        mut self,
        key: &str,
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        self.key(key);
        let mut inner = Self {
            out: std::mem::take(&mut self.out),
            empty: true,
        };
        inner.out.push(b'{');
        for (k, v) in entries {
            inner = inner.str(k, v);
        }
        self.out = inner.finish();
        self
    }

    /// The text.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

/// Appends `s` as a JSON string to `out`, byte for byte as `serde_json` writes it: copied as it
/// is when nothing in it needs escaping. For replies written by hand around it (`part-urls`).
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    // No short-circuit, so the loop vectorizes.
    let plain = s.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    });
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(serde::Serialize)]
    struct Oracle<'a> {
        a: &'a str,
        #[serde(rename = "key \"quoted\"")]
        b: &'a str,
        map: BTreeMap<&'a str, &'a str>,
        last: &'a str,
    }

    fn ours(o: &Oracle<'_>) -> Vec<u8> {
        Object::with_capacity(8)
            .str("a", o.a)
            .str("key \"quoted\"", o.b)
            .strings("map", o.map.iter().map(|(k, v)| (*k, *v)))
            .str("last", o.last)
            .finish()
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let map = BTreeMap::from([("x-amz-meta-a", "1"), ("content-type", "image/jpeg")]);
        let o = Oracle {
            a: "https://s3.example/draft/k?X-Amz-Signature=ab%2F",
            b: "tab\there \"q\" back\\slash \u{1} é 🐈 \u{7f}",
            map,
            last: "",
        };
        assert_eq!(ours(&o), serde_json::to_vec(&o).unwrap());
        assert_eq!(Object::with_capacity(0).finish(), b"{}");
    }

    proptest! {
        #[test]
        fn any_strings_match_serde_json(a in ".*", b in any::<String>(), k in ".{0,8}", v in any::<String>()) {
            let o = Oracle { a: &a, b: &b, map: BTreeMap::from([(k.as_str(), v.as_str())]), last: &a };
            prop_assert_eq!(ours(&o), serde_json::to_vec(&o).unwrap());
        }
    }
}
