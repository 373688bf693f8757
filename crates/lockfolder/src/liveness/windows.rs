//! Windows: who we are from `GetProcessTimes` and the registry, and whether
//! a PID names a live process from a process handle.
//!
//! * A process is its PID and its creation time (`GetProcessTimes`, a
//!   FILETIME in 100 ns steps, fixed when the process is created). 1.0.2's
//!   `CREATED` is that time in Unix seconds as psutil computes it
//!   (`parse::windows_created`).
//! * Gone: `OpenProcess` failing with `ERROR_INVALID_PARAMETER` (no process
//!   object has the PID). `OpenProcess` *succeeds* on a process that has
//!   exited while some handle to it is still open (its parent's, ours), so
//!   a handle proves nothing: a process is over when its handle is signalled
//!   (`WaitForSingleObject(h, 0)`), or, where we may not wait on it, when
//!   `GetExitCodeProcess` no longer says `STILL_ACTIVE` (a process that
//!   exited *with* code 259 then looks alive, which errs the right way).
//!   Access denied, or any other failure: alive.
//! * The machine: `HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid`, read
//!   from the 64-bit view of the registry. Windows writes it once, at
//!   installation; every user may read it; it does not change with the host
//!   name, the network or the hardware, and it is what Windows' own tools
//!   use to tell installations apart. Alternatives are worse for this job:
//!   the host name changes and repeats, the SMBIOS UUID is missing or shared
//!   on many machines and needs firmware tables, a volume serial names a
//!   disk, not a machine. Its weakness: an image cloned without
//!   `sysprep /generalize` keeps it, so two such clones sharing a (network)
//!   folder would judge each other's bids as their own. Without it this
//!   process cannot describe itself, and bidding fails (`Unsupported`).
//! * There is no boot identity on Windows: a bid of an earlier boot is
//!   judged by PID and creation time like any other, which proves it gone
//!   (no process of this boot was created at that 100 ns instant).
//! * Process groups (`lockfolder run`'s `group`) do not exist here: ignored.

#![allow(unsafe_code)]

use super::parse;
use super::portable;
use super::Me;
use crate::error::Op;
use crate::fault;
use crate::identity::{Owner, PortableLocal, PortableProcs, Probe, RunState, WindowsOwner};
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::sync::OnceLock;
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER, FILETIME, STILL_ACTIVE, WAIT_OBJECT_0,
    WAIT_TIMEOUT,
};
use windows_sys::Win32::System::Registry::{
    RegGetValueW, HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ, RRF_SUBKEY_WOW6464KEY,
};
use windows_sys::Win32::System::SystemInformation::{ComputerNameDnsHostname, GetComputerNameExW};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetExitCodeProcess, GetProcessTimes, OpenProcess,
    QueryFullProcessImageNameW, WaitForSingleObject, PROCESS_NAME_WIN32,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE,
};

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

static LOCAL: OnceLock<Result<PortableLocal, (io::ErrorKind, String)>> = OnceLock::new();

/// Host name and MachineGuid, read once per process.
fn local() -> io::Result<&'static PortableLocal> {
    LOCAL
        .get_or_init(|| read_local().map_err(|e| (e.kind(), e.to_string())))
        .as_ref()
        .map_err(|(k, m)| io::Error::new(*k, m.clone()))
}

fn read_local() -> io::Result<PortableLocal> {
    fault::check(Op::Identity, b"local")?;
    let machine = machine_guid().map_err(|e| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "HKLM\\SOFTWARE\\Microsoft\\Cryptography\\MachineGuid: {e}; \
                 without a machine identity no bid can be judged"
            ),
        )
    })?;
    Ok(PortableLocal {
        os: "windows",
        host: host_name(),
        machine,
        boot: String::new(),
    })
}

fn machine_guid() -> io::Result<String> {
    let key = wide("SOFTWARE\\Microsoft\\Cryptography");
    let value = wide("MachineGuid");
    let mut buf = [0u16; 128];
    let mut size = std::mem::size_of_val(&buf) as u32;
    // SAFETY: `key` and `value` are NUL-terminated UTF-16; `buf` is
    // writable for `size` bytes and `size` says so; the type is not asked
    // for (null).
    let r = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_SZ | RRF_SUBKEY_WOW6464KEY,
            std::ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &mut size,
        )
    };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r as i32));
    }
    let chars = (size as usize / 2).min(buf.len());
    let s = String::from_utf16_lossy(&buf[..chars]);
    let s = s.trim_end_matches('\0').trim().to_owned();
    if s.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "empty"));
    }
    Ok(s)
}

/// The DNS host name, for display (bids are judged by MachineGuid).
fn host_name() -> String {
    let mut buf = [0u16; 256];
    let mut len = buf.len() as u32;
    // SAFETY: `buf` is writable for `len` UTF-16 units and `len` says so.
    let ok = unsafe { GetComputerNameExW(ComputerNameDnsHostname, buf.as_mut_ptr(), &mut len) };
    if ok != 0 && (len as usize) <= buf.len() {
        return String::from_utf16_lossy(&buf[..len as usize]);
    }
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown".to_owned())
}

pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

/// An open process handle, and whether we may wait on it.
struct Process {
    handle: OwnedHandle,
    can_wait: bool,
}

