//! The protocol as a state machine: the folder, the contenders and every
//! atomic step one of them can take. `docs/model.md` maps each step to
//! `crates/lockfolder/src/protocol.rs`.
//!
//! A state is small and canonical so that it can be hashed:
//!
//! * the folder holds at most one entry per *incarnation* (a process: a slot
//!   and a restart count). An incarnation has at most one temporary or bid at
//!   a time, so the pair names the entry uniquely, like the UUID in a real bid
//!   name. When an entry is deleted, every pending reference to it is dropped
//!   too, so the pair can be reused later without aliasing a unique name.
//! * tokens are *ranks* among the ages in use (0 = oldest), renumbered after
//!   every step, so unbounded retries and new sessions stay finite.

use std::fmt;

/// Contender slots in one configuration, at most.
pub const MAX_PROCS: usize = 3;
/// Incarnations per slot (so at most two restarts of one slot).
pub const MAX_INC: usize = 3;
/// Distinct entry identities: one per incarnation.
pub const NIDS: usize = MAX_PROCS * MAX_INC;
/// "No value" for ranks and removal targets.
pub const NONE: u8 = u8::MAX;
/// Entry ids at and above this are queue markers (`MARK + incarnation id`).
pub const MARK: usize = 16;
/// Name keys at and above this are 1.0.2 bids (`LEGACY_KEY + id`).
const LEGACY_KEY: u8 = 200;

/// Default cap on the states of one search (about 1.5 GB with the graph,
/// see `docs/model.md`).
pub const DEFAULT_MAX_STATES: usize = 6_000_000;

/// Which code a contender runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// `Waiter::wait` of this crate: age tokens, keep-or-withdraw tie-break.
    Ours,
    /// lockfolder 1.0.2: bids without a token, withdraws on seeing any other
    /// bid, retries from step 10.
    Legacy,
}

/// The kind of lock a contender of ours asks for (`Mode` in the crate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// Conflicts with every other bid.
    Exclusive,
    /// Conflicts only with exclusive bids (and 1.0.2 bids).
    Shared,
}

/// How a live rival bid relates to ours (`relation` in the crate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Relation {
    Conflicts,
    Compatible,
    Peer,
}

/// What a reader does with a bid whose name is there but whose content is not
/// yet (mutant b only; real bids appear whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// Judges it junk and deletes it by its name.
    Delete,
    /// Ignores it.
    Skip,
    /// Treats it as a live rival that can never be judged (what the crate does
    /// with a bid it cannot parse).
    Honour,
}

/// A deliberate fault in the protocol, which the checker must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutant {
    /// The protocol as implemented.
    None,
    /// (a) The liveness verdict may call a live bid's owner dead.
    LiveJudgedDead,
    /// (b) A bid's name appears before its content (no temporary + rename).
    NameBeforeContent(Reader),
    /// (c) A listing may return the contender's previous listing (a cached
    /// directory, as NFS clients keep), updated only with its own bid.
    StaleSnapshot,
    /// (d) Bids are named per contender (a fixed name reused by every bid and
    /// incarnation of that contender, like a PID file), published by a rename
    /// that replaces, and removed by that name.
    FixedName,
    /// (e) The lowest token enters at once even though it saw a rival.
    LowestEntersAtOnce,
    /// (f) The rule of commit 873a589: an older bid makes us step back only if
    /// its owner's queue marker is listed too (a bid without one was taken for
    /// a holder's). Safe, but two waiters can keep their bids forever.
    MarkerOnlyPrecedence,
    /// The seed's tie-break: whoever sees a rival withdraws (no token order).
    /// Not a safety fault; used to show the livelock detector works.
    SymmetricWithdraw,
    /// (g) A shared contender treats every bid as compatible (ignores
    /// exclusive and 1.0.2 bids).
    SharedIgnoresExclusive,
    /// (h) A semaphore contender is blocked only by more than N peers
    /// instead of N or more (it forgets that its own bid takes a slot).
    SemaphoreForgetsOwnBid,
}

/// One configuration to check.
#[derive(Clone, Debug)]
pub struct Config {
    /// The contenders, at most [`MAX_PROCS`].
    pub flavors: Vec<Flavor>,
    /// Each contender's mode (1.0.2 contenders: ignored, they know none).
    pub modes: Vec<Mode>,
    /// Slots of the folder: 1 for a lock (exclusive or shared), N > 1 for a
    /// counting semaphore, whose bids are all peers whatever their mode.
    /// Every contender of the folder agrees on it (a mismatch is refused
    /// with an error before any bid, which is not modelled).
    pub slots: u8,
    /// Crashes allowed in total; each crashed slot may restart as a new
    /// incarnation (new PID).
    pub crashes: u8,
    /// The fault under test.
    pub mutant: Mutant,
    /// If true, a new waiter's age may take any place in the order (wall
    /// clocks can step backwards); if false it is always the youngest.
    pub any_age_order: bool,
    /// If true, a waiter may give up between attempts (timeout, cancel), which
    /// withdraws its bid.
    pub give_up: bool,
    /// If true, a listing reads entries in name order with a cursor: by
    /// token (age), then marker, temporary, bid; 1.0.2 bids last. An entry
    /// created behind the cursor is missed. If false, in any order, each
    /// listing choosing its own.
    pub name_order: bool,
    /// If true, states that differ only by a renaming of interchangeable
    /// contenders (same flavor) are one state: the search visits one
    /// representative of each class (safety and no-wedge only).
    pub symmetry: bool,
    /// The search stops with a panic beyond this many states, rather than
    /// exhaust the machine's memory.
    pub max_states: usize,
}

