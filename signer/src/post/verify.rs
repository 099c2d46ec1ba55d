//! Checking a POST form against its policy, as S3 does for browser-based uploads: the
//! signature over the base64 policy, the credential scope, the expiration, every condition,
//! no field outside the conditions, and (once the file is read) the size range.

use super::policy::{Condition, Policy, MAX_POLICY_BYTES};
use crate::signer::check_scope_part;
use crate::signing_key::DerivedKey;
use crate::string_to_sign::ALGORITHM;
use crate::verify::{credential_access_key, ScopeError};
use crate::{Error, Timestamp};
use base64::Engine as _;
use std::fmt;

/// Why a POST form was refused. Carries field names, never a value, secret or signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostError {
    /// A required field (`key`, `policy`, `x-amz-algorithm`, ...) is absent.
    MissingField(&'static str),
    /// A field appears twice (names compare case-insensitively).
    DuplicateField(String),
    /// `x-amz-algorithm` is not `AWS4-HMAC-SHA256`.
    UnsupportedAlgorithm,
    /// `x-amz-credential` is not `<access key>/<YYYYMMDD>/<region>/<service>/aws4_request`
    /// with a non-empty access key.
    MalformedCredential,
    /// The credential's date, region, service or terminator is not this server's.
    WrongScope,
    /// `x-amz-date` is not in `YYYYMMDDTHHMMSSZ` form.
    MalformedDate,
    /// `x-amz-signature` is not 64 lowercase hex digits.
    MalformedSignature,
    /// The credential's access key has no known secret.
    UnknownAccessKey,
    /// `x-amz-signature` is not the HMAC-SHA256 of the base64 policy under the signing key.
    SignatureMismatch,
    /// The policy is not base64 of a valid policy document; the text says why.
    MalformedPolicy(&'static str),
    /// `x-amz-date` lies in the future beyond the allowed clock skew.
    NotYetValid,
    /// The policy's expiration has passed.
    Expired,
    /// The named field (or `bucket`) does not meet its condition.
    ConditionFailed(String),
    /// A form field no condition covers.
    ExtraField(String),
    /// The file is `size` bytes, under the policy's minimum `min`.
    EntityTooSmall {
        /// The file's size, in bytes.
        size: u64,
        /// The policy's minimum, in bytes.
        min: u64,
    },
    /// The file is `size` bytes (or more), over the policy's maximum `max`.
    EntityTooLarge {
        /// The file's size in bytes, or the bytes read before stopping past `max`.
        size: u64,
        /// The policy's maximum, in bytes.
        max: u64,
    },
}

impl PostError {
    /// The S3 error code a server answers with.
    #[must_use]
    pub const fn s3_code(&self) -> &'static str {
        match self {
            Self::MissingField(_)
            | Self::DuplicateField(_)
            | Self::UnsupportedAlgorithm
            | Self::MalformedCredential
            | Self::WrongScope
            | Self::MalformedDate => "InvalidArgument",
            Self::MalformedSignature | Self::SignatureMismatch => "SignatureDoesNotMatch",
            Self::UnknownAccessKey => "InvalidAccessKeyId",
            Self::MalformedPolicy(_) => "InvalidPolicyDocument",
            Self::NotYetValid | Self::Expired | Self::ConditionFailed(_) | Self::ExtraField(_) => {
                "AccessDenied"
            }
            Self::EntityTooSmall { .. } => "EntityTooSmall",
            Self::EntityTooLarge { .. } => "EntityTooLarge",
        }
    }

    /// The HTTP status S3 uses: 403 for authentication and policy refusals, else 400.
    #[must_use]
    pub const fn http_status(&self) -> u16 {
        match self {
            Self::MalformedSignature
            | Self::SignatureMismatch
            | Self::UnknownAccessKey
            | Self::NotYetValid
            | Self::Expired
            | Self::ConditionFailed(_)
            | Self::ExtraField(_) => 403,
            _ => 400,
        }
    }
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingField(name) => {
                write!(f, "Bucket POST must contain a field named '{name}'")
            }
            Self::DuplicateField(name) => write!(f, "field '{name}' is given more than once"),
            Self::UnsupportedAlgorithm => f.write_str("only AWS4-HMAC-SHA256 is supported"),
            Self::MalformedCredential => f.write_str("malformed x-amz-credential"),
            Self::WrongScope => f.write_str("credential scope does not match this server"),
            Self::MalformedDate => f.write_str("malformed x-amz-date"),
            Self::MalformedSignature => f.write_str("malformed x-amz-signature"),
            Self::UnknownAccessKey => f.write_str("unknown access key"),
            Self::SignatureMismatch => f.write_str("signature does not match"),
            Self::MalformedPolicy(why) => write!(f, "Invalid Policy: {why}"),
            Self::NotYetValid => {
                f.write_str("Invalid according to Policy: x-amz-date is in the future")
            }
            Self::Expired => f.write_str("Invalid according to Policy: Policy expired."),
            Self::ConditionFailed(name) => {
                write!(
                    f,
                    "Invalid according to Policy: Policy Condition failed: ${name}"
                )
            }
            Self::ExtraField(name) => {
                write!(f, "Invalid according to Policy: Extra input fields: {name}")
            }
            Self::EntityTooSmall { size, min } => {
                write!(f, "Your proposed upload ({size} bytes) is smaller than the minimum allowed size ({min} bytes)")
            }
            Self::EntityTooLarge { size, max } => {
                write!(f, "Your proposed upload ({size} bytes) exceeds the maximum allowed size ({max} bytes)")
            }
        }
    }
}

