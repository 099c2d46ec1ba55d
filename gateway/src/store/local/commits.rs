//! The one lock every change to the store's files is made under: the threads of this process
//! take a mutex, and processes sharing the folder (a `gateway sweep` beside the server) an
//! `flock` on `<root>/.commits`. Without the second, a sweep could check a draft's ETag, the
//! server could commit a new upload to the same key, and the sweep delete the new upload.

use draftstore_core::StorageError;
use std::fs::File;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

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

/// Opens (creating) a file used only for its `flock`.
///
/// # Errors
/// It cannot be opened.
pub fn lock_file(path: &Path) -> Result<File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
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
}
