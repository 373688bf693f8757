//! macOS: who we are from `sysctl` and `gethostuuid`, and whether a PID
//! names a live process from `kill(pid, 0)` and `sysctl(KERN_PROC_PID)`.
//!
//! * Start time: `kinfo_proc.kp_proc.p_starttime`, a `timeval` of wall
//!   clock µs taken when the process starts and never moved afterwards. It
//!   names a process on its own; 1.0.2's `CREATED` is its whole seconds
//!   (psutil 7.2.2 `create_time()`).
//! * Gone: only `ESRCH` from `kill(pid, 0)`. `EPERM` is alive (another
//!   user's process); a `sysctl` that finds nothing right after `kill` found
//!   something is a race, so "cannot tell".
//! * Exited: `p_stat == SZOMB` (a zombie, all threads gone); stopped:
//!   `SSTOP`.
//! * The machine: the Hardware UUID from `gethostuuid(2)`, not
//!   `kern.uuid`. `kern.uuid` is the UUID of the running kernel's image
//!   (xnu fills it from the kernel's Mach-O `LC_UUID`), the same on every
//!   Mac running that macOS build: two Macs sharing a folder would take each
//!   other for the same machine, and then for an earlier boot of it, which
//!   proves a live bid stale. The boot: `kern.bootsessionuuid`, made anew at
//!   every boot.

#![allow(unsafe_code)]

use super::parse::{self, MacProc};
use super::portable;
use super::{sysctl, Me};
use crate::error::Op;
use crate::fault;
use crate::identity::{MacosOwner, Owner, PortableLocal, PortableProcs, Probe, RunState};
use rustix::io::Errno;
use std::io;
use std::sync::{Mutex, OnceLock};

// The process states decoded in `parse.rs` are the system's.
const _: () = assert!(libc::SZOMB == parse::SZOMB as u32 && libc::SSTOP == parse::SSTOP as u32);

fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, what.to_owned())
}

static LOCAL: OnceLock<Result<PortableLocal, (io::ErrorKind, String)>> = OnceLock::new();

/// Host name, Hardware UUID and boot session, read once per process.
fn local() -> io::Result<&'static PortableLocal> {
    LOCAL
        .get_or_init(|| read_local().map_err(|e| (e.kind(), e.to_string())))
        .as_ref()
        .map_err(|(k, m)| io::Error::new(*k, m.clone()))
}

fn read_local() -> io::Result<PortableLocal> {
    fault::check(Op::Identity, b"local")?;
    let uts = rustix::system::uname();
    let host = String::from_utf8_lossy(uts.nodename().to_bytes()).into_owned();
    let machine = host_uuid()?;
    let boot = sysctl::string(c"kern.bootsessionuuid")?;
    if !parse::is_machine_uuid(&boot) {
        return Err(unsupported(
            "kern.bootsessionuuid is not set, so bids of this boot cannot be told from others",
        ));
    }
    Ok(PortableLocal {
        os: "macos",
        host,
        machine,
        boot,
    })
}

/// The Hardware UUID (`gethostuuid`), waiting up to a second for it to be
/// known early at boot.
fn host_uuid() -> io::Result<String> {
    let mut id = [0u8; 16];
    let wait = libc::timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    // SAFETY: `id` is the 16 writable bytes of a `uuid_t`; `wait` is a
    // valid timespec that the call only reads.
    if unsafe { libc::gethostuuid(id.as_mut_ptr(), &wait) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("gethostuuid: {e}; without a machine identity no bid can be judged"),
        ));
    }
    let s = parse::uuid_string(&id);
    if !parse::is_machine_uuid(&s) {
        return Err(unsupported("gethostuuid gave no machine identity"));
    }
    Ok(s)
}

pub(crate) fn current_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

fn pid_of(n: u32) -> Option<rustix::process::Pid> {
    i32::try_from(n)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
}

/// `sysctl(KERN_PROC_PID)`: `Ok(None)` if the kernel found no such process.
fn kinfo(pid: u32) -> io::Result<Option<MacProc>> {
    let p = i32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mib = [libc::CTL_KERN, libc::KERN_PROC, libc::KERN_PROC_PID, p];
    // `struct kinfo_proc` is 648 bytes; room to spare.
    let mut buf = [0u8; 1024];
    let n = sysctl::by_mib(&mib, &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    match parse::macos_kinfo(&buf[..n]) {
        Some(k) if k.pid == p => Ok(Some(k)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "sysctl(KERN_PROC_PID): not the kinfo_proc asked for",
        )),
    }
}

