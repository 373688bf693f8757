//! Waiting for the lock: sleep in the kernel until the folder changes or the
//! process holding the lock exits, re-checking on a timer in case a hint was
//! missed; cancellation from another thread; timeouts.
//!
//! Notifications are hints only. Correctness never depends on them: every
//! wake-up leads to a full check, and a wait never sleeps longer than
//! [`RECHECK`] with inotify (or the backoff step without it).

use crate::decide::Role;
use crate::error::{Error, Result};
use crate::protocol::{Contender, Step};
use crate::report;
use crate::scan::{self, Seen};
use crate::shared::Shared;
use crate::wake::{self, ExitWatch, Notifier, Wake, Watch};
use crate::LockGuard;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Longest sleep between checks when folder events are being watched: a
/// missed event costs at most this much latency.
pub const RECHECK: Duration = Duration::from_millis(100);
/// Bounds of the jittered exponential backoff used when events are not
/// available (the folder cannot be watched).
const BACKOFF_MIN: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_millis(50);
/// At most this many rival processes are watched for exit at once.
const MAX_WATCHED: usize = 16;

/// Cancels a blocking wait from another thread (or a signal handler thread, or
/// an async runtime). Cloning gives another handle to the same token; once
/// cancelled it stays cancelled.
///
/// ```
/// # fn main() -> Result<(), lockfolder::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// let folder = lockfolder::LockFolder::new(dir.path())?;
/// let _held = folder.lock()?;
/// let cancel = lockfolder::CancelToken::new();
/// let c = cancel.clone();
/// std::thread::spawn(move || c.cancel());
/// let err = folder.lock_with(None, Some(&cancel)).unwrap_err();
/// assert!(matches!(err, lockfolder::Error::Cancelled { .. }));
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notifier: OnceLock<Option<Notifier>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every wait using this token, now and later.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        if let Some(n) = self.notifier() {
            n.notify();
        }
    }

    /// Whether [`CancelToken::cancel`] has been called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    fn notifier(&self) -> Option<&Notifier> {
        self.inner
            .notifier
            .get_or_init(|| Notifier::new().ok())
            .as_ref()
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // Hand the inotify instance back for the next waiter.
        if let Some(w) = self.watch.take() {
            self.contender.shared.return_watch(w);
        }
    }
}

/// Jittered exponential backoff, for when the folder cannot be watched.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn step(&mut self) -> Duration {
        let mut r = [0u8; 2];
        crate::liveness::random_bytes(&mut r);
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        // Between half and all of the step, so colliding waiters spread out.
        let jitter = u16::from_le_bytes(r) as u32;
        base / 2 + base / 2 * jitter / u32::from(u16::MAX)
    }
}

/// A contender waiting for the lock, resumable: [`Waiter::wait`] can be called
/// again after it returns `Ok(None)` without losing its place in the queue.
/// Dropping it withdraws its bid, if it has one out.
///
/// Front ends that must stay responsive (Python's Ctrl-C, an async runtime)
/// wait in slices with it.
pub struct Waiter {
    contender: Contender,
    watch: Option<Watch>,
    watch_failed: bool,
    holders: HashMap<Vec<u8>, Option<ExitWatch>>,
    backoff: Backoff,
}

impl Waiter {
    pub(crate) fn new(shared: Arc<Shared>) -> Waiter {
        Waiter {
            contender: Contender::new(shared, true),
            watch: None,
            watch_failed: false,
            holders: HashMap::new(),
            backoff: Backoff { next: BACKOFF_MIN },
        }
    }

