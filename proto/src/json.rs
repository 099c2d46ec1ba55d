//! The generated proto3 JSON mapping (pbjson), held to prost-reflect's, which follows the
//! protobuf JSON spec message by message: every message of `draft.v1` and `grpc.health.v1`,
//! empty and with every field set, writes the same JSON and reads it back; then the details a
//! Connect client relies on, pinned as text.

use crate::draft::v1 as pb;
use crate::grpc::health::v1 as health;
use prost::{Message, Name};
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MapKey, MessageDescriptor, SerializeOptions, Value,
};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::fmt::Debug;

fn pool() -> DescriptorPool {
    DescriptorPool::decode(crate::DESCRIPTORS).unwrap()
}

/// A value of `kind` that is not its default (messages filled `depth` levels down).
fn value(kind: &Kind, depth: u32) -> Value {
    match kind {
        Kind::String => Value::String("a \"quoted\" ü/x".into()),
        Kind::Bool => Value::Bool(true),
        Kind::Uint32 => Value::U32(4_000_000_000),
        Kind::Uint64 => Value::U64(u64::MAX),
        Kind::Int32 => Value::I32(-7),
        Kind::Int64 => Value::I64(i64::MIN),
        Kind::Enum(e) => Value::EnumNumber(e.values().last().unwrap().number()),
        Kind::Message(m) if depth == 0 => Value::Message(DynamicMessage::new(m.clone())),
        Kind::Message(m) => Value::Message(full(m, depth - 1)),
        other => panic!("no test value for {other:?}: add one"),
    }
}

fn key(kind: &Kind) -> MapKey {
    match kind {
        Kind::String => MapKey::String("key".into()),
        Kind::Uint32 => MapKey::U32(3),
        other => panic!("no test map key for {other:?}: add one"),
    }
}

/// A message of type `desc` with every field set.
fn full(desc: &MessageDescriptor, depth: u32) -> DynamicMessage {
    let mut message = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        let set = match field.kind() {
            Kind::Message(entry) if field.is_map() => Value::Map(HashMap::from([(
                key(&entry.map_entry_key_field().kind()),
                value(&entry.map_entry_value_field().kind(), depth),
            )])),
            kind if field.is_list() => Value::List(vec![value(&kind, depth), value(&kind, depth)]),
            kind => value(&kind, depth),
        };
        message.set_field(&field, set);
    }
    message
}

/// Checks `T`'s JSON against prost-reflect's; returns `T`'s full name.
fn agrees<T>(pool: &DescriptorPool) -> String
where
    T: Message + Default + Name + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let name = T::full_name();
    let desc = pool.get_message_by_name(&name).unwrap();
    for message in [DynamicMessage::new(desc.clone()), full(&desc, 3)] {
        let ours = T::decode(&*message.encode_to_vec()).unwrap();
        let written = serde_json::to_value(&ours).unwrap();
        let reference = serde_json::to_value(&message).unwrap();
        assert_eq!(written, reference, "{name} written");
        let read: T = serde_json::from_value(reference).unwrap();
        assert_eq!(read, ours, "{name} read back");
        // The .proto field names are accepted when reading, as the spec requires.
        let options = SerializeOptions::new().use_proto_field_name(true);
        let proto_names = message
            .serialize_with_options(serde_json::value::Serializer, &options)
            .unwrap();
        let read: T = serde_json::from_value(proto_names).unwrap();
        assert_eq!(read, ours, "{name} read by .proto names");
    }
    name
}

