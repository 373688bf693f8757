//! Multi-host takeover: one host is killed whole while it holds the lock,
//! and the others must take over once its lease has lapsed, not before.
//!
//! * The victim host's storm gets `--victim-after S --victim-request FILE`.
//!   After S seconds, the first of its workers to enter the critical section
//!   writes the victim record (`<shared>/victim`: host, PID, bid file name,
//!   lease, time), creates FILE (the bed's cue to SIGKILL the host's
//!   PID-namespace init, so every process of the host dies at once, as when
//!   a machine loses power) and holds the lock, with every detector held,
//!   until it dies. Its lease keeps being renewed until then. Its driver
//!   stops killing once the record exists, so the holder dies with its host
//!   and not before.
//! * The other hosts' storms get `--victim-killed FILE`: the bed's record of
//!   the kill (the guest's uptime in seconds, as `/proc/uptime` gives it).
//!   Once it appears, each reads the victim's bid's modification time
//!   through its own mount (its last renewal, by the file server's clock).
//!   At the end it reports `takeover_ms` (from the kill to the first
//!   acquisition by another host) and `lease_margin_ms` (that acquisition's
//!   time minus the last renewal + 1.05 × lease, the earliest moment the
//!   lease let anyone in). A negative margin is a failure: a host entered
//!   while the killed holder's lease still held. A takeover later than
//!   1.05 × lease + the wake limit is a wedge.
//!
//! The bed's clock and ours are one kernel's (namespaces of one guest), so
//! the uptime of the kill converts to Unix time through `/proc/uptime`
//! read now (10 ms resolution).

use crate::arena::{now_ns, Arena, Me};
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the victim wrote while holding the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VictimRecord {
    /// Its host name (the shared folder's subfolder of its storm).
    pub host: String,
    pub pid: u32,
    /// The file name of the bid that is the lock.
    pub bid: String,
    /// Its lease, if it held one.
    pub lease_ms: Option<u64>,
    /// When it wrote the record (it held the lock then), Unix ns.
    pub at_ns: u64,
}

impl VictimRecord {
    fn to_text(&self) -> String {
        format!(
            "host={}\npid={}\nbid={}\nlease_ms={}\nat_ns={}\n",
            self.host,
            self.pid,
            self.bid,
            self.lease_ms.map_or("none".to_owned(), |l| l.to_string()),
            self.at_ns
        )
    }

    /// Parses [`VictimRecord::to_text`]'s output.
    pub fn parse(text: &str) -> Option<VictimRecord> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(VictimRecord {
            host: get("host")?,
            pid: get("pid")?.parse().ok()?,
            bid: get("bid")?,
            lease_ms: get("lease_ms")?.parse().ok(),
            at_ns: get("at_ns")?.parse().ok()?,
        })
    }

    /// Reads the record of a shared arena, if there is one yet.
    pub fn read(arena: &Arena) -> Option<VictimRecord> {
        VictimRecord::parse(&fs::read_to_string(arena.victim_file()).ok()?)
    }
}

/// The victim's side: when to hold for good, and whom to ask for the kill.
#[derive(Debug, Clone)]
pub struct VictimPlan {
    /// From this moment (Unix ns) the next critical section is the last.
    pub at_ns: u64,
    /// Created to ask the bed to kill this whole host.
    pub request: PathBuf,
}

