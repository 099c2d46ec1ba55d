//! The gRPC frame decoder on arbitrary bytes and limits: a message or a typed error.
#![no_main]
use draftstore_gateway::api::grpc::codec::{decode_unary, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, &[u8])| {
    let (max, body) = input;
    if let Ok(message) = decode_unary(body, usize::from(max)) {
        assert_eq!(message.len() + HEADER_LEN, body.len());
        assert!(message.len() <= usize::from(max));
    }
});
