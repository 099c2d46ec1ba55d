//! The tenants this process owes Redis for (`owed.rs`), so that when Redis decides again the
//! probe charges every debt at once, whichever replica the tenant's next request reaches: a
//! debt charged only with the tenant's next decision here would be lost to Redis whenever the
//! load balancer sends that tenant elsewhere (a fresh burst there).
//!
//! Bounded: at most [`MAX_DEBTS`] tenants are listed; a debt past the bound is still charged
//! with the tenant's next decision in this process, as any debt is. The list holds weak
//! references, so a tenant dropped by a key reload leaves nothing behind.

use super::owed::Owed;
use super::{Local, RateSpec};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Tenants listed at most (a debt past this is charged with the tenant's next decision only).
pub(crate) const MAX_DEBTS: usize = 10_000;

/// One debt to charge: the tenant, its rate, what it owes, and its local bucket (which the
/// charge's answer may lower, never raise).
pub(crate) struct Debt {
    pub(crate) tenant: String,
    pub(crate) spec: RateSpec,
    pub(crate) owed: Arc<Owed>,
    pub(crate) local: Arc<Local>,
}

/// A listed tenant's rate, debt and local bucket.
type Entry = (RateSpec, Weak<Owed>, Weak<Local>);

/// The tenants with a debt in this process.
#[derive(Default)]
pub(crate) struct Debts(Mutex<HashMap<String, Entry>>);

impl Debts {
    /// Lists `tenant` as owing `owed` at `spec`, its local bucket `local` (once; a later rate
    /// replaces an earlier one; the tenant's name is copied only when first listed). `false`
    /// when the list is full.
    pub(crate) fn note(
        &self,
        tenant: &str,
        spec: RateSpec,
        owed: &Arc<Owed>,
        local: &Arc<Local>,
    ) -> bool {
        let mut debts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = (spec, Arc::downgrade(owed), Arc::downgrade(local));
        if let Some(listed) = debts.get_mut(tenant) {
            *listed = entry;
            return true;
        }
        if debts.len() >= MAX_DEBTS {
            return false;
        }
        debts.insert(tenant.to_owned(), entry);
        true
    }

    /// Lists `debt` again (one taken but not charged).
    pub(crate) fn relist(&self, debt: &Debt) -> bool {
        self.note(&debt.tenant, debt.spec, &debt.owed, &debt.local)
    }

    /// Takes every listed debt whose tenant still exists, emptying the list.
    pub(crate) fn take(&self) -> Vec<Debt> {
        let debts = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        debts
            .into_iter()
            .filter_map(|(tenant, (spec, owed, local))| {
                Some(Debt {
                    tenant,
                    spec,
                    owed: owed.upgrade()?,
                    local: local.upgrade()?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::bucket::Bucket;
    use super::*;
    use std::time::{Duration, Instant};

    const SPEC: RateSpec = RateSpec {
        limit: 5,
        per: Duration::from_secs(60),
    };

    fn debt(tenant: &str) -> Debt {
        let now = Instant::now();
        Debt {
            tenant: tenant.to_owned(),
            spec: SPEC,
            owed: Arc::new(Owed::new(now)),
            local: Arc::new(Mutex::new((Bucket::full(SPEC, now), i64::MIN))),
        }
    }

    #[test]
    fn a_tenant_is_listed_once_and_the_list_is_bounded() {
        let debts = Debts::default();
        let acme = debt("acme");
        assert!(debts.relist(&acme));
        assert!(debts.relist(&acme));
        let mut kept = Vec::new();
        for i in 1..MAX_DEBTS {
            let other = debt(&format!("t{i}"));
            assert!(debts.relist(&other));
            kept.push(other);
        }
        assert!(!debts.relist(&debt("late")), "full");
        assert!(debts.relist(&acme), "a listed tenant still is");
        // A dropped tenant (a key reload) is not taken.
        drop(kept.pop());
        assert_eq!(debts.take().len(), MAX_DEBTS - 1);
        assert!(debts.take().is_empty(), "taken: nothing listed");
    }
}
