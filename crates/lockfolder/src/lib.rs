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
//! * **The protocol** (`protocol.rs`) follows the seed's steps 10-60 in order.
//!   Safety rests on one fact: a contender enters only after a listing that
//!   *began after its own bid was published* showed no other live bid. Of any
//!   two holders, the later bidder's listing would have seen the earlier one's
//!   bid. `docs/safety.md` has the argument, its limits (network filesystems,
//!   foreign hosts) and the model check.
//! * **Bids appear whole**: written to a `.lockfolder-*.tmp` name that no
//!   reader takes for a bid, then renamed into place with `RENAME_NOREPLACE`
//!   (or hard-linked where rename cannot refuse to replace).
//! * **Staleness is fail-closed**: only `ESRCH`, a different start time, or a
//!   fully exited zombie proves a process gone, and only for bids written on
//!   this host, boot and PID namespace. Unreadable, foreign or ambiguous bids
//!   are live. Entries that are not bids are never touched and block the lock.
//! * **Fair waiting**: each contender's token records when it started
//!   waiting. The oldest waiter keeps its bid and the others withdraw, so the
//!   lock is handed over first-come-first-served with no livelock. Waiting
//!   sleeps on inotify (folder changes) and pidfd (holder exit), re-checking
//!   every [`RECHECK`] in case a hint is missed.
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
//! A person or program that deletes bids by hand, clocks that are not used for
//! safety anyway, and network filesystems whose directory listings are cached
//! (NFS, many FUSE filesystems): there a fresh listing is not guaranteed and
//! two holders are possible. Bids from other hosts are never judged stale, so
//! a crashed remote holder must be cleaned up by hand.
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

mod bid;
#[cfg(feature = "model")]
pub mod decide;
#[cfg(not(feature = "model"))]
mod decide;
mod error;
mod fault;
mod fsinfo;
mod identity;
mod liveness;
mod names;
mod protocol;
mod report;
mod scan;
mod store;
mod wait;
mod wake;

#[cfg(test)]
mod tests;

// The README's example is compiled with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

pub use bid::{BidRecord, Mode, FORMAT_VERSION, MAX_BID_BYTES, MAX_LABEL_BYTES};
pub use error::{Error, Op, Result};
pub use fsinfo::{Filesystem, FsKind};
pub use identity::{
    FreebsdOwner, LinuxOwner, MacosOwner, Owner, StaleReason, Unjudgeable, WindowsOwner,
    LEGACY_CLOCK_STEP_TOLERANCE,
};
pub use names::Token;
pub use protocol::{HANDOVER, KEEP_MAX};
pub use report::{EntryKind, Holder, Role, State, Status};
pub use wait::{CancelToken, Waiter, RECHECK};

use protocol::{Contender, Shared, Step};
use std::fmt;
use std::path::{Path, PathBuf};
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
        published_ms: Some(protocol::now_unix().as_millis() as u64),
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

/// Options for opening a [`LockFolder`].
#[derive(Debug, Clone)]
pub struct Builder {
    path: PathBuf,
    create: bool,
    label: Option<String>,
    command: Option<String>,
    owner: Option<u32>,
    group: Option<u32>,
    mode: Mode,
    slots: u32,
}

impl Builder {
    /// A shared (reader) lock: any number of shared holders at once, none
    /// while an exclusive holder is in. Waiters are served in age order, so a
    /// stream of readers cannot starve a waiting writer (FIFO, not reader
    /// preference). Default: exclusive.
    pub fn shared(mut self, yes: bool) -> Self {
        self.mode = if yes { Mode::Shared } else { Mode::Exclusive };
        self
    }

    /// A counting semaphore: at most `n` holders at once. Every contender of
    /// the folder must use the same `n`; a bid with another count is refused
    /// with [`Error::SlotsMismatch`]. `1` (the default) is a plain lock.
    pub fn slots(mut self, n: u32) -> Self {
        self.slots = n;
        self
    }

    /// Whether to create the folder (and its parents) if missing. Default: yes.
    pub fn create(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }

