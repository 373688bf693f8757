//! Linux: who we are from `/proc` and `uname`, and whether a PID names a
//! live process from `kill(pid, 0)` and `/proc/<pid>/stat`.
//!
//! Only `ESRCH` proves absence: a missing `/proc/<pid>` can also mean
//! `hidepid`, so it is "cannot tell", never "gone". Start times are clock
//! ticks since boot (field 22 of `/proc/<pid>/stat`), which the kernel shows
//! shifted by the *reader's* time-namespace boottime offset; we record and
//! compare them in the initial time namespace's terms (`identity.rs`).
//!
//! No `unsafe` here: rustix wraps every call.

use super::Me;
use crate::error::Op;
use crate::fault;
use crate::identity::{
    self, Claim, LinuxLocal, LinuxOwner, LinuxProcs, Owner, OwnerKey, Probe, RunState, SeenProcess,
    Unjudgeable, Verdict,
};
use rustix::io::Errno;
use std::cell::OnceCell;
use std::io;
use std::sync::{Mutex, OnceLock};

/// Inode of the initial PID namespace (`PROC_PID_INIT_INO` in the kernel,
/// fixed since Linux 3.8).
const INIT_PID_NS: u64 = 0xEFFF_FFFC;

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

static LOCAL: OnceLock<std::result::Result<LinuxLocal, (io::ErrorKind, String)>> = OnceLock::new();

/// Host name, machine id, boot id, boot time, PID namespace, clock rate and
/// time-namespace offset, read once per process (none of them changes while
/// a process lives; a forked child shares them).
fn local() -> io::Result<&'static LinuxLocal> {
    LOCAL
        .get_or_init(|| read_local().map_err(|e| (e.kind(), e.to_string())))
        .as_ref()
        .map_err(|(k, m)| io::Error::new(*k, m.clone()))
}

fn read_local() -> io::Result<LinuxLocal> {
    fault::check(Op::Identity, b"local")?;
    let uts = rustix::system::uname();
    let host = String::from_utf8_lossy(uts.nodename().to_bytes()).into_owned();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_owned();
    if boot_id.len() != 36 {
        return Err(invalid("malformed /proc/sys/kernel/random/boot_id"));
    }
    let machine_id = std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let stat = std::fs::read_to_string("/proc/stat")?;
    let boot_time = parse_btime(&stat).ok_or_else(|| invalid("no btime in /proc/stat"))?;
    let pid_ns = rustix::fs::stat("/proc/self/ns/pid")
        .map_err(errno_io)?
        .st_ino;
    let clk_tck = rustix::param::clock_ticks_per_second().max(1);
    // /proc must belong to our PID namespace, or every PID we look up there
    // would name some other process.
    let me = read_stat_file("/proc/self/stat")?;
    if me.pid != current_pid() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "/proc is not mounted for this process's PID namespace",
        ));
    }
    let (offset_ticks, tick_slack) = time_offset(clk_tck)?;
    Ok(LinuxLocal {
        host,
        machine_id,
        boot_id,
        boot_time,
        pid_ns,
        clk_tck,
        offset_ticks,
        tick_slack,
        sees_all: pid_ns == INIT_PID_NS && !others_hidden(),
        folder_local: false,
    })
}

/// Our time namespace's boottime offset in ticks (and whether it is a whole
/// number of them). `/proc/self/timens_offsets` shows the namespace our
/// *children* get; it is ours unless we unshared a time namespace without
/// entering it, which we refuse rather than guess.
fn time_offset(clk_tck: u64) -> io::Result<(u64, bool)> {
    let text = match std::fs::read_to_string("/proc/self/timens_offsets") {
        Ok(t) => t,
        // Kernels without time namespaces (before 5.6): no offset.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, false)),
        Err(e) => return Err(e),
    };
    let ns = |p: &str| rustix::fs::stat(p).map(|s| s.st_ino).ok();
    if ns("/proc/self/ns/time") != ns("/proc/self/ns/time_for_children") {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this process unshared a time namespace it has not entered; \
             its own start-time offset cannot be read",
        ));
    }
    let nanos = parse_boottime_offset(&text).ok_or_else(|| invalid("malformed timens_offsets"))?;
    if nanos < 0 {
        // Offsets can be negative only down to the namespace's own uptime;
        // we store ticks as unsigned: refuse rather than wrap.
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "negative boottime offset of this time namespace",
        ));
    }
    let per_tick = 1_000_000_000 / clk_tck as i128;
    Ok(((nanos / per_tick) as u64, nanos % per_tick != 0))
}

