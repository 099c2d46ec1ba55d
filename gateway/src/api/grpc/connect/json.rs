//! Reading a Connect JSON request: pbjson's generated serde (proto3's JSON mapping,
//! protobuf.dev/programming-guides/json), after one checking pass that refuses, in our words,
//! what protojson (protobuf-go `encoding/protojson`) refuses and pbjson would accept or word in
//! serde's terms ([`pass`]), and a normalising pass for the forms the spec accepts and pbjson
//! does not.
//!
//! - An integer field takes a number or a string holding exactly one JSON number; "exponent
//!   notation is also accepted": `1.0`, `1e0`, `"1e3"`, `"1"` are read as the integer they
//!   denote. `"+5"`, `"01"`, `" 1"`, `1.5`, a value out of the field's range (`1e400`, `-1`
//!   for a `uint64`, `5e9` for a `uint32`) are refused naming the field.
//! - A map key twice (`"1"` and `"01"` in a `map<uint32, …>` are one key) is refused as
//!   protojson does: "duplicate map key".
//! - A value of the wrong JSON type is refused naming the field, what it takes and what it got.
//! - `null` is the field's default for every field (pbjson takes it only for messages and
//!   `optional` fields): the member is dropped.
//!
//! The usual request is checked once (building nothing) and read once by pbjson. Only when
//! pbjson refuses checked text is it read again into a [`serde_json::Value`], normalised by
//! the request type's descriptor (from [`super::super::reflection::pool`]), and read by pbjson
//! from there.

mod pass;

use crate::api::error::{ApiError, Code};
use crate::api::json_error::{self, cut_to};
use draftstore_proto::prost::Name;
use prost_reflect::Kind;
use serde::de::DeserializeOwned;

/// Reads `json`, the whole body, as a `T`.
///
/// # Errors
/// `MALFORMED_MESSAGE` (invalid_argument) naming the type, and the field when the text is
/// JSON: not JSON, a wrong type, an integer field holding a non-integer or a value out of its
/// range, a map key twice, a field twice.
pub fn read<T: DeserializeOwned + Name>(json: &[u8]) -> Result<T, ApiError> {
    let checked_first = pbjson_may_err(json);
    if !checked_first {
        if let Ok(message) = serde_json::from_slice::<T>(json) {
            return Ok(message);
        }
    }
    let Some(desc) = super::super::reflection::pool()
        .ok()
        .and_then(|pool| pool.get_message_by_name(&T::full_name()))
    else {
        // Never: every request type is in the descriptors (a unit test holds it).
        return serde_json::from_slice(json).map_err(|e| malformed::<T>(&clear(&e, blank(json))));
    };
    pass::pass(&desc, json, false).map_err(|why| malformed::<T>(&why))?;
    if checked_first {
        if let Ok(message) = serde_json::from_slice::<T>(json) {
            return Ok(message);
        }
    }
    // Checked text pbjson refuses holds forms it does not read (an integer in exponent form or
    // as a fraction, `null`), or a field twice: read again, normalised.
    match pass::pass(&desc, json, true).map_err(|why| malformed::<T>(&why))? {
        Some(value) => serde_path_to_error::deserialize(value)
            .map_err(|e| malformed::<T>(&at(&e.path().to_string(), clear(e.inner(), false)))),
        // Never: a body of `null` is refused by the pass.
        None => Err(malformed::<T>("expected a JSON object")),
    }
}

/// Whether pbjson could accept in `json` what protojson refuses, so the checking pass must
/// come first: a nested object (a map, which could name a key twice), a string starting with
/// `+` or a leading zero (`"+5"`, `"01"`, `"-01"`: Rust's `str::parse`, which pbjson uses for
/// integers in strings and integer map keys, takes them), or a `\u` escape (which could spell
/// either). Otherwise pbjson accepts only what protojson does, and the pass runs only to word
/// a refusal. False positives (`"0123.txt"` as a name) cost only the pass.
fn pbjson_may_err(json: &[u8]) -> bool {
    let mut objects = 0u32;
    for (i, &b) in json.iter().enumerate() {
        let before = |n: usize| i.checked_sub(n).and_then(|at| json.get(at)).copied();
        let digit_after = json.get(i + 1).is_some_and(u8::is_ascii_digit);
        let risky = match b {
            b'{' => {
                objects += 1;
                objects > 1
            }
            b'+' => before(1) == Some(b'"'),
            b'u' => before(1) == Some(b'\\'),
            b'0' => {
                digit_after
                    && (before(1) == Some(b'"')
                        || (before(1) == Some(b'-') && before(2) == Some(b'"')))
            }
            _ => false,
        };
        if risky {
            return true;
        }
    }
    false
}

