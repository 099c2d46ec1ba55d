//! The local store's presigned-URL check on arbitrary method, path, query and headers.
#![no_main]
use draftstore_gateway::{config::LocalConfig, store::local::LocalStorage};
use draftstore_signer::Timestamp;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static STORE: OnceLock<(tempfile::TempDir, LocalStorage)> = OnceLock::new();

fuzz_target!(|input: (&str, &str, &str, Vec<(&str, &str)>, u32)| {
    let (_, store) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = LocalConfig { data_dir: dir.path().into(), public_url: "http://127.0.0.1:8080".into(), secret: Some("s".into()), max_object: 1, stall_timeout: std::time::Duration::from_secs(1) };
        let store = LocalStorage::open(&config).unwrap();
        (dir, store)
    });
    let (method, path, query, headers, now) = input;
    let _ = store.authorize(method, path, query, &headers, Timestamp::from_unix(now.into()).unwrap());
});