/// The `boottime <secs> <nanos>` line of `timens_offsets`, in nanoseconds.
pub(crate) fn parse_boottime_offset(text: &str) -> Option<i128> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("boottime"))?;
    let mut f = line.split_whitespace().skip(1);
    let secs: i64 = f.next()?.parse().ok()?;
    let nanos: i64 = f.next()?.parse().ok()?;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}

/// Whether `/proc` may hide other users' processes from us (`hidepid`),
/// which would make "no such process anywhere" unprovable. Root sees
/// through it.
fn others_hidden() -> bool {
    if rustix::process::geteuid().is_root() {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    info.lines()
        .filter(|l| l.split(' ').nth(4) == Some("/proc"))
        .any(|l| {
            l.split(',')
                .filter_map(|o| o.split_whitespace().next())
                .any(|o| o.starts_with("hidepid=") && !matches!(o, "hidepid=0" | "hidepid=off"))
        })
}

/// `btime` line of `/proc/stat`.
pub(crate) fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub pid: u32,
    pub state: u8,
    pub pgrp: u32,
    pub start_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may itself contain spaces and `)`, so fields are counted from the
/// *last* `)`.
pub(crate) fn read_proc_stat(bytes: &[u8]) -> Option<ProcStat> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = std::str::from_utf8(&bytes[..open])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let rest = std::str::from_utf8(&bytes[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state.len() != 1 {
        return None;
    }
    // Field 3 is the state, 4 the parent, 5 the process group; field 22 is
    // the start time.
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    let start_ticks = fields.nth(16)?.parse().ok()?;
    Some(ProcStat {
        pid,
        state: state.as_bytes()[0],
        pgrp,
        start_ticks,
    })
}

/// Reads a small `/proc` file in as few calls as it takes. `std::fs::read`
/// sizes its buffer from `stat`, which says 0 for `/proc` files, and then
/// grows it from 32 bytes: a `/proc/<pid>/stat` (a few hundred bytes) cost
/// a `statx` and six `read`s, on every liveness probe of a waiter. Here it
/// is one `read` into a buffer larger than any such file, and the one that
/// says end of file.
fn read_proc_file(path: impl AsRef<std::path::Path>) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn read_stat_file(path: &str) -> io::Result<ProcStat> {
    read_proc_stat(&read_proc_file(path)?).ok_or_else(|| invalid(format!("malformed {path}")))
}

pub(crate) fn current_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// The identity of a process of ours with these raw start ticks.
fn me_from(pid: u32, raw_ticks: u64, l: &LinuxLocal) -> Me {
    Me {
        pid,
        created: l.created(raw_ticks),
        host: l.host.clone(),
        owner: Owner::Linux(LinuxOwner {
            boot_id: l.boot_id.clone(),
            machine_id: l.machine_id.clone(),
            boot_time: l.boot_time,
            pid_ns: l.pid_ns,
            start_ticks: l.normalize(raw_ticks),
            clk_tck: l.clk_tck,
            tick_slack: l.tick_slack,
        }),
    }
}

static SELF_TICKS: Mutex<Option<(u32, u64)>> = Mutex::new(None);

/// This process. The start ticks are cached and re-read after a fork (when
/// the PID no longer matches).
pub(crate) fn current() -> io::Result<Me> {
    let l = local()?;
    let pid = current_pid();
    let mut cached = SELF_TICKS.lock().unwrap_or_else(|p| p.into_inner());
    let ticks = match *cached {
        Some((p, t)) if p == pid => t,
        _ => {
            let t = read_stat_file("/proc/self/stat")?.start_ticks;
            *cached = Some((pid, t));
            t
        }
    };
    Ok(me_from(pid, ticks, l))
}

/// Another process of ours, in our PID namespace.
pub(crate) fn of_pid(pid: u32) -> io::Result<Me> {
    let l = local()?;
    let st = read_stat_file(&format!("/proc/{pid}/stat"))?;
    Ok(me_from(pid, st.start_ticks, l))
}

/// The real process table.
struct ProcFs {
    all: OnceCell<Option<Vec<SeenProcess>>>,
}

fn pid_of(n: u32) -> Option<rustix::process::Pid> {
    i32::try_from(n)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
}

fn run_state(pid: u32, state: u8) -> RunState {
    match state {
        b'Z' | b'X' if all_threads_exited(pid) => RunState::Exited,
        b'T' | b't' => RunState::Stopped,
        _ => RunState::Running,
    }
}

impl LinuxProcs for ProcFs {
    fn probe(&self, pid: u32) -> Probe {
        if fault::check(Op::Identity, pid.to_string().as_bytes()).is_err() {
            return Probe::Unknown;
        }
        let Some(p) = pid_of(pid) else {
            // PID 0 or above i32::MAX names no process we can ask about.
            return Probe::Unknown;
        };
        match rustix::process::test_kill_process(p) {
            Ok(()) | Err(Errno::PERM) => {}
            Err(Errno::SRCH) => return Probe::Gone,
            Err(_) => return Probe::Unknown,
        }
        match read_proc_file(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|b| read_proc_stat(&b))
        {
            Some(st) => Probe::Alive {
                start: st.start_ticks,
                state: run_state(pid, st.state),
            },
            None => Probe::Unknown,
        }
    }

    fn group_gone(&self, pgid: u32) -> bool {
        let Some(p) = pid_of(pgid) else {
            return false;
        };
        match rustix::process::test_kill_process_group(p) {
            Err(Errno::SRCH) => true,
            // Members that are all exited but not yet reaped (an orphan waits
            // for init to reap it) can never run again: gone too.
            Ok(()) | Err(Errno::PERM) => only_exited_members(pgid),
            Err(_) => false,
        }
    }

    fn all(&self) -> Option<Vec<SeenProcess>> {
        self.all.get_or_init(scan_all).clone()
    }
}

/// Every process of this kernel, with its PID and process group in its own
/// (innermost) namespace. `None` if any entry could not be read for a reason
/// other than having exited meanwhile: a proof needs all of them.
fn scan_all() -> Option<Vec<SeenProcess>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").ok()? {
        let e = e.ok()?;
        let Some(pid) = e
            .file_name()
            .to_str()
            .and_then(crate::names::parse_decimal)
            .and_then(|p| u32::try_from(p).ok())
        else {
            continue;
        };
        let stat = match read_proc_file(format!("/proc/{pid}/stat")) {
            Ok(b) => read_proc_stat(&b)?,
            Err(e)
                if e.raw_os_error() == Some(libc_esrch())
                    || e.kind() == io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(_) => return None,
        };
        let status = match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(s) => s,
            Err(e)
                if e.raw_os_error() == Some(libc_esrch())
                    || e.kind() == io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(_) => return None,
        };
        let last = |key: &str| -> Option<u32> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().last())
                .and_then(|v| v.parse().ok())
        };
        let inner_pid = last("NSpid:").unwrap_or(pid);
        let inner_pgid = last("NSpgid:").unwrap_or(stat.pgrp);
        let pid_ns = rustix::fs::stat(format!("/proc/{pid}/ns/pid").as_str())
            .ok()
            .map(|s| s.st_ino);
        out.push(SeenProcess {
            inner_pid,
            inner_pgid,
            raw_ticks: stat.start_ticks,
            state: run_state(pid, stat.state),
            pid_ns,
        });
    }
    Some(out)
}

