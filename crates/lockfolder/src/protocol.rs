//! The seed's procedure, step by step: 10 check, 20 bid, 30 check, 40
//! withdraw, 50 hold, 60 release. Read it beside
//! `shared/seed/lockfolder-2023-README.md` and `docs/safety.md`.
//!
//! What each step *decides* is in `decide.rs` (pure rules, also run by the
//! model checker); what it *sees* comes from `scan.rs`; how it touches the
//! folder is `store/`. Two things are added to the seed, neither of which
//! can admit a second holder, because entering still needs a clean step-30
//! listing made while our own bid is in place:
//!
//! * stale entries met during a check are removed by their unique name;
//! * waiting contenders are ordered by age: a queue marker lets older
//!   waiters bid first, and the oldest bidder may keep its bid while younger
//!   ones withdraw. This removes the seed's livelock and makes the lock
//!   first-come-first-served. A marker whose waiter does not take its turn
//!   within [`HANDOVER`] of the lock being free loses it, so no marker can
//!   stop the queue.

use crate::bid::{BidRecord, Mode, FORMAT_VERSION};
use crate::decide::{self, Me, Next10, Next30, Role, Rules, Tally};
use crate::error::{Error, Op, Result};
use crate::liveness::{self, Judge};
use crate::names::{SideName, Token};
use crate::scan::{self, Cache, Seen};
use crate::store::Folder;
use crate::wake::Watch;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a queued waiter has to take its turn once the lock is free
/// before younger waiters stop deferring to it (a waiter that is stopped,
/// frozen with its container, or of a PID namespace nobody here can judge
/// would otherwise hold the queue for ever). A live, running waiter bids
/// within microseconds of noticing; losing its turn costs it order only.
pub const HANDOVER: Duration = Duration::from_secs(1);
/// How long a waiter first in line may sit on its bid while the lock is
/// held by a younger contender, before it withdraws and waits by its queue
/// marker alone. This bounds how much of its wait a waiter spends with a
/// bid out, which is when being stopped (SIGSTOP, a paused container)
/// would hold everyone else back; `status` reports such a stopped bid.
pub const KEEP_MAX: Duration = Duration::from_millis(500);

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
    /// inotify instances kept for reuse: closing one costs the kernel an RCU
    /// grace period (milliseconds), which would otherwise be paid by every
    /// contended acquisition. Tagged with the PID that made them: a forked
    /// child must not read events from its parent's instances.
    pub watches: Mutex<(u32, Vec<Watch>)>,
}

impl Shared {
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

/// What one pass through the procedure decided.
pub(crate) enum Step {
    /// Step 50: the lock is ours; the bid with this name is the lock.
    Held(String),
    /// The lock is held and we are not waiting.
    Busy,
    /// Not yet: wait for a change, then try again.
    Wait,
}

/// A contender for the lock: its age and, while it waits, its queue marker
/// and (when it is first in line) its bid.
pub(crate) struct Contender {
    pub shared: Arc<Shared>,
    /// When this contender started waiting, as a token. Every bid it
    /// publishes keeps this age and gets fresh random bits.
    age: Token,
    token: Token,
    bid: Option<String>,
    marker: Option<String>,
    pub cache: Cache,
    /// The last listing, with each entry's role, for "who holds it" and for
    /// choosing what to wake on.
    pub last: Vec<(Seen, Role)>,
    published_once: bool,
    /// Hand-over clocks: since when each marker ahead of us has been
    /// waiting with the lock free.
    free_since: HashMap<Vec<u8>, Instant>,
    /// Since when we have kept our bid while the lock stays held.
    kept_since: Option<Instant>,
}

impl Contender {
    pub fn new(shared: Arc<Shared>) -> Contender {
        let age = Token::new(now_unix().as_nanos());
        Contender {
            shared,
            age,
            token: age,
            bid: None,
            marker: None,
            cache: Cache::default(),
            last: Vec::new(),
            published_once: false,
            free_since: HashMap::new(),
            kept_since: None,
        }
    }

    fn me(&self, waiting: bool) -> Me {
        Me {
            age: scan::key_of(&self.age),
            token: scan::key_of(&self.token),
            mode: self.shared.mode,
            slots: self.shared.slots,
            waiting,
            may_keep: self.kept_since.is_none_or(|t| t.elapsed() < KEEP_MAX),
        }
    }

