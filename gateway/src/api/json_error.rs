//! serde_json's decoding errors told in our words, for the REST routes (ours and the original
//! DraftStore's) and Connect's JSON alike: what a field takes and what it got (`expected a
//! string, found a number (5)`) instead of serde's terms (`invalid type: integer `5`, expected a
//! string`, `u64`, `struct UploadUrlBody`), and what is wrong with text that is not JSON
//! ([`not_json`]: `the body ends before its JSON value does` instead of `EOF while parsing a
//! value at line 1 column 15`), each caller adding its own context (REST the line and column,
//! Connect the message type). Messages serde does not word that way (`missing field`, `unknown
//! field`, our own deserializers' texts) pass through. Text the client sent is quoted as sent
//! and cut ([`quoted`], [`cut`]), never Rust-escaped.

/// A data error's text (serde's, its ` at line …` already cut) in our words.
#[must_use]
pub fn data(serde: &str) -> String {
    // pbjson's own messages say "expected expected …" (its `expecting` text after serde's).
    let serde = &serde.replace("expected expected", "expected");
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) = serde
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once(", expected "))
        {
            let takes = takes(expected);
            // serde_json reads `1e3` or a number past 64 bits as a float and prints it in
            // another form (`1000.0`, `1.8446744073709552e19`): not echoed, as it was not sent so.
            let got = if found.starts_with("floating point ") {
                if takes.ends_with("integer") {
                    "a number with a fraction or exponent, or out of range".to_owned()
                } else {
                    "a number".to_owned()
                }
            } else {
                got(found)
            };
            return format!("expected {takes}, found {got}");
        }
    }
    if let Some((found, expected)) = serde
        .strip_prefix("unknown variant ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        return format!("expected {}, found {}", one_of(expected), got_text(found));
    }
    if let Some(field) = serde.strip_prefix("duplicate field ") {
        return field_twice(field.trim_matches('`'));
    }
    serde.clone()
}

/// A field given twice in one object (`name` as the client wrote it, cut).
#[must_use]
pub fn field_twice(name: &str) -> String {
    format!("the field {} is given more than once", cut(name))
}

/// serde's list of variants (`` `draft` or `main` ``, `` one of `a`, `b`, `c` ``) in plain words.
fn one_of(expected: &str) -> String {
    let names = expected.strip_prefix("one of ").unwrap_or(expected);
    let names: Vec<&str> = names
        .split(", ")
        .flat_map(|n| n.split(" or "))
        .map(|n| n.trim().trim_matches('`'))
        .filter(|n| !n.is_empty())
        .collect();
    match names.as_slice() {
        [] => "nothing (no value is accepted)".to_owned(),
        [one] => format!("\"{one}\""),
        many => format!("one of {}", many.join(", ")),
    }
}

/// A value serde quotes between backticks, between double quotes, cut to 40 characters.
fn got_text(found: &str) -> String {
    quoted(found.trim_matches('`'))
}

/// Text the client sent, between double quotes, cut to 40 characters: as sent, not
/// Rust-escaped (the log escapes what it must, its own way).
#[must_use]
pub fn quoted(text: &str) -> String {
    format!("\"{}\"", cut(text))
}

/// `text`'s first 40 characters, `…` marking a cut.
#[must_use]
pub fn cut(text: &str) -> String {
    cut_to(text, 40)
}

/// `text`'s first `max` characters, `…` marking a cut.
#[must_use]
pub fn cut_to(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let mut cut: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        cut.push('…');
    }
    cut
}

/// What is wrong with a body that is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotJson {
    /// Nothing but whitespace.
    Empty,
    /// It breaks where serde_json stopped reading: what is wrong there, in our words.
    Broken(&'static str),
}

impl NotJson {
    /// The words for an empty body.
    pub const EMPTY: &'static str = "the body is empty, expected a JSON object";

    /// What is wrong, without where.
    #[must_use]
    pub fn what(&self) -> &'static str {
        match self {
            Self::Empty => Self::EMPTY,
            Self::Broken(what) => what,
        }
    }
}

