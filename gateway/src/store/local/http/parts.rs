//! UploadPart on the embedded store (AWS "UploadPart"): a presigned
//! `PUT /_store/<bucket>/<key>?partNumber=N&uploadId=ID`, checked like any PUT of the store
//! (signature, stall timeout, size limit, checksums, full disk), stored as part `N` of the
//! upload, replacing an earlier upload of `N`. The upload must exist for this key before a byte
//! is kept: an unknown id is 404 `NoSuchUpload`. At most 5 GiB (and the store's object limit)
//! per part; an upload created with SHA-256 checksums needs `x-amz-checksum-sha256`.

use super::{Algorithm, Checks, Failure};
use crate::http::response::{full, Body};
use crate::store::local::{uploads, LocalStorage};
use bytes::Bytes;
use draftstore_core::MAX_PART_SIZE;
use http::{HeaderMap, Response};
use hyper::body::Incoming;

/// Which part a PUT stores: `(part number, upload id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartTarget {
    pub number: u32,
    pub upload_id: String,
}

/// The part a PUT's query names (`partNumber` and `uploadId`, once each), `None` for a plain
/// PUT.
///
/// # Errors
/// 400 `InvalidArgument` for one without the other, a repeat, or a number outside 1..=10000.
pub fn target(query: &str) -> Result<Option<PartTarget>, Failure> {
    let invalid = |message: &str| Failure::new(400, "InvalidArgument", message);
    let (mut number, mut upload_id) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "partNumber" => &mut number,
            "uploadId" => &mut upload_id,
            _ => continue,
        };
        if slot.is_some() {
            return Err(invalid("partNumber and uploadId may each be given once."));
        }
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| invalid("The query is not UTF-8."))?;
        *slot = Some(value.into_owned());
    }
    let (number, upload_id) = match (number, upload_id) {
        (None, None) => return Ok(None),
        (Some(n), Some(id)) => (n, id),
        _ => return Err(invalid("An UploadPart needs both partNumber and uploadId.")),
    };
    let number = number
        .parse::<u32>()
        .ok()
        .filter(|n| draftstore_core::check_part_number(*n).is_ok())
        .ok_or_else(|| invalid("Part number must be an integer between 1 and 10000, inclusive."))?;
    Ok(Some(PartTarget { number, upload_id }))
}

impl LocalStorage {
    /// Receives one part (see the module doc) and answers its ETag as S3 does.
    pub(super) async fn put_part(
        &self,
        (bucket, key): (String, String),
        part: PartTarget,
        headers: &HeaderMap,
        body: Incoming,
        signed_sha256: Option<&str>,
    ) -> Result<Response<Body>, Failure> {
        let checks = Checks::from_headers(headers, signed_sha256)?;
        let upload = {
            let (bucket, key, id) = (bucket.clone(), key.clone(), part.upload_id.clone());
            self.blocking(move |root, _, _| uploads::read_upload(root, &bucket, &key, &id))
                .await
                .map_err(Failure::storage)?
                .1
        };
        if upload.sha256 && !matches!(checks.checksum, Some((Algorithm::Sha256, _))) {
            return Err(Failure::new(
                400,
                "InvalidRequest",
                "This upload was created with SHA-256 checksums: send x-amz-checksum-sha256 with each part.",
            ));
        }
        let limit = MAX_PART_SIZE.min(self.max_object);
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(super::too_large());
        }
        let mut digests = checks.digests();
        let (tmp, size) = self.receive(body, &mut digests, limit).await?;
        let done = digests.finish();
        checks.verify(&done)?;
        let meta = uploads::PartMeta {
            part_number: part.number,
            data: String::new(),
            size,
            etag: done.md5.clone(),
            checksum_sha256: checks.kept_sha256(&done),
        };
        let answer = meta.clone();
        self.blocking(move |root, lock, gate| {
            let upload = (bucket.as_str(), key.as_str(), part.upload_id.as_str());
            uploads::commit_part(root, (lock, &gate), upload, meta, tmp)
        })
        .await
        .map_err(Failure::storage)?;
        let mut response = Response::new(full(Bytes::new()));
        if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", answer.etag)) {
            response.headers_mut().insert("etag", v);
        }
        if let Some(v) = answer
            .checksum_sha256
            .and_then(|s| http::HeaderValue::from_str(&s).ok())
        {
            response.headers_mut().insert("x-amz-checksum-sha256", v);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_a_part_or_none() {
        assert_eq!(target("").unwrap(), None);
        assert_eq!(target("X-Amz-Date=1&x-id=PutObject").unwrap(), None);
        assert_eq!(
            target("partNumber=3&uploadId=ab%63&X-Amz-Expires=60").unwrap(),
            Some(PartTarget {
                number: 3,
                upload_id: "abc".into()
            })
        );
        for bad in [
            "partNumber=1",
            "uploadId=x",
            "partNumber=0&uploadId=x",
            "partNumber=10001&uploadId=x",
            "partNumber=-1&uploadId=x",
            "partNumber=1&partNumber=2&uploadId=x",
            "partNumber=1&uploadId=%FF",
        ] {
            let failure = target(bad).unwrap_err();
            assert_eq!(
                (failure.refusal.status, failure.refusal.code),
                (400, "InvalidArgument"),
                "{bad}"
            );
        }
    }
}