    /// Steps 10 and 30: list the folder, judge every entry, remove what is
    /// provably stale (by its own name), and sum up the rest.
    fn check(&mut self, me: &Me, deciding: bool) -> Result<(bool, Tally)> {
        let judge = self.shared.judge();
        let seen = scan::list(&self.shared.folder, deciding, &judge, &mut self.cache)?;
        let markers = scan::marker_ages(&seen);
        let now = Instant::now();
        let mut own_present = false;
        let mut roles = Vec::with_capacity(seen.len());
        for s in seen {
            let name = s.name.as_slice();
            if self.bid.as_deref().is_some_and(|b| b.as_bytes() == name) {
                own_present = true;
                continue;
            }
            if self.marker.as_deref().is_some_and(|m| m.as_bytes() == name) {
                continue;
            }
            // A marker whose waiter is stopped cannot take its turn at all.
            let expired = s.is_marker()
                && (s.stopped()
                    || self
                        .free_since
                        .get(name)
                        .is_some_and(|t| now.duration_since(*t) >= HANDOVER));
            let role =
                decide::role(me, &s.entry(&markers, expired), &Rules::REAL).map_err(|m| {
                    Error::SlotsMismatch {
                        path: self.shared.path_of(name),
                        ours: self.shared.slots,
                        theirs: m.theirs,
                    }
                })?;
            if role == Role::Remove {
                remove_stale(&self.shared, name, &mut self.cache)?;
                continue;
            }
            roles.push((s, role));
        }
        let tally = Tally::of(roles.iter().map(|(_, r)| *r));
        self.tick_handover(me, &roles, tally.blocked(me, &Rules::REAL), now);
        self.last = roles;
        Ok((own_present, tally))
    }

    /// The hand-over clock of each older marker runs while the lock is free
    /// (nothing but waiters in the folder) and stops while it is held.
    fn tick_handover(&mut self, me: &Me, roles: &[(Seen, Role)], blocked: bool, now: Instant) {
        if blocked {
            self.free_since.clear();
            return;
        }
        let older: Vec<&Vec<u8>> = roles
            .iter()
            .filter(|(s, _)| s.is_marker() && s.key().is_some_and(|k| k < me.age))
            .map(|(s, _)| &s.name)
            .collect();
        self.free_since.retain(|n, _| older.contains(&n));
        for n in older {
            self.free_since.entry(n.clone()).or_insert(now);
        }
    }

    /// One pass: steps 10-20-30 and the decision 40 or 50. With `waiting`
    /// false this is exactly the seed's single attempt.
    pub fn attempt(&mut self, waiting: bool) -> Result<Step> {
        let wait_or_busy = if waiting { Step::Wait } else { Step::Busy };
        if self.bid.is_none() {
            // Step 10: a courtesy. It keeps us from bidding into a held lock
            // and, while waiting, from bidding ahead of an older waiter.
            let me = self.me(waiting);
            let (_, tally) = self.check(&me, false)?;
            if !tally.blocked(&me, &Rules::REAL) {
                self.kept_since = None;
            }
            let d = decide::after_check(&me, &tally, &Rules::REAL);
            if d.join_queue {
                self.join_queue()?;
            }
            match d.next {
                Next10::Busy => return Ok(Step::Busy),
                Next10::Defer => return Ok(Step::Wait),
                Next10::Bid => {}
            }
            // Step 20.
            if self.published_once {
                self.token = self.age.renew();
            }
            let name = bid(&self.shared, &mut self.token)?;
            self.published_once = true;
            self.bid = Some(name);
        }
        // Step 30: the listing that decides. It begins after our bid is
        // published, so it sees every bid published before it.
        let me = self.me(waiting);
        let (own_present, tally) = self.check(&me, true)?;
        match decide::after_bid(&me, own_present, &tally, &Rules::REAL) {
            Next30::Enter => {
                // Step 50. Our place in the queue is no longer needed; if the
                // marker cannot be removed, give the lock back rather than
                // leave a marker that would hold younger waiters back.
                self.last.clear();
                self.kept_since = None;
                if let Err(e) = self.leave_queue() {
                    self.withdraw()?;
                    return Err(e);
                }
                let name = self.bid.take().unwrap_or_default();
                Ok(Step::Held(name))
            }
            Next30::Keep => {
                // First in line: keep the bid and wait for the rivals to go.
                self.kept_since.get_or_insert_with(Instant::now);
                Ok(Step::Wait)
            }
            Next30::Withdraw => {
                // Step 40.
                self.withdraw()?;
                Ok(wait_or_busy)
            }
            Next30::Lost => {
                // Someone deleted our bid (by hand, or the folder was
                // replaced). Never enter without it; bid again later.
                self.bid = None;
                Ok(wait_or_busy)
            }
        }
    }