/// serde_json's refusal `e` of a body as text that is not JSON, classified and worded once for
/// every protocol (REST adds the line and column, Connect the message type); `blank`: the body
/// holds nothing but whitespace. `None` when `e` is no syntax or end-of-input error (a data
/// error: the text is JSON, and [`data`] words it).
#[must_use]
pub fn not_json(e: &serde_json::Error, blank: bool) -> Option<NotJson> {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof if blank => Some(NotJson::Empty),
        Category::Eof => Some(NotJson::Broken("the body ends before its JSON value does")),
        Category::Syntax => {
            let text = e.to_string();
            let serde = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(m, _)| m);
            Some(NotJson::Broken(syntax(serde)))
        }
        Category::Data | Category::Io => None,
    }
}

/// A syntax error's text (serde_json's, its ` at line …` cut) in our words.
fn syntax(serde: &str) -> &'static str {
    match serde {
        "expected value" => "a JSON value was expected",
        "trailing characters" => "text follows the JSON value",
        "expected ident" => "a JSON literal (true, false or null) was expected",
        "key must be a string" => "an object's key must be a string",
        "expected `:`" => "a `:` was expected after the object's key",
        "expected `,` or `}`" => "a `,` or `}` was expected in the object",
        "expected `,` or `]`" => "a `,` or `]` was expected in the array",
        "invalid escape" => "a string has an escape JSON does not define",
        "unexpected end of hex escape"
        | "invalid unicode code point"
        | "lone leading surrogate in hex escape" => {
            "a string has an invalid \\u escape: four hex digits, and a UTF-16 surrogate \
             (\\ud800 to \\udfff) only as a high-low pair"
        }
        "control character (\\u0000-\\u001F) found while parsing a string" => {
            "a string has a control character that must be escaped"
        }
        "invalid number" => "a number is malformed",
        "number out of range" => "a number is out of range",
        "recursion limit exceeded" => "the JSON value nests deeper than 128 arrays or objects",
        "trailing comma" => "a `,` is followed by no value",
        "expected `\"`" => "an object's key was expected",
        _ => "the text is not JSON",
    }
}

/// What serde's `expected` says a field takes, in JSON's terms.
fn takes(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a sequence" | "a tuple" => "an array".to_owned(),
        "a map" => "an object".to_owned(),
        "a borrowed string" => "a string".to_owned(),
        other if other.starts_with("struct ") => "an object".to_owned(),
        other => other.to_owned(),
    }
}