/// Whether every process of our namespace in process group `pgid` has
/// exited (zombies whose threads are all dead). Members we cannot see
/// (`hidepid`) or read make the answer "no".
fn only_exited_members(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    let mut found = false;
    for e in dir {
        let Ok(e) = e else { return false };
        let Some(pid) = e
            .file_name()
            .to_str()
            .and_then(crate::names::parse_decimal)
            .and_then(|p| u32::try_from(p).ok())
        else {
            continue;
        };
        let st = match read_proc_file(format!("/proc/{pid}/stat")) {
            Ok(b) => match read_proc_stat(&b) {
                Some(st) => st,
                None => return false,
            },
            // Exited meanwhile.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc_esrch()) =>
            {
                continue
            }
            // Hidden from us: it might be a live member.
            Err(_) => return false,
        };
        if st.pgrp == pgid {
            if run_state(pid, st.state) != RunState::Exited {
                return false;
            }
            found = true;
        }
    }
    found
}

fn libc_esrch() -> i32 {
    Errno::SRCH.raw_os_error()
}

/// A zombie leader can still have live threads; the process is only over when
/// every thread is a zombie or dead. Any doubt answers "no".
fn all_threads_exited(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    for t in tasks {
        let Ok(t) = t else { return false };
        let Ok(bytes) = read_proc_file(t.path().join("stat")) else {
            return false;
        };
        match read_proc_stat(&bytes) {
            Some(st) if matches!(st.state, b'Z' | b'X') => {}
            _ => return false,
        }
    }
    true
}

