//! The storm driver: starts the workers, kills them at random moments and
//! at chosen ones (right after a bid appears, right after a marker appears),
//! replaces them, then stops killing and checks that the lock recovers and
//! leaves nothing behind.

use crate::arena::{now_ns, Arena};
use crate::procfs;
use crate::victim::{self, Takeover, TakeoverWatch, VictimRecord};
use lockfolder::{BidRecord, EntryKind, State};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a storm is run.
#[derive(Debug, Clone)]
pub struct StormOptions {
    /// Worker processes (library mode) or `lockfolder run` loops (CLI mode).
    pub workers: usize,
    /// How long the killer runs.
    pub seconds: f64,
    /// The `lockfolder` binary, for CLI mode.
    pub cli: Option<PathBuf>,
    /// Mean time between random kills.
    pub kill_every: Duration,
    /// Chance (percent) of killing the bidder the moment a bid appears.
    pub bid_kill_percent: u32,
    /// Chance (percent) of killing the holder the moment its marker appears.
    pub cs_kill_percent: u32,
    /// Chance (percent) of stopping (SIGSTOP) the bidder the moment its bid
    /// appears, for `pause`, as a VM freeze or a long GC pause would: a
    /// waiter whose bid is then older than its lease (library mode).
    pub bid_pause_percent: u32,
    pub pause: Duration,
    /// Maximum random pause between the workers' steps, microseconds.
    pub jitter_us: u64,
    /// Where to make the arena (default: the system temp dir).
    pub dir: Option<PathBuf>,
    /// Keep the arena even when the storm passes.
    pub keep: bool,
    /// Every surviving worker must acquire within this after the killer
    /// stops, and no gap between two acquisitions while the killer is quiet
    /// may be longer: either is a wedge.
    pub wake_limit: Duration,
    /// The same lock folder seen through several paths (mounts of one
    /// network export); workers alternate between them. Empty: `lock/` in
    /// the arena. The arena itself (marker, counter, logs) stays in `dir`.
    pub dirs: Vec<PathBuf>,
    /// How long the storm keeps running with the killer quiet, at least
    /// (it also waits until every survivor has acquired once).
    pub quiet: Duration,
    /// Multi-host storm: the detectors (marker, counter, occupancy flock,
    /// overlap reports) live in this folder, shared with the storms of other
    /// hosts (PID and UTS namespaces) on the same lock folder; this storm's
    /// own files go to `<shared>/<host name>`. The lock folder may then hold
    /// other hosts' bids: leftovers are reported, not failed, and unlogged
    /// counter values are not held against this storm's kills.
    pub shared: Option<PathBuf>,
    /// How long the leftover check may wait for a stale listing to catch up
    /// (a network filesystem's directory cache); zero checks once.
    pub settle: Duration,
    /// Mutant: library workers skip the lock. The storm must then fail; the
    /// tests use it to show the detectors can see an overlap.
    pub mutant_no_lock: bool,
    /// Multi-host takeover, victim's side: after this long, the next
    /// critical section is the last; its holder asks for its whole host to
    /// be killed by creating `victim_request`, and holds the lock until then
    /// (`victim.rs`).
    pub victim_after: Option<Duration>,
    pub victim_request: Option<PathBuf>,
    /// Multi-host takeover, survivors' side: the bed's record of the
    /// victim host's kill (uptime seconds); the takeover is measured and
    /// checked: it must come after the victim's lease lapsed, and within
    /// 1.05 × lease + `takeover_slack` of the kill.
    pub victim_killed: Option<PathBuf>,
    pub takeover_slack: Duration,
}

impl Default for StormOptions {
    fn default() -> Self {
        StormOptions {
            workers: 8,
            seconds: 20.0,
            cli: None,
            kill_every: Duration::from_millis(50),
            bid_kill_percent: 3,
            cs_kill_percent: 3,
            bid_pause_percent: 0,
            pause: Duration::from_millis(1500),
            jitter_us: 400,
            dir: None,
            keep: false,
            wake_limit: Duration::from_secs(1),
            dirs: Vec::new(),
            quiet: Duration::ZERO,
            settle: Duration::ZERO,
            shared: None,
            mutant_no_lock: false,
            victim_after: None,
            victim_request: None,
            victim_killed: None,
            takeover_slack: Duration::from_secs(3),
        }
    }
}

/// How a `lockfolder run` launcher may end in a storm: normally, with 137
/// when its command was SIGKILLed (before or after it started), or killed
/// itself. Anything else (an I/O error, a usage error, a lost lock) fails
/// the storm.
pub const EXPECTED_CLI_EXITS: [&str; 3] = ["exit 0", "exit 137", "signal 9"];

/// Kills sent, by the moment chosen and by the kind of process.
#[derive(Debug, Default, Clone)]
pub struct Kills {
    pub random: u64,
    pub on_bid: u64,
    pub on_marker: u64,
    /// Library workers killed.
    pub worker: u64,
    /// `lockfolder` launchers (or their gated children before exec) killed.
    pub launcher: u64,
    /// Commands run by `lockfolder run` killed.
    pub command: u64,
}

impl Kills {
    pub fn total(&self) -> u64 {
        self.worker + self.launcher + self.command
    }
}

