//! The one error type of the crate.
//!
//! Every message names the operation that failed and the path it failed on, so
//! that a line in a log is enough to find the folder and the step.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The filesystem or process operation that failed.
///
/// Carried by [`Error::Io`] so callers (and fault-injection tests) can tell
/// which step of the protocol an error came from without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Creating the lock folder (and its parents).
    CreateFolder,
    /// Opening the lock folder.
    OpenFolder,
    /// Listing the lock folder (steps 10 and 30).
    ReadFolder,
    /// Inspecting one entry of the folder (`lstat`, `open`, `fstat`, `read`).
    ReadEntry,
    /// Creating the temporary file a bid is written to.
    CreateTemp,
    /// Writing the bid's content into the temporary file.
    WriteTemp,
    /// Moving the temporary file into place as `<token>.json` (step 20).
    Publish,
    /// Deleting a bid or temporary file (steps 40 and 60, stale removal).
    Remove,
    /// Reading this process's own identity (`/proc`, host name, boot id).
    Identity,
    /// Setting up change notification (inotify, pidfd, eventfd) or waiting on it.
    Watch,
    /// Renewing a lease (touching the bid).
    Renew,
    /// Creating the fencing token's file.
    Fence,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::CreateFolder => "create lock folder",
            Op::OpenFolder => "open lock folder",
            Op::ReadFolder => "list lock folder",
            Op::ReadEntry => "inspect entry",
            Op::CreateTemp => "create temporary bid",
            Op::WriteTemp => "write temporary bid",
            Op::Publish => "publish bid",
            Op::Remove => "remove",
            Op::Identity => "read process identity",
            Op::Watch => "watch lock folder",
            Op::Renew => "renew lease of",
            Op::Fence => "create fencing token",
        })
    }
}

/// Everything that can go wrong. Contention is not an error: a lock held by
/// someone else is `Ok(None)` from [`crate::LockFolder::try_lock`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: Op,
        /// The file or folder it was done to.
        path: PathBuf,
        /// The underlying error, with its `ErrorKind` and errno intact.
        #[source]
        source: io::Error,
    },
    /// The lock path exists but is not a directory (or is a symlink to one).
    #[error("open lock folder {}: not a directory", path.display())]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// `lock_timeout` gave up.
    #[error("lock folder {}: timed out after {waited:.3?} waiting for {holder}", path.display())]
    Timeout {
        /// The lock folder.
        path: PathBuf,
        /// How long the caller waited.
        waited: Duration,
        /// A one-line description of who held the lock when we gave up.
        holder: String,
    },
    /// The wait was cancelled through a [`crate::CancelToken`].
    #[error("lock folder {}: wait cancelled", path.display())]
    Cancelled {
        /// The lock folder.
        path: PathBuf,
    },
    /// Our bid vanished while we held the lock: someone deleted it by hand, or
    /// the folder was removed. The lock may have been taken by another process.
    #[error("release {}: the bid had vanished, the lock was lost", path.display())]
    LockLost {
        /// The path of the bid that vanished.
        path: PathBuf,
    },
    /// A bid was published but could not be withdrawn: it stays in the folder
    /// and will block others until this process exits (it is then stale).
    #[error("withdraw bid {}: {source} (the bid is left behind until this process exits)", path.display())]
    WithdrawFailed {
        /// The bid that could not be removed.
        path: PathBuf,
        /// Why removing it failed.
        #[source]
        source: io::Error,
    },
    /// A label or other input that cannot be stored in a bid.
    #[error("lock folder {}: {what}", path.display())]
    InvalidInput {
        /// The lock folder.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Contenders of one folder disagree on the number of slots of the
    /// counting semaphore (or one uses slots and the other not).
    #[error("bid {}: made for {theirs} slot(s), but this lock was opened with {ours}; every user of a folder must give the same slot count", path.display())]
    SlotsMismatch {
        /// The bid that disagrees.
        path: PathBuf,
        /// Our slot count.
        ours: u32,
        /// The bid's slot count.
        theirs: u32,
    },
    /// The folder is on a filesystem lockfolder has no evidence is safe for
    /// it (its listings may be stale), and the user did not opt in.
    #[error(
        "lock folder {}: refusing to lock on {filesystem}: {why}; to accept it anyway, opt in \
         by name (Builder::allow_filesystem(\"{name}\"), LOCKFOLDER_ALLOW_FS={name}, \
         lockfolder run --allow-fs {name})",
        path.display()
    )]
    FilesystemRefused {
        /// The lock folder.
        path: PathBuf,
        /// The filesystem, described.
        filesystem: String,
        /// Its name, as the opt-in takes it.
        name: String,
        /// Why it is not shown safe.
        why: String,
    },
    /// An operator's request that lockfolder refuses, because it could break
    /// mutual exclusion or touch a file that is not a bid.
    #[error("remove {}: refused: {why}", path.display())]
    Refused {
        /// The entry.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The platform cannot run the protocol safely (see `docs/safety.md`).
    #[error("lock folder {}: {what} is not supported on this platform", path.display())]
    Unsupported {
        /// The lock folder.
        path: PathBuf,
        /// What is missing.
        what: &'static str,
    },
}

impl Error {
    pub(crate) fn io(op: Op, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The operation that failed, for I/O errors.
    pub fn op(&self) -> Option<Op> {
        match self {
            Error::Io { op, .. } => Some(*op),
            Error::WithdrawFailed { .. } => Some(Op::Remove),
            _ => None,
        }
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::NotADirectory { path }
            | Error::Timeout { path, .. }
            | Error::Cancelled { path }
            | Error::LockLost { path }
            | Error::WithdrawFailed { path, .. }
            | Error::InvalidInput { path, .. }
            | Error::SlotsMismatch { path, .. }
            | Error::Refused { path, .. }
            | Error::FilesystemRefused { path, .. }
            | Error::Unsupported { path, .. } => path,
        }
    }

    /// The `ErrorKind` this error converts to.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::Io { source, .. } | Error::WithdrawFailed { source, .. } => source.kind(),
            Error::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            Error::Cancelled { .. } => io::ErrorKind::Interrupted,
            Error::LockLost { .. } => io::ErrorKind::NotFound,
            Error::InvalidInput { .. } => io::ErrorKind::InvalidInput,
            Error::SlotsMismatch { .. } => io::ErrorKind::InvalidData,
            Error::Refused { .. } => io::ErrorKind::PermissionDenied,
            Error::FilesystemRefused { .. } => io::ErrorKind::Unsupported,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
        }
    }

    /// The OS error number, where there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } | Error::WithdrawFailed { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    /// Keeps the `ErrorKind` (and errno, through the source chain) so code that
    /// speaks `io::Result` loses nothing.
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
