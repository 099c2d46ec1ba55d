//! One pass over a Connect JSON request, driven by its type's descriptor, that refuses what
//! protojson refuses (protobuf-go `encoding/protojson/decode.go`) in our words, where pbjson
//! would accept it or answer in serde's:
//!
//! - a value of the wrong JSON type: the field (its JSON name), what it takes, what it got;
//! - an integer that is none by protojson's rule: a number, or a string holding exactly one
//!   JSON number (no `+`, no leading zero, no space), integral (`1.0`, `1e3`, `"1e3"` are 1, 1000,
//!   1000; `1.5` is refused) and in the field's range (`unmarshalInt`/`unmarshalUint`,
//!   `internal/encoding/json/decode_number.go`);
//! - a map key that is not of the key's type (protojson's `unmarshalMapKey`: Go's `ParseInt`
//!   or `ParseUint` in base 10, so `"01"` is 1, `"+1"` a signed key only), or a key given twice,
//!   compared as the key's type (`"1"` and `"01"` are one key): "duplicate map key";
//! - `null` other than as a field's value (in a list or as a map value), and as the body.
//!
//! Checking builds nothing (map keys aside, kept to find duplicates). Building (`build`) also
//! returns the request as a [`Value`] pbjson reads: integers as plain JSON integers, `null`
//! members and unknown fields dropped, a field given twice refused.

use super::{at, exact, range};
use crate::api::json_error::{cut, field_twice, quoted};
use prost_reflect::{Kind, MessageDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as _;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;

/// Reads `json` as a `desc` message: with `build`, returns it normalised for pbjson, else
/// only checks it (`Ok(None)`).
///
/// # Errors
/// What is wrong, naming the field (or where the text stops being JSON).
pub(super) fn pass(
    desc: &MessageDescriptor,
    json: &[u8],
    build: bool,
) -> Result<Option<Value>, String> {
    let mut ctx = Ctx {
        path: String::new(),
        why: None,
        build,
    };
    let mut text = serde_json::Deserializer::from_slice(json);
    let read = Seed {
        ctx: &mut ctx,
        shape: Shape::Message(desc.clone()),
        member: false,
    }
    .deserialize(&mut text)
    .and_then(|value| text.end().map(|()| value));
    match read {
        Ok(value) => Ok(value),
        Err(e) => Err(match ctx.why.take() {
            Some(why) => why,
            None => at(&ctx.path, super::clear(&e, super::blank(json))),
        }),
    }
}

/// Where the pass is, and the refusal it made.
struct Ctx {
    /// The JSON path of the value being read (`constraints.metadata["a"]`); empty: the body.
    path: String,
    why: Option<String>,
    build: bool,
}

impl Ctx {
    /// Refuses the value being read because of `what`.
    fn refuse<E: de::Error>(&mut self, what: impl std::fmt::Display) -> E {
        self.why = Some(at(&self.path, what));
        E::custom("refused")
    }

    /// Refuses a value of the wrong JSON type.
    fn wrong<E: de::Error>(&mut self, shape: &Shape, found: &str) -> E {
        self.refuse(format!("expected {}, found {found}", takes(shape)))
    }
}

/// What a value is read as.
enum Shape {
    Message(MessageDescriptor),
    /// A map field: its entry type.
    Map(MessageDescriptor),
    /// A repeated field: its elements' kind.
    List(Kind),
    One(Kind),
}

impl Shape {
    fn of(field: &prost_reflect::FieldDescriptor) -> Self {
        match field.kind() {
            Kind::Message(entry) if field.is_map() => Self::Map(entry),
            kind if field.is_list() => Self::List(kind),
            Kind::Message(desc) => Self::Message(desc),
            kind => Self::One(kind),
        }
    }
}

/// What a value of `shape` is, in a refusal.
fn takes(shape: &Shape) -> String {
    match shape {
        Shape::Message(desc) => format!("an object (a {} message)", desc.full_name()),
        Shape::Map(_) => "an object (a map)".to_owned(),
        Shape::List(_) => "an array".to_owned(),
        Shape::One(kind) => match kind {
            Kind::String => "a string".to_owned(),
            Kind::Bytes => "a base64 string".to_owned(),
            Kind::Bool => "true or false".to_owned(),
            Kind::Float | Kind::Double => "a number".to_owned(),
            Kind::Enum(e) => format!("a value name of {} (a string) or its number", e.full_name()),
            Kind::Message(desc) => format!("an object (a {} message)", desc.full_name()),
            _ => INTEGER.to_owned(),
        },
    }
}

const INTEGER: &str = "an integer (a number, or a string holding one)";

/// Reads one value of `shape`; `member`: the value of a message's field (where `null` is the
/// field's default), not a list's element or a map's value.
struct Seed<'c> {
    ctx: &'c mut Ctx,
    shape: Shape,
    member: bool,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        match self.shape {
            Shape::One(Kind::Message(desc)) | Shape::Message(desc)
                if desc.full_name().starts_with("google.protobuf.") =>
            {
                // Well-known types have JSON forms of their own: pbjson reads them.
                if self.ctx.build {
                    Value::deserialize(d).map(Some)
                } else {
                    Skip::deserialize(d).map(|_| None)
                }
            }
            Shape::One(Kind::Message(desc)) => d.deserialize_any(Visit {
                ctx: self.ctx,
                shape: Shape::Message(desc),
                member: self.member,
            }),
            Shape::One(kind) if range(&kind).is_some() => integer(self.ctx, &kind, self.member, d),
            shape => d.deserialize_any(Visit {
                ctx: self.ctx,
                shape,
                member: self.member,
            }),
        }
    }
}

