//! serde_json's decoding errors told in our words for the REST routes (ours and the original
//! DraftStore's): what a field takes and what it got (`expected a string, found a number (5)`)
//! instead of serde's terms (`invalid type: integer `5`, expected a string`, `u64`,
//! `struct UploadUrlBody`), and where malformed JSON breaks (`line 1, column 15`) instead of
//! `EOF while parsing a value at line 1 column 15`. Messages serde does not word that way
//! (`missing field`, `unknown field`, our own deserializers' texts) pass through.

/// A data error's text (serde's, its ` at line …` already cut) in our words.
#[must_use]
pub fn data(serde: &str) -> String {
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
        return format!(
            "the field {} is given more than once",
            field.trim_matches('`')
        );
    }
    serde.to_owned()
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
    // Quoted as sent, not Rust-escaped: the log escapes what it must, its own way.
    format!("\"{}\"", cut(found.trim_matches('`')))
}

/// `text`'s first 40 characters, `…` marking a cut.
pub(crate) fn cut(text: &str) -> String {
    let mut chars = text.chars();
    let mut cut: String = chars.by_ref().take(40).collect();
    if chars.next().is_some() {
        cut.push('…');
    }
    cut
}

/// What a malformed JSON text did wrong, `serde` being serde_json's message with its
/// ` at line …` cut, `eof` whether the text ended too early, at `line` and `column` (1-based).
#[must_use]
pub fn syntax(serde: &str, eof: bool, line: usize, column: usize) -> String {
    let what = if eof {
        "the body ends before its JSON value does"
    } else {
        match serde {
            "expected value" => "a JSON value was expected",
            "trailing characters" => "text follows the JSON value",
            "expected ident" => "a JSON literal (true, false or null) was expected",
            "key must be a string" => "an object's key must be a string",
            "expected `:`" => "a `:` was expected after the object's key",
            "expected `,` or `}`" => "a `,` or `}` was expected in the object",
            "expected `,` or `]`" => "a `,` or `]` was expected in the array",
            "invalid escape" => "a string has an escape JSON does not define",
            "unexpected end of hex escape" | "invalid unicode code point" => {
                "a string has a \\u escape that is not four hex digits of a character"
            }
            "lone leading surrogate in hex escape" => {
                "a string has a \\u surrogate escape without its pair"
            }
            "control character (\\u0000-\\u001F) found while parsing a string" => {
                "a string has a control character that must be escaped"
            }
            "invalid number" => "a number is malformed",
            "number out of range" => "a number is out of range",
            "recursion limit exceeded" => "the JSON value nests too deeply",
            other => other,
        }
    };
    format!("malformed JSON at line {line}, column {column}: {what}")
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
        assert_eq!(
            syntax("EOF while parsing a value", true, 1, 15),
            "malformed JSON at line 1, column 15: the body ends before its JSON value does"
        );
        assert_eq!(
            syntax("trailing characters", false, 2, 3),
            "malformed JSON at line 2, column 3: text follows the JSON value"
        );
    }
}
