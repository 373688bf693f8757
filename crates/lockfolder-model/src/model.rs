//! The protocol as a state machine: the folder, the contenders and every
//! atomic step one of them can take. Each step of a contender of ours is one
//! store operation of `crates/lockfolder/src/protocol.rs` (one entry read by
//! a listing, one write, rename or removal); every decision between them is
//! made by calling `lockfolder::decide` on `decide::Entry` and `decide::Me`
//! values built from the state. `docs/model.md` maps each program counter to
//! the lines of `protocol.rs` it stands for.
//!
//! A state is small and canonical so that it can be hashed:
//!
//! * the folder holds at most one temporary-or-bid and one queue marker per
//!   *incarnation* (a process: a slot and a restart count), so the pair names
//!   an entry as uniquely as the UUID of a real name. When an entry is
//!   deleted, every pending reference to it is dropped too, so the pair can be
//!   reused later without aliasing a unique name.
//! * ages (tokens) are *ranks* among the ages in use (0 = oldest), renumbered
//!   after every step, so unbounded retries and new sessions stay finite;
//!   [`key`] maps a rank onto a `decide::Key` in the same order.

use lockfolder::decide::{self, Class, Judged, Me, Next10, Next30, Role, Rules, Tally};
use lockfolder::Mode;
use std::fmt;

/// Contender slots in one configuration, at most.
pub const MAX_PROCS: usize = 3;
/// Incarnations per slot (so at most two restarts of one slot).
pub const MAX_INC: usize = 3;
/// Distinct entry identities: one per incarnation.
pub const NIDS: usize = MAX_PROCS * MAX_INC;
/// "No value" for ranks, cursors and slots.
pub const NONE: u8 = u8::MAX;
/// Entry ids at and above this are queue markers (`MARK + incarnation id`).
pub const MARK: usize = 16;
/// Name keys at and above this are 1.0.2 bids (`LEGACY_KEY + id`).
const LEGACY_KEY: u8 = 200;

/// Default cap on the states of one search (about 2.5 GB with the graph,
/// see `docs/model.md`).
pub const DEFAULT_MAX_STATES: usize = 6_000_000;

/// A rank (0 = oldest age in use) as an order key of the rules: `<` is
/// "older" for both. A contender's token has the same age as its marker and
/// other random bits; between contenders only the age orders, so the model
/// gives token and age one key.
pub fn key(rank: u8) -> decide::Key {
    u128::from(rank) << 64
}

/// Which code a contender runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flavor {
    /// `Waiter::wait` of the crate (`lock`, `lock_timeout`): attempts with
    /// `waiting` set, queue markers, keeping a bid while first in line.
    Ours,
    /// `LockFolder::try_lock`, called again and again: one attempt with
    /// `waiting` unset, then the contender is dropped.
    Try,
    /// lockfolder 1.0.2: bids without a token, fails on seeing any other
    /// bid, withdraws on seeing one after bidding; retried by its caller.
    Legacy,
}

/// How bids appear in the folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publish {
    /// Written under a temporary name, then renamed into place (the crate).
    TempThenRename,
    /// (world of mutant b) The bid's name is created empty and its content
    /// written after: a reader can see an empty bid.
    NameBeforeContent,
}

/// How the store answers a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listings {
    /// Every listing reads the folder as it is (local POSIX filesystems).
    Fresh,
    /// (world c) A listing may return the entries of the contender's last
    /// fresh listing (an NFS or FUSE client's directory cache), with the
    /// contender's own current bid; each is inspected and judged afresh.
    Cached,
    /// As [`Listings::Cached`], except that a listing made after the
    /// contender changed the folder itself (wrote, published or removed
    /// anything) is fresh: close-to-open revalidation, measured on NFS.
    CachedUntilOwnChange,
}

/// When the time bounds of `protocol.rs` may pass. The model has no clock:
/// a bound passing is a nondeterministic event, allowed only where the real
/// code could see it pass (see `docs/model.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Any running clock may have run out at any later check: a `HANDOVER`
    /// clock runs while the lock looks free to the contender keeping it, a
    /// `KEEP_MAX` clock from a Keep until the lock looks free or is taken.
    /// Every schedule of the real code is one of these (the faithful
    /// default).
    Any,
    /// Running contenders are faster than the bounds: the `HANDOVER` clock
    /// of a running owner's marker never runs out (a running waiter takes
    /// its turn), and `KEEP_MAX` passes only while every other running
    /// contender is quiet (holding, idle, or asleep between attempts).
    Prompt,
    /// As `Prompt`, and `KEEP_MAX` never passes (as if it were infinite):
    /// not the shipped code, but what shows which findings the keep bound
    /// causes.
    PromptKeepForever,
}

/// The world the contenders run in: what the store and the liveness probe
/// do. These are not decisions of the rules (those are `decide::Mutant`s),
/// but faults of the environment, some of which the rules must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct World {
    /// How bids appear.
    pub publish: Publish,
    /// (world d) Bids are named per slot (one fixed name reused by every bid
    /// and incarnation of that slot, like a PID file), published by a rename
    /// that replaces, removed by that name.
    pub fixed_names: bool,
    /// How listings are answered.
    pub listings: Listings,
    /// The liveness probe may answer "cannot tell" (unjudgeable) for a live
    /// owner on any read (a process in a PID namespace we cannot see into,
    /// `hidepid`, a probe that fails).
    pub oracle_may_not_tell: bool,
    /// After a reboot, entries of the previous boot are unjudgeable for ever
    /// (written where nobody can tell them from the living: a container, or
    /// an identity without the boot id) instead of provably stale.
    pub reboot_leaves_unjudgeable: bool,
}

impl World {
    /// The world the crate is built for: temporaries renamed into place,
    /// unique names, fresh listings, an exact liveness probe.
    pub const LOCAL: World = World {
        publish: Publish::TempThenRename,
        fixed_names: false,
        listings: Listings::Fresh,
        oracle_may_not_tell: false,
        reboot_leaves_unjudgeable: false,
    };
}

/// One configuration to check.
#[derive(Clone, Debug)]
pub struct Config {
    /// The contenders, at most [`MAX_PROCS`].
    pub flavors: Vec<Flavor>,
    /// Each contender's mode (1.0.2 contenders: ignored, they know none).
    pub modes: Vec<Mode>,
    /// Contenders in a PID namespace that no other contender can see into
    /// (a container): every verdict across that boundary is unjudgeable, for
    /// the living and, once they die, for ever.
    pub foreign: Vec<bool>,
    /// Slots of the folder: 1 for a lock (exclusive or shared), N > 1 for a
    /// counting semaphore. Every contender agrees on it (a mismatch is an
    /// error before any bid, not modelled).
    pub slots: u32,
    /// Crashes allowed in total; a crashed slot may restart as a new
    /// incarnation (new PID).
    pub crashes: u8,
    /// Contenders that may be stopped for ever (SIGSTOP, a paused container):
    /// alive, judged live and stopped, taking no more steps.
    pub stops: u8,
    /// Reboots allowed: every process dies at once; its entries stay.
    pub reboots: u8,
    /// The rules, as shipped or with one `decide::Mutant` switched on.
    pub rules: Rules,
    /// The store and the liveness probe.
    pub world: World,
    /// When the time bounds (`HANDOVER`, `KEEP_MAX`) may pass.
    pub timing: Timing,
    /// If true, a new waiter's age may take any place in the order (wall
    /// clocks can step backwards); if false it is always the youngest.
    pub any_age_order: bool,
    /// If true, a waiter may give up between attempts (timeout, cancel).
    pub give_up: bool,
    /// If true, a listing reads entries in name order with a cursor: by
    /// age, then marker, temporary, bid; 1.0.2 bids last. An entry created
    /// behind the cursor is missed. If false, in any order, each listing
    /// choosing its own (POSIX `readdir` under concurrent changes).
    pub name_order: bool,
    /// If true, states that differ only by a renaming of interchangeable
    /// contenders (same flavor, mode and namespace) are one state (safety
    /// and the held-back property only).
    pub symmetry: bool,
    /// The search stops with a panic beyond this many states, rather than
    /// exhaust the machine's memory.
    pub max_states: usize,
}

