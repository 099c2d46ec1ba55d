//! Clients of the original Go DraftStore: its four REST routes and its JSON shapes, and our
//! gRPC replies, decoded with the original's own message definitions
//! (`tests/it/original/draft.proto`, compiled here with protox; JSON read with the proto3 JSON
//! mapping of prost-reflect, unknown fields refused), so a field or number of ours that an
//! original client would misread fails here.

use crate::harness::{http1, start, Running};
use draftstore_proto::draft::v1 as pb;
use draftstore_proto::prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use serde_json::json;
use std::path::Path;

fn pool() -> DescriptorPool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/original");
    protox::Compiler::new([dir])
        .unwrap()
        .open_file("draft.proto")
        .unwrap()
        .descriptor_pool()
}

/// `text` read as the original's JSON of `message` (unknown fields are an error).
fn from_json(message: &str, text: &str) -> DynamicMessage {
    let desc = pool()
        .get_message_by_name(&format!("original.draft.{message}"))
        .unwrap();
    let mut de = serde_json::Deserializer::from_str(text);
    let decoded = DynamicMessage::deserialize(desc, &mut de)
        .unwrap_or_else(|e| panic!("{message} from {text}: {e}"));
    de.end().unwrap();
    decoded
}

/// `bytes` decoded as the original's protobuf `message`.
fn from_proto(message: &str, bytes: &[u8]) -> DynamicMessage {
    let desc = pool()
        .get_message_by_name(&format!("original.draft.{message}"))
        .unwrap();
    DynamicMessage::decode(desc, bytes).unwrap()
}

/// The original's `Result` of `reply`: (success, error_message, error_type).
fn result(reply: &DynamicMessage) -> (bool, String, i32) {
    let Value::Message(result) = reply.get_field_by_name("result").unwrap().into_owned() else {
        panic!("result is a message")
    };
    let field = |name: &str| result.get_field_by_name(name).unwrap().into_owned();
    let (Value::Bool(success), Value::String(message), Value::EnumNumber(kind)) = (
        field("success"),
        field("error_message"),
        field("error_type"),
    ) else {
        panic!("Result's fields have the original's types")
    };
    (success, message, kind)
}

fn url(reply: &DynamicMessage) -> String {
    match reply.get_field_by_name("url").unwrap().into_owned() {
        Value::String(url) => url,
        other => panic!("url: {other:?}"),
    }
}

/// POSTs `body` to an original route: the status, the `Allow` header and the text.
async fn post(server: &Running, path: &str, body: serde_json::Value) -> (u16, String) {
    let answer = http1()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap())
}

