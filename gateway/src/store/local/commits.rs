//! The one lock every change to the store's files is made under: the threads of this process
//! take a mutex, and processes sharing the folder (a `gateway sweep` beside the server) an
//! `flock` on `<root>/.commits`. Without the second, a sweep could check a draft's ETag, the
//! server could commit a new upload to the same key, and the sweep delete the new upload.
//!
//! Big work (copying a confirm's bytes, fsync) is done before taking the lock; only the commit
//! (renames and a small metadata write) happens under it. A [`Gate`] ties a change to the caller
//! still waiting for it: when the caller's future is dropped (a timeout, a client gone) before
//! the commit starts, the change is not made, so an answer of timeout means nothing changed.

use draftstore_core::StorageError;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub struct Commits {
    threads: Mutex<()>,
    processes: File,
}

/// Held while a change is made; released when dropped.
pub struct Guard<'a> {
    _thread: MutexGuard<'a, ()>,
    processes: &'a File,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // Closing the file would release it too; the process keeps it open.
        let _ = self.processes.unlock();
    }
}

impl Commits {
    /// # Errors
    /// `<root>/.commits` cannot be opened.
    pub fn open(root: &Path) -> Result<Self, String> {
        Ok(Self {
            threads: Mutex::new(()),
            processes: lock_file(&root.join(".commits"))?,
        })
    }

    /// Waits for the lock (call it on a blocking thread).
    ///
    /// # Errors
    /// The file system refuses the lock.
    pub fn lock(&self) -> Result<Guard<'_>, StorageError> {
        // The mutex first: an flock is shared by every thread holding the same open file.
        let thread = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        self.processes.lock().map_err(|e| StorageError::Backend {
            reason: format!("cannot lock the store: {e}"),
        })?;
        Ok(Guard {
            _thread: thread,
            processes: &self.processes,
        })
    }
}

const WAITING: u8 = 0;
const COMMITTING: u8 = 1;
const GONE: u8 = 2;

/// The blocking side of a change: may it still be made? See [`waiting`].
#[derive(Debug)]
pub struct Gate(Arc<AtomicU8>);

/// The caller's side: dropping it (its future was dropped before the change began) closes the
/// gate.
#[derive(Debug)]
pub struct Waiter(Arc<AtomicU8>);

/// A gate and its waiter: keep the waiter in the caller's future, move the gate to the thread
/// that makes the change.
#[must_use]
pub fn waiting() -> (Waiter, Gate) {
    let state = Arc::new(AtomicU8::new(WAITING));
    (Waiter(state.clone()), Gate(state))
}

impl Gate {
    /// Call under the lock, right before committing: from then on the change is made even if
    /// the caller goes (the window is the commit's renames, never the copy).
    ///
    /// # Errors
    /// The caller stopped waiting: make no change.
    pub fn enter(&self) -> Result<(), StorageError> {
        self.0
            .compare_exchange(WAITING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|_| StorageError::Backend {
                reason: "the caller stopped waiting; nothing was changed".into(),
            })
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let _ = self
            .0
            .compare_exchange(WAITING, GONE, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Opens (creating, mode 0600) a file used only for its `flock`.
///
/// # Errors
/// It cannot be opened.
pub fn lock_file(path: &Path) -> Result<File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_second_opener_waits_until_the_first_is_done() {
        let dir = tempfile::tempdir().unwrap();
        // Two opens of the same file conflict like two processes.
        let (server, sweep) = (
            Commits::open(dir.path()).unwrap(),
            Commits::open(dir.path()).unwrap(),
        );
        let held = server.lock().unwrap();
        let (done, finished) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _guard = sweep.lock().unwrap();
            done.send(()).unwrap();
        });
        assert!(
            finished.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second took the lock while the first held it"
        );
        drop(held);
        finished.recv_timeout(Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
        let _again = server.lock().unwrap();
    }

    #[test]
    fn a_gate_opens_only_while_its_caller_waits() {
        let (waiter, gate) = waiting();
        gate.enter().unwrap();
        drop(waiter);
        assert!(gate.enter().is_err(), "entered once");

        let (waiter, gate) = waiting();
        drop(waiter);
        assert!(gate.enter().is_err(), "the caller went first: no change");
    }
}
