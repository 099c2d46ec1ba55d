//! Uppy's Companion S3 protocol (issue 16) over real sockets with reqwest, replaying exactly the
//! requests `@uppy/aws-s3` 6.3.1 sends (`src/s3-client/CompanionS3.ts`, `src/S3Uploader.ts`):
//! a multipart upload (create, one part URL per part, PUT without headers, resume's list,
//! complete with `{PartNumber, ETag}`), a small file through the POST form, each confirmed
//! through `/s3/confirm`, main holding the exact bytes; upload tokens scoped to a tenant
//! (another tenant's key or upload, expired, tampered and foreign tokens); errors in Companion's
//! shape; CORS for the browser. On the store `DRAFTSTORE_TEST_STORE` names.

use crate::harness::{http1, start, start_s3, Running};
use draftstore_gateway::api::companion::UploadTokens;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;
const SECRET: &str = "an upload token secret of 32+ bytes, for tests";

/// What JavaScript's `encodeURIComponent` leaves as is.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

fn component(text: &str) -> String {
    utf8_percent_encode(text, URI_COMPONENT).to_string()
}

/// Uppy's `S3Companion` client: `fetch(companionEndpoint + "/s3" + path)`, no header of ours.
struct Uppy {
    endpoint: String,
    client: reqwest::Client,
}

impl Uppy {
    fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            client: http1(),
        }
    }

    async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}/s3{path}", self.endpoint);
        Self::answer(self.client.get(url).query(query)).await
    }

    async fn post(&self, path: &str, query: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/s3{path}", self.endpoint);
        let mut request = self.client.post(url).query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::answer(request).await
    }

    async fn delete(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let url = format!("{}/s3{path}", self.endpoint);
        Self::answer(self.client.delete(url).query(query)).await
    }

    /// `createMultipartUpload`: the key and upload id.
    async fn create(&self, filename: &str, file_type: &str) -> (String, String) {
        let (status, reply) = self
            .post(
                "/multipart",
                &[],
                Some(json!({
                    "filename": filename,
                    "metadata": {"name": filename, "type": file_type, "relativePath": null},
                    "type": file_type,
                })),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        (
            reply["key"].as_str().unwrap().to_owned(),
            reply["uploadId"].as_str().unwrap().to_owned(),
        )
    }

    /// `uploadPart`: a part URL, then a PUT of the bytes with no header at all; the ETag,
    /// unquoted as Uppy's `sanitizeETag` leaves it.
    async fn upload_part(&self, key: &str, upload_id: &str, number: u32, bytes: Vec<u8>) -> String {
        let path = format!("/multipart/{}/{number}", component(upload_id));
        let (status, reply) = self.get(&path, &[("key", key)]).await;
        assert_eq!(status, 200, "{reply}");
        assert!(reply["expires"].as_i64().unwrap() > 0, "{reply}");
        let put = reqwest::Client::new()
            .put(reply["url"].as_str().unwrap())
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
        let etag = put.headers()["etag"].to_str().unwrap().to_owned();
        etag.trim_matches('"').to_owned()
    }

    /// `listParts`: `(PartNumber, ETag, Size)` of each stored part.
    async fn list_parts(&self, key: &str, upload_id: &str) -> Vec<(u64, String, u64)> {
        let path = format!("/multipart/{}", component(upload_id));
        let (status, reply) = self.get(&path, &[("key", key)]).await;
        assert_eq!(status, 200, "{reply}");
        reply
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["PartNumber"].as_u64().unwrap(),
                    p["ETag"].as_str().unwrap().to_owned(),
                    p["Size"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// `completeMultipartUpload`: the reply (`location`, `key`, `bucket`).
    async fn complete(&self, key: &str, upload_id: &str, parts: &[(u32, String)]) -> Value {
        let path = format!("/multipart/{}/complete", component(upload_id));
        let parts: Vec<Value> = parts
            .iter()
            .map(|(n, etag)| json!({"PartNumber": n, "ETag": etag}))
            .collect();
        let (status, reply) = self
            .post(&path, &[("key", key)], Some(json!({"parts": parts})))
            .await;
        assert_eq!(status, 200, "{reply}");
        reply
    }

    /// DraftStore's `/s3/confirm`.
    async fn confirm(&self, key: &str) -> (u16, Value) {
        self.post("/confirm", &[("key", key)], None).await
    }
}

/// Bytes that differ from part to part.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(31))
        .collect()
}

/// Uppy's multipart path for a file of `len` bytes in 5 MiB chunks (its minimum), with a
/// resume's `listParts` before the last part; confirmed. The key.
async fn multipart_upload(uppy: &Uppy, server: &Running, filename: &str, len: usize) -> String {
    let file = data(len, 7);
    let (key, upload_id) = uppy.create(filename, "video/mp4").await;
    let chunks: Vec<&[u8]> = file.chunks(5 * MIB).collect();
    let mut parts = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let number = u32::try_from(i + 1).unwrap();
        if number == u32::try_from(chunks.len()).unwrap() {
            // A page reload: Golden Retriever kept {uploadId, key}; Uppy lists what is stored.
            let listed = uppy.list_parts(&key, &upload_id).await;
            let expected: Vec<(u64, String, u64)> = parts
                .iter()
                .map(|(n, etag): &(u32, String)| {
                    (u64::from(*n), format!("\"{etag}\""), (5 * MIB) as u64)
                })
                .collect();
            assert_eq!(listed, expected);
        }
        let etag = uppy
            .upload_part(&key, &upload_id, number, chunk.to_vec())
            .await;
        parts.push((number, etag));
    }
    let done = uppy.complete(&key, &upload_id, &parts).await;
    assert_eq!(done["key"], key.as_str());
    assert_eq!(done["bucket"], server.config.buckets.draft.as_str());
    // Uppy's uploadURL: a preview of the draft.
    assert_eq!(
        crate::harness::fetch(done["location"].as_str().unwrap()).await,
        file
    );
    let (status, confirmed) = uppy.confirm(&key).await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["key"], key.as_str());
    assert_eq!(confirmed["size"], len);
    let main = server
        .storage()
        .get_object(&server.config.buckets.main, &key)
        .await
        .unwrap();
    assert_eq!(
        Sha256::digest(&main),
        Sha256::digest(&file),
        "main holds the exact bytes"
    );
    key
}