/// What a storm found.
#[derive(Debug, Default)]
pub struct Report {
    pub mode: &'static str,
    /// A multi-host storm (`StormOptions::shared`).
    pub shared: bool,
    pub workers: usize,
    pub seconds: f64,
    pub arena: PathBuf,
    /// Acquisitions logged by the workers (each one a completed critical
    /// section, up to the counter bump).
    pub acquisitions: u64,
    /// Acquisitions by the path the worker used (`--dirs` order; one entry
    /// without `--dirs`).
    pub acquisitions_per_dir: Vec<u64>,
    /// Longest time without any acquisition, from the first worker's start
    /// to the end of the quiet phase (kills included).
    pub max_gap: Option<Duration>,
    /// Longest time without any acquisition while the killer was quiet,
    /// counted from the moment it stopped.
    pub max_quiet_gap: Option<Duration>,
    /// How long the quiet phase lasted.
    pub quiet_for: Duration,
    /// How long the lock folder took to list as empty through every path
    /// after the workers finished (None: it never did within `settle`).
    pub settled_after: Option<Duration>,
    /// Final value of the read-modify-write counter.
    pub counter: u64,
    pub kills: Kills,
    /// Bidders stopped (SIGSTOP) for a while right after they bid.
    pub pauses: u64,
    /// Markers of holders killed inside the critical section, removed by the
    /// next holder.
    pub stale_markers_cleared: u64,
    /// Overlap reports written by the critical section.
    pub overlaps: Vec<String>,
    /// Counter values logged twice: updates lost to two holders at once.
    pub lost_updates: u64,
    /// Counter values never logged (a kill between bump and log).
    pub lost_log_lines: u64,
    /// Counter values logged that the counter never reached.
    pub impossible_values: u64,
    pub unexpected_exits: Vec<String>,
    pub worker_errors: Vec<String>,
    /// Leases lost by holders: a guard lost from the start (lock() returned
    /// after the lease had lapsed), or a lease that lapsed while held.
    pub leases_lost: Vec<String>,
    /// How long `lock()` took (median, max), library mode.
    pub lock_ms: Option<(u64, u64)>,
    /// How old the bid was when `lock()` returned (median, max): what a
    /// lease must outlast.
    pub bid_age_ms: Option<(u64, u64)>,
    /// Slowest first acquisition of a surviving worker after the killer
    /// stopped.
    pub max_wake_after_stop: Option<Duration>,
    pub wedged: Vec<String>,
    /// Entries left in the lock folder once every worker had finished (in a
    /// multi-host storm: those of this host, or not bids).
    pub leftovers: Vec<String>,
    /// Multi-host storm: other hosts' entries still there (they may still
    /// run, or have been killed), reported, not failed.
    pub foreign_leftovers: Vec<String>,
    /// Filesystem artefacts left (`.nfsXXXX`, `.fuse_hiddenXXXX`: files
    /// deleted while open, which the filesystem itself should remove once
    /// closed). Not the protocol's entries, never rivals, and the core
    /// cannot remove them: reported, not failed.
    pub artefacts_left: Vec<String>,
    /// The lock folder's filesystem and the core's policy for it
    /// (`accepted`, `opted-in`).
    pub filesystem: String,
    /// Multi-host takeover, as a survivor saw it.
    pub takeover: Option<Takeover>,
    /// Why the takeover could not be measured or failed its checks.
    pub takeover_failures: Vec<String>,
    pub marker_left: bool,
    /// Launcher exit statuses in CLI mode ("exit 0", "signal 9", ...).
    pub cli_exits: BTreeMap<String, u64>,
}

