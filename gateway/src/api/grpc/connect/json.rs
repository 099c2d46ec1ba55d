//! Reading a Connect JSON request: pbjson's generated serde (proto3's JSON mapping,
//! protobuf.dev/programming-guides/json) with a thin normalising pass for the forms the spec
//! accepts and pbjson does not.
//!
//! - An integer field takes a number or a string, "exponent notation is also accepted": `1.0`,
//!   `1e0`, `"1e3"`, `"1"` are read as the integer they denote (pbjson reads only plain
//!   integers and integer strings). A value that is not an integer (`1.5`), or out of the
//!   field's range (`1e400`, `-1` for a `uint64`, `5e9` for a `uint32`), is refused naming
//!   the field.
//! - `null` is the field's default for every field (pbjson takes it only for messages and
//!   `optional` fields): the member is dropped.
//!
//! The usual request is read once, straight by pbjson, at no extra cost. Only when pbjson
//! refuses it is the text read again as a [`serde_json::Value`], walked once by the request
//! type's descriptor (from [`super::super::reflection::pool`]) and read by pbjson again; every
//! error then names the field it is about (`constraints.contentLength: …`), never serde's
//! internals.

use crate::api::error::{ApiError, Code};
use draftstore_proto::prost::Name;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Reads `json`, the whole body, as a `T`.
///
/// # Errors
/// `MALFORMED_MESSAGE` (invalid_argument) naming the type, and the field when the text is
/// JSON: not JSON, a wrong type, an integer field holding a non-integer or a value out of its
/// range, a field twice.
pub fn read<T: DeserializeOwned + Name>(json: &[u8]) -> Result<T, ApiError> {
    let first = match serde_json::from_slice::<T>(json) {
        Ok(message) => return Ok(message),
        Err(e) => e,
    };
    // Text that is not JSON, or names a member twice (which a `Value` would hide by keeping
    // the last), is refused by the second reading, naming where.
    let mut text = serde_json::Deserializer::from_slice(json);
    let Unique(mut value) = serde_path_to_error::deserialize(&mut text)
        .map_err(|e| malformed::<T>(&at(&e.path().to_string(), clear(e.inner()))))?;
    text.end().map_err(|e| malformed::<T>(&clear(&e)))?;
    match super::super::reflection::pool()
        .ok()
        .and_then(|pool| pool.get_message_by_name(&T::full_name()))
    {
        Some(desc) => {
            message(&desc, &mut value, &mut String::new()).map_err(|e| malformed::<T>(&e))?
        }
        // Never: every request type is in the descriptors (a unit test holds it).
        None => return Err(malformed::<T>(&clear(&first))),
    }
    serde_path_to_error::deserialize(value)
        .map_err(|e| malformed::<T>(&at(&e.path().to_string(), clear(e.inner()))))
}

/// A JSON value whose objects each name a member at most once (RFC 8259 §4: names SHOULD be
/// unique; a repeated one is refused rather than the last silently winning).
struct Unique(Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

/// Builds a [`Value`] as serde_json's own visitor does, refusing a repeated member name.
struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // Never NaN or infinite from JSON text; `Null` as serde_json's own visitor gives.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d).map(|Unique(v)| v)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "field {:?} is given twice; each field appears at most once",
                    cut(&key, 64)
                )));
            }
            let Unique(value) = map.next_value()?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

/// serde_json's refusal `e` in our words: the problem and the expected form, without its
/// line and column (the body is one line of JSON to the client) or serde's doubled phrasing.
/// The one place where JSON refusals are worded.
fn clear(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    // serde_json appends " at line N column M" to every message.
    let text = match text.rfind(" at line ") {
        Some(cut) => text.get(..cut).unwrap_or(&text),
        None => &text,
    };
    match e.classify() {
        Category::Eof if text.contains("EOF while parsing a value") && e.column() == 0 => {
            "the body is empty: a message is a JSON object ({} for all defaults)".to_owned()
        }
        Category::Eof => "the JSON ends before its value does".to_owned(),
        Category::Syntax if text.starts_with("number out of range") => {
            "a number past the range of every field (an integer field takes -2^63 to 2^64-1)"
                .to_owned()
        }
        Category::Syntax if text.contains("surrogate") || text.contains("hex escape") => {
            "a string holds an invalid \\u escape: four hex digits, and a UTF-16 surrogate \
             (\\ud800 to \\udfff) only as a high-low pair"
                .to_owned()
        }
        Category::Syntax if text.starts_with("recursion limit exceeded") => {
            "the JSON nests deeper than 128 arrays or objects".to_owned()
        }
        Category::Syntax => format!("not JSON: {text}"),
        _ if text.starts_with("duplicate field") => {
            let name = text.split('`').nth(1).unwrap_or("?");
            format!("field {name:?} is given twice; each field appears at most once")
        }
        _ => cut(&text.replace("expected expected", "expected"), 256),
    }
}

/// `text` cut to at most `max` bytes on a character boundary, `…` marking a cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let end = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", text.get(..end).unwrap_or_default())
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
        format!("{}: {what}", cut(path, 128))
    }
}

