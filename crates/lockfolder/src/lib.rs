//! A crash-safe inter-process mutex that needs nothing but a folder.
//!
//! A contender *checks* the folder, *bids* by publishing `<token>.json` (its
//! PID, process start time and host identity), *checks* again, and withdraws
//! if it sees a rival; the bid is the lock until it is deleted. A bid whose
//! process is provably gone (no process with that PID *and* that start time,
//! on this host and boot) may be removed by anyone, so a crash never leaves
//! the lock stuck. This is the check-bid-check procedure of lockfolder 1.x,
//! and processes running lockfolder 1.0.2 can share a folder with this crate.
//!
//! ```
//! # fn main() -> Result<(), lockfolder::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("nightly-backup.lock");
//! use lockfolder::LockFolder;
//! use std::time::Duration;
//!
//! let folder = LockFolder::new(&path)?; // created if missing
//!
//! // Block until the lock is ours (or give up after a minute).
//! let guard = folder.lock_timeout(Duration::from_secs(60))?;
//! // ... only one process at a time runs here ...
//! guard.release()?; // or just drop it
//!
//! // One attempt, no waiting: `None` means a live rival holds it.
//! if let Some(guard) = folder.try_lock()? {
//!     assert!(guard.is_held()?);
//! }
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! The file tree is the design:
//!
//! * `protocol.rs`: the seed's steps 10-60, in order, and nothing else.
//!   Safety rests on one fact: a contender enters only after a listing that
//!   *began after its own bid was published* showed no other live bid. Of
//!   any two holders, the later bidder's listing would have seen the earlier
//!   one's bid. `docs/safety.md` has the argument and its limits.
//! * `decide.rs`: every rule that decides anything (stale removal, rivals,
//!   modes and slots, the queue, bid / defer / enter / keep / withdraw), as
//!   pure functions. The model checker (`crates/lockfolder-model`) explores
//!   these very functions.
//! * `scan.rs` looks at the folder (names first, then contents) and has
//!   every entry's writer judged; `identity/` holds the rules of who is
//!   provably gone, per platform, as pure functions; `liveness/`, `store/`,
//!   `wake/` and `fsinfo/` are the platform backends (proof of death, the
//!   folder, sleeping until something changes, which filesystem it is), one
//!   file per platform, selected in their `mod.rs`.
//! * **Bids appear whole**: written under a `.lockfolder-*.tmp` name that no
//!   reader takes for a bid, then moved into place without ever replacing an
//!   entry.
//! * **Staleness is fail-closed**: only proof (`ESRCH`, another start time, a
//!   fully exited zombie, an earlier boot of this machine, a lapsed lease)
//!   makes an entry stale. An identity of another machine, platform, or a
//!   PID namespace this reader cannot see into is unjudgeable and counts as
//!   live. Entries that are not bids are never touched and block the lock.
//! * **Fair waiting**: each contender's token records when it started
//!   waiting; queue markers let older waiters bid first, and the oldest
//!   bidder keeps its bid while younger ones withdraw, so the lock is handed
//!   over first-come-first-served with no livelock. A waiter that does not
//!   take its turn (stopped, gone, unjudgeable) loses it after [`HANDOVER`]:
//!   no marker can stop the queue. Waiting sleeps until the folder changes
//!   or the holder exits, re-checking every [`RECHECK`].
//! * **Where the folder lives**: the filesystem is identified when the
//!   folder is opened ([`LockFolder::filesystem`]); one without evidence that
//!   its listings are fresh is refused unless the user opts in by name
//!   ([`Builder::allow_filesystem`]).
//! * **Many machines**: [`Builder::lease`] lets a folder shared between
//!   hosts recover from a host that died (judged by the file server's
//!   clock), and fencing tokens ([`LockGuard::fencing_token`]) let a
//!   resource refuse a holder that lost its lease while paused.
//!
//! # Shared locks and semaphores
//!
//! The same bids record a mode and a slot count: shared holders run
//! together but never with an exclusive one, and a semaphore admits at most N
//! holders. Waiting stays first-come-first-served, so a stream of readers
//! cannot starve a writer.
//!
//! ```
//! # fn main() -> Result<(), lockfolder::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! use lockfolder::LockFolder;
//!
//! let readers = LockFolder::builder(dir.path()).shared(true).open()?;
//! let r1 = readers.try_lock()?.expect("free");
//! let r2 = readers.try_lock()?.expect("readers share");
//! let writer = LockFolder::new(dir.path())?;
//! assert!(writer.try_lock()?.is_none(), "no writer while readers hold");
//! drop((r1, r2));
//! assert!(writer.try_lock()?.is_some());
//!
//! let pool = tempfile::tempdir().unwrap();
//! let two = LockFolder::builder(pool.path()).slots(2).open()?;
//! let (a, b) = (two.try_lock()?, two.try_lock()?);
//! assert!(a.is_some() && b.is_some());
//! assert!(two.try_lock()?.is_none(), "both slots taken");
//! # Ok(()) }
//! ```
//!
//! # What it does not protect against
//!
//! A person or program that deletes bids by hand; a holder that is *paused*
//! longer than its lease (use the fencing token at the resource);
//! filesystems whose listings may be stale even after one's own change
//! (refused by default; an opt-in is the user's responsibility); lockfolder
//! 1.0.2 processes across wall-clock steps over
//! [`LEGACY_CLOCK_STEP_TOLERANCE`] seconds. Bids from other hosts without a
//! lease are never judged stale: a crashed remote holder must be removed by
//! an operator ([`LockFolder::remove_forced`], `lockfolder clean --force`).
//!
//! # Platforms
//!
//! Linux, macOS, FreeBSD and Windows, each with its own proof of death
//! (`docs/safety.md`): Linux reads `/proc` and `kill(2)`; macOS and FreeBSD
//! read `sysctl` (`kinfo_proc`) and `kill(2)`; Windows opens a process handle
//! and asks whether that process has exited. Waiting sleeps on inotify and
//! pidfd (Linux), kqueue (macOS, FreeBSD) or change notifications and
//! process handles (Windows). Other platforms compile, and bidding fails
//! with an `Unsupported` error rather than run without a proof of liveness.