#[tokio::test]
async fn uppy_multipart_upload_lands_in_main_byte_for_byte() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let uppy = Uppy::new(server.url(""));
    let key = multipart_upload(&uppy, &server, "holiday video (1).mp4", 11 * MIB + 12_345).await;
    // DraftStore chose the key: a UUID, then the file name.
    let (uuid, rest) = key.split_at(36);
    assert_eq!(rest, "-holiday video (1).mp4");
    assert_eq!(uuid.matches('-').count(), 4, "{key}");
    server.stop().await;
}

/// A POST form as the browser's `FormData` sends it: the fields, then `file`.
fn form_body(
    fields: &serde_json::Map<String, Value>,
    file: &[u8],
    file_type: &str,
) -> (String, Vec<u8>) {
    let boundary = "----UppyFormBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{}\r\n",
                value.as_str().unwrap()
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob\"\r\nContent-Type: {file_type}\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uppy's small-file path (`putObject`): `GET /s3/params` names the key and the form.
async fn params(uppy: &Uppy, filename: &str, file_type: &str) -> Value {
    let (status, form) = uppy
        .get(
            "/params",
            &[
                ("filename", filename),
                ("type", file_type),
                ("metadata[name]", filename),
                ("metadata[type]", file_type),
            ],
        )
        .await;
    assert_eq!(status, 200, "{form}");
    assert_eq!(form["method"], "POST");
    assert!(form["expires"].as_i64().unwrap() > 0);
    let fields = form["fields"].as_object().unwrap();
    for field in ["key", "policy", "x-amz-signature", "x-amz-credential"] {
        assert!(
            fields.keys().any(|k| k.eq_ignore_ascii_case(field)),
            "{field}: {form}"
        );
    }
    form
}

#[tokio::test]
async fn uppy_params_answer_a_form_for_a_new_key() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let uppy = Uppy::new(server.url(""));
    let form = params(&uppy, "notes/cat.txt", "text/plain").await;
    let key = form["fields"]["key"].as_str().unwrap();
    assert!(key.ends_with("-cat.txt") && key.len() == 36 + 8, "{key}");
    let other = params(&uppy, "notes/cat.txt", "text/plain").await;
    assert_ne!(
        other["fields"]["key"], form["fields"]["key"],
        "a new key each time"
    );
    let (status, reply) = uppy.get("/params", &[("type", "text/plain")]).await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (400, Some("INVALID_REQUEST")),
        "{reply}"
    );
    assert!(reply["message"].as_str().unwrap().contains("filename"));
    server.stop().await;
}

