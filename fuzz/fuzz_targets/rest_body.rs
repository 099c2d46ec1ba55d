//! REST request bodies: JSON into each request type, then names and constraints validated.
#![no_main]
use draftstore_core::ObjectName;
use draftstore_gateway::api::rest::{decode_json, ConfirmBody, DownloadUrlBody, UploadUrlBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(up) = decode_json::<UploadUrlBody>(body) {
        let _ = up.into_parts().map(|(name, c)| (ObjectName::parse(&name), c.required_headers()));
    }
    let _ = decode_json::<DownloadUrlBody>(body).map(|d| ObjectName::parse(&d.object_name));
    let _ = decode_json::<ConfirmBody>(body).map(|c| ObjectName::parse(&c.object_name));
});