#![deny(missing_docs)]
// `unsafe` is allowed only in the platform files that call the operating
// system directly (`liveness/`, `store/`, `wake/`, `fsinfo/` for macOS,
// FreeBSD and Windows), each of which opts in and comments every block.
#![deny(unsafe_code)]

mod admin;
mod bid;
mod builder;
#[cfg(feature = "model")]
pub mod decide;
#[cfg(not(feature = "model"))]
mod decide;
mod error;
mod fault;
mod fsinfo;
mod guard;
mod identity;
mod lease;
mod liveness;
mod names;
mod policy;
mod protocol;
mod publish;
mod report;
mod scan;
mod shared;
mod store;
mod wait;
mod wake;

#[cfg(test)]
mod tests;

// The README's example is compiled with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

pub use admin::Status;
pub use bid::{BidRecord, Mode, FORMAT_VERSION, MAX_BID_BYTES, MAX_LABEL_BYTES};
pub use builder::{Builder, OnLost, MAX_LEASE, MIN_LEASE};
pub use error::{Error, Op, Result};
pub use fsinfo::{Filesystem, FsKind};
pub use guard::LockGuard;
pub use identity::{
    FreebsdOwner, LinuxOwner, MacosOwner, Owner, StaleReason, Unjudgeable, WindowsOwner,
    LEGACY_CLOCK_STEP_TOLERANCE,
};
pub use names::Token;
pub use policy::{FsPolicy, ALLOW_FS_ENV};
pub use protocol::{HANDOVER, KEEP_MAX};
pub use report::{EntryKind, Holder, Role, State};
pub use wait::{CancelToken, Waiter, RECHECK};

use protocol::{Contender, Step};
use shared::Shared;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a bid published by this process right now would record about it
/// (PID, 1.0.2's `CREATED`, host and platform identity). Useful to other
/// implementations and to tests that write interoperable bids.
///
/// # Errors
///
/// I/O errors reading this process's identity; `Unsupported` on platforms
/// without a proof of process death.
pub fn current_identity() -> std::io::Result<BidRecord> {
    let me = liveness::current()?;
    Ok(BidRecord {
        pid: me.pid,
        created: me.created,
        version: Some(FORMAT_VERSION),
        host: Some(me.host),
        owner: Some(me.owner),
        published_ms: Some(shared::now_unix().as_millis() as u64),
        ..BidRecord::default()
    })
}

/// A lock folder: the mutex itself. Cheap to clone; `Send + Sync`, and every
/// acquisition (from any thread) is a bid of its own, so threads of one
/// process exclude each other like processes do.
#[derive(Clone)]
pub struct LockFolder {
    shared: Arc<Shared>,
}

impl fmt::Debug for LockFolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFolder")
            .field("path", &self.path())
            .finish()
    }
}

impl LockFolder {
    /// Opens the lock folder at `path`, creating it (and its parents) if
    /// missing.
    ///
    /// # Errors
    ///
    /// [`Error::NotADirectory`] if `path` exists and is not a directory; I/O
    /// errors creating or opening it.
    pub fn new(path: impl AsRef<Path>) -> Result<LockFolder> {
        LockFolder::builder(path).open()
    }

    /// Options: mode, slots, label, owner process, lease, filesystem opt-in.
    pub fn builder(path: impl AsRef<Path>) -> Builder {
        Builder::new(path.as_ref().to_path_buf())
    }

    /// The mode of this folder's bids.
    pub fn mode(&self) -> Mode {
        self.shared.mode
    }