impl Config {
    /// `n` waiting contenders of ours, with `crashes` crashes, the shipped
    /// rules in the local world.
    pub fn ours(n: usize, crashes: u8) -> Config {
        Config {
            flavors: vec![Flavor::Ours; n],
            modes: vec![Mode::Exclusive; n],
            foreign: vec![false; n],
            slots: 1,
            crashes,
            stops: 0,
            reboots: 0,
            rules: Rules::REAL,
            world: World::LOCAL,
            timing: Timing::Any,
            any_age_order: false,
            give_up: true,
            name_order: false,
            symmetry: false,
            max_states: DEFAULT_MAX_STATES,
        }
    }

    /// What makes contender `p` distinguishable from the others.
    pub fn class(&self, p: usize) -> (Flavor, bool, bool) {
        (
            self.flavors[p],
            self.modes[p] == Mode::Shared,
            self.foreign[p],
        )
    }

    /// The same configuration with a mutant of the rules.
    pub fn with(mut self, mutant: decide::Mutant) -> Config {
        self.rules = Rules { mutant };
        self
    }

    /// The same configuration in another world.
    pub fn in_world(mut self, world: World) -> Config {
        self.world = world;
        self
    }

    /// Whether an entry can stay in the folder for ever and keep others out
    /// legitimately (an unjudgeable leftover, a stopped owner, a bid left
    /// empty): then "nobody ever holds" is not a livelock of the rules, and
    /// the held-back property is the liveness question instead.
    pub fn has_permanent_blockers(&self) -> bool {
        self.stops > 0
            || self.foreign.iter().any(|f| *f)
            || (self.reboots > 0 && self.world.reboot_leaves_unjudgeable)
            || self.world.publish == Publish::NameBeforeContent
    }

    /// Whether the livelock and starvation questions mean something here:
    /// nothing can block for ever, and listings are fresh (a cached listing
    /// returned for ever is no schedule of a real cache, which expires).
    pub fn livelock_applies(&self) -> bool {
        !self.has_permanent_blockers() && self.world.listings == Listings::Fresh
    }

    /// Whether the contenders remember whether they changed the folder
    /// since their last listing began.
    fn tracks_changes(&self) -> bool {
        self.world.listings == Listings::CachedUntilOwnChange
    }

    /// Whether the contenders' listings remember what they read.
    fn tracks_reads(&self) -> bool {
        !self.name_order || self.world.listings != Listings::Fresh
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
    /// A bid name with no content yet (name-before-content world).
    pub const EMPTY: u8 = 3;
    /// A 1.0.2 bid: PID only, no token that orders.
    pub const LEGACY: u8 = 4;
}

/// One folder entry (a temporary or a bid).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    /// One of [`kind`].
    pub kind: u8,
    /// Rank of the token's age, for temporaries and bids of ours.
    pub age: u8,
}

/// Where a contender is in `Waiter::wait` / `Contender::attempt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Pc {
    /// Not contending (never started, released, gave up, or crashed).
    #[default]
    Idle,
    /// Step 10: `check(me, false)`, listing one entry per step.
    List10,
    /// Step 10: removing, one per step, the entries the listing found stale.
    Remove10,
    /// Step 10 decided `join_queue` and to bid: next, publish the marker.
    JoinThenBid,
    /// Step 10 decided `join_queue` and not to bid: next, publish the
    /// marker, then return from the attempt.
    JoinThenReturn,
    /// Step 20: next, write the temporary (1.0.2: its bid, in place).
    WriteTemp,
    /// Step 20: next, rename the temporary into place (name-before-content
    /// world: write the content).
    Publish,
    /// Step 30: `check(me, true)`, with our bid out.
    List30,
    /// Step 30: removing the entries the listing found stale.
    Remove30,
    /// Step 30 said `Enter`: next, `leave_queue`. Counted as a holder (it
    /// holds without another check).
    LeaveQueue,
    /// Step 50: holding the lock.
    Held,
    /// Step 30 said `Withdraw` to a waiter not yet in the queue: next,
    /// publish its marker (so it keeps its place), then withdraw.
    JoinThenWithdraw,
    /// Step 40: next, withdraw our bid.
    Withdraw,
    /// `Contender::abandon`: next, withdraw our bid.
    AbandonBid,
    /// `Contender::abandon`: next, leave the queue.
    AbandonMarker,
}

/// `kept_since` of a contender: its bound on sitting on a bid.
pub mod keep {
    /// Not keeping a bid (`kept_since` is `None`).
    pub const NO: u8 = 0;
    /// Kept since a Keep, less than `KEEP_MAX` ago.
    pub const RUNNING: u8 = 1;
    /// Kept for `KEEP_MAX` or longer: `may_keep` is false.
    pub const PAST: u8 = 2;
}

/// The listing in progress, and what it found so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listing {
    /// The `decide::Tally` of the roles of the entries read, packed.
    pub tally: [u8; 5],
    /// Our own bid was listed (`own_present`).
    pub own: bool,
    /// 1.0.2 only: another live bid was listed.
    pub rival: bool,
    /// The listing has taken its first step.
    pub begun: bool,
    /// Name order: the name key ([`State::key`]) of the last entry read, or
    /// [`NONE`] at the start.
    pub cursor: u8,
    /// Entries read (bit per id), when the configuration tracks them
    /// (listings in any order, cached listings).
    pub read: u32,
    /// Any order: entries present when the listing began and not yet read;
    /// it cannot end before it has read them, unless they vanish.
    pub pending: u32,
    /// Entries judged `Role::Remove`, to be removed after the listing.
    pub remove: u32,
    /// Queue markers listed (bit per incarnation id), for `Class::Bid`'s
    /// `queued` (`scan::marker_ages`).
    pub markers: u16,
    /// Of which: kept (not removed) and older than us, whose hand-over
    /// clocks `tick_handover` keeps running.
    pub older: u16,
}

/// One contender slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Proc {
    /// The current incarnation runs (false: crashed, not restarted).
    pub alive: bool,
    /// Stopped for ever (SIGSTOP): alive, takes no more steps.
    pub stopped: bool,
    /// Incarnation number: each restart is a new process with a new PID.
    pub inc: u8,
    /// Program counter.
    pub pc: Pc,
    /// Rank of this contender's age, or [`NONE`].
    pub age: u8,
    /// `Contender::marker` is set (we published our queue marker).
    pub queued: bool,
    /// `kept_since`, one of [`keep`].
    pub keep: u8,
    /// At the top of the wait loop, between attempts: it may give up.
    pub between: bool,
    /// It changed the folder since its last listing began.
    pub changed: bool,
    /// It has made a fresh listing (cached-listing worlds).
    pub cached: bool,
    /// The listing in progress.
    pub list: Listing,
    /// `free_since`: older markers (bit per incarnation id) whose hand-over
    /// clock runs.
    pub clock: u16,
    /// Of which: the lock has been free for `HANDOVER` since (expired).
    pub late: u16,
    /// Cached-listing worlds: the entries its last fresh listing read.
    pub cache: u32,
}

/// Hashed a few words at a time (millions of states are hashed many times
/// each; hashing field by field dominated the run time). Every field is
/// hashed, so this agrees with the derived `Eq`.
impl std::hash::Hash for Proc {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let l = &self.list;
        let b = |v: bool| u64::from(v);
        h.write_u64(
            b(self.alive)
                | b(self.stopped) << 1
                | b(self.queued) << 2
                | b(self.between) << 3
                | b(self.changed) << 4
                | b(self.cached) << 5
                | b(l.own) << 6
                | b(l.rival) << 7
                | b(l.begun) << 8
                | u64::from(self.inc) << 16
                | (self.pc as u64) << 24
                | u64::from(self.age) << 32
                | u64::from(self.keep) << 40
                | u64::from(l.cursor) << 48,
        );
        let t = l.tally;
        h.write_u64(
            u64::from(t[0])
                | u64::from(t[1]) << 8
                | u64::from(t[2]) << 16
                | u64::from(t[3]) << 24
                | u64::from(t[4]) << 32
                | u64::from(l.markers) << 48,
        );
        h.write_u64(u64::from(l.read) | u64::from(l.pending) << 32);
        h.write_u64(u64::from(l.remove) | u64::from(self.cache) << 32);
        h.write_u64(u64::from(l.older) | u64::from(self.clock) << 16 | u64::from(self.late) << 32);
    }
}