impl Config {
    /// `n` contenders of ours, with `crashes` crashes, the real protocol.
    pub fn ours(n: usize, crashes: u8) -> Config {
        Config {
            flavors: vec![Flavor::Ours; n],
            modes: vec![Mode::Exclusive; n],
            slots: 1,
            crashes,
            mutant: Mutant::None,
            any_age_order: false,
            give_up: true,
            name_order: false,
            symmetry: false,
            max_states: DEFAULT_MAX_STATES,
        }
    }

    /// What makes contender `p` distinguishable from the others.
    pub fn class(&self, p: usize) -> (Flavor, Mode) {
        (self.flavors[p], self.modes[p])
    }

    /// How a live bid of contender `them` relates to contender `me` of ours.
    fn relation(&self, me: usize, them: usize) -> Relation {
        if self.mutant == Mutant::SharedIgnoresExclusive && self.modes[me] == Mode::Shared {
            return Relation::Compatible;
        }
        if self.flavors[them] == Flavor::Legacy {
            return Relation::Conflicts;
        }
        if self.slots > 1 {
            return Relation::Peer;
        }
        if self.modes[me] == Mode::Shared && self.modes[them] == Mode::Shared {
            Relation::Compatible
        } else {
            Relation::Conflicts
        }
    }

    /// `Listing::blocked`: a conflicting rival, or every slot taken.
    fn blocked(&self, sum: &Summary) -> bool {
        let peers = usize::from(sum.peers);
        let full = if self.mutant == Mutant::SemaphoreForgetsOwnBid {
            peers > usize::from(self.slots)
        } else {
            peers >= usize::from(self.slots)
        };
        sum.rival || (self.slots > 1 && full)
    }

    /// `Listing::must_step_back`: an older conflicting bid, or at least N
    /// older peers.
    fn must_step_back(&self, sum: &Summary) -> bool {
        let older = if self.mutant == Mutant::MarkerOnlyPrecedence {
            sum.older_waiting_bid
        } else {
            sum.older_bid
        };
        older || (self.slots > 1 && sum.older_peers >= self.slots)
    }

    /// The same configuration with a mutant.
    pub fn with(mut self, mutant: Mutant) -> Config {
        self.mutant = mutant;
        self
    }
}

/// Entry kinds in the folder.
pub mod kind {
    /// No entry.
    pub const ABSENT: u8 = 0;
    /// `.lockfolder-<token>-<pid>-...tmp`: a bid being written.
    pub const TEMP: u8 = 1;
    /// `<token>.json` in our format, with a token.
    pub const BID: u8 = 2;
    /// A bid name with no content yet (mutant b).
    pub const EMPTY: u8 = 3;
    /// A 1.0.2 bid: PID only, no token that orders.
    pub const LEGACY: u8 = 4;
}

/// One folder entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    /// One of [`kind`].
    pub kind: u8,
    /// Rank of the token's age, for temporaries and bids of ours.
    pub age: u8,
}

/// What a listing has found so far, reduced to what `attempt` decides on.
///
/// `Rival::precedes` matches a bid with a marker of the same age. An age
/// belongs to one waiting session of one incarnation, and an incarnation's
/// sessions follow each other, so it is enough to keep, per incarnation, one
/// bit for "an older bid of its current session was listed" and one for "its
/// older marker was listed", cleared when it starts a new session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Summary {
    /// Our own bid was listed.
    pub own: bool,
    /// A live rival was listed (anything that keeps us from entering).
    pub rival: bool,
    /// Another live queue marker was listed.
    pub queued: bool,
    /// A live marker older than us was listed (`older_waiter`).
    pub older_marker: bool,
    /// A live bid of ours older than us was listed (`must_step_back`).
    pub older_bid: bool,
    /// Mutant f: a live bid older than us with a live marker of the same
    /// age was listed.
    pub older_waiting_bid: bool,
    /// Live peer bids (same semaphore) listed, at most N + 1.
    pub peers: u8,
    /// Of which older than us.
    pub older_peers: u8,
    /// Ids of the peer bids counted, so that reading one twice counts it
    /// once; an id leaves the set when its entry is deleted (a new bid with
    /// the id is a new name, counted anew).
    pub peer_ids: u16,
    /// Incarnations whose current session's older bid was listed.
    pub older_bids: u16,
    /// Incarnations whose current session's older marker was listed.
    pub older_marks: u16,
}

/// Where a contender is in `Waiter::wait` / `Contender::attempt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Pc {
    /// Not contending (never started, released, gave up, or crashed).
    #[default]
    Idle,
    /// Step 10: listing the folder, one entry at a time.
    Scan10,
    /// Step 30: listing the folder with our bid in place.
    Scan30,
    /// Step 20: temporary written; next, rename it into place.
    Rename,
    /// Mutant b: bid name created empty; next, write its content.
    WriteContent,
    /// Step 40: decided to withdraw; next, delete our bid.
    Withdraw,
    /// Step 10 decided to queue: next, publish the queue marker, then wait.
    JoinThenWait,
    /// Step 10 decided to queue and bid: next, publish the queue marker.
    JoinThenBid,
    /// Step 20: next, write the temporary.
    WriteTemp,
    /// Step 30 found no rival: next, delete the queue marker, then hold.
    /// Counted as a holder (it enters without another check).
    LeaveQueue,
    /// Step 50: holding the lock.
    Held,
}

/// One contender slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Proc {
    /// The current incarnation runs (false: crashed and not restarted).
    pub alive: bool,
    /// Incarnation number: each restart is a new process with a new PID.
    pub inc: u8,
    /// Program counter.
    pub pc: Pc,
    /// Rank of this waiter's age token, or [`NONE`].
    pub age: u8,
    /// The listing in progress.
    pub sum: Summary,
    /// Any order: entries present when the listing began and not yet read
    /// (bit per id): a listing cannot finish before it has read them, unless
    /// they vanish.
    pub pending: u32,
    /// Name order: the name key ([`State::key`]) of the last entry read, or
    /// [`NONE`] at the start of the listing.
    pub cursor: u8,
    /// An entry judged stale (or junk), to be removed next, or [`NONE`].
    pub target: u8,
    /// Mutant c: the last fresh listing, which a cached listing returns.
    pub snap: Summary,
}