#[test]
fn every_message_maps_as_prost_reflect_maps_it() {
    let pool = pool();
    let checked = [
        agrees::<pb::Result>(&pool),
        agrees::<pb::CreateDraftBucketRequest>(&pool),
        agrees::<pb::CreateDraftBucketResponse>(&pool),
        agrees::<pb::CorsRule>(&pool),
        agrees::<pb::UploadConstraints>(&pool),
        agrees::<pb::GetUploadUrlRequest>(&pool),
        agrees::<pb::GetUploadUrlResponse>(&pool),
        agrees::<pb::GetDownloadUrlRequest>(&pool),
        agrees::<pb::GetDownloadUrlResponse>(&pool),
        agrees::<pb::ConfirmUploadRequest>(&pool),
        agrees::<pb::ConfirmUploadResponse>(&pool),
        agrees::<pb::CreateMultipartUploadRequest>(&pool),
        agrees::<pb::CreateMultipartUploadResponse>(&pool),
        agrees::<pb::GetPartUploadUrlsRequest>(&pool),
        agrees::<pb::PartUploadUrl>(&pool),
        agrees::<pb::GetPartUploadUrlsResponse>(&pool),
        agrees::<pb::ListPartsRequest>(&pool),
        agrees::<pb::UploadedPart>(&pool),
        agrees::<pb::ListPartsResponse>(&pool),
        agrees::<pb::CompletedPart>(&pool),
        agrees::<pb::CompleteMultipartUploadRequest>(&pool),
        agrees::<pb::CompleteMultipartUploadResponse>(&pool),
        agrees::<pb::AbortMultipartUploadRequest>(&pool),
        agrees::<pb::AbortMultipartUploadResponse>(&pool),
        agrees::<pb::ListMultipartUploadsRequest>(&pool),
        agrees::<pb::MultipartUpload>(&pool),
        agrees::<pb::ListMultipartUploadsResponse>(&pool),
        agrees::<pb::ListDraftsRequest>(&pool),
        agrees::<pb::DraftObject>(&pool),
        agrees::<pb::ListDraftsResponse>(&pool),
        agrees::<pb::GetUploadFormRequest>(&pool),
        agrees::<pb::FormField>(&pool),
        agrees::<pb::GetUploadFormResponse>(&pool),
        agrees::<health::HealthCheckRequest>(&pool),
        agrees::<health::HealthCheckResponse>(&pool),
    ];
    // A message added to either package must be added above.
    let mut all: Vec<String> = pool
        .all_messages()
        .filter(|m| !m.is_map_entry())
        .filter(|m| ["draft.v1", "grpc.health.v1"].contains(&m.package_name()))
        .map(|m| m.full_name().to_owned())
        .collect();
    all.sort();
    let mut checked = checked.to_vec();
    checked.sort();
    assert_eq!(checked, all);
}

fn text<T: Serialize>(message: &T) -> String {
    serde_json::to_string(message).unwrap()
}

