//! Verification of presigned (query-authenticated) requests, as an S3 server does it. The
//! embedded store uses this to serve the URLs the gateway hands out.

use crate::canonical::{canonical_query, CanonicalHeaders, CanonicalRequest};
use crate::encode::{decode, encode};
use crate::signer::check_scope_part;
use crate::signing_key::DerivedKey;
use crate::string_to_sign::ALGORITHM;
use crate::{Error, Timestamp};
use std::fmt;

/// A request as a server received it. `path` and `query` are raw (still percent-encoded).
#[derive(Debug, Clone, Copy)]
pub struct ReceivedRequest<'a> {
    /// The method as received, e.g. `PUT`.
    pub method: &'a str,
    /// The raw path, still percent-encoded.
    pub path: &'a str,
    /// The raw query, without `?`.
    pub query: &'a str,
    /// Every header as received (names in any case).
    pub headers: &'a [(&'a str, &'a str)],
}

/// What a valid signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key that signed.
    pub access_key: String,
    /// `X-Amz-Date`.
    pub signed_at: Timestamp,
    /// `X-Amz-Date + X-Amz-Expires`: the last second the request is valid.
    pub expires_at: Timestamp,
    /// Lowercase names: the server must hold the client to these headers' values.
    pub signed_headers: Vec<String>,
    /// The signed `x-amz-content-sha256`, when it is a hash the body must match.
    pub content_sha256: Option<String>,
}

/// Why a presigned request was refused. Carries no secret or signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// Broken percent-encoding, or an auth parameter given twice.
    MalformedQuery,
    /// The path's percent-encoding is broken or not UTF-8.
    MalformedPath,
    /// No `X-Amz-*` auth query parameter at all: an anonymous request, which S3 refuses on a
    /// private bucket with 403 `AccessDenied`.
    Anonymous,
    /// A required `X-Amz-*` query parameter is missing (its name), others being there.
    MissingParameter(&'static str),
    /// `X-Amz-Algorithm` is not `AWS4-HMAC-SHA256`.
    UnsupportedAlgorithm,
    /// `X-Amz-Credential` is not `<key>/<date>/<region>/<service>/aws4_request`.
    MalformedCredential,
    /// The credential's date, region, service or terminator is not this server's.
    WrongScope,
    /// `X-Amz-Date` is not `YYYYMMDDTHHMMSSZ`.
    MalformedDate,
    /// `X-Amz-Expires` is not 1..=604800 in plain digits.
    InvalidExpiry,
    /// `X-Amz-Date` is later than now plus the clock-skew allowance.
    NotYetValid,
    /// Now is past `X-Amz-Date + X-Amz-Expires` (exact: no allowance).
    Expired,
    /// `X-Amz-SignedHeaders` is not lowercase names in ascending order.
    MalformedSignedHeaders,
    /// `host` is not among the signed headers.
    HostNotSigned,
    /// A signed header is not in the request.
    MissingSignedHeader(String),
    /// The request carries `x-amz-*` headers that are not among the signed headers (their
    /// lowercase names, comma-separated, at most 8 of them, then `…`). S3 refuses
    /// these on presigned requests (403 `AccessDenied`, "There were headers present in the
    /// request which were not signed"): they would change what is stored (metadata, ACLs,
    /// checksums, a copy source) without the signer having agreed to it.
    UnsignedHeaders(String),
    /// A signed `x-amz-content-sha256` is neither a lowercase hex SHA-256 nor `UNSIGNED-PAYLOAD`.
    MalformedContentSha256,
    /// The access key is not known to this server.
    UnknownAccessKey,
    /// `X-Amz-Signature` is not 64 lowercase hex digits.
    MalformedSignature,
    /// The signature is not the one the secret gives for this request.
    SignatureMismatch,
}

