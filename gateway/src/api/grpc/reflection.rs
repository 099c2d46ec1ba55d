//! gRPC server reflection (grpc/grpc-proto `grpc/reflection/v1/reflection.proto`, and its
//! `v1alpha` twin, which has the same messages and field numbers), answered from the descriptor
//! set the proto crate compiles ([`draftstore_proto::DESCRIPTORS`]). The service is one
//! bidirectional stream: each request message gets one response message, in order.
//!
//! Answered: `list_services`, `file_by_filename`, `file_containing_symbol` (services, methods,
//! messages, fields, enums, extensions), `file_containing_extension` and
//! `all_extension_numbers_of_type` (none are defined: NOT_FOUND, or an empty list for a known
//! type). A file comes with every file it imports, so one answer is enough to describe it.

use super::codec::Framed;
use super::stream::{self, Messages, Sender};
use crate::api::error::{ApiError, Code, GrpcCode};
use crate::config::Limits;
use crate::http::response::{Body, CONTENT_TYPE};
use draftstore_proto::grpc::reflection::v1 as pb;
use draftstore_proto::prost::Message;
use http::{HeaderValue, Response};
use hyper::body::Incoming;
use pb::server_reflection_request::MessageRequest;
use pb::server_reflection_response::MessageResponse;
use prost_reflect::{DescriptorPool, FileDescriptor};
use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

/// The descriptors of every service served, decoded once.
///
/// # Errors
/// `INTERNAL` if the compiled descriptor set does not decode (a build fault).
pub fn pool() -> Result<&'static DescriptorPool, ApiError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(draftstore_proto::DESCRIPTORS).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| {
        ApiError::new(
            Code::Encode,
            format!("the descriptor set is unreadable: {e}"),
        )
    })
}

/// Serves one reflection stream: the response (headers now, messages as requests arrive)
/// whose body a spawned task feeds. The stream ends with `grpc-status: 0` when the client
/// half-closes, or with the error: a malformed or oversized message, no message for
/// `limits.idle_timeout` (`STREAM_IDLE`), the client's `deadline` passing; after such an
/// error the rest of the request body is read and thrown away as for a refusal at the head
/// (bounded, in the peer's share: [`crate::http::layer::body::linger_rest`]), so a client
/// still sending reads the answer.
pub fn serve(
    req: http::Request<Incoming>,
    limits: &Limits,
    deadline: Option<Duration>,
    end: stream::End,
) -> Response<Body> {
    // Over HTTP/2 the stream is also ended when neither side moves for twice the idle limit
    // (a client that stops reading blocks the replies, not the read timer). Twice: at the
    // limit itself a silent stream that still reads is answered `STREAM_IDLE` by the read
    // timer, and a reset timed from the same moment would race that answer.
    let watch = crate::http::watch::current();
    if let Some(watch) = &watch {
        watch.arm(limits.idle_timeout.saturating_mul(2));
    }
    let peer = crate::http::layer::meta(&req).and_then(|m| m.peer);
    let body = req.into_body();
    let (sender, streamed) = stream::channel(4, end);
    let sender = sender.watched(watch.clone());
    let report = sender.report();
    let streamed = streamed.watched(watch.clone());
    let mut messages =
        Messages::new(body, end, limits.max_grpc_message, limits.idle_timeout).watched(watch);
    tokio::spawn(async move {
        let talk = converse(&mut messages, &sender);
        let outcome = match deadline {
            Some(d) => crate::http::deadline::within(d, talk)
                .await
                .unwrap_or_else(|_| {
                    Err(ApiError::new(
                        Code::DeadlineExceeded,
                        "the call's deadline passed",
                    ))
                }),
            None => talk.await,
        };
        let refused = outcome.is_err();
        sender.finish(outcome).await;
        if refused {
            crate::http::layer::body::linger_rest(messages.into_body(), peer);
        }
    });
    let mut response = Response::new(crate::http::response::Body::new(streamed));
    // The stream's log line and metrics are written when it ends, with its final status.
    response.extensions_mut().insert(report);
    let headers = response.headers_mut();
    match end {
        stream::End::Trailers => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(super::status::GRPC));
            headers.insert(
                super::header::GRPC_ACCEPT_ENCODING,
                HeaderValue::from_static(super::status::ACCEPT_ENCODING),
            );
        }
        stream::End::Connect => super::connect::stream::head(headers),
    }
    response
}

async fn converse(messages: &mut Messages<Incoming>, sender: &Sender) -> Result<(), ApiError> {
    let pool = pool()?;
    while let Some(message) = messages.next().await? {
        let request = pb::ServerReflectionRequest::decode(message).map_err(|e| {
            ApiError::new(Code::MalformedMessage, format!("malformed message: {e}"))
        })?;
        if !sender.send(answer(pool, request).framed()).await {
            // The client has gone: nobody to tell.
            return Ok(());
        }
    }
    Ok(())
}