impl Default for Proc {
    fn default() -> Proc {
        Proc {
            alive: false,
            inc: 0,
            pc: Pc::Idle,
            age: NONE,
            sum: Summary::default(),
            pending: 0,
            cursor: NONE,
            target: NONE,
            snap: Summary::default(),
        }
    }
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    /// Contender slots; only the first `flavors.len()` are used.
    pub procs: [Proc; MAX_PROCS],
    /// The folder, by entry identity: temporaries and bids.
    pub dir: [Entry; NIDS],
    /// The folder's queue markers (`.wait`), by incarnation: age rank or
    /// [`NONE`]. Entry id `MARK + i` in listings and removals.
    pub marks: [u8; NIDS],
    /// Crashes still allowed.
    pub crashes_left: u8,
    /// Contenders in use.
    pub n: u8,
    /// Listings in name order (copied from the configuration).
    pub name_order: bool,
}

/// One step, for traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Begins waiting: takes an age and starts step 10.
    Start,
    /// Reads one entry (by id) during a listing.
    Read(u8),
    /// Reads one entry and (wrongly) judges its live owner dead (mutant a).
    ReadWrongVerdict(u8),
    /// Deletes the entry judged stale.
    RemoveStale(u8),
    /// Ends the listing and acts on it.
    Finish,
    /// Ends the listing with the cached result (mutant c).
    FinishCached,
    /// Publishes its queue marker (`join_queue`).
    JoinQueue,
    /// Writes its temporary bid (step 20).
    WriteTemp,
    /// Renames the temporary into place (the bid appears whole).
    Publish,
    /// Deletes its queue marker before holding (`leave_queue`).
    LeaveQueue,
    /// Writes the content of a bid whose name already exists (mutant b).
    WriteContent,
    /// Deletes its own bid (step 40).
    Withdraw,
    /// Deletes its own bid (step 60).
    Release,
    /// Gives up between attempts (timeout or cancel), withdrawing any bid.
    GiveUp,
    /// The process dies: its entries stay.
    Crash,
    /// A new incarnation (new PID) starts in the slot.
    Restart,
}

/// A step taken by one contender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Action {
    /// Slot.
    pub proc: u8,
    /// What it did.
    pub step: Step,
}

/// Letter of a slot in traces.
pub fn slot_name(p: usize) -> char {
    (b'A' + p as u8) as char
}

fn id_of(slot: usize, inc: u8) -> usize {
    slot * MAX_INC + inc as usize
}

/// A renaming of contender slots: slot `p` becomes `perm[p]`.
pub type Perm = [u8; MAX_PROCS];

fn perm_id(id: usize, perm: &Perm) -> usize {
    if id >= MARK {
        return MARK + perm_id(id - MARK, perm);
    }
    perm[id / MAX_INC] as usize * MAX_INC + id % MAX_INC
}

/// Renames a set of entry ids (bids below [`MARK`], markers above).
fn perm_bits(bits: u32, perm: &Perm) -> u32 {
    let mut out = 0;
    for id in 0..NIDS {
        for base in [0, MARK] {
            if bits >> (base + id) & 1 == 1 {
                out |= 1 << perm_id(base + id, perm);
            }
        }
    }
    out
}

/// Whether some renaming in `perms` maps slot `a` to slot `b`.
fn perms_same_class(perms: &[Perm], a: usize, b: usize) -> bool {
    perms.iter().any(|p| p[a] as usize == b)
}

/// The renamings of the configuration's contenders that map it onto itself
/// (interchangeable contenders run the same code), other than the identity.
pub fn symmetries(cfg: &Config) -> Vec<Perm> {
    let n = cfg.flavors.len();
    let mut all: Vec<Perm> = Vec::new();
    let mut perm: Perm = [0, 1, 2];
    permute(&mut perm, 0, n, &mut all);
    all.retain(|perm| {
        perm[..n].iter().enumerate().any(|(p, &q)| p != q as usize)
            && (0..n).all(|p| cfg.class(p) == cfg.class(perm[p] as usize))
    });
    all
}

fn permute(perm: &mut Perm, k: usize, n: usize, out: &mut Vec<Perm>) {
    if k == n {
        out.push(*perm);
        return;
    }
    for i in k..n {
        perm.swap(k, i);
        permute(perm, k + 1, n, out);
        perm.swap(k, i);
    }
}

/// Describes an entry id: `A1` (the bid or temporary of slot A's
/// incarnation 1) or `A1.wait` (its queue marker).
pub fn id_name(id: u8) -> String {
    let id = id as usize;
    if id >= MARK {
        let i = id - MARK;
        return format!("{}{}.wait", slot_name(i / MAX_INC), i % MAX_INC);
    }
    format!("{}{}", slot_name(id / MAX_INC), id % MAX_INC)
}

impl State {
    /// Everyone idle and alive, the folder empty.
    pub fn initial(cfg: &Config) -> State {
        let mut procs = [Proc::default(); MAX_PROCS];
        for p in procs.iter_mut().take(cfg.flavors.len()) {
            p.alive = true;
        }
        State {
            procs,
            dir: [Entry::default(); NIDS],
            marks: [NONE; NIDS],
            crashes_left: cfg.crashes,
            n: cfg.flavors.len() as u8,
            name_order: cfg.name_order,
        }
    }