/// Normalises the members of `value`, a message of type `desc` at `path`: `null` members
/// dropped, integer fields made plain integers. A `value` that is not an object is left for
/// pbjson to refuse.
fn message(desc: &MessageDescriptor, value: &mut Value, path: &mut String) -> Result<(), String> {
    let Value::Object(members) = value else {
        return Ok(());
    };
    members.retain(|_, v| !v.is_null());
    for (key, member) in members.iter_mut() {
        let field = desc
            .get_field_by_json_name(key)
            .or_else(|| desc.get_field_by_name(key));
        // Unknown fields are skipped by pbjson.
        let Some(field) = field else { continue };
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        let done = self::field(&field, member, path);
        path.truncate(len);
        done?;
    }
    Ok(())
}

/// Normalises `value`, the value of `field` at `path`: each element of a list, each value of
/// a map (its keys are strings and stay so), or the one value.
fn field(field: &FieldDescriptor, value: &mut Value, path: &mut String) -> Result<(), String> {
    let kind = field.kind();
    if field.is_map() {
        let Kind::Message(entry) = &kind else {
            return Ok(());
        };
        let kind = entry.map_entry_value_field().kind();
        let key_kind = entry.map_entry_key_field().kind();
        if let Value::Object(entries) = value {
            for (key, v) in entries.iter_mut() {
                let len = path.len();
                path.push_str(&format!("[{:?}]", cut(key, 40)));
                if let Some((min, max)) = range(&key_kind) {
                    // A key is the integer in plain decimal (proto3 JSON: the key's value
                    // as a string), not in a number's other forms.
                    let plain = key.strip_prefix('-').unwrap_or(key);
                    let n = (!plain.is_empty() && plain.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| key.parse::<i128>().ok())
                        .flatten()
                        .filter(|n| (min..=max).contains(n));
                    if n.is_none() {
                        let e = format!(
                            "{path}: a key of this map is an integer in plain decimal, {min} to \
                             {max}"
                        );
                        path.truncate(len);
                        return Err(e);
                    }
                }
                let done = element(&kind, v, path);
                path.truncate(len);
                done?;
            }
        }
        return Ok(());
    }
    if field.is_list() {
        if let Value::Array(items) = value {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let done = element(&kind, item, path);
                path.truncate(len);
                done?;
            }
        }
        return Ok(());
    }
    element(&kind, value, path)
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

/// Normalises one value of `kind` at `path`.
fn element(kind: &Kind, value: &mut Value, path: &mut String) -> Result<(), String> {
    if let Kind::Message(desc) = kind {
        return message(desc, value, path);
    }
    let Some(range) = range(kind) else {
        return Ok(());
    };
    let n = match &*value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().and_then(integral))
            .ok_or_else(|| format!("{path}: {n} is not an integer"))?,
        Value::String(s) => exact(s).ok_or_else(|| {
            format!("{path}: {s:?} is not an integer (a number, or a string holding one)")
        })?,
        other => {
            return Err(format!(
                "{path}: expected an integer (a number, or a string holding one), not {other}"
            ))
        }
    };
    if n < range.0 || n > range.1 {
        let sent = match &*value {
            Value::String(s) => format!("{:?}", cut(s, 40)),
            other => cut(&other.to_string(), 40),
        };
        return Err(format!(
            "{path}: {sent} is out of range ({} to {})",
            range.0, range.1
        ));
    }
    *value = if n < 0 {
        Value::from(i64::try_from(n).map_err(|_| format!("{path}: out of range"))?)
    } else {
        Value::from(u64::try_from(n).map_err(|_| format!("{path}: out of range"))?)
    };
    Ok(())
}

/// An `f64` that is a whole number, as an integer (out of `i128`'s range: `None`, later out of
/// every field's range).
fn integral(f: f64) -> Option<i128> {
    // 2^100: past every field's range, and exactly representable.
    const FAR: f64 = 1_267_650_600_228_229_401_496_703_205_376.0;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < FAR).then_some(f as i128)
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
            e.message.contains("\"objectName\" is given twice"),
            "{}",
            e.message
        );
        // The duplicate is refused when pbjson's first error is another one (an exponent
        // form it does not read), and inside a nested message, naming where.
        for (bad, names) in [
            (
                &br#"{"constraints":{"contentLength":1e3},"objectName":"a","objectName":"b"}"#[..],
                "\"objectName\" is given twice",
            ),
            (
                br#"{"objectName":"a","constraints":{"contentLength":"1e3","contentLength":2}}"#,
                "constraints: field \"contentLength\" is given twice",
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
                "past the range",
            ),
            (
                r#"{"constraints": {"contentLength": "1e400"}}"#.to_owned(),
                "\"1e400\" is out of range",
            ),
            (long, "out of range"),
            (r#"{"objectName": "\ud800"}"#.to_owned(), "surrogate"),
            (r#"{"objectName": "\ud800\u0041"}"#.to_owned(), "surrogate"),
            (String::new(), "the body is empty"),
            (r#"{"objectName": "a""#.to_owned(), "ends before"),
            (r#"{"source": 2}"#.to_owned(), "source"),
            (deep, "nests deeper than 128"),
        ] {
            let e = match json.contains("source") {
                true => read::<pb::GetDownloadUrlRequest>(json.as_bytes()).unwrap_err(),
                false => read::<pb::GetUploadUrlRequest>(json.as_bytes()).unwrap_err(),
            };
            let shown = cut(&json, 60);
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