/// The response to one reflection request.
#[must_use]
pub fn answer(
    pool: &DescriptorPool,
    request: pb::ServerReflectionRequest,
) -> pb::ServerReflectionResponse {
    let response = match &request.message_request {
        Some(MessageRequest::ListServices(_)) => {
            MessageResponse::ListServicesResponse(pb::ListServiceResponse {
                service: pool
                    .services()
                    .map(|s| pb::ServiceResponse {
                        name: s.full_name().to_owned(),
                    })
                    .collect(),
            })
        }
        Some(MessageRequest::FileByFilename(name)) => match pool.get_file_by_name(name) {
            Some(file) => files(&file),
            None => not_found(format!("no file {name}")),
        },
        Some(MessageRequest::FileContainingSymbol(symbol)) => match file_of_symbol(pool, symbol) {
            Some(file) => files(&file),
            None => not_found(format!("no symbol {symbol}")),
        },
        Some(MessageRequest::FileContainingExtension(e)) => not_found(format!(
            "no extension {} of {}",
            e.extension_number, e.containing_type
        )),
        Some(MessageRequest::AllExtensionNumbersOfType(name)) => {
            match pool.get_message_by_name(name) {
                Some(_) => {
                    MessageResponse::AllExtensionNumbersResponse(pb::ExtensionNumberResponse {
                        base_type_name: name.clone(),
                        extension_number: Vec::new(),
                    })
                }
                None => not_found(format!("no message type {name}")),
            }
        }
        None => error(
            GrpcCode::InvalidArgument,
            "the request names no question".into(),
        ),
    };
    pb::ServerReflectionResponse {
        valid_host: request.host.clone(),
        original_request: Some(request),
        message_response: Some(response),
    }
}

fn error(code: GrpcCode, message: String) -> MessageResponse {
    MessageResponse::ErrorResponse(pb::ErrorResponse {
        error_code: code as i32,
        error_message: message,
    })
}

fn not_found(message: String) -> MessageResponse {
    error(GrpcCode::NotFound, message)
}

/// `file` and every file it imports, directly or not, each once.
fn files(file: &FileDescriptor) -> MessageResponse {
    let mut seen = HashSet::new();
    let mut todo = vec![file.clone()];
    let mut out = Vec::new();
    while let Some(next) = todo.pop() {
        if seen.insert(next.name().to_owned()) {
            out.push(next.encode_to_vec());
            todo.extend(next.dependencies());
        }
    }
    MessageResponse::FileDescriptorResponse(pb::FileDescriptorResponse {
        file_descriptor_proto: out,
    })
}

/// The file declaring `symbol`: a service, message, enum or extension by its full name, or a
/// method or field as `<parent>.<name>`.
fn file_of_symbol(pool: &DescriptorPool, symbol: &str) -> Option<FileDescriptor> {
    let symbol = symbol.strip_prefix('.').unwrap_or(symbol);
    if let Some(s) = pool.get_service_by_name(symbol) {
        return Some(s.parent_file());
    }
    if let Some(m) = pool.get_message_by_name(symbol) {
        return Some(m.parent_file());
    }
    if let Some(e) = pool.get_enum_by_name(symbol) {
        return Some(e.parent_file());
    }
    if let Some(x) = pool.get_extension_by_name(symbol) {
        return Some(x.parent_file());
    }
    let (parent, member) = symbol.rsplit_once('.')?;
    if let Some(s) = pool.get_service_by_name(parent) {
        return s
            .methods()
            .any(|m| m.name() == member)
            .then(|| s.parent_file());
    }
    pool.get_message_by_name(parent)
        .filter(|m| m.get_field_by_name(member).is_some())
        .map(|m| m.parent_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(question: MessageRequest) -> MessageResponse {
        let pool = pool().unwrap();
        let request = pb::ServerReflectionRequest {
            host: "h".into(),
            message_request: Some(question),
        };
        let response = answer(pool, request.clone());
        assert_eq!(response.valid_host, "h");
        assert_eq!(response.original_request, Some(request));
        response.message_response.unwrap()
    }

    fn file_names(response: MessageResponse) -> Vec<String> {
        let MessageResponse::FileDescriptorResponse(files) = response else {
            panic!("not files: {response:?}");
        };
        files
            .file_descriptor_proto
            .iter()
            .map(|f| {
                prost_reflect::prost_types::FileDescriptorProto::decode(&f[..])
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn every_service_is_listed() {
        let MessageResponse::ListServicesResponse(list) =
            ask(MessageRequest::ListServices(String::new()))
        else {
            panic!("not a list");
        };
        let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "draft.v1.DraftService",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
        );
    }

    #[test]
    fn symbols_and_files_are_found_with_their_imports() {
        for symbol in [
            "draft.v1.DraftService",
            "draft.v1.DraftService.GetUploadURL",
            "draft.v1.GetUploadURLRequest",
            "draft.v1.GetUploadURLRequest.object_name",
            "draft.v1.ErrorType",
        ] {
            let names = file_names(ask(MessageRequest::FileContainingSymbol(symbol.into())));
            assert_eq!(
                names.first().map(String::as_str),
                Some("draft/v1/draft.proto"),
                "{symbol}"
            );
        }
        let names = file_names(ask(MessageRequest::FileByFilename(
            "grpc/health/v1/health.proto".into(),
        )));
        assert_eq!(names, ["grpc/health/v1/health.proto"]);
        for missing in [
            MessageRequest::FileContainingSymbol("draft.v1.Nope".into()),
            MessageRequest::FileContainingSymbol("draft.v1.DraftService.Nope".into()),
            MessageRequest::FileByFilename("nope.proto".into()),
            MessageRequest::AllExtensionNumbersOfType("draft.v1.Nope".into()),
        ] {
            let MessageResponse::ErrorResponse(e) = ask(missing) else {
                panic!("not an error");
            };
            assert_eq!(e.error_code, GrpcCode::NotFound as i32);
        }
    }
}