    /// Contenders in the critical section (alive and holding).
    pub fn holders(&self) -> usize {
        self.procs
            .iter()
            .filter(|p| p.alive && matches!(p.pc, Pc::Held | Pc::LeaveQueue))
            .count()
    }

    /// Whether the holders break the lock's promise: an exclusive (or
    /// 1.0.2) holder with anyone else, or more holders than slots.
    pub fn violates(&self, cfg: &Config) -> bool {
        let holding = |p: usize| {
            let pr = &self.procs[p];
            pr.alive && matches!(pr.pc, Pc::Held | Pc::LeaveQueue)
        };
        let n = cfg.flavors.len();
        let h = (0..n).filter(|&p| holding(p)).count();
        let exclusive = (0..n).any(|p| {
            holding(p)
                && (cfg.flavors[p] == Flavor::Legacy
                    || (cfg.slots == 1 && cfg.modes[p] == Mode::Exclusive))
        });
        (cfg.slots > 1 && h > usize::from(cfg.slots)) || (h >= 2 && exclusive)
    }

    fn owner_alive(&self, id: usize) -> bool {
        let p = &self.procs[id / MAX_INC];
        p.alive && p.inc as usize == id % MAX_INC
    }

    fn present_mask(&self) -> u32 {
        let mut m = 0;
        for (i, e) in self.dir.iter().enumerate() {
            if e.kind != kind::ABSENT {
                m |= 1 << i;
            }
            if self.marks[i] != NONE {
                m |= 1 << (MARK + i);
            }
        }
        m
    }

    /// The position of entry `id` in name order: by the age in its name,
    /// then queue marker, temporary, bid (real names begin with the token,
    /// which is the age); 1.0.2 bids, which have no token, after all ours.
    /// Depends on ages only, never on which slot owns the entry, so that
    /// renaming contenders maps the order onto itself.
    pub fn key(&self, id: usize) -> u8 {
        if id >= MARK {
            return 4 * self.marks[id - MARK];
        }
        let e = self.dir[id];
        match e.kind {
            kind::TEMP => 4 * e.age + 1,
            kind::BID | kind::EMPTY => 4 * e.age + 2,
            _ => LEGACY_KEY + id as u8,
        }
    }

    fn start_scan(&mut self, p: usize, pc: Pc) {
        // Any order: the entries present now must all be read (unless they
        // vanish). Name order: the cursor starts before every entry.
        let mask = if self.name_order {
            0
        } else {
            self.present_mask()
        };
        let pr = &mut self.procs[p];
        pr.pc = pc;
        pr.pending = mask;
        pr.cursor = NONE;
        pr.sum = Summary::default();
        pr.target = NONE;
    }

    /// Deletes entry `id` by its name. Temporaries always have unique names;
    /// with mutant d a bid's name is its slot's, so deleting it deletes
    /// whichever bid of that slot is there now.
    fn delete(&mut self, cfg: &Config, id: usize) {
        if id >= MARK {
            // Queue markers always have unique names.
            self.marks[id - MARK] = NONE;
            for q in self.procs.iter_mut() {
                q.pending &= !(1 << id);
                if q.target as usize == id {
                    q.target = NONE;
                }
            }
            return;
        }
        let fixed = cfg.mutant == Mutant::FixedName && self.dir[id].kind != kind::TEMP;
        let ids: Vec<usize> = if fixed {
            let slot = id / MAX_INC;
            (0..MAX_INC)
                .map(|i| id_of(slot, i as u8))
                .filter(|&i| self.dir[i].kind != kind::TEMP)
                .collect()
        } else {
            vec![id]
        };
        for i in ids {
            if self.dir[i].kind == kind::ABSENT {
                continue;
            }
            self.dir[i] = Entry::default();
            for q in self.procs.iter_mut() {
                q.pending &= !(1 << i);
                q.sum.peer_ids &= !(1 << i);
                // A unique name, once deleted, is never published again:
                // a removal still planned for it can only find nothing.
                if !fixed && q.target as usize == i {
                    q.target = NONE;
                }
            }
        }
    }

    /// Deletes the contender's own bid, by the name it would use.
    fn delete_own(&mut self, cfg: &Config, p: usize) {
        let id = id_of(p, self.procs[p].inc);
        self.delete(cfg, id);
    }

    /// Applies `f` to every rank in the state.
    fn map_ranks(&mut self, f: &dyn Fn(u8) -> u8) {
        let one = |v: &mut u8| {
            if *v != NONE {
                *v = f(*v)
            }
        };
        for p in self.procs.iter_mut() {
            one(&mut p.age);
            if p.cursor < LEGACY_KEY {
                p.cursor = 4 * f(p.cursor / 4) + p.cursor % 4;
            }
        }
        for e in self.dir.iter_mut() {
            if matches!(e.kind, kind::TEMP | kind::BID | kind::EMPTY) {
                e.age = f(e.age);
            } else {
                e.age = 0;
            }
        }
        for m in self.marks.iter_mut() {
            one(m);
        }
    }

    fn used_ranks(&self) -> u64 {
        let mut used = 0u64;
        let mut add = |v: u8| {
            if v != NONE {
                used |= 1 << v
            }
        };
        for p in &self.procs {
            add(p.age);
            if p.cursor < LEGACY_KEY {
                add(p.cursor / 4);
            }
        }
        for e in &self.dir {
            if matches!(e.kind, kind::TEMP | kind::BID | kind::EMPTY) {
                add(e.age);
            }
        }
        for m in &self.marks {
            add(*m);
        }
        used
    }