    /// Publishes our queue marker (an empty `.wait` file named with our age
    /// and identity), so younger waiters let us bid first. It is a hint for
    /// fairness only: it is never a rival, and losing it costs order, not
    /// safety.
    fn join_queue(&mut self) -> Result<()> {
        if self.marker.is_some() {
            return Ok(());
        }
        let me = liveness::current()
            .map_err(|e| Error::io(Op::Identity, self.shared.folder.path(), e))?;
        let name = SideName {
            token: self.age,
            pid: me.pid,
            owner: me.key(),
            queue: true,
        }
        .file_name();
        self.shared.folder.write_temp(&name, b"")?;
        self.marker = Some(name);
        Ok(())
    }

    fn leave_queue(&mut self) -> Result<()> {
        remove_own(&self.shared, &mut self.marker)
    }

    /// Step 40: delete our bid, if we have one out.
    pub fn withdraw(&mut self) -> Result<()> {
        remove_own(&self.shared, &mut self.bid)
    }

    /// Gives up: withdraws the bid and leaves the queue.
    pub fn abandon(&mut self) -> Result<()> {
        let bid = self.withdraw();
        let marker = self.leave_queue();
        bid.and(marker)
    }

    /// Whether we have a bid out (first in line).
    pub fn has_bid(&self) -> bool {
        self.bid.is_some()
    }

    /// Whether we are in the queue.
    pub fn is_queued(&self) -> bool {
        self.marker.is_some()
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        // A contender that gives up (timeout, cancel, error, panic) leaves no
        // bid or marker behind. If even this fails they are stale once we
        // exit.
        let _ = self.abandon();
    }
}

/// Removes a provably stale entry by its name. `Ok(false)` if it was already
/// gone.
pub(crate) fn remove_stale(shared: &Shared, name: &[u8], cache: &mut Cache) -> Result<bool> {
    cache.forget(name);
    shared
        .folder
        .remove(name)
        .map_err(|e| Error::io(Op::Remove, shared.path_of(name), e))
}

/// Step 20: write the bid under a temporary name, then move it into place
/// without replacing anything, so no reader ever sees it half-written.
fn bid(shared: &Shared, token: &mut Token) -> Result<String> {
    let path = shared.folder.path();
    let ident = |e| Error::io(Op::Identity, path, e);
    let me = liveness::current().map_err(ident)?;
    let owner = match shared.owner {
        Some(pid) => liveness::of_pid(pid).map_err(ident)?,
        None => me.clone(),
    };
    let content = BidRecord {
        pid: owner.pid,
        created: owner.created,
        version: Some(FORMAT_VERSION),
        host: Some(owner.host.clone()),
        owner: Some(owner.owner.clone()),
        unreadable_owner: None,
        group: shared.group,
        published_ms: Some(now_unix().as_millis() as u64),
        mode: (shared.mode != Mode::Exclusive).then_some(shared.mode),
        slots: (shared.slots != 1).then_some(shared.slots),
        label: shared.label.clone(),
        command: shared.command.clone(),
    }
    .to_bytes();
    // A clash of 62 random bits is not expected; if it happens, draw again.
    // A temporary removed under us (as stale, by a reader that could not
    // see us) is written again.
    let mut attempts = 0;
    loop {
        let temp = SideName {
            token: *token,
            pid: me.pid,
            owner: me.key(),
            queue: false,
        }
        .file_name();
        let name = token.bid_name();
        shared.folder.write_temp(&temp, &content)?;
        match shared.folder.publish(&temp, &name) {
            Ok(()) => return Ok(name),
            Err(e) => {
                let _ = shared.folder.remove(temp.as_bytes());
                attempts += 1;
                let retry = matches!(
                    e.kind(),
                    std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotFound
                );
                if retry && attempts < 3 {
                    *token = token.renew();
                    continue;
                }
                return Err(e);
            }
        }
    }
}

/// Deletes one of our own entries (bid or marker), forgetting it once gone.
/// A failure is reported with the path, and the name is kept so a later
/// attempt (or `Drop`) can retry.
fn remove_own(shared: &Shared, slot: &mut Option<String>) -> Result<()> {
    if let Some(name) = slot.as_deref() {
        shared
            .folder
            .remove(name.as_bytes())
            .map_err(|source| Error::WithdrawFailed {
                path: shared.path_of(name.as_bytes()),
                source,
            })?;
        *slot = None;
    }
    Ok(())
}

/// Steps 40 and 60: delete our bid by its name. `Ok(false)` if it had vanished.
pub(crate) fn delete_bid(shared: &Shared, name: &str) -> std::io::Result<bool> {
    shared.folder.remove(name.as_bytes())
}
