//! Events: the pre-confirm check and webhooks delivered at least once (Standard Webhooks).
//!
//! - [`sign`]: the signature headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//! - [`queue`]: the durable queue in the draft bucket under `.draftstore/events/`, claimed
//!   with conditional PutObjects and leases.
//! - [`deliver`]: one pass over the queue: claim, POST, remove or reschedule.
//! - [`hook`]: what confirm does before its copy: the check, then the event written.
//! - [`emit`]: events of sweep (`draft.expired`, `multipart.aborted`) and the embedded store
//!   (`draft.uploaded`).
//!
//! `gateway serve` runs [`Events::start`]'s background deliverer (when the store has
//! conditional writes); `gateway sweep` runs one pass at its end.

pub mod deliver;
pub mod emit;
pub mod hook;
pub mod queue;
pub mod sign;

pub use deliver::{now_ms, Deliverer, Pass};

use crate::config::EventsConfig;
use draftstore_core::{Buckets, Storage};
use std::sync::{Arc, Weak};

/// The event settings of a running gateway, its HTTP client, and a way to wake its
/// background deliverer.
pub struct Events {
    /// The settings.
    pub config: EventsConfig,
    /// Shared by the check and the deliveries (rustls with ring, no proxy surprises).
    pub client: reqwest::Client,
    kick: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The HTTP client of webhooks and checks.
#[must_use]
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("draftstore/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

impl Events {
    /// `None` when neither webhooks nor the check are configured. With webhooks, on a store
    /// with conditional writes, spawns (on the current runtime) a deliverer that makes a pass
    /// every `poll` and when woken, until the returned value is dropped. Without conditional
    /// writes only `gateway sweep` delivers (replicas could not claim events safely).
    #[must_use]
    pub fn start<S: Storage + 'static>(
        storage: &Arc<S>,
        buckets: &Buckets,
        config: &EventsConfig,
    ) -> Option<Arc<Self>> {
        if !config.webhooks() && config.preconfirm.is_none() {
            return None;
        }
        let events = Arc::new(Self {
            config: config.clone(),
            client: client(),
            kick: Arc::new(tokio::sync::Notify::new()),
        });
        if !config.webhooks() {
            return Some(events);
        }
        if !storage.capabilities().conditional_put {
            tracing::warn!("the store has no conditional writes: webhooks are queued but only `gateway sweep` delivers them");
            return Some(events);
        }
        let deliverer = Deliverer::new(
            storage.clone(),
            buckets.clone(),
            config.clone(),
            events.client.clone(),
        );
        let (weak, kick, poll) = (Arc::downgrade(&events), events.kick.clone(), config.poll);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(background(deliverer, weak, kick, poll));
        }
        Some(events)
    }

    /// Wakes the background deliverer (an event was just queued).
    pub fn kick(&self) {
        self.kick.notify_one();
    }
}

async fn background<S: Storage>(
    deliverer: Deliverer<Arc<S>>,
    alive: Weak<Events>,
    kick: Arc<tokio::sync::Notify>,
    poll: std::time::Duration,
) {
    while alive.strong_count() > 0 {
        if let Err(e) = deliverer.pass().await {
            tracing::warn!(error = %e, "cannot list the event queue; trying again");
        }
        tokio::select! {
            () = kick.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}