    /// Renumbers ranks 0.. keeping their order.
    ///
    /// A cursor whose age no entry or contender uses any more is moved back
    /// to just after the last age still in use (or the start): the entries
    /// it can meet all carry ages in use or younger ones, so it compares
    /// the same way with all of them. (With `any_age_order` a new age could
    /// fall between the two places, so cursors stay where they are.)
    fn normalize(&mut self, snap_cursors: bool) {
        if snap_cursors {
            let mut plain = self.clone();
            for p in plain.procs.iter_mut() {
                p.cursor = NONE;
            }
            let used = plain.used_ranks();
            for p in self.procs.iter_mut() {
                if p.cursor >= LEGACY_KEY {
                    continue;
                }
                let a = p.cursor / 4;
                if used >> a & 1 == 1 {
                    continue;
                }
                let below = used & ((1u64 << a) - 1);
                p.cursor = if below == 0 {
                    NONE
                } else {
                    4 * (63 - below.leading_zeros() as u8) + 3
                };
            }
        }
        let used = self.used_ranks();
        self.map_ranks(&|v| (used & ((1u64 << v) - 1)).count_ones() as u8);
    }

    /// Every step contender `p` can take (all contenders if `only` is None),
    /// with the state it leads to.
    pub fn successors(&self, cfg: &Config, only: Option<usize>, out: &mut Vec<(Action, State)>) {
        out.clear();
        for p in 0..cfg.flavors.len() {
            if only.is_some_and(|o| o != p) {
                continue;
            }
            self.steps_of(cfg, p, only.is_some(), out);
        }
        let perms = if cfg.symmetry && only.is_none() {
            symmetries(cfg)
        } else {
            Vec::new()
        };
        for (_, s) in out.iter_mut() {
            s.normalize(!cfg.any_age_order);
            if !perms.is_empty() {
                *s = s.canonical(&perms);
            }
        }
    }

    /// The state with contender `p` renamed `perm[p]`: its slot, the ids of
    /// its entries (and so their names) and every reference to them.
    pub fn permuted(&self, perm: &Perm) -> State {
        let mut s = self.clone();
        for (p, pr) in self.procs.iter().enumerate() {
            let mut q = *pr;
            for sum in [&mut q.sum, &mut q.snap] {
                sum.older_bids = perm_bits(u32::from(sum.older_bids), perm) as u16;
                sum.older_marks = perm_bits(u32::from(sum.older_marks), perm) as u16;
                sum.peer_ids = perm_bits(u32::from(sum.peer_ids), perm) as u16;
            }
            q.pending = perm_bits(q.pending, perm);
            if q.target != NONE {
                q.target = perm_id(q.target as usize, perm) as u8;
            }
            s.procs[perm[p] as usize] = q;
        }
        for id in 0..NIDS {
            let to = perm_id(id, perm);
            s.dir[to] = self.dir[id];
            s.marks[to] = self.marks[id];
        }
        s
    }

    /// What can be said of slot `p` without naming any other slot: its
    /// record (references to others' entries blanked) and its entries.
    fn signature(&self, p: usize) -> (Proc, [Entry; MAX_INC], [u8; MAX_INC]) {
        let mut q = self.procs[p];
        for sum in [&mut q.sum, &mut q.snap] {
            sum.older_bids = 0;
            sum.older_marks = 0;
            sum.peer_ids = 0;
        }
        q.pending = q.pending.count_ones();
        q.target = u8::from(q.target != NONE);
        let mut dir = [Entry::default(); MAX_INC];
        let mut marks = [NONE; MAX_INC];
        for i in 0..MAX_INC {
            dir[i] = self.dir[p * MAX_INC + i];
            marks[i] = self.marks[p * MAX_INC + i];
        }
        (q, dir, marks)
    }

    /// One representative of the state's renamings under `perms` (all of
    /// them but the identity, closed under composition): slots of one class
    /// sorted by [`State::signature`]; where signatures tie, the least of
    /// all renamings. The same for every renaming of the state.
    pub fn canonical(&self, perms: &[Perm]) -> State {
        let n = self.n as usize;
        let sigs: Vec<_> = (0..n).map(|p| self.signature(p)).collect();
        // The renaming that sorts each class by signature, if no two
        // slots of a class tie.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| sigs[a].cmp(&sigs[b]));
        let tie = (1..n).any(|i| sigs[order[i - 1]] == sigs[order[i]]);
        if !tie {
            // Among the allowed renamings, the one that puts the slots of
            // each class in signature order.
            let sorted = |perm: &Perm| {
                (0..n).all(|a| {
                    (0..n).all(|b| {
                        sigs[a] >= sigs[b] || perm[a] < perm[b] || !perms_same_class(perms, a, b)
                    })
                })
            };
            let mut best = self.clone();
            for perm in perms {
                if sorted(perm) {
                    best = self.permuted(perm);
                }
            }
            return best;
        }
        let mut best = self.clone();
        for perm in perms {
            let t = self.permuted(perm);
            if t < best {
                best = t;
            }
        }
        best
    }

