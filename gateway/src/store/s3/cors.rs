//! Bucket CORS (AWS GetBucketCors / PutBucketCors): read a bucket's rules, and set DraftStore's
//! rule on a draft bucket that has none, so browsers can PUT and POST straight to S3.

use super::client::Call;
use super::{xml, S3Storage};
use crate::store::{BucketCors, CorsRule};
use draftstore_core::{BucketName, StorageError};
use draftstore_signer::Method;
use quick_xml::escape::escape;
use serde::Deserialize;

/// GetBucketCors' answer.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct CorsConfiguration {
    #[serde(rename = "CORSRule")]
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Rule {
    allowed_origin: Vec<String>,
    allowed_method: Vec<String>,
    allowed_header: Vec<String>,
    expose_header: Vec<String>,
    max_age_seconds: Option<u32>,
}

impl From<Rule> for CorsRule {
    fn from(r: Rule) -> Self {
        Self {
            allowed_origins: r.allowed_origin,
            allowed_methods: r.allowed_method,
            allowed_headers: r.allowed_header,
            expose_headers: r.expose_header,
            max_age_seconds: r.max_age_seconds,
        }
    }
}

/// `<CORSConfiguration>` for PutBucketCors.
fn cors_request(rules: &[CorsRule]) -> String {
    let mut xml =
        String::from("<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for rule in rules {
        xml.push_str("<CORSRule>");
        for (tag, values) in [
            ("AllowedHeader", &rule.allowed_headers),
            ("AllowedMethod", &rule.allowed_methods),
            ("AllowedOrigin", &rule.allowed_origins),
            ("ExposeHeader", &rule.expose_headers),
        ] {
            for value in values {
                xml.push_str(&format!("<{tag}>{}</{tag}>", escape(value.as_str())));
            }
        }
        if let Some(secs) = rule.max_age_seconds {
            xml.push_str(&format!("<MaxAgeSeconds>{secs}</MaxAgeSeconds>"));
        }
        xml.push_str("</CORSRule>");
    }
    xml.push_str("</CORSConfiguration>");
    xml
}

impl S3Storage {
    /// `bucket`'s CORS rules; `None` when it has no CORS configuration.
    ///
    /// # Errors
    /// The call failed or its answer is not a CORS configuration.
    pub async fn bucket_cors(
        &self,
        bucket: &BucketName,
    ) -> Result<Option<Vec<CorsRule>>, StorageError> {
        let mut call = Call::new("GetBucketCors", Method::Get, bucket.as_str(), "");
        call.query = &[("cors", "")];
        let answer = match self.client.send(&call).await {
            Ok(answer) => answer,
            Err(f) if f.code == "NoSuchCORSConfiguration" => return Ok(None),
            Err(f) => return Err(f.error),
        };
        let config: CorsConfiguration = xml::parse(&answer.body, &call.what)
            .map_err(|reason| StorageError::Backend { reason })?;
        Ok(Some(config.rules.into_iter().map(CorsRule::from).collect()))
    }

    /// Replaces `bucket`'s CORS configuration with `rules` (PutBucketCors, with the
    /// `Content-MD5` S3 requires).
    ///
    /// # Errors
    /// The call failed.
    pub async fn put_bucket_cors(
        &self,
        bucket: &BucketName,
        rules: &[CorsRule],
    ) -> Result<(), StorageError> {
        let body = cors_request(rules).into_bytes();
        let mut call = Call::new("PutBucketCors", Method::Put, bucket.as_str(), "");
        call.query = &[("cors", "")];
        call.with_body("application/xml", body);
        self.client
            .send(&call)
            .await
            .map(|_| ())
            .map_err(Into::into)
    }

    /// See [`crate::store::Presign::ensure_cors`].
    pub(super) async fn ensure_draft_cors(
        &self,
        bucket: &BucketName,
        origins: &[String],
    ) -> BucketCors {
        let result = match self.bucket_cors(bucket).await {
            Ok(Some(rules)) if !rules.is_empty() => Ok(BucketCors::Existing(rules)),
            Ok(_) if origins.is_empty() => Ok(BucketCors::None),
            Ok(_) => {
                let rules = vec![CorsRule::for_uploads(origins)];
                self.put_bucket_cors(bucket, &rules)
                    .await
                    .map(|()| BucketCors::Set(rules))
            }
            Err(e) => Err(e),
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(%bucket, error = %e, "cannot read or set the draft bucket's CORS rules; browsers may be refused (see README: bucket CORS)");
            BucketCors::Unknown
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_written_are_read_back() {
        let rule = CorsRule::for_uploads(&["https://a.example".into(), "https://b&c".into()]);
        let text = cors_request(std::slice::from_ref(&rule));
        assert!(
            text.contains("<AllowedOrigin>https://b&amp;c</AllowedOrigin>"),
            "{text}"
        );
        let parsed: CorsConfiguration = xml::parse(text.as_bytes(), "b").unwrap();
        let back: Vec<CorsRule> = parsed.rules.into_iter().map(CorsRule::from).collect();
        assert_eq!(back, [rule]);
    }
}
