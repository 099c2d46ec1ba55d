//! S3's XML bodies: the responses we read (deserialized with quick-xml + serde) and the two
//! request bodies we write (escaped by hand: they are tiny).

use quick_xml::escape::escape;
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// GetBucketVersioning's answer; `status` is absent on a bucket never versioned.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct VersioningConfiguration {
    pub status: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListBucketResult {
    pub contents: Vec<Contents>,
    pub is_truncated: bool,
    pub next_continuation_token: Option<String>,
    pub encoding_type: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Contents {
    pub key: String,
    pub last_modified: String,
    #[serde(rename = "ETag")]
    pub etag: String,
    pub size: u64,
}

/// ListObjectVersions' answer: the versions (delete markers are not read). A key's versions
/// may be listed with delete markers between them (quick-xml's `overlapped-lists`).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListVersionsResult {
    pub version: Vec<VersionEntry>,
    pub encoding_type: Option<String>,
    /// More versions follow: ask again from `NextKeyMarker` / `NextVersionIdMarker`.
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct VersionEntry {
    pub key: String,
    pub version_id: String,
    pub last_modified: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeleteResult {
    pub deleted: Vec<Deleted>,
    pub error: Vec<DeleteError>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Deleted {
    pub key: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeleteError {
    pub key: String,
    pub version_id: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListMultipartUploadsResult {
    pub upload: Vec<UploadEntry>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct UploadEntry {
    pub key: String,
    pub upload_id: String,
    pub initiated: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct InitiateMultipartUploadResult {
    pub upload_id: String,
}

/// One page of ListParts.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListPartsResult {
    pub key: Option<String>,
    pub part: Vec<PartEntry>,
    pub is_truncated: bool,
    pub next_part_number_marker: Option<String>,
    /// `SHA256` when the upload was created with that checksum (absent on older servers).
    pub checksum_algorithm: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct PartEntry {
    pub part_number: u32,
    pub last_modified: String,
    #[serde(rename = "ETag")]
    pub etag: String,
    pub size: u64,
    #[serde(rename = "ChecksumSHA256")]
    pub checksum_sha256: Option<String>,
}

/// `CopyObjectResult`, `CopyPartResult` and `CompleteMultipartUploadResult` all carry an ETag.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct EtagResult {
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// Parses `body` as `T`, or names what failed.
pub fn parse<T: for<'de> Deserialize<'de>>(body: &[u8], what: &str) -> Result<T, String> {
    let text = std::str::from_utf8(body).map_err(|_| format!("{what}: response is not UTF-8"))?;
    quick_xml::de::from_str(text).map_err(|e| format!("{what}: malformed XML ({e})"))
}

/// True when a 200 answer is in fact an error (CopyObject and CompleteMultipartUpload may
/// fail after the status line was sent).
pub fn is_error_document(body: &[u8]) -> bool {
    let head = body.get(..body.len().min(256)).unwrap_or_default();
    let text = String::from_utf8_lossy(head);
    text.contains("<Error>") || text.contains("<Error ")
}

/// `<Delete>` for DeleteObjects: each object as (key, expected ETag, version id), the ETag
/// (a conditional delete) and the `VersionId` (that version, not the current object) where
/// given.
pub fn delete_request<'a>(
    objects: impl Iterator<Item = (&'a str, Option<&'a str>, Option<&'a str>)>,
) -> String {
    let mut xml = String::from(
        "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>false</Quiet>",
    );
    for (key, etag, version_id) in objects {
        xml.push_str("<Object><Key>");
        xml.push_str(&escape(key));
        xml.push_str("</Key>");
        if let Some(id) = version_id {
            xml.push_str("<VersionId>");
            xml.push_str(&escape(id));
            xml.push_str("</VersionId>");
        }
        if let Some(etag) = etag {
            xml.push_str("<ETag>\"");
            xml.push_str(&escape(etag));
            xml.push_str("\"</ETag>");
        }
        xml.push_str("</Object>");
    }
    xml.push_str("</Delete>");
    xml
}

/// `<CompleteMultipartUpload>` listing each part's number and ETag.
pub fn complete_request(parts: &[(u32, String)]) -> String {
    let mut xml =
        String::from("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (number, etag) in parts {
        xml.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>\"{}\"</ETag></Part>",
            escape(etag)
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// `<CompleteMultipartUpload>` listing each part's number, ETag and, where given, its
/// base64 SHA-256.
pub fn complete_parts_request<'a>(
    parts: impl Iterator<Item = (u32, &'a str, Option<&'a str>)>,
) -> String {
    let mut xml =
        String::from("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (number, etag, sha256) in parts {
        xml.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>\"{}\"</ETag>",
            escape(etag)
        ));
        if let Some(sha256) = sha256 {
            xml.push_str(&format!(
                "<ChecksumSHA256>{}</ChecksumSHA256>",
                escape(sha256)
            ));
        }
        xml.push_str("</Part>");
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// `CreateBucketConfiguration` for regions other than us-east-1.
pub fn create_bucket_request(region: &str) -> String {
    format!(
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
        escape(region)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_result_with_pages_and_encoded_keys() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<Contents><Key>a%20b</Key><LastModified>2026-11-27T12:00:00.000Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>c</Key><LastModified>2026-11-27T12:00:01Z</LastModified><ETag>"def"</ETag><Size>0</Size></Contents>
<NextContinuationToken>tok/1=</NextContinuationToken></ListBucketResult>"#;
        let r: ListBucketResult = parse(body, "list").unwrap();
        assert_eq!(r.contents.len(), 2);
        assert_eq!(r.contents[0].key, "a%20b");
        assert_eq!(r.contents[0].etag, "\"abc\"");
        assert_eq!(r.contents[0].size, 5);
        assert!(r.is_truncated);
        assert_eq!(r.next_continuation_token.as_deref(), Some("tok/1="));
        assert_eq!(r.encoding_type.as_deref(), Some("url"));
        let empty: ListBucketResult = parse(
            b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
            "list",
        )
        .unwrap();
        assert!(empty.contents.is_empty());
    }

    #[test]
    fn delete_result_mixes_deleted_and_errors() {
        let body = b"<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied</Code><Message>no</Message></Error></DeleteResult>";
        let r: DeleteResult = parse(body, "delete").unwrap();
        assert_eq!(r.deleted[0].key, "a");
        assert_eq!(
            (r.error[0].key.as_str(), r.error[0].code.as_str()),
            ("b", "AccessDenied")
        );
    }

    #[test]
    fn request_bodies_escape_keys() {
        let xml =
            delete_request([("a<b>&\"c'", Some("e1"), None), ("plain", None, None)].into_iter());
        assert!(
            xml.contains("<Key>a&lt;b&gt;&amp;&quot;c&apos;</Key><ETag>\"e1\"</ETag>"),
            "{xml}"
        );
        assert!(xml.contains("<Key>plain</Key></Object>"));
        let xml = complete_request(&[(1, "x".into()), (2, "y".into())]);
        assert!(xml.contains("<Part><PartNumber>2</PartNumber><ETag>\"y\"</ETag></Part>"));
    }

    #[test]
    fn list_parts_and_the_completion_body() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>
<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
<ChecksumAlgorithm>SHA256</ChecksumAlgorithm>
<Part><PartNumber>1</PartNumber><LastModified>2026-11-27T12:00:00.000Z</LastModified><ETag>&quot;aa&quot;</ETag><Size>5242880</Size><ChecksumSHA256>c2hh</ChecksumSHA256></Part>
<Part><PartNumber>2</PartNumber><ETag>"bb"</ETag><Size>3</Size></Part></ListPartsResult>"#;
        let r: ListPartsResult = parse(body, "parts").unwrap();
        assert_eq!(r.key.as_deref(), Some("k"));
        assert_eq!(r.part.len(), 2);
        assert_eq!((r.part[0].part_number, r.part[0].size), (1, 5_242_880));
        assert_eq!(r.part[0].checksum_sha256.as_deref(), Some("c2hh"));
        assert_eq!(r.part[1].checksum_sha256, None);
        assert!(r.is_truncated);
        assert_eq!(r.next_part_number_marker.as_deref(), Some("2"));
        assert_eq!(r.checksum_algorithm, "SHA256");
        let xml = complete_parts_request([(1, "aa", Some("c2hh")), (2, "bb", None)].into_iter());
        assert!(xml.contains("<Part><PartNumber>1</PartNumber><ETag>\"aa\"</ETag><ChecksumSHA256>c2hh</ChecksumSHA256></Part>"), "{xml}");
        assert!(xml.contains("<Part><PartNumber>2</PartNumber><ETag>\"bb\"</ETag></Part>"));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert!(
            parse::<ListBucketResult>(b"<ListBucketResult><Contents><Size>x</Size>", "list")
                .is_err()
        );
        assert!(parse::<ListBucketResult>(b"\xff\xfe", "list").is_err());
        assert!(is_error_document(
            b"<?xml version=\"1.0\"?>\n<Error><Code>InternalError</Code></Error>"
        ));
        assert!(!is_error_document(
            b"<CopyObjectResult><ETag>x</ETag></CopyObjectResult>"
        ));
    }
}