    /// Free text stored in every bid, shown by `holders()` and `lockfolder
    /// status` (at most [`MAX_LABEL_BYTES`]).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The command line the holder runs, stored in the bid for display.
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(command.into());
        self
    }

    /// Bid on behalf of another process of ours: the bid names `pid` (and its
    /// start time) instead of the calling process, so the lock lives exactly
    /// as long as that process. This is how `lockfolder run` makes the lock
    /// follow the command even if the launcher is killed. The process must
    /// exist when bidding and must not start its work before the lock is held.
    pub fn owner_pid(mut self, pid: u32) -> Self {
        self.owner = Some(pid);
        self
    }

    /// Keep the bid alive, after its owner process has exited, for as long as
    /// any process of process group `pgid` lives (errs towards alive: a
    /// group is gone only when `kill(-pgid, 0)` answers `ESRCH`). This is how
    /// `lockfolder run` keeps the lock while a command's background children
    /// run, as `flock(1)` does through the inherited descriptor. Unix only:
    /// Windows has no process groups in this sense, and a Windows bid's
    /// group is ignored.
    pub fn owner_group(mut self, pgid: u32) -> Self {
        self.group = Some(pgid);
        self
    }

    /// Opens the lock folder.
    ///
    /// # Errors
    ///
    /// [`Error::NotADirectory`] if the path is something else,
    /// [`Error::InvalidInput`] for an oversized label, I/O errors creating or
    /// opening the folder.
    pub fn open(self) -> Result<LockFolder> {
        for text in [&self.label, &self.command].into_iter().flatten() {
            if text.len() > MAX_LABEL_BYTES {
                return Err(Error::InvalidInput {
                    path: self.path,
                    what: format!("label or command longer than {MAX_LABEL_BYTES} bytes"),
                });
            }
        }
        if self.slots == 0 || (self.slots > 1 && self.mode == Mode::Shared) {
            return Err(Error::InvalidInput {
                path: self.path,
                what: "slots must be at least 1, and a semaphore cannot also be shared".into(),
            });
        }
        let folder = store::Folder::open(&self.path, self.create)?;
        Ok(LockFolder {
            shared: Arc::new(Shared {
                folder,
                label: self.label,
                command: self.command,
                owner: self.owner,
                group: self.group,
                mode: self.mode,
                slots: self.slots,
                watches: std::sync::Mutex::new((liveness::current_pid(), Vec::new())),
            }),
        })
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

    /// Options: label, owner process, whether to create the folder.
    pub fn builder(path: impl AsRef<Path>) -> Builder {
        Builder {
            path: path.as_ref().to_path_buf(),
            create: true,
            label: None,
            command: None,
            owner: None,
            group: None,
            mode: Mode::Exclusive,
            slots: 1,
        }
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
        let mut c = Contender::new(self.shared.clone());
        match c.attempt(false)? {
            Step::Held(name) => Ok(Some(LockGuard::new(self.shared.clone(), name))),
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
        Ok(report::status(&self.shared)?.entries)
    }

    /// The folder at this moment: every entry, whether a new blocking
    /// acquisition would have to wait and for what, and the filesystem.
    /// Nothing is changed.
    ///
    /// # Errors
    ///
    /// I/O errors listing the folder.
    pub fn status(&self) -> Result<Status> {
        report::status(&self.shared)
    }

    /// The filesystem the folder lives on, as identified when it was opened.
    pub fn filesystem(&self) -> &Filesystem {
        self.shared.folder.filesystem()
    }

    /// Whether anything in the folder keeps the lock from being taken right
    /// now (a live or foreign bid, or an entry that is not a bid); queued
    /// waiters aside.
    ///
    /// # Errors
    ///
    /// I/O errors listing the folder.
    pub fn is_locked(&self) -> Result<bool> {
        Ok(report::status(&self.shared)?.held())
    }

    /// Judges the one entry `name` of the folder and removes it if it is a
    /// stale bid or side file (lockfolder 1.x's `challenge`). Returns whether
    /// it was removed. Live, foreign and not-a-bid entries are left alone.
    ///
    /// # Errors
    ///
    /// I/O errors inspecting or removing the entry.
    pub fn challenge(&self, name: impl AsRef<std::ffi::OsStr>) -> Result<bool> {
        report::challenge(&self.shared, name.as_ref().as_encoded_bytes())
    }

    /// Removes stale bids (and side files of dead writers) and returns them.
    /// Nothing else is ever removed.
    ///
    /// # Errors
    ///
    /// I/O errors listing the folder or removing an entry.
    pub fn clean(&self) -> Result<Vec<Holder>> {
        report::clean(&self.shared)
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
        report::remove_forced(&self.shared, name.as_ref().as_encoded_bytes())
    }
}

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
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("bid", &self.bid_path())
            .finish()
    }
}

impl LockGuard {
    pub(crate) fn new(shared: Arc<Shared>, name: String) -> LockGuard {
        LockGuard {
            shared,
            name,
            creator: liveness::current_pid(),
            done: false,
        }
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
    /// [`Error::LockLost`] if the bid had already vanished; I/O errors
    /// deleting it; [`Error::InvalidInput`] in a forked child, which does not
    /// own its parent's lock.
    pub fn release(mut self) -> Result<()> {
        self.done = true;
        if !self.owned_here() {
            return Err(Error::InvalidInput {
                path: self.bid_path(),
                what: format!(
                    "release: the lock belongs to process {} (this is a forked child)",
                    self.creator
                ),
            });
        }
        match protocol::delete_bid(&self.shared, &self.name) {
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
        if !self.done && self.owned_here() {
            let _ = protocol::delete_bid(&self.shared, &self.name);
        }
    }
}
