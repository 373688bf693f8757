//! The lock, held: releasing it (step 60), and knowing whether it is still
//! ours.

use crate::error::{Error, Op, Result};
use crate::lease::Renewer;
use crate::liveness;
use crate::protocol::Entered;
use crate::publish;
use crate::shared::Shared;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The lock, held. Dropping it releases the lock (deleting the bid);
/// [`LockGuard::release`] does the same and reports failures.
///
/// A guard inherited by a forked child is inert in the child: only the
/// process that made the bid deletes it.
#[must_use = "dropping the guard releases the lock at once"]
pub struct LockGuard {
    shared: Arc<Shared>,
    name: String,
    creator: u32,
    done: bool,
    fence: Option<u64>,
    /// Renews the bid, when the lock is held under a lease.
    renewer: Option<Renewer>,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("bid", &self.bid_path())
            .finish()
    }
}

impl LockGuard {
    pub(crate) fn new(shared: Arc<Shared>, e: Entered) -> LockGuard {
        let renewer = shared
            .lease
            .map(|lease| Renewer::start(shared.clone(), e.name.clone(), lease, e.published));
        LockGuard {
            shared,
            name: e.name,
            creator: liveness::current_pid(),
            done: false,
            fence: e.fence,
            renewer,
        }
    }

    /// The fencing token of this acquisition (with [`crate::Builder::fencing`]
    /// or a lease): larger than every earlier holder's. Pass it to the
    /// resource the lock protects, so it can refuse a holder that has since
    /// lost the lock.
    pub fn fencing_token(&self) -> Option<u64> {
        self.fence
    }

    /// Whether the lease could not be renewed in time (always `false`
    /// without a lease): the lock may already be someone else's, so stop
    /// using the resource and release.
    pub fn lost(&self) -> bool {
        self.renewer.as_ref().is_some_and(Renewer::lost)
    }

    /// The bid file that is the lock.
    pub fn bid_path(&self) -> PathBuf {
        self.shared.path_of(self.name.as_bytes())
    }

    /// The lock folder.
    pub fn folder(&self) -> &Path {
        self.shared.folder.path()
    }

    /// Whether our bid is still in the folder. `false` means the lock was lost
    /// (the bid was deleted by someone else).
    ///
    /// # Errors
    ///
    /// I/O errors other than "not found".
    pub fn is_held(&self) -> Result<bool> {
        self.shared
            .folder
            .exists(&self.name)
            .map_err(|e| Error::io(Op::ReadEntry, self.bid_path(), e))
    }

    /// Whether this process is the one that took the lock (false in a forked
    /// child holding an inherited guard).
    pub fn owned_here(&self) -> bool {
        self.creator == liveness::current_pid()
    }

    /// Releases the lock (step 60).
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] if the bid had already vanished or its lease could
    /// not be renewed in time; I/O errors
    /// deleting it; [`Error::InvalidInput`] in a forked child, which does not
    /// own its parent's lock.
    pub fn release(mut self) -> Result<()> {
        self.done = true;
        let lost = self.lost();
        // Stop renewing before the bid goes.
        self.renewer.take();
        if !self.owned_here() {
            return Err(Error::InvalidInput {
                path: self.bid_path(),
                what: format!(
                    "release: the lock belongs to process {} (this is a forked child)",
                    self.creator
                ),
            });
        }
        match publish::delete_bid(&self.shared, &self.name) {
            Ok(_) if lost => Err(Error::LockLost {
                path: self.bid_path(),
            }),
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::LockLost {
                path: self.bid_path(),
            }),
            Err(e) => Err(Error::io(Op::Remove, self.bid_path(), e)),
        }
    }

    /// Forgets the guard without deleting the bid. The bid stays until this
    /// process exits, when it becomes stale.
    pub fn leak(mut self) {
        self.done = true;
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.renewer.take();
        if !self.done && self.owned_here() {
            let _ = publish::delete_bid(&self.shared, &self.name);
        }
    }
}