impl std::error::Error for PostError {}

/// What a valid POST form vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPost {
    /// The access key from `x-amz-credential` whose secret signed the policy.
    pub access_key: String,
    /// The `key` field as sent (S3's `${filename}` substitution is the caller's business).
    pub key: String,
    /// The `Content-Type` field as sent, if any.
    pub content_type: Option<String>,
    /// `x-amz-meta-*` fields as (lowercase name without the prefix, value).
    pub metadata: Vec<(String, String)>,
    /// The policy's `expiration`, after which the form is refused.
    pub expires_at: Timestamp,
    /// Allowed file sizes in bytes, `min..=max` (`0..=u64::MAX` without a range condition):
    /// read at most `max + 1` bytes, then call [`VerifiedPost::check_size`].
    pub length_range: (u64, u64),
}

impl VerifiedPost {
    /// Checks the uploaded file's size against the policy's `content-length-range`.
    ///
    /// # Errors
    /// [`PostError::EntityTooSmall`] or [`PostError::EntityTooLarge`].
    pub const fn check_size(&self, size: u64) -> Result<(), PostError> {
        let (min, max) = self.length_range;
        if size < min {
            Err(PostError::EntityTooSmall { size, min })
        } else if size > max {
            Err(PostError::EntityTooLarge { size, max })
        } else {
            Ok(())
        }
    }
}

/// Checks POST forms for one region and service (the embedded store's).
#[derive(Debug, Clone)]
pub struct PostVerifier {
    region: String,
    service: String,
    max_clock_skew: u32,
}

