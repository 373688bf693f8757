//! What `holders()` and `clean()` report about each entry of a lock folder.

use crate::bid::{BidRecord, Mode};
use crate::identity::StaleReason;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state of one folder entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// A bid whose process runs on this host (or might: when in doubt, live).
    Live,
    /// A bid (or temporary bid) whose process is provably gone.
    Stale(StaleReason),
    /// A bid from another host or PID namespace. Never judged, so it holds
    /// until its owner removes it (or a person does).
    Foreign,
    /// Not a bid: another name, a directory, a symlink, a FIFO, junk content,
    /// an oversized or unreadable file. Never touched; it blocks the lock like
    /// a live bid (the seed: "any files").
    NotABid,
}

impl State {
    /// Whether this entry keeps others from taking the lock.
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
    /// A bid of lockfolder 1.0.2 (`PID` and `CREATED` only).
    LegacyBid,
    /// A bid still being written (`.lockfolder-*.tmp`); never a rival.
    Temporary,
    /// A waiting contender's place in the queue (`.lockfolder-*.wait`);
    /// never a rival.
    QueueMarker,
    /// Anything else.
    Other,
}

impl EntryKind {
    /// Short lowercase name: `bid`, `legacy-bid`, `temporary`,
    /// `queue-marker`, `other`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryKind::Bid => "bid",
            EntryKind::LegacyBid => "legacy-bid",
            EntryKind::Temporary => "temporary",
            EntryKind::QueueMarker => "queue-marker",
            EntryKind::Other => "other",
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
    /// Bid, legacy bid, temporary or other.
    pub kind: EntryKind,
    /// Live, stale, foreign or not-a-bid.
    pub state: State,
    /// Why a not-a-bid entry is not a bid ("symlink", "invalid JSON", ...).
    pub note: Option<String>,
    /// The bid's process.
    pub pid: Option<u32>,
    /// The bid's host (absent in 1.0.2 bids).
    pub host: Option<String>,
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
    /// The label given by the holder.
    pub label: Option<String>,
    /// The holder's command line, if recorded or readable from `/proc`.
    pub command: Option<String>,
    /// Whether this is a bid of the `LockFolder` value (or guard) asking.
    pub own: bool,
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl Holder {
    pub(crate) fn new(name: OsString, path: PathBuf, kind: EntryKind, state: State) -> Holder {
        Holder {
            name,
            path,
            kind,
            state,
            note: None,
            pid: None,
            host: None,
            started: None,
            acquired: None,
            waiting_since: None,
            mode: None,
            slots: None,
            label: None,
            command: None,
            own: false,
        }
    }

    pub(crate) fn fill_from(&mut self, rec: &BidRecord, waiting_since_ms: Option<u64>) {
        self.pid = Some(rec.pid);
        self.host = rec.host.clone();
        self.started = match (rec.boot_time, rec.start_ticks, rec.clk_tck) {
            (Some(b), Some(t), Some(hz)) if hz > 0 => {
                Some(UNIX_EPOCH + Duration::from_secs(b) + Duration::from_millis(t * 1000 / hz))
            }
            _ => u64::try_from(rec.created)
                .ok()
                .map(|s| from_ms(s.saturating_mul(1000))),
        };
        self.acquired = rec.published_ms.map(from_ms);
        self.waiting_since = waiting_since_ms.map(from_ms);
        self.mode = Some(rec.mode());
        self.slots = Some(rec.slots());
        self.label = rec.label.clone();
        self.command = rec.command.clone();
    }

    /// Whether this entry keeps others from taking the lock (temporaries,
    /// queue markers and stale bids do not).
    pub fn blocks(&self) -> bool {
        !matches!(self.kind, EntryKind::Temporary | EntryKind::QueueMarker) && self.state.blocks()
    }

    /// One line for people: "PID 42 on host (label) since 3.2s".
    pub fn describe(&self) -> String {
        let mut s = match (self.pid, &self.host) {
            (Some(p), Some(h)) => format!("PID {p} on {h}"),
            (Some(p), None) => format!("PID {p} (lockfolder 1.x bid)"),
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
        if self.state == State::Foreign {
            s.push_str(" (foreign: never judged stale here)");
        }
        s
    }
}
