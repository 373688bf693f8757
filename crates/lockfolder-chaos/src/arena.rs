//! The arena: the lock folder plus the files the critical section uses to
//! catch an overlap without trusting the lock.
//!
//! ```text
//! <root>/lock/        the lock folder; nothing else is ever written here
//! <root>/marker       occupancy marker: "<pid> <start ticks> <since ns> <host>"
//! <root>/occupied     flock(2)ed by whoever is in the critical section
//! <root>/counter      read-modify-write counter, bumped once per acquisition
//! <root>/tmp/         half-written markers and counters (never in lock/)
//! <root>/log/<tag>    per acquisition: "<counter value> <unix ns> <pid> <cleared>",
//!                     cleared = 1 if a killed holder's marker was removed
//! <root>/overlaps/    one file per overlap seen, written the moment it is seen
//! <root>/errors/      one file per worker that failed
//! <root>/stop         present: workers finish their round and exit
//! ```
//!
//! With `storm --dirs A,B` the lock folder lives elsewhere (the same folder
//! seen through two mounts of a network filesystem) and `<root>/lock/` stays
//! empty: everything below is on the local folder the arena was made in, so
//! the detectors never depend on the network filesystem's consistency.
//!
//! Three detectors, independent of each other and of the lock:
//!
//! * **The occupancy flock**: inside the critical section a holder keeps an
//!   exclusive `flock(2)` on `occupied`, taken without waiting. The kernel
//!   drops it when the holder dies, before the holder can be a zombie, so
//!   failing to take it means a live process is inside: an overlap. It needs
//!   no PID, so it works across PID namespaces (the multi-host storm).
//! * **The marker** is created exclusively (a complete file is hard-linked
//!   to `marker`, which fails if it exists, so the marker is never seen
//!   half-written). Finding a marker whose owner is alive is an overlap;
//!   finding one whose owner is dead (killed inside its critical section) is
//!   expected, and the marker is removed after checking the owner is gone.
//!   A marker written on another host (UTS namespace) cannot be checked
//!   through our `/proc`; holding the occupancy flock proves its owner left
//!   the critical section by dying, so it is removed.
//! * **The counter** is read, incremented and replaced by rename, then the
//!   new value is appended to the worker's log. Two holders at once can read
//!   the same value: the same value then appears twice in the logs (a lost
//!   update). A kill between the rename and the append loses one log line,
//!   never duplicates one.

use crate::procfs;
use rustix::fs::{flock, FlockOperation};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (comparable between processes).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Sleeps a random 0..`max_us` microseconds half of the time, so that kills
/// land between every pair of steps.
pub fn jitter(max_us: u64) {
    if max_us > 0 && fastrand::bool() {
        std::thread::sleep(Duration::from_micros(fastrand::u64(0..max_us)));
    }
}

/// The process running a critical section.
#[derive(Debug, Clone, Copy)]
pub struct Me {
    pub pid: u32,
    pub start_ticks: u64,
    /// Our host name (UTS namespace): markers of other hosts cannot be
    /// checked through our `/proc`.
    pub host: HostName,
}

/// A host name, short enough to copy around (longer names are cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostName([u8; 64]);

impl HostName {
    fn new(name: &str) -> HostName {
        let mut b = [0u8; 64];
        // Spaces would split the marker's words.
        for (d, s) in b
            .iter_mut()
            .zip(name.bytes().filter(|c| c.is_ascii_graphic()))
        {
            *d = s;
        }
        HostName(b)
    }
    pub fn as_str(&self) -> &str {
        let n = self.0.iter().position(|&c| c == 0).unwrap_or(self.0.len());
        std::str::from_utf8(&self.0[..n]).unwrap_or("?")
    }
}

impl Me {
    pub fn current() -> io::Result<Me> {
        let host = fs::read_to_string("/proc/sys/kernel/hostname")?;
        Ok(Me {
            pid: std::process::id(),
            start_ticks: procfs::own_start_ticks()?,
            host: HostName::new(host.trim()),
        })
    }
}

/// One line of a worker log.
#[derive(Debug, Clone)]
pub struct Acquisition {
    pub tag: String,
    pub value: u64,
    pub at_ns: u64,
    pub pid: u32,
    /// Whether this holder removed the marker of a holder killed inside its
    /// critical section.
    pub cleared: bool,
}

#[derive(Debug, Clone)]
pub struct Arena {
    root: PathBuf,
    /// Where the marker, counter, occupancy file and overlap reports are:
    /// `root` itself, or, in a multi-host storm, a folder shared by the
    /// storms of every host, each with its own `root` below it.
    probe: PathBuf,
}

impl Arena {
    /// Creates the layout under `root` (which must exist).
    pub fn create(root: &Path) -> io::Result<Arena> {
        Arena::create_in(Arena::open(root))
    }