impl Report {
    /// Every reason the storm failed; empty means it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if !self.overlaps.is_empty() {
            f.push(format!(
                "{} overlap(s) seen by the marker",
                self.overlaps.len()
            ));
        }
        if self.lost_updates > 0 || self.impossible_values > 0 {
            f.push(format!(
                "counter: {} lost update(s), {} impossible value(s)",
                self.lost_updates, self.impossible_values
            ));
        }
        if self.lost_log_lines > self.kills.total() && !self.shared {
            f.push(format!(
                "{} counter values never logged but only {} kills",
                self.lost_log_lines,
                self.kills.total()
            ));
        }
        if !self.unexpected_exits.is_empty() || !self.worker_errors.is_empty() {
            f.push(format!(
                "{} unexpected exit(s), {} worker error(s)",
                self.unexpected_exits.len(),
                self.worker_errors.len()
            ));
        }
        // A holder stopped for longer than its lease must lose it: with
        // pauses on, lost leases are the expected outcome (reported; the
        // overlap detectors judge safety). Without pauses, a lost lease means
        // renewals were late.
        if !self.leases_lost.is_empty() && self.pauses == 0 {
            f.push(format!(
                "{} lease(s) lost by holders: {}",
                self.leases_lost.len(),
                self.leases_lost
                    .iter()
                    .take(3)
                    .map(|l| l.trim_end())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        let odd: Vec<String> = self
            .cli_exits
            .iter()
            .filter(|(k, _)| !EXPECTED_CLI_EXITS.contains(&k.as_str()))
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect();
        if !odd.is_empty() {
            f.push(format!(
                "unexpected `lockfolder run` statuses: {}",
                odd.join(", ")
            ));
        }
        if !self.wedged.is_empty() {
            f.push(format!("wedged: {}", self.wedged.join("; ")));
        }
        if !self.leftovers.is_empty() {
            f.push(format!(
                "left in the lock folder: {}",
                self.leftovers.join(", ")
            ));
        }
        if self.marker_left {
            f.push("occupancy marker left behind".to_owned());
        }
        f.extend(self.takeover_failures.iter().cloned());
        f
    }

    /// Whether the arena was kept for a look (on failure or `--keep`).
    pub fn keep_arena_note(&self) -> bool {
        self.arena.exists()
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// One line of `key=value` words, for people and for the tests.
    pub fn summary_line(&self) -> String {
        let k = &self.kills;
        let mut s = format!(
            "lockfolder-storm: {} mode={}{} workers={} seconds={} acquisitions={} counter={} \
             kills={} kills_random={} kills_on_bid={} kills_on_marker={} kills_worker={} \
             kills_launcher={} kills_command={} pauses={} stale_markers_cleared={} overlaps={} \
             lost_updates={} lost_log_lines={} unexpected_exits={} worker_errors={} \
             max_wake_after_stop_ms={} max_gap_ms={} max_quiet_gap_ms={} quiet_s={:.1} \
             dirs={} acquisitions_per_dir={} settled_ms={} wedged={} leftovers={} \
             foreign_leftovers={} artefacts_left={} leases_lost={} lock_ms_median={} lock_ms_max={} \
             bid_age_ms_median={} bid_age_ms_max={} fs={}",
            if self.passed() { "PASS" } else { "FAIL" },
            self.mode,
            if self.shared { "-shared" } else { "" },
            self.workers,
            self.seconds,
            self.acquisitions,
            self.counter,
            k.total(),
            k.random,
            k.on_bid,
            k.on_marker,
            k.worker,
            k.launcher,
            k.command,
            self.pauses,
            self.stale_markers_cleared,
            self.overlaps.len(),
            self.lost_updates,
            self.lost_log_lines,
            self.unexpected_exits.len(),
            self.worker_errors.len(),
            ms(self.max_wake_after_stop),
            ms(self.max_gap),
            ms(self.max_quiet_gap),
            self.quiet_for.as_secs_f64(),
            self.acquisitions_per_dir.len(),
            self.acquisitions_per_dir
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
            ms(self.settled_after),
            self.wedged.len(),
            self.leftovers.len() + usize::from(self.marker_left),
            self.foreign_leftovers.len(),
            self.artefacts_left.len(),
            self.leases_lost.len(),
            pair(self.lock_ms, 0),
            pair(self.lock_ms, 1),
            pair(self.bid_age_ms, 0),
            pair(self.bid_age_ms, 1),
            if self.filesystem.is_empty() {
                "?"
            } else {
                &self.filesystem
            },
        );
        if let Some(t) = &self.takeover {
            let _ = write!(
                s,
                " victim={} lease_ms={} takeover_ms={} renewed_before_kill_ms={} \
                 lease_margin_ms={}",
                t.victim,
                t.lease_ms.map_or("none".to_owned(), |l| l.to_string()),
                ms(t.takeover),
                ms(t.renewed_before_kill),
                t.lease_margin_ms
                    .map_or("none".to_owned(), |m| format!("{m:.1}")),
            );
        }
        if !self.cli_exits.is_empty() {
            let exits: Vec<String> = self
                .cli_exits
                .iter()
                .map(|(k, v)| format!("{}:{v}", k.replace(' ', "_")))
                .collect();
            let _ = write!(s, " cli_exits={}", exits.join(","));
        }
        s
    }
}

/// One half of a (median, max) pair, or `none`.
fn pair(p: Option<(u64, u64)>, i: usize) -> String {
    p.map_or("none".to_owned(), |(a, b)| [a, b][i].to_string())
}

/// The median and the maximum, if there are any values.
fn median_max(mut v: Vec<u64>) -> Option<(u64, u64)> {
    v.sort_unstable();
    Some((*v.get(v.len() / 2)?, *v.last()?))
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("none".to_owned(), |d| {
        format!("{:.1}", d.as_secs_f64() * 1000.0)
    })
}

/// The worker slot a log tag belongs to (`w3-g17` or `slot3` → 3).
fn slot_of(tag: &str) -> Option<usize> {
    let tag = tag.rsplit('/').next()?;
    let rest = tag.strip_prefix("slot").or_else(|| tag.strip_prefix('w'))?;
    rest.split('-').next()?.parse().ok()
}

struct Slot {
    tag: String,
    child: Child,
    killed: bool,
}

struct Driver {
    opts: StormOptions,
    arena: Arena,
    /// The lock folder's paths; slot `i` uses `lock_dirs[i % len]`.
    lock_dirs: Vec<PathBuf>,
    exe: PathBuf,
    slots: Vec<Slot>,
    generation: u64,
    report: Report,
    stopping: bool,
    /// Victim's side: from when (Unix ns) the next critical section is the
    /// last.
    victim_at_ns: Option<u64>,
    /// Survivors' side: what we saw of the victim's kill.
    takeover: TakeoverWatch,
    /// Workers stopped on their bid, and when each is to be continued.
    paused: Vec<(u32, Instant)>,
}

impl Driver {
    fn spawn(&mut self, index: usize) -> Result<Slot, String> {
        self.generation += 1;
        let tag = match self.opts.cli {
            // A CLI loop lives for the whole storm: its tag is its slot.
            Some(_) => format!("slot{index}"),
            None => format!("w{index}-g{}", self.generation),
        };
        let mut cmd = Command::new(&self.exe);
        match &self.opts.cli {
            Some(cli) => {
                cmd.arg("cli-worker").arg("--cli").arg(cli);
            }
            None => {
                cmd.arg("worker");
                if self.opts.mutant_no_lock {
                    cmd.arg("--mutant-no-lock");
                }
                if let (Some(at), Some(req)) = (self.victim_at_ns, &self.opts.victim_request) {
                    cmd.arg("--victim-at-ns")
                        .arg(at.to_string())
                        .arg("--victim-request")
                        .arg(req);
                }
            }
        }
        let lock = &self.lock_dirs[index % self.lock_dirs.len()];
        let child = cmd
            .arg("--arena")
            .arg(self.arena.root())
            .arg("--lock")
            .arg(lock)
            .arg("--probe")
            .arg(self.arena.probe())
            .args([
                "--tag",
                &tag,
                "--jitter-us",
                &self.opts.jitter_us.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.exe.display()))?;
        Ok(Slot {
            tag,
            child,
            killed: false,
        })
    }

    /// Whether our victim holds the lock for good: nobody of ours is
    /// killed any more, so it dies with its host and not before.
    fn victim_holds(&self) -> bool {
        self.victim_at_ns.is_some() && self.arena.victim_file().exists()
    }

    /// Reaps exited workers; replaces them unless the storm is stopping.
    /// Also watches for a victim host's kill.
    fn reap(&mut self) -> Result<(), String> {
        self.resume_due(self.stopping);
        if let Some(killed) = &self.opts.victim_killed {
            self.takeover.poll(&self.arena, killed, &self.lock_dirs[0]);
        }
        for i in 0..self.slots.len() {
            let status = match self.slots[i].child.try_wait() {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => return Err(format!("wait: {e}")),
            };
            let expected = self.slots[i].killed || (self.stopping && status.success());
            if !expected {
                self.report.unexpected_exits.push(format!(
                    "{} (pid {}) {}",
                    self.slots[i].tag,
                    self.slots[i].child.id(),
                    describe(status)
                ));
            }
            if !self.stopping {
                self.slots[i] = self.spawn(i)?;
            }
        }
        Ok(())
    }

    /// Library mode: kills the worker with this PID, if it is one of ours.
    fn kill_worker(&mut self, pid: u32) -> bool {
        let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| !s.killed && s.child.id() == pid)
        else {
            return false;
        };
        // Our unreaped child: its PID cannot have been reused.
        if slot.child.kill().is_ok() {
            slot.killed = true;
            self.report.kills.worker += 1;
            return true;
        }
        false
    }

    /// Library mode: stops the worker with this PID (SIGSTOP) for
    /// `opts.pause`, if it is one of ours.
    fn pause_worker(&mut self, pid: u32) -> bool {
        if self.opts.cli.is_some() || self.paused.iter().any(|(p, _)| *p == pid) {
            return false;
        }
        let ours = self.slots.iter().any(|s| !s.killed && s.child.id() == pid);
        // Our unreaped child: its PID cannot have been reused.
        let stopped = ours
            && Pid::from_raw(pid as i32)
                .is_some_and(|p| rustix::process::kill_process(p, Signal::STOP).is_ok());
        if stopped {
            self.paused.push((pid, Instant::now() + self.opts.pause));
            self.report.pauses += 1;
        }
        stopped
    }

    /// Continues the stopped workers whose pause is over (all with `all`).
    fn resume_due(&mut self, all: bool) {
        let now = Instant::now();
        let (due, rest): (Vec<_>, Vec<_>) =
            self.paused.drain(..).partition(|(_, t)| all || *t <= now);
        self.paused = rest;
        for (pid, _) in due {
            if self.slots.iter().any(|s| !s.killed && s.child.id() == pid) {
                if let Some(p) = Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(p, Signal::CONT);
                }
            }
        }
    }

    fn looper_pids(&self) -> HashSet<u32> {
        self.slots.iter().map(|s| s.child.id()).collect()
    }

    /// CLI mode: SIGKILLs `pid` if it descends from one of our loops (its
    /// parent or grandparent). The PID is pinned with a pidfd before its
    /// ancestry is checked, so a reused PID is never signalled.
    fn kill_descendant(&mut self, pid: u32) -> bool {
        let Some(p) = Pid::from_raw(pid as i32) else {
            return false;
        };
        let Ok(fd) = pidfd_open(p, PidfdFlags::empty()) else {
            return false;
        };
        let loops = self.looper_pids();
        let Ok(Some(st)) = procfs::stat(pid) else {
            return false;
        };
        let ours = loops.contains(&st.ppid)
            || matches!(procfs::stat(st.ppid), Ok(Some(pst)) if loops.contains(&pst.ppid));
        if !ours || st.state == b'Z' {
            return false;
        }
        // The launcher is the loop's child running `lockfolder`; its child
        // (gated, or already the command) and an orphaned command are
        // "commands": the process the bid names.
        let is_command = !loops.contains(&st.ppid)
            || fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("lockfolder-sto"));
        if pidfd_send_signal(&fd, Signal::KILL).is_err() {
            return false;
        }
        if is_command {
            self.report.kills.command += 1;
        } else {
            self.report.kills.launcher += 1;
        }
        true
    }

    /// The owner of a bid or marker has just appeared: kill it (library
    /// mode), or in CLI mode the command, its launcher, or both.
    fn kill_owner(&mut self, pid: u32) -> bool {
        if self.victim_holds() {
            return false;
        }
        if self.opts.cli.is_none() {
            return self.kill_worker(pid);
        }
        let parent = procfs::stat(pid).ok().flatten().map(|s| s.ppid);
        let launcher = parent.filter(|pp| !self.looper_pids().contains(pp));
        match (fastrand::u8(0..3), launcher) {
            (0, Some(l)) => self.kill_descendant(l),
            (1, Some(l)) => {
                let a = self.kill_descendant(l);
                self.kill_descendant(pid) || a
            }
            _ => self.kill_descendant(pid),
        }
    }

    fn kill_random(&mut self) -> bool {
        if self.slots.is_empty() || self.victim_holds() {
            return false;
        }
        let i = fastrand::usize(0..self.slots.len());
        let pid = self.slots[i].child.id();
        if self.opts.cli.is_none() {
            return self.kill_worker(pid);
        }
        let kids = procfs::children(pid);
        if kids.is_empty() {
            return false;
        }
        let launcher = kids[fastrand::usize(0..kids.len())];
        let commands = procfs::children(launcher);
        match (fastrand::u8(0..3), commands.first()) {
            (0, Some(&c)) => self.kill_descendant(c),
            (1, Some(&c)) => {
                let a = self.kill_descendant(launcher);
                self.kill_descendant(c) || a
            }
            _ => self.kill_descendant(launcher),
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => format!("{status}"),
    }
}