/// An integer field's value, checked on its text as protojson does.
fn integer<'de, D: Deserializer<'de>>(
    ctx: &mut Ctx,
    kind: &Kind,
    member: bool,
    d: D,
) -> Result<Option<Value>, D::Error> {
    let raw = <&RawValue>::deserialize(d)?;
    let text = raw.get();
    let (min, max) = range(kind).unwrap_or((0, 0));
    let (n, sent) = match text.as_bytes().first() {
        Some(b'"') => {
            let s: String = serde_json::from_str(text).map_err(|_| ctx.refuse(INTEGER))?;
            let n = exact(&s).ok_or_else(|| {
                ctx.refuse(format!("{} is not an integer ({INTEGER})", quoted(&s)))
            })?;
            (n, quoted(&s))
        }
        Some(b'-' | b'0'..=b'9') => {
            let n = exact(text)
                .ok_or_else(|| ctx.refuse(format!("{} is not an integer", cut(text))))?;
            (n, cut(text))
        }
        Some(b'n') if member => return Ok(None),
        Some(b'n') => return Err(ctx.refuse(format!("expected {INTEGER}, found null"))),
        Some(b't' | b'f') => return Err(ctx.refuse(format!("expected {INTEGER}, found {text}"))),
        Some(b'[') => return Err(ctx.refuse(format!("expected {INTEGER}, found an array"))),
        _ => return Err(ctx.refuse(format!("expected {INTEGER}, found an object"))),
    };
    if n < min || n > max {
        return Err(ctx.refuse(format!("{sent} is out of range ({min} to {max})")));
    }
    Ok(ctx.build.then(|| match i64::try_from(n) {
        Ok(n) => Value::from(n),
        Err(_) => Value::from(u64::try_from(n).unwrap_or(u64::MAX)),
    }))
}