impl Default for Proc {
    fn default() -> Proc {
        Proc {
            alive: false,
            stopped: false,
            inc: 0,
            pc: Pc::Idle,
            age: NONE,
            queued: false,
            keep: keep::NO,
            between: false,
            changed: false,
            cached: false,
            list: Listing {
                cursor: NONE,
                ..Listing::default()
            },
            clock: 0,
            late: 0,
            cache: 0,
        }
    }
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct State {
    /// Contender slots; only the first `n` are used.
    pub procs: [Proc; MAX_PROCS],
    /// The folder's temporaries and bids, by entry identity.
    pub dir: [Entry; NIDS],
    /// The folder's queue markers (`.wait`), by incarnation: age rank or
    /// [`NONE`]. Entry id `MARK + i` in listings and removals.
    pub marks: [u8; NIDS],
    /// Incarnations of an earlier boot whose entries nobody can judge.
    pub ghosts: u16,
    /// Crashes still allowed.
    pub crashes_left: u8,
    /// Stops still allowed.
    pub stops_left: u8,
    /// Reboots still allowed.
    pub reboots_left: u8,
    /// Contenders in use.
    pub n: u8,
    /// Listings in name order (copied from the configuration).
    pub name_order: bool,
}

/// Hashed a few words at a time, every field (agrees with `Eq`).
impl std::hash::Hash for State {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        for p in &self.procs[..self.n as usize] {
            p.hash(h);
        }
        let mut folder = [0u8; 3 * NIDS];
        for (i, e) in self.dir.iter().enumerate() {
            folder[3 * i] = e.kind;
            folder[3 * i + 1] = e.age;
            folder[3 * i + 2] = self.marks[i];
        }
        h.write(&folder);
        h.write_u64(
            u64::from(self.ghosts)
                | u64::from(self.crashes_left) << 16
                | u64::from(self.stops_left) << 24
                | u64::from(self.reboots_left) << 32
                | u64::from(self.n) << 40
                | u64::from(self.name_order) << 48,
        );
    }
}

/// One step, for traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Begins a session (`Contender::new`: takes an age), then step 10.
    Start,
    /// Reads one entry (by id) of a listing: name, content and verdict.
    Read(u8),
    /// Gets a cached (old) listing, every entry of it inspected at once.
    ReadCached,
    /// The listing ends (`readdir` returns no more entries).
    Finish,
    /// Removes an entry the listing judged stale, by its name.
    RemoveStale(u8),
    /// Publishes its queue marker (`join_queue`).
    JoinQueue,
    /// Writes its temporary bid (step 20); 1.0.2: writes its bid.
    WriteTemp,
    /// Renames the temporary into place.
    Publish,
    /// Name-before-content world: creates the bid's name, empty.
    WriteName,
    /// Name-before-content world: writes the bid's content.
    WriteContent,
    /// Deletes its queue marker before holding (`leave_queue`).
    LeaveQueue,
    /// Deletes its own bid (step 40).
    Withdraw,
    /// Deletes its own bid (step 60).
    Release,
    /// Gives up between attempts (timeout, cancel), `abandon` begins.
    GiveUp,
    /// `abandon`: deletes its bid.
    AbandonBid,
    /// `abandon`: deletes its queue marker.
    AbandonMarker,
    /// The process dies: its entries stay.
    Crash,
    /// The process is stopped for ever (SIGSTOP).
    Stop,
    /// Every process dies at once (the machine reboots); entries stay.
    Reboot,
    /// A new incarnation (new PID) starts in the slot.
    Restart,
}

/// Notes on a step: which nondeterministic answers it got.
pub mod note {
    /// The liveness probe could not tell (unjudgeable) for a live owner.
    pub const NOT_TOLD: u8 = 1;
    /// A marker's hand-over clock had run out (`HANDOVER` passed).
    pub const HANDOVER: u8 = 2;
    /// The contender's `KEEP_MAX` had passed (`may_keep` false).
    pub const KEEP_MAX: u8 = 4;
}

/// A step taken by one contender ([`NONE`] for the machine's reboot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Action {
    /// Slot.
    pub proc: u8,
    /// What it did.
    pub step: Step,
    /// Bits of [`note`].
    pub note: u8,
}

/// Letter of a slot in traces.
pub fn slot_name(p: usize) -> char {
    (b'A' + p as u8) as char
}

fn id_of(slot: usize, inc: u8) -> usize {
    slot * MAX_INC + inc as usize
}

/// Tallies are kept with every count saturated at this bound: a listing can
/// read any number of names (a rival that withdraws and bids again under a
/// new name while we list is counted again), and the counts must stay
/// finite. No decision of the rules tells a count above `slots + 1` from
/// `slots + 1` (they compare counts with 0 and with the slot count);
/// `tests/model.rs` checks that against `decide` for every mutant, so a rule
/// that looked further would fail there rather than be checked wrongly.
pub fn tally_cap(slots: u32) -> usize {
    slots as usize + 1
}

/// `t` with every count saturated at `cap`.
pub fn saturate(t: Tally, cap: usize) -> Tally {
    Tally {
        rivals: t.rivals.min(cap),
        older_rivals: t.older_rivals.min(cap),
        peers: t.peers.min(cap),
        older_peers: t.older_peers.min(cap),
        ahead: t.ahead.min(cap),
    }
}

fn pack(t: &Tally) -> [u8; 5] {
    let b = |v: usize| u8::try_from(v).expect("a tally count fits a byte");
    [
        b(t.rivals),
        b(t.older_rivals),
        b(t.peers),
        b(t.older_peers),
        b(t.ahead),
    ]
}

