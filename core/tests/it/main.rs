//! draftstore-core's integration tests: the conformance suite on the in-memory store, confirm's
//! call counts and crash behaviour, sweep, and the model-based property test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod confirm;
mod model;
mod sweep;

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn conformance_on_memory() {
    let storage = draftstore_core::MemoryStorage::new();
    block_on(draftstore_core::conformance::run_all(&storage, "conf"));
}

#[test]
fn conformance_on_memory_without_conditional_operations() {
    let caps = draftstore_core::Capabilities {
        conditional_copy: false,
        conditional_delete: false,
        conditional_put: false,
        version_conditions: false,
        version_ids: false,
    };
    let storage = draftstore_core::MemoryStorage::with_capabilities(caps);
    block_on(draftstore_core::conformance::run_all(&storage, "conf"));
}
