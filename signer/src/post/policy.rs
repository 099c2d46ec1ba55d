//! The POST policy document: written for [`Signer::presign_post`](crate::Signer::presign_post)
//! and parsed (strictly) for [`PostVerifier`](super::PostVerifier).

use super::json::{self, Value};
use super::PostPolicy;
use crate::signing_key::DerivedKey;
use crate::Timestamp;

/// Largest policy document accepted, in bytes of JSON (S3 limits POST form fields to 20 KB).
pub(crate) const MAX_POLICY_BYTES: usize = 20 * 1024;

/// One policy condition, in S3's three forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `{"field": "value"}` or `["eq", "$field", "value"]`: the form field equals `value`.
    Eq {
        /// The form field's name, without the `$` of the array form.
        field: String,
        /// The exact value the field must have.
        value: String,
    },
    /// `["starts-with", "$field", "prefix"]`: the form field begins with `prefix`.
    StartsWith {
        /// The form field's name, without the `$`.
        field: String,
        /// What the field's value must begin with (`""` allows any value).
        prefix: String,
    },
    /// `["content-length-range", min, max]`: the file is `min..=max` bytes.
    LengthRange {
        /// The smallest file size allowed, in bytes.
        min: u64,
        /// The largest file size allowed, in bytes (at least `min`).
        max: u64,
    },
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `expiration`, ISO 8601 in UTC (`YYYY-MM-DDTHH:MM:SS[.fff]Z`, fractions dropped).
    pub expiration: Timestamp,
    /// `conditions`, in document order: every one must hold, and every form field (other
    /// than `policy`, `x-amz-signature`, `file` and `x-ignore-*`) must be named by one.
    pub conditions: Vec<Condition>,
}

impl Policy {
    /// Parses a policy document (the JSON, already base64-decoded).
    ///
    /// # Errors
    /// A short reason for JSON over 20 KiB, bad JSON, a missing or malformed
    /// `expiration`, an unknown top-level member, or a condition in none of the three forms.
    pub fn parse(document: &str) -> Result<Self, &'static str> {
        if document.len() > MAX_POLICY_BYTES {
            return Err("policy document too large");
        }
        let Value::Obj(members) = json::parse(document)? else {
            return Err("policy must be a JSON object");
        };
        let (mut expiration, mut conditions) = (None, None);
        for (name, value) in members {
            match (name.as_str(), value) {
                ("expiration", Value::Str(text)) => expiration = Some(parse_iso8601(&text)?),
                ("conditions", Value::Arr(items)) => {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        condition(item, &mut out)?;
                    }
                    conditions = Some(out);
                }
                ("expiration" | "conditions", _) => {
                    return Err("malformed expiration or conditions")
                }
                _ => return Err("unknown member in the policy"),
            }
        }
        Ok(Self {
            expiration: expiration.ok_or("policy has no expiration")?,
            conditions: conditions.ok_or("policy has no conditions")?,
        })
    }
}

fn condition(item: Value, out: &mut Vec<Condition>) -> Result<(), &'static str> {
    match item {
        Value::Obj(members) if !members.is_empty() => {
            for (field, value) in members {
                let Value::Str(value) = value else {
                    return Err("an exact-match condition needs a string value");
                };
                out.push(Condition::Eq { field, value });
            }
            Ok(())
        }
        Value::Arr(parts) => {
            let mut parts = parts.into_iter();
            let (Some(Value::Str(op)), Some(a), Some(b), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err("a condition array has an operator and two operands");
            };
            out.push(match (op.to_ascii_lowercase().as_str(), a, b) {
                ("content-length-range", Value::Num(min), Value::Num(max)) if min <= max => {
                    Condition::LengthRange { min, max }
                }
                ("eq", Value::Str(field), Value::Str(value)) => Condition::Eq {
                    field: dollar_field(field)?,
                    value,
                },
                ("starts-with", Value::Str(field), Value::Str(prefix)) => Condition::StartsWith {
                    field: dollar_field(field)?,
                    prefix,
                },
                _ => return Err("unknown or malformed condition"),
            });
            Ok(())
        }
        _ => Err("a condition is an object or an array"),
    }
}

