//! Options for opening a lock folder.

use crate::bid::{Mode, MAX_LABEL_BYTES};
use crate::error::{Error, Result};
use crate::shared::{FsGate, Shared};
use crate::{liveness, policy, store, LockFolder};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The shortest lease accepted: renewals happen three times per lease, and
/// below a second a loaded machine would lose leases it holds.
pub const MIN_LEASE: Duration = Duration::from_secs(1);
/// The longest lease accepted (a day): a dead host's lock must come back
/// some day.
pub const MAX_LEASE: Duration = Duration::from_secs(86_400);

/// Called (once, from the renewal thread) when a holder learns that its
/// lease can no longer be renewed in time: it must stop using the resource.
pub type OnLost = Arc<dyn Fn(&std::path::Path) + Send + Sync>;

/// Options for opening a [`LockFolder`].
#[derive(Clone)]
pub struct Builder {
    pub(crate) path: PathBuf,
    pub(crate) create: bool,
    pub(crate) label: Option<String>,
    pub(crate) command: Option<String>,
    pub(crate) owner: Option<u32>,
    pub(crate) group: Option<u32>,
    pub(crate) mode: Mode,
    pub(crate) slots: u32,
    pub(crate) allow_fs: Vec<String>,
    pub(crate) lease: Option<Duration>,
    pub(crate) fencing: bool,
    pub(crate) on_lost: Option<OnLost>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("slots", &self.slots)
            .field("lease", &self.lease)
            .field("fencing", &self.fencing)
            .finish_non_exhaustive()
    }
}

impl Builder {
    pub(crate) fn new(path: PathBuf) -> Builder {
        Builder {
            path,
            create: true,
            label: None,
            command: None,
            owner: None,
            group: None,
            mode: Mode::Exclusive,
            slots: 1,
            allow_fs: Vec::new(),
            lease: None,
            fencing: false,
            on_lost: None,
        }
    }
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
    /// run, as `flock(1)` does through the inherited descriptor.
    pub fn owner_group(mut self, pgid: u32) -> Self {
        self.group = Some(pgid);
        self
    }

    /// Accept a filesystem that lockfolder has no evidence for (an SMB
    /// share, an unknown FUSE filesystem, NFS with `nocto`: see
    /// `docs/safety.md`), by its name as [`crate::Filesystem::name`] gives it,
    /// or `"*"` for any. Without it, bidding there fails with
    /// [`Error::FilesystemRefused`]. The opt-in is recorded in every bid. The
    /// environment variable [`policy::ALLOW_FS_ENV`] does the same.
    pub fn allow_filesystem(mut self, name: impl Into<String>) -> Self {
        self.allow_fs.push(name.into());
        self
    }

    /// Hold the lock under a lease: while held, the bid is renewed every
    /// third of `period`; a bid whose owner nobody here can judge (another
    /// host, another PID namespace) becomes stale once it has not been
    /// renewed for `period` plus a margin, judged by the file server's
    /// clock. This is how a lock on a shared folder recovers from a host
    /// that died. A holder that cannot renew in time learns it
    /// ([`crate::LockGuard::lost`], [`Builder::on_lost`]) before anyone may
    /// take over, unless it is paused longer than the lease itself: use the
    /// fencing token ([`Builder::fencing`], implied) to let the resource
    /// refuse such a late holder. Every contender of a folder should use the
    /// same lease; see `docs/safety.md` for what leases guarantee.
    pub fn lease(mut self, period: Duration) -> Self {
        self.lease = Some(period);
        self.fencing = true;
        self
    }

    /// Give every acquisition a fencing token: a number larger than every
    /// earlier holder's ([`crate::LockGuard::fencing_token`]), so a resource
    /// can refuse requests from a holder that has since lost the lock.
    pub fn fencing(mut self, yes: bool) -> Self {
        self.fencing = yes;
        self
    }

    /// Called once, from the lease renewal thread, when the lease can no
    /// longer be renewed in time (the holder must stop using the resource).
    pub fn on_lost(mut self, f: impl Fn(&std::path::Path) + Send + Sync + 'static) -> Self {
        self.on_lost = Some(Arc::new(f));
        self
    }

    /// Opens the lock folder.
    ///
    /// # Errors
    ///
    /// [`Error::NotADirectory`] if the path is something else,
    /// [`Error::InvalidInput`] for an oversized label, a zero slot count or a
    /// lease outside [`MIN_LEASE`]..=[`MAX_LEASE`]; I/O errors creating or opening the
    /// folder.
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
        if self
            .lease
            .is_some_and(|l| !(MIN_LEASE..=MAX_LEASE).contains(&l))
        {
            return Err(Error::InvalidInput {
                path: self.path,
                what: format!("a lease must be from {MIN_LEASE:?} to {MAX_LEASE:?}"),
            });
        }
        let folder = store::Folder::open(&self.path, self.create)?;
        let fs = folder.filesystem();
        let p = policy::decide(fs, &self.allow_fs);
        let fs_gate = match (p.accepted, p.opted_in) {
            (true, false) => FsGate::Accepted,
            (true, true) => FsGate::OptedIn(fs.name.clone()),
            (false, _) => FsGate::Refused(p.reason),
        };
        Ok(LockFolder {
            shared: Arc::new(Shared {
                fs_policy: p,
                folder,
                label: self.label,
                command: self.command,
                owner: self.owner,
                group: self.group,
                mode: self.mode,
                slots: self.slots,
                fs_gate,
                lease: self.lease,
                fencing: self.fencing,
                on_lost: self.on_lost,
                watches: std::sync::Mutex::new((liveness::current_pid(), Vec::new())),
                verdicts: std::sync::Mutex::new(Default::default()),
                bid_template: std::sync::Mutex::new(None),
            }),
        })
    }
}