    /// Waits until the lock is ours (`Ok(Some(guard))`), `until` passes
    /// (`Ok(None)`; the waiter keeps its place), or `cancel` fires
    /// (`Err(Error::Cancelled)`; the waiter's bid is withdrawn).
    ///
    /// # Errors
    ///
    /// Filesystem errors from the checks, [`Error::Cancelled`].
    pub fn wait(
        &mut self,
        until: Option<Instant>,
        cancel: Option<&CancelToken>,
    ) -> Result<Option<LockGuard>> {
        loop {
            if cancel.is_some_and(CancelToken::is_cancelled) {
                self.contender.abandon()?;
                return Err(Error::Cancelled {
                    path: self.contender.shared.folder.path().to_path_buf(),
                });
            }
            match self.contender.attempt(true)? {
                Step::Held(e) => {
                    let g = LockGuard::new(self.contender.shared.clone(), e);
                    // Stalled between the deciding listing and here for longer
                    // than the lease's validity: give it back and go on.
                    if !g.lost() {
                        return Ok(Some(g));
                    }
                    drop(g);
                }
                Step::Busy | Step::Wait => {}
            }
            if self.watch.is_none() && !self.watch_failed {
                let watch = self.contender.shared.borrow_watch();
                match watch {
                    // Check again now that events are armed: a change between
                    // the last check and the watch would otherwise be missed.
                    Ok(w) => {
                        self.watch = Some(w);
                        continue;
                    }
                    Err(_) => self.watch_failed = true,
                }
            }
            let now = Instant::now();
            let mut slice = if self.watch.is_some() {
                RECHECK
            } else {
                self.backoff.step()
            };
            if let Some(until) = until {
                if now >= until {
                    return Ok(None);
                }
                slice = slice.min(until - now);
            }
            let wake_on = wake_on(&self.contender);
            self.refresh_holder_watches(wake_on.processes);
            let holders: Vec<&ExitWatch> = self.holders.values().flatten().collect();
            let woke = wake::sleep(
                self.watch.as_ref(),
                &holders,
                cancel.and_then(CancelToken::notifier),
                slice,
                wake_on.names.as_deref(),
            )
            .map_err(|e| Error::io(crate::Op::Watch, self.contender.shared.folder.path(), e))?;
            match (woke, &wake_on.names) {
                // An exit means some "alive" verdict is now wrong: re-judge
                // everyone. So does the timer of a waiter that waits on
                // any change.
                (Wake::Process, _) | (Wake::Timer, None) => self.contender.cache.forget_verdicts(),
                // The timer is the safety net for missed hints: re-judge
                // what we wait on (the holders, the waiter just ahead), so
                // a death nobody signalled is found by the waiter it holds
                // back. The rest are trusted up to `VERDICT_MAX_AGE`.
                (Wake::Timer, Some(names)) => {
                    let c = &mut self.contender;
                    let targets: Vec<crate::identity::Claim> = c
                        .last
                        .iter()
                        .filter(|(s, r)| {
                            matches!(r, Role::Rival { .. } | Role::Peer { .. })
                                || names.contains(&s.name)
                        })
                        .filter_map(|(s, _)| s.claim())
                        .collect();
                    c.cache.forget_claims(&targets);
                }
                (Wake::Event | Wake::Cancel, _) => {}
            }
        }
    }

    /// Keeps one pidfd per process that can let us move (the holder, or the
    /// older waiters ahead of us), so a death wakes us at once: a killed
    /// process never deletes its bid or marker, so inotify alone would only
    /// notice on the timer.
    fn refresh_holder_watches(&mut self, current: Vec<(Vec<u8>, (u32, u64))>) {
        self.holders
            .retain(|name, _| current.iter().any(|(n, _)| n == name));
        for (name, (pid, start)) in current.into_iter().take(MAX_WATCHED) {
            self.holders
                .entry(name)
                .or_insert_with(|| wake::watch_process(pid, start));
        }
    }

    /// Whether this waiter has a bid in the folder (it is first in line).
    /// Waiters behind it have only a queue marker out.
    pub fn is_queued(&self) -> bool {
        self.contender.has_bid()
    }

    /// A one-line description of what kept us out at the last check: the
    /// holder (or entry that blocks like one), else the waiter we queue
    /// behind.
    pub fn blocker(&self) -> String {
        match self.blockers().first() {
            Some(h) => match h.role {
                crate::Role::Waiter => format!("{}, queued ahead of us", h.describe()),
                _ => h.describe(),
            },
            None => "nothing any more (the lock was changing hands)".to_owned(),
        }
    }

