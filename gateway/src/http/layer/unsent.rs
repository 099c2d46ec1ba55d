//! A byte budget for HTTP/2 answers handed to hyper but not yet taken by their connection.
//!
//! An answer larger than one frame ([`super::admission::CHUNK`]) is handed over frame by frame
//! (see [`super::admission`]); while its frames wait for a client that does not read, its
//! bytes stay in memory. [`Unsent`] counts those bytes, per TCP peer address and in all: an
//! answer is charged its whole length when it starts, and each frame taken gives its length
//! back (the rest when the answer ends or is dropped, e.g. its stream reset). While a peer holds
//! its budget, or all peers together the total, admission sheds new API requests (503
//! `OVERLOADED`, `Retry-After: 1`; gRPC `UNAVAILABLE`), and an answer finished meanwhile is
//! replaced by that 503 rather than charged; probes are never shed.
//! An answer of one frame or less goes to hyper whole and is never counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The least total budget in bytes (1 MiB), whatever `DRAFTSTORE_MAX_IN_FLIGHT` is.
pub const LEAST_TOTAL: usize = 1024 * 1024;

/// Bytes of answers not yet taken, per peer and in all, against their limits.
#[derive(Debug)]
pub struct Unsent {
    total_limit: usize,
    peer_limit: usize,
    total: AtomicUsize,
    by_peer: Mutex<HashMap<Option<IpAddr>, usize, foldhash::quality::RandomState>>,
}

impl Unsent {
    /// A budget of `total` bytes in all (at least 1), a quarter of it (at least 1) per peer.
    #[must_use]
    pub fn new(total: usize) -> Arc<Self> {
        let total = total.max(1);
        Arc::new(Self {
            total_limit: total,
            peer_limit: (total / 4).max(1),
            total: AtomicUsize::new(0),
            by_peer: Mutex::new(HashMap::default()),
        })
    }

    /// The budget derived from `DRAFTSTORE_MAX_IN_FLIGHT`: one 16 KiB frame per place in all
    /// (64 MiB at the default 4096 places, at least [`LEAST_TOTAL`]), a quarter of it per peer
    /// (16 MiB at the default).
    #[must_use]
    pub fn for_places(places: usize) -> Arc<Self> {
        Self::new(
            places
                .saturating_mul(super::admission::CHUNK)
                .max(LEAST_TOTAL),
        )
    }

    /// Whether `peer` may start a new API request: it and all peers together are within
    /// their budgets. One atomic load while nothing is unsent.
    #[must_use]
    pub fn admits(&self, peer: Option<IpAddr>) -> bool {
        let total = self.total.load(Ordering::Relaxed);
        if total == 0 {
            return true;
        }
        if total >= self.total_limit {
            return false;
        }
        let by_peer = self.by_peer.lock().unwrap_or_else(PoisonError::into_inner);
        by_peer.get(&peer).copied().unwrap_or(0) < self.peer_limit
    }

    /// Bytes unsent now, in all.
    #[must_use]
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Charges `bytes` to `peer` until given back through the [`Charge`], unless `peer` or
    /// all peers are already at or over their budget (`None`): so each peer passes its budget
    /// by at most one answer, and the total by at most one answer per peer charging at once.
    #[must_use]
    pub fn try_charge(self: &Arc<Self>, peer: Option<IpAddr>, bytes: usize) -> Option<Charge> {
        let mut by_peer = self.by_peer.lock().unwrap_or_else(PoisonError::into_inner);
        if self.total.load(Ordering::Relaxed) >= self.total_limit {
            return None;
        }
        let mine = by_peer.entry(peer).or_insert(0);
        if *mine >= self.peer_limit {
            return None;
        }
        *mine = mine.saturating_add(bytes);
        self.total.fetch_add(bytes, Ordering::Relaxed);
        Some(Charge {
            unsent: self.clone(),
            peer,
            left: bytes,
        })
    }

    fn give_back(&self, peer: Option<IpAddr>, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut by_peer = self.by_peer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mine) = by_peer.get_mut(&peer) {
            *mine = mine.saturating_sub(bytes);
            if *mine == 0 {
                by_peer.remove(&peer);
            }
        }
        // Under the lock, so `total` never lags the map for long.
        self.total.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Bytes of one answer still charged; what is left is given back when dropped.
#[derive(Debug)]
pub struct Charge {
    unsent: Arc<Unsent>,
    peer: Option<IpAddr>,
    left: usize,
}

impl Charge {
    /// `bytes` were taken by the connection: gives them back (at most what is left).
    pub fn taken(&mut self, bytes: usize) {
        let bytes = bytes.min(self.left);
        self.left -= bytes;
        self.unsent.give_back(self.peer, bytes);
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.unsent.give_back(self.peer, self.left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_over_its_budget_is_refused_others_are_not_and_bytes_come_back() {
        let unsent = Unsent::new(400);
        let attacker = Some(IpAddr::from([127, 0, 0, 2]));
        let victim = Some(IpAddr::from([127, 0, 0, 3]));
        assert!(unsent.admits(attacker));
        let mut first = unsent.try_charge(attacker, 60).unwrap();
        assert!(unsent.admits(attacker), "60 of its 100");
        let second = unsent.try_charge(attacker, 60).unwrap();
        assert!(!unsent.admits(attacker), "120 of its 100");
        assert!(
            unsent.try_charge(attacker, 1).is_none(),
            "no answer past it"
        );
        assert!(unsent.admits(victim));
        first.taken(30);
        assert!(unsent.admits(attacker), "90 of its 100");
        assert_eq!(unsent.total(), 90);
        drop(second);
        drop(first);
        assert_eq!(unsent.total(), 0, "dropped charges give back what is left");
        // The total bounds everyone.
        let _big = unsent.try_charge(attacker, 400).unwrap();
        assert!(!unsent.admits(victim));
        assert!(unsent.try_charge(victim, 1).is_none());
    }

    #[test]
    fn the_default_budget_follows_the_places() {
        let unsent = Unsent::for_places(4096);
        assert_eq!(
            (unsent.total_limit, unsent.peer_limit),
            (64 << 20, 16 << 20)
        );
        let small = Unsent::for_places(4);
        assert_eq!(small.total_limit, LEAST_TOTAL);
    }
}