fn pid_in(text: &str) -> Option<u32> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// Why a storm could not be run at all.
#[derive(Debug)]
pub enum StormError {
    /// The core refuses the lock folder's filesystem (no opt-in was given):
    /// its typed error, as every worker would meet it.
    Refused(lockfolder::Error),
    /// Anything else: no temp dir, a bad option, cannot spawn.
    Setup(String),
}

impl From<String> for StormError {
    fn from(s: String) -> StormError {
        StormError::Setup(s)
    }
}

impl std::fmt::Display for StormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StormError::Refused(e) => write!(f, "refused: {e}"),
            StormError::Setup(s) => f.write_str(s),
        }
    }
}

/// Opens every path of the lock folder as the workers will, and asks the
/// core whether it locks on that filesystem; a refusal ends the storm before
/// any worker starts, with the error a worker would get. Returns the
/// filesystems and their policy, for the report (`nfs4:accepted`,
/// `fuse.rclone:opted-in`).
fn preflight(dirs: &[PathBuf]) -> Result<String, StormError> {
    let mut seen: Vec<String> = Vec::new();
    for dir in dirs {
        let folder = crate::folder::open(dir, None)
            .map_err(|e| StormError::Setup(format!("open {}: {e}", dir.display())))?;
        let policy = folder.filesystem_policy();
        if !policy.accepted {
            return Err(match folder.try_lock() {
                Err(e @ lockfolder::Error::FilesystemRefused { .. }) => StormError::Refused(e),
                Err(e) => StormError::Setup(format!(
                    "{}: the policy refuses {}, but try_lock said: {e}",
                    dir.display(),
                    folder.filesystem()
                )),
                Ok(_) => StormError::Setup(format!(
                    "{}: the policy refuses {}, but try_lock did not",
                    dir.display(),
                    folder.filesystem()
                )),
            });
        }
        let word = format!(
            "{}:{}",
            folder.filesystem().name,
            if policy.opted_in {
                "opted-in"
            } else {
                "accepted"
            }
        );
        if !seen.contains(&word) {
            seen.push(word);
        }
    }
    Ok(seen.join(","))
}