/// serde_json's refusal `e` in our words (`json_error`'s, the REST routes' too), without its
/// line and column (the body is one line of JSON to the client); `blank`: the body holds
/// nothing but whitespace. Cut to 256 characters: a data error's text may quote the body.
fn clear(e: &serde_json::Error, blank: bool) -> String {
    if let Some(not_json) = json_error::not_json(e, blank) {
        return not_json.what().to_owned();
    }
    let text = e.to_string();
    // serde_json appends " at line N column M" to every message.
    let text = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    cut_to(&json_error::data(text), 256)
}

/// Whether `json` holds nothing but whitespace (an empty body, told as such).
fn blank(json: &[u8]) -> bool {
    json.iter().all(u8::is_ascii_whitespace)
}

/// `MALFORMED_MESSAGE` for a `T` that could not be read because of `why`.
fn malformed<T: Name>(why: &str) -> ApiError {
    ApiError::new(
        Code::MalformedMessage,
        format!("not a JSON {}: {why}", T::full_name()),
    )
}

/// `what` about the field at `path` (`.` is the message itself).
fn at(path: &str, what: impl std::fmt::Display) -> String {
    if path == "." || path.is_empty() {
        what.to_string()
    } else {
        // A deep path (thousands of `[0]`) is cut: its start names the field.
        format!("{}: {what}", cut_to(path, 128))
    }
}

/// The range of an integer `kind`, or `None` for any other kind.
fn range(kind: &Kind) -> Option<(i128, i128)> {
    Some(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => (i128::from(i32::MIN), i128::from(i32::MAX)),
        Kind::Uint32 | Kind::Fixed32 => (0, i128::from(u32::MAX)),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => (i128::from(i64::MIN), i128::from(i64::MAX)),
        Kind::Uint64 | Kind::Fixed64 => (0, i128::from(u64::MAX)),
        _ => return None,
    })
}