    fn steps_of(&self, cfg: &Config, p: usize, solo: bool, out: &mut Vec<(Action, State)>) {
        let pr = self.procs[p];
        let flavor = cfg.flavors[p];
        let mut push = |step: Step, s: State| {
            out.push((
                Action {
                    proc: p as u8,
                    step,
                },
                s,
            ))
        };
        if !pr.alive {
            if !solo && (pr.inc as usize) + 1 < MAX_INC {
                let mut s = self.clone();
                let q = &mut s.procs[p];
                q.alive = true;
                q.inc += 1;
                push(Step::Restart, s);
            }
            return;
        }
        if !solo && self.crashes_left > 0 {
            let mut s = self.clone();
            s.crashes_left -= 1;
            s.procs[p] = Proc {
                inc: pr.inc,
                ..Proc::default()
            };
            push(Step::Crash, s);
        }
        let my_id = id_of(p, pr.inc);
        match pr.pc {
            Pc::Idle => {
                // Contender::new: the age token is "now": the youngest, or
                // (clocks may step back) any place among the ages in use.
                let mut base = self.clone();
                base.normalize(!cfg.any_age_order);
                let existing = base.used_ranks().count_ones() as u8;
                let places: Vec<u8> = if flavor == Flavor::Legacy {
                    vec![NONE]
                } else if cfg.any_age_order {
                    (0..=existing).collect()
                } else {
                    vec![existing]
                };
                for j in places {
                    let mut s = base.clone();
                    if j != NONE {
                        s.map_ranks(&|v| 2 * v + 1);
                        s.procs[p].age = 2 * j;
                    }
                    // A new session: what others listed of our earlier
                    // sessions can match nothing any more.
                    let me = !(1u16 << my_id);
                    for q in s.procs.iter_mut() {
                        for sum in [&mut q.sum, &mut q.snap] {
                            sum.older_bids &= me;
                            sum.older_marks &= me;
                        }
                    }
                    s.start_scan(p, Pc::Scan10);
                    push(Step::Start, s);
                }
            }
            Pc::Scan10 | Pc::Scan30 if pr.target != NONE => {
                let mut s = self.clone();
                let t = pr.target as usize;
                s.procs[p].target = NONE;
                s.delete(cfg, t);
                push(Step::RemoveStale(t as u8), s);
            }
            Pc::Scan10 | Pc::Scan30 => {
                let present = self.present_mask();
                let ahead = if cfg.name_order {
                    // The entries after the cursor; only the first is next.
                    let after = |id: usize| pr.cursor == NONE || self.key(id) > pr.cursor;
                    let next = (0..32)
                        .filter(|&id| present >> id & 1 == 1 && after(id))
                        .min_by_key(|&id| self.key(id));
                    next.map_or(0, |id| 1u32 << id)
                } else {
                    present & pr.pending
                };
                for id in 0..32 {
                    if present >> id & 1 == 0 {
                        continue;
                    }
                    if cfg.name_order && ahead >> id & 1 == 0 {
                        continue;
                    }
                    for wrong in [false, true] {
                        if let Some(s) = self.read(cfg, p, id, wrong) {
                            push(
                                if wrong {
                                    Step::ReadWrongVerdict(id as u8)
                                } else {
                                    Step::Read(id as u8)
                                },
                                s,
                            );
                        }
                    }
                }
                if ahead == 0 {
                    let mut s = self.clone();
                    s.finish(cfg, p, pr.sum);
                    push(Step::Finish, s);
                }
                if cfg.mutant == Mutant::StaleSnapshot {
                    let mut sum = pr.snap;
                    sum.own = pr.pc == Pc::Scan30 && self.dir[my_id].kind != kind::ABSENT;
                    let mut s = self.clone();
                    s.finish_with(cfg, p, sum);
                    push(Step::FinishCached, s);
                }
                // Between attempts (before a listing has read anything), a
                // waiter may time out or be cancelled: it withdraws its bid.
                if cfg.give_up && flavor == Flavor::Ours && pr.sum == Summary::default() {
                    // Contender::abandon: withdraw the bid, leave the queue.
                    let mut s = self.clone();
                    if pr.pc == Pc::Scan30 {
                        s.delete_own(cfg, p);
                    }
                    s.delete(cfg, MARK + my_id);
                    s.procs[p] = Proc {
                        alive: true,
                        inc: pr.inc,
                        snap: pr.snap,
                        ..Proc::default()
                    };
                    push(Step::GiveUp, s);
                }
            }
            Pc::JoinThenWait | Pc::JoinThenBid => {
                // join_queue: an empty `.wait` file named with our age.
                let mut s = self.clone();
                s.marks[my_id] = pr.age;
                if pr.pc == Pc::JoinThenWait {
                    s.start_scan(p, Pc::Scan10);
                } else {
                    s.procs[p].pc = Pc::WriteTemp;
                }
                push(Step::JoinQueue, s);
            }
            Pc::WriteTemp => {
                let mut s = self.clone();
                s.write_bid(cfg, p);
                push(Step::WriteTemp, s);
            }
            Pc::LeaveQueue => {
                let mut s = self.clone();
                s.delete(cfg, MARK + my_id);
                s.procs[p].pc = Pc::Held;
                push(Step::LeaveQueue, s);
            }
            Pc::Rename => {
                let mut s = self.clone();
                if cfg.mutant == Mutant::FixedName {
                    // The bid's name is the slot's: the rename replaces
                    // whatever bid has it (an earlier incarnation's).
                    for i in 0..MAX_INC {
                        let other = id_of(p, i as u8);
                        if other != my_id {
                            s.delete(cfg, other);
                        }
                    }
                }
                if s.dir[my_id].kind == kind::TEMP {
                    s.dir[my_id].kind = kind::BID;
                    s.start_scan(p, Pc::Scan30);
                } else {
                    // The temporary was removed under us: bid() fails and the
                    // error ends the wait.
                    s.procs[p] = Proc {
                        alive: true,
                        inc: pr.inc,
                        snap: pr.snap,
                        ..Proc::default()
                    };
                }
                push(Step::Publish, s);
            }
            Pc::WriteContent => {
                let mut s = self.clone();
                if s.dir[my_id].kind == kind::EMPTY {
                    s.dir[my_id].kind = kind::BID;
                }
                // If the name was deleted, the content goes to an unlinked
                // file: the bid is simply gone, and step 30 will say so.
                s.start_scan(p, Pc::Scan30);
                push(Step::WriteContent, s);
            }
            Pc::Withdraw => {
                let mut s = self.clone();
                s.delete_own(cfg, p);
                match flavor {
                    Flavor::Ours => s.start_scan(p, Pc::Scan10),
                    Flavor::Legacy => s.procs[p].pc = Pc::Idle,
                }
                push(Step::Withdraw, s);
            }
            Pc::Held => {
                let mut s = self.clone();
                s.delete_own(cfg, p);
                s.procs[p].pc = Pc::Idle;
                s.procs[p].age = NONE;
                push(Step::Release, s);
            }
        }
    }

