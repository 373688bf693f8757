//! The seed's procedure, step by step: 10 check, 20 bid, 30 check, 40
//! withdraw, 50 hold, 60 release. Read it beside
//! `shared/seed/lockfolder-2023-README.md` and `docs/safety.md`.
//!
//! Two things are added to the seed, neither of which can admit a second
//! holder because entering still needs a clean step-30 listing made while our
//! own bid is in place:
//!
//! * stale bids met during a check are removed by their unique name;
//! * a waiting contender may *keep* its bid instead of withdrawing, when every
//!   rival bid it sees carries a younger token (contenders are ordered by when
//!   they started waiting). This removes the seed's livelock and makes the
//!   lock first-come-first-served.

use crate::bid::{classify_name, BidRecord, Mode, NameKind, TempName, Token};
use crate::error::{Error, Op, Result};
use crate::holder::{EntryKind, Holder, State};
use crate::identity::{self, BidOptions, Verdict};
use crate::sys::{self, Content, EntryType, HostContext, ProcessStamp, RawEntry};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything a lock needs that does not change between acquisitions.
pub(crate) struct Shared {
    pub folder: sys::Folder,
    pub label: Option<String>,
    pub command: Option<String>,
    pub owner: Option<u32>,
    pub group: Option<u32>,
    pub mode: Mode,
    pub slots: u32,
    /// inotify instances kept for reuse: closing one costs the kernel an RCU
    /// grace period (milliseconds), which would otherwise be paid by every
    /// contended acquisition. Tagged with the PID that made them: a forked
    /// child must not read events from its parent's instances.
    pub watches: std::sync::Mutex<(u32, Vec<sys::Watch>)>,
}

impl Shared {
    /// An inotify instance on the folder: one from the pool if this process
    /// made it, else a new one. Events it queued while pooled are harmless:
    /// every waiter lists the folder again after arming its watch.
    pub fn borrow_watch(&self) -> std::io::Result<sys::Watch> {
        let pooled = self.watches.lock().ok().and_then(|mut p| {
            let (pid, pool) = &mut *p;
            (*pid == sys::current_pid()).then(|| pool.pop()).flatten()
        });
        match pooled {
            Some(w) => Ok(w),
            None => sys::Watch::new(&self.folder),
        }
    }

    /// Keeps `w` for the next waiter (a few at most), unless we are a forked
    /// child of the process that made the pool.
    pub fn return_watch(&self, w: sys::Watch) {
        if let Ok(mut p) = self.watches.lock() {
            let (pid, pool) = &mut *p;
            if *pid == sys::current_pid() && pool.len() < 8 {
                pool.push(w);
            }
        }
    }

    pub fn path_of(&self, name: &[u8]) -> PathBuf {
        self.folder.path().join(OsStr::from_bytes(name))
    }
}

/// What one contender already knows, by file name.
///
/// * Bid contents: a bid's name is used once and its content is published
///   whole, so what we read under a name stays true.
/// * "Not stale" verdicts: remembering that a process was alive can only err
///   towards "alive", the safe side, so a waiter re-judges only when its timer
///   fires or a watched process exits ([`Cache::forget_verdicts`]), instead of
///   probing `/proc` on every folder event.
#[derive(Default)]
pub(crate) struct Cache {
    records: HashMap<Vec<u8>, BidRecord>,
    verdicts: HashMap<Vec<u8>, Verdict>,
}

impl Cache {
    pub fn forget_verdicts(&mut self) {
        self.verdicts.clear();
    }

    fn remove(&mut self, name: &[u8]) {
        self.records.remove(name);
        self.verdicts.remove(name);
    }

    fn verdict(&mut self, name: &[u8], judge: impl FnOnce() -> Verdict) -> Verdict {
        if let Some(v) = self.verdicts.get(name) {
            return *v;
        }
        let v = judge();
        if !matches!(v, Verdict::Stale(_)) {
            self.verdicts.insert(name.to_vec(), v);
        }
        v
    }
}

/// One inspected entry.
pub(crate) enum Seen {
    Bid {
        token: Token,
        rec: BidRecord,
        verdict: Verdict,
    },
    Temp {
        temp: TempName,
        verdict: Verdict,
    },
    NotABid {
        note: String,
    },
    /// Deleted between the listing and our look at it: not there any more.
    Vanished,
}