impl VerifyError {
    /// The S3 error code a server answers with (all with HTTP 403 except the query errors, 400).
    #[must_use]
    pub const fn s3_code(&self) -> &'static str {
        match self {
            Self::UnknownAccessKey => "InvalidAccessKeyId",
            Self::SignatureMismatch | Self::MissingSignedHeader(_) => "SignatureDoesNotMatch",
            Self::Anonymous | Self::Expired | Self::NotYetValid | Self::UnsignedHeaders(_) => {
                "AccessDenied"
            }
            _ => "AuthorizationQueryParametersError",
        }
    }

    /// The HTTP status S3 uses for this failure.
    #[must_use]
    pub const fn http_status(&self) -> u16 {
        match self.s3_code().as_bytes() {
            b"AuthorizationQueryParametersError" => 400,
            _ => 403,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedQuery => f.write_str("malformed query string"),
            Self::MalformedPath => f.write_str("malformed request path"),
            Self::Anonymous => f.write_str("Access Denied: the request is not presigned"),
            Self::MissingParameter(p) => write!(f, "query parameter {p} is missing"),
            Self::UnsupportedAlgorithm => f.write_str("only AWS4-HMAC-SHA256 is supported"),
            Self::MalformedCredential => f.write_str("malformed X-Amz-Credential"),
            Self::WrongScope => f.write_str("credential scope does not match this server"),
            Self::MalformedDate => f.write_str("malformed X-Amz-Date"),
            Self::InvalidExpiry => f.write_str("X-Amz-Expires must be 1..=604800"),
            Self::NotYetValid => f.write_str("request is not yet valid"),
            Self::Expired => f.write_str("request has expired"),
            Self::MalformedSignedHeaders => f.write_str("malformed X-Amz-SignedHeaders"),
            Self::HostNotSigned => f.write_str("the host header must be signed"),
            Self::MissingSignedHeader(h) => write!(f, "signed header {h:?} is missing"),
            Self::UnsignedHeaders(names) => write!(
                f,
                "There were headers present in the request which were not signed: {names}"
            ),
            Self::MalformedContentSha256 => f.write_str("malformed x-amz-content-sha256"),
            Self::UnknownAccessKey => f.write_str("unknown access key"),
            Self::MalformedSignature => f.write_str("malformed X-Amz-Signature"),
            Self::SignatureMismatch => f.write_str("signature does not match"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Checks presigned requests for one region and service.
#[derive(Debug, Clone)]
pub struct Verifier {
    region: String,
    service: String,
    max_clock_skew: u32,
}

/// The auth parameters of a presigned query, decoded.
#[derive(Default)]
struct AuthParams<'q> {
    algorithm: Option<std::borrow::Cow<'q, str>>,
    credential: Option<std::borrow::Cow<'q, str>>,
    date: Option<std::borrow::Cow<'q, str>>,
    expires: Option<std::borrow::Cow<'q, str>>,
    signed_headers: Option<std::borrow::Cow<'q, str>>,
    signature: Option<std::borrow::Cow<'q, str>>,
}

impl AuthParams<'_> {
    /// Whether no auth parameter was given at all.
    fn is_empty(&self) -> bool {
        [
            &self.algorithm,
            &self.credential,
            &self.date,
            &self.expires,
            &self.signed_headers,
            &self.signature,
        ]
        .iter()
        .all(|p| p.is_none())
    }
}

impl Verifier {
    /// A verifier for `region` and `service` (e.g. `us-east-1`, `s3`).
    ///
    /// `max_clock_skew` (seconds) is how far in the future a request's `X-Amz-Date` may be: the
    /// signer's clock may run ahead of ours. Expiry is exact and gets no allowance: a request
    /// is valid up to and including `X-Amz-Date + X-Amz-Expires` by the verifier's clock, and
    /// [`VerifyError::Expired`] one second later, as S3 answers (the signer's clock running
    /// behind only shortens a URL's life, it never extends it).
    ///
    /// # Errors
    /// [`Error::InvalidScope`] for an empty or malformed region or service.
    pub fn new(region: &str, service: &str, max_clock_skew: u32) -> Result<Self, Error> {
        check_scope_part(
            region,
            "region must be non-empty without '/', spaces or controls",
        )?;
        check_scope_part(
            service,
            "service must be non-empty without '/', spaces or controls",
        )?;
        Ok(Self {
            region: region.to_owned(),
            service: service.to_owned(),
            max_clock_skew,
        })
    }

    /// Verifies `req` at time `now`; `secret_for` looks up the secret of an access key.
    ///
    /// Time: `X-Amz-Date` may be at most the clock-skew allowance after `now`
    /// ([`VerifyError::NotYetValid`]); `now` may be at most `X-Amz-Date + X-Amz-Expires`
    /// ([`VerifyError::Expired`]), with no allowance.
    ///
    /// # Errors
    /// A [`VerifyError`] naming the first check that failed.
    pub fn verify<S: AsRef<str>>(
        &self,
        req: &ReceivedRequest<'_>,
        now: Timestamp,
        secret_for: impl FnOnce(&str) -> Option<S>,
    ) -> Result<Verified, VerifyError> {
        let path = encode(&decode(req.path).ok_or(VerifyError::MalformedPath)?, true).into_owned();
        let (auth, rest) = split_query(req.query)?;
        if auth.is_empty() {
            return Err(VerifyError::Anonymous);
        }
        let algorithm = need(auth.algorithm, "X-Amz-Algorithm")?;
        let credential = need(auth.credential, "X-Amz-Credential")?;
        let date = need(auth.date, "X-Amz-Date")?;
        let expires = need(auth.expires, "X-Amz-Expires")?;
        let signed_headers = need(auth.signed_headers, "X-Amz-SignedHeaders")?;
        let signature = need(auth.signature, "X-Amz-Signature")?;
        if algorithm != ALGORITHM {
            return Err(VerifyError::UnsupportedAlgorithm);
        }
        let signed_at = Timestamp::parse_amz(&date).map_err(|_| VerifyError::MalformedDate)?;
        let access_key = self.check_credential(&credential, signed_at)?;
        let expires_at = check_time(&expires, signed_at, now, self.max_clock_skew)?;
        let names = parse_signed_headers(&signed_headers)?;
        let headers = CanonicalHeaders::from_received(&names, req.headers)
            .map_err(|n| VerifyError::MissingSignedHeader(n.to_owned()))?;
        unsigned_amz_headers(&names, req.headers)?;
        let content_sha256 = content_sha256(&names, req.headers)?;
        let signature = decode_signature(&signature)?;

        // All pairs but the signature take part, auth parameters included.
        let mut pairs: Vec<(&str, &str)> =
            rest.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        pairs.extend([
            ("X-Amz-Algorithm", algorithm.as_ref()),
            ("X-Amz-Credential", credential.as_ref()),
            ("X-Amz-Date", date.as_ref()),
            ("X-Amz-Expires", expires.as_ref()),
            ("X-Amz-SignedHeaders", signed_headers.as_ref()),
        ]);
        let query = canonical_query(&pairs);
        let creq = CanonicalRequest {
            method: req.method,
            path: &path,
            query: &query,
            headers: &headers,
            payload: content_sha256.as_deref().unwrap_or("UNSIGNED-PAYLOAD"),
        };
        let secret = secret_for(access_key).ok_or(VerifyError::UnknownAccessKey)?;
        let key = DerivedKey::new(
            secret.as_ref(),
            signed_at.date_stamp(),
            &self.region,
            &self.service,
        );
        if !key.verify(signed_at.amz_date(), &creq.hash(), &signature) {
            return Err(VerifyError::SignatureMismatch);
        }
        Ok(Verified {
            access_key: access_key.to_owned(),
            signed_at,
            expires_at,
            signed_headers: names.iter().map(|n| (*n).to_owned()).collect(),
            content_sha256: content_sha256.filter(|h| h != "UNSIGNED-PAYLOAD"),
        })
    }

    fn check_credential<'c>(
        &self,
        credential: &'c str,
        signed_at: Timestamp,
    ) -> Result<&'c str, VerifyError> {
        credential_access_key(credential, signed_at, &self.region, &self.service).map_err(|e| {
            match e {
                ScopeError::Malformed => VerifyError::MalformedCredential,
                ScopeError::WrongScope => VerifyError::WrongScope,
            }
        })
    }
}