    /// A multi-host storm's arena: this host's own files in `probe/<host>`,
    /// the detectors in `probe`, shared with the other hosts' storms.
    pub fn create_shared(probe: &Path, host: &str) -> io::Result<Arena> {
        let root = probe.join(host);
        fs::create_dir_all(&root)?;
        Arena::create_in(Arena::open_shared(&root, probe))
    }

    /// A shared arena opened by a worker (see [`Arena::create_shared`]).
    pub fn open_shared(root: &Path, probe: &Path) -> Arena {
        Arena {
            root: root.to_path_buf(),
            probe: probe.to_path_buf(),
        }
    }

    /// Whether the detectors are shared with other hosts' storms.
    pub fn is_shared(&self) -> bool {
        self.root != self.probe
    }

    pub fn probe(&self) -> &Path {
        &self.probe
    }

    fn create_in(a: Arena) -> io::Result<Arena> {
        for d in [
            a.lock_dir(),
            a.tmp_dir(),
            a.log_dir(),
            a.overlap_dir(),
            a.error_dir(),
        ] {
            fs::create_dir_all(d)?;
        }
        Ok(a)
    }

    pub fn open(root: &Path) -> Arena {
        Arena {
            root: root.to_path_buf(),
            probe: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn lock_dir(&self) -> PathBuf {
        self.root.join("lock")
    }
    pub fn marker(&self) -> PathBuf {
        self.probe.join("marker")
    }
    pub fn counter(&self) -> PathBuf {
        self.probe.join("counter")
    }
    pub fn occupied(&self) -> PathBuf {
        self.probe.join("occupied")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }
    pub fn overlap_dir(&self) -> PathBuf {
        self.probe.join("overlaps")
    }
    pub fn error_dir(&self) -> PathBuf {
        self.root.join("errors")
    }
    pub fn stop_file(&self) -> PathBuf {
        self.root.join("stop")
    }
    pub fn log_path(&self, tag: &str) -> PathBuf {
        self.log_dir().join(format!("{tag}.log"))
    }

    pub fn stop_requested(&self) -> bool {
        self.stop_file().exists()
    }

    pub fn open_log(&self, tag: &str) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(tag))
    }

    /// Writes one file describing an overlap, at once, so that it survives a
    /// kill a moment later. Also printed to stderr.
    pub fn record_overlap(&self, me: &Me, what: &str) {
        let text = format!(
            "overlap seen by pid {} (start ticks {}) at {} ns: {what}\n",
            me.pid,
            me.start_ticks,
            now_ns()
        );
        eprint!("lockfolder-storm: {text}");
        let name = format!("{}-{}-{}", me.pid, now_ns(), fastrand::u32(..));
        let _ = fs::write(self.overlap_dir().join(name), text);
    }

    /// Writes one file describing a worker failure.
    pub fn record_error(&self, tag: &str, what: &str) {
        eprintln!("lockfolder-storm: worker {tag}: {what}");
        let name = format!("{tag}-{}-{}", std::process::id(), fastrand::u32(..));
        let _ = fs::write(self.error_dir().join(name), format!("{what}\n"));
    }

    /// Every overlap report, in no particular order.
    pub fn overlaps(&self) -> io::Result<Vec<String>> {
        read_all(&self.overlap_dir())
    }

    /// Every worker failure report.
    pub fn errors(&self) -> io::Result<Vec<String>> {
        read_all(&self.error_dir())
    }

    /// Every acquisition logged by any worker of this storm.
    pub fn acquisitions(&self) -> io::Result<Vec<Acquisition>> {
        read_logs(&self.log_dir())
    }

    /// Every acquisition logged by any worker of every storm sharing the
    /// detectors (the same as [`Arena::acquisitions`] unless shared); tags
    /// are prefixed with the host folder's name.
    pub fn all_acquisitions(&self) -> io::Result<Vec<Acquisition>> {
        if !self.is_shared() {
            return self.acquisitions();
        }
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.probe)? {
            let entry = entry?;
            let log = entry.path().join("log");
            if log.is_dir() {
                let host = entry.file_name().to_string_lossy().into_owned();
                for mut a in read_logs(&log)? {
                    a.tag = format!("{host}/{}", a.tag);
                    out.push(a);
                }
            }
        }
        Ok(out)
    }
}

fn read_logs(dir: &Path) -> io::Result<Vec<Acquisition>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let tag = name.trim_end_matches(".log").to_owned();
        for line in fs::read_to_string(entry.path())?.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            // A line is written by one write(2); anything else would be
            // a bug here, so it is reported rather than skipped.
            let parsed = (|| {
                Some(Acquisition {
                    tag: tag.clone(),
                    value: f.first()?.parse().ok()?,
                    at_ns: f.get(1)?.parse().ok()?,
                    pid: f.get(2)?.parse().ok()?,
                    cleared: *f.get(3)? == "1",
                })
            })();
            out.push(parsed.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad log line in {name}: {line:?}"),
                )
            })?);
        }
    }
    Ok(out)
}