#[tokio::test]
async fn original_clients_run_the_flow_on_the_original_routes() {
    let Some(server) = start(&[]).await else {
        return;
    };
    // The bucket route ignores its body, whatever it is.
    let answer = http1()
        .post(server.url("/api/v1/draft/bucket"))
        .header("content-type", "text/plain")
        .body("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let created = from_json("CreateDraftBucketResponse", &answer.text().await.unwrap());
    assert_eq!(result(&created), (true, String::new(), 0));

    let name = json!({"object_name": "legacy/cat.txt"});
    let (status, text) = post(&server, "/api/v1/draft/upload-url", name.clone()).await;
    assert_eq!(status, 200, "{text}");
    let up = from_json("GetUploadURLResponse", &text);
    assert!(result(&up).0);
    assert_eq!(crate::harness::put_to(&url(&up), "meow").await, 200);

    let (status, text) = post(&server, "/api/v1/draft/confirm", name.clone()).await;
    assert_eq!(status, 200, "{text}");
    assert!(result(&from_json("ConfirmUploadResponse", &text)).0);

    let main = json!({"object_name": "legacy/cat.txt", "source": "main"});
    let (status, text) = post(&server, "/api/v1/draft/download-url", main).await;
    assert_eq!(status, 200, "{text}");
    let down = from_json("GetDownloadURLResponse", &text);
    assert_eq!(crate::harness::fetch(&url(&down)).await, b"meow");
    server.stop().await;
}

#[tokio::test]
async fn failures_keep_our_statuses_and_carry_the_originals_error_types() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let pool = pool();
    let names = pool.get_enum_by_name("original.draft.ErrorType").unwrap();
    let name_of = |n: i32| names.get_value(n).map(|v| v.name().to_owned());
    let failure = |text: &str| {
        let (success, message, kind) = result(&from_json("GetUploadURLResponse", text));
        assert!(!success, "{text}");
        assert!(!message.is_empty(), "{text}");
        // Exactly the original's failure shape: no url, no error object of ours.
        let raw: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(raw.as_object().unwrap().len(), 1, "{text}");
        assert_eq!(raw["result"].as_object().unwrap().len(), 2, "{text}");
        kind
    };

    let (status, text) = post(
        &server,
        "/api/v1/draft/upload-url",
        json!({"object_name": "a/../b"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        name_of(failure(&text)).as_deref(),
        Some("ERROR_TYPE_INVALID_OBJECT_NAME")
    );

    let missing = json!({"object_name": "legacy/never-uploaded"});
    let (status, text) = post(&server, "/api/v1/draft/confirm", missing.clone()).await;
    assert_eq!(status, 404);
    assert_eq!(
        name_of(failure(&text)).as_deref(),
        Some("ERROR_TYPE_OBJECT_NOT_FOUND")
    );
    let (status, text) = post(&server, "/api/v1/draft/download-url", missing).await;
    assert_eq!(status, 404);
    assert_eq!(failure(&text), pb::ErrorType::ObjectNotFound as i32);

    // A conflict has no original type: ours, after the original's. (Drafts written straight
    // to the store, as rest_api's conflict test does.)
    let name = json!({"object_name": "twice.txt"});
    for body in ["one", "two"] {
        let draft = &server.config.buckets.draft;
        let options = draftstore_core::PutOptions::default();
        let bytes = body.as_bytes().to_vec();
        let stored = server
            .storage()
            .put_object(draft, "twice.txt", bytes, &options);
        stored.await.unwrap();
        let (status, text) = post(&server, "/api/v1/draft/confirm", name.clone()).await;
        if body == "one" {
            assert_eq!(status, 200, "{text}");
        } else {
            assert_eq!(status, 409, "{text}");
            assert_eq!(failure(&text), pb::ErrorType::Conflict as i32);
            assert!(failure(&text) > 11, "not one of the original's");
        }
    }

    // Errors made before the handler (405, bad JSON) have the same shape.
    let answer = http1()
        .get(server.url("/api/v1/draft/confirm"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 405);
    assert_eq!(answer.headers()["allow"], "POST");
    assert_eq!(
        failure(&answer.text().await.unwrap()),
        pb::ErrorType::InvalidArgument as i32
    );
    let answer = http1()
        .post(server.url("/api/v1/draft/upload-url"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(
        failure(&answer.text().await.unwrap()),
        pb::ErrorType::InvalidArgument as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn the_original_routes_need_the_same_credentials_as_ours() {
    let keys = format!("acme {}", crate::harness::key_hash("acme-key"));
    let Some(server) = crate::harness::start_with_keys(&keys).await else {
        return;
    };
    let body = json!({"object_name": "legacy/key.txt"});
    let answer = http1()
        .post(server.url("/api/v1/draft/upload-url"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(answer.headers()["www-authenticate"], "Bearer");
    let text = answer.text().await.unwrap();
    assert_eq!(
        result(&from_json("GetUploadURLResponse", &text)).2,
        pb::ErrorType::AccessDenied as i32
    );
    let answer = http1()
        .post(server.url("/api/v1/draft/upload-url"))
        .bearer_auth("acme-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let up = from_json("GetUploadURLResponse", &answer.text().await.unwrap());
    // The tenant's folder, as on our routes.
    assert!(url(&up).contains("/acme/legacy/key.txt"), "{}", url(&up));
    server.stop().await;
}

/// Our `ErrorType` has the original's names and numbers, and our gRPC replies decode with the
/// original's messages.
#[tokio::test]
async fn grpc_replies_decode_with_the_originals_messages() {
    let pool = pool();
    let original = pool.get_enum_by_name("original.draft.ErrorType").unwrap();
    assert_eq!(original.values().count(), 12);
    for value in original.values() {
        assert_eq!(
            pb::ErrorType::from_str_name(value.name()).map(|t| t as i32),
            Some(value.number()),
            "{}",
            value.name()
        );
    }
    let Some(server) = start(&[]).await else {
        return;
    };
    let mut grpc = crate::grpc_api::client(server.addr).await;
    let up: pb::GetUploadUrlResponse = crate::grpc_api::call(
        &mut grpc,
        pb::paths::GET_UPLOAD_URL,
        pb::GetUploadUrlRequest {
            object_name: "legacy/grpc.txt".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let decoded = from_proto("GetUploadURLResponse", &up.encode_to_vec());
    assert_eq!(result(&decoded), (true, String::new(), 0));
    assert_eq!(url(&decoded), up.url);
    let created: pb::CreateDraftBucketResponse = crate::grpc_api::call(
        &mut grpc,
        pb::paths::CREATE_DRAFT_BUCKET,
        pb::CreateDraftBucketRequest {},
    )
    .await
    .unwrap();
    let decoded = from_proto("CreateDraftBucketResponse", &created.encode_to_vec());
    assert!(result(&decoded).0);
    server.stop().await;
}