/// Why a credential (`AK/YYYYMMDD/region/service/aws4_request`) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScopeError {
    /// Not five `/`-separated parts, or an empty access key.
    Malformed,
    /// Date, region, service or terminator differ from this server's scope.
    WrongScope,
}

/// Checks a SigV4 credential against the scope `signed_at`/`region`/`service`
/// and returns its access key; shared by the query and POST-policy verifiers.
pub(crate) fn credential_access_key<'c>(
    credential: &'c str,
    signed_at: Timestamp,
    region: &str,
    service: &str,
) -> Result<&'c str, ScopeError> {
    let mut parts = credential.split('/');
    let (Some(ak), Some(date), Some(cred_region), Some(cred_service), Some(term), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(ScopeError::Malformed);
    };
    if ak.is_empty() {
        return Err(ScopeError::Malformed);
    }
    if date != signed_at.date_stamp()
        || cred_region != region
        || cred_service != service
        || term != "aws4_request"
    {
        return Err(ScopeError::WrongScope);
    }
    Ok(ak)
}

fn need<T>(value: Option<T>, name: &'static str) -> Result<T, VerifyError> {
    value.ok_or(VerifyError::MissingParameter(name))
}

type Pair<'q> = (std::borrow::Cow<'q, str>, std::borrow::Cow<'q, str>);