impl VictimPlan {
    /// Inside the critical section: if the time has come (and no other
    /// worker of this host took the part), write the record, ask for the
    /// kill and hold the lock until the host dies. Returns at once
    /// otherwise.
    pub fn hold_if_due(&self, arena: &Arena, me: &Me, bid: &Path) -> io::Result<()> {
        if now_ns() < self.at_ns {
            return Ok(());
        }
        let claim = arena.probe().join("victim.claim");
        match OpenOptions::new().write(true).create_new(true).open(&claim) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(e),
        }
        let rec = VictimRecord {
            host: me.host.as_str().to_owned(),
            pid: me.pid,
            bid: bid
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            lease_ms: crate::folder::lease_ms(),
            at_ns: now_ns(),
        };
        // Whole, or not at all: written aside, then renamed into place.
        let tmp = arena.tmp_dir().join("victim");
        fs::write(&tmp, rec.to_text())?;
        fs::rename(&tmp, arena.victim_file())?;
        fs::write(&self.request, b"kill\n")?;
        eprintln!(
            "lockfolder-storm: victim {} pid {} holds {} and asked for its host to be killed",
            rec.host, rec.pid, rec.bid
        );
        // The lease renewal threads keep running; only the kill ends this.
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// A survivor's view of the takeover, filled in while the storm runs.
#[derive(Debug, Default, Clone)]
pub struct TakeoverWatch {
    pub record: Option<VictimRecord>,
    /// When the bed killed the victim's host, Unix ns.
    pub killed_ns: Option<u64>,
    /// The victim's bid's last renewal (its modification time, read after
    /// the kill through our mount); `None` if it was gone already.
    pub renewed: Option<SystemTime>,
    /// Why `renewed` could not be read.
    pub renewed_error: Option<String>,
}

impl TakeoverWatch {
    /// Looks for the kill; once seen, reads the victim's bid's last
    /// renewal. Cheap when there is nothing new (one `stat`).
    pub fn poll(&mut self, arena: &Arena, killed_file: &Path, lock_dir: &Path) {
        if self.killed_ns.is_some() {
            return;
        }
        let Ok(text) = fs::read_to_string(killed_file) else {
            return;
        };
        let Some(killed_ns) = uptime_to_unix_ns(&text) else {
            return;
        };
        let Some(rec) = VictimRecord::read(arena) else {
            return;
        };
        match fresh_mtime(&lock_dir.join(&rec.bid)) {
            Ok(t) => self.renewed = Some(t),
            Err(e) => self.renewed_error = Some(e.to_string()),
        }
        self.record = Some(rec);
        self.killed_ns = Some(killed_ns);
    }
}

/// What the survivors found, for the report.
#[derive(Debug, Clone, Default)]
pub struct Takeover {
    pub victim: String,
    pub lease_ms: Option<u64>,
    /// From the kill to the first acquisition by another host.
    pub takeover: Option<Duration>,
    /// From the victim's last renewal to the kill.
    pub renewed_before_kill: Option<Duration>,
    /// First acquisition by another host minus (last renewal + 1.05 ×
    /// lease), in ms; negative: entered while the lease held.
    pub lease_margin_ms: Option<f64>,
}

/// The modification time of `path`, through a fresh open (a network
/// client revalidates its attributes on open).
pub fn fresh_mtime(path: &Path) -> io::Result<SystemTime> {
    fs::File::open(path)?.metadata()?.modified()
}

/// The Unix time (ns) of an uptime in seconds (the first word of `text`),
/// by the uptime and the clock now.
pub fn uptime_to_unix_ns(text: &str) -> Option<u64> {
    let then = first_number(text)?;
    let now = first_number(&fs::read_to_string("/proc/uptime").ok()?)?;
    convert(then, now, now_ns())
}

fn first_number(text: &str) -> Option<f64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// Uptime `then` as Unix ns, given that uptime `now` is Unix `now_ns`.
fn convert(then: f64, now: f64, now_ns: u64) -> Option<u64> {
    let ago = Duration::try_from_secs_f64((now - then).max(0.0)).ok()?;
    Some(now_ns.saturating_sub(ago.as_nanos() as u64))
}

/// Unix ns of a `SystemTime`.
pub fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips() {
        let r = VictimRecord {
            host: "host2".into(),
            pid: 42,
            bid: "0190-abc.json".into(),
            lease_ms: Some(2000),
            at_ns: 1_700_000_000_000_000_000,
        };
        assert_eq!(VictimRecord::parse(&r.to_text()), Some(r.clone()));
        let none = VictimRecord {
            lease_ms: None,
            ..r
        };
        assert_eq!(VictimRecord::parse(&none.to_text()), Some(none));
        assert_eq!(VictimRecord::parse("host=h\npid=x\n"), None);
    }

    #[test]
    fn uptimes_convert_to_unix_time() {
        let now = 1_700_000_000_000_000_000;
        assert_eq!(convert(90.5, 100.0, now), Some(now - 9_500_000_000));
        // An uptime in the future (a clock read out of order) is now.
        assert_eq!(convert(101.0, 100.0, now), Some(now));
        assert_eq!(first_number("12.34 56.78\n"), Some(12.34));
        assert_eq!(first_number("junk"), None);
    }
}
