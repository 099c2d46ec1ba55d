//! Header signing (`Authorization: AWS4-HMAC-SHA256 …`) for the gateway's own S3 calls.

use crate::canonical::{canonical_query, CanonicalHeaders, CanonicalRequest};
use crate::presign::AUTH_PARAMS;
use crate::request::{check_bucket, host, write_origin, write_path};
use crate::string_to_sign::ALGORITHM;
use crate::{Error, Explained, Request, Signer, Timestamp};
use std::fmt::Write;

/// A request signed in its headers: send `url` with the caller's own headers plus `headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The URL to send the request to.
    pub url: String,
    /// `authorization`, `x-amz-date`, and `x-amz-content-sha256` (S3) /
    /// `x-amz-security-token` (temporary credentials) where they apply.
    pub headers: Vec<(&'static str, String)>,
}

impl Signer {
    /// Signs `req` in an `Authorization` header. The payload hash is also sent and signed as
    /// `x-amz-content-sha256` when [`Signer::with_content_sha256_header`] says so (S3's default).
    ///
    /// # Errors
    /// As [`Signer::presign`].
    pub fn sign_headers(&self, req: &Request<'_>, now: Timestamp) -> Result<SignedRequest, Error> {
        self.sign_headers_traced(req, now, None)
    }

    /// Like [`Signer::sign_headers`], with the canonical request and string to sign.
    ///
    /// # Errors
    /// As [`Signer::presign`].
    pub fn sign_headers_explained(
        &self,
        req: &Request<'_>,
        now: Timestamp,
    ) -> Result<(SignedRequest, Explained), Error> {
        let mut trace = Explained::default();
        let signed = self.sign_headers_traced(req, now, Some(&mut trace))?;
        trace.url.clone_from(&signed.url);
        Ok((signed, trace))
    }

    fn sign_headers_traced(
        &self,
        req: &Request<'_>,
        now: Timestamp,
        trace: Option<&mut Explained>,
    ) -> Result<SignedRequest, Error> {
        check_bucket(req)?;
        let payload = req.payload.as_str()?;
        if let Some((k, _)) = req
            .query
            .iter()
            .find(|(k, _)| AUTH_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(k)))
        {
            return Err(Error::ReservedQuery((*k).to_owned()));
        }
        let key = self.key_for(now.date_stamp());
        let token = self.credentials.session_token();
        let sends_content_sha256 = self.content_sha256_header;

        let mut own: Vec<(&'static str, &str)> = Vec::with_capacity(3);
        if sends_content_sha256 {
            own.push(("x-amz-content-sha256", payload));
        }
        own.push(("x-amz-date", now.amz_date()));
        if let Some(token) = token {
            own.push(("x-amz-security-token", token));
        }
        let host = host(req);
        let headers = CanonicalHeaders::build(&host, req.headers, &own)?;
        let query = canonical_query(req.query);

        let mut url = String::with_capacity(64 + host.len() + req.key.len() * 3 + query.len());
        write_origin(&mut url, req, &host);
        let path_start = url.len();
        write_path(&mut url, req);
        let path_end = url.len();
        let creq = CanonicalRequest {
            method: req.method.as_str(),
            path: url.get(path_start..path_end).unwrap_or_default(),
            query: &query,
            headers: &headers,
            payload,
        };
        let hash = creq.hash();
        if let Some(trace) = trace {
            let mut text = String::new();
            creq.write(&mut text);
            trace.record(&text, now.amz_date(), &key.scope, &hash);
        }
        let signature = key.signature(now.amz_date(), &hash);

        let mut authorization = String::with_capacity(200);
        let _ = write!(
            authorization,
            "{ALGORITHM} Credential={}/{}, SignedHeaders=",
            self.credentials.access_key(),
            key.scope
        );
        headers.write_names(&mut authorization, ";");
        authorization.push_str(", Signature=");
        authorization.push_str(signature.as_str());

        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        let mut out = Vec::with_capacity(4);
        out.push(("authorization", authorization));
        out.push(("x-amz-date", now.amz_date().to_owned()));
        if sends_content_sha256 {
            out.push(("x-amz-content-sha256", payload.to_owned()));
        }
        if let Some(token) = token {
            out.push(("x-amz-security-token", token.to_owned()));
        }
        Ok(SignedRequest { url, headers: out })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Addressing, Credentials, Endpoint, Method, Payload, Request, Signer, Timestamp};

    #[test]
    fn s3_calls_sign_content_sha256_and_token() {
        let creds = Credentials::new("AK", "SK", Some("TOKEN".into())).unwrap();
        let signer = Signer::new(creds, "eu-west-1", "s3").unwrap();
        let ep = Endpoint::parse("http://127.0.0.1:8333").unwrap();
        let mut req = Request::new(Method::Get, &ep, Addressing::Path, "bucket", "");
        req.query = &[("list-type", "2"), ("prefix", "a b")];
        req.payload = Payload::Sha256Hex(crate::EMPTY_SHA256);
        let now = Timestamp::parse_amz("20261127T120000Z").unwrap();
        let signed = signer.sign_headers(&req, now).unwrap();
        assert_eq!(
            signed.url,
            "http://127.0.0.1:8333/bucket?list-type=2&prefix=a%20b"
        );
        let names: Vec<_> = signed.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "authorization",
                "x-amz-date",
                "x-amz-content-sha256",
                "x-amz-security-token"
            ]
        );
        let auth = &signed.headers[0].1;
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AK/20261127/eu-west-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="
        ));
        assert!(!auth.contains("SK"));
    }
}