fn dollar_field(field: String) -> Result<String, &'static str> {
    match field.strip_prefix('$') {
        Some(name) if !name.is_empty() => Ok(name.to_owned()),
        _ => Err("a condition names its field as \"$name\""),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` → a timestamp (fraction dropped).
fn parse_iso8601(text: &str) -> Result<Timestamp, &'static str> {
    const WHY: &str = "expiration must be YYYY-MM-DDTHH:MM:SS[.fff]Z";
    let (main, rest) = text.split_at_checked(19).ok_or(WHY)?;
    let fraction = rest.strip_suffix('Z').ok_or(WHY)?;
    let fraction_ok = fraction.is_empty()
        || fraction
            .strip_prefix('.')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    let b = main.as_bytes();
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !fraction_ok || seps.iter().any(|(i, c)| b.get(*i) != Some(c)) {
        return Err(WHY);
    }
    let amz: String = main.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    Timestamp::parse_amz(&format!("{amz}Z")).map_err(|_| WHY)
}

/// Writes the policy JSON into `out`, byte for byte as botocore writes it (`json.dumps`
/// separators): the caller's field conditions (`Content-Type`, `x-amz-meta-*`), the size
/// range, the bucket, then `key`, the `x-amz-*` fields of the form and the security token.
/// The algorithm and credential conditions are the day's, written once per day (`key`).
pub(crate) fn write_document(
    out: &mut String,
    policy: &PostPolicy<'_>,
    expires_at: Timestamp,
    key: &DerivedKey,
    now: Timestamp,
    token: Option<&str>,
) {
    out.push_str("{\"expiration\": \"");
    expires_at.write_rfc3339(out);
    out.push_str("\", \"conditions\": [");
    if let Some(ct) = policy.content_type {
        write_eq(out, "Content-Type", ct);
    }
    for (name, value) in policy.metadata {
        // Metadata names are lowercase tokens (checked): nothing in them needs escaping.
        out.push_str("{\"x-amz-meta-");
        out.push_str(name);
        out.push_str("\": ");
        json::write_str(out, value);
        out.push_str("}, ");
    }
    if let Some((min, max)) = policy.length_range {
        out.push_str("[\"content-length-range\", ");
        push_u64(out, min);
        out.push_str(", ");
        push_u64(out, max);
        out.push_str("], ");
    }
    write_eq(out, "bucket", policy.bucket);
    write_eq(out, "key", policy.key);
    out.push_str(&key.post_conditions);
    out.push_str(now.amz_date());
    out.push('"');
    if let Some(token) = token {
        out.push_str("}, ");
        write_eq(out, "x-amz-security-token", token);
        // write_eq ended with "}, ".
        out.truncate(out.len().saturating_sub(3));
    }
    out.push_str("}]}");
}

/// `{"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-credential": "<credential>"}, {"x-amz-date": "`:
/// the policy's conditions that only change with the day, as JSON (`credential` escaped).
pub(crate) fn day_conditions(credential: &str) -> String {
    let mut out = String::with_capacity(96 + credential.len());
    write_eq(
        &mut out,
        "x-amz-algorithm",
        crate::string_to_sign::ALGORITHM,
    );
    write_eq(&mut out, "x-amz-credential", credential);
    out.push_str("{\"x-amz-date\": \"");
    out
}

/// Appends `n` in decimal without the formatting machinery.
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(d) = digits.get_mut(start) {
            // n % 10 < 10, so the cast keeps the value.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(digits.get(start..).unwrap_or_default()).unwrap_or_default());
}

fn write_eq(out: &mut String, name: &str, value: &str) {
    out.push('{');
    json::write_str(out, name);
    out.push_str(": ");
    json::write_str(out, value);
    out.push_str("}, ");
}