/// A map key of an integer `kind` as protojson reads it (Go's `strconv.ParseInt` for signed
/// kinds: an optional `+` or `-`; `ParseUint` for unsigned ones: none; then decimal digits,
/// leading zeros allowed), `None` if it is none or out of range.
fn integer_key(key: &str, kind: &Kind) -> Option<i128> {
    let (min, max) = range(kind)?;
    let digits = if min < 0 {
        key.strip_prefix(['+', '-']).unwrap_or(key)
    } else {
        key
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    // More digits than i128 holds is out of every range.
    let n: i128 = if digits.is_empty() {
        0
    } else if digits.len() > 38 {
        return None;
    } else {
        digits.parse().ok()?
    };
    let n = if key.starts_with('-') { -n } else { n };
    (min..=max).contains(&n).then_some(n)
}

/// A value skipped (an unknown field's), read as deeply as serde_json allows (128 levels) so
/// that nesting past it is refused as everywhere else.
struct Skip;

impl<'de> serde::Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SkipVisitor;
        impl<'de> Visitor<'de> for SkipVisitor {
            type Value = Skip;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_unit<E>(self) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
                while map.next_entry::<IgnoredAny, Skip>()?.is_some() {}
                Ok(Skip)
            }
        }
        d.deserialize_any(SkipVisitor)
    }
}

/// A key as a path shows it: between double quotes as sent (not Rust-escaped), its first 40
/// characters, `…` marking a cut (as [`quoted`]), without copying it when it is short.
struct Short<'a>(&'a str);

impl std::fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.len() <= 40 {
            write!(f, "\"{}\"", self.0)
        } else {
            f.write_str(&quoted(self.0))
        }
    }
}

/// A map key as compared for duplicates.
#[derive(PartialEq, Eq, Hash)]
enum MapKey<'de> {
    Text(Cow<'de, str>),
    Integer(i128),
}

/// A member name or map key, borrowed from the text when it holds no escape.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The visitor of one value of `shape` (see [`Seed`]).
struct Visit<'c> {
    ctx: &'c mut Ctx,
    shape: Shape,
    member: bool,
}

impl Visit<'_> {
    /// `value` when building.
    fn keep(&self, value: impl FnOnce() -> Value) -> Option<Value> {
        self.ctx.build.then(value)
    }
}