    /// The entries that kept us out at the last check: those that block,
    /// then the waiters queued ahead of us.
    pub fn blockers(&self) -> Vec<crate::Holder> {
        let last = &self.contender.last;
        let seen: Vec<Seen> = last.iter().map(|(s, _)| s.clone()).collect();
        let markers = scan::marker_ages(&seen);
        let shared = &self.contender.shared;
        let of = |keep: fn(&Role) -> bool| {
            last.iter()
                .filter(move |(_, r)| keep(r))
                .map(|(s, _)| report::describe(shared, s, &markers))
        };
        let mut v: Vec<crate::Holder> =
            of(|r| matches!(r, Role::Rival { .. } | Role::Peer { .. })).collect();
        v.extend(of(|r| *r == Role::Ahead));
        v
    }

    /// Gives up: withdraws the bid, reporting a withdrawal that failed.
    ///
    /// # Errors
    ///
    /// [`Error::WithdrawFailed`] if the bid could not be deleted.
    pub fn abandon(mut self) -> Result<()> {
        self.contender.abandon()
    }
}

/// What a waiting contender should be woken by.
struct WakeOn {
    /// Deleting one of these names may let us move; `None`: any change may.
    names: Option<Vec<Vec<u8>>>,
    /// Processes whose exit may let us move: name, PID and start.
    processes: Vec<(Vec<u8>, (u32, u64))>,
}

/// What can let this waiter move: as first in line (bid out), any rival
/// leaving or dying; behind older waiters, only the one just ahead (so a
/// queue of waiters does not wake as a herd on every change, as in a queue
/// lock); behind older bids, those. The re-check timer covers the rest
/// (including a waiter ahead that loses its turn).
fn wake_on(c: &Contender) -> WakeOn {
    let judge = c.shared.judge();
    let watch = |s: &Seen| -> Option<(Vec<u8>, (u32, u64))> {
        Some((s.name.clone(), judge.watch_target(&s.claim()?)?))
    };
    let rivals = || {
        c.last
            .iter()
            .filter(|(_, r)| matches!(r, Role::Rival { .. } | Role::Peer { .. }))
    };
    if c.has_bid() {
        return WakeOn {
            names: Some(rivals().map(|(s, _)| s.name.clone()).collect()),
            processes: rivals().filter_map(|(s, _)| watch(s)).collect(),
        };
    }
    let ahead = c
        .last
        .iter()
        .filter(|(_, r)| *r == Role::Ahead)
        .max_by_key(|(s, _)| s.key());
    if let Some((s, _)) = ahead {
        return WakeOn {
            names: Some(vec![s.name.clone()]),
            processes: watch(s).into_iter().collect(),
        };
    }
    let older: Vec<&Seen> = rivals()
        .filter(|(_, r)| matches!(r, Role::Rival { older: true } | Role::Peer { older: true }))
        .map(|(s, _)| s)
        .collect();
    if c.is_queued() && !older.is_empty() {
        return WakeOn {
            names: Some(older.iter().map(|s| s.name.clone()).collect()),
            processes: rivals().filter_map(|(s, _)| watch(s)).collect(),
        };
    }
    WakeOn {
        names: None,
        processes: rivals().filter_map(|(s, _)| watch(s)).collect(),
    }
}

pub(crate) fn lock_until(
    shared: Arc<Shared>,
    deadline: Option<Instant>,
    cancel: Option<&CancelToken>,
) -> Result<LockGuard> {
    let start = Instant::now();
    let mut w = Waiter::new(shared);
    match w.wait(deadline, cancel)? {
        Some(g) => Ok(g),
        None => {
            let holder = w.blocker();
            let path = w.contender.shared.folder.path().to_path_buf();
            w.abandon()?;
            Err(Error::Timeout {
                path,
                waited: start.elapsed(),
                holder,
            })
        }
    }
}
