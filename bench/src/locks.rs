//! The locks measured from Rust, behind one small interface so every worker
//! mode runs the same loop over each of them.

use lockfolder::{LockFolder, LockGuard};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::Duration;

/// A lock measured in Rust.
pub enum Lock {
    /// This crate: the folder at the path.
    Folder(LockFolder),
    /// `flock(2)` on the file at the path (`std::fs::File::lock`), opened once.
    Flock(File),
}

/// Proof of holding a [`Lock`].
pub enum Held {
    Folder(LockGuard),
    Flock,
}

/// Whether a lock admits one holder at a time (the counter check applies).
pub fn is_exclusive(name: &str) -> bool {
    !matches!(name, "lockfolder-shared" | "lockfolder-slots4")
}

impl Lock {
    pub fn open(name: &str, path: &Path) -> Result<Lock, String> {
        match name {
            "lockfolder" => LockFolder::new(path)
                .map(Lock::Folder)
                .map_err(|e| e.to_string()),
            "lockfolder-shared" => LockFolder::builder(path)
                .shared(true)
                .open()
                .map(Lock::Folder)
                .map_err(|e| e.to_string()),
            "lockfolder-slots4" => LockFolder::builder(path)
                .slots(4)
                .open()
                .map(Lock::Folder)
                .map_err(|e| e.to_string()),
            "flock" => OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map(Lock::Flock)
                .map_err(|e| format!("{}: {e}", path.display())),
            other => Err(format!("unknown Rust lock {other:?}")),
        }
    }

    /// One attempt, no waiting (the uncontended cycle).
    pub fn try_acquire(&self) -> Result<Option<Held>, String> {
        match self {
            Lock::Folder(f) => f
                .try_lock()
                .map(|g| g.map(Held::Folder))
                .map_err(|e| e.to_string()),
            Lock::Flock(file) => match file.try_lock() {
                Ok(()) => Ok(Some(Held::Flock)),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => Err(e.to_string()),
            },
        }
    }

    /// Blocks until held. `flock` has no timeout; the orchestrator kills a
    /// worker that outlives its deadline.
    pub fn acquire(&self, timeout: Duration) -> Result<Option<Held>, String> {
        match self {
            Lock::Folder(f) => match f.lock_timeout(timeout) {
                Ok(g) => Ok(Some(Held::Folder(g))),
                Err(lockfolder::Error::Timeout { .. }) => Ok(None),
                Err(e) => Err(e.to_string()),
            },
            Lock::Flock(file) => file
                .lock()
                .map(|()| Some(Held::Flock))
                .map_err(|e| e.to_string()),
        }
    }

    pub fn release(&self, held: Held) -> Result<(), String> {
        match (self, held) {
            (_, Held::Folder(g)) => g.release().map_err(|e| e.to_string()),
            (Lock::Flock(file), Held::Flock) => file.unlock().map_err(|e| e.to_string()),
            (Lock::Folder(_), Held::Flock) => Err("mismatched guard".to_owned()),
        }
    }
}
