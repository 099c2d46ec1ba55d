//! The little JSON a POST policy needs (RFC 8259), without serde: a writer for strings in the
//! byte-exact form Python's `json.dumps` gives (so our policies equal botocore's), and a strict
//! parser for the policy document (objects, arrays, strings, non-negative integers; nesting at
//! most [`MAX_DEPTH`] deep, so no input can exhaust the stack).

use std::fmt::Write as _;

/// Nesting allowed in a policy: document → `conditions` array → one condition.
pub(crate) const MAX_DEPTH: usize = 3;

/// Appends `text` as a JSON string: `"` and `\` escaped, `\n \r \t \b \f` short, other
/// controls and every non-ASCII character as lowercase `\uXXXX` (UTF-16, as `json.dumps`).
pub(crate) fn write_str(out: &mut String, text: &str) {
    out.push('"');
    // Runs of printable ASCII other than `"` and `\` are copied whole (the usual case: the
    // whole text); only the rest is escaped one character at a time.
    let mut rest = text;
    while let Some(at) = rest.bytes().position(needs_escape) {
        let (plain, tail) = rest.split_at_checked(at).unwrap_or((rest, ""));
        out.push_str(plain);
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            escape_char(out, c);
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

/// Per byte: escaped (1) or copied as is (0): everything but printable ASCII, `"` and `\\`.
/// A table keeps the scan to one load per byte.
#[allow(clippy::indexing_slicing)]
const ESCAPED: [u8; 256] = {
    let mut table = [1_u8; 256];
    let mut b = b' ';
    while b <= b'~' {
        table[b as usize] = 0;
        b += 1;
    }
    table[b'"' as usize] = 1;
    table[b'\\' as usize] = 1;
    table
};

fn needs_escape(b: u8) -> bool {
    ESCAPED.get(usize::from(b)) != Some(&0)
}

fn escape_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        ' '..='~' => out.push(c),
        _ => {
            let mut units = [0_u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
}

/// A parsed JSON value, limited to what a policy holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Str(String),
    /// A non-negative integer that fits `u64` (`content-length-range` bounds).
    Num(u64),
    Arr(Vec<Value>),
    /// Members in document order; duplicate names are refused.
    Obj(Vec<(String, Value)>),
}

/// Parses one JSON value filling all of `text` (white space around it allowed).
///
/// # Errors
/// A short static reason: bad syntax, a literal other than a string, integer, array or object,
/// a number with sign, fraction or exponent or over `u64`, nesting over [`MAX_DEPTH`], a
/// duplicate object member, a lone surrogate, or trailing text.
pub(crate) fn parse(text: &str) -> Result<Value, &'static str> {
    let mut p = Parser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != p.bytes.len() {
        return Err("trailing text after the JSON document");
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, want: u8, why: &'static str) -> Result<(), &'static str> {
        self.skip_ws();
        if self.next() == Some(want) {
            Ok(())
        } else {
            Err(why)
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, &'static str> {
        self.skip_ws();
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'0'..=b'9') => self.number().map(Value::Num),
            Some(b'[' | b'{') if depth >= MAX_DEPTH => Err("JSON nested too deeply"),
            Some(b'[') => self.array(depth + 1),
            Some(b'{') => self.object(depth + 1),
            Some(_) => Err("expected a string, integer, array or object"),
            None => Err("unexpected end of JSON"),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, &'static str> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Arr(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.next() {
                Some(b',') => {}
                Some(b']') => return Ok(Value::Arr(items)),
                _ => return Err("expected ',' or ']' in an array"),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, &'static str> {
        self.pos += 1;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Obj(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err("expected a member name");
            }
            let name = self.string()?;
            self.expect(b':', "expected ':' after a member name")?;
            let value = self.value(depth)?;
            if members.iter().any(|(n, _)| *n == name) {
                return Err("duplicate member in an object");
            }
            members.push((name, value));
            self.skip_ws();
            match self.next() {
                Some(b',') => {}
                Some(b'}') => return Ok(Value::Obj(members)),
                _ => return Err("expected ',' or '}' in an object"),
            }
        }
    }

    fn number(&mut self) -> Result<u64, &'static str> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err("numbers must be integers");
        }
        let digits = self.bytes.get(start..self.pos).unwrap_or_default();
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return Err("numbers must not have leading zeros");
        }
        digits.iter().try_fold(0_u64, |n, d| {
            n.checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or("number too large")
        })
    }

    fn string(&mut self) -> Result<String, &'static str> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.next() {
                None => return Err("unterminated string"),
                Some(b'"') => break,
                Some(b'\\') => self.escape(&mut out)?,
                Some(0..=0x1f) => return Err("control character in a string"),
                Some(b) => out.push(b),
            }
        }
        // The input is a &str and escapes add whole characters, so this holds UTF-8.
        String::from_utf8(out).map_err(|_| "invalid UTF-8 in a string")
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), &'static str> {
        let simple = match self.next() {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 8,
            Some(b'f') => 12,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let c = self.unicode()?;
                let mut buf = [0_u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => return Err("invalid escape in a string"),
        };
        out.push(simple);
        Ok(())
    }

    fn unicode(&mut self) -> Result<char, &'static str> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                    return Err("lone surrogate in a string");
                }
                let low = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return Err("lone surrogate in a string");
                }
                0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00)
            }
            0xdc00..=0xdfff => return Err("lone surrogate in a string"),
            _ => first,
        };
        char::from_u32(code).ok_or("invalid \\u escape")
    }

    fn hex4(&mut self) -> Result<u32, &'static str> {
        let mut n = 0;
        for _ in 0..4 {
            let d = self
                .next()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or("invalid \\u escape")?;
            n = n * 16 + d;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(text: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, text);
        out
    }

    #[test]
    fn strings_are_written_as_python_json_dumps_writes_them() {
        assert_eq!(s("a/b c"), r#""a/b c""#);
        assert_eq!(s("q\"\\"), r#""q\"\\""#);
        assert_eq!(
            s("\n\r\t\u{8}\u{c}\u{1}\u{7f}"),
            r#""\n\r\t\b\f\u0001\u007f""#
        );
        assert_eq!(s("été 日本"), r#""\u00e9t\u00e9 \u65e5\u672c""#);
        assert_eq!(s("😀"), r#""\ud83d\ude00""#);
    }

    #[test]
    fn parses_nested_values_and_refuses_what_a_policy_never_holds() {
        let v = parse(" {\"a\": [\"x\", 12, {\"b\": \"\\u00e9\\/\"}]}\r\n").unwrap();
        assert_eq!(
            v,
            Value::Obj(vec![(
                "a".into(),
                Value::Arr(vec![
                    Value::Str("x".into()),
                    Value::Num(12),
                    Value::Obj(vec![("b".into(), Value::Str("é/".into()))]),
                ])
            )])
        );
        for bad in [
            "",
            "{",
            "{\"a\":1,}",
            "[1,]",
            "{\"a\":1,\"a\":2}",
            "[[[[1]]]]",
            "-1",
            "1.5",
            "1e3",
            "01",
            "18446744073709551616",
            "true",
            "null",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "\"a\nb\"",
            "\"\\x\"",
            "{} {}",
            "{1:2}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(parse("18446744073709551615"), Ok(Value::Num(u64::MAX)));
    }

    proptest! {
        #[test]
        fn every_string_survives_write_then_parse(text in any::<String>()) {
            prop_assert_eq!(parse(&s(&text)), Ok(Value::Str(text)));
        }

        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = parse(&text);
        }
    }
}
