//! The tenants this process owes Redis for (`owed.rs`), so that when Redis decides again the
//! probe charges every debt at once, whichever replica the tenant's next request reaches: a
//! debt charged only with the tenant's next decision here would be lost to Redis whenever the
//! load balancer sends that tenant elsewhere (a fresh burst there).
//!
//! Bounded: at most [`MAX_DEBTS`] tenants are listed; a debt past the bound is still charged
//! with the tenant's next decision in this process, as any debt is. The list holds weak
//! references, so a tenant dropped by a key reload leaves nothing behind.

use super::owed::Owed;
use super::RateSpec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Tenants listed at most (a debt past this is charged with the tenant's next decision only).
pub(crate) const MAX_DEBTS: usize = 10_000;

/// One debt to charge: the tenant, its rate, and what it owes.
pub(crate) type Debt = (String, RateSpec, Arc<Owed>);

/// The tenants with a debt in this process.
#[derive(Debug, Default)]
pub(crate) struct Debts(Mutex<HashMap<String, (RateSpec, Weak<Owed>)>>);

impl Debts {
    /// Lists `tenant` as owing (once; a later rate replaces an earlier one). `false` when the
    /// list is full.
    pub(crate) fn note(&self, tenant: &str, spec: RateSpec, owed: &Arc<Owed>) -> bool {
        let mut debts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = debts.get_mut(tenant) {
            *entry = (spec, Arc::downgrade(owed));
            return true;
        }
        if debts.len() >= MAX_DEBTS {
            return false;
        }
        debts.insert(tenant.to_owned(), (spec, Arc::downgrade(owed)));
        true
    }

    /// Takes every listed debt whose tenant still exists, emptying the list.
    pub(crate) fn take(&self) -> Vec<Debt> {
        let debts = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        debts
            .into_iter()
            .filter_map(|(tenant, (spec, owed))| Some((tenant, spec, owed.upgrade()?)))
            .collect()
    }

    /// Whether nothing is listed.
    pub(crate) fn is_empty(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const SPEC: RateSpec = RateSpec {
        limit: 5,
        per: Duration::from_secs(60),
    };

    #[test]
    fn a_tenant_is_listed_once_and_the_list_is_bounded() {
        let debts = Debts::default();
        let owed = Arc::new(Owed::new(Instant::now()));
        assert!(debts.note("acme", SPEC, &owed));
        assert!(debts.note("acme", SPEC, &owed));
        let mut kept = Vec::new();
        for i in 1..MAX_DEBTS {
            let other = Arc::new(Owed::new(Instant::now()));
            assert!(debts.note(&format!("t{i}"), SPEC, &other));
            kept.push(other);
        }
        let late = Arc::new(Owed::new(Instant::now()));
        assert!(!debts.note("late", SPEC, &late), "full");
        assert!(debts.note("acme", SPEC, &owed), "a listed tenant still is");
        // A dropped tenant (a key reload) is not taken.
        drop(kept.pop());
        assert_eq!(debts.take().len(), MAX_DEBTS - 1);
        assert!(debts.is_empty());
    }
}
