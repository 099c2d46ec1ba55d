//! gRPC's rich error model (google.rpc.Status, AIP-193): every error a gRPC, gRPC-Web or Connect
//! call is answered with carries a `google.rpc.ErrorInfo` whose `reason` is DraftStore's error
//! code (the REST answer's `error.code`, e.g. `INVALID_OBJECT_NAME`) in the domain [`DOMAIN`],
//! and, when the error says when to try again (REST's `Retry-After`: a shed request, a rate
//! limit), a `google.rpc.RetryInfo` with that delay. A status code alone cannot tell
//! `CONSTRAINT_MISMATCH` from `INVALID_OBJECT_NAME` (both `INVALID_ARGUMENT`).
//!
//! On the wire: native gRPC and gRPC-Web send the encoded `google.rpc.Status` (same code, same
//! message as `grpc-status` and `grpc-message`) base64-encoded, unpadded, in the
//! `grpc-status-details-bin` trailer (grpc/grpc `doc/PROTOCOL-HTTP2.md`, binary headers);
//! Connect lists the details in its error object, `"details": [{"type", "value"}]`, each value
//! the base64 of the encoded message (connectrpc.com/docs/protocol, Error end-of-stream).
//! Clients read them with their library's status helpers (grpc-go `status.FromError(err)
//! .Details()`, tonic-types, grpcio-status, connect-es `ConnectError.findDetails`).

use crate::api::error::ApiError;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use draftstore_proto::google::rpc::{ErrorInfo, RetryInfo, Status};
use draftstore_proto::prost::{Message, Name};
use draftstore_proto::prost_types::{Any, Duration};
use http::{HeaderName, HeaderValue};

/// The `ErrorInfo.domain` of every DraftStore error.
pub const DOMAIN: &str = "draftstore";

/// The trailer holding the encoded `google.rpc.Status`, base64 without padding.
pub const GRPC_STATUS_DETAILS_BIN: HeaderName = HeaderName::from_static("grpc-status-details-bin");

/// The longest message put in the `Status` (as `grpc-message` is cut): 1024 bytes, cut at a
/// character boundary.
const MESSAGE_BUDGET: usize = 1024;

/// `e`'s details, in the order sent: its `ErrorInfo`, then its `RetryInfo` when it has one.
fn details(e: &ApiError) -> Vec<Any> {
    let info = ErrorInfo {
        reason: e.code.as_str().to_owned(),
        domain: DOMAIN.to_owned(),
        metadata: std::collections::HashMap::new(),
    };
    let mut details = vec![any(&info)];
    if let Some(secs) = e.retry_after {
        let retry = RetryInfo {
            retry_delay: Some(Duration {
                seconds: i64::try_from(secs).unwrap_or(i64::MAX),
                nanos: 0,
            }),
        };
        details.push(any(&retry));
    }
    details
}

/// `message` packed in an `Any` (`type.googleapis.com/<full name>`).
fn any<M: Message + Name>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

/// `e`'s whole `google.rpc.Status`, encoded: its gRPC code, its message (cut at 1024 bytes, as
/// `grpc-message` is) and its details.
#[must_use]
pub fn status(e: &ApiError) -> Vec<u8> {
    Status {
        code: e.grpc_code() as i32,
        message: e
            .message
            .get(..e.message.floor_char_boundary(MESSAGE_BUDGET))
            .unwrap_or_default()
            .to_owned(),
        details: details(e),
    }
    .encode_to_vec()
}

/// The `grpc-status-details-bin` value of `e`: [`status`], base64 without padding.
#[must_use]
pub fn status_details_bin(e: &ApiError) -> Option<HeaderValue> {
    HeaderValue::from_str(&STANDARD_NO_PAD.encode(status(e))).ok()
}

/// `e`'s details as Connect's error object lists them: `[{"type": full name, "value": base64
/// of the encoded message}]`.
#[must_use]
pub fn connect_details(e: &ApiError) -> serde_json::Value {
    details(e)
        .into_iter()
        .map(|any| {
            let name = any
                .type_url
                .strip_prefix("type.googleapis.com/")
                .unwrap_or(&any.type_url)
                .to_owned();
            serde_json::json!({"type": name, "value": STANDARD_NO_PAD.encode(&any.value)})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::Code;

    fn decoded(e: &ApiError) -> Status {
        let value = status_details_bin(e).unwrap();
        let bytes = STANDARD_NO_PAD.decode(value.as_bytes()).unwrap();
        Status::decode(&*bytes).unwrap()
    }

    #[test]
    fn every_error_names_its_code_as_the_reason() {
        let e = ApiError::new(Code::InvalidObjectName, "bad name");
        let status = decoded(&e);
        assert_eq!(status.code, e.grpc_code() as i32);
        assert_eq!(status.message, "bad name");
        assert_eq!(status.details.len(), 1);
        assert_eq!(
            status.details[0].type_url,
            "type.googleapis.com/google.rpc.ErrorInfo"
        );
        let info = ErrorInfo::decode(&*status.details[0].value).unwrap();
        assert_eq!(info.reason, "INVALID_OBJECT_NAME");
        assert_eq!(info.domain, DOMAIN);
    }

    #[test]
    fn an_error_with_a_retry_after_carries_retry_info() {
        let e = ApiError::new(Code::Overloaded, "full").with_retry_after(3);
        let status = decoded(&e);
        assert_eq!(status.details.len(), 2);
        assert_eq!(
            status.details[1].type_url,
            "type.googleapis.com/google.rpc.RetryInfo"
        );
        let retry = RetryInfo::decode(&*status.details[1].value).unwrap();
        assert_eq!(
            retry.retry_delay,
            Some(Duration {
                seconds: 3,
                nanos: 0
            })
        );
        let connect = connect_details(&e);
        assert_eq!(connect[0]["type"], "google.rpc.ErrorInfo");
        assert_eq!(connect[1]["type"], "google.rpc.RetryInfo");
        let value = STANDARD_NO_PAD
            .decode(connect[1]["value"].as_str().unwrap())
            .unwrap();
        assert_eq!(RetryInfo::decode(&*value).unwrap(), retry);
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        let e = ApiError::new(Code::InvalidObjectName, "é".repeat(600));
        let status = decoded(&e);
        assert_eq!(status.message.len(), 1024);
        assert!(status.message.chars().all(|c| c == 'é'));
    }
}