impl Arena {
    /// The counter's final value.
    pub fn counter_value(&self) -> io::Result<u64> {
        read_counter(&self.counter())
    }

    /// The critical section, run while the lock is held.
    pub fn critical_section(&self, me: &Me, log: &mut File, jitter_us: u64) -> io::Result<()> {
        let occupancy = self.enter_occupancy(me)?;
        let (mine, cleared) = self.enter_marker(me)?;
        jitter(jitter_us);
        let value = self.bump_counter(me)?;
        let line = format!("{value} {} {} {}\n", now_ns(), me.pid, u8::from(cleared));
        // One write(2) on an O_APPEND file: a kill cannot split the line.
        log.write_all(line.as_bytes())?;
        // The brief's "a little work": 0-2 ms inside the lock.
        std::thread::sleep(Duration::from_micros(fastrand::u64(0..=2000)));
        jitter(jitter_us);
        if let Some(mine) = mine {
            self.leave_marker(me, &mine)?;
        }
        // Closing the file drops the flock, after the marker is gone.
        drop(occupancy);
        Ok(())
    }

    /// Takes the occupancy flock without waiting. Returns whether we got it
    /// (if not, the overlap is recorded) and the file that keeps it.
    fn enter_occupancy(&self, me: &Me) -> io::Result<(bool, OwnedFd)> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.occupied())?;
        let fd = OwnedFd::from(file);
        match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok((true, fd)),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                self.record_overlap(
                    me,
                    "the occupancy flock was held by a live process on entering",
                );
                Ok((false, fd))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the marker exclusively. Returns our marker's content (None if
    /// a live owner's marker was there: an overlap, already recorded) and
    /// whether a dead holder's marker was cleared.
    fn enter_marker(&self, me: &Me) -> io::Result<(Option<String>, bool)> {
        let content = format!(
            "{} {} {} {}\n",
            me.pid,
            me.start_ticks,
            now_ns(),
            me.host.as_str()
        );
        let tmp = self.tmp_dir().join(format!("{}.marker", me.pid));
        let mut cleared = false;
        for _ in 0..5 {
            fs::write(&tmp, &content)?;
            match fs::hard_link(&tmp, self.marker()) {
                Ok(()) => {
                    let _ = fs::remove_file(&tmp);
                    return Ok((Some(content), cleared));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            let found = match fs::read_to_string(self.marker()) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Someone removed it between our link and our read: only
                    // a second holder could.
                    self.record_overlap(me, "the marker vanished while we held the lock");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let words: Vec<&str> = found.split_ascii_whitespace().collect();
            let owner: Vec<u64> = words.iter().filter_map(|w| w.parse().ok()).collect();
            let (Some(&pid), Some(&ticks)) = (owner.first(), owner.get(1)) else {
                self.record_overlap(me, &format!("unreadable marker {found:?}"));
                let _ = fs::remove_file(&tmp);
                return Ok((None, cleared));
            };
            // Another host's PIDs mean nothing here; we hold the occupancy
            // flock, so its owner died inside the critical section.
            let same_host = words.get(3).is_none_or(|h| *h == me.host.as_str());
            if same_host && procfs::is_alive(pid as u32, ticks) {
                self.record_overlap(
                    me,
                    &format!(
                        "marker of live process {pid} (start ticks {ticks}, marker {found:?}) found on entering"
                    ),
                );
                let _ = fs::remove_file(&tmp);
                return Ok((None, cleared));
            }
            // Its owner was killed inside its critical section. It is gone
            // (checked just above), so nobody else will touch this marker.
            match fs::remove_file(self.marker()) {
                Ok(()) => cleared = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.record_overlap(me, "a dead holder's marker vanished under us");
                }
                Err(e) => return Err(e),
            }
        }
        self.record_overlap(me, "could not place the marker after 5 tries");
        let _ = fs::remove_file(&tmp);
        Ok((None, cleared))
    }

    fn leave_marker(&self, me: &Me, mine: &str) -> io::Result<()> {
        match fs::read_to_string(self.marker()) {
            Ok(t) if t == mine => fs::remove_file(self.marker()),
            Ok(t) => {
                self.record_overlap(
                    me,
                    &format!("our marker was replaced by {t:?} while we held the lock"),
                );
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.record_overlap(me, "our marker was removed while we held the lock");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn bump_counter(&self, me: &Me) -> io::Result<u64> {
        let value = read_counter(&self.counter())? + 1;
        let tmp = self.tmp_dir().join(format!("{}.counter", me.pid));
        fs::write(&tmp, format!("{value}\n"))?;
        fs::rename(&tmp, self.counter())?;
        Ok(value)
    }
}

fn read_counter(path: &Path) -> io::Result<u64> {
    match fs::read_to_string(path) {
        Ok(t) => t.trim().parse().map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, format!("counter holds {t:?}"))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

fn read_all(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        out.push(fs::read_to_string(entry?.path())?);
    }
    Ok(out)
}
