//! FreeBSD: who we are from `sysctl`, and whether a PID names a live
//! process from `kill(pid, 0)` and `sysctl(KERN_PROC_PID)`.
//!
//! * Start time: `kinfo_proc.ki_start` is filled by the kernel as the
//!   process's uptime at start plus the boot time *of the moment*, so it
//!   moves when the clock is stepped. We record `ki_start - kern.boottime`
//!   (µs since boot), reading the boot time before and after the process,
//!   so a step in between is noticed and the read repeated. 1.0.2's
//!   `CREATED` is the whole seconds of `ki_start` itself (psutil 7.2.2).
//! * Gone: only `ESRCH` from `kill(pid, 0)`, and only when this process
//!   can see every process: in a jail, or as a user other than root while
//!   `security.bsd.see_other_uids`, `see_other_gids` or `see_jail_proc` is
//!   0, FreeBSD answers `ESRCH` for processes it hides, so there `ESRCH` is
//!   "cannot tell" (such a reader never removes a bid whose PID is free;
//!   a reused PID with another start time it still recognises).
//! * Exited: `ki_stat == SZOMB`; stopped: `SSTOP`.
//! * The machine: `kern.hostuuid`. A system without one (all zeros) cannot
//!   tell its bids from another machine's, so this process cannot describe
//!   itself and bidding fails (`Unsupported`).

#![allow(unsafe_code)]

use super::parse;
use super::portable;
use super::{sysctl, Me};
use crate::error::Op;
use crate::fault;
use crate::identity::{FreebsdOwner, Owner, PortableLocal, PortableProcs, Probe, RunState};
use rustix::io::Errno;
use std::io;
use std::sync::OnceLock;

// The process states decoded in `parse.rs` are the system's.
const _: () = assert!(libc::SZOMB as u8 == parse::SZOMB && libc::SSTOP as u8 == parse::SSTOP);

/// What this process knows about its machine, and whether `ESRCH` proves
/// absence for it.
struct Local {
    portable: PortableLocal,
    sees_all: bool,
}

static LOCAL: OnceLock<Result<Local, (io::ErrorKind, String)>> = OnceLock::new();

fn local() -> io::Result<&'static Local> {
    LOCAL
        .get_or_init(|| read_local().map_err(|e| (e.kind(), e.to_string())))
        .as_ref()
        .map_err(|(k, m)| io::Error::new(*k, m.clone()))
}

fn read_local() -> io::Result<Local> {
    fault::check(Op::Identity, b"local")?;
    let uts = rustix::system::uname();
    let host = String::from_utf8_lossy(uts.nodename().to_bytes()).into_owned();
    let machine = sysctl::string(c"kern.hostuuid")?;
    if !parse::is_machine_uuid(&machine) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "kern.hostuuid is not set, so bids of this machine cannot be told from others",
        ));
    }
    Ok(Local {
        portable: PortableLocal {
            os: "freebsd",
            host,
            machine,
            boot: String::new(),
        },
        sees_all: sees_all(),
    })
}

/// Whether `ESRCH` from `kill(2)` proves that no process has the PID: not
/// in a jail, and either root or with no visibility restriction. Any
/// doubt (a sysctl that fails for another reason than not existing) is
/// "no".
fn sees_all() -> bool {
    let flag = |name: &std::ffi::CStr, missing: i32| match sysctl::int(name) {
        Ok(Some(v)) => Some(v),
        Ok(None) => Some(missing),
        Err(_) => None,
    };
    let Some(jailed) = flag(c"security.jail.jailed", 0) else {
        return false;
    };
    if jailed != 0 {
        return false;
    }
    if rustix::process::geteuid().is_root() {
        return true;
    }
    [
        c"security.bsd.see_other_uids",
        c"security.bsd.see_other_gids",
        c"security.bsd.see_jail_proc",
    ]
    .iter()
    .all(|n| flag(n, 1).is_some_and(|v| v != 0))
}

pub(crate) fn current_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

fn pid_of(n: u32) -> Option<rustix::process::Pid> {
    i32::try_from(n)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
}

/// A process as read with the boot time of the same moment.
#[derive(Debug, Clone, Copy)]
struct Proc {
    /// `ki_start` in whole seconds (1.0.2's `CREATED`).
    start_sec: i64,
    /// µs since boot.
    since_boot: u64,
    /// `kern.boottime` in µs since the epoch.
    boot_us: u64,
    stat: u8,
}

/// A `timeval` in µs (`suseconds_t` is 64 bits on amd64, 32 elsewhere).
#[allow(clippy::unnecessary_cast)]
fn timeval_us(tv: &libc::timeval) -> Option<u64> {
    parse::timeval_us(tv.tv_sec as i64, tv.tv_usec as i64)
}

fn boot_time_us() -> io::Result<u64> {
    let (tv, n) = sysctl::struct_by_mib::<libc::timeval>(&[libc::CTL_KERN, libc::KERN_BOOTTIME])?;
    if n != std::mem::size_of::<libc::timeval>() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "kern.boottime"));
    }
    timeval_us(&tv).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "kern.boottime"))
}

