//! What a lock folder holds, told truthfully: every entry with its state
//! and the part it plays (holder, waiter, neither). `admin.rs` builds the
//! folder's status and the administrative operations on these.

use crate::bid::{BidRecord, Mode};
use crate::identity::{Owner, StaleReason, Verdict};
use crate::protocol::HANDOVER;
use crate::scan::{Seen, What};
use crate::shared::Shared;
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state of one folder entry's writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Its process runs (or might: when in doubt, live).
    Live,
    /// Its process is provably gone; anyone may remove the entry.
    Stale(StaleReason),
    /// Nobody here can judge it (another machine, another PID namespace we
    /// cannot see into, another platform, an unknown format). It counts as
    /// live; the note says why it cannot be judged.
    Foreign,
    /// Not a bid: another name, a directory, a symlink, a FIFO, junk content,
    /// an oversized or unreadable file. Never touched; it blocks the lock like
    /// a live bid (the seed: "any files"), except filesystem artefacts.
    NotABid,
}

impl State {
    /// One of each state (the stale one with any reason), for tools that
    /// must name them all.
    pub const ALL: [State; 4] = [
        State::Live,
        State::Stale(StaleReason::Gone),
        State::Foreign,
        State::NotABid,
    ];

    /// Whether an entry in this state can keep others out.
    pub fn blocks(&self) -> bool {
        !matches!(self, State::Stale(_))
    }

    /// Short lowercase name: `live`, `stale`, `foreign`, `not-a-bid`.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Live => "live",
            State::Stale(_) => "stale",
            State::Foreign => "foreign",
            State::NotABid => "not-a-bid",
        }
    }
}

/// What kind of entry it is, by name and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// A bid in this crate's format.
    Bid,
    /// A bid of lockfolder 1.x (`PID` and `CREATED` only).
    LegacyBid,
    /// A bid still being written (`.lockfolder-*.tmp`); never a rival.
    Temporary,
    /// A waiting contender's place in the queue (`.lockfolder-*.wait`);
    /// never a rival.
    QueueMarker,
    /// `.lockfolder-fence-<N>`: the fencing token drawn by the last holders;
    /// never a rival.
    Fence,
    /// A filesystem's name for a file deleted while open (`.nfsXXXX`,
    /// `.fuse_hiddenXXXX`): a bid that is already gone; never a rival, never
    /// ours to remove (its filesystem does it when the file is closed).
    Artefact,
    /// Anything else.
    Other,
}

impl EntryKind {
    /// Every kind, for tools that must name them all.
    pub const ALL: [EntryKind; 7] = [
        EntryKind::Bid,
        EntryKind::LegacyBid,
        EntryKind::Temporary,
        EntryKind::QueueMarker,
        EntryKind::Artefact,
        EntryKind::Fence,
        EntryKind::Other,
    ];

    /// Short lowercase name: `bid`, `legacy-bid`, `temporary`,
    /// `queue-marker`, `artefact`, `fence`, `other`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryKind::Bid => "bid",
            EntryKind::LegacyBid => "legacy-bid",
            EntryKind::Temporary => "temporary",
            EntryKind::QueueMarker => "queue-marker",
            EntryKind::Artefact => "artefact",
            EntryKind::Fence => "fence",
            EntryKind::Other => "other",
        }
    }
}

/// The part an entry plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// A bid that holds the lock (or, for a semaphore or shared lock, one of
    /// its holders).
    Holder,
    /// A waiting contender: its queue marker, or the bid it keeps while it
    /// waits for its turn (first in line).
    Waiter,
    /// Neither: temporaries, stale entries, entries that are not bids.
    None,
}

impl Role {
    /// Every role, for tools that must name them all.
    pub const ALL: [Role; 3] = [Role::Holder, Role::Waiter, Role::None];

    /// `holder`, `waiter`, `none`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Holder => "holder",
            Role::Waiter => "waiter",
            Role::None => "none",
        }
    }
}

