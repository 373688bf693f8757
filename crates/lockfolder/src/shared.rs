//! What every acquisition of one `LockFolder` shares: the folder, the
//! options its bids record, the filesystem policy's verdict, the pool of
//! folder watches.

use crate::bid::Mode;
use crate::builder::OnLost;
use crate::error::{Error, Result};
use crate::liveness::{self, Judge};
use crate::store::Folder;
use crate::wake::Watch;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What every acquisition of one `LockFolder` shares.
pub(crate) struct Shared {
    pub folder: Folder,
    pub label: Option<String>,
    pub command: Option<String>,
    /// Bid in the name of this process of ours instead of the caller.
    pub owner: Option<u32>,
    /// A process group that keeps the bid alive after the owner exits.
    pub group: Option<u32>,
    pub mode: Mode,
    pub slots: u32,
    /// Whether the folder's filesystem may be locked on.
    pub fs_gate: FsGate,
    pub fs_policy: crate::policy::FsPolicy,
    /// The lease bids are held under, if any.
    pub lease: Option<Duration>,
    /// Whether holders draw fencing tokens.
    pub fencing: bool,
    pub on_lost: Option<OnLost>,
    /// inotify instances kept for reuse: closing one costs the kernel an RCU
    /// grace period (milliseconds), which would otherwise be paid by every
    /// contended acquisition. Tagged with the PID that made them: a forked
    /// child must not read events from its parent's instances.
    pub watches: Mutex<(u32, Vec<Watch>)>,
    /// The "alive" verdicts of the last acquisition, handed on to the next
    /// while fresh ([`crate::scan::VERDICT_MAX_AGE`]): in a busy folder
    /// every acquisition meets the same few rival processes, and judging
    /// one reads `/proc` (or its platform's equivalent).
    pub verdicts: Mutex<crate::scan::Verdicts>,
    /// Made at the first bid (and again after a fork).
    pub bid_template: Mutex<Option<crate::publish::BidTemplate>>,
}

/// What the filesystem policy (`policy.rs`) decided for this folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FsGate {
    Accepted,
    /// Not shown safe, but the user opted in by this name.
    OptedIn(String),
    /// Not shown safe; bidding is refused, for this reason.
    Refused(&'static str),
}

impl Shared {
    /// Refuses to bid on a filesystem that is not shown safe, unless opted in.
    pub fn check_filesystem(&self) -> Result<()> {
        match &self.fs_gate {
            FsGate::Refused(why) => {
                let fs = self.folder.filesystem();
                Err(Error::FilesystemRefused {
                    path: self.folder.path().to_path_buf(),
                    filesystem: fs.to_string(),
                    name: fs.name.clone(),
                    why: (*why).to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// A folder watch: one from the pool if this process made it, else a new
    /// one. Events it queued while pooled are harmless: every waiter lists
    /// the folder again after arming its watch.
    pub fn borrow_watch(&self) -> std::io::Result<Watch> {
        let pooled = self.watches.lock().ok().and_then(|mut p| {
            let (pid, pool) = &mut *p;
            (*pid == liveness::current_pid())
                .then(|| pool.pop())
                .flatten()
        });
        match pooled {
            Some(w) => Ok(w),
            None => Watch::new(&self.folder),
        }
    }

    /// Keeps `w` for the next waiter (a few at most), unless we are a forked
    /// child of the process that made the pool.
    pub fn return_watch(&self, w: Watch) {
        if let Ok(mut p) = self.watches.lock() {
            let (pid, pool) = &mut *p;
            if *pid == liveness::current_pid() && pool.len() < 8 {
                pool.push(w);
            }
        }
    }

    pub fn path_of(&self, name: &[u8]) -> std::path::PathBuf {
        self.folder.child(name)
    }

    pub fn judge(&self) -> Judge {
        Judge::new(self.folder.filesystem().single_kernel())
    }
}

pub(crate) fn now_unix() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
