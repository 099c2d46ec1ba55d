//! Places shared fairly between keys (TCP peers, tenants, presigned URLs): at most `capacity`
//! held at once, and a key holding places may hold at most `capacity / (other keys holding
//! places + 2)` of them (at least one), so however many one key asks for, a newcomer always
//! finds one free while the total is under the capacity. A place is a [`Ticket`], given back
//! when dropped.
//!
//! Pure accounting (one mutex, no I/O, no timers): the server shares connections with it
//! ([`crate::http::server`]), the connection layer the requests open on all connections
//! ([`crate::http::layer::connection::Streams`], a place an HTTP/2 stream task keeps until it
//! ends, see [`crate::http::watch::keep_open`]), admission its places for API work and the
//! body and transfer layers theirs ([`crate::http::layer`]). What a refusal answers is theirs.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Who holds places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A TCP peer address.
    Peer(IpAddr),
    /// An authenticated tenant: a keyed hash of its name (see [`crate::http::layer::admission::AdmissionLayer`]), so that no
    /// request allocates its key.
    Tenant(u64),
    /// A presigned URL of the embedded store (a keyed hash of its signature, see
    /// [`crate::http::layer::transfer`]).
    Url(u64),
    /// Requests with no tenant (authentication off, public paths): they share the capacity
    /// with no per-key limit.
    Anyone,
}

/// Places for `capacity` requests at once, shared between keys.
#[derive(Debug)]
pub struct Shares {
    capacity: usize,
    state: Mutex<State>,
}

/// Keys are hashed with foldhash (seeded at random per process): SipHash, std's default, cost
/// two hashes per stage on every request (three stages) for a map of a few entries.
#[derive(Debug, Default)]
struct State {
    total: usize,
    held: HashMap<Key, usize, foldhash::quality::RandomState>,
}

/// A place held; given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    shares: Arc<Shares>,
    key: Key,
}

impl Shares {
    /// Places for `capacity` (at least 1) requests at once.
    #[must_use]
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        })
    }

    /// A place for `key`; `None` when every place is taken or `key` holds its share.
    #[must_use]
    pub fn place(self: &Arc<Self>, key: Key) -> Option<Ticket> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State { total, held } = &mut *state;
        if *total >= self.capacity {
            return None;
        }
        let keys = held.len();
        // One lookup: a key holding nothing yet is always within its share (at least one).
        match held.entry(key) {
            Entry::Occupied(mut mine) => {
                let others = keys.saturating_sub(1);
                let share = (self.capacity / (others + 2)).max(1);
                if key != Key::Anyone && *mine.get() >= share {
                    return None;
                }
                *mine.get_mut() += 1;
            }
            Entry::Vacant(slot) => {
                slot.insert(1);
            }
        }
        *total += 1;
        Some(Ticket {
            shares: self.clone(),
            key,
        })
    }

    /// Places held now.
    #[must_use]
    pub fn held(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Ticket {
    /// This place's key in `to` instead: a place there for the same key (`None` when `to`
    /// refuses it); this one is given back either way.
    #[must_use]
    pub fn exchange(self, to: &Arc<Shares>) -> Option<Ticket> {
        to.place(self.key)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self
            .shares
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.total = state.total.saturating_sub(1);
        if let Entry::Occupied(mut mine) = state.held.entry(self.key) {
            if *mine.get() <= 1 {
                mine.remove();
            } else {
                *mine.get_mut() -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_cannot_take_every_place() {
        let shares = Shares::new(8);
        let attacker = Key::Peer(IpAddr::from([127, 0, 0, 2]));
        let held: Vec<Ticket> = (0..4).map(|_| shares.place(attacker).unwrap()).collect();
        assert!(shares.place(attacker).is_none(), "past its share");
        // A newcomer gets in; the attacker's share shrinks as others arrive.
        let victim = shares.place(Key::Peer(IpAddr::from([127, 0, 0, 3])));
        assert!(victim.is_some());
        assert!(shares.place(attacker).is_none());
        drop(held);
        drop(victim);
        assert_eq!(shares.held(), 0, "places come back when dropped");
        assert!(shares.place(attacker).is_some());
    }

    #[test]
    fn many_keys_share_and_never_pass_the_capacity() {
        let shares = Shares::new(4);
        let tickets: Vec<Ticket> = (0..4_u8)
            .filter_map(|i| shares.place(Key::Peer(IpAddr::from([127, 0, 0, i]))))
            .collect();
        assert_eq!(tickets.len(), 4);
        assert!(shares.place(Key::Anyone).is_none(), "full is full");
        drop(tickets);
        let anyone: Vec<Ticket> = (0..4).filter_map(|_| shares.place(Key::Anyone)).collect();
        assert_eq!(anyone.len(), 4, "no per-key share without a key");
    }
}