/// The POST itself on SeaweedFS (the embedded store's POST upload is form16's).
#[tokio::test]
async fn uppy_small_file_post_form_lands_in_main_on_s3() {
    let Some(server) = start_s3(&[]).await else {
        return;
    };
    let uppy = Uppy::new(server.url(""));
    let file = data(100 * 1024, 3);
    let form = params(&uppy, "cat.txt", "text/plain").await;
    let (content_type, body) = form_body(form["fields"].as_object().unwrap(), &file, "text/plain");
    let posted = reqwest::Client::new()
        .post(form["url"].as_str().unwrap())
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = posted.status().as_u16();
    assert!(
        (200..300).contains(&status),
        "{status}: {}",
        posted.text().await.unwrap()
    );
    let key = form["fields"]["key"].as_str().unwrap();
    let (status, confirmed) = uppy.confirm(key).await;
    assert_eq!(status, 200, "{confirmed}");
    let main = server
        .storage()
        .get_object(&server.config.buckets.main, key)
        .await
        .unwrap();
    assert_eq!(main, file);
    server.stop().await;
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A server with tenants `acme` (`acme-key`) and `globex` (`globex-key`) and the token secret.
async fn start_with_tenants(extra: &[(&str, &str)]) -> Option<Running> {
    let keys = format!("acme {};globex {}", hash("acme-key"), hash("globex-key"));
    let mut env = vec![
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", keys.as_str()),
        ("DRAFTSTORE_UPLOAD_TOKEN_SECRET", SECRET),
    ];
    env.extend_from_slice(extra);
    start(&env).await
}

/// `POST /api/v1/upload-token` with `key`: the reply.
async fn upload_token(server: &Running, key: &str) -> Value {
    let response = http1()
        .post(server.url("/api/v1/upload-token"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

#[tokio::test]
async fn upload_tokens_carry_a_tenant_and_nothing_more() {
    let Some(server) = start_with_tenants(&[]).await else {
        return;
    };
    // Without a key: no token, and no plain /s3/ either (Companion's error shape there).
    let status = crate::harness::status_of(http1().post(server.url("/api/v1/upload-token"))).await;
    assert_eq!(status, 401);
    let (status, reply) = Uppy::new(server.url("")).create_raw("a.bin").await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (401, Some("UNAUTHENTICATED")),
        "{reply}"
    );
    assert!(reply["message"].is_string(), "{reply}");

    // A client that can send headers uses plain /s3/ with its bearer key.
    let response = http1()
        .post(server.url("/s3/multipart"))
        .bearer_auth("globex-key")
        .json(&json!({"filename": "b.bin", "type": "application/octet-stream"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert!(
        reply["key"].as_str().unwrap().starts_with("globex/"),
        "{reply}"
    );

    let acme = upload_token(&server, "acme-key").await;
    let endpoint = acme["companion_endpoint"].as_str().unwrap();
    let token = acme["token"].as_str().unwrap();
    assert_eq!(endpoint, server.url(&format!("/s3-token/{token}")));
    assert!(acme["expires_at"].as_str().unwrap().ends_with('Z'));
    let uppy = Uppy::new(endpoint);
    let key = multipart_upload(&uppy, &server, "report.pdf", 5 * MIB + 1).await;
    assert!(
        key.starts_with("acme/") && key.ends_with("-report.pdf"),
        "{key}"
    );

    // Another tenant's token reaches none of acme's keys or uploads.
    let (acme_key, acme_upload) = uppy.create("second.bin", "application/octet-stream").await;
    let globex = Uppy::new(
        upload_token(&server, "globex-key").await["companion_endpoint"]
            .as_str()
            .unwrap(),
    );
    let upload_path = format!("/multipart/{}", component(&acme_upload));
    for (status, reply) in [
        globex.get(&upload_path, &[("key", &acme_key)]).await,
        globex.delete(&upload_path, &[("key", &acme_key)]).await,
        globex
            .get(&format!("{upload_path}/1"), &[("key", &acme_key)])
            .await,
        globex.confirm(&key).await,
    ] {
        assert_eq!(
            (status, reply["code"].as_str()),
            (403, Some("FOREIGN_KEY")),
            "{reply}"
        );
    }
    // acme's upload id under a globex key names no upload of globex's.
    let disguised = acme_key.replacen("acme/", "globex/", 1);
    let (status, reply) = globex.get(&upload_path, &[("key", &disguised)]).await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (404, Some("NO_SUCH_UPLOAD")),
        "{reply}"
    );
    // acme's upload is untouched: acme still aborts it.
    let (status, reply) = uppy.delete(&upload_path, &[("key", &acme_key)]).await;
    assert_eq!((status, reply), (200, json!({})));
    let (status, reply) = uppy.get(&upload_path, &[("key", &acme_key)]).await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (404, Some("NO_SUCH_UPLOAD")),
        "{reply}"
    );

    // Expired, tampered and foreign tokens are 401, without echoing the token.
    let expired = UploadTokens::new(SECRET.as_bytes(), 60)
        .unwrap()
        .mint(Some("acme"), 1_000_000)
        .0;
    let foreign = UploadTokens::new(b"another secret, also of 32+ bytes!", 3600)
        .unwrap()
        .mint(Some("acme"), draftstore_gateway::clock::unix_now().unwrap())
        .0;
    let mut tampered = token.to_owned().into_bytes();
    tampered[3] = if tampered[3] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (bad, says) in [
        (&expired, "expired"),
        (&foreign, "not valid"),
        (&tampered, "not valid"),
    ] {
        let uppy = Uppy::new(server.url(&format!("/s3-token/{bad}")));
        let (status, reply) = uppy.confirm(&key).await;
        let message = reply["message"].as_str().unwrap();
        assert_eq!(
            (status, reply["code"].as_str()),
            (401, Some("UNAUTHENTICATED")),
            "{reply}"
        );
        assert!(
            message.contains(says) && !message.contains(bad.as_str()),
            "{message}"
        );
    }
    // A token names a tenant; it is no bearer key for the rest of the API.
    let response = http1()
        .post(server.url("/api/v1/upload-url"))
        .bearer_auth(token)
        .json(&json!({"object_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn replicas_sharing_the_secret_accept_each_others_tokens() {
    let Some(one) = start_with_tenants(&[]).await else {
        return;
    };
    let Some(two) = start_with_tenants(&[]).await else {
        return;
    };
    let token = upload_token(&one, "acme-key").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uppy = Uppy::new(two.url(&format!("/s3-token/{token}")));
    let (key, _) = uppy.create("a.bin", "application/octet-stream").await;
    assert!(key.starts_with("acme/"), "{key}");
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn companion_errors_have_companions_shape_and_statuses() {
    let Some(server) = start(&[("DRAFTSTORE_CORS_ORIGINS", "https://app.example.com")]).await
    else {
        return;
    };
    let uppy = Uppy::new(server.url(""));
    let (key, upload_id) = uppy.create("a.bin", "application/octet-stream").await;
    let upload = format!("/multipart/{}", component(&upload_id));
    let mut cases: Vec<(u16, &str, (u16, Value))> = vec![
        (400, "INVALID_REQUEST", uppy.get(&upload, &[]).await),
        (
            400,
            "INVALID_PART",
            uppy.get(&format!("{upload}/0"), &[("key", &key)]).await,
        ),
        (
            400,
            "INVALID_PART",
            uppy.get(&format!("{upload}/x"), &[("key", &key)]).await,
        ),
        (
            400,
            "INVALID_OBJECT_NAME",
            uppy.get(&upload, &[("key", "../x")]).await,
        ),
        (
            404,
            "NO_SUCH_UPLOAD",
            uppy.get(
                "/multipart/0123456789abcdef0123456789abcdef",
                &[("key", &key)],
            )
            .await,
        ),
        (
            400,
            "INVALID_REQUEST",
            uppy.post("/multipart", &[], Some(json!({"type": "a/b"})))
                .await,
        ),
        (
            400,
            "INVALID_CONSTRAINTS",
            uppy.post(
                "/multipart",
                &[],
                Some(json!({"filename": "a", "type": "a\u{1}b"})),
            )
            .await,
        ),
        (
            400,
            "INVALID_REQUEST",
            uppy.post(
                &format!("{upload}/complete"),
                &[("key", &key)],
                Some(json!({"parts": "all"})),
            )
            .await,
        ),
        (
            400,
            "INVALID_PART",
            uppy.post(
                &format!("{upload}/complete"),
                &[("key", &key)],
                Some(json!({"parts": []})),
            )
            .await,
        ),
        (404, "NOT_FOUND", uppy.confirm(&key).await),
        (
            405,
            "METHOD_NOT_ALLOWED",
            uppy.post(&upload, &[("key", &key)], None).await,
        ),
    ];
    // A complete naming 10 000 parts (about 600 KiB) is read whole, past the 64 KiB body limit
    // of other routes, and refused for its parts, not its size.
    let many: Vec<Value> = (1..=10_000)
        .map(|n| json!({"PartNumber": n, "ETag": format!("{n:032x}-{n:020}")}))
        .collect();
    let large = uppy
        .post(
            &format!("{upload}/complete"),
            &[("key", &key)],
            Some(json!({"parts": many})),
        )
        .await;
    cases.push((400, "INVALID_PART", large));
    for (status, code, (got, reply)) in cases {
        assert_eq!(
            (got, reply["code"].as_str()),
            (status, Some(code)),
            "{reply}"
        );
        assert!(
            reply["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{reply}"
        );
        assert!(
            reply.get("error").is_none(),
            "Companion's shape, not REST's: {reply}"
        );
    }
    // A browser's preflight for Uppy's abort (DELETE) and JSON POSTs.
    let preflight = http1()
        .request(
            reqwest::Method::OPTIONS,
            server.url(&format!("/s3{upload}")),
        )
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(
        methods.contains("DELETE") && methods.contains("POST"),
        "{methods}"
    );
    let answer = http1()
        .get(server.url(&format!("/s3{upload}")))
        .query(&[("key", &key)])
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    server.stop().await;
}

/// Against S3 without DRAFTSTORE_UPLOAD_TOKEN_SECRET there are no tokens: replicas could not
/// check each other's.
#[tokio::test]
async fn without_a_shared_secret_s3_mints_no_tokens() {
    let keys = format!("acme {}", hash("acme-key"));
    let Some(server) = start_s3(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", &keys),
    ])
    .await
    else {
        return;
    };
    let response = http1()
        .post(server.url("/api/v1/upload-token"))
        .bearer_auth("acme-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 501);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["error"]["code"], "UPLOAD_TOKENS_OFF");
    server.stop().await;
}

impl Uppy {
    /// `createMultipartUpload` whatever the answer.
    async fn create_raw(&self, filename: &str) -> (u16, Value) {
        self.post(
            "/multipart",
            &[],
            Some(json!({"filename": filename, "type": "application/octet-stream"})),
        )
        .await
    }
}

/// A token is a credential: the real binary's access log (README's documented filter) and its
/// error lines show the path with `<token>` in its place.
#[test]
fn tokens_never_reach_the_log() {
    use crate::local_store::{curl, serve_with};
    let dir = tempfile::tempdir().unwrap();
    let keys = format!("acme {}", hash("acme-key"));
    let mut gateway = serve_with(
        dir.path(),
        &[
            (
                "DRAFTSTORE_LOG",
                "info,draftstore_gateway::http::server=debug",
            ),
            ("DRAFTSTORE_AUTH", "api-keys"),
            ("DRAFTSTORE_API_KEYS", &keys),
        ],
    );
    let base = format!("http://127.0.0.1:{}", gateway.port);
    let (body, code) = curl(&[
        "-XPOST",
        &format!("{base}/api/v1/upload-token"),
        "-H",
        "authorization: Bearer acme-key",
    ]);
    assert_eq!(code, "200", "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    let token = reply["token"].as_str().unwrap();
    let endpoint = reply["companion_endpoint"].as_str().unwrap();
    let create = [
        "-XPOST",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"filename": "a.bin", "type": "application/octet-stream"}"#,
    ];
    let (body, code) = curl(&[&create[..], &[&format!("{endpoint}/s3/multipart")]].concat());
    assert_eq!(code, "200", "{body}");
    // Failures are logged at INFO with their path: an unknown upload, an unknown route.
    let (_, code) = curl(&[&format!("{endpoint}/s3/multipart/nope?key=acme/a.bin")]);
    assert_eq!(code, "404");
    let (body, code) = curl(&[&format!("{endpoint}/s3/sts")]);
    assert_eq!(code, "404", "{body}");
    gateway.child.kill().unwrap();
    let mut logs = String::new();
    std::io::Read::read_to_string(gateway.child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    assert!(!logs.contains(token), "the token is in the logs:\n{logs}");
    let mac = token.rsplit('.').next().unwrap();
    assert!(
        !logs.contains(mac),
        "the token's MAC is in the logs:\n{logs}"
    );
    for path in [
        "path=/s3-token/<token>/s3/multipart ",
        "path=/s3-token/<token>/s3/multipart/nope",
        "path=/s3-token/<token>/s3/sts",
    ] {
        assert!(logs.contains(path), "{path}:\n{logs}");
    }
}

/// `/s3/confirm` is confirm-upload: the pre-confirm check runs, and its refusal is 422 `REJECTED`
/// in Companion's shape (the draft stays).
#[tokio::test]
async fn s3_confirm_runs_the_pre_confirm_check() {
    let (addr, calls) = crate::events::scanner(std::time::Duration::ZERO).await;
    let url = format!("http://{addr}/check");
    let Some(server) = start(&[
        ("DRAFTSTORE_PRECONFIRM_URL", &url),
        ("DRAFTSTORE_WEBHOOK_SECRET", crate::events::SECRET),
    ])
    .await
    else {
        return;
    };
    let uppy = Uppy::new(server.url(""));
    let mut keys = Vec::new();
    for (name, bytes) in [
        ("clean.txt", "hello".as_bytes()),
        ("eicar.com", crate::events::EICAR.as_bytes()),
    ] {
        let (key, upload_id) = uppy.create(name, "text/plain").await;
        let etag = uppy.upload_part(&key, &upload_id, 1, bytes.to_vec()).await;
        uppy.complete(&key, &upload_id, &[(1, etag)]).await;
        keys.push(key);
    }
    let (status, reply) = uppy.confirm(&keys[0]).await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = uppy.confirm(&keys[1]).await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (422, Some("REJECTED")),
        "{reply}"
    );
    assert!(
        reply["message"].as_str().unwrap().contains("Eicar"),
        "{reply}"
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    let draft = server
        .storage()
        .get_object(&server.config.buckets.draft, &keys[1])
        .await
        .unwrap();
    assert_eq!(
        draft,
        crate::events::EICAR.as_bytes(),
        "the refused draft stays"
    );
    server.stop().await;
}

/// Under `/s3-token/`, the token stands in for the bearer key: a path there that is no route
/// (older Uppy's `…/batch`, an API route, an empty token) is 404, never a 401 asking for a key
/// the client cannot send.
#[tokio::test]
async fn paths_under_a_token_that_are_no_route_are_404() {
    let Some(server) = start_with_tenants(&[]).await else {
        return;
    };
    let acme = upload_token(&server, "acme-key").await;
    let token = acme["token"].as_str().unwrap();
    let (_, upload) = Uppy::new(acme["companion_endpoint"].as_str().unwrap())
        .create("a.bin", "application/octet-stream")
        .await;
    for path in [
        format!(
            "/s3-token/{token}/s3/multipart/{}/batch?partNumbers=1,2",
            component(&upload)
        ),
        format!("/s3-token/{token}/api/v1/list-drafts"),
        format!("/s3-token/{token}/s3/sts"),
        "/s3-token//s3/params".to_owned(),
    ] {
        let response = http1().get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let text = response.text().await.unwrap();
        assert!(!text.contains(token), "{path}: {text}");
        assert!(!text.contains("Bearer"), "{path}: {text}");
    }
}

/// A tenant limited to some types: a declared type outside them is named as not allowed, not
/// reported as missing.
#[tokio::test]
async fn a_declared_type_outside_the_tenants_types_is_named() {
    let keys = format!("lim {} types=image/png", hash("lim-key"));
    let Some(server) = start(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", keys.as_str()),
    ])
    .await
    else {
        return;
    };
    let response = http1()
        .get(server.url("/s3/params?filename=a.html&type=text/html"))
        .bearer_auth("lim-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let reply: Value = response.json().await.unwrap();
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains("\"text/html\" is not allowed") && message.contains("image/png"),
        "{reply}"
    );
}