/// One entry of a lock folder, as `holders()` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// File name in the folder.
    pub name: OsString,
    /// Full path.
    pub path: PathBuf,
    /// Bid, legacy bid, temporary, queue marker, artefact or other.
    pub kind: EntryKind,
    /// Live, stale, foreign or not-a-bid.
    pub state: State,
    /// Holder, waiter or neither.
    pub role: Role,
    /// Its process is alive but stopped (SIGSTOP, Ctrl-Z, a debugger, a
    /// paused container): it may never move again.
    pub stopped: bool,
    /// Why the entry is what it is: why it is not a bid, why it cannot be
    /// judged, why it is stale, what a waiter is waiting for.
    pub note: Option<String>,
    /// The entry's process.
    pub pid: Option<u32>,
    /// The bid's host (absent in 1.0.2 bids).
    pub host: Option<String>,
    /// The platform the bid was written on (`linux`, `windows`, ...).
    pub os: Option<String>,
    /// When the bid's process started.
    pub started: Option<SystemTime>,
    /// When the bid was published.
    pub acquired: Option<SystemTime>,
    /// When its contender started waiting (from the token).
    pub waiting_since: Option<SystemTime>,
    /// Exclusive or shared.
    pub mode: Option<Mode>,
    /// Slot count recorded in the bid.
    pub slots: Option<u32>,
    /// A process group that keeps the bid alive after its owner exits.
    pub group: Option<u32>,
    /// The label given by the holder.
    pub label: Option<String>,
    /// The holder's command line, if recorded or readable here.
    pub command: Option<String>,
    /// The lease the bid is held under, if any.
    pub lease: Option<Duration>,
    /// When its lease was last renewed (the bid's modification time, by the
    /// file server's clock).
    pub renewed: Option<SystemTime>,
    /// A filesystem its owner accepted by explicit opt-in.
    pub allowed_fs: Option<String>,
}

fn from_ms(ms: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// When the owner started, from its platform's identity (display only).
/// Checked arithmetic throughout: the numbers come from someone else's file.
fn started(rec: &BidRecord) -> Option<SystemTime> {
    let at = |d: Duration| UNIX_EPOCH.checked_add(d);
    match &rec.owner {
        Some(Owner::Linux(o)) => at(Duration::from_secs(o.boot_time).checked_add(
            Duration::from_millis(o.start_ticks.saturating_mul(1000) / o.clk_tck.max(1)),
        )?),
        // FILETIME: 100 ns since 1601-01-01, which is 11644473600 s before
        // the Unix epoch.
        Some(Owner::Windows(o)) => (o.created / 10)
            .checked_sub(11_644_473_600_000_000)
            .and_then(|us| at(Duration::from_micros(us))),
        Some(Owner::Macos(o)) => at(Duration::from_micros(o.start_us)),
        Some(Owner::Freebsd(o)) => at(Duration::from_micros(
            o.boot_time_us.saturating_add(o.start_us),
        )),
        None => u64::try_from(rec.created)
            .ok()
            .and_then(|s| from_ms(s.saturating_mul(1000))),
    }
}

impl Holder {
    fn bare(shared: &Shared, name: &[u8], kind: EntryKind, state: State) -> Holder {
        Holder {
            name: os_name(name),
            path: shared.path_of(name),
            kind,
            state,
            role: Role::None,
            stopped: false,
            note: None,
            pid: None,
            host: None,
            os: None,
            started: None,
            acquired: None,
            waiting_since: None,
            mode: None,
            slots: None,
            group: None,
            label: None,
            command: None,
            lease: None,
            renewed: None,
            allowed_fs: None,
        }
    }

    /// Whether this entry keeps others from taking the lock (temporaries,
    /// queue markers, artefacts and stale bids do not).
    pub fn blocks(&self) -> bool {
        !matches!(
            self.kind,
            EntryKind::Temporary | EntryKind::QueueMarker | EntryKind::Artefact | EntryKind::Fence
        ) && self.state.blocks()
    }

    /// One line for people: "PID 42 on host (label) since 3.2s".
    pub fn describe(&self) -> String {
        let mut s = match (self.pid, &self.host, self.kind) {
            (Some(p), _, EntryKind::QueueMarker) => format!("the waiter PID {p}"),
            (Some(p), Some(h), _) => format!("PID {p} on {h}"),
            (Some(p), None, EntryKind::LegacyBid) => format!("PID {p} (lockfolder 1.x bid)"),
            (Some(p), None, _) => format!("PID {p}"),
            _ => format!(
                "entry {:?} ({})",
                self.name,
                self.note.as_deref().unwrap_or("not a bid")
            ),
        };
        if let Some(l) = &self.label {
            s.push_str(&format!(" [{l}]"));
        }
        if let Some(c) = &self.command {
            s.push_str(&format!(" `{c}`"));
        }
        if let Some(age) = self.acquired.and_then(|t| t.elapsed().ok()) {
            s.push_str(&format!(", bid {:.1}s ago", age.as_secs_f64()));
        }
        if self.stopped {
            s.push_str(" (stopped)");
        }
        if let (Some(l), Some(r)) = (self.lease, self.renewed) {
            let ago = r.elapsed().map_or(0.0, |d| d.as_secs_f64());
            s.push_str(&format!(
                ", lease {:.1}s renewed {ago:.1}s ago by this machine's clock",
                l.as_secs_f64()
            ));
        }
        if self.pid.is_some() {
            if let (State::Foreign | State::Stale(_), Some(n)) = (self.state, &self.note) {
                s.push_str(&format!(" ({n})"));
            }
        }
        s
    }
}

fn os_name(name: &[u8]) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(name).to_owned()
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(name).into_owned())
    }
}