fn unpack(a: [u8; 5]) -> Tally {
    Tally {
        rivals: a[0].into(),
        older_rivals: a[1].into(),
        peers: a[2].into(),
        older_peers: a[3].into(),
        ahead: a[4].into(),
    }
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

/// Renames a set of incarnation ids.
fn perm_incs(bits: u16, perm: &Perm) -> u16 {
    perm_bits(u32::from(bits), perm) as u16
}

/// Contender classes of a configuration.
type Classes = Vec<(Flavor, bool, bool)>;

thread_local! {
    /// The symmetries of the configuration last reduced on this thread.
    // The initializer is const already; clippy 1.96 says otherwise when
    // checking for x86_64-pc-windows-gnu (the cross lane).
    #[allow(clippy::missing_const_for_thread_local)]
    static PERMS: std::cell::RefCell<(Classes, Vec<Perm>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
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

/// The judgement of an entry's owner, and whether it is stopped.
type Verdict = (Judged, bool);

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
            ghosts: 0,
            crashes_left: cfg.crashes,
            stops_left: cfg.stops,
            reboots_left: cfg.reboots,
            n: cfg.flavors.len() as u8,
            name_order: cfg.name_order,
        }
    }

    /// Whether slot `q`'s current incarnation has an entry in the folder.
    pub fn has_entries(&self, q: usize) -> bool {
        let id = id_of(q, self.procs[q].inc);
        self.dir[id].kind != kind::ABSENT || self.marks[id] != NONE
    }

    /// Whether contender `p` is in the critical section.
    pub fn holding(&self, p: usize) -> bool {
        let pr = &self.procs[p];
        pr.alive && matches!(pr.pc, Pc::Held | Pc::LeaveQueue)
    }

    /// Contenders in the critical section (alive, perhaps stopped, holding).
    pub fn holders(&self) -> usize {
        (0..self.n as usize).filter(|&p| self.holding(p)).count()
    }

    /// Whether the holders break the lock's promise: an exclusive (or
    /// 1.0.2) holder with anyone else, or more holders than slots.
    pub fn violates(&self, cfg: &Config) -> bool {
        let n = cfg.flavors.len();
        let h = self.holders();
        let exclusive = (0..n).any(|p| {
            self.holding(p)
                && (cfg.flavors[p] == Flavor::Legacy
                    || (cfg.slots == 1 && cfg.modes[p] == Mode::Exclusive))
        });
        (cfg.slots > 1 && h > cfg.slots as usize) || (h >= 2 && exclusive)
    }

    /// The verdict `reader` gets on the owner of incarnation `inc_id`, from
    /// an exact probe.
    fn verdict(&self, cfg: &Config, reader: usize, inc_id: usize) -> Verdict {
        let slot = inc_id / MAX_INC;
        if self.ghosts >> inc_id & 1 == 1 || cfg.foreign[slot] != cfg.foreign[reader] {
            return (Judged::Unjudgeable, false);
        }
        let o = &self.procs[slot];
        if o.alive && o.inc as usize == inc_id % MAX_INC {
            (Judged::Live, o.stopped)
        } else {
            (Judged::Stale, false)
        }
    }

    /// Whether incarnation `inc_id` is alive and not stopped.
    fn runs(&self, inc_id: usize) -> bool {
        let o = &self.procs[inc_id / MAX_INC];
        o.alive && !o.stopped && o.inc as usize == inc_id % MAX_INC
    }

    /// Every verdict the probe may give (with the notes to record).
    fn verdicts(&self, cfg: &Config, reader: usize, inc_id: usize) -> Vec<(Verdict, u8)> {
        let v = self.verdict(cfg, reader, inc_id);
        let mut out = vec![(v, 0)];
        if cfg.world.oracle_may_not_tell && v.0 == Judged::Live {
            out.push(((Judged::Unjudgeable, false), note::NOT_TOLD));
        }
        out
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

    /// The entries `p`'s code lists: 1.0.2 lists `*.json` only.
    fn listable_mask(&self, cfg: &Config, p: usize) -> u32 {
        let all = self.present_mask();
        if cfg.flavors[p] != Flavor::Legacy {
            return all;
        }
        let mut m = 0;
        for (i, e) in self.dir.iter().enumerate() {
            if matches!(e.kind, kind::BID | kind::EMPTY | kind::LEGACY) {
                m |= 1 << i;
            }
        }
        m & all
    }

    /// The position of entry `id` in name order: by the age in its name,
    /// then queue marker, temporary, bid; 1.0.2 bids, which have no token,
    /// after all ours. Depends on ages only, never on which slot owns the
    /// entry, so that renaming contenders maps the order onto itself.
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

    /// `Contender::me`: the contender as the rules see it.
    fn me(&self, cfg: &Config, p: usize) -> Me {
        let pr = &self.procs[p];
        Me {
            age: key(pr.age),
            token: key(pr.age),
            mode: cfg.modes[p],
            slots: cfg.slots,
            waiting: cfg.flavors[p] == Flavor::Ours,
            // `kept_since` changes only when a check ends, so during a
            // check it is what `me` saw when the check began.
            may_keep: pr.keep != keep::PAST,
        }
    }

    /// Whether entry `id` is named like `p`'s own current bid.
    fn is_own_bid(&self, cfg: &Config, p: usize, id: usize) -> bool {
        let pr = &self.procs[p];
        if id >= MARK || pr.pc != Pc::List30 {
            return false;
        }
        if cfg.world.fixed_names {
            id / MAX_INC == p && self.dir[id].kind != kind::TEMP
        } else {
            id == id_of(p, pr.inc)
        }
    }

    /// What a bid or temporary is to the rules (`Seen::entry`).
    fn class_of(&self, cfg: &Config, reader: usize, id: usize) -> Class {
        let e = self.dir[id];
        match e.kind {
            kind::TEMP => Class::Temp,
            kind::BID => Class::Bid {
                key: Some(key(e.age)),
                mode: cfg.modes[id / MAX_INC],
                slots: cfg.slots,
                legacy: false,
                queued: self.procs[reader].list.markers >> id & 1 == 1,
            },
            kind::EMPTY => Class::Unreadable,
            kind::LEGACY => Class::Bid {
                key: None,
                mode: Mode::Exclusive,
                slots: 1,
                legacy: true,
                queued: false,
            },
            k => unreachable!("entry kind {k}"),
        }
    }

    /// `decide::role`, which cannot fail here: every contender of a folder
    /// has the same slot count.
    fn role(cfg: &Config, me: &Me, e: &decide::Entry, rules: &Rules) -> Role {
        decide::role(me, e, rules)
            .unwrap_or_else(|m| panic!("slot mismatch ({} vs {}) in {cfg:?}", me.slots, m.theirs))
    }

    /// Whether the entries that are not queue markers would by themselves
    /// keep `p` out, as the shipped rules see them (what `status` reports as
    /// the entries a newcomer waits for: a live or unjudgeable conflicting
    /// bid, a full semaphore, an entry that is not a bid). `p`'s own
    /// entries do not count.
    pub fn legitimately_blocked(&self, cfg: &Config, p: usize) -> bool {
        let me = Me {
            age: decide::Key::MAX,
            token: decide::Key::MAX,
            mode: if cfg.flavors[p] == Flavor::Legacy {
                Mode::Exclusive
            } else {
                cfg.modes[p]
            },
            slots: cfg.slots,
            waiting: true,
            may_keep: true,
        };
        let mine = id_of(p, self.procs[p].inc);
        let mut t = Tally::default();
        for id in 0..NIDS {
            if self.dir[id].kind == kind::ABSENT || id == mine {
                continue;
            }
            let class = self.class_of(cfg, p, id);
            let judged = match class {
                Class::Unreadable => Judged::Live,
                _ => self.verdict(cfg, p, id).0,
            };
            let e = decide::Entry {
                class,
                judged,
                expired: false,
            };
            t.add(State::role(cfg, &me, &e, &Rules::REAL));
        }
        t.blocked(&me, &Rules::REAL)
    }

    /// Starts a check (`check(me, deciding)`): the listing is set up; its
    /// first step computes `me` (see [`State::listing_steps`]).
    fn begin(mut self, cfg: &Config, p: usize, pc: Pc, between: bool) -> State {
        let mask = if cfg.name_order {
            0
        } else {
            self.listable_mask(cfg, p)
        };
        let pr = &mut self.procs[p];
        pr.pc = pc;
        pr.between = between;
        pr.list = Listing {
            pending: mask,
            cursor: NONE,
            ..Listing::default()
        };
        self
    }

    /// Whether `p`'s `KEEP_MAX` may have passed by now (it runs since its
    /// Keep). With [`Timing::Prompt`], only while every other running
    /// contender is quiet: holding, idle, or asleep between attempts; time
    /// does not pass in the middle of anyone's attempt.
    fn keep_may_pass(&self, cfg: &Config, p: usize) -> bool {
        match cfg.timing {
            Timing::Any => return true,
            Timing::PromptKeepForever => return false,
            Timing::Prompt => {}
        }
        (0..self.n as usize).all(|q| {
            let o = &self.procs[q];
            q == p || !o.alive || o.stopped || self.holding(q) || o.pc == Pc::Idle || o.between
        })
    }

    /// Deletes entry `id` by its name. Temporaries and markers always have
    /// unique names; in the fixed-name world a bid's name is its slot's, so
    /// deleting it deletes whichever bid of that slot is there now.
    fn delete(&mut self, cfg: &Config, id: usize) {
        if id >= MARK {
            let inc = id - MARK;
            if self.marks[inc] == NONE {
                return;
            }
            self.marks[inc] = NONE;
            for q in self.procs.iter_mut() {
                let l = &mut q.list;
                l.pending &= !(1 << id);
                l.read &= !(1 << id);
                l.remove &= !(1 << id);
                l.older &= !(1 << inc);
                q.cache &= !(1 << id);
                // `free_since` is kept by name; the name is gone for good.
                q.clock &= !(1 << inc);
                q.late &= !(1 << inc);
            }
            return;
        }
        let fixed = cfg.world.fixed_names && self.dir[id].kind != kind::TEMP;
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
            self.forget_name(i, !fixed);
        }
    }

    /// Entry `id`'s name is gone: no listing can read it any more, and a new
    /// entry with the id has a new name. `removals`: a removal still planned
    /// for it can find nothing (unique names).
    fn forget_name(&mut self, id: usize, removals: bool) {
        for q in self.procs.iter_mut() {
            let l = &mut q.list;
            l.pending &= !(1 << id);
            l.read &= !(1 << id);
            if removals {
                l.remove &= !(1 << id);
            }
            q.cache &= !(1 << id);
        }
    }

    /// Ends `p`'s session: the contender is dropped.
    fn end_session(&mut self, p: usize) {
        let pr = &mut self.procs[p];
        *pr = Proc {
            alive: true,
            inc: pr.inc,
            cached: pr.cached,
            cache: pr.cache,
            changed: pr.changed,
            ..Proc::default()
        };
    }

    /// An attempt returned `Wait` or `Busy` (`has_bid`: with our bid still
    /// out, after a Keep): a waiter loops to its next attempt, a `try_lock`
    /// caller drops its contender (`abandon`).
    fn attempt_returns(&self, cfg: &Config, p: usize, has_bid: bool) -> Vec<(State, u8)> {
        let mut s = self.clone();
        match cfg.flavors[p] {
            Flavor::Ours => {
                s.reset_listing(p);
                let pc = if has_bid { Pc::List30 } else { Pc::List10 };
                vec![(s.begin(cfg, p, pc, true), 0)]
            }
            Flavor::Try | Flavor::Legacy => {
                s.abandon(p, has_bid);
                vec![(s, 0)]
            }
        }
    }

    /// `Contender::abandon`: withdraw the bid, then leave the queue.
    fn abandon(&mut self, p: usize, has_bid: bool) {
        self.reset_listing(p);
        let pr = &mut self.procs[p];
        if has_bid {
            pr.pc = Pc::AbandonBid;
        } else if pr.queued {
            pr.pc = Pc::AbandonMarker;
        } else {
            self.end_session(p);
        }
    }

    fn reset_listing(&mut self, p: usize) {
        self.procs[p].list = Listing {
            cursor: NONE,
            ..Listing::default()
        };
        self.procs[p].between = false;
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
            if p.list.cursor < LEGACY_KEY {
                p.list.cursor = 4 * f(p.list.cursor / 4) + p.list.cursor % 4;
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

    /// The ranks in use (bit per rank), with or without those of cursors.
    fn used_ranks_of(&self, cursors: bool) -> u64 {
        let mut used = 0u64;
        let mut add = |v: u8| {
            if v != NONE {
                used |= 1 << v
            }
        };
        for p in &self.procs {
            add(p.age);
            if cursors && p.list.cursor < LEGACY_KEY {
                add(p.list.cursor / 4);
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

    fn used_ranks(&self) -> u64 {
        self.used_ranks_of(true)
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
            let used = self.used_ranks_of(false);
            for p in self.procs.iter_mut() {
                if p.list.cursor >= LEGACY_KEY {
                    continue;
                }
                let a = p.list.cursor / 4;
                if used >> a & 1 == 1 {
                    continue;
                }
                let below = used & ((1u64 << a) - 1);
                p.list.cursor = if below == 0 {
                    NONE
                } else {
                    4 * (63 - below.leading_zeros() as u8) + 3
                };
            }
        }
        let used = self.used_ranks();
        self.map_ranks(&|v| (used & ((1u64 << v) - 1)).count_ones() as u8);
    }

    /// Renumbers ranks as every step does in configuration `cfg`.
    pub fn normalize_for(&mut self, cfg: &Config) {
        self.normalize(!cfg.any_age_order);
    }

    /// Every step contender `p` can take (all contenders if `only` is None),
    /// with the state it leads to. With `only`, the others are frozen and
    /// nothing crashes, stops, restarts, reboots or gives up.
    pub fn successors(&self, cfg: &Config, only: Option<usize>, out: &mut Vec<(Action, State)>) {
        out.clear();
        for p in 0..cfg.flavors.len() {
            if only.is_some_and(|o| o != p) {
                continue;
            }
            self.steps_of(cfg, p, only.is_some(), out);
        }
        if only.is_none() && self.reboots_left > 0 && self.procs.iter().any(|p| p.alive) {
            out.push((
                Action {
                    proc: NONE,
                    step: Step::Reboot,
                    note: 0,
                },
                self.rebooted(cfg),
            ));
        }
        let reduce = cfg.symmetry && only.is_none();
        PERMS.with(|cache| {
            let mut cache = cache.borrow_mut();
            let classes: Vec<_> = (0..cfg.flavors.len()).map(|p| cfg.class(p)).collect();
            if reduce && cache.0 != classes {
                *cache = (classes, symmetries(cfg));
            }
            for (_, s) in out.iter_mut() {
                s.normalize(!cfg.any_age_order);
                if reduce && !cache.1.is_empty() {
                    *s = s.canonical(&cache.1);
                }
            }
        });
    }

    /// Every process dies; with `reboot_leaves_unjudgeable` every entry of
    /// this boot becomes unjudgeable for ever.
    fn rebooted(&self, cfg: &Config) -> State {
        let mut s = self.clone();
        s.reboots_left -= 1;
        for p in 0..cfg.flavors.len() {
            let inc = s.procs[p].inc;
            if cfg.world.reboot_leaves_unjudgeable {
                for i in 0..=inc {
                    s.ghosts |= 1 << id_of(p, i);
                }
            }
            let pr = &mut s.procs[p];
            *pr = Proc {
                inc: pr.inc,
                cached: pr.cached,
                cache: pr.cache,
                ..Proc::default()
            };
        }
        s
    }

    /// The state with contender `p` renamed `perm[p]`: its slot, the ids of
    /// its entries (and so their names) and every reference to them.
    pub fn permuted(&self, perm: &Perm) -> State {
        let mut s = self.clone();
        for (p, pr) in self.procs.iter().enumerate() {
            let mut q = *pr;
            let l = &mut q.list;
            l.read = perm_bits(l.read, perm);
            l.pending = perm_bits(l.pending, perm);
            l.remove = perm_bits(l.remove, perm);
            l.markers = perm_incs(l.markers, perm);
            l.older = perm_incs(l.older, perm);
            q.clock = perm_incs(q.clock, perm);
            q.late = perm_incs(q.late, perm);
            q.cache = perm_bits(q.cache, perm);
            s.procs[perm[p] as usize] = q;
        }
        for id in 0..NIDS {
            let to = perm_id(id, perm);
            s.dir[to] = self.dir[id];
            s.marks[to] = self.marks[id];
        }
        s.ghosts = perm_incs(self.ghosts, perm);
        s
    }

    /// What can be said of slot `p` without naming any other slot: its
    /// record (references to others' entries reduced to counts) and its
    /// entries.
    fn signature(&self, p: usize) -> (Proc, [Entry; MAX_INC], [u8; MAX_INC], u16) {
        let mut q = self.procs[p];
        let l = &mut q.list;
        l.read = l.read.count_ones();
        l.pending = l.pending.count_ones();
        l.remove = l.remove.count_ones();
        l.markers = l.markers.count_ones() as u16;
        l.older = l.older.count_ones() as u16;
        q.clock = q.clock.count_ones() as u16;
        q.late = q.late.count_ones() as u16;
        q.cache = q.cache.count_ones();
        let mut dir = [Entry::default(); MAX_INC];
        let mut marks = [NONE; MAX_INC];
        for i in 0..MAX_INC {
            dir[i] = self.dir[p * MAX_INC + i];
            marks[i] = self.marks[p * MAX_INC + i];
        }
        let ghosts = (self.ghosts >> (p * MAX_INC)) & ((1 << MAX_INC) - 1);
        (q, dir, marks, ghosts)
    }

    /// One representative of the state's renamings under `perms` (all of
    /// them but the identity, closed under composition): slots of one class
    /// sorted by [`State::signature`]; where signatures tie, the least of
    /// all renamings. The same for every renaming of the state.
    pub fn canonical(&self, perms: &[Perm]) -> State {
        let n = self.n as usize;
        let sigs: Vec<_> = (0..n).map(|p| self.signature(p)).collect();
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
        let mut push = |step: Step, v: Vec<(State, u8)>| {
            for (s, note) in v {
                out.push((
                    Action {
                        proc: p as u8,
                        step,
                        note,
                    },
                    s,
                ));
            }
        };
        if !pr.alive {
            if !solo && (pr.inc as usize) + 1 < MAX_INC {
                let mut s = self.clone();
                let q = &mut s.procs[p];
                q.alive = true;
                q.inc += 1;
                push(Step::Restart, vec![(s, 0)]);
            }
            return;
        }
        if pr.stopped {
            return;
        }
        if !solo && self.crashes_left > 0 {
            let mut s = self.clone();
            s.crashes_left -= 1;
            s.procs[p] = Proc {
                inc: pr.inc,
                cached: pr.cached,
                cache: pr.cache,
                ..Proc::default()
            };
            push(Step::Crash, vec![(s, 0)]);
        }
        if !solo && self.stops_left > 0 && pr.pc != Pc::Idle {
            let mut s = self.clone();
            s.stops_left -= 1;
            s.procs[p].stopped = true;
            push(Step::Stop, vec![(s, 0)]);
        }
        let my = id_of(p, pr.inc);
        let flavor = cfg.flavors[p];
        match pr.pc {
            Pc::Idle => push(Step::Start, self.start(cfg, p)),
            Pc::List10 | Pc::List30 => {
                if !solo && cfg.give_up && flavor == Flavor::Ours && pr.between {
                    // The top of the wait loop: cancelled or timed out.
                    let mut s = self.clone();
                    s.abandon(p, pr.pc == Pc::List30);
                    push(Step::GiveUp, vec![(s, 0)]);
                }
                self.listing_steps(cfg, p, &mut push);
            }
            Pc::Remove10 | Pc::Remove30 => {
                // `remove_stale`, one entry per step, in a fixed order. A
                // planned removal whose name someone else removed first
                // finds nothing and changes nothing: it is dropped (see
                // `forget_name`), and if none is left this step decides.
                let mut s = self.clone();
                let left = pr.list.remove;
                let id = left.trailing_zeros() as usize;
                if left != 0 {
                    s.delete(cfg, id);
                    s.procs[p].list.remove &= !(1 << id);
                    s.procs[p].changed = cfg.tracks_changes();
                }
                let v = if s.procs[p].list.remove == 0 {
                    s.decide(cfg, p)
                } else {
                    vec![(s, 0)]
                };
                push(
                    Step::RemoveStale(if left != 0 { id as u8 } else { NONE }),
                    v,
                );
            }
            Pc::JoinThenBid | Pc::JoinThenReturn | Pc::JoinThenWithdraw => {
                let mut s = self.clone();
                s.marks[my] = pr.age;
                s.procs[p].queued = true;
                s.procs[p].changed = cfg.tracks_changes();
                let v = match pr.pc {
                    Pc::JoinThenBid => {
                        s.procs[p].pc = Pc::WriteTemp;
                        vec![(s, 0)]
                    }
                    Pc::JoinThenWithdraw => {
                        s.procs[p].pc = Pc::Withdraw;
                        vec![(s, 0)]
                    }
                    _ => s.attempt_returns(cfg, p, false),
                };
                push(Step::JoinQueue, v);
            }
            Pc::WriteTemp => {
                let mut s = self.clone();
                s.procs[p].changed = cfg.tracks_changes();
                let v = if flavor == Flavor::Legacy {
                    // 1.0.2 writes its bid in place, here as one step.
                    s.replace_slot_bids(cfg, p);
                    s.dir[my] = Entry {
                        kind: kind::LEGACY,
                        age: 0,
                    };
                    vec![(s.begin(cfg, p, Pc::List30, false), 0)]
                } else {
                    let k = match cfg.world.publish {
                        Publish::TempThenRename => kind::TEMP,
                        Publish::NameBeforeContent => kind::EMPTY,
                    };
                    s.dir[my] = Entry {
                        kind: k,
                        age: pr.age,
                    };
                    s.procs[p].pc = Pc::Publish;
                    vec![(s, 0)]
                };
                let step = match (flavor, cfg.world.publish) {
                    (Flavor::Legacy, _) | (_, Publish::TempThenRename) => Step::WriteTemp,
                    (_, Publish::NameBeforeContent) => Step::WriteName,
                };
                push(step, v);
            }
            Pc::Publish => {
                let mut s = self.clone();
                s.procs[p].changed = cfg.tracks_changes();
                let v = match (cfg.world.publish, s.dir[my].kind) {
                    (Publish::TempThenRename, kind::TEMP) => {
                        s.replace_slot_bids(cfg, p);
                        s.dir[my].kind = kind::BID;
                        // The temporary's name is gone; the bid's is new.
                        s.forget_name(my, true);
                        vec![(s.begin(cfg, p, Pc::List30, false), 0)]
                    }
                    (Publish::TempThenRename, _) => {
                        // The temporary was removed under us (only a wrong
                        // verdict does that): `bid` writes it again.
                        s.procs[p].pc = Pc::WriteTemp;
                        vec![(s, 0)]
                    }
                    (Publish::NameBeforeContent, k) => {
                        if k == kind::EMPTY {
                            s.dir[my].kind = kind::BID;
                        }
                        // Deleted meanwhile: the content goes to an
                        // unlinked file, and step 30 finds the bid gone.
                        vec![(s.begin(cfg, p, Pc::List30, false), 0)]
                    }
                };
                let step = match cfg.world.publish {
                    Publish::TempThenRename => Step::Publish,
                    Publish::NameBeforeContent => Step::WriteContent,
                };
                push(step, v);
            }
            Pc::LeaveQueue => {
                let mut s = self.clone();
                s.delete(cfg, MARK + my);
                let q = &mut s.procs[p];
                q.queued = false;
                q.changed = cfg.tracks_changes();
                q.pc = Pc::Held;
                push(Step::LeaveQueue, vec![(s, 0)]);
            }
            Pc::Withdraw => {
                let mut s = self.clone();
                s.delete(cfg, my);
                s.procs[p].changed = cfg.tracks_changes();
                let v = s.attempt_returns(cfg, p, false);
                push(Step::Withdraw, v);
            }
            Pc::Held => {
                let mut s = self.clone();
                s.delete(cfg, my);
                s.procs[p].changed = cfg.tracks_changes();
                s.end_session(p);
                push(Step::Release, vec![(s, 0)]);
            }
            Pc::AbandonBid => {
                let mut s = self.clone();
                s.delete(cfg, my);
                s.procs[p].changed = cfg.tracks_changes();
                if s.procs[p].queued {
                    s.procs[p].pc = Pc::AbandonMarker;
                } else {
                    s.end_session(p);
                }
                push(Step::AbandonBid, vec![(s, 0)]);
            }
            Pc::AbandonMarker => {
                let mut s = self.clone();
                s.delete(cfg, MARK + my);
                s.procs[p].changed = cfg.tracks_changes();
                s.end_session(p);
                push(Step::AbandonMarker, vec![(s, 0)]);
            }
        }
    }

    /// In the fixed-name world, publishing replaces whichever bid of the
    /// slot has the name (an earlier incarnation's).
    fn replace_slot_bids(&mut self, cfg: &Config, p: usize) {
        if !cfg.world.fixed_names {
            return;
        }
        let my = id_of(p, self.procs[p].inc);
        for i in 0..MAX_INC {
            let other = id_of(p, i as u8);
            if other != my && self.dir[other].kind != kind::TEMP {
                self.delete(cfg, other);
            }
        }
    }

    /// `Contender::new` and the first attempt: the age token is "now": the
    /// youngest, or (clocks may step back) any place among the ages in use.
    fn start(&self, cfg: &Config, p: usize) -> Vec<(State, u8)> {
        let mut base = self.clone();
        base.normalize(!cfg.any_age_order);
        let existing = base.used_ranks().count_ones() as u8;
        let places: Vec<u8> = if cfg.flavors[p] == Flavor::Legacy {
            vec![NONE]
        } else if cfg.any_age_order {
            (0..=existing).collect()
        } else {
            vec![existing]
        };
        let my = id_of(p, self.procs[p].inc);
        let mut out = Vec::new();
        for j in places {
            let mut s = base.clone();
            if j != NONE {
                s.map_ranks(&|v| 2 * v + 1);
                s.procs[p].age = 2 * j;
            }
            // A new session: a marker of ours listed by others belonged to
            // an earlier one, and cannot make our next bid `queued`.
            for q in s.procs.iter_mut() {
                q.list.markers &= !(1 << my);
            }
            out.push((s.begin(cfg, p, Pc::List10, false), 0));
        }
        out
    }

    /// The steps of a listing in progress: read one more entry, end it, or
    /// (cached worlds, as its first step) get the cached listing.
    ///
    /// The first step of a listing is where `attempt` computes `me`, and
    /// with it `may_keep`: false once `KEEP_MAX` has passed since a Keep (a
    /// nondeterministic event, possible only while a Keep's clock runs).
    fn listing_steps(&self, cfg: &Config, p: usize, push: &mut impl FnMut(Step, Vec<(State, u8)>)) {
        let pr = self.procs[p];
        if !pr.list.begun && pr.keep == keep::RUNNING && self.keep_may_pass(cfg, p) {
            let mut late = self.clone();
            late.procs[p].keep = keep::PAST;
            self.listing_steps_from(cfg, p, push);
            late.listing_steps_from(cfg, p, &mut |step, v: Vec<(State, u8)>| {
                push(
                    step,
                    v.into_iter()
                        .map(|(s, n)| (s, n | note::KEEP_MAX))
                        .collect(),
                )
            });
        } else {
            self.listing_steps_from(cfg, p, push);
        }
    }

    fn listing_steps_from(
        &self,
        cfg: &Config,
        p: usize,
        push: &mut impl FnMut(Step, Vec<(State, u8)>),
    ) {
        let pr = self.procs[p];
        let listable = self.listable_mask(cfg, p);
        let readable = if cfg.name_order {
            // The entries after the cursor; only the first is next.
            let after = |id: usize| pr.list.cursor == NONE || self.key(id) > pr.list.cursor;
            (0..32)
                .filter(|&id| listable >> id & 1 == 1 && after(id))
                .min_by_key(|&id| self.key(id))
                .map_or(0, |id| 1u32 << id)
        } else {
            listable & !pr.list.read
        };
        for id in 0..32 {
            if readable >> id & 1 == 1 {
                push(Step::Read(id as u8), self.read(cfg, p, id));
            }
        }
        let done = if cfg.name_order {
            readable == 0
        } else {
            listable & pr.list.pending == 0
        };
        if done {
            let mut s = self.clone();
            s.first_step(p);
            let fresh = cfg.world.listings != Listings::Fresh;
            push(Step::Finish, s.finish(cfg, p, fresh));
        }
        let may_cache = match cfg.world.listings {
            Listings::Fresh => false,
            Listings::Cached => pr.cached,
            Listings::CachedUntilOwnChange => pr.cached && !pr.changed,
        };
        if may_cache && !pr.list.begun && cfg.flavors[p] != Flavor::Legacy {
            push(Step::ReadCached, self.read_cached(cfg, p));
        }
    }

    fn first_step(&mut self, p: usize) {
        let q = &mut self.procs[p];
        q.list.begun = true;
        q.between = false;
        q.changed = false;
    }

    /// A cached listing: the entries of the last fresh listing that are
    /// still there under their names, and our own bid, each inspected now.
    fn read_cached(&self, cfg: &Config, p: usize) -> Vec<(State, u8)> {
        let pr = self.procs[p];
        let mut states = vec![(self.clone(), 0u8)];
        for id in 0..32 {
            if (pr.cache & self.present_mask()) >> id & 1 == 0 {
                continue;
            }
            states = states
                .into_iter()
                .flat_map(|(s, n)| s.read(cfg, p, id).into_iter().map(move |(t, m)| (t, n | m)))
                .collect();
        }
        let mut out = Vec::new();
        for (mut s, n) in states {
            if (0..NIDS).any(|id| s.dir[id].kind != kind::ABSENT && s.is_own_bid(cfg, p, id)) {
                s.procs[p].list.own = true;
            }
            for (t, m) in s.finish(cfg, p, false) {
                out.push((t, n | m));
            }
        }
        out
    }

    /// Reads entry `id` in `p`'s listing (`inspect`, then `decide::role` in
    /// `check`): every answer the world may give.
    fn read(&self, cfg: &Config, p: usize, id: usize) -> Vec<(State, u8)> {
        let pr = self.procs[p];
        let my = id_of(p, pr.inc);
        let mut s = self.clone();
        s.first_step(p);
        let name_key = self.key(id);
        {
            let l = &mut s.procs[p].list;
            l.pending &= !(1 << id);
            if cfg.tracks_reads() {
                l.read |= 1 << id;
            }
            if cfg.name_order {
                l.cursor = name_key;
            }
        }
        if cfg.flavors[p] == Flavor::Legacy {
            return vec![(s.read_legacy(cfg, p, id), 0)];
        }
        if id == MARK + my {
            // Our own marker: `check` skips it.
            return vec![(s, 0)];
        }
        if self.is_own_bid(cfg, p, id) {
            s.procs[p].list.own = true;
            return vec![(s, 0)];
        }
        let me = self.me(cfg, p);
        let inc_id = if id >= MARK { id - MARK } else { id };
        let class = if id >= MARK {
            s.procs[p].list.markers |= 1 << inc_id;
            Class::Marker {
                key: key(self.marks[inc_id]),
            }
        } else {
            self.class_of(cfg, p, id)
        };
        let verdicts = match class {
            // `scan::inspect`: an entry named like a bid that is not one is
            // judged live (nobody to judge).
            Class::Unreadable => vec![((Judged::Live, false), 0)],
            _ => self.verdicts(cfg, p, inc_id),
        };
        let mut out = Vec::new();
        for ((judged, stopped), n) in verdicts {
            // `check`: a marker whose waiter is stopped has lost its turn;
            // one whose hand-over clock has run may have (time passes
            // nondeterministically while the clock runs).
            let mut expiries = vec![(false, 0)];
            if id >= MARK {
                if stopped || pr.late >> inc_id & 1 == 1 {
                    expiries = vec![(true, 0)];
                } else if pr.clock >> inc_id & 1 == 1
                    && (cfg.timing == Timing::Any || !self.runs(inc_id))
                {
                    expiries.push((true, note::HANDOVER));
                }
            }
            for (expired, m) in expiries {
                let mut t = s.clone();
                if m == note::HANDOVER {
                    t.procs[p].late |= 1 << inc_id;
                }
                let e = decide::Entry {
                    class,
                    judged,
                    expired,
                };
                let role = State::role(cfg, &me, &e, &cfg.rules);
                let l = &mut t.procs[p].list;
                if role == Role::Remove {
                    l.remove |= 1 << id;
                } else {
                    let mut tally = unpack(l.tally);
                    tally.add(role);
                    l.tally = pack(&saturate(tally, tally_cap(cfg.slots)));
                    if id >= MARK && key(self.marks[inc_id]) < me.age {
                        l.older |= 1 << inc_id;
                    }
                }
                out.push((t, n | m));
            }
        }
        out
    }

    /// 1.0.2 reads a `*.json` entry: its own bid; another bid of a live
    /// process is a rival, of a dead one is removed; junk is a rival.
    fn read_legacy(mut self, cfg: &Config, p: usize, id: usize) -> State {
        let my = id_of(p, self.procs[p].inc);
        let own = self.procs[p].pc == Pc::List30
            && if cfg.world.fixed_names {
                id / MAX_INC == p
            } else {
                id == my
            };
        let slot = id / MAX_INC;
        let o = self.procs[slot];
        let alive = o.alive && o.inc as usize == id % MAX_INC;
        let l = &mut self.procs[p].list;
        if own {
            l.own = true;
        } else if self.dir[id].kind == kind::EMPTY || alive {
            l.rival = true;
        } else {
            l.remove |= 1 << id;
        }
        self
    }

    /// The listing has ended: remember it (cached worlds), then remove what
    /// it found stale, or decide at once.
    fn finish(&mut self, cfg: &Config, p: usize, fresh: bool) -> Vec<(State, u8)> {
        let my = id_of(p, self.procs[p].inc);
        let q = &mut self.procs[p];
        if fresh {
            q.cache = q.list.read & !(1 << my) & !(1 << (MARK + my));
            q.cached = true;
        }
        if q.list.remove != 0 {
            q.pc = match q.pc {
                Pc::List10 => Pc::Remove10,
                _ => Pc::Remove30,
            };
            return vec![(self.clone(), 0)];
        }
        self.decide(cfg, p)
    }

    /// `tick_handover`: the clocks of the older markers just listed run on
    /// while the lock is free, and all stop while it is held.
    ///
    /// With prompt timing the clocks of running owners' markers cannot run
    /// out, so they are not kept (a clock then starts at the first free
    /// check after its owner stopped running).
    fn tick_handover(&mut self, cfg: &Config, p: usize, blocked: bool) {
        let mut older = self.procs[p].list.older;
        if cfg.timing != Timing::Any {
            for i in 0..NIDS {
                if self.runs(i) {
                    older &= !(1 << i);
                }
            }
        }
        let q = &mut self.procs[p];
        if blocked {
            q.clock = 0;
            q.late = 0;
        } else {
            q.clock = older;
            q.late &= older;
        }
    }

    /// The end of `check` and the decision of `attempt` that follows it.
    fn decide(&mut self, cfg: &Config, p: usize) -> Vec<(State, u8)> {
        let pr = self.procs[p];
        let flavor = cfg.flavors[p];
        let mut s = self.clone();
        let after10 = matches!(pr.pc, Pc::List10 | Pc::Remove10);
        if flavor == Flavor::Legacy {
            let (rival, own) = (pr.list.rival, pr.list.own);
            s.reset_listing(p);
            if (after10 && rival) || (!after10 && !own) {
                s.end_session(p);
            } else {
                s.procs[p].pc = match (after10, rival) {
                    (true, _) => Pc::WriteTemp,
                    (false, true) => Pc::Withdraw,
                    (false, false) => Pc::Held,
                };
            }
            return vec![(s, 0)];
        }
        let me = self.me(cfg, p);
        let tally = unpack(pr.list.tally);
        let rules = &cfg.rules;
        let blocked = tally.blocked(&me, rules);
        s.tick_handover(cfg, p, blocked);
        let own = pr.list.own;
        s.reset_listing(p);
        if after10 {
            if !blocked {
                s.procs[p].keep = keep::NO;
            }
            let d = decide::after_check(&me, &tally, rules);
            if d.join_queue && !pr.queued {
                s.procs[p].pc = if d.next == Next10::Bid {
                    Pc::JoinThenBid
                } else {
                    Pc::JoinThenReturn
                };
                return vec![(s, 0)];
            }
            return match d.next {
                Next10::Bid => {
                    s.procs[p].pc = Pc::WriteTemp;
                    vec![(s, 0)]
                }
                Next10::Busy | Next10::Defer => s.attempt_returns(cfg, p, false),
            };
        }
        match decide::after_bid(&me, own, &tally, rules) {
            Next30::Enter => {
                let q = &mut s.procs[p];
                q.keep = keep::NO;
                q.pc = if q.queued { Pc::LeaveQueue } else { Pc::Held };
                vec![(s, 0)]
            }
            Next30::Keep => {
                let q = &mut s.procs[p];
                if q.keep == keep::NO {
                    q.keep = keep::RUNNING;
                }
                s.attempt_returns(cfg, p, true)
            }
            Next30::Withdraw => {
                // `protocol.rs`: a waiter joins the queue before withdrawing,
                // so younger contenders defer to it next time.
                s.procs[p].pc = if decide::join_before_withdraw(&me, rules) && !pr.queued {
                    Pc::JoinThenWithdraw
                } else {
                    Pc::Withdraw
                };
                vec![(s, 0)]
            }
            Next30::Lost => s.attempt_returns(cfg, p, false),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.proc == NONE {
            return write!(f, "the machine reboots: every process dies, entries stay");
        }
        let who = slot_name(self.proc as usize);
        match self.step {
            Step::Start => write!(f, "{who} starts (takes an age), step 10 listing"),
            Step::Read(id) => write!(f, "{who} lists {}", id_name(id)),
            Step::ReadCached => write!(f, "{who} gets a cached (old) listing"),
            Step::Finish => write!(f, "{who} ends its listing and decides"),
            Step::RemoveStale(NONE) => write!(f, "{who} finds its stale entries gone, decides"),
            Step::RemoveStale(id) => write!(f, "{who} removes {} as stale", id_name(id)),
            Step::JoinQueue => write!(f, "{who} publishes its queue marker"),
            Step::WriteTemp => write!(
                f,
                "{who} writes its temporary bid (step 20; 1.0.2: its bid)"
            ),
            Step::Publish => write!(f, "{who} renames its temporary into place"),
            Step::WriteName => write!(f, "{who} creates its bid's name, empty (step 20)"),
            Step::WriteContent => write!(f, "{who} writes its bid's content"),
            Step::LeaveQueue => write!(f, "{who} deletes its queue marker and holds"),
            Step::Withdraw => write!(f, "{who} withdraws its bid (step 40)"),
            Step::Release => write!(f, "{who} releases: deletes its bid (step 60)"),
            Step::GiveUp => write!(f, "{who} gives up waiting"),
            Step::AbandonBid => write!(f, "{who} abandons: deletes its bid"),
            Step::AbandonMarker => write!(f, "{who} abandons: deletes its marker"),
            Step::Crash => write!(f, "{who} crashes, leaving its entries"),
            Step::Stop => write!(f, "{who} is stopped for ever (SIGSTOP)"),
            Step::Reboot => write!(f, "reboot"),
            Step::Restart => write!(f, "{who} restarts as a new process (new PID)"),
        }?;
        if self.note & note::NOT_TOLD != 0 {
            write!(f, " [probe: cannot tell, for a live owner]")?;
        }
        if self.note & note::HANDOVER != 0 {
            write!(f, " [HANDOVER has passed: the marker lost its turn]")?;
        }
        if self.note & note::KEEP_MAX != 0 {
            write!(f, " [KEEP_MAX has passed: may_keep is false]")?;
        }
        Ok(())
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "folder [")?;
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let r = if first { Ok(()) } else { write!(f, ", ") };
            first = false;
            r
        };
        for (i, e) in self.dir.iter().enumerate() {
            let k = match e.kind {
                kind::ABSENT => continue,
                kind::TEMP => "temp",
                kind::BID => "bid",
                kind::EMPTY => "empty-bid",
                _ => "1.0.2-bid",
            };
            sep(f)?;
            write!(f, "{} {k}", id_name(i as u8))?;
            if e.kind != kind::LEGACY {
                write!(f, " age{}", e.age)?;
            }
            if self.ghosts >> i & 1 == 1 {
                write!(f, " (old boot)")?;
            }
        }
        for (i, m) in self.marks.iter().enumerate() {
            if *m != NONE {
                sep(f)?;
                write!(f, "{}.wait age{m}", id_name(i as u8))?;
                if self.ghosts >> i & 1 == 1 {
                    write!(f, " (old boot)")?;
                }
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
            if p.stopped {
                write!(f, "(stopped)")?;
            }
            if p.age != NONE {
                write!(f, " age{}", p.age)?;
            }
        }
        Ok(())
    }
}