impl Seen {
    /// A bid or side file whose owner is provably gone: removable by name.
    fn is_stale(&self) -> bool {
        matches!(
            self,
            Seen::Bid {
                verdict: Verdict::Stale(_),
                ..
            } | Seen::Temp {
                verdict: Verdict::Stale(_),
                ..
            }
        )
    }
}

fn type_note(t: EntryType) -> &'static str {
    match t {
        EntryType::File => "file",
        EntryType::Dir => "directory",
        EntryType::Symlink => "symlink",
        EntryType::Fifo => "FIFO",
        EntryType::Socket => "socket",
        EntryType::Device => "device",
        EntryType::Unknown => "unknown type",
    }
}

/// Looks at one entry without ever following a symlink, opening a FIFO or
/// reading more than a bid's size cap.
pub(crate) fn inspect(
    shared: &Shared,
    raw: &RawEntry,
    ctx: Option<&HostContext>,
    cache: &mut Cache,
) -> Seen {
    match classify_name(&raw.name) {
        NameKind::Temp(temp) | NameKind::Queue(temp) => {
            let verdict = cache.verdict(&raw.name, || identity::judge_temp(&temp, ctx));
            Seen::Temp { temp, verdict }
        }
        NameKind::Other => {
            let kind = match raw.kind {
                EntryType::Unknown => shared.folder.lstat_type(&raw.name),
                k => Ok(k),
            };
            match kind {
                Ok(k) => Seen::NotABid {
                    note: format!("{} that is not named like a bid", type_note(k)),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Seen::Vanished,
                Err(e) => Seen::NotABid {
                    note: format!("unreadable: {e}"),
                },
            }
        }
        NameKind::Bid(token) => {
            let rec = match cache.records.get(&raw.name) {
                Some(rec) => rec.clone(),
                None => match shared.folder.read_entry(&raw.name) {
                    Content::Vanished => return Seen::Vanished,
                    Content::NotRegular(t) => {
                        return Seen::NotABid {
                            note: type_note(t).to_owned(),
                        }
                    }
                    Content::TooLarge(n) => {
                        return Seen::NotABid {
                            note: format!("too large for a bid ({n} bytes)"),
                        }
                    }
                    Content::Unreadable(e) => {
                        return Seen::NotABid {
                            note: format!("unreadable: {e}"),
                        }
                    }
                    Content::Bytes(b) => match BidRecord::parse(&b) {
                        Some(rec) => {
                            cache.records.insert(raw.name.clone(), rec.clone());
                            rec
                        }
                        None if b.is_empty() => {
                            return Seen::NotABid {
                                note: "empty file".to_owned(),
                            }
                        }
                        None => {
                            return Seen::NotABid {
                                note: "content is not a bid".to_owned(),
                            }
                        }
                    },
                },
            };
            let verdict = cache.verdict(&raw.name, || identity::judge(&rec, ctx));
            Seen::Bid {
                token,
                rec,
                verdict,
            }
        }
    }
}

/// A rival seen by a check: anything that keeps us from entering.
#[derive(Clone)]
pub(crate) struct Rival {
    pub name: Vec<u8>,
    /// Set for bids in our own format: only those take part in the age order.
    pub token: Option<Token>,
    pub rec: Option<BidRecord>,
    pub verdict: Verdict,
    pub note: Option<String>,
}

impl Rival {
    /// Whether this rival's bid is older than `mine`: we step back before it
    /// (a holder, or a contender that bid without queueing because it saw no
    /// contention). The order is total, so of any set of bidders the oldest
    /// never steps back: no livelock, no deadlock. Rivals without a token
    /// (1.0.2 bids, junk) never make us step back: 1.0.2 processes withdraw
    /// on seeing any other bid, so waiting for them to withdraw first could
    /// only stall both.
    pub fn precedes(&self, mine: &Token) -> bool {
        self.token.is_some_and(|t| t < *mine)
    }

    pub fn to_holder(&self, shared: &Shared) -> Holder {
        let (kind, state) = match (&self.rec, self.verdict) {
            (Some(r), v) => (
                if r.is_native() {
                    EntryKind::Bid
                } else {
                    EntryKind::LegacyBid
                },
                v.state(),
            ),
            (None, _) => (EntryKind::Other, State::NotABid),
        };
        let mut h = Holder::new(
            OsStr::from_bytes(&self.name).to_owned(),
            shared.path_of(&self.name),
            kind,
            state,
        );
        h.note = self.note.clone();
        if let Some(r) = &self.rec {
            h.fill_from(r, self.token.and_then(|t| t.waiting_since_ms()));
            if h.command.is_none() && state == State::Live {
                h.command = sys::read_cmdline(r.pid);
            }
        }
        h
    }
}

/// What a check found, stale entries already removed.
pub(crate) struct Listing {
    /// Live entries that conflict with our mode (for an exclusive lock: all).
    pub rivals: Vec<Rival>,
    /// Live bids of the same counting semaphore: they conflict only when
    /// there are as many of them as slots.
    pub peers: Vec<Rival>,
    pub own_present: bool,
    /// The other contenders waiting in the queue (live markers).
    pub queue: Vec<Queued>,
}

/// A live queue marker of another waiter.
#[derive(Clone)]
pub(crate) struct Queued {
    pub token: Token,
    pub name: Vec<u8>,
    /// Its process, when it runs on this host, boot and PID namespace.
    pub process: Option<ProcessStamp>,
}

impl Listing {
    /// Whether we may not enter: a conflicting entry, or every slot taken.
    fn blocked(&self, slots: u32) -> bool {
        !self.rivals.is_empty() || self.peers.len() >= slots as usize
    }

    /// Whether we step back (withdraw our bid, or not bid): an older
    /// conflicting bid, or at least `slots` older bids of our semaphore, so
    /// that we cannot be among the first `slots` in the age order.
    fn must_step_back(&self, mine: &Token, slots: u32) -> bool {
        self.rivals.iter().any(|r| r.precedes(mine))
            || self.peers.iter().filter(|r| r.precedes(mine)).count() >= slots as usize
    }

    /// Everything that keeps us out, for "who holds it" and for waking.
    fn blockers(&self, slots: u32) -> Vec<Rival> {
        let mut v = self.rivals.clone();
        if self.peers.len() >= slots as usize {
            v.extend(self.peers.iter().cloned());
        }
        v
    }
}

/// How a live bid relates to ours.
enum Relation {
    Conflicts,
    /// Both shared: no conflict.
    Compatible,
    /// Same semaphore: counts against the slots.
    Peer,
}

fn relation(mine: (Mode, u32), rec: &BidRecord, path: &std::path::Path) -> Result<Relation> {
    let (mode, slots) = mine;
    if !rec.is_native() {
        // 1.0.2 bids know no modes: exclusive.
        return Ok(Relation::Conflicts);
    }
    if slots > 1 || rec.slots() > 1 {
        if rec.slots() != slots {
            return Err(Error::SlotsMismatch {
                path: path.to_path_buf(),
                ours: slots,
                theirs: rec.slots(),
            });
        }
        return Ok(Relation::Peer);
    }
    if mode == Mode::Shared && rec.mode() == Mode::Shared {
        Ok(Relation::Compatible)
    } else {
        Ok(Relation::Conflicts)
    }
}

/// Steps 10 and 30: list the folder; remove what is provably stale (by its
/// own name); everything else but our own bid, temporaries and queue markers
/// is a rival.
fn check(
    shared: &Shared,
    own: Option<&str>,
    own_marker: Option<&str>,
    cache: &mut Cache,
) -> Result<Listing> {
    let ctx = sys::host_context().ok();
    let mut listing = Listing {
        rivals: Vec::new(),
        peers: Vec::new(),
        own_present: false,
        queue: Vec::new(),
    };
    // Step 30 (`own` set) is the listing that decides: it also makes sure
    // the path still names the folder we hold open.
    for raw in shared.folder.list(own.is_some())? {
        if own.is_some_and(|o| o.as_bytes() == raw.name.as_slice()) {
            listing.own_present = true;
            continue;
        }
        if own_marker.is_some_and(|o| o.as_bytes() == raw.name.as_slice()) {
            continue;
        }
        match inspect(shared, &raw, ctx, cache) {
            Seen::Vanished => {}
            Seen::Temp { verdict, temp } => {
                if let Verdict::Stale(_) = verdict {
                    remove_stale(shared, &raw.name, cache)?;
                } else if temp.queue {
                    let process = (verdict == Verdict::Live).then_some(ProcessStamp {
                        pid: temp.pid,
                        start_ticks: temp.start_ticks,
                    });
                    listing.queue.push(Queued {
                        token: temp.token,
                        name: raw.name,
                        process,
                    });
                }
            }
            Seen::Bid {
                token,
                rec,
                verdict,
            } => {
                if let Verdict::Stale(_) = verdict {
                    remove_stale(shared, &raw.name, cache)?;
                    continue;
                }
                let relation = relation(
                    (shared.mode, shared.slots),
                    &rec,
                    &shared.path_of(&raw.name),
                )?;
                let rival = Rival {
                    name: raw.name,
                    token: rec.is_native().then_some(token),
                    rec: Some(rec),
                    verdict,
                    note: None,
                };
                match relation {
                    Relation::Conflicts => listing.rivals.push(rival),
                    Relation::Peer => listing.peers.push(rival),
                    Relation::Compatible => {}
                }
            }
            Seen::NotABid { note } => listing.rivals.push(Rival {
                name: raw.name,
                token: None,
                rec: None,
                verdict: Verdict::Live,
                note: Some(note),
            }),
        }
    }
    Ok(listing)
}

/// Removes a stale bid or temporary by its unique name. Already gone is fine:
/// someone else removed it first.
fn remove_stale(shared: &Shared, name: &[u8], cache: &mut Cache) -> Result<bool> {
    cache.remove(name);
    shared
        .folder
        .remove(name)
        .map_err(|e| Error::io(Op::Remove, shared.path_of(name), e))
}

pub(crate) fn now_unix() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Step 20: write the bid under a temporary name, then move it into place
/// without replacing anything, so no reader ever sees it half-written.
fn bid(shared: &Shared, token: &mut Token) -> Result<String> {
    let path = shared.folder.path();
    let ctx = sys::host_context().map_err(|e| Error::io(Op::Identity, path, e))?;
    let me = sys::current_process().map_err(|e| Error::io(Op::Identity, path, e))?;
    let owner = match shared.owner {
        Some(pid) => sys::process_stamp(pid).map_err(|e| Error::io(Op::Identity, path, e))?,
        None => me,
    };
    let opts = BidOptions {
        pgid: shared.group,
        mode: shared.mode,
        slots: shared.slots,
        label: shared.label.as_deref(),
        command: shared.command.as_deref(),
    };
    let content = identity::bid_record(owner, ctx, now_unix().as_millis() as u64, &opts).to_bytes();
    // A clash of 62 random bits is not expected; if it happens, draw again.
    let mut attempts = 0;
    loop {
        let temp = side_name(*token, me, ctx, false);
        let name = token.bid_name();
        shared.folder.write_temp(&temp, &content)?;
        match shared.folder.publish(&temp, &name) {
            Ok(()) => return Ok(name),
            Err(e) => {
                let _ = shared.folder.remove(temp.as_bytes());
                attempts += 1;
                if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 3 {
                    *token = token.renew();
                    continue;
                }
                return Err(e);
            }
        }
    }
}

fn side_name(token: Token, me: ProcessStamp, ctx: &HostContext, queue: bool) -> String {
    TempName {
        token,
        pid: me.pid,
        start_ticks: me.start_ticks,
        pid_ns: ctx.pid_ns,
        boot_id: ctx.boot_id_hex(),
        queue,
    }
    .file_name()
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

/// What one pass through the procedure decided.
pub(crate) enum Step {
    /// Step 50: the lock is ours; the bid with this name is the lock.
    Held(String),
    /// A live rival is there and we are not waiting.
    Busy,
    /// A live rival is there; wait for a change, then try again.
    Wait,
}

/// A contender for the lock: its age token and, while it waits, its queue
/// marker and (when it is first in line) its bid.
pub(crate) struct Contender {
    pub shared: Arc<Shared>,
    /// When this contender started waiting, as a token. Every bid it
    /// publishes keeps this age and gets fresh random bits.
    age: Token,
    token: Token,
    bid: Option<String>,
    marker: Option<String>,
    pub cache: Cache,
    /// The rivals of the last check, for "who holds it" and for waking when
    /// they exit.
    pub rivals: Vec<Rival>,
    /// The older waiters we queue behind, as of the last check.
    older: Vec<Queued>,
    published_once: bool,
}

/// What a waiting contender should be woken by.
pub(crate) struct WakeOn {
    /// Deleting one of these names may let us move; `None`: any change may.
    pub names: Option<Vec<Vec<u8>>>,
    /// Processes whose exit may let us move (holders, older waiters).
    pub processes: Vec<(Vec<u8>, ProcessStamp)>,
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
            rivals: Vec::new(),
            older: Vec::new(),
            published_once: false,
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
        let path = self.shared.folder.path();
        let ctx = sys::host_context().map_err(|e| Error::io(Op::Identity, path, e))?;
        let me = sys::current_process().map_err(|e| Error::io(Op::Identity, path, e))?;
        let name = side_name(self.age, me, ctx, true);
        self.shared.folder.write_temp(&name, b"")?;
        self.marker = Some(name);
        Ok(())
    }

    fn leave_queue(&mut self) -> Result<()> {
        remove_own(&self.shared, &mut self.marker)
    }

    /// One pass: steps 10-20-30 and the decision 40 or 50. With `waiting`
    /// false this is exactly the seed's single attempt.
    pub fn attempt(&mut self, waiting: bool) -> Result<Step> {
        let wait_or_busy = if waiting { Step::Wait } else { Step::Busy };
        let slots = self.shared.slots;
        if self.bid.is_none() {
            // Step 10. A courtesy: it keeps us from bidding into a held lock
            // (single attempts) and, while waiting, from bidding ahead of an
            // older waiter.
            let listing = check(&self.shared, None, self.marker.as_deref(), &mut self.cache)?;
            let blocked = listing.blocked(slots);
            let contended = blocked || !listing.queue.is_empty();
            self.rivals = listing.blockers(slots);
            self.older = listing
                .queue
                .iter()
                .filter(|q| q.token.age() < self.age.age())
                .cloned()
                .collect();
            if contended {
                if !waiting && blocked {
                    return Ok(Step::Busy);
                }
                if waiting {
                    self.join_queue()?;
                    // Defer to an older waiter in the queue, or to an older
                    // bid that we would step back before anyway.
                    if !self.older.is_empty() || listing.must_step_back(&self.age, slots) {
                        return Ok(Step::Wait);
                    }
                }
            }
            // Step 20.
            if self.published_once {
                self.token = self.age.renew();
            }
            let name = bid(&self.shared, &mut self.token)?;
            self.published_once = true;
            self.bid = Some(name);
        }
        let own = self.bid.clone().unwrap_or_default();
        // Step 30: the listing that decides. It begins after our bid is
        // published, so it sees every bid published before it.
        let listing = check(
            &self.shared,
            Some(&own),
            self.marker.as_deref(),
            &mut self.cache,
        )?;
        if !listing.own_present {
            // Someone deleted our bid (by hand, or the folder was replaced).
            // Never enter without it; bid again on the next pass.
            self.bid = None;
            self.rivals = listing.blockers(slots);
            return Ok(wait_or_busy);
        }
        // Our own bid takes a slot: we enter if the others leave one free.
        if !listing.blocked(slots) {
            // Step 50. Our place in the queue is no longer needed; if the
            // marker cannot be removed, give the lock back rather than leave
            // a marker that would hold younger waiters back.
            self.rivals.clear();
            if let Err(e) = self.leave_queue() {
                self.withdraw()?;
                return Err(e);
            }
            return Ok(Step::Held(self.bid.take().unwrap_or(own)));
        }
        let yield_to_older = listing.must_step_back(&self.token, slots);
        self.rivals = listing.blockers(slots);
        if !waiting || yield_to_older {
            // Step 40.
            self.withdraw()?;
            return Ok(wait_or_busy);
        }
        // First in line: keep the bid and wait for the holder to leave (or be
        // proven stale) and for younger bidders to step back.
        Ok(Step::Wait)
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

    /// What can let this waiter move: as first in line (bid out), any rival
    /// leaving or dying; behind older waiters, only those leaving or dying
    /// (so a queue of waiters does not wake as a herd on every change).
    pub fn wake_on(&self) -> WakeOn {
        let rival_processes = || -> Vec<(Vec<u8>, ProcessStamp)> {
            let Ok(ctx) = sys::host_context() else {
                return Vec::new();
            };
            self.rivals
                .iter()
                .filter(|r| r.verdict == Verdict::Live)
                .filter_map(|r| Some((r.name.clone(), identity::watchable(r.rec.as_ref()?, ctx)?)))
                .collect()
        };
        if self.bid.is_some() {
            return WakeOn {
                names: Some(self.rivals.iter().map(|r| r.name.clone()).collect()),
                processes: rival_processes(),
            };
        }
        // Behind older waiters: wait for the one just ahead of us only (the
        // youngest older marker), as in a queue lock, so a release does not
        // wake the whole queue.
        if let Some(ahead) = self.older.iter().max_by_key(|q| q.token.age()) {
            return WakeOn {
                names: Some(vec![ahead.name.clone()]),
                processes: ahead
                    .process
                    .map(|p| (ahead.name.clone(), p))
                    .into_iter()
                    .collect(),
            };
        }
        if self.marker.is_some() {
            // First in the queue, stepping back before an older bid: wait for
            // that bid to go.
            let older: Vec<Vec<u8>> = self
                .rivals
                .iter()
                .filter(|r| r.precedes(&self.age))
                .map(|r| r.name.clone())
                .collect();
            // (For a semaphore, `rivals` holds the peers too when all slots
            // are taken, so any older one of them counts here.)
            if !older.is_empty() {
                return WakeOn {
                    names: Some(older),
                    processes: rival_processes(),
                };
            }
        }
        WakeOn {
            names: None,
            processes: rival_processes(),
        }
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

/// Every entry of the folder, judged, nothing removed.
pub(crate) fn holders(shared: &Shared) -> Result<Vec<Holder>> {
    let ctx = sys::host_context().ok();
    let mut cache = Cache::default();
    let mut out = Vec::new();
    for raw in shared.folder.list(true)? {
        if let Some(h) = describe(shared, &raw, inspect(shared, &raw, ctx, &mut cache)) {
            out.push(h);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes stale bids and temporaries, and says which.
pub(crate) fn clean(shared: &Shared) -> Result<Vec<Holder>> {
    let ctx = sys::host_context().ok();
    let mut cache = Cache::default();
    let mut removed = Vec::new();
    for raw in shared.folder.list(true)? {
        let seen = inspect(shared, &raw, ctx, &mut cache);
        let stale = seen.is_stale();
        if stale && remove_stale(shared, &raw.name, &mut cache)? {
            removed.extend(describe(shared, &raw, seen));
        }
    }
    Ok(removed)
}

/// Judges one entry by name and removes it if it is a stale bid (1.0.2's
/// `challenge`). `Ok(true)` if it was stale and is now gone.
pub(crate) fn challenge(shared: &Shared, name: &[u8]) -> Result<bool> {
    let ctx = sys::host_context().ok();
    let mut cache = Cache::default();
    let kind = match shared.folder.lstat_type(name) {
        Ok(k) => k,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(Op::ReadEntry, shared.path_of(name), e)),
    };
    let raw = RawEntry {
        name: name.to_vec(),
        kind,
    };
    if inspect(shared, &raw, ctx, &mut cache).is_stale() {
        remove_stale(shared, name, &mut cache)
    } else {
        Ok(false)
    }
}

fn describe(shared: &Shared, raw: &RawEntry, seen: Seen) -> Option<Holder> {
    let name = OsStr::from_bytes(&raw.name).to_owned();
    let path = shared.path_of(&raw.name);
    Some(match seen {
        Seen::Vanished => return None,
        Seen::Bid {
            token,
            rec,
            verdict,
        } => Rival {
            name: raw.name.clone(),
            token: Some(token),
            rec: Some(rec),
            verdict,
            note: None,
        }
        .to_holder(shared),
        Seen::Temp { temp, verdict } => {
            let kind = if temp.queue {
                EntryKind::QueueMarker
            } else {
                EntryKind::Temporary
            };
            let mut h = Holder::new(name, path, kind, verdict.state());
            h.pid = Some(temp.pid);
            h.waiting_since = temp
                .token
                .waiting_since_ms()
                .map(|ms| UNIX_EPOCH + std::time::Duration::from_millis(ms));
            h.note = Some(
                if temp.queue {
                    "waiting for the lock"
                } else {
                    "bid being written"
                }
                .to_owned(),
            );
            h
        }
        Seen::NotABid { note } => {
            let mut h = Holder::new(name, path, EntryKind::Other, State::NotABid);
            h.note = Some(note);
            h
        }
    })
}
