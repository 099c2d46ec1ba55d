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
            return format!("expected {}, found {}", takes(expected), got(found));
        }
    }
    serde.to_owned()
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
        let cut: String = s.chars().take(40).collect();
        let more = if s.chars().nth(40).is_some() {
            "…"
        } else {
            ""
        };
        return format!("a string ({cut}{more})");
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