/// Runs a storm and reports what it found. `Err` means the storm could not
/// be run at all (no temp dir, cannot spawn, a refused filesystem), not
/// that the lock failed.
pub fn run(opts: StormOptions) -> Result<Report, StormError> {
    if let Ok(v) = std::env::var(crate::folder::LEASE_ENV) {
        if v.parse::<u64>().is_err() {
            return Err(format!(
                "{}={v:?} is not a number of milliseconds",
                crate::folder::LEASE_ENV
            )
            .into());
        }
    }
    if opts.victim_after.is_some()
        && (opts.victim_request.is_none() || opts.shared.is_none() || opts.cli.is_some())
    {
        return Err(
            "--victim-after needs --victim-request and --shared, in library mode"
                .to_owned()
                .into(),
        );
    }
    let base = opts.dir.clone().unwrap_or_else(std::env::temp_dir);
    let temp = tempfile::Builder::new()
        .prefix("lockfolder-storm-")
        .tempdir_in(&base)
        .map_err(|e| format!("temp dir in {}: {e}", base.display()))?;
    let arena = match &opts.shared {
        None => Arena::create(temp.path()),
        Some(probe) => {
            crate::arena::Me::current().and_then(|me| Arena::create_shared(probe, me.host.as_str()))
        }
    }
    .map_err(|e| format!("arena: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let lock_dirs = if opts.dirs.is_empty() {
        vec![arena.lock_dir()]
    } else {
        prepare_dirs(&opts.dirs, opts.shared.is_some())?
    };
    let filesystem = preflight(&lock_dirs)?;
    let victim_at_ns = opts
        .victim_after
        .map(|a| now_ns().saturating_add(a.as_nanos() as u64));
    let mut d = Driver {
        report: Report {
            mode: if opts.cli.is_some() { "cli" } else { "lib" },
            workers: opts.workers,
            seconds: opts.seconds,
            arena: arena.root().to_path_buf(),
            shared: opts.shared.is_some(),
            filesystem,
            ..Report::default()
        },
        opts,
        arena,
        lock_dirs,
        exe,
        slots: Vec::new(),
        generation: 0,
        stopping: false,
        victim_at_ns,
        takeover: TakeoverWatch::default(),
        paused: Vec::new(),
    };
    let outcome = storm(&mut d);
    // Whatever happened, no process of ours outlives the storm.
    for s in &mut d.slots {
        if s.child.try_wait().ok().flatten().is_none() {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }
    outcome?;
    if d.opts.keep || !d.report.passed() {
        // Kept for the post-mortem; the summary names it.
        let _ = temp.keep();
    }
    Ok(d.report)
}

/// The same folder through several paths: made through the first (it must
/// be new or empty), then waited for through the others, for as long as a
/// network filesystem's lookup cache may take.
///
/// The core is asked about the first path's filesystem as soon as the
/// folder is made, so a refused filesystem is reported as such even where
/// the other mounts would not show the folder in time.
fn prepare_dirs(dirs: &[PathBuf], shared: bool) -> Result<Vec<PathBuf>, StormError> {
    let first = &dirs[0];
    fs::create_dir_all(first).map_err(|e| format!("create {}: {e}", first.display()))?;
    // Other hosts' storms may already be bidding in a shared one.
    if let Some(name) = list(first)?.first().filter(|_| !shared) {
        return Err(format!(
            "lock folder {} is not empty ({name}); give a new folder",
            first.display()
        )
        .into());
    }
    preflight(&dirs[..1])?;
    let limit = Instant::now() + Duration::from_secs(30);
    for other in &dirs[1..] {
        while !other.is_dir() {
            if Instant::now() > limit {
                return Err(format!(
                    "{} (made through {}) is not visible within 30 s",
                    other.display(),
                    first.display()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(dirs.to_vec())
}

fn storm(d: &mut Driver) -> Result<(), String> {
    let err = |what: &str, e: Errno| format!("{what}: {e}");
    let inot = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)
        .map_err(|e| err("inotify", e))?;
    // One watch per path: a network filesystem reports only the changes made
    // through that mount, and every worker runs here, on one of them.
    let mut lock_wds = Vec::new();
    for dir in &d.lock_dirs {
        let wd = inotify::add_watch(&inot, dir, WatchFlags::CREATE | WatchFlags::MOVED_TO)
            .map_err(|e| err(&format!("watch {}", dir.display()), e))?;
        lock_wds.push((wd, dir.clone()));
    }
    let root_wd = inotify::add_watch(&inot, d.arena.probe(), WatchFlags::CREATE)
        .map_err(|e| err("watch arena", e))?;
    let own_host = crate::arena::Me::current()
        .ok()
        .map(|me| me.host.as_str().to_owned());
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut reader = inotify::Reader::new(&inot, &mut buf);

    for i in 0..d.opts.workers {
        let slot = d.spawn(i)?;
        d.slots.push(slot);
    }
    let mean = d.opts.kill_every.as_micros().max(1) as u64;
    let next_gap = || Duration::from_micros(fastrand::u64(0..=2 * mean));
    let start = Instant::now();
    let start_ns = now_ns();
    let deadline = start + Duration::from_secs_f64(d.opts.seconds);
    let mut next_kill = start + next_gap();
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = next_kill
            .min(deadline)
            .saturating_duration_since(now)
            .min(Duration::from_millis(20));
        let ts = Timespec::try_from(wait).unwrap_or(Timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        });
        let mut fds = [PollFd::new(&inot, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(err("poll", e)),
        }
        // Owners to kill, decided per event as it is read.
        let mut targets: Vec<(u32, bool)> = Vec::new();
        loop {
            let ev = match reader.next() {
                Ok(ev) => ev,
                Err(Errno::AGAIN) | Err(Errno::INTR) => break,
                Err(e) => return Err(err("read inotify", e)),
            };
            if ev.events().contains(ReadFlags::QUEUE_OVERFLOW) {
                continue;
            }
            let Some(name) = ev.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let bid_dir = lock_wds.iter().find(|(wd, _)| *wd == ev.wd()).map(|w| &w.1);
            if let (Some(dir), true) = (bid_dir, name.ends_with(".json") && !name.starts_with('.'))
            {
                let roll = fastrand::u32(0..100);
                if roll < d.opts.bid_kill_percent + d.opts.bid_pause_percent {
                    let pid = fs::read(dir.join(&name))
                        .ok()
                        .and_then(|b| BidRecord::parse(&b))
                        .map(|r| r.pid);
                    match pid {
                        Some(p) if roll >= d.opts.bid_kill_percent => {
                            d.pause_worker(p);
                        }
                        Some(p) => targets.push((p, true)),
                        None => {}
                    }
                }
            } else if ev.wd() == root_wd
                && name == "marker"
                && fastrand::u32(0..100) < d.opts.cs_kill_percent
            {
                // Only a marker of this host names one of our PIDs.
                let pid = fs::read_to_string(d.arena.marker())
                    .ok()
                    .filter(|t| {
                        let host = t.split_ascii_whitespace().nth(3);
                        host.is_none_or(|h| Some(h) == own_host.as_deref())
                    })
                    .and_then(|t| pid_in(&t));
                targets.extend(pid.map(|p| (p, false)));
            }
        }
        for (pid, on_bid) in targets {
            if d.kill_owner(pid) {
                if on_bid {
                    d.report.kills.on_bid += 1;
                } else {
                    d.report.kills.on_marker += 1;
                }
            }
        }
        if Instant::now() >= next_kill {
            if d.kill_random() {
                d.report.kills.random += 1;
            }
            next_kill = Instant::now() + next_gap();
        }
        d.reap()?;
    }

    // The killer stops (and nobody stays stopped). Every worker alive now
    // must acquire within the limit.
    d.resume_due(true);
    let stopped_ns = now_ns();
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_millis(5));
    d.reap()?;
    let survivors: Vec<String> = d
        .slots
        .iter()
        .filter(|s| !s.killed)
        .map(|s| s.tag.clone())
        .collect();
    let mut first: HashMap<String, u64> = HashMap::new();
    let patience = (d.opts.wake_limit * 5).max(d.opts.quiet);
    let mut looked = Instant::now();
    let mut stall_shown = None;
    let mut waiting_shown: HashSet<String> = HashSet::new();
    while (first.len() < survivors.len() && stopped.elapsed() < patience)
        || stopped.elapsed() < d.opts.quiet
    {
        std::thread::sleep(Duration::from_millis(10));
        d.reap()?;
        if looked.elapsed() >= Duration::from_millis(500) {
            looked = Instant::now();
            show_stall(d, stopped_ns, &mut stall_shown);
            if stopped.elapsed() > d.opts.wake_limit {
                for tag in &survivors {
                    if !first.contains_key(tag) && waiting_shown.insert(tag.clone()) {
                        show_waiter(d, tag, stopped.elapsed());
                    }
                }
            }
        }
        for tag in &survivors {
            if first.contains_key(tag) {
                continue;
            }
            if let Some(at) = first_acquisition_after(&d.arena, tag, stopped_ns) {
                first.insert(tag.clone(), at);
            }
        }
    }
    // A victim host killed after the killer stopped holds the lock until
    // its lease lapses (the takeover, checked on its own): then the
    // survivors must each acquire within the limit of the takeover.
    let (since_ns, since) = match takeover_acquisition(d).filter(|&t| t > stopped_ns) {
        Some(t) => {
            for tag in &survivors {
                match first_acquisition_after(&d.arena, tag, t) {
                    Some(at) => first.insert(tag.clone(), at),
                    None => first.remove(tag),
                };
            }
            (t, "the takeover")
        }
        None => (stopped_ns, "the killer stopped"),
    };
    let mut max_wake = Duration::ZERO;
    for tag in &survivors {
        match first.get(tag) {
            Some(&at) => {
                let wake = Duration::from_nanos(at.saturating_sub(since_ns));
                max_wake = max_wake.max(wake);
                if wake > d.opts.wake_limit {
                    d.report
                        .wedged
                        .push(format!("{tag} first acquired {wake:?} after {since}"));
                }
            }
            None => {
                show_waiter(d, tag, stopped.elapsed());
                d.report.wedged.push(format!(
                    "{tag} did not acquire after {since} (waited {patience:?} from the killer's stop)"
                ));
            }
        }
    }
    d.report.max_wake_after_stop = Some(max_wake);
    let quiet_end_ns = now_ns();
    d.report.quiet_for = stopped.elapsed();
    check_gaps(d, start_ns, stopped_ns, quiet_end_ns)?;

    // Stop the workers cleanly: each finishes its round and exits.
    d.stopping = true;
    fs::write(d.arena.stop_file(), b"stop\n").map_err(|e| format!("stop file: {e}"))?;
    let finish_by = Instant::now() + Duration::from_secs(10);
    loop {
        d.reap()?;
        let running: Vec<String> = d
            .slots
            .iter_mut()
            .filter_map(|s| match s.child.try_wait() {
                Ok(None) => Some(s.tag.clone()),
                _ => None,
            })
            .collect();
        if running.is_empty() {
            break;
        }
        if Instant::now() > finish_by {
            d.report.wedged.push(format!(
                "still running 10 s after stop: {}",
                running.join(", ")
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for s in &mut d.slots {
        if s.child.try_wait().ok().flatten().is_none() {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }

    check_leftovers(d)?;
    check_counter(d)?;
    if d.opts.victim_killed.is_some() {
        check_takeover(d)?;
    }
    if let Ok(text) = fs::read_dir(d.arena.root().join("cli-exits")) {
        for entry in text.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".stderr") {
                continue;
            }
            for line in fs::read_to_string(entry.path()).unwrap_or_default().lines() {
                *d.report.cli_exits.entry(line.to_owned()).or_default() += 1;
            }
        }
    }
    d.report.overlaps = d.arena.overlaps().map_err(|e| format!("overlaps: {e}"))?;
    d.report.worker_errors = d.arena.errors().map_err(|e| format!("errors: {e}"))?;
    d.report.leases_lost = d
        .arena
        .leases_lost()
        .map_err(|e| format!("lease reports: {e}"))?;
    let timings = d.arena.timings().map_err(|e| format!("timings: {e}"))?;
    d.report.lock_ms = median_max(timings.iter().map(|t| t.0).collect());
    d.report.bid_age_ms = median_max(timings.iter().filter_map(|t| t.1).collect());
    Ok(())
}

/// While the killer is quiet, a stretch without any acquisition longer than
/// the wake limit is a wedge in the making: print, once per stretch, what
/// this host sees in the lock folder (each entry's kind, state and why),
/// so that a wedge in a lane that cannot be rerun at will can be traced.
fn show_stall(d: &Driver, stopped_ns: u64, shown: &mut Option<u64>) {
    let Ok(acq) = d.arena.all_acquisitions() else {
        return;
    };
    let latest = acq
        .iter()
        .map(|a| a.at_ns)
        .filter(|&t| t >= stopped_ns)
        .max()
        .unwrap_or(stopped_ns);
    let quiet = Duration::from_nanos(now_ns().saturating_sub(latest));
    if quiet <= d.opts.wake_limit || *shown == Some(latest) {
        return;
    }
    *shown = Some(latest);
    let mut out =
        format!("storm: no acquisition for {quiet:?}; the lock folder as this host sees it:\n");
    write_folders(d, &mut out);
    eprint!("{out}");
}

/// A survivor that has not acquired since the killer stopped, past the
/// wake limit: where its threads are (a thread in `D` state with an NFS
/// `wchan` waits for the filesystem, not for the protocol) and what this
/// host sees in the lock folder.
fn show_waiter(d: &Driver, tag: &str, waited: Duration) {
    let Some(slot) = d.slots.iter().find(|s| s.tag == tag) else {
        return;
    };
    let pid = slot.child.id();
    let mut out = format!("storm: {tag} (pid {pid}) has not acquired {waited:?} after the killer stopped; its threads:");
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let tid = t.file_name().to_string_lossy().into_owned();
            let read = |f: &str| {
                fs::read_to_string(format!("/proc/{pid}/task/{tid}/{f}")).unwrap_or_default()
            };
            let state = procfs::parse_stat(&read("stat")).map_or('?', |s| char::from(s.state));
            let _ = write!(out, " {tid}:{state}:{}", read("wchan").trim());
        }
    }
    out.push('\n');
    write_folders(d, &mut out);
    eprint!("{out}");
}

/// One line per entry of every lock folder, as this host sees it now.
fn write_folders(d: &Driver, out: &mut String) {
    for dir in &d.lock_dirs {
        match crate::folder::open(dir, None).and_then(|f| f.holders()) {
            Ok(holders) => {
                for h in holders {
                    let _ = writeln!(out, "  {}", entry_line(dir, &h));
                }
            }
            Err(e) => {
                let _ = writeln!(out, "  {}: holders: {e}", dir.display());
            }
        }
    }
}

/// An entry as the storm reports it: folder, description, kind and state.
fn entry_line(dir: &Path, h: &lockfolder::Holder) -> String {
    format!(
        "{}: {} [{} {}]",
        dir.display(),
        h.describe(),
        h.kind.as_str(),
        h.state.as_str()
    )
}

fn first_acquisition_after(arena: &Arena, tag: &str, after_ns: u64) -> Option<u64> {
    let text = fs::read_to_string(arena.log_path(tag)).ok()?;
    text.lines()
        .filter_map(|l| l.split(' ').nth(1)?.parse::<u64>().ok())
        .find(|&at| at >= after_ns)
}

/// Nothing may be left in the lock folder: stale bids and temporaries of
/// killed workers must have been removed by the protocol itself (no final
/// `clean()` is run; what is left is described with `holders()`).
///
/// Through a network filesystem a listing may be stale for a while, so with
/// `settle` each path is listed again until it is clean or `settle` has
/// passed; what is still listed then is left over.
///
/// In a multi-host storm the other hosts' entries (foreign: we cannot judge
/// them) may rightly be there, since those hosts may still run; they are
/// reported apart, and so are filesystem artefacts (files deleted while
/// open, which the filesystem should remove: sshfs with `dir_cache=no` was
/// seen to leave some when their readers were killed). Anything else (an
/// entry of this host, provably stale or not, or something that is not a
/// bid) is a leftover.
fn check_leftovers(d: &mut Driver) -> Result<(), String> {
    let began = Instant::now();
    let shared = d.opts.shared.is_some();
    loop {
        let mut ours = Vec::new();
        let mut foreign = Vec::new();
        let mut artefacts = Vec::new();
        for dir in &d.lock_dirs {
            let names = list(dir)?;
            if names.is_empty() {
                continue;
            }
            match crate::folder::open(dir, None).and_then(|f| f.holders()) {
                Ok(holders) if !holders.is_empty() => {
                    for h in holders {
                        // The core keeps the latest fencing tokens' files
                        // by design: the next holder draws above them.
                        if h.kind == EntryKind::Fence {
                            continue;
                        }
                        let line = entry_line(dir, &h);
                        if h.kind == EntryKind::Artefact {
                            artefacts.push(line);
                        } else if shared && h.state == State::Foreign {
                            foreign.push(line);
                        } else {
                            ours.push(line);
                        }
                    }
                }
                // holders() skips what vanished meanwhile; name it all.
                Ok(_) => ours.push(format!("{}: {}", dir.display(), names.join(" "))),
                Err(e) => ours.push(format!(
                    "{}: {} (holders: {e})",
                    dir.display(),
                    names.join(" ")
                )),
            }
        }
        let done = ours.is_empty();
        if done || began.elapsed() >= d.opts.settle {
            if done {
                d.report.settled_after = Some(began.elapsed());
            }
            d.report.leftovers = ours;
            d.report.foreign_leftovers = foreign;
            d.report.artefacts_left = artefacts;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    d.report.marker_left = d.arena.marker().exists();
    Ok(())
}

/// When another host first acquired after the victim host was killed
/// (Unix ns), if that has happened.
fn takeover_acquisition(d: &Driver) -> Option<u64> {
    d.opts.victim_killed.as_ref()?;
    let rec = d.takeover.record.as_ref()?;
    d.takeover.killed_ns?;
    let victim_tags = format!("{}/", rec.host);
    d.arena
        .all_acquisitions()
        .ok()?
        .iter()
        .filter(|a| !a.tag.starts_with(&victim_tags) && a.at_ns > rec.at_ns)
        .map(|a| a.at_ns)
        .min()
}

/// The multi-host takeover as this survivor saw it (`victim.rs`): when the
/// first other host acquired after the victim host was killed, and whether
/// that was after the victim's lease had lapsed by the server's clock.
fn check_takeover(d: &mut Driver) -> Result<(), String> {
    if let Some(killed) = d.opts.victim_killed.clone() {
        d.takeover.poll(&d.arena, &killed, &d.lock_dirs[0]);
    }
    let w = d.takeover.clone();
    let (Some(rec), Some(killed_ns)) = (w.record, w.killed_ns) else {
        d.report
            .takeover_failures
            .push(match VictimRecord::read(&d.arena) {
                None => {
                    "takeover: no victim ever held the lock for good (no victim record)".to_owned()
                }
                Some(r) => format!(
                "takeover: {} asked for its host to be killed, but the bed never recorded the kill",
                r.host
            ),
            });
        return Ok(());
    };
    let first = takeover_acquisition(d);
    let mut t = Takeover {
        victim: rec.host.clone(),
        lease_ms: rec.lease_ms,
        ..Takeover::default()
    };
    match (w.renewed, &w.renewed_error) {
        (Some(r), _) => {
            t.renewed_before_kill = Some(Duration::from_nanos(
                killed_ns.saturating_sub(victim::unix_ns(r)),
            ))
        }
        (None, e) => d.report.takeover_failures.push(format!(
            "takeover: the victim's bid {} could not be read after the kill: {}",
            rec.bid,
            e.as_deref().unwrap_or("?")
        )),
    }
    let lease = rec.lease_ms.map(Duration::from_millis);
    match first {
        None => d.report.wedged.push(format!(
            "no other host acquired the lock after {} was killed holding it",
            rec.host
        )),
        Some(a) => {
            let took = Duration::from_nanos(a.saturating_sub(killed_ns));
            t.takeover = Some(took);
            if let (Some(l), Some(r)) = (lease, w.renewed) {
                let earliest = victim::unix_ns(r) + (l * 21 / 20).as_nanos() as u64;
                let margin = (a as f64 - earliest as f64) / 1e6;
                t.lease_margin_ms = Some(margin);
                if margin < 0.0 {
                    d.report.takeover_failures.push(format!(
                        "takeover: another host acquired {:.1} ms before the killed holder's \
                         lease had lapsed (last renewal + 1.05 × lease)",
                        -margin
                    ));
                }
            }
            let bound = lease.map_or(Duration::ZERO, |l| l * 21 / 20) + d.opts.takeover_slack;
            if took > bound {
                d.report.wedged.push(format!(
                    "the takeover after {} was killed took {took:?}, more than 1.05 × lease + \
                     the slack ({bound:?})",
                    rec.host
                ));
            }
        }
    }
    d.report.takeover = Some(t);
    Ok(())
}

/// The longest stretch without an acquisition, over the whole storm and
/// over the quiet phase (from the killer's stop to `end_ns`, both ends
/// counted). A quiet gap longer than the wake limit is a wedge.
fn check_gaps(d: &mut Driver, start_ns: u64, stop_ns: u64, end_ns: u64) -> Result<(), String> {
    let mut at: Vec<u64> = d
        .arena
        .all_acquisitions()
        .map_err(|e| format!("logs: {e}"))?
        .iter()
        .map(|a| a.at_ns)
        .collect();
    at.sort_unstable();
    let longest = |from: u64, to: u64| {
        let mut prev = from;
        let mut max = 0;
        for &t in at.iter().filter(|&&t| t >= from && t <= to) {
            max = max.max(t - prev);
            prev = t;
        }
        Duration::from_nanos(max.max(to.saturating_sub(prev)))
    };
    d.report.max_gap = Some(longest(start_ns, end_ns));
    let quiet = longest(stop_ns, end_ns);
    d.report.max_quiet_gap = Some(quiet);
    if quiet > d.opts.wake_limit {
        d.report.wedged.push(format!(
            "no acquisition for {quiet:?} while the killer was quiet (limit {:?})",
            d.opts.wake_limit
        ));
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| format!("list {}: {e}", dir.display()))? {
        let e = e.map_err(|e| format!("list {}: {e}", dir.display()))?;
        out.push(e.file_name().to_string_lossy().into_owned());
    }
    Ok(out)
}

/// The second detector: every counter value is logged at most once.
fn check_counter(d: &mut Driver) -> Result<(), String> {
    let acq = d
        .arena
        .all_acquisitions()
        .map_err(|e| format!("logs: {e}"))?;
    let counter = d
        .arena
        .counter_value()
        .map_err(|e| format!("counter: {e}"))?;
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for a in &acq {
        *seen.entry(a.value).or_default() += 1;
    }
    let r = &mut d.report;
    r.counter = counter;
    r.acquisitions = acq.len() as u64;
    let n = d.lock_dirs.len();
    r.acquisitions_per_dir = vec![0; n];
    for a in &acq {
        if let Some(i) = slot_of(&a.tag) {
            r.acquisitions_per_dir[i % n] += 1;
        }
    }
    r.stale_markers_cleared = acq.iter().filter(|a| a.cleared).count() as u64;
    r.lost_updates = seen.values().map(|&n| u64::from(n.saturating_sub(1))).sum();
    r.impossible_values = seen.keys().filter(|&&v| v == 0 || v > counter).count() as u64;
    r.lost_log_lines = counter.saturating_sub(seen.len() as u64);
    for (v, n) in &seen {
        if *n > 1 {
            let who: Vec<String> = acq
                .iter()
                .filter(|a| a.value == *v)
                .map(|a| format!("{}/pid {} at {} ns", a.tag, a.pid, a.at_ns))
                .collect();
            eprintln!(
                "lockfolder-storm: counter value {v} logged {n} times: {}",
                who.join(", ")
            );
        }
    }
    Ok(())
}