/// `sysctl(KERN_PROC_PID)` between two reads of the boot time; `ESRCH`
/// comes back as an error like any other (only `kill` decides "gone").
fn read_proc(pid: u32) -> io::Result<Proc> {
    let p = i32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, p];
    for _ in 0..3 {
        let before = boot_time_us()?;
        let (kp, n) = sysctl::struct_by_mib::<libc::kinfo_proc>(&mib)?;
        let after = boot_time_us()?;
        if before != after {
            // The clock was stepped in between: read again.
            continue;
        }
        let size = std::mem::size_of::<libc::kinfo_proc>();
        if n != size || kp.ki_structsize as usize != size || kp.ki_pid != p {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "sysctl(KERN_PROC_PID): not the kinfo_proc asked for",
            ));
        }
        let start_us = timeval_us(&kp.ki_start);
        let Some(since_boot) = start_us.and_then(|s| parse::since_boot(s, before)) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed ki_start",
            ));
        };
        return Ok(Proc {
            start_sec: kp.ki_start.tv_sec,
            since_boot,
            boot_us: before,
            stat: kp.ki_stat as u8,
        });
    }
    Err(io::Error::new(
        io::ErrorKind::Interrupted,
        "the clock kept moving while the process was read",
    ))
}

fn me_from(pid: u32, p: &Proc, l: &Local) -> Me {
    Me {
        pid,
        created: parse::created_of_timeval(p.start_sec),
        host: l.portable.host.clone(),
        owner: Owner::Freebsd(FreebsdOwner {
            host_uuid: l.portable.machine.clone(),
            boot_time_us: p.boot_us,
            start_us: p.since_boot,
        }),
    }
}

/// This process. Read afresh every time: `ki_start` follows clock steps,
/// and `CREATED` must be what psutil would compute at the moment the bid
/// is written.
pub(crate) fn current() -> io::Result<Me> {
    let l = local()?;
    let pid = current_pid();
    Ok(me_from(pid, &read_proc(pid)?, l))
}

/// Another process of ours.
pub(crate) fn of_pid(pid: u32) -> io::Result<Me> {
    let l = local()?;
    Ok(me_from(pid, &read_proc(pid)?, l))
}

/// The real process table, as this process may see it.
pub(crate) struct Procs {
    sees_all: bool,
}

impl PortableProcs for Procs {
    fn probe(&self, pid: u32) -> Probe {
        if fault::check(Op::Identity, pid.to_string().as_bytes()).is_err() {
            return Probe::Unknown;
        }
        let Some(p) = pid_of(pid) else {
            return Probe::Unknown;
        };
        match rustix::process::test_kill_process(p) {
            Ok(()) | Err(Errno::PERM) => {}
            Err(Errno::SRCH) if self.sees_all => return Probe::Gone,
            Err(_) => return Probe::Unknown,
        }
        match read_proc(pid) {
            Ok(p) => Probe::Alive {
                start: p.since_boot,
                state: parse::bsd_state(p.stat),
            },
            Err(_) => Probe::Unknown,
        }
    }

    fn group_gone(&self, pgid: u32) -> bool {
        self.sees_all
            && pid_of(pgid).is_some_and(|p| {
                matches!(
                    rustix::process::test_kill_process_group(p),
                    Err(Errno::SRCH)
                )
            })
    }

    /// psutil's `CREATED` is the seconds of `ki_start` as FreeBSD reports
    /// it now (boot time plus the start's uptime).
    fn created(&self, pid: u32, _start: u64) -> Option<i64> {
        read_proc(pid)
            .ok()
            .map(|p| parse::created_of_timeval(p.start_sec))
    }
}

/// The command line of a process (`KERN_PROC_ARGS`), for display only.
pub(crate) fn command_line(pid: u32) -> Option<String> {
    let p = i32::try_from(pid).ok()?;
    let mut buf = vec![0u8; 64 << 10];
    let n = sysctl::by_mib(
        &[libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_ARGS, p],
        &mut buf,
    )
    .ok()?;
    parse::nul_separated_args(&buf[..n])
}

/// Judges the claims of one listing.
pub(crate) struct Judge {
    inner: portable::Judge<Procs>,
}

impl Judge {
    pub fn new(_single_kernel: bool) -> Judge {
        let l = local().ok();
        Judge {
            inner: portable::Judge {
                local: l.map(|l| l.portable.clone()),
                procs: Procs {
                    sees_all: l.is_some_and(|l| l.sees_all),
                },
            },
        }
    }

    pub fn judge(&self, claim: &crate::identity::Claim) -> crate::identity::Verdict {
        self.inner.judge(claim)
    }

    pub fn watch_target(&self, claim: &crate::identity::Claim) -> Option<(u32, u64)> {
        self.inner.watch_target(claim)
    }
}

/// The start (µs since boot) of a live process (the waker checks that the
/// PID it registered still names the process it meant).
pub(crate) fn start_of(pid: u32) -> Option<u64> {
    let procs = Procs {
        sees_all: local().is_ok_and(|l| l.sees_all),
    };
    match procs.probe(pid) {
        Probe::Alive { start, state } if state != RunState::Exited => Some(start),
        _ => None,
    }
}