/// Fields that no condition needs to cover.
fn exempt(name: &str) -> bool {
    ["policy", "x-amz-signature", "file"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
        || name
            .get(..9)
            .is_some_and(|p| p.eq_ignore_ascii_case("x-ignore-"))
}

impl PostVerifier {
    /// A verifier accepting an `x-amz-date` up to `max_clock_skew` seconds in the future.
    ///
    /// # Errors
    /// [`Error::InvalidScope`] for an empty or malformed region or service.
    pub fn new(region: &str, service: &str, max_clock_skew: u32) -> Result<Self, Error> {
        let why = "region and service must be non-empty without '/', spaces or controls";
        check_scope_part(region, why)?;
        check_scope_part(service, why)?;
        Ok(Self {
            region: region.to_owned(),
            service: service.to_owned(),
            max_clock_skew,
        })
    }

    /// Verifies the form `fields` (every part but the file, as (name, value)) of a POST to
    /// `bucket` at time `now`; `secret_for` looks up an access key's secret. The signature is
    /// checked before the policy is decoded.
    ///
    /// # Errors
    /// A [`PostError`] naming the first check that failed.
    pub fn verify<S: AsRef<str>>(
        &self,
        bucket: &str,
        fields: &[(&str, &str)],
        now: Timestamp,
        secret_for: impl FnOnce(&str) -> Option<S>,
    ) -> Result<VerifiedPost, PostError> {
        for (i, (name, _)) in fields.iter().enumerate() {
            if fields
                .iter()
                .skip(i + 1)
                .any(|(other, _)| other.eq_ignore_ascii_case(name))
            {
                return Err(PostError::DuplicateField((*name).to_owned()));
            }
        }
        let get = |name: &'static str| field(fields, name).ok_or(PostError::MissingField(name));
        let key = get("key")?;
        let policy_b64 = get("policy")?;
        if get("x-amz-algorithm")? != ALGORITHM {
            return Err(PostError::UnsupportedAlgorithm);
        }
        let signed_at =
            Timestamp::parse_amz(get("x-amz-date")?).map_err(|_| PostError::MalformedDate)?;
        let access_key = self.check_credential(get("x-amz-credential")?, signed_at)?;
        let signature = decode_signature(get("x-amz-signature")?)?;
        if signed_at.unix() > now.unix().saturating_add(i64::from(self.max_clock_skew)) {
            return Err(PostError::NotYetValid);
        }
        if policy_b64.len() > MAX_POLICY_BYTES.div_ceil(3) * 4 {
            return Err(PostError::MalformedPolicy("policy document too large"));
        }
        let secret = secret_for(access_key).ok_or(PostError::UnknownAccessKey)?;
        let derived = DerivedKey::new(
            secret.as_ref(),
            signed_at.date_stamp(),
            &self.region,
            &self.service,
        );
        if !derived.verify_bytes(policy_b64.as_bytes(), &signature) {
            return Err(PostError::SignatureMismatch);
        }
        let policy = decode_policy(policy_b64)?;
        if now > policy.expiration {
            return Err(PostError::Expired);
        }
        let length_range = check_conditions(&policy, bucket, fields)?;
        Ok(VerifiedPost {
            access_key: access_key.to_owned(),
            key: key.to_owned(),
            content_type: field(fields, "Content-Type").map(str::to_owned),
            metadata: fields
                .iter()
                .filter_map(|(n, v)| {
                    let prefix = n.get(..11)?;
                    prefix.eq_ignore_ascii_case("x-amz-meta-").then(|| {
                        (
                            n.get(11..).unwrap_or_default().to_ascii_lowercase(),
                            (*v).to_owned(),
                        )
                    })
                })
                .collect(),
            expires_at: policy.expiration,
            length_range,
        })
    }

    fn check_credential<'c>(
        &self,
        credential: &'c str,
        signed_at: Timestamp,
    ) -> Result<&'c str, PostError> {
        credential_access_key(credential, signed_at, &self.region, &self.service).map_err(|e| {
            match e {
                ScopeError::Malformed => PostError::MalformedCredential,
                ScopeError::WrongScope => PostError::WrongScope,
            }
        })
    }
}

/// The value of field `name`, compared case-insensitively as S3 does.
fn field<'f>(fields: &[(&str, &'f str)], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn decode_signature(sig: &str) -> Result<[u8; 32], PostError> {
    let mut out = [0_u8; 32];
    if sig.len() != 64 || sig.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(PostError::MalformedSignature);
    }
    hex::decode_to_slice(sig, &mut out).map_err(|_| PostError::MalformedSignature)?;
    Ok(out)
}

/// Base64 (standard alphabet, padded) of a UTF-8 policy document, parsed.
pub(crate) fn decode_policy(policy_b64: &str) -> Result<Policy, PostError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(policy_b64)
        .map_err(|_| PostError::MalformedPolicy("policy is not base64"))?;
    let text =
        String::from_utf8(bytes).map_err(|_| PostError::MalformedPolicy("policy is not UTF-8"))?;
    Policy::parse(&text).map_err(PostError::MalformedPolicy)
}

/// Every condition holds and every non-exempt field is covered; returns the size range.
fn check_conditions(
    policy: &Policy,
    bucket: &str,
    fields: &[(&str, &str)],
) -> Result<(u64, u64), PostError> {
    let mut range = (0, u64::MAX);
    let value_of = |name: &str| {
        if name.eq_ignore_ascii_case("bucket") {
            Some(bucket)
        } else {
            field(fields, name)
        }
    };
    for condition in &policy.conditions {
        let ok = match condition {
            Condition::Eq { field, value } => value_of(field) == Some(value.as_str()),
            Condition::StartsWith { field, prefix } => value_of(field)
                .unwrap_or_default()
                .starts_with(prefix.as_str()),
            Condition::LengthRange { min, max } => {
                range = (range.0.max(*min), range.1.min(*max));
                true
            }
        };
        if !ok {
            let (Condition::Eq { field, .. } | Condition::StartsWith { field, .. }) = condition
            else {
                continue;
            };
            return Err(PostError::ConditionFailed(field.clone()));
        }
    }
    for (name, _) in fields {
        let covered = policy.conditions.iter().any(|c| match c {
            Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => {
                field.eq_ignore_ascii_case(name)
            }
            Condition::LengthRange { .. } => false,
        });
        if !covered && !exempt(name) {
            return Err(PostError::ExtraField((*name).to_owned()));
        }
    }
    Ok(range)
}
