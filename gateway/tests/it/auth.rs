//! API keys and tenants against the real server: every endpoint and RPC without, with a wrong
//! and with a valid key; tenants cannot reach each other's objects whatever the name; keys in
//! a file rotate without a restart.

use crate::harness::{http1, start, status_of};
use draftstore_core::BucketName;
use draftstore_proto::draft::v1 as pb;
use draftstore_proto::prost::Message;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn keys() -> String {
    format!("acme {};globex {}", hash("acme-key"), hash("globex-key"))
}

/// The server with the two tenants' API keys (`acme-key`, `globex-key`) and `extra` settings.
async fn start_with_keys(extra: &[(&str, &str)]) -> Option<crate::harness::Running> {
    let keys = keys();
    let mut env = vec![
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", &keys),
    ];
    env.extend_from_slice(extra);
    start(&env).await
}

async fn call(
    server: &crate::harness::Running,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = http1().post(server.url(path)).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Every DraftService RPC with a message it accepts (field 1, `object_name = "x"`, is
/// shared by the three object requests; CreateDraftBucket takes an empty message).
fn rpc_probes() -> [(&'static str, Vec<u8>); 4] {
    let object = pb::GetUploadUrlRequest {
        object_name: "x".into(),
        constraints: None,
    }
    .encode_to_vec();
    [
        (pb::paths::GET_UPLOAD_URL, object.clone()),
        (pb::paths::GET_DOWNLOAD_URL, object.clone()),
        (pb::paths::CONFIRM_UPLOAD, object),
        (pb::paths::CREATE_DRAFT_BUCKET, Vec::new()),
    ]
}

/// A raw gRPC call (HTTP/2, one frame) with an optional bearer key; returns grpc-status.
async fn grpc(
    server: &crate::harness::Running,
    path: &str,
    key: Option<&str>,
    message: Vec<u8>,
) -> String {
    let framed = [&[0_u8][..], &(message.len() as u32).to_be_bytes(), &message].concat();
    let mut request = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .post(server.url(path))
        .header("content-type", "application/grpc")
        .body(framed);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let resp = request.send().await.unwrap();
    resp.headers()
        .get("grpc-status")
        .map_or_else(|| "0".to_owned(), |v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_endpoint_and_rpc_needs_a_valid_key() {
    let Some(server) = start_with_keys(&[]).await else {
        return;
    };
    for path in [
        "/api/v1/draft-bucket",
        "/api/v1/upload-url",
        "/api/v1/download-url",
        "/api/v1/confirm-upload",
    ] {
        let body = json!({"object_name": "x"});
        let (status, err) = call(&server, path, None, body.clone()).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (401, Some("UNAUTHENTICATED")),
            "{path} without a key"
        );
        assert_eq!(
            call(&server, path, Some("wrong-key"), body.clone()).await.0,
            401,
            "{path} with a wrong key"
        );
        assert_ne!(
            call(&server, path, Some("acme-key"), body).await.0,
            401,
            "{path} with a valid key"
        );
    }
    let resp = http1()
        .post(server.url("/api/v1/upload-url"))
        .json(&json!({"object_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    for path in ["/health", "/ready", "/metrics", "/openapi.json"] {
        assert_eq!(
            status_of(http1().get(server.url(path))).await,
            200,
            "{path} stays open"
        );
    }
    for (path, message) in rpc_probes() {
        assert_eq!(
            grpc(&server, path, None, message.clone()).await,
            "16",
            "{path} without a key: UNAUTHENTICATED"
        );
        assert_eq!(
            grpc(&server, path, Some("wrong-key"), message.clone()).await,
            "16",
            "{path} with a wrong key"
        );
        assert_ne!(
            grpc(&server, path, Some("acme-key"), message).await,
            "16",
            "{path} with a valid key"
        );
    }
    let check = draftstore_proto::grpc::health::v1::HealthCheckRequest::default().encode_to_vec();
    assert_eq!(
        grpc(
            &server,
            draftstore_proto::grpc::health::v1::CHECK_PATH,
            None,
            check
        )
        .await,
        "0",
        "health stays open"
    );
    server.stop().await;
}

/// Two `Authorization` headers (two tenants' keys) are refused: which one would count is
/// the client's guess, so neither does.
#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let Some(server) = start_with_keys(&[]).await else {
        return;
    };
    let response = http1()
        .post(server.url("/api/v1/upload-url"))
        .header("authorization", "Bearer acme-key")
        .header("authorization", "Bearer globex-key")
        .json(&json!({"object_name": "two.txt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_REQUEST", "{body}");
    let (status, _) = call(
        &server,
        "/api/v1/upload-url",
        Some("acme-key"),
        json!({"object_name": "one.txt"}),
    )
    .await;
    assert_eq!(status, 200, "one header is fine");
    server.stop().await;
}

#[tokio::test]
async fn tenants_cannot_reach_each_others_objects() {
    let Some(server) = start_with_keys(&[]).await else {
        return;
    };
    call(&server, "/api/v1/draft-bucket", Some("acme-key"), json!({})).await;
    let (_, up) = call(
        &server,
        "/api/v1/upload-url",
        Some("acme-key"),
        json!({"object_name": "report.pdf"}),
    )
    .await;
    assert_eq!(
        up["object_name"], "report.pdf",
        "the caller sees its own name"
    );
    assert_eq!(
        crate::harness::put_to(up["upload_url"].as_str().unwrap(), "acme's").await,
        200
    );
    let (status, done) = call(
        &server,
        "/api/v1/confirm-upload",
        Some("acme-key"),
        json!({"object_name": "report.pdf"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        done["final_location"],
        format!("{}/acme/report.pdf", server.config.buckets.main)
    );
    let main = BucketName::parse(server.config.buckets.main.as_str()).unwrap();
    assert_eq!(
        server
            .storage()
            .get_object(&main, "acme/report.pdf")
            .await
            .unwrap(),
        b"acme's",
        "stored under the tenant's prefix"
    );

    for name in [
        "report.pdf",
        "acme/report.pdf",
        "%2e%2e/acme/report.pdf",
        "..%2Facme%2Freport.pdf",
        "ａcme/report.pdf",
        "ACME/report.pdf",
    ] {
        for (path, body) in [
            (
                "/api/v1/download-url",
                json!({"object_name": name, "source": "main"}),
            ),
            ("/api/v1/confirm-upload", json!({"object_name": name})),
        ] {
            let (status, err) = call(&server, path, Some("globex-key"), body).await;
            assert_eq!(status, 404, "globex asking for {name:?} at {path}");
            // Named as the caller named it: never with its tenant's folder.
            let message = err["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(name) && !message.contains(&format!("globex/{name}")),
                "{path} {name:?}: {message}"
            );
        }
    }
    // A conflict says how to replace main's object, and names it as the caller does.
    let (_, up) = call(
        &server,
        "/api/v1/upload-url",
        Some("acme-key"),
        json!({"object_name": "report.pdf"}),
    )
    .await;
    assert_eq!(
        crate::harness::put_to(up["upload_url"].as_str().unwrap(), "acme's new").await,
        200
    );
    let (status, err) = call(
        &server,
        "/api/v1/confirm-upload",
        Some("acme-key"),
        json!({"object_name": "report.pdf"}),
    )
    .await;
    assert_eq!(status, 409, "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("overwrite") && !message.contains("acme/"),
        "{message}"
    );
    for name in [
        "../acme/report.pdf",
        "/acme/report.pdf",
        "./../acme/report.pdf",
        "a//../acme/report.pdf",
    ] {
        let (status, err) = call(
            &server,
            "/api/v1/download-url",
            Some("globex-key"),
            json!({"object_name": name, "source": "main"}),
        )
        .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some("INVALID_OBJECT_NAME")),
            "{name:?}"
        );
    }
    // The tenant prefix counts against S3's 1024-byte key limit.
    let (status, _) = call(
        &server,
        "/api/v1/upload-url",
        Some("acme-key"),
        json!({"object_name": "x".repeat(1020)}),
    )
    .await;
    assert_eq!(status, 400, "1020 + 'acme/' is over 1024");
    let (status, _) = call(
        &server,
        "/api/v1/upload-url",
        Some("acme-key"),
        json!({"object_name": "x".repeat(1019)}),
    )
    .await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn keys_in_a_file_rotate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    std::fs::write(&file, format!("acme {}\n", hash("first-key"))).unwrap();
    let path = file.to_str().unwrap().to_owned();
    let Some(server) = start(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS_FILE", &path),
    ])
    .await
    else {
        return;
    };
    assert_eq!(
        call(
            &server,
            "/api/v1/upload-url",
            Some("first-key"),
            json!({"object_name": "k"})
        )
        .await
        .0,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    std::fs::write(&file, format!("acme {}\n", hash("second-key"))).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(
        call(
            &server,
            "/api/v1/upload-url",
            Some("second-key"),
            json!({"object_name": "k"})
        )
        .await
        .0,
        200,
        "the new key works"
    );
    assert_eq!(
        call(
            &server,
            "/api/v1/upload-url",
            Some("first-key"),
            json!({"object_name": "k"})
        )
        .await
        .0,
        401,
        "the old key is gone"
    );
    server.stop().await;
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let Some(server) =
        start_with_keys(&[("DRAFTSTORE_CORS_ORIGINS", "https://app.example.com")]).await
    else {
        return;
    };
    let preflight = |origin: &'static str| {
        http1()
            .request(reqwest::Method::OPTIONS, server.url("/api/v1/upload-url"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    // Browsers send preflights without credentials: answered before authentication.
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(ok.status().as_u16(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let evil = preflight("https://evil.example").await.unwrap();
    assert_eq!(evil.status().as_u16(), 403);
    assert!(!evil.headers().contains_key("access-control-allow-origin"));

    let real = http1()
        .post(server.url("/api/v1/upload-url"))
        .header("origin", "https://app.example.com")
        .bearer_auth("acme-key")
        .json(&json!({"object_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(real.status().as_u16(), 200);
    assert_eq!(
        real.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(real.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("etag"));
    let other = http1()
        .post(server.url("/api/v1/upload-url"))
        .header("origin", "https://evil.example")
        .bearer_auth("acme-key")
        .json(&json!({"object_name": "x"}))
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    server.stop().await;
}

#[tokio::test]
async fn per_tenant_limits_are_enforced_over_rest_and_grpc() {
    let keys = format!(
        "acme {} max_size=100 types=image/png rate=3/3600;globex {}",
        hash("acme-key"),
        hash("globex-key")
    );
    let Some(server) = start(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", &keys),
    ])
    .await
    else {
        return;
    };
    let up = |body: Value| call(&server, "/api/v1/upload-url", Some("acme-key"), body);
    let (status, err) =
        up(json!({"object_name": "a.png", "content_type": "image/png", "content_length": 101}))
            .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("TENANT_LIMIT")),
        "over the size"
    );
    assert_eq!(
        up(json!({"object_name": "a.png", "content_type": "image/png"}))
            .await
            .0,
        403,
        "size not declared"
    );
    assert_eq!(
        up(json!({"object_name": "a.html", "content_type": "text/html", "content_length": 10}))
            .await
            .0,
        403,
        "type not allowed"
    );
    let ok = json!({"object_name": "a.png", "content_type": "image/png", "content_length": 10});
    for _ in 0..3 {
        assert_eq!(up(ok.clone()).await.0, 200);
    }
    let resp = http1()
        .post(server.url("/api/v1/upload-url"))
        .bearer_auth("acme-key")
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429, "the fourth URL in an hour");
    assert!(resp.headers().contains_key("retry-after"));
    let message = pb::GetUploadUrlRequest {
        object_name: "b.png".into(),
        constraints: Some(pb::UploadConstraints {
            content_type: "image/png".into(),
            content_length: Some(10),
            ..Default::default()
        }),
    }
    .encode_to_vec();
    assert_eq!(
        grpc(
            &server,
            pb::paths::GET_UPLOAD_URL,
            Some("acme-key"),
            message
        )
        .await,
        "8",
        "RESOURCE_EXHAUSTED"
    );
    let too_big = pb::GetUploadUrlRequest {
        object_name: "c.png".into(),
        constraints: Some(pb::UploadConstraints {
            content_type: "image/png".into(),
            content_length: Some(1000),
            ..Default::default()
        }),
    }
    .encode_to_vec();
    assert_eq!(
        grpc(
            &server,
            pb::paths::GET_UPLOAD_URL,
            Some("acme-key"),
            too_big
        )
        .await,
        "7",
        "PERMISSION_DENIED"
    );
    // Another tenant is not limited by acme's policy.
    assert_eq!(
        call(
            &server,
            "/api/v1/upload-url",
            Some("globex-key"),
            json!({"object_name": "big.bin"})
        )
        .await
        .0,
        200
    );
    server.stop().await;
}

/// A tenant's `types` are media types (RFC 9110 §8.3.1): `TEXT/Plain` is `text/plain` for the
/// policy over REST (upload-url, upload-form, multipart) and gRPC, while the type signed into
/// the upload stays as declared and the store wants it byte for byte (SigV4).
#[tokio::test]
async fn tenant_types_compare_case_insensitively_over_rest_and_grpc() {
    let keys = format!("acme {} types=text/plain,image/svg+xml", hash("acme-key"));
    let Some(server) = start(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", &keys),
    ])
    .await
    else {
        return;
    };
    let up = |body: Value| call(&server, "/api/v1/upload-url", Some("acme-key"), body);
    let (status, made) =
        up(json!({"object_name": "shout.txt", "content_type": "TEXT/PLAIN"})).await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(
        made["required_headers"]["content-type"], "TEXT/PLAIN",
        "signed as declared"
    );
    let url = made["upload_url"].as_str().unwrap();
    let put = |ct: &'static str| {
        let mut request = reqwest::Client::new().put(url).body("hello");
        for (name, value) in made["required_headers"].as_object().unwrap() {
            if name != "content-type" {
                request = request.header(name, value.as_str().unwrap());
            }
        }
        status_of(request.header("content-type", ct))
    };
    assert_eq!(
        put("text/plain").await,
        403,
        "the signed header is compared byte for byte"
    );
    assert_eq!(put("TEXT/PLAIN").await, 200);
    let (status, done) = call(
        &server,
        "/api/v1/confirm-upload",
        Some("acme-key"),
        json!({"object_name": "shout.txt"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    for (ct, want) in [
        ("Image/SVG+XML", 200),
        ("image/svg", 403),
        ("text/html", 403),
        ("Text/Plain; charset=utf-8", 403),
    ] {
        let (status, reply) = up(json!({"object_name": "a", "content_type": ct})).await;
        assert_eq!(status, want, "{ct}: {reply}");
        if want == 403 {
            assert_eq!(reply["error"]["code"], "TENANT_LIMIT", "{ct}");
        }
    }
    let (status, form) = call(
        &server,
        "/api/v1/upload-form",
        Some("acme-key"),
        json!({"object_name": "form.txt", "content_type": "Text/Plain"}),
    )
    .await;
    assert_eq!(status, 200, "{form}");
    assert_eq!(form["fields"]["Content-Type"], "Text/Plain");
    let (status, created) = call(
        &server,
        "/api/v1/multipart-upload",
        Some("acme-key"),
        json!({"object_name": "parts.txt", "content_type": "TEXT/plain"}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let grpc_up = |ct: &str| {
        pb::GetUploadUrlRequest {
            object_name: "g.txt".into(),
            constraints: Some(pb::UploadConstraints {
                content_type: ct.into(),
                ..Default::default()
            }),
        }
        .encode_to_vec()
    };
    let path = pb::paths::GET_UPLOAD_URL;
    assert_eq!(
        grpc(&server, path, Some("acme-key"), grpc_up("TEXT/PLAIN")).await,
        "0"
    );
    assert_eq!(
        grpc(&server, path, Some("acme-key"), grpc_up("text/csv")).await,
        "7",
        "PERMISSION_DENIED"
    );
    let form = pb::GetUploadFormRequest {
        object_name: "gform.svg".into(),
        content_type: "IMAGE/svg+XML".into(),
        ..Default::default()
    }
    .encode_to_vec();
    assert_eq!(
        grpc(&server, pb::paths::GET_UPLOAD_FORM, Some("acme-key"), form).await,
        "0"
    );
    server.stop().await;
}

#[tokio::test]
async fn jwts_authenticate_over_rest_and_grpc() {
    let Some(server) = start(&[
        ("DRAFTSTORE_AUTH", "jwt"),
        ("DRAFTSTORE_JWT_SECRET", "shared-secret"),
        ("DRAFTSTORE_JWT_ISSUER", "https://idp.example"),
        ("DRAFTSTORE_JWT_AUDIENCE", "draftstore"),
    ])
    .await
    else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |exp: u64, tenant: Option<&str>| {
        let mut claims = json!({"iss": "https://idp.example", "aud": "draftstore", "exp": exp});
        if let Some(t) = tenant {
            claims["tenant"] = Value::from(t);
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"shared-secret"),
        )
        .unwrap()
    };
    let body = json!({"object_name": "x"});
    assert_eq!(
        call(
            &server,
            "/api/v1/upload-url",
            Some(&token(now + 600, Some("acme"))),
            body.clone()
        )
        .await
        .0,
        200
    );
    let (status, err) = call(
        &server,
        "/api/v1/upload-url",
        Some(&token(now - 600, Some("acme"))),
        body.clone(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["message"].as_str()),
        (401, Some("the token has expired"))
    );
    assert_eq!(
        call(
            &server,
            "/api/v1/upload-url",
            Some(&token(now + 600, None)),
            body.clone()
        )
        .await
        .0,
        403,
        "valid but no tenant"
    );
    assert_eq!(call(&server, "/api/v1/upload-url", None, body).await.0, 401);
    // An expired token is refused by every endpoint and RPC.
    let expired = token(now - 600, Some("acme"));
    for path in [
        "/api/v1/draft-bucket",
        "/api/v1/upload-url",
        "/api/v1/download-url",
        "/api/v1/confirm-upload",
    ] {
        assert_eq!(
            call(&server, path, Some(&expired), json!({"object_name": "x"}))
                .await
                .0,
            401,
            "{path}"
        );
    }
    for (path, message) in rpc_probes() {
        assert_eq!(
            grpc(&server, path, Some(&expired), message).await,
            "16",
            "{path}"
        );
    }
    let message = pb::GetUploadUrlRequest {
        object_name: "x".into(),
        constraints: None,
    }
    .encode_to_vec();
    assert_eq!(
        grpc(
            &server,
            pb::paths::GET_UPLOAD_URL,
            Some(&token(now + 600, Some("acme"))),
            message.clone()
        )
        .await,
        "0"
    );
    assert_eq!(
        grpc(
            &server,
            pb::paths::GET_UPLOAD_URL,
            Some(&token(now - 600, Some("acme"))),
            message.clone()
        )
        .await,
        "16",
        "expired: UNAUTHENTICATED"
    );
    assert_eq!(
        grpc(
            &server,
            pb::paths::GET_UPLOAD_URL,
            Some(&token(now + 600, None)),
            message
        )
        .await,
        "7",
        "no tenant: PERMISSION_DENIED"
    );
    server.stop().await;
}

/// `nbf` (RFC 7519 §4.1.5) is checked with the same 30 s leeway as `exp`: a token valid from
/// tomorrow is refused today over both protocols, one a few seconds early is accepted.
#[tokio::test]
async fn jwt_not_before_is_checked_over_rest_and_grpc() {
    let Some(server) = start(&[
        ("DRAFTSTORE_AUTH", "jwt"),
        ("DRAFTSTORE_JWT_SECRET", "shared-secret"),
        ("DRAFTSTORE_JWT_ISSUER", "https://idp.example"),
        ("DRAFTSTORE_JWT_AUDIENCE", "draftstore"),
    ])
    .await
    else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |nbf: Value| {
        let claims = json!({"iss": "https://idp.example", "aud": "draftstore",
            "exp": now + 2 * 86_400, "nbf": nbf, "tenant": "acme"});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"shared-secret"),
        )
        .unwrap()
    };
    let message = pb::GetUploadUrlRequest {
        object_name: "x".into(),
        constraints: None,
    }
    .encode_to_vec();
    for (nbf, rest, grpc_status, what) in [
        (json!(now + 86_400), 401, "16", "valid from tomorrow"),
        (json!(now + 120), 401, "16", "beyond the leeway"),
        (json!("tomorrow"), 401, "16", "not a number"),
        (json!(now + 5), 200, "0", "within the leeway"),
        (json!(now - 3600), 200, "0", "valid since an hour"),
    ] {
        let t = token(nbf);
        let (status, body) = call(
            &server,
            "/api/v1/upload-url",
            Some(&t),
            json!({"object_name": "x"}),
        )
        .await;
        assert_eq!(status, rest, "{what}: {body}");
        if what == "valid from tomorrow" {
            assert_eq!(
                body["error"]["message"].as_str(),
                Some("the token is not valid yet (its nbf is in the future)")
            );
        }
        assert_eq!(
            grpc(
                &server,
                pb::paths::GET_UPLOAD_URL,
                Some(&t),
                message.clone()
            )
            .await,
            grpc_status,
            "{what}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn public_paths_are_configurable() {
    let Some(server) = start_with_keys(&[("DRAFTSTORE_PUBLIC_PATHS", "/health")]).await else {
        return;
    };
    assert_eq!(status_of(http1().get(server.url("/health"))).await, 200);
    assert_eq!(
        status_of(http1().get(server.url("/metrics"))).await,
        401,
        "metrics need a key now"
    );
    assert_eq!(
        status_of(
            http1()
                .get(server.url("/metrics"))
                .bearer_auth("globex-key")
        )
        .await,
        200
    );
    server.stop().await;
}

/// The embedded store's presigned URLs are mounted apart from the API: they need no API key
/// (each carries its own signature, checked by the store, which answers as S3 does), whatever
/// their content-type, and an API key does not replace that signature.
#[tokio::test]
async fn the_stores_urls_carry_their_own_signature_not_an_api_key() {
    let server = crate::harness::start_local(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", &keys()),
    ])
    .await;
    let (_, up) = call(
        &server,
        "/api/v1/upload-url",
        Some("acme-key"),
        json!({"object_name": "a.txt"}),
    )
    .await;
    let url = up["upload_url"].as_str().unwrap();
    assert_eq!(crate::harness::put_to(url, "signed").await, 200);

    let unsigned = server.url("/_store/main-draft/acme/a.txt");
    for request in [
        http1().put(&unsigned).body("x"),
        http1().put(&unsigned).bearer_auth("acme-key").body("x"),
        http1()
            .put(&unsigned)
            .header("content-type", "application/grpc")
            .body("x"),
    ] {
        let resp = request.send().await.unwrap();
        // S3's answer to a URL without query authentication (403 AccessDenied), not the API's
        // 401.
        assert_eq!(resp.status().as_u16(), 403);
        assert_eq!(resp.headers()["content-type"], "application/xml");
        let body = resp.text().await.unwrap();
        assert!(body.contains("<Error><Code>AccessDenied</Code>"), "{body}");
        assert!(!body.contains("UNAUTHENTICATED"), "{body}");
    }
    server.stop().await;
}

/// Without the embedded store nothing is mounted at its prefix: a plain unknown route.
#[tokio::test]
async fn no_store_endpoint_on_s3() {
    let Some(server) = crate::harness::start_s3(&[]).await else {
        return;
    };
    let resp = http1()
        .put(server.url("/_store/main-draft/a.txt"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NO_SUCH_ROUTE");
    server.stop().await;
}