fn read<T: DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn names_are_lower_camel_case_json_names_and_proto_names_are_read() {
    let request = pb::GetUploadUrlRequest {
        object_name: "cat.jpg".into(),
        constraints: Some(pb::UploadConstraints {
            content_type: "image/jpeg".into(),
            content_length: Some(12),
            checksum_sha256: "q83v".into(),
            metadata: HashMap::from([("owner_id".into(), "7".into())]),
        }),
    };
    // Field-number order; map keys are never renamed.
    assert_eq!(
        text(&request),
        r#"{"objectName":"cat.jpg","constraints":{"contentType":"image/jpeg","contentLength":"12","checksumSha256":"q83v","metadata":{"owner_id":"7"}}}"#
    );
    let by_proto_names = r#"{"object_name":"cat.jpg","constraints":{"content_type":"image/jpeg","content_length":12,"checksum_sha256":"q83v","metadata":{"owner_id":"7"}}}"#;
    assert_eq!(
        read::<pb::GetUploadUrlRequest>(by_proto_names).unwrap(),
        request
    );
    // json_name of names with digits and of long ones, as protoc derives it.
    let parts = pb::GetPartUploadUrlsRequest {
        checksums_sha256: HashMap::from([(2, "abc".into())]),
        ..Default::default()
    };
    assert_eq!(text(&parts), r#"{"checksumsSha256":{"2":"abc"}}"#);
    let form = pb::GetUploadFormResponse {
        expires_at_cut_by_credentials: true,
        ..Default::default()
    };
    assert_eq!(text(&form), r#"{"expiresAtCutByCredentials":true}"#);
    let cors = pb::CreateDraftBucketResponse {
        draft_bucket_cors_rules: vec![pb::CorsRule {
            max_age_seconds: Some(0),
            ..Default::default()
        }],
        ..Default::default()
    };
    // A proto3 `optional` field is written when set, even to its default.
    assert_eq!(
        text(&cors),
        r#"{"draftBucketCorsRules":[{"maxAgeSeconds":0}]}"#
    );
}

#[test]
fn sixty_four_bit_integers_are_strings_and_numbers_are_read() {
    let confirmed = pb::ConfirmUploadResponse {
        size: u64::MAX,
        ..Default::default()
    };
    assert_eq!(text(&confirmed), r#"{"size":"18446744073709551615"}"#);
    for json in [r#"{"size":"5"}"#, r#"{"size":5}"#] {
        assert_eq!(
            read::<pb::ConfirmUploadResponse>(json).unwrap().size,
            5,
            "{json}"
        );
    }
    for bad in [r#"{"size":"-1"}"#, r#"{"size":"five"}"#, r#"{"size":1.5}"#] {
        assert!(read::<pb::ConfirmUploadResponse>(bad).is_err(), "{bad}");
    }
    // 32-bit integers are numbers.
    let part = pb::UploadedPart {
        part_number: 3,
        size: 10,
        ..Default::default()
    };
    assert_eq!(text(&part), r#"{"partNumber":3,"size":"10"}"#);
}

#[test]
fn enums_are_written_by_name_and_read_by_name_or_number() {
    let failed = pb::Result {
        success: false,
        error_message: "gone".into(),
        error_type: pb::ErrorType::ObjectNotFound as i32,
    };
    assert_eq!(
        text(&failed),
        r#"{"errorMessage":"gone","errorType":"ERROR_TYPE_OBJECT_NOT_FOUND"}"#
    );
    for json in [
        r#"{"errorType":"ERROR_TYPE_OBJECT_NOT_FOUND"}"#,
        r#"{"errorType":2}"#,
    ] {
        assert_eq!(read::<pb::Result>(json).unwrap().error_type, 2, "{json}");
    }
    assert!(read::<pb::Result>(r#"{"errorType":"OBJECT_NOT_FOUND"}"#).is_err());
    let main = pb::GetDownloadUrlRequest {
        object_name: "a".into(),
        source: pb::Source::Main as i32,
    };
    assert_eq!(text(&main), r#"{"objectName":"a","source":"SOURCE_MAIN"}"#);
    let serving = health::HealthCheckResponse {
        status: health::health_check_response::ServingStatus::Serving as i32,
    };
    assert_eq!(text(&serving), r#"{"status":"SERVING"}"#);
}

#[test]
fn empty_messages_defaults_unknown_fields_and_nulls() {
    assert_eq!(text(&pb::CreateDraftBucketRequest {}), "{}");
    assert_eq!(text(&pb::GetUploadUrlResponse::default()), "{}");
    assert_eq!(
        read::<pb::CreateDraftBucketRequest>("{}").unwrap(),
        pb::CreateDraftBucketRequest {}
    );
    // Unknown fields, of any shape, are skipped (connect-go's DiscardUnknown).
    let newer: pb::GetUploadUrlRequest =
        read(r#"{"fromTheFuture":{"x":[1,null]},"objectName":"a","n":1}"#).unwrap();
    assert_eq!(newer.object_name, "a");
    assert!(read::<pb::CreateDraftBucketRequest>(r#"{"x":1}"#).is_ok());
    // `null` is "not set" for a message or an `optional` field; for a plain scalar pbjson
    // refuses it (proto3 would read the default): a clean error, never a wrong value.
    let unset: pb::GetUploadUrlRequest = read(r#"{"objectName":"a","constraints":null}"#).unwrap();
    assert_eq!(unset.constraints, None);
    let optional: pb::UploadConstraints = read(r#"{"contentLength":null}"#).unwrap();
    assert_eq!(optional.content_length, None);
    assert!(read::<pb::GetUploadUrlRequest>(r#"{"objectName":null}"#).is_err());
    // Not an object, a wrong type, a field twice (by either name), trailing bytes.
    for bad in [
        "[]",
        "5",
        r#"{"objectName":5}"#,
        r#"{"objectName":"a","object_name":"b"}"#,
        r#"{"constraints":"x"}"#,
    ] {
        assert!(read::<pb::GetUploadUrlRequest>(bad).is_err(), "{bad}");
    }
    assert!(serde_json::from_slice::<pb::GetUploadUrlRequest>(b"{} x").is_err());
}