    /// Reads entry `id` in `p`'s listing (`inspect` and the body of
    /// `check`); `wrong` asks for the mutant-a verdict (None if that makes no
    /// difference).
    fn read(&self, cfg: &Config, p: usize, id: usize, wrong: bool) -> Option<State> {
        let pr = self.procs[p];
        let my_id = id_of(p, pr.inc);
        let mut s = self.clone();
        let key = self.key(id);
        let q = &mut s.procs[p];
        q.pending &= !(1 << id);
        if cfg.name_order {
            // The cursor passes this entry and everything before it.
            q.cursor = key;
        }
        if id >= MARK {
            // A queue marker: judged by the identity in its name; never a
            // rival; 1.0.2 does not list it (not `.json`).
            let owner = id - MARK;
            if wrong || cfg.flavors[p] == Flavor::Legacy || owner == my_id {
                return (!wrong).then_some(s);
            }
            if self.owner_alive(owner) {
                let m = self.marks[owner];
                q.sum.queued = true;
                if m < pr.age {
                    q.sum.older_marker = true;
                    q.sum.older_marks |= 1 << owner;
                    if q.sum.older_bids >> owner & 1 == 1 {
                        q.sum.older_waiting_bid = true;
                    }
                }
            } else {
                q.target = id as u8;
            }
            return Some(s);
        }
        let e = self.dir[id];
        let own = pr.pc == Pc::Scan30
            && if cfg.mutant == Mutant::FixedName {
                id / MAX_INC == p
            } else {
                id == my_id
            };
        let alive = self.owner_alive(id);
        if wrong {
            // Only the liveness verdict of a live bid's owner can be wrong.
            let applies = cfg.mutant == Mutant::LiveJudgedDead
                && cfg.flavors[p] == Flavor::Ours
                && !own
                && alive
                && matches!(e.kind, kind::BID | kind::LEGACY);
            if !applies {
                return None;
            }
            q.target = id as u8;
            return Some(s);
        }
        if own {
            q.sum.own = true;
            return Some(s);
        }
        match (cfg.flavors[p], e.kind) {
            (Flavor::Ours, kind::TEMP) => {
                if !alive {
                    q.target = id as u8;
                }
            }
            (Flavor::Ours, kind::BID) => {
                if !alive {
                    q.target = id as u8;
                    return Some(s);
                }
                match cfg.relation(p, id / MAX_INC) {
                    Relation::Conflicts => {
                        q.sum.rival = true;
                        if e.age < pr.age {
                            q.sum.older_bid = true;
                            q.sum.older_bids |= 1 << id;
                            if q.sum.older_marks >> id & 1 == 1 {
                                q.sum.older_waiting_bid = true;
                            }
                        }
                    }
                    Relation::Peer => {
                        if q.sum.peer_ids >> id & 1 == 0 {
                            let cap = cfg.slots + 1;
                            q.sum.peer_ids |= 1 << id;
                            q.sum.peers = (q.sum.peers + 1).min(cap);
                            if e.age < pr.age {
                                q.sum.older_peers = (q.sum.older_peers + 1).min(cap);
                            }
                        }
                    }
                    Relation::Compatible => {}
                }
            }
            (_, kind::LEGACY) | (Flavor::Legacy, kind::BID) => {
                if alive {
                    if cfg.flavors[p] == Flavor::Legacy
                        || cfg.relation(p, id / MAX_INC) == Relation::Conflicts
                    {
                        q.sum.rival = true;
                    }
                } else {
                    q.target = id as u8;
                }
            }
            (Flavor::Ours, kind::EMPTY) => match cfg.mutant {
                Mutant::NameBeforeContent(Reader::Delete) => q.target = id as u8,
                Mutant::NameBeforeContent(Reader::Skip) => {}
                _ => q.sum.rival = true,
            },
            (Flavor::Legacy, kind::EMPTY) => q.sum.rival = true,
            // 1.0.2 lists only names ending in .json.
            (Flavor::Legacy, kind::TEMP) => {}
            _ => unreachable!("entry kind {}", e.kind),
        }
        Some(s)
    }

    fn finish(&mut self, cfg: &Config, p: usize, sum: Summary) {
        if cfg.mutant == Mutant::StaleSnapshot {
            self.procs[p].snap = Summary { own: false, ..sum };
        }
        self.finish_with(cfg, p, sum);
    }

    /// Step 20 (`bid`): the temporary, or with mutant b the bid's name.
    fn write_bid(&mut self, cfg: &Config, p: usize) {
        let pr = self.procs[p];
        let my_id = id_of(p, pr.inc);
        if let Mutant::NameBeforeContent(_) = cfg.mutant {
            self.dir[my_id] = Entry {
                kind: kind::EMPTY,
                age: pr.age,
            };
            self.procs[p].pc = Pc::WriteContent;
        } else {
            self.dir[my_id] = Entry {
                kind: kind::TEMP,
                age: pr.age,
            };
            self.procs[p].pc = Pc::Rename;
        }
    }