fn me_from(pid: u32, k: &MacProc, l: &PortableLocal) -> io::Result<Me> {
    let start_us = k
        .start_us()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed p_starttime"))?;
    Ok(Me {
        pid,
        created: parse::created_of_timeval(k.start_sec),
        host: l.host.clone(),
        owner: Owner::Macos(MacosOwner {
            host_uuid: l.machine.clone(),
            boot_session: l.boot.clone(),
            start_us,
        }),
    })
}

static SELF_START: Mutex<Option<(u32, MacProc)>> = Mutex::new(None);

/// This process (the start is cached, and read again after a fork).
pub(crate) fn current() -> io::Result<Me> {
    let l = local()?;
    let pid = current_pid();
    let mut cached = SELF_START.lock().unwrap_or_else(|p| p.into_inner());
    let k = match *cached {
        Some((p, k)) if p == pid => k,
        _ => {
            let k = kinfo(pid)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            *cached = Some((pid, k));
            k
        }
    };
    me_from(pid, &k, l)
}

/// Another process of ours.
pub(crate) fn of_pid(pid: u32) -> io::Result<Me> {
    let l = local()?;
    let k = kinfo(pid)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no process {pid}")))?;
    me_from(pid, &k, l)
}

/// The real process table.
pub(crate) struct Procs;

impl PortableProcs for Procs {
    fn probe(&self, pid: u32) -> Probe {
        if fault::check(Op::Identity, pid.to_string().as_bytes()).is_err() {
            return Probe::Unknown;
        }
        let Some(p) = pid_of(pid) else {
            // PID 0 (kill(0, 0) would ask about our own process group) or
            // beyond pid_t: nothing we can ask about.
            return Probe::Unknown;
        };
        match rustix::process::test_kill_process(p) {
            Ok(()) | Err(Errno::PERM) => {}
            Err(Errno::SRCH) => return Probe::Gone,
            Err(_) => return Probe::Unknown,
        }
        match kinfo(pid) {
            Ok(Some(k)) => match k.start_us() {
                Some(start) => Probe::Alive {
                    start,
                    state: parse::bsd_state(k.stat),
                },
                None => Probe::Unknown,
            },
            // Found by kill, not by sysctl: it exited in between; the next
            // check will see ESRCH.
            Ok(None) | Err(_) => Probe::Unknown,
        }
    }

    fn group_gone(&self, pgid: u32) -> bool {
        pid_of(pgid).is_some_and(|p| {
            matches!(
                rustix::process::test_kill_process_group(p),
                Err(Errno::SRCH)
            )
        })
    }

    /// `p_starttime` is µs since the epoch; psutil's `CREATED` its seconds.
    fn created(&self, _pid: u32, start: u64) -> Option<i64> {
        i64::try_from(start / 1_000_000).ok()
    }
}

/// The command line of a process (`KERN_PROCARGS2`), for display only.
pub(crate) fn command_line(pid: u32) -> Option<String> {
    let p = i32::try_from(pid).ok()?;
    let mut max = [0u8; 4];
    let n = sysctl::by_mib(&[libc::CTL_KERN, libc::KERN_ARGMAX], &mut max).ok()?;
    let argmax = usize::try_from(i32::from_ne_bytes(max)).ok()?;
    if n != 4 || argmax == 0 || argmax > (16 << 20) {
        return None;
    }
    let mut buf = vec![0u8; argmax];
    let n = sysctl::by_mib(&[libc::CTL_KERN, libc::KERN_PROCARGS2, p], &mut buf).ok()?;
    parse::macos_procargs(&buf[..n])
}

/// Judges the claims of one listing.
pub(crate) struct Judge {
    inner: portable::Judge<Procs>,
}

impl Judge {
    /// Whether the folder is local does not matter here: a macOS bid names
    /// its boot, and only an earlier boot of this machine is proven gone.
    pub fn new(_single_kernel: bool) -> Judge {
        Judge {
            inner: portable::Judge {
                local: local().ok().cloned(),
                procs: Procs,
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

/// The start (µs since the epoch) of a live process (the waker checks that
/// the PID it registered still names the process it meant).
pub(crate) fn start_of(pid: u32) -> Option<u64> {
    match Procs.probe(pid) {
        Probe::Alive { start, state } if state != RunState::Exited => Some(start),
        _ => None,
    }
}