/// What serde's `Unexpected` says was sent, in JSON's terms (a string cut to 40 characters).
fn got(found: &str) -> String {
    let quoted = |s: &str| s.trim_matches('`').to_owned();
    if let Some(n) = found
        .strip_prefix("integer ")
        .or_else(|| found.strip_prefix("floating point "))
    {
        return format!("a number ({})", quoted(n));
    }
    if let Some(b) = found.strip_prefix("boolean ") {
        return quoted(b);
    }
    if let Some(s) = found.strip_prefix("string ") {
        return format!("a string ({})", cut(s));
    }
    match found {
        "unit value" | "null" => "null".to_owned(),
        "sequence" => "an array".to_owned(),
        "map" => "an object".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serdes_words_become_ours() {
        for (serde, ours) in [
            (
                "invalid type: integer `5`, expected a string",
                "expected a string, found a number (5)",
            ),
            (
                "invalid type: string \"12\", expected u64",
                "expected a non-negative integer, found a string (\"12\")",
            ),
            (
                "invalid value: integer `-1`, expected u64",
                "expected a non-negative integer, found a number (-1)",
            ),
            (
                "invalid type: string \"a.txt\", expected struct UploadUrlBody",
                "expected an object, found a string (\"a.txt\")",
            ),
            (
                "invalid type: boolean `true`, expected a string",
                "expected a string, found true",
            ),
            (
                "invalid type: sequence, expected a string",
                "expected a string, found an array",
            ),
            ("missing field `object_name`", "missing field `object_name`"),
            (
                "unknown variant `x`, expected `draft` or `main`",
                "expected one of draft, main, found \"x\"",
            ),
            (
                "duplicate field `object_name`",
                "the field object_name is given more than once",
            ),
            (
                "invalid type: floating point `1000.0`, expected u64",
                "expected a non-negative integer, found a number with a fraction or exponent, or out of range",
            ),
            (
                "invalid type: floating point `1.5`, expected a string",
                "expected a string, found a number",
            ),
        ] {
            assert_eq!(data(serde), ours, "{serde}");
        }
    }

    #[test]
    fn text_that_is_not_json_is_classified_once_for_every_protocol() {
        let refused = |json: &str| {
            let e = serde_json::from_str::<serde_json::Value>(json).unwrap_err();
            not_json(&e, json.trim().is_empty())
        };
        assert_eq!(refused(""), Some(NotJson::Empty));
        assert_eq!(refused(" \n"), Some(NotJson::Empty));
        let deep = "[".repeat(200);
        for (json, what) in [
            (r#"{"a": 1"#, "the body ends before its JSON value does"),
            (r#"{"a": "b"#, "the body ends before its JSON value does"),
            ("{} x", "text follows the JSON value"),
            (
                r#"{"a": tru}"#,
                "a JSON literal (true, false or null) was expected",
            ),
            (r#"{"a": "\ud800"}"#, "surrogate"),
            (r#"{"a": "\ud800\u0041"}"#, "only as a high-low pair"),
            (r#"{"a": "\uZZZZ"}"#, "an escape JSON does not define"),
            (r#"{"a": 1e400}"#, "a number is out of range"),
            (&deep, "nests deeper than 128"),
        ] {
            let what_it_is = refused(json).unwrap();
            assert!(what_it_is.what().contains(what), "{json}: {what_it_is:?}");
        }
        let data = serde_json::from_str::<u8>("300").unwrap_err();
        assert_eq!(not_json(&data, false), None, "a data error is data()'s");
    }

    /// `syntax` matches serde_json's message text, which serde_json does not promise to keep:
    /// every arm is reached here by real input through the serde_json in Cargo.lock, so an
    /// upgrade that rewords one fails this test instead of silently falling back to "not JSON".
    #[test]
    fn every_syntax_arm_is_reached_by_the_serde_json_we_build_with() {
        let deep = "[".repeat(200);
        let number_keyed =
            serde_json::from_str::<std::collections::HashMap<u8, u8>>(r#"{"1x": 1}"#);
        let cases = [
            (r#"{"a": }"#.as_bytes(), "a JSON value was expected"),
            (b"{} x", "text follows the JSON value"),
            (
                br#"{"a": tru}"#,
                "a JSON literal (true, false or null) was expected",
            ),
            (b"{1: 2}", "an object's key must be a string"),
            (br#"{"a" 1}"#, "a `:` was expected after the object's key"),
            (br#"{"a": 1 2}"#, "a `,` or `}` was expected in the object"),
            (b"[1 2]", "a `,` or `]` was expected in the array"),
            (br#""\q""#, "a string has an escape JSON does not define"),
            (br#""\ud800x""#, "a string has an invalid \\u escape"),
            (br#""\ud800\ud800""#, "a string has an invalid \\u escape"),
            (b"\"\xff\"", "a string has an invalid \\u escape"),
            (
                b"\"a\nb\"",
                "a string has a control character that must be escaped",
            ),
            (b"-a", "a number is malformed"),
            (b"1e400", "a number is out of range"),
            (
                deep.as_bytes(),
                "the JSON value nests deeper than 128 arrays or objects",
            ),
            (b"[1,]", "a `,` is followed by no value"),
        ]
        .map(|(json, ours)| {
            let e = serde_json::from_slice::<serde_json::Value>(json).unwrap_err();
            (String::from_utf8_lossy(json).into_owned(), e, ours)
        });
        let keyed = (
            "{\"1x\": 1} as a map keyed by numbers".to_owned(),
            number_keyed.unwrap_err(),
            "an object's key was expected",
        );
        for (json, e, ours) in cases.into_iter().chain([keyed]) {
            let what = not_json(&e, false).map(|n| n.what());
            assert!(
                what.is_some_and(|w| w.starts_with(ours)),
                "{json:?}: serde_json said {e}, we said {what:?}"
            );
        }
    }

    #[test]
    fn text_the_client_sent_is_quoted_as_sent_and_cut() {
        assert_eq!(quoted("a\"b\\"), "\"a\"b\\\"");
        assert_eq!(quoted(&"é".repeat(50)), format!("\"{}…\"", "é".repeat(40)));
        assert_eq!(cut_to("abcdef", 3), "abc…");
        assert_eq!(cut_to("abc", 3), "abc");
        assert_eq!(
            field_twice("objectName"),
            "the field objectName is given more than once"
        );
    }
}