impl<'de> Visitor<'de> for Visit<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&takes(&self.shape))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Value>, E> {
        if self.member {
            return Ok(None);
        }
        Err(self.ctx.wrong(&self.shape, "null"))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<Value>, E> {
        match &self.shape {
            Shape::One(Kind::Bool) => Ok(self.keep(|| Value::Bool(v))),
            shape => Err(self.ctx.wrong(shape, if v { "true" } else { "false" })),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Value>, E> {
        self.number(i128::from(v), || Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<Value>, E> {
        self.number(i128::from(v), || Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<Value>, E> {
        match &self.shape {
            Shape::One(Kind::Float | Kind::Double) => Ok(
                self.keep(|| serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
            ),
            shape => Err(self
                .ctx
                .wrong(shape, "a number with a fraction or exponent")),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Value>, E> {
        match &self.shape {
            Shape::One(Kind::String | Kind::Bytes | Kind::Float | Kind::Double) => {
                Ok(self.keep(|| Value::String(v.to_owned())))
            }
            Shape::One(Kind::Enum(e)) => {
                if e.get_value_by_name(v).is_none() {
                    let names: Vec<_> = e.values().map(|value| value.name().to_owned()).collect();
                    return Err(self.ctx.refuse(format!(
                        "{} is not a value of {} ({})",
                        quoted(v),
                        e.full_name(),
                        names.join(", ")
                    )));
                }
                Ok(self.keep(|| Value::String(v.to_owned())))
            }
            shape => Err(self.ctx.wrong(shape, "a string")),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        let Shape::List(kind) = &self.shape else {
            return Err(self.ctx.wrong(&self.shape, "an array"));
        };
        let mut items = Vec::new();
        for i in 0.. {
            let len = self.ctx.path.len();
            // Written in place: no allocation per element.
            let _ = write!(self.ctx.path, "[{i}]");
            let item = seq.next_element_seed(Seed {
                ctx: &mut *self.ctx,
                shape: Shape::One(kind.clone()),
                member: false,
            })?;
            self.ctx.path.truncate(len);
            match item {
                None => break,
                Some(Some(value)) => items.push(value),
                Some(None) => {}
            }
        }
        Ok(self.keep(|| Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Value>, A::Error> {
        match &self.shape {
            Shape::Message(desc) => members(self.ctx, desc, map),
            Shape::Map(entry) => entries(self.ctx, entry, map),
            shape => Err(self.ctx.wrong(shape, "an object")),
        }
    }
}

impl Visit<'_> {
    fn number<E: de::Error>(
        self,
        n: i128,
        value: impl FnOnce() -> Value,
    ) -> Result<Option<Value>, E> {
        match &self.shape {
            Shape::One(Kind::Float | Kind::Double) => Ok(self.keep(value)),
            Shape::One(Kind::Enum(e)) => {
                if i32::try_from(n).ok().and_then(|n| e.get_value(n)).is_none() {
                    return Err(self.ctx.refuse(format!(
                        "{n} is not the number of a {} value",
                        e.full_name()
                    )));
                }
                Ok(self.keep(value))
            }
            shape => Err(self.ctx.wrong(shape, "a number")),
        }
    }
}

/// The members of a `desc` message; unknown ones skipped.
fn members<'de, A: MapAccess<'de>>(
    ctx: &mut Ctx,
    desc: &MessageDescriptor,
    mut map: A,
) -> Result<Option<Value>, A::Error> {
    let mut out = ctx.build.then(serde_json::Map::new);
    let mut seen = Vec::new();
    while let Some(Key(key)) = map.next_key()? {
        let Some(field) = desc
            .get_field_by_json_name(&key)
            .or_else(|| desc.get_field_by_name(&key))
        else {
            map.next_value::<Skip>()?;
            continue;
        };
        if ctx.build {
            if seen.contains(&field.number()) {
                return Err(ctx.refuse(field_twice(&key)));
            }
            seen.push(field.number());
        }
        let len = ctx.path.len();
        if !ctx.path.is_empty() {
            ctx.path.push('.');
        }
        ctx.path.push_str(field.json_name());
        let value = map.next_value_seed(Seed {
            ctx: &mut *ctx,
            shape: Shape::of(&field),
            member: true,
        })?;
        ctx.path.truncate(len);
        if let (Some(out), Some(value)) = (&mut out, value) {
            out.insert(field.json_name().to_owned(), value);
        }
    }
    Ok(out.map(Value::Object))
}

/// The entries of a map field whose entry type is `entry`.
fn entries<'de, A: MapAccess<'de>>(
    ctx: &mut Ctx,
    entry: &MessageDescriptor,
    mut map: A,
) -> Result<Option<Value>, A::Error> {
    let key_kind = entry.map_entry_key_field().kind();
    let value_kind = entry.map_entry_value_field().kind();
    let mut out = ctx.build.then(serde_json::Map::new);
    let mut seen = HashSet::new();
    while let Some(Key(key)) = map.next_key()? {
        let compared = match &key_kind {
            Kind::Bool if key == "true" || key == "false" => MapKey::Text(key.clone()),
            Kind::Bool => {
                return Err(ctx.refuse(format!(
                    "a key of this map is true or false, not {}",
                    quoted(&key)
                )))
            }
            Kind::String => MapKey::Text(key.clone()),
            kind => match integer_key(&key, kind) {
                Some(n) => MapKey::Integer(n),
                None => {
                    let (min, max) = range(kind).unwrap_or((0, 0));
                    return Err(ctx.refuse(format!(
                        "a key of this map is an integer in plain decimal, {min} to {max}, not \
                         {}",
                        quoted(&key)
                    )));
                }
            },
        };
        if !seen.insert(compared) {
            return Err(ctx.refuse(format!("duplicate map key {}", quoted(&key))));
        }
        let len = ctx.path.len();
        let _ = write!(ctx.path, "[{}]", Short(&key));
        let value = map.next_value_seed(Seed {
            ctx: &mut *ctx,
            shape: Shape::One(value_kind.clone()),
            member: false,
        })?;
        ctx.path.truncate(len);
        if let (Some(out), Some(value)) = (&mut out, value) {
            out.insert(key.into_owned(), value);
        }
    }
    Ok(out.map(Value::Object))
}

#[cfg(test)]
mod tests {
    use super::super::read;
    use crate::api::error::{ApiError, Code};
    use draftstore_proto::draft::v1 as pb;

    /// serde's and Rust's wording, never in a refusal.
    const SERDE: [&str; 12] = [
        "invalid type",
        "invalid value",
        "unknown variant",
        "expected a borrowed",
        "u64",
        "u32",
        "i32",
        "struct ",
        "Option",
        "HashMap",
        "untagged",
        "line 1",
    ];

    fn refused<T: serde::de::DeserializeOwned + draftstore_proto::prost::Name>(
        json: &str,
    ) -> ApiError {
        match read::<T>(json.as_bytes()) {
            Ok(_) => panic!("{json} was read"),
            Err(e) => e,
        }
    }

    fn assert_worded(e: &ApiError, json: &str, wants: &str) {
        assert_eq!(e.code, Code::MalformedMessage, "{json}");
        assert!(e.message.contains(wants), "{json}: {}", e.message);
        for serde in SERDE {
            assert!(!e.message.contains(serde), "{json}: {}", e.message);
        }
    }

    /// protojson's rule for integer fields (protobuf-go `encoding/protojson/decode.go`,
    /// `unmarshalInt`/`unmarshalUint`: a number token, or a string with no surrounding space
    /// holding exactly one JSON number token; `internal/encoding/json/decode_number.go`,
    /// `parseNumber`: no `+`, no leading zero, `.` and `e` each followed by digits;
    /// `normalizeToIntString`: integral after the exponent, at most 20 digits; then
    /// `strconv.ParseUint(s, 10, bits)`). `None`: protojson refuses it.
    #[test]
    fn integers_follow_protojson() {
        let u64_max = u64::MAX;
        let table: &[(&str, Option<u64>)] = &[
            ("5", Some(5)),
            ("\"5\"", Some(5)),
            ("\"\\u0035\"", Some(5)),
            ("\"+5\"", None),
            ("\"01\"", None),
            ("\"-01\"", None),
            ("\"00\"", None),
            ("\"0\"", Some(0)),
            ("\"-0\"", Some(0)),
            ("-0", Some(0)),
            ("\"-0.0e3\"", Some(0)),
            ("1e3", Some(1000)),
            ("\"1e3\"", Some(1000)),
            ("\"1E+3\"", Some(1000)),
            ("1.0", Some(1)),
            ("\"1.50e1\"", Some(15)),
            ("\"12000e-3\"", Some(12)),
            ("1.5", None),
            ("\"1.5\"", None),
            ("\"1e-1\"", None),
            ("\" 5\"", None),
            ("\"5 \"", None),
            ("\"5 5\"", None),
            ("\"1.\"", None),
            ("\".5\"", None),
            ("\"0x10\"", None),
            ("\"\"", None),
            ("\"1e\"", None),
            ("\"18446744073709551615\"", Some(u64_max)),
            ("18446744073709551615", Some(u64_max)),
            ("18446744073709551615.0", Some(u64_max)),
            ("\"1.8446744073709551615e19\"", Some(u64_max)),
            // Exact, not through a float (which would read 9007199254740992).
            ("9007199254740993.0", Some(9_007_199_254_740_993)),
            ("90071992547409930e-1", Some(9_007_199_254_740_993)),
            ("\"18446744073709551616\"", None),
            ("18446744073709551616", None),
            ("\"1e20\"", None),
            ("1e400", None),
            ("\"-1\"", None),
            ("-1", None),
        ];
        for (value, wants) in table {
            let json = format!(r#"{{"constraints": {{"contentLength": {value}}}}}"#);
            match (read::<pb::GetUploadUrlRequest>(json.as_bytes()), wants) {
                (Ok(got), Some(n)) => {
                    assert_eq!(got.constraints.unwrap().content_length, Some(*n), "{json}");
                }
                (Err(e), None) => assert_worded(&e, &json, "constraints.contentLength: "),
                (Ok(got), None) => panic!("{json} was read: {got:?}"),
                (Err(e), Some(_)) => panic!("{json}: {}", e.message),
            }
        }
        // A uint32 (in a list): 32 bits.
        for (value, wants) in [
            ("\"4294967295\"", Some(u32::MAX)),
            ("4294967295", Some(u32::MAX)),
            ("4294967296", None),
            ("\"4.294967296e9\"", None),
            ("\"+1\"", None),
            ("\"01\"", None),
            // "+1" spelled with an escape.
            ("\"\\u002b1\"", None),
            ("\"\\u0031\"", Some(1)),
        ] {
            let json = format!(r#"{{"partNumbers": [{value}]}}"#);
            match (read::<pb::GetPartUploadUrlsRequest>(json.as_bytes()), wants) {
                (Ok(got), Some(n)) => assert_eq!(got.part_numbers, [n], "{json}"),
                (Err(e), None) => assert_worded(&e, &json, "partNumbers[0]: "),
                (Ok(got), None) => panic!("{json} was read: {got:?}"),
                (Err(e), Some(_)) => panic!("{json}: {}", e.message),
            }
        }
    }

    /// Every field type of draft.proto's requests given a value of another JSON type: the
    /// field's JSON name, what it takes and what it got, in our words.
    #[test]
    fn wrong_types_name_the_field_what_it_takes_and_what_it_got() {
        let upload = |json: &str, wants: &str| {
            assert_worded(&refused::<pb::GetUploadUrlRequest>(json), json, wants);
        };
        // string
        upload(
            r#"{"objectName": 5}"#,
            "objectName: expected a string, found a number",
        );
        upload(
            r#"{"objectName": true}"#,
            "objectName: expected a string, found true",
        );
        upload(
            r#"{"objectName": []}"#,
            "objectName: expected a string, found an array",
        );
        upload(
            r#"{"object_name": {}}"#,
            "objectName: expected a string, found an object",
        );
        // uint64
        for (value, found) in [("true", "true"), ("[1]", "an array"), ("{}", "an object")] {
            upload(
                &format!(r#"{{"constraints": {{"contentLength": {value}}}}}"#),
                &format!(
                    "constraints.contentLength: expected an integer (a number, or a string \
                     holding one), found {found}"
                ),
            );
        }
        // nested message
        upload(
            r#"{"constraints": "x"}"#,
            "constraints: expected an object (a draft.v1.UploadConstraints message), found a \
             string",
        );
        // map<string, string>
        upload(
            r#"{"constraints": {"metadata": []}}"#,
            "constraints.metadata: expected an object (a map), found an array",
        );
        upload(
            r#"{"constraints": {"metadata": {"a": 1}}}"#,
            "constraints.metadata[\"a\"]: expected a string, found a number",
        );
        upload(
            r#"{"constraints": {"metadata": {"a": null}}}"#,
            "constraints.metadata[\"a\"]: expected a string, found null",
        );
        // the body itself
        upload(
            "5",
            "expected an object (a draft.v1.GetUploadURLRequest message), found a number",
        );
        upload("null", "found null");
        // bool
        let confirm = |json: &str, wants: &str| {
            assert_worded(&refused::<pb::ConfirmUploadRequest>(json), json, wants);
        };
        confirm(
            r#"{"overwrite": "yes"}"#,
            "overwrite: expected true or false, found a string",
        );
        confirm(
            r#"{"overwrite": 1}"#,
            "overwrite: expected true or false, found a number",
        );
        // enum
        let download = |json: &str, wants: &str| {
            assert_worded(&refused::<pb::GetDownloadUrlRequest>(json), json, wants);
        };
        download(
            r#"{"source": true}"#,
            "source: expected a value name of draft.v1.Source (a string) or its number, found true",
        );
        download(
            r#"{"source": "NOPE"}"#,
            "source: \"NOPE\" is not a value of draft.v1.Source (",
        );
        download(
            r#"{"source": 99}"#,
            "source: 99 is not the number of a draft.v1.Source value",
        );
        download(r#"{"source": 1.5}"#, "source: expected a value name");
        // repeated uint32, map<uint32, string>
        let parts = |json: &str, wants: &str| {
            assert_worded(&refused::<pb::GetPartUploadUrlsRequest>(json), json, wants);
        };
        parts(
            r#"{"partNumbers": 5}"#,
            "partNumbers: expected an array, found a number",
        );
        parts(
            r#"{"partNumbers": ["x"]}"#,
            "partNumbers[0]: \"x\" is not an integer",
        );
        parts(
            r#"{"partNumbers": [1, null]}"#,
            "partNumbers[1]: expected an integer",
        );
        parts(
            r#"{"checksumsSha256": {"1": 2}}"#,
            "checksumsSha256[\"1\"]: expected a string, found a number",
        );
        // repeated message
        assert_worded(
            &refused::<pb::CompleteMultipartUploadRequest>(r#"{"parts": [5]}"#),
            "parts",
            "parts[0]: expected an object (a draft.v1.CompletedPart message), found a number",
        );
    }

    /// protojson refuses a map key given twice (`decode.go`, `unmarshalMap`: "duplicate map
    /// key"), keys compared as the key's type (`unmarshalMapKey`: `strconv.ParseUint` for a
    /// `uint32`, which takes `"01"` as 1 and refuses `"+1"`).
    #[test]
    fn a_map_key_given_twice_is_refused_naming_the_field_and_key() {
        for json in [
            r#"{"constraints": {"metadata": {"a": "1", "a": "2"}}}"#,
            r#"{"constraints": {"metadata": {"a": "1", "\u0061": "2"}}}"#,
            r#"{"constraints": {"contentLength": 1e3, "metadata": {"a": "1", "a": "2"}}}"#,
        ] {
            assert_worded(
                &refused::<pb::GetUploadUrlRequest>(json),
                json,
                "constraints.metadata: duplicate map key \"a\"",
            );
        }
        assert_worded(
            &refused::<pb::GetUploadFormRequest>(r#"{"metadata": {"k": "1", "k": "1"}}"#),
            "form",
            "metadata: duplicate map key \"k\"",
        );
        let json = r#"{"checksumsSha256": {"1": "x", "01": "y"}}"#;
        assert_worded(
            &refused::<pb::GetPartUploadUrlsRequest>(json),
            json,
            "checksumsSha256: duplicate map key \"01\"",
        );
        // Quoted as sent and cut, as the REST routes quote (`{:?}` wrote `"a\\b"`, and a long
        // key whole in the path).
        let json = r#"{"constraints": {"metadata": {"a\\b": "1", "a\\b": "2"}}}"#;
        assert_worded(
            &refused::<pb::GetUploadUrlRequest>(json),
            json,
            r#"constraints.metadata: duplicate map key "a\b""#,
        );
        let long = "k".repeat(100);
        let json = format!(r#"{{"constraints": {{"metadata": {{"{long}": 1}}}}}}"#);
        let e = refused::<pb::GetUploadUrlRequest>(&json);
        let shown = format!(
            "constraints.metadata[\"{}…\"]: expected a string",
            "k".repeat(40)
        );
        assert_worded(&e, "a long key", &shown);
        let e = refused::<pb::GetPartUploadUrlsRequest>(r#"{"checksumsSha256": {"+1": "x"}}"#);
        assert!(e.message.contains("plain decimal"), "{}", e.message);
        let got: pb::GetPartUploadUrlsRequest =
            read(br#"{"checksumsSha256": {"01": "x", "2": "y"}, "objectName": "a"}"#).unwrap();
        assert_eq!(got.checksums_sha256.get(&1).map(String::as_str), Some("x"));
        let got: pb::GetUploadUrlRequest =
            read(br#"{"constraints": {"metadata": {"a": "1", "A": "2"}}}"#).unwrap();
        assert_eq!(got.constraints.unwrap().metadata.len(), 2);
    }
}