/// The integer a string holding a JSON number denotes, exactly (`"1e3"`, `"1.0"`, `"-7"`);
/// `None` when it is no JSON number or not a whole one. Far past every range (`"1e400"`)
/// it is `i128::MAX`, so the range check refuses it.
fn exact(s: &str) -> Option<i128> {
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let exp = unsigned.get(at + 1..)?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Saturated: a huge exponent is out of range (or, negative, not an integer).
            let exp = exp.parse::<i64>().unwrap_or(if exp.starts_with('-') {
                i64::MIN / 2
            } else {
                i64::MAX / 2
            });
            (unsigned.get(..at)?, exp)
        }
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let well_formed = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && (whole == "0" || !whole.starts_with('0'))
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(mantissa.contains('.') && fraction.is_empty());
    if !well_formed {
        return None;
    }
    // The digits as one integer, scaled by 10^scale.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let trimmed = digits.trim_end_matches('0');
    let zeros = i64::try_from(digits.len() - trimmed.len()).ok()?;
    let scale = exponent
        .saturating_sub(i64::try_from(fraction.len()).ok()?)
        .saturating_add(zeros);
    if trimmed.is_empty() {
        return Some(0);
    }
    if scale < 0 {
        return None;
    }
    let far = i128::MAX;
    // More than 39 digits is past i128 (and every field).
    let len = i64::try_from(trimmed.len()).ok()?;
    if len.saturating_add(scale) > 39 {
        return Some(if negative { -far } else { far });
    }
    let mut n: i128 = trimmed.parse().ok()?;
    for _ in 0..scale {
        n = match n.checked_mul(10) {
            Some(n) => n,
            None => return Some(if negative { -far } else { far }),
        };
    }
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use draftstore_proto::draft::v1 as pb;

    #[test]
    fn strings_holding_json_numbers_are_read_exactly() {
        for (s, n) in [
            ("1", 1),
            ("1e3", 1000),
            ("1E+3", 1000),
            ("1.0", 1),
            ("1.50e1", 15),
            ("-7", -7),
            ("0", 0),
            ("0.0e5", 0),
            ("12000e-3", 12),
            ("18446744073709551615", i128::from(u64::MAX)),
        ] {
            assert_eq!(exact(s), Some(n), "{s}");
        }
        for bad in [
            "", "1.5", "1e-1", " 1", "1 ", "01", "1.", ".5", "+1", "0x10", "1e", "--1", "NaN",
        ] {
            assert_eq!(exact(bad), None, "{bad:?}");
        }
        assert_eq!(exact("1e400"), Some(i128::MAX));
        assert_eq!(exact("-1e400"), Some(-i128::MAX));
        assert_eq!(exact("1e-400"), None);
    }

    #[test]
    fn integers_in_every_form_are_read_and_others_refused_naming_the_field() {
        for json in [
            r#"{"constraints": {"contentLength": 1000}}"#,
            r#"{"constraints": {"contentLength": 1000.0}}"#,
            r#"{"constraints": {"contentLength": 1e3}}"#,
            r#"{"constraints": {"contentLength": "1e3"}}"#,
            r#"{"constraints": {"content_length": "1000"}}"#,
        ] {
            let read: pb::GetUploadUrlRequest = read(json.as_bytes()).unwrap();
            assert_eq!(
                read.constraints.unwrap().content_length,
                Some(1000),
                "{json}"
            );
        }
        let parts: pb::GetPartUploadUrlsRequest =
            read(br#"{"partNumbers": [1.0, "2", 3e0, "4e0"]}"#).unwrap();
        assert_eq!(parts.part_numbers, [1, 2, 3, 4]);
        for (json, names) in [
            (
                r#"{"constraints": {"contentLength": 1.5}}"#,
                "constraints.contentLength",
            ),
            (
                r#"{"constraints": {"contentLength": 1e400}}"#,
                "constraints.contentLength",
            ),
            (
                r#"{"constraints": {"contentLength": "1e400"}}"#,
                "constraints.contentLength",
            ),
            (
                r#"{"constraints": {"contentLength": -1}}"#,
                "constraints.contentLength",
            ),
            (
                r#"{"constraints": {"contentLength": "x"}}"#,
                "constraints.contentLength",
            ),
            (
                r#"{"objectName": 5, "constraints": {"contentLength": 1.0}}"#,
                "objectName",
            ),
        ] {
            let e = read::<pb::GetUploadUrlRequest>(json.as_bytes()).unwrap_err();
            assert_eq!(e.code, Code::MalformedMessage, "{json}");
            assert!(e.message.contains(names), "{json}: {}", e.message);
            assert!(!e.message.contains("untagged"), "{json}: {}", e.message);
        }
        let e = read::<pb::GetPartUploadUrlsRequest>(br#"{"partNumbers": [1, 5e9]}"#).unwrap_err();
        assert!(e.message.contains("partNumbers[1]"), "{}", e.message);
    }

    #[test]
    fn null_is_the_default_for_every_field() {
        let read: pb::GetUploadUrlRequest = read(
            br#"{"objectName": null, "constraints": {"contentType": null, "metadata": null, "contentLength": null}}"#,
        )
        .unwrap();
        assert_eq!(read.object_name, "");
        let constraints = read.constraints.unwrap();
        assert!(constraints.metadata.is_empty() && constraints.content_length.is_none());
        let parts: pb::GetPartUploadUrlsRequest =
            super::read(br#"{"objectName": "a", "partNumbers": null}"#).unwrap();
        assert!(parts.part_numbers.is_empty());
    }

    #[test]
    fn not_json_and_fields_twice_stay_refused() {
        for bad in [
            &b"{"[..],
            b"{} x",
            b"",
            br#"{"objectName": "a", "objectName": "b", "x": 1.0}"#,
        ] {
            let e = read::<pb::GetUploadUrlRequest>(bad).unwrap_err();
            assert_eq!(e.code, Code::MalformedMessage);
        }
        let e = read::<pb::GetUploadUrlRequest>(br#"{"objectName": "a", "objectName": "b"}"#)
            .unwrap_err();
        assert!(
            e.message
                .contains("the field objectName is given more than once"),
            "{}",
            e.message
        );
        // The duplicate is refused when pbjson's first error is another one (an exponent
        // form it does not read), and inside a nested message, naming where.
        for (bad, names) in [
            (
                &br#"{"constraints":{"contentLength":1e3},"objectName":"a","objectName":"b"}"#[..],
                "the field objectName is given more than once",
            ),
            (
                br#"{"objectName":"a","constraints":{"contentLength":"1e3","contentLength":2}}"#,
                "constraints: the field contentLength is given more than once",
            ),
        ] {
            let e = read::<pb::GetUploadUrlRequest>(bad).unwrap_err();
            assert_eq!(e.code, Code::MalformedMessage);
            assert!(e.message.contains(names), "{}", e.message);
        }
    }

    #[test]
    fn integer_map_keys_are_plain_decimal_in_range() {
        let ok: pb::GetPartUploadUrlsRequest =
            read(br#"{"objectName": "a", "checksumsSha256": {"1": "x", "10000": "y"}}"#)
                .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(ok.checksums_sha256.len(), 2);
        for key in ["1e0", "-1", "1.0", "x", "4294967296", ""] {
            let json = format!(r#"{{"checksumsSha256": {{"{key}": "x"}}}}"#);
            let e = read::<pb::GetPartUploadUrlsRequest>(json.as_bytes()).unwrap_err();
            assert!(
                e.message.contains("plain decimal, 0 to 4294967295"),
                "{key}: {}",
                e.message
            );
            assert!(
                e.message.contains("checksumsSha256"),
                "{key}: {}",
                e.message
            );
            assert!(!e.message.contains("invalid digit"), "{key}: {}", e.message);
        }
    }

    #[test]
    fn refusals_are_worded_without_serde_positions_or_wrong_values() {
        let deep = format!(r#"{{"unknown": {}"#, "[".repeat(5000));
        let long = format!(
            r#"{{"constraints": {{"contentLength": "{}"}}}}"#,
            "9".repeat(60_000)
        );
        for (json, wants) in [
            (
                r#"{"constraints": {"contentLength": 1e400}}"#.to_owned(),
                "constraints.contentLength: 1e400 is out of range",
            ),
            (
                r#"{"constraints": {"contentLength": "1e400"}}"#.to_owned(),
                "\"1e400\" is out of range",
            ),
            (long, "out of range"),
            (r#"{"objectName": "\ud800"}"#.to_owned(), "surrogate"),
            (r#"{"objectName": "\ud800\u0041"}"#.to_owned(), "surrogate"),
            (String::new(), "the body is empty, expected a JSON object"),
            ("  ".to_owned(), "the body is empty, expected a JSON object"),
            (
                r#"{"objectName": "a""#.to_owned(),
                "the body ends before its JSON value does",
            ),
            (r#"{"source": 2}"#.to_owned(), "source"),
            (deep, "the JSON value nests deeper than 128"),
            ("{} x".to_owned(), "text follows the JSON value"),
        ] {
            let e = match json.contains("source") {
                true => read::<pb::GetDownloadUrlRequest>(json.as_bytes()).unwrap_err(),
                false => read::<pb::GetUploadUrlRequest>(json.as_bytes()).unwrap_err(),
            };
            let shown = cut_to(&json, 60);
            assert!(e.message.contains(wants), "{shown}: {}", e.message);
            for serde in [
                "line 1",
                "column",
                "expected expected",
                "170141183460469231731687303715884105727",
            ] {
                assert!(!e.message.contains(serde), "{shown}: {}", e.message);
            }
            assert!(e.message.len() < 600, "{shown}: {}", e.message.len());
        }
    }
}