    /// The decision at the end of a listing (`Contender::attempt`).
    fn finish_with(&mut self, cfg: &Config, p: usize, sum: Summary) {
        let pr = self.procs[p];
        let my_id = id_of(p, pr.inc);
        let symmetric = cfg.mutant == Mutant::SymmetricWithdraw;
        let has_marker = self.marks[my_id] != NONE;
        match (cfg.flavors[p], pr.pc) {
            (Flavor::Ours, Pc::Scan10) if symmetric => {
                // The seed with retries: any rival, wait; else bid.
                if sum.rival {
                    self.start_scan(p, Pc::Scan10);
                } else {
                    self.write_bid(cfg, p);
                }
            }
            (Flavor::Ours, Pc::Scan10) => {
                let contended = cfg.blocked(&sum) || sum.queued;
                // older_waiter: an older live marker, or must_step_back.
                let wait = contended && (sum.older_marker || cfg.must_step_back(&sum));
                match (contended && !has_marker, wait) {
                    (true, true) => self.procs[p].pc = Pc::JoinThenWait,
                    (true, false) => self.procs[p].pc = Pc::JoinThenBid,
                    (false, true) => self.start_scan(p, Pc::Scan10),
                    (false, false) => self.write_bid(cfg, p),
                }
            }
            (Flavor::Ours, Pc::Scan30) => {
                // must_step_back: any older bid of ours (Rival::precedes);
                // with mutant f only one whose marker was listed too.
                let yield_to_older = if symmetric {
                    sum.rival
                } else {
                    cfg.must_step_back(&sum)
                };
                let enter = if has_marker { Pc::LeaveQueue } else { Pc::Held };
                if !sum.own {
                    // Our bid vanished: never enter without it; bid again.
                    self.start_scan(p, Pc::Scan10);
                } else if !cfg.blocked(&sum) {
                    self.procs[p].pc = enter;
                } else if yield_to_older {
                    self.procs[p].pc = Pc::Withdraw;
                } else if cfg.mutant == Mutant::LowestEntersAtOnce {
                    self.procs[p].pc = enter;
                } else {
                    // First in line keeps its bid and lists again.
                    self.start_scan(p, Pc::Scan30);
                }
            }
            (Flavor::Legacy, Pc::Scan10) => {
                if sum.rival {
                    self.procs[p].pc = Pc::Idle;
                } else {
                    if cfg.mutant == Mutant::FixedName {
                        for i in 0..MAX_INC {
                            let other = id_of(p, i as u8);
                            if other != my_id {
                                self.delete(cfg, other);
                            }
                        }
                    }
                    self.dir[my_id] = Entry {
                        kind: kind::LEGACY,
                        age: 0,
                    };
                    self.start_scan(p, Pc::Scan30);
                }
            }
            (Flavor::Legacy, Pc::Scan30) => {
                if !sum.own {
                    self.procs[p].pc = Pc::Idle;
                } else if sum.rival {
                    self.procs[p].pc = Pc::Withdraw;
                } else {
                    self.procs[p].pc = Pc::Held;
                }
            }
            _ => unreachable!("finish outside a listing"),
        }
        let q = &mut self.procs[p];
        if q.pc != Pc::Scan10 && q.pc != Pc::Scan30 {
            q.sum = Summary::default();
            q.pending = 0;
            q.cursor = NONE;
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = slot_name(self.proc as usize);
        match self.step {
            Step::Start => write!(
                f,
                "{who} starts waiting (takes an age token), step 10 listing"
            ),
            Step::Read(id) => write!(f, "{who} lists {}", id_name(id)),
            Step::ReadWrongVerdict(id) => write!(
                f,
                "{who} lists entry {} and wrongly judges its live owner dead",
                id_name(id)
            ),
            Step::RemoveStale(id) => write!(f, "{who} removes {} as stale", id_name(id)),
            Step::Finish => write!(f, "{who} ends its listing and decides"),
            Step::FinishCached => write!(f, "{who} gets a cached (old) listing and decides"),
            Step::JoinQueue => write!(f, "{who} publishes its queue marker"),
            Step::WriteTemp => write!(f, "{who} writes its temporary bid"),
            Step::LeaveQueue => write!(f, "{who} deletes its queue marker and holds"),
            Step::Publish => write!(
                f,
                "{who} renames its temporary into place (bid appears whole)"
            ),
            Step::WriteContent => write!(f, "{who} writes its bid's content"),
            Step::Withdraw => write!(f, "{who} withdraws its bid (step 40)"),
            Step::Release => write!(f, "{who} releases: deletes its bid (step 60)"),
            Step::GiveUp => write!(f, "{who} gives up waiting, withdrawing any bid"),
            Step::Crash => write!(f, "{who} crashes, leaving its entries"),
            Step::Restart => write!(f, "{who} restarts as a new process (new PID)"),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "folder [")?;
        let mut first = true;
        for (i, e) in self.dir.iter().enumerate() {
            let k = match e.kind {
                kind::ABSENT => continue,
                kind::TEMP => "temp",
                kind::BID => "bid",
                kind::EMPTY => "empty-bid",
                _ => "1.0.2-bid",
            };
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{} {k}", id_name(i as u8))?;
            if e.kind != kind::LEGACY {
                write!(f, " age{}", e.age)?;
            }
        }
        for (i, m) in self.marks.iter().enumerate() {
            if *m != NONE {
                if !first {
                    write!(f, ", ")?;
                }
                first = false;
                write!(f, "{}.wait age{m}", id_name(i as u8))?;
            }
        }
        write!(f, "]")?;
        for (i, p) in self.procs.iter().enumerate().take(self.n as usize) {
            write!(f, "  {}{}:", slot_name(i), p.inc)?;
            if !p.alive {
                write!(f, "dead")?;
                continue;
            }
            write!(f, "{:?}", p.pc)?;
            if p.age != NONE {
                write!(f, " age{}", p.age)?;
            }
        }
        Ok(())
    }
}