/// Splits the raw query into decoded auth parameters and the remaining pairs.
fn split_query(raw: &str) -> Result<(AuthParams<'_>, Vec<Pair<'_>>), VerifyError> {
    let mut auth = AuthParams::default();
    let mut rest = Vec::new();
    for segment in raw.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = segment.split_once('=').unwrap_or((segment, ""));
        let k = decode(k).ok_or(VerifyError::MalformedQuery)?;
        let v = decode(v).ok_or(VerifyError::MalformedQuery)?;
        let slot = match k.as_ref() {
            "X-Amz-Algorithm" => &mut auth.algorithm,
            "X-Amz-Credential" => &mut auth.credential,
            "X-Amz-Date" => &mut auth.date,
            "X-Amz-Expires" => &mut auth.expires,
            "X-Amz-SignedHeaders" => &mut auth.signed_headers,
            "X-Amz-Signature" => &mut auth.signature,
            _ => {
                rest.push((k, v));
                continue;
            }
        };
        if slot.replace(v).is_some() {
            return Err(VerifyError::MalformedQuery);
        }
    }
    Ok((auth, rest))
}

fn check_time(
    expires: &str,
    signed_at: Timestamp,
    now: Timestamp,
    skew: u32,
) -> Result<Timestamp, VerifyError> {
    let secs: u64 = expires
        .parse()
        .ok()
        .filter(|s| (1..=604_800).contains(s) && expires.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(VerifyError::InvalidExpiry)?;
    let expires_at = signed_at
        .checked_add(secs)
        .ok_or(VerifyError::InvalidExpiry)?;
    // The allowance covers a signer whose clock runs ahead; expiry is exact.
    if signed_at.unix() > now.unix().saturating_add(i64::from(skew)) {
        return Err(VerifyError::NotYetValid);
    }
    if now.unix() > expires_at.unix() {
        return Err(VerifyError::Expired);
    }
    Ok(expires_at)
}

/// `host;x-a;x-b`: non-empty lowercase names, strictly ascending, `host` among them.
fn parse_signed_headers(list: &str) -> Result<Vec<&str>, VerifyError> {
    let names: Vec<&str> = list.split(';').collect();
    let well_formed = names.iter().all(|n| {
        !n.is_empty()
            && n.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            })
    }) && names.windows(2).all(|w| matches!(w, [a, b] if a < b));
    if !well_formed {
        return Err(VerifyError::MalformedSignedHeaders);
    }
    if !names.contains(&"host") {
        return Err(VerifyError::HostNotSigned);
    }
    Ok(names)
}

/// How many unsigned header names [`VerifyError::UnsignedHeaders`] lists at most.
const MAX_NAMED_UNSIGNED: usize = 8;

/// Refuses `x-amz-*` request headers missing from the signed `names`, as S3 does for presigned
/// requests. No exception: S3 refuses unsigned `x-amz-checksum-*`, `x-amz-content-sha256`,
/// `x-amz-meta-*`, `x-amz-acl`, … alike (`x-amzn-*`, e.g. `x-amzn-trace-id`, is another prefix).
fn unsigned_amz_headers(names: &[&str], headers: &[(&str, &str)]) -> Result<(), VerifyError> {
    let mut unsigned: Vec<String> = Vec::new();
    let mut more = false;
    for (name, _) in headers {
        let is_amz = name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("x-amz-"));
        if !is_amz || names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if unsigned.contains(&lower) {
            continue;
        }
        if unsigned.len() == MAX_NAMED_UNSIGNED {
            more = true;
            break;
        }
        unsigned.push(lower);
    }
    if unsigned.is_empty() {
        return Ok(());
    }
    let mut list = unsigned.join(", ");
    if more {
        list.push_str(", …");
    }
    Err(VerifyError::UnsignedHeaders(list))
}

fn content_sha256(names: &[&str], headers: &[(&str, &str)]) -> Result<Option<String>, VerifyError> {
    if !names.contains(&"x-amz-content-sha256") {
        return Ok(None);
    }
    let value = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"))
        .map(|(_, v)| v.trim())
        .ok_or_else(|| VerifyError::MissingSignedHeader("x-amz-content-sha256".into()))?;
    let ok = value == "UNSIGNED-PAYLOAD"
        || (value.len() == 64
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    if ok {
        Ok(Some(value.to_owned()))
    } else {
        Err(VerifyError::MalformedContentSha256)
    }
}

fn decode_signature(sig: &str) -> Result<[u8; 32], VerifyError> {
    let mut out = [0_u8; 32];
    if sig.len() != 64 || sig.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(VerifyError::MalformedSignature);
    }
    hex::decode_to_slice(sig, &mut out).map_err(|_| VerifyError::MalformedSignature)?;
    Ok(out)
}
