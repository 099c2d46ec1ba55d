//! Turns for confirms of one name within this process: what keeps a store without conditional
//! copies from seeing two confirms of one object both copy it (and both count it as moved).
//!
//! One table for the whole process, keyed by `<main bucket>/<key>`; an entry lives while a
//! confirm holds or waits for its turn, so the table holds only names being confirmed now.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

type Table = Mutex<HashMap<String, Arc<AsyncMutex<()>>>>;

static TURNS: LazyLock<Table> = LazyLock::new(Table::default);

/// A confirm's turn on one name; the next waiting confirm goes when it is dropped.
pub struct Turn {
    // Declared first: dropped before the ticket, which then finds no other holder.
    _guard: OwnedMutexGuard<()>,
    _ticket: Ticket,
}

/// A claim on a table entry: the last claim dropped removes the entry, also when a waiting
/// confirm is cancelled (its future dropped) before its turn.
struct Ticket {
    key: String,
    lock: Option<Arc<AsyncMutex<()>>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut table = TURNS.lock().unwrap_or_else(PoisonError::into_inner);
        drop(self.lock.take());
        // The table's own reference is the only one left: nobody holds or waits.
        if table
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            table.remove(&self.key);
        }
    }
}

/// Waits until no other confirm in this process holds `key`, then holds it until the returned
/// [`Turn`] is dropped. Turns are given in the order asked (tokio's mutex is fair).
pub async fn turn(key: String) -> Turn {
    let lock = {
        let mut table = TURNS.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(table.entry(key.clone()).or_default())
    };
    let ticket = Ticket {
        key,
        lock: Some(Arc::clone(&lock)),
    };
    let guard = lock.lock_owned().await;
    Turn {
        _guard: guard,
        _ticket: ticket,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn one_name_one_holder_and_the_table_empties() {
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let run = |name: &'static str| {
            let (inside, most) = (&inside, &most);
            async move {
                let _turn = turn(format!("turn-test/{name}")).await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }
        };
        block_on(async {
            tokio::join!(run("a"), run("a"), run("a"), run("a"));
        });
        assert_eq!(most.load(Ordering::SeqCst), 1, "one holder at a time");
        // Other names are not held up by one held name.
        block_on(async {
            let _b = turn("turn-test/b".into()).await;
            let _c = turn("turn-test/c".into()).await;
        });
        assert!(!TURNS
            .lock()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("turn-test/")));
    }

    #[test]
    fn a_cancelled_waiter_leaves_no_entry() {
        block_on(async {
            let held = turn("turn-cancel/x".into()).await;
            let waiting = turn("turn-cancel/x".into());
            // Poll once (it waits), then drop it: cancelled.
            tokio::select! {
                biased;
                _ = waiting => panic!("the name is held"),
                () = tokio::task::yield_now() => {}
            }
            drop(held);
        });
        assert!(!TURNS
            .lock()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("turn-cancel/")));
    }
}