/// The command line of a process, for display only.
pub(crate) fn command_line(pid: u32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Judges the claims of one listing.
pub(crate) struct Judge {
    local: Option<&'static LinuxLocal>,
    procs: ProcFs,
}

/// Our identity as judged for a folder on a local filesystem, and on a
/// shared one (the two differ only in `folder_local`): made once, so a
/// check does not copy it.
static FOR_FOLDER: [OnceLock<Option<LinuxLocal>>; 2] = [OnceLock::new(), OnceLock::new()];

impl Judge {
    pub fn new(single_kernel: bool) -> Judge {
        let local = FOR_FOLDER[usize::from(single_kernel)]
            .get_or_init(|| {
                local().ok().map(|l| LinuxLocal {
                    folder_local: single_kernel,
                    ..l.clone()
                })
            })
            .as_ref();
        Judge {
            local,
            procs: ProcFs {
                all: OnceCell::new(),
            },
        }
    }

    pub fn judge(&self, claim: &Claim) -> Verdict {
        let Some(me) = self.local else {
            return Verdict::Unjudgeable(Unjudgeable::NoLocalIdentity);
        };
        match claim {
            Claim::Bid {
                pid,
                owner: Owner::Linux(o),
                group,
            } => identity::judge_linux(*pid, o, *group, None, me, &self.procs),
            Claim::Bid { owner, .. } => {
                Verdict::Unjudgeable(Unjudgeable::OtherPlatform(owner.os().to_owned()))
            }
            Claim::Legacy { pid, created } => {
                identity::judge_legacy_linux(*pid, *created, me, &self.procs)
            }
            Claim::Side {
                pid,
                key:
                    OwnerKey::Linux {
                        start_ticks,
                        pid_ns,
                        boot_id,
                        boot_time,
                    },
            } => identity::judge_linux_side(
                *pid,
                *start_ticks,
                *pid_ns,
                boot_id,
                *boot_time,
                me,
                &self.procs,
            ),
            Claim::Side { key, .. } => Verdict::Unjudgeable(match key {
                OwnerKey::Unknown(c) => {
                    Unjudgeable::UnknownFormat(format!("side file of platform '{c}'"))
                }
                OwnerKey::Windows { .. } => Unjudgeable::OtherPlatform("windows".into()),
                OwnerKey::Macos { .. } => Unjudgeable::OtherPlatform("macos".into()),
                OwnerKey::Freebsd { .. } => Unjudgeable::OtherPlatform("freebsd".into()),
                OwnerKey::Linux { .. } => Unjudgeable::OtherMachine,
            }),
            Claim::Unreadable(why) => Verdict::Unjudgeable(why.clone()),
        }
    }

    pub fn watch_target(&self, claim: &Claim) -> Option<(u32, u64)> {
        let me = self.local?;
        let (pid, boot_id, pid_ns, ticks) = match claim {
            Claim::Bid {
                pid,
                owner: Owner::Linux(o),
                ..
            } => (*pid, hex(&o.boot_id), o.pid_ns, o.start_ticks),
            Claim::Side {
                pid,
                key:
                    OwnerKey::Linux {
                        start_ticks,
                        pid_ns,
                        boot_id,
                        ..
                    },
            } => (*pid, boot_id.clone(), *pid_ns, *start_ticks),
            Claim::Legacy { pid, .. } => {
                return match self.procs.probe(*pid) {
                    Probe::Alive { start, .. } => Some((*pid, start)),
                    _ => None,
                }
            }
            _ => return None,
        };
        (boot_id == hex(&me.boot_id) && pid_ns == me.pid_ns).then(|| (pid, ticks + me.offset_ticks))
    }
}

fn hex(s: &str) -> String {
    s.chars().filter(|c| *c != '-').collect()
}

/// The raw start ticks of a live process of our namespace (the waker checks
/// that a pidfd it opened still names the process it meant).
pub(crate) fn start_of(pid: u32) -> Option<u64> {
    match (ProcFs {
        all: OnceCell::new(),
    })
    .probe(pid)
    {
        Probe::Alive { start, state } if state != RunState::Exited => Some(start),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn proc_stat_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = read_proc_stat(&bytes);
        }

        #[test]
        fn proc_stat_parses_any_command_name(
            pid in 1u32..,
            comm in "[^\u{0}]{0,16}",
            state in "[RSDZTtXxKWPI]",
            pgrp in any::<u32>(),
            ticks in any::<u64>(),
        ) {
            let line = format!(
                "{pid} ({comm}) {state} 1 {pgrp} 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 {ticks} 20 21 22\n"
            );
            let st = read_proc_stat(line.as_bytes()).expect("well-formed stat parses");
            prop_assert_eq!(st.pid, pid);
            prop_assert_eq!(st.pgrp, pgrp);
            prop_assert_eq!(st.start_ticks, ticks);
            prop_assert_eq!(st.state, state.as_bytes()[0]);
        }

        #[test]
        fn btime_and_offset_parsers_never_panic(s in "(.{0,20}\n){0,5}((btime|boottime) .{0,25}\n)?(.{0,20}\n){0,5}") {
            let _ = parse_btime(&s);
            let _ = parse_boottime_offset(&s);
        }
    }

    #[test]
    fn proc_stat_parses_after_last_paren() {
        let line = b"4242 (a) b) (c) S 1 77 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21";
        let st = read_proc_stat(line).unwrap();
        assert_eq!(st.pid, 4242);
        assert_eq!(st.state, b'S');
        assert_eq!(st.pgrp, 77);
        assert_eq!(st.start_ticks, 987654);
        assert!(read_proc_stat(b"1 (x) S 1 2").is_none());
        assert!(read_proc_stat(b")1 (x").is_none());
    }

    #[test]
    fn boottime_offsets_parse() {
        let t = "monotonic           0         0\nboottime       100000         5\n";
        assert_eq!(parse_boottime_offset(t), Some(100_000_000_000_005));
        assert_eq!(parse_boottime_offset("monotonic 0 0\n"), None);
        assert_eq!(
            parse_boottime_offset("boottime -5 0\n"),
            Some(-5_000_000_000)
        );
    }

    #[test]
    fn self_identity_is_consistent() {
        let me = current().unwrap();
        assert_eq!(me.pid, std::process::id());
        let Owner::Linux(o) = &me.owner else {
            panic!("{me:?}")
        };
        let j = Judge::new(true);
        let claim = Claim::Bid {
            pid: me.pid,
            owner: me.owner.clone(),
            group: None,
        };
        assert_eq!(j.judge(&claim), Verdict::LIVE);
        assert!(o.boot_time > 1_000_000_000);
        assert_eq!(j.watch_target(&claim).map(|t| t.0), Some(me.pid));
    }
}
