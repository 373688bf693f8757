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

use crate::decide::{self, Me, Next10, Next30, Role, Rules, Tally};
use crate::error::{Error, Op, Result};
use crate::liveness;
use crate::names::{fence_name, SideName, Token};
use crate::publish::{bid, remove_own, remove_stale};
use crate::scan::{self, Cache, Seen, ServerClock, What};
use crate::shared::{now_unix, Shared};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// What a contender that enters holds.
pub(crate) struct Entered {
    /// The bid that is the lock.
    pub name: String,
    /// Its fencing token, if the folder uses them.
    pub fence: Option<u64>,
    /// When the bid was published (by the local monotonic clock): a lease
    /// runs from here.
    pub published: Instant,
}

/// What one pass through the procedure decided.
pub(crate) enum Step {
    /// Step 50: the lock is ours.
    Held(Entered),
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
    /// When our current bid was published.
    published: Option<Instant>,
    /// The largest fencing token seen by the last check.
    max_fence: u64,
}

impl Contender {
    /// `waiting`: a contender that will wait takes over the verdicts the
    /// last acquisition left (a writer that died since is then noticed on
    /// the waiter's watch or timer, as any missed hint); a single attempt
    /// judges everyone afresh, so it never answers "busy" for a holder that
    /// is already provably gone.
    pub fn new(shared: Arc<Shared>, waiting: bool) -> Contender {
        let age = Token::new(now_unix().as_nanos());
        let mut cache = Cache::default();
        if waiting {
            if let Ok(mut v) = shared.verdicts.lock() {
                cache.adopt(std::mem::take(&mut *v));
            }
        }
        Contender {
            shared,
            age,
            token: age,
            bid: None,
            marker: None,
            cache,
            last: Vec::new(),
            published_once: false,
            free_since: HashMap::new(),
            kept_since: None,
            published: None,
            max_fence: 0,
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
        // The server's clock, for leases of owners nobody here can judge:
        // from our bid just published, or our queue marker, touched anew.
        let mut clock = match (&self.bid, &self.marker) {
            (Some(b), _) => ServerClock::from_own(b, false),
            (None, Some(m)) => ServerClock::from_own(m, true),
            (None, None) => ServerClock::none(),
        };
        let own: Vec<&[u8]> = [self.bid.as_deref(), self.marker.as_deref()]
            .into_iter()
            .flatten()
            .map(str::as_bytes)
            .collect();
        let (seen, present) = scan::list_but(
            &self.shared.folder,
            deciding,
            &judge,
            &mut self.cache,
            &mut clock,
            &own,
            true,
        )?;
        let own_present = self.bid.is_some() && present.first() == Some(&true);
        self.max_fence = seen
            .iter()
            .filter_map(|s| match s.what {
                What::Fence(n) => Some(n),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let markers = scan::marker_ages(&seen);
        let now = Instant::now();
        let mut roles = Vec::with_capacity(seen.len());
        for s in seen {
            let name = s.name.as_slice();
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
            // Nothing reads an ignored entry again but the hand-over clocks,
            // which need every marker.
            if role == Role::Ignore && !s.is_marker() {
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
        self.shared.check_filesystem()?;
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
            // A held lock whose holder nobody here can judge, but which has a
            // lease, may have lapsed: only a listing made with our own bid
            // out (which gives us the server's clock) can tell, so a single
            // attempt bids anyway and lets step 30 decide.
            let lapsed = !waiting && self.last.iter().any(|(s, _)| s.has_unjudged_lease());
            match d.next {
                Next10::Busy if !lapsed => return Ok(Step::Busy),
                Next10::Busy | Next10::Bid => {}
                Next10::Defer => return Ok(Step::Wait),
            }
            // Step 20.
            if self.published_once {
                self.token = self.age.renew();
            }
            // A lease counts from *before* the bid's content is written: its
            // stamp (the file's modification time) can only be later, so a
            // pause in between never makes us count on more than others
            // grant.
            let before = Instant::now();
            let name = bid(&self.shared, &mut self.token)?;
            self.published_once = true;
            self.published = Some(before);
            self.bid = Some(name);
        }
        if !self.keep_lease_fresh()? {
            return Ok(wait_or_busy);
        }
        // Step 30: the listing that decides. It begins after our bid is
        // published, so it sees every bid published before it.
        let me = self.me(waiting);
        let (own_present, tally) = self.check(&me, true)?;
        match decide::after_bid(&me, own_present, &tally, &Rules::REAL) {
            Next30::Enter if self.lease_lapsed() => {
                // Stalled past our own lease's validity since the last stamp:
                // another host may already count the bid expired. Never enter
                // on it; withdraw and bid anew (a new name, a new stamp).
                self.withdraw()?;
                Ok(wait_or_busy)
            }
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
                let fence = if self.shared.fencing {
                    match self.draw_fence() {
                        Ok(n) => Some(n),
                        Err(e) => {
                            self.withdraw()?;
                            return Err(e);
                        }
                    }
                } else {
                    None
                };
                Ok(Step::Held(Entered {
                    name: self.bid.take().unwrap_or_default(),
                    fence,
                    published: self.published.take().unwrap_or_else(Instant::now),
                }))
            }
            Next30::Keep => {
                // First in line: keep the bid and wait for the rivals to go.
                self.kept_since.get_or_insert_with(Instant::now);
                Ok(Step::Wait)
            }
            Next30::Withdraw => {
                // A waiter keeps its place first (see the rule).
                if decide::join_before_withdraw(&me, &Rules::REAL) {
                    self.join_queue()?;
                }
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

    /// Under a lease, a bid that waits is renewed like a held one, and one
    /// whose validity has passed is withdrawn, never revived: a reader on
    /// another host may have judged it expired on its old stamp and be about
    /// to remove it. `false`: the bid is gone (withdrawn, or removed by
    /// someone), bid again later.
    fn keep_lease_fresh(&mut self) -> Result<bool> {
        let (Some(lease), Some(name), Some(since)) =
            (self.shared.lease, self.bid.clone(), self.published)
        else {
            return Ok(true);
        };
        if self.lease_lapsed() {
            self.withdraw()?;
            return Ok(false);
        }
        if since.elapsed() >= lease / 3 {
            let before = Instant::now();
            match self.shared.folder.touch(name.as_bytes()) {
                // A renewal that lands after the validity ended is no
                // renewal: readers may have judged the old stamp meanwhile.
                Ok(()) => {
                    let until = crate::lease::valid_until(lease, since);
                    if crate::lease::after_renewal(lease, until, before, Instant::now()).is_none() {
                        self.withdraw()?;
                        return Ok(false);
                    }
                    self.published = Some(before);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.bid = None;
                    return Ok(false);
                }
                // Not renewed: the old stamp still counts, checked next time.
                Err(_) => {}
            }
        }
        Ok(true)
    }

    /// Whether our bid's lease has passed the part of it we may count on.
    fn lease_lapsed(&self) -> bool {
        match (self.shared.lease, self.published) {
            (Some(lease), Some(since)) => since.elapsed() >= crate::lease::holder_validity(lease),
            _ => false,
        }
    }

    /// Draws a fencing token larger than every earlier holder's: one more
    /// than the largest fence file the deciding listing showed (that listing
    /// is fresh, and every earlier holder made its fence file while it held
    /// the lock, before it left), created exclusively so two can never draw
    /// the same number; then the older fence files are tidied away.
    fn draw_fence(&mut self) -> Result<u64> {
        let mut n = self.max_fence + 1;
        loop {
            match self.shared.folder.write_temp(&fence_name(n), b"") {
                Ok(()) => break,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists && n < self.max_fence + 64 =>
                {
                    n += 1
                }
                Err(e) => return Err(e),
            }
        }
        for old in self.max_fence.saturating_sub(8)..n.saturating_sub(1) {
            if old > 0 {
                let _ = self.shared.folder.remove(fence_name(old).as_bytes());
            }
        }
        Ok(n)
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
        if let Ok(mut v) = self.shared.verdicts.lock() {
            *v = self.cache.take_verdicts();
        }
    }
}