    /// The slot count (1 unless opened as a semaphore).
    pub fn slots(&self) -> u32 {
        self.shared.slots
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        self.shared.folder.path()
    }

    /// One check-bid-check attempt, no waiting. `Ok(None)` means a live rival
    /// (or an entry that is not a bid) is in the folder.
    ///
    /// # Errors
    ///
    /// I/O errors (each naming the step and path). If our bid was published
    /// but cannot be withdrawn, [`Error::WithdrawFailed`].
    pub fn try_lock(&self) -> Result<Option<LockGuard>> {
        let mut c = Contender::new(self.shared.clone(), false);
        match c.attempt(false)? {
            Step::Held(e) => Ok(Some(LockGuard::new(self.shared.clone(), e))),
            Step::Busy | Step::Wait => Ok(None),
        }
    }

    /// Blocks until the lock is ours.
    ///
    /// # Errors
    ///
    /// I/O errors; see [`LockFolder::try_lock`].
    pub fn lock(&self) -> Result<LockGuard> {
        wait::lock_until(self.shared.clone(), None, None)
    }

    /// Blocks until the lock is ours or `timeout` has passed.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] naming the holder; I/O errors.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<LockGuard> {
        // A timeout too long to represent is no timeout.
        let deadline = Instant::now().checked_add(timeout);
        wait::lock_until(self.shared.clone(), deadline, None)
    }

    /// Blocks until the lock is ours, `deadline` passes or `cancel` fires.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`], [`Error::Cancelled`], I/O errors.
    pub fn lock_with(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<LockGuard> {
        wait::lock_until(self.shared.clone(), deadline, cancel)
    }

    /// A resumable waiter, for front ends that wait in slices.
    pub fn waiter(&self) -> Waiter {
        Waiter::new(self.shared.clone())
    }

    /// Every entry of the folder with its state and part; nothing is
    /// changed.
    ///
    /// # Errors
    ///
    /// I/O errors listing the folder.
    pub fn holders(&self) -> Result<Vec<Holder>> {
        Ok(admin::status(&self.shared)?.entries)
    }

    /// The folder at this moment: every entry, whether a new blocking
    /// acquisition would have to wait and for what, and the filesystem.
    /// Nothing is changed.
    ///
    /// # Errors
    ///
    /// I/O errors listing the folder.
    pub fn status(&self) -> Result<Status> {
        admin::status(&self.shared)
    }

    /// The filesystem the folder lives on, as identified when it was opened.
    pub fn filesystem(&self) -> &Filesystem {
        self.shared.folder.filesystem()
    }

    /// Whether lockfolder may lock on that filesystem, and why
    /// (`docs/safety.md` has the table); a refused one makes every
    /// acquisition fail with [`Error::FilesystemRefused`].
    pub fn filesystem_policy(&self) -> FsPolicy {
        self.shared.fs_policy
    }

    /// Whether anything in the folder keeps the lock from being taken right
    /// now (a live or foreign bid, or an entry that is not a bid); queued
    /// waiters aside.
    ///
    /// # Errors
    ///
    /// I/O errors listing the folder.
    pub fn is_locked(&self) -> Result<bool> {
        Ok(admin::status(&self.shared)?.held())
    }

    /// Judges the one entry `name` of the folder and removes it if it is a
    /// stale bid or side file (lockfolder 1.x's `challenge`). Returns whether
    /// it was removed. Live, foreign and not-a-bid entries are left alone.
    ///
    /// # Errors
    ///
    /// I/O errors inspecting or removing the entry.
    pub fn challenge(&self, name: impl AsRef<std::ffi::OsStr>) -> Result<bool> {
        admin::challenge(&self.shared, name.as_ref().as_encoded_bytes())
    }

    /// Removes stale bids (and side files of dead writers) and returns them.
    /// Nothing else is ever removed.
    ///
    /// # Errors
    ///
    /// I/O errors listing the folder or removing an entry.
    pub fn clean(&self) -> Result<Vec<Holder>> {
        admin::clean(&self.shared)
    }

    /// Removes the entry `name` on an operator's say-so, for what no proof
    /// can settle: a bid or queue marker of a container killed as a whole, of
    /// a host that is gone, a 1.0.2 bid left empty by a crash. Returns what
    /// was removed. Refuses ([`Error::Refused`]) anything not named like a
    /// bid or side file, and the bid of a process this machine sees alive.
    ///
    /// Removing the bid of a holder that is in fact alive elsewhere lets a
    /// second holder in: this is the operator's call, never lockfolder's.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`]; I/O errors (`NotFound` if there is no such entry).
    pub fn remove_forced(&self, name: impl AsRef<std::ffi::OsStr>) -> Result<Holder> {
        admin::remove_forced(&self.shared, name.as_ref().as_encoded_bytes())
    }
}