fn state_of(v: &Verdict) -> (State, Option<String>) {
    match v {
        Verdict::Live { .. } => (State::Live, None),
        Verdict::Stale(r) => (State::Stale(*r), Some(r.to_string())),
        Verdict::Unjudgeable(why) => (State::Foreign, Some(why.to_string())),
    }
}

/// Describes one inspected entry. `markers`: ages of the listing's queue
/// markers (a bid whose owner also has a marker is a waiter's).
pub(crate) fn describe(shared: &Shared, s: &Seen, markers: &HashSet<[u8; 8]>) -> Holder {
    let (state, why) = state_of(&s.verdict);
    match &s.what {
        What::Bid { token, rec } => {
            let kind = if rec.is_native() {
                EntryKind::Bid
            } else {
                EntryKind::LegacyBid
            };
            let mut h = Holder::bare(shared, &s.name, kind, state);
            h.role = match state {
                State::Stale(_) => Role::None,
                _ if markers.contains(&token.age().0) => Role::Waiter,
                _ => Role::Holder,
            };
            h.stopped = s.stopped();
            h.note = why;
            h.pid = Some(rec.pid);
            h.host = rec.host.clone();
            h.os = rec
                .owner
                .as_ref()
                .map(|o| o.os().to_owned())
                .or_else(|| rec.unreadable_owner.clone());
            h.started = started(rec);
            h.acquired = rec.published_ms.and_then(from_ms);
            h.waiting_since = token.waiting_since_ms().and_then(from_ms);
            h.mode = Some(rec.mode());
            h.slots = Some(rec.slots());
            h.group = rec.group;
            h.label = rec.label.clone();
            h.command = rec.command.clone();
            if h.command.is_none() && state == State::Live {
                h.command = crate::liveness::command_line(rec.pid);
            }
            h.lease = rec.lease_ms.map(Duration::from_millis);
            if h.lease.is_some() {
                h.renewed = shared.folder.fresh_mtime(&s.name).ok();
            }
            h.allowed_fs = rec.allowed_fs.clone();
            if h.role == Role::Waiter && h.note.is_none() {
                h.note = Some("first in line: keeps its bid while it waits".to_owned());
            }
            h
        }
        What::Side(side) => {
            let kind = if side.queue {
                EntryKind::QueueMarker
            } else {
                EntryKind::Temporary
            };
            let mut h = Holder::bare(shared, &s.name, kind, state);
            h.pid = Some(side.pid);
            h.stopped = s.stopped();
            h.waiting_since = side.token.waiting_since_ms().and_then(from_ms);
            h.role = match (side.queue, state) {
                (true, State::Live | State::Foreign) => Role::Waiter,
                _ => Role::None,
            };
            h.note = Some(match (side.queue, state, &why) {
                (_, State::Stale(_), Some(w)) => w.clone(),
                (true, State::Foreign, Some(w)) => format!(
                    "waiting; {w}: it loses its turn once the lock has been free for {:?}",
                    HANDOVER
                ),
                (true, _, _) if h.stopped => {
                    "waiting, but stopped: it loses its turn to the waiters behind it".to_owned()
                }
                (true, _, _) => "waiting for the lock".to_owned(),
                (false, _, _) => "bid being written".to_owned(),
            });
            h
        }
        What::Unreadable { note } => {
            let mut h = Holder::bare(shared, &s.name, EntryKind::Other, State::NotABid);
            h.note = Some(format!("named like a bid, but {note}"));
            h
        }
        What::NotABid { note } => {
            let mut h = Holder::bare(shared, &s.name, EntryKind::Other, State::NotABid);
            h.note = Some(note.clone());
            h
        }
        What::Fence(n) => {
            let mut h = Holder::bare(shared, &s.name, EntryKind::Fence, State::Live);
            h.note = Some(format!("fencing token {n}, drawn by a holder"));
            h
        }
        What::Artefact => {
            let mut h = Holder::bare(shared, &s.name, EntryKind::Artefact, State::NotABid);
            h.note = Some(
                "a file deleted while still open (its filesystem removes it once closed); \
                 never a rival"
                    .to_owned(),
            );
            h
        }
    }
}