/// Opens `pid` for querying (and waiting, where allowed). The error is the
/// raw `OpenProcess` error, for the caller to read.
fn open(pid: u32) -> io::Result<Process> {
    let try_open = |access| {
        // SAFETY: plain call; a null result is an error, anything else is a
        // handle we now own.
        let h = unsafe { OpenProcess(access, 0, pid) };
        if h.is_null() {
            Err(io::Error::last_os_error())
        } else {
            // SAFETY: `h` is a valid process handle that nothing else owns.
            Ok(unsafe { OwnedHandle::from_raw_handle(h) })
        }
    };
    match try_open(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE) {
        Ok(handle) => Ok(Process {
            handle,
            can_wait: true,
        }),
        Err(e) if e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) => {
            try_open(PROCESS_QUERY_LIMITED_INFORMATION).map(|handle| Process {
                handle,
                can_wait: false,
            })
        }
        Err(e) => Err(e),
    }
}

/// The creation time of the process behind `h` (a FILETIME as one number).
pub(crate) fn creation_time(h: &impl AsRawHandle) -> Option<u64> {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: `h` is an open process handle; the four FILETIMEs are
    // writable.
    let ok = unsafe {
        GetProcessTimes(
            h.as_raw_handle(),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    };
    (ok != 0).then(|| (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

/// Whether the process has exited (`None`: cannot tell).
fn has_exited(p: &Process) -> Option<bool> {
    if p.can_wait {
        // SAFETY: a process handle opened with SYNCHRONIZE; zero timeout.
        return match unsafe { WaitForSingleObject(p.handle.as_raw_handle(), 0) } {
            WAIT_OBJECT_0 => Some(true),
            WAIT_TIMEOUT => Some(false),
            _ => None,
        };
    }
    let mut code = 0u32;
    // SAFETY: a process handle with query rights; `code` is writable.
    let ok = unsafe { GetExitCodeProcess(p.handle.as_raw_handle(), &mut code) };
    (ok != 0).then_some(code != STILL_ACTIVE as u32)
}

fn me_from(pid: u32, created: u64, l: &PortableLocal) -> Me {
    Me {
        pid,
        created: parse::windows_created(created),
        host: l.host.clone(),
        owner: Owner::Windows(WindowsOwner {
            machine_guid: l.machine.clone(),
            created,
        }),
    }
}

static SELF_CREATED: OnceLock<u64> = OnceLock::new();

/// This process (Windows has no fork: its creation time never changes).
pub(crate) fn current() -> io::Result<Me> {
    let l = local()?;
    let created = match SELF_CREATED.get() {
        Some(c) => *c,
        None => {
            // SAFETY: the pseudo handle of this process; it needs no closing.
            let me = unsafe { GetCurrentProcess() };
            let c = creation_time(&RawProcess(me)).ok_or_else(io::Error::last_os_error)?;
            *SELF_CREATED.get_or_init(|| c)
        }
    };
    Ok(me_from(current_pid(), created, l))
}

/// A borrowed raw process handle (the pseudo handle of this process).
struct RawProcess(windows_sys::Win32::Foundation::HANDLE);

impl AsRawHandle for RawProcess {
    fn as_raw_handle(&self) -> std::os::windows::io::RawHandle {
        self.0
    }
}

/// Another process of ours. It must be running.
pub(crate) fn of_pid(pid: u32) -> io::Result<Me> {
    let l = local()?;
    let p = open(pid)?;
    let created = creation_time(&p.handle).ok_or_else(io::Error::last_os_error)?;
    if has_exited(&p) != Some(false) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("process {pid} has exited"),
        ));
    }
    Ok(me_from(pid, created, l))
}

/// The real process table.
pub(crate) struct Procs;

impl PortableProcs for Procs {
    fn probe(&self, pid: u32) -> Probe {
        if fault::check(Op::Identity, pid.to_string().as_bytes()).is_err() {
            return Probe::Unknown;
        }
        if pid == 0 {
            // The System Idle Process: OpenProcess refuses it with
            // "invalid parameter", which must not read as "gone".
            return Probe::Unknown;
        }
        let p = match open(pid) {
            Ok(p) => p,
            Err(e) if e.raw_os_error() == Some(ERROR_INVALID_PARAMETER as i32) => {
                return Probe::Gone
            }
            Err(_) => return Probe::Unknown,
        };
        let Some(start) = creation_time(&p.handle) else {
            return Probe::Unknown;
        };
        match has_exited(&p) {
            Some(true) => Probe::Alive {
                start,
                state: RunState::Exited,
            },
            Some(false) => Probe::Alive {
                start,
                state: RunState::Running,
            },
            None => Probe::Unknown,
        }
    }

    fn group_gone(&self, _pgid: u32) -> bool {
        // No process groups on Windows: nothing keeps a bid alive but its
        // owner (judge_windows does not ask).
        false
    }

    fn created(&self, _pid: u32, start: u64) -> Option<i64> {
        Some(parse::windows_created(start))
    }
}

/// The executable of a process, for display only (its full command line
/// is in its own memory, which we do not read).
pub(crate) fn command_line(pid: u32) -> Option<String> {
    let p = open(pid).ok()?;
    let mut buf = vec![0u16; 32 * 1024];
    let mut len = buf.len() as u32;
    // SAFETY: a process handle with query rights; `buf` is writable for
    // `len` UTF-16 units and `len` says so.
    let ok = unsafe {
        QueryFullProcessImageNameW(
            p.handle.as_raw_handle(),
            PROCESS_NAME_WIN32,
            buf.as_mut_ptr(),
            &mut len,
        )
    };
    (ok != 0 && (len as usize) <= buf.len()).then(|| String::from_utf16_lossy(&buf[..len as usize]))
}

/// Judges the claims of one listing.
pub(crate) struct Judge {
    inner: portable::Judge<Procs>,
}

impl Judge {
    /// Whether the folder is local does not matter here: bids are judged by
    /// machine, PID and creation time alone.
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
