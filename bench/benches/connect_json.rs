//! Connect's JSON codec for one GetUploadURL call, both ways (the request's JSON read into
//! protobuf, the answer's protobuf written as JSON): the generated proto3 mapping the gateway
//! uses (pbjson's serde impls of the prost types) against prost-reflect's dynamic messages
//! (what it used before), and the floor every protocol pays, protobuf alone (decode the
//! request, encode the answer). Compare within one run: the difference between a codec and the
//! floor is what Connect JSON adds to a call over native gRPC or Connect protobuf. `gateway
//! read` is the gateway's own reading (pbjson, normalised only when pbjson refuses the text):
//! on a plain request it should cost what `pbjson` costs; `normalised` is a request that
//! takes the second reading.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use draftstore_proto::draft::v1 as pb;
use draftstore_proto::prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage};

const REQUEST: &[u8] = br#"{"objectName": "uploads/2026/11/photo of cat.jpg"}"#;
/// The same request with a length in exponent form and a `null`: the forms pbjson refuses and
/// the gateway normalises.
const NORMALISED: &[u8] = br#"{"objectName": "uploads/2026/11/photo of cat.jpg", "constraints": {"contentLength": 1e3, "contentType": null}}"#;

/// A request with an integer and a map (the fields the gateway checks before pbjson reads).
const CONSTRAINED: &[u8] = br#"{"objectName": "uploads/2026/11/photo of cat.jpg", "constraints": {"contentType": "image/jpeg", "contentLength": 52341, "metadata": {"owner": "u-17", "album": "holidays"}}}"#;

/// An answer shaped like the gateway's (a presigned URL of the embedded store).
fn answer() -> Vec<u8> {
    pb::GetUploadUrlResponse {
        result: Some(pb::Result {
            success: true,
            ..Default::default()
        }),
        url: format!(
            "http://127.0.0.1:8080/_store/main-draft/uploads/2026/11/photo%20of%20cat.jpg?\
             X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=draftstore%2F20261130%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20261130T210000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={}",
            "a".repeat(64)
        ),
        object_name: "uploads/2026/11/photo of cat.jpg".into(),
        expires_at: "2026-11-30T22:00:00Z".into(),
        required_headers: [("x-amz-meta-draftstore".to_owned(), "1".to_owned())].into(),
        method: "PUT".into(),
        expires_at_cut_by_credentials: false,
    }
    .encode_to_vec()
}

/// The request's reading alone: pbjson (what the gateway's reading was on valid text before
/// its checking pass) against the gateway's reading (checking pass, then pbjson).
fn reading(c: &mut Criterion) {
    let mut group = c.benchmark_group("connect_json_read");
    let read = draftstore_gateway::api::grpc::connect::json::read::<pb::GetUploadUrlRequest>;
    for (name, input) in [("plain", REQUEST), ("constrained", CONSTRAINED)] {
        group.bench_function(format!("{name}: pbjson"), |b| {
            b.iter(|| {
                let request: pb::GetUploadUrlRequest =
                    serde_json::from_slice(black_box(input)).unwrap();
                request
            });
        });
        group.bench_function(format!("{name}: gateway read"), |b| {
            b.iter(|| read(black_box(input)).unwrap());
        });
    }
    group.finish();
}

fn codecs(c: &mut Criterion) {
    let answer = answer();
    let mut group = c.benchmark_group("connect_json_GetUploadURL");
    group.bench_function("pbjson", |b| {
        b.iter(|| {
            let request: pb::GetUploadUrlRequest =
                serde_json::from_slice(black_box(REQUEST)).unwrap();
            let proto = request.encode_to_vec();
            let decoded = pb::GetUploadUrlResponse::decode(black_box(&answer[..])).unwrap();
            let mut json = Vec::with_capacity(answer.len() * 2 + 64);
            serde_json::to_writer(&mut json, &decoded).unwrap();
            (proto, json)
        });
    });
    // The gateway's reading: pbjson first, normalised (integers in exponent form, nulls) only
    // when pbjson refuses; a plain request costs what pbjson costs.
    let read = draftstore_gateway::api::grpc::connect::json::read::<pb::GetUploadUrlRequest>;
    for (row, input) in [
        ("gateway read", REQUEST),
        ("gateway read, normalised", NORMALISED),
    ] {
        group.bench_function(row, |b| {
            b.iter(|| {
                let request = read(black_box(input)).unwrap();
                let proto = request.encode_to_vec();
                let decoded = pb::GetUploadUrlResponse::decode(black_box(&answer[..])).unwrap();
                let mut json = Vec::with_capacity(answer.len() * 2 + 64);
                serde_json::to_writer(&mut json, &decoded).unwrap();
                (proto, json)
            });
        });
    }
    let pool = DescriptorPool::decode(draftstore_proto::DESCRIPTORS).unwrap();
    let input = pool
        .get_message_by_name("draft.v1.GetUploadURLRequest")
        .unwrap();
    let output = pool
        .get_message_by_name("draft.v1.GetUploadURLResponse")
        .unwrap();
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    group.bench_function("prost-reflect", |b| {
        b.iter(|| {
            let mut deserializer = serde_json::Deserializer::from_slice(black_box(REQUEST));
            let request = DynamicMessage::deserialize_with_options(
                input.clone(),
                &mut deserializer,
                &options,
            )
            .unwrap();
            deserializer.end().unwrap();
            let proto = request.encode_to_vec();
            let decoded = DynamicMessage::decode(output.clone(), black_box(&answer[..])).unwrap();
            (proto, serde_json::to_vec(&decoded).unwrap())
        });
    });
    let request_proto = pb::GetUploadUrlRequest {
        object_name: "uploads/2026/11/photo of cat.jpg".into(),
        constraints: None,
    }
    .encode_to_vec();
    let typed = pb::GetUploadUrlResponse::decode(&answer[..]).unwrap();
    group.bench_function("protobuf floor", |b| {
        b.iter(|| {
            let request = pb::GetUploadUrlRequest::decode(black_box(&request_proto[..])).unwrap();
            (request, black_box(&typed).encode_to_vec())
        });
    });
    group.finish();
}

criterion_group!(benches, reading, codecs);
criterion_main!(benches);
